"""Acknowledged data survives kill -9, and restarts keep data and topic configs (librdkafka)."""
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic


def read_all(bootstrap, topic, partition, upto):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, partition, 0)])
    out = {}
    deadline = time.time() + 60
    while len(out) < upto and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        out[m.offset()] = m.value()
    c.close()
    return out


def test_kill9_during_acks_all_stream_keeps_every_acknowledged_record(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("durable", num_partitions=1, replication_factor=1)])["durable"].result(10)
    acked = []
    stop = threading.Event()

    def on_delivery(err, msg):
        if err is None:
            acked.append((msg.offset(), msg.value()))

    def run():
        p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 1,
                      "enable.idempotence": True, "message.timeout.ms": 5000})
        i = 0
        while not stop.is_set():
            p.produce("durable", value=b"rec-%07d" % i, on_delivery=on_delivery)
            i += 1
            p.poll(0)
            if i % 500 == 0:
                time.sleep(0.005)
        p.flush(6)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    deadline = time.time() + 30
    while len(acked) < 5000 and time.time() < deadline:
        time.sleep(0.05)
    broker.kill9()
    stop.set()
    t.join(30)
    assert len(acked) >= 5000, "the stream never got going"
    broker.start()
    top = max(o for o, _ in acked)
    stored = read_all(broker.bootstrap, "durable", 0, top + 1)
    missing = [(o, v) for o, v in acked if stored.get(o) != v]
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:3]}"


def test_restart_keeps_data_partitions_and_configs(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("kept", num_partitions=3, replication_factor=1,
                                  config={"retention.ms": "123456789"})])["kept"].result(10)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(300):
        p.produce("kept", key=b"k%d" % i, value=b"v%d" % i)
    assert p.flush(10) == 0
    broker.restart()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    md = admin.list_topics(timeout=10)
    assert len(md.topics["kept"].partitions) == 3
    res = ConfigResource(ConfigResource.Type.TOPIC, "kept")
    cfg = admin.describe_configs([res])[res].result(10)
    assert cfg["retention.ms"].value == "123456789"
    total = 0
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "x"})
    for part in range(3):
        lo, hi = c.get_watermark_offsets(TopicPartition("kept", part), timeout=10)
        total += hi - lo
    c.close()
    assert total == 300
