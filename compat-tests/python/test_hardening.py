"""Storage hardening against the real binary: a second broker on the same data directory, and a
damaged batch in an internal topic that start-up does not rescan."""
import glob
import os
import subprocess
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Broker, oxbow_bin


def produce(bootstrap, topic, n):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(n):
        p.produce(topic, key=str(i).encode(), value=f"v{i}".encode())
    assert p.flush(30) == 0


def test_a_second_broker_on_the_same_log_dir_refuses_to_start(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("locked", 1, 1)])["locked"].result(30)
    produce(broker.bootstrap, "locked", 50)
    second = subprocess.run(
        [oxbow_bin(), "serve", "--override", "listeners=PLAINTEXT://127.0.0.1:0",
         "--override", f"log.dirs={broker.data_dir}"],
        capture_output=True, text=True, timeout=30)
    assert second.returncode != 0, "a second broker started on a locked log dir"
    assert "locked" in second.stderr, second.stderr[-2000:]
    assert "oxbow ready" not in second.stdout
    # The first broker still serves, and nothing acknowledged was lost.
    produce(broker.bootstrap, "locked", 50)
    broker.restart()
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g-lock",
                  "auto.offset.reset": "earliest", "enable.partition.eof": True})
    c.assign([TopicPartition("locked", 0, 0)])
    seen = 0
    deadline = time.time() + 30
    while time.time() < deadline:
        m = c.poll(1)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                break
            raise AssertionError(m.error())
        seen += 1
    c.close()
    assert seen == 100


def test_a_damaged_offsets_batch_does_not_keep_the_broker_from_starting(broker):
    bootstrap = broker.bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("in", 1, 1)])["in"].result(30)
    produce(bootstrap, "in", 10)
    # Two groups commit offsets: one batch each in __consumer_offsets.
    for group, offset in (("g-damaged", 3), ("g-intact", 7)):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                      "enable.auto.commit": False})
        c.commit(offsets=[TopicPartition("in", 0, offset)], asynchronous=False)
        c.close()
    broker.stop()  # clean: start-up will trust (not rescan) the offsets segments
    # Flip a byte in the middle of the last batch written for g-damaged, inside its records
    # (past the 61-byte header), so its CRC no longer matches.
    damaged = None
    for path in glob.glob(os.path.join(broker.data_dir, "__consumer_offsets-*", "*.log")):
        data = bytearray(open(path, "rb").read())
        at = data.find(b"g-damaged")
        if at >= 0:
            data[at + 2] ^= 0xFF
            open(path, "wb").write(bytes(data))
            damaged = path
    assert damaged, "no __consumer_offsets segment holds the group's commit"
    broker.start()  # raises if the broker does not print its ready line
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g-intact"})
    committed = c.committed([TopicPartition("in", 0)], timeout=30)
    c.close()
    assert committed[0].offset == 7, "an intact group's commit was lost"
    log = open(broker.stderr.name).read()
    assert "skipping a damaged batch of an internal topic" in log, log[-3000:]
