"""Topic-level policies enforced by the broker: LogAppendTime, max.message.bytes, retention,
and the clean-shutdown marker on SIGTERM."""
import os
import time

from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def make_topic(broker, name, config, partitions=1):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1, config=config)])[name].result(10)


def test_log_append_time_topic_stamps_broker_time(broker):
    make_topic(broker, "lat", {"message.timestamp.type": "LogAppendTime"})
    p = Producer({"bootstrap.servers": broker.bootstrap})
    p.produce("lat", value=b"x", timestamp=1_000_000)  # a client timestamp from 1970
    assert p.flush(10) == 0
    before = int(time.time() * 1000)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "lat"})
    c.assign([TopicPartition("lat", 0, 0)])
    m = None
    deadline = time.time() + 20
    while m is None and time.time() < deadline:
        m = c.poll(0.5)
    c.close()
    ts_type, ts = m.timestamp()
    assert ts_type == TIMESTAMP_LOG_APPEND_TIME
    assert abs(ts - before) < 60_000, ts


def test_max_message_bytes_is_enforced_per_topic(broker):
    make_topic(broker, "small", {"max.message.bytes": "2000"})
    p = Producer({"bootstrap.servers": broker.bootstrap, "compression.codec": "none", "linger.ms": 0})
    results = []
    p.produce("small", value=b"y" * 5000, on_delivery=lambda e, m: results.append(e))
    p.flush(10)  # separate batches: the limit applies per batch
    p.produce("small", value=b"y" * 100, on_delivery=lambda e, m: results.append(e))
    assert p.flush(10) == 0
    assert results[0] is not None and results[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, results
    assert results[1] is None


def test_retention_deletes_old_segments_and_moves_log_start(broker_factory):
    broker = broker_factory("log.retention.check.interval.ms=200")
    make_topic(broker, "short", {"retention.ms": "1000", "segment.bytes": "2000"})
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    for i in range(60):
        p.produce("short", value=b"z" * 200)
        p.flush(10)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "r"})
    assert c.get_watermark_offsets(TopicPartition("short", 0), timeout=10) == (0, 60)
    segments_before = len([f for f in os.listdir(os.path.join(broker.data_dir, "short-0")) if f.endswith(".log")])
    assert segments_before > 3
    deadline = time.time() + 20
    lo = 0
    while time.time() < deadline:
        lo, hi = c.get_watermark_offsets(TopicPartition("short", 0), timeout=10, cached=False)
        if lo > 0:
            break
        time.sleep(0.3)
    c.close()
    assert lo > 0, "retention never advanced the log start offset"
    segments_after = len([f for f in os.listdir(os.path.join(broker.data_dir, "short-0")) if f.endswith(".log")])
    assert segments_after < segments_before


def test_sigterm_writes_the_clean_shutdown_marker(broker):
    p = Producer({"bootstrap.servers": broker.bootstrap})
    p.produce("marker", value=b"x")
    assert p.flush(10) == 0
    assert not os.path.exists(os.path.join(broker.data_dir, ".kafka_cleanshutdown"))
    broker.stop()
    assert broker.proc.returncode == 0
    assert os.path.exists(os.path.join(broker.data_dir, ".kafka_cleanshutdown"))
