"""Consumer groups with librdkafka (confluent-kafka) against the real broker."""
import subprocess
import sys
import threading
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create_topic(bootstrap, name, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    fs[name].result(timeout=10)


def produce(bootstrap, topic, values):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    errors = []
    for v in values:
        p.produce(topic, key=v, value=v, on_delivery=lambda e, m: e and errors.append(e))
    assert p.flush(30) == 0
    assert not errors, errors


class GroupMember(threading.Thread):
    """Consumes until stopped, committing synchronously before partitions are revoked so that
    no record is seen twice by the group."""

    def __init__(self, bootstrap, group, topic, seen, lock, extra=None):
        super().__init__(daemon=True)
        conf = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
        }
        conf.update(extra or {})
        self.consumer = Consumer(conf)
        self.topic = topic
        self.seen = seen
        self.lock = lock
        self.stop_event = threading.Event()
        self.assignments = []
        self.error = None

    def on_assign(self, consumer, partitions):
        self.assignments.append(sorted(p.partition for p in partitions))

    def on_revoke(self, consumer, partitions):
        try:
            consumer.commit(asynchronous=False)
        except Exception:
            pass  # nothing consumed yet: no offsets to commit

    def run(self):
        try:
            self.consumer.subscribe([self.topic], on_assign=self.on_assign, on_revoke=self.on_revoke)
            while not self.stop_event.is_set():
                m = self.consumer.poll(0.2)
                if m is None or m.error():
                    continue
                with self.lock:
                    self.seen.append(m.value())
            try:
                self.consumer.commit(asynchronous=False)
            except Exception:
                pass
            self.consumer.close()
        except Exception as e:  # surfaced by the test
            self.error = e

    def stop(self):
        self.stop_event.set()
        self.join(30)
        assert not self.is_alive()
        assert self.error is None, self.error


def wait_until(cond, timeout_s, what):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_three_members_join_and_leave_every_record_exactly_once(broker):
    topic, group = "orders", "g-exactly-once"
    create_topic(broker.bootstrap, topic, 6)
    first = [b"a-%05d" % i for i in range(2000)]
    produce(broker.bootstrap, topic, first)
    seen, lock = [], threading.Lock()
    a = GroupMember(broker.bootstrap, group, topic, seen, lock)
    a.start()
    wait_until(lambda: len(seen) > 200, 30, "first member to consume")
    b = GroupMember(broker.bootstrap, group, topic, seen, lock)
    c = GroupMember(broker.bootstrap, group, topic, seen, lock)
    b.start()
    c.start()
    wait_until(lambda: b.assignments and c.assignments and len(a.assignments) >= 2, 30, "rebalance to three members")
    second = [b"b-%05d" % i for i in range(1000)]
    produce(broker.bootstrap, topic, second)
    b.stop()  # leaves the group: its partitions move to a and c
    third = [b"c-%05d" % i for i in range(1000)]
    produce(broker.bootstrap, topic, third)
    expected = set(first + second + third)
    wait_until(lambda: set(seen) >= expected, 60, "every record to be consumed")
    a.stop()
    c.stop()
    assert sorted(seen) == sorted(expected), "a record was lost or seen twice"
    # The three members split the six partitions between them at some point.
    assert any(len(x) == 2 for x in a.assignments)


KILLABLE_CONSUMER = r"""
import sys
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2], "session.timeout.ms": 6000,
              "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest"})
c.subscribe([sys.argv[3]], on_assign=lambda c, ps: print("assigned", len(ps), flush=True))
while True:
    c.poll(0.2)
"""


def test_killed_member_is_evicted_after_session_timeout(broker):
    topic, group = "evict", "g-evict"
    create_topic(broker.bootstrap, topic, 6)
    victim = subprocess.Popen([sys.executable, "-c", KILLABLE_CONSUMER, broker.bootstrap, group, topic],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert victim.stdout.readline().startswith("assigned")
        seen, lock = [], threading.Lock()
        survivor = GroupMember(broker.bootstrap, group, topic, seen, lock)
        survivor.start()
        wait_until(lambda: survivor.assignments and 0 < len(survivor.assignments[-1]) < 6, 30,
                   "the survivor to share the partitions")
        victim.kill()  # no LeaveGroup: only the session timeout can evict it
        killed_at = time.time()
        wait_until(lambda: len(survivor.assignments[-1]) == 6, 30, "the dead member's partitions to move")
        assert time.time() - killed_at >= 3, "moved before any session timeout could have expired"
        survivor.stop()
    finally:
        victim.kill()


def test_static_member_restart_does_not_rebalance(broker):
    topic, group = "static", "g-static"
    create_topic(broker.bootstrap, topic, 6)
    seen, lock = [], threading.Lock()
    static = {"session.timeout.ms": 15000}
    a = GroupMember(broker.bootstrap, group, topic, seen, lock, {**static, "group.instance.id": "member-a"})
    b = GroupMember(broker.bootstrap, group, topic, seen, lock, {**static, "group.instance.id": "member-b"})
    a.start()
    b.start()
    wait_until(lambda: a.assignments and b.assignments
               and len(a.assignments[-1]) + len(b.assignments[-1]) == 6
               and len(a.assignments[-1]) == 3, 30, "both static members to be assigned")
    before_a = a.assignments[-1]
    b_assign_count = len(b.assignments)
    a.stop()  # a static member does not send LeaveGroup on close
    a2 = GroupMember(broker.bootstrap, group, topic, seen, lock, {**static, "group.instance.id": "member-a"})
    a2.start()
    wait_until(lambda: a2.assignments, 30, "the restarted static member to get its partitions")
    time.sleep(2)
    assert a2.assignments[-1] == before_a, "the restarted member got other partitions"
    assert len(b.assignments) == b_assign_count, "the other member went through a rebalance"
    a2.stop()
    b.stop()


def test_commit_restart_broker_resume_from_committed(broker):
    topic, group = "resume", "g-resume"
    create_topic(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, [b"r-%04d" % i for i in range(100)])
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    got = []
    deadline = time.time() + 30
    while len(got) < 40 and time.time() < deadline:
        m = c.poll(0.5)
        if m and not m.error():
            got.append(m)
    assert len(got) >= 40
    c.commit(message=got[39], asynchronous=False)
    c.close()
    for restart in (broker.restart, lambda: (broker.kill9(), broker.start())):
        restart()
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                      "enable.auto.commit": False})
        committed = c.committed([TopicPartition(topic, 0)], timeout=10)
        assert committed[0].offset == 40
        c.subscribe([topic])
        first = None
        deadline = time.time() + 30
        while first is None and time.time() < deadline:
            m = c.poll(0.5)
            if m and not m.error():
                first = m
        assert first is not None and first.offset() == 40 and first.value() == b"r-0040"
        c.close()


def test_committed_offsets_survive_time_retention(broker_factory):
    # __consumer_offsets is compact-only: retention.ms must never delete it.
    broker = broker_factory("log.retention.ms=300", "log.retention.check.interval.ms=100")
    create_topic(broker.bootstrap, "ret", 1)
    produce(broker.bootstrap, "ret", [b"x-%d" % i for i in range(10)])
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g-ret", "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition("ret", 0, 7)], asynchronous=False)
    c.close()
    time.sleep(2)  # many retention passes
    broker.restart()
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g-ret"})
    assert c.committed([TopicPartition("ret", 0)], timeout=10)[0].offset == 7
    c.close()
