"""confluent-kafka (librdkafka): Debian's python3-confluent-kafka on Debian's librdkafka, and the
current PyPI wheel. One source; where the older AdminClient lacks a call the cell is n/a."""
import threading
import time

import confluent_kafka
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

import matrixlib
from matrixlib import BOOTSTRAP, CODECS, NotApplicable, check, records, run, topic, wait_until

BASE = {"bootstrap.servers": BOOTSTRAP}
VERSIONS = f"confluent-kafka {confluent_kafka.version()[0]}, librdkafka {confluent_kafka.libversion()[0]}"


def producer(**kw):
    conf = dict(BASE, **{"linger.ms": 5})
    conf.update({k.replace("_", "."): v for k, v in kw.items()})
    return Producer(conf)


def consumer(**kw):
    conf = dict(BASE, **{"group.id": topic("reader"), "enable.auto.commit": False})
    conf.update({k.replace("_", "."): v for k, v in kw.items()})
    return Consumer(conf)


def send(p, t, recs, partition=None, timestamps=None):
    errors = []

    def cb(err, msg):
        if err:
            errors.append(err)
    for i, (k, v, h) in enumerate(recs):
        kw = {"key": k, "value": v, "headers": h, "on_delivery": cb}
        if partition is not None:
            kw["partition"] = partition
        if timestamps:
            kw["timestamp"] = timestamps[i]
        p.produce(t, **kw)
    left = p.flush(30)
    check(left == 0 and not errors, f"delivery: {left} left, errors {errors[:3]}")


def read(c, n, timeout=20):
    got, deadline = [], time.time() + timeout
    while len(got) < n and time.time() < deadline:
        for m in c.consume(n - len(got), 0.5):
            check(m.error() is None or m.error().code() == -191, f"consume error {m.error()}")  # -191: partition EOF
            if m.error() is None:
                got.append(m)
    got.extend(m for m in c.consume(100, 0.3) if m.error() is None)
    return got


def consume_all(t, n, partitions=None, **kw):
    c = consumer(**kw)
    try:
        if partitions is None:
            partitions = sorted(c.list_topics(t, timeout=10).topics[t].partitions)
        c.assign([TopicPartition(t, p, OFFSET_BEGINNING) for p in partitions])
        return read(c, n)
    finally:
        c.close()


def same(got, want):
    check(len(got) == len(want), f"got {len(got)} records, want {len(want)}")
    by_value = {m.value(): m for m in got}
    for k, v, h in want:
        m = by_value.get(v)
        check(m is not None, f"missing {v!r}")
        check(m.key() == k and (m.headers() or []) == h, f"{v!r}: key {m.key()!r} headers {m.headers()!r}")


def metadata_autocreate():
    t = topic("auto")
    p = producer()
    send(p, t, records(1, "a"))
    md = p.list_topics(t, timeout=10)
    check(len(md.brokers) == 1, f"brokers {md.brokers}")
    check(md.topics[t].error is None and len(md.topics[t].partitions) == 3, f"topic {md.topics[t]}")


def codec(name):
    t = topic(f"codec-{name}")
    p = producer(compression_type=name)
    want = records(20, name)
    send(p, t, want)
    same(consume_all(t, 20), want)


def keyed():
    t = topic("keyed")
    send(producer(), t, [(f"key{i % 6}".encode(), str(i).encode(), []) for i in range(36)])
    got = consume_all(t, 36)
    check(len(got) == 36, f"consumed {len(got)}")
    parts = {}
    for m in got:
        parts.setdefault(m.key(), set()).add(m.partition())
    check(all(len(v) == 1 for v in parts.values()), f"key -> partitions {parts}")
    check(len({min(v) for v in parts.values()}) > 1, "every key in one partition")
    for k in parts:
        vals = [int(m.value()) for m in sorted(got, key=lambda m: m.offset()) if m.key() == k]
        check(vals == sorted(vals), f"order of {k}")


def seek_offset():
    t = topic("seek")
    send(producer(), t, records(20, "s"), partition=0)
    c = consumer()
    try:
        c.assign([TopicPartition(t, 0, 7)])
        got = read(c, 13)
        check([m.offset() for m in got] == list(range(7, 20)) and got[0].value() == b"s-7", f"offsets {[m.offset() for m in got]}")
        c.seek(TopicPartition(t, 0, 15))
        got = read(c, 5)
        check([m.offset() for m in got] == list(range(15, 20)), f"after seek(15) {[m.offset() for m in got]}")
        check(c.get_watermark_offsets(TopicPartition(t, 0), timeout=10) == (0, 20), "watermarks")
    finally:
        c.close()


def seek_timestamp():
    t = topic("ts")
    base = (int(time.time()) - 3600) * 1000
    send(producer(), t, records(20, "t"), partition=0, timestamps=[base + i * 1000 for i in range(20)])
    c = consumer()
    try:
        probes = {base + 7500: 8, base - 1000: 0, base + 60_000: -1}  # -1: past the last (OFFSET_END)
        for ts, want in probes.items():
            r = c.offsets_for_times([TopicPartition(t, 0, ts)], timeout=10)[0]
            check(r.error is None and r.offset == want, f"offsets_for_times({ts - base:+}) = {r.offset} {r.error}, want {want}")
        c.assign(c.offsets_for_times([TopicPartition(t, 0, base + 7500)], timeout=10))
        got = read(c, 12)
        check(got and got[0].value() == b"t-8" and got[0].timestamp()[1] == base + 8000, f"first after seek {got[:1]}")
    finally:
        c.close()


class Member:
    def __init__(self, g, t):
        self.got, self.stop, self.assigned = [], False, []
        self.c = consumer(**{"group.id": g, "auto.offset.reset": "earliest", "enable.auto.commit": True,
                             "auto.commit.interval.ms": 200})
        self.c.subscribe([t], on_assign=self.on_assign, on_revoke=self.on_revoke)
        self.th = threading.Thread(target=self.loop, daemon=True)
        self.th.start()

    def on_assign(self, c, parts):
        self.assigned = [p.partition for p in parts]

    def on_revoke(self, c, parts):
        self.assigned = []

    def loop(self):
        while not self.stop:
            m = self.c.poll(0.2)
            if m is not None and m.error() is None:
                self.got.append(m)

    def close(self):
        self.stop = True
        self.th.join(timeout=10)
        self.c.close()  # commits and leaves


def group():
    t, g = topic("group"), topic("g")
    p = producer()
    p.list_topics(t, timeout=10)
    a = Member(g, t)
    wait_until(lambda: len(a.assigned) == 3, 30, "first member assigned 3 partitions")
    b = Member(g, t)
    wait_until(lambda: a.assigned and b.assigned and len(a.assigned) + len(b.assigned) == 3, 30, "rebalance to 2 members")
    want = records(30, "m")
    send(p, t, want)
    wait_until(lambda: len(a.got) + len(b.got) >= 30, 30, "30 records")
    time.sleep(0.5)
    check(a.got and b.got, f"a member got nothing: {len(a.got)}/{len(b.got)}")
    check(sorted(m.value() for m in a.got + b.got) == sorted(v for _, v, _ in want), "records differ")
    a.close()
    b.close()
    more = records(10, "r")
    send(p, t, more)
    c = Member(g, t)
    try:
        wait_until(lambda: len(c.got) >= 10, 30, "resumed member reads 10")
        time.sleep(0.5)
        check(sorted(m.value() for m in c.got) == sorted(v for _, v, _ in more), f"resumed read {[m.value() for m in c.got]}")
    finally:
        c.close()


def idempotent():
    t = topic("idem")
    p = producer(enable_idempotence=True)
    want = records(30, "i")
    for i in range(3):
        send(p, t, want[i * 10:(i + 1) * 10])
    same(consume_all(t, 30), want)


def admin():
    return AdminClient(BASE)


def wait_all(futs):
    return {k: f.result(timeout=30) for k, f in futs.items()}


def admin_topics():
    a, t = admin(), topic("admin")
    wait_all(a.create_topics([NewTopic(t, num_partitions=2, replication_factor=1, config={"retention.ms": "3600000"})]))
    try:
        wait_all(a.create_topics([NewTopic(t, num_partitions=2, replication_factor=1)]))
        raise AssertionError("creating it twice succeeded")
    except KafkaException as e:
        check(e.args[0].code() == 36, f"second create: {e}")  # TOPIC_ALREADY_EXISTS
    check(len(a.list_topics(t, timeout=10).topics[t].partitions) == 2, "2 partitions")
    wait_all(a.create_partitions([NewPartitions(t, 4)]))
    wait_until(lambda: len(a.list_topics(t, timeout=10).topics[t].partitions) == 4, 10, "4 partitions")
    wait_all(a.delete_topics([t]))
    wait_until(lambda: t not in a.list_topics(timeout=10).topics, 10, "topic gone")


def describe(a, res):
    return {k: v.value for k, v in a.describe_configs([res])[res].result(timeout=30).items()}


def admin_configs():
    a, t = admin(), topic("cfg")
    wait_all(a.create_topics([NewTopic(t, num_partitions=1, replication_factor=1)]))
    res = ConfigResource("topic", t)
    check(describe(a, res).get("cleanup.policy") == "delete", "cleanup.policy")
    if hasattr(a, "incremental_alter_configs"):
        from confluent_kafka.admin import AlterConfigOpType, ConfigEntry
        r = ConfigResource("topic", t, incremental_configs=[
            ConfigEntry("retention.ms", "12345678", incremental_operation=AlterConfigOpType.SET)])
        wait_all(a.incremental_alter_configs([r]))
    else:
        wait_all(a.alter_configs([ConfigResource("topic", t, set_config={"retention.ms": "12345678"})]))
    v = describe(a, ConfigResource("topic", t)).get("retention.ms")
    check(v == "12345678", f"retention.ms after alter {v!r}")
    check(describe(a, ConfigResource("broker", "1")), "no broker configs")


def group_admin():
    a = admin()
    if not hasattr(a, "describe_consumer_groups"):
        raise NotApplicable(f"{VERSIONS}: AdminClient has no describe/alter/delete consumer group calls (added in 2.0)")
    from confluent_kafka import ConsumerGroupTopicPartitions
    t, g = topic("gadmin"), topic("ga")
    send(producer(), t, records(10, "g"))
    m = Member(g, t)
    try:
        wait_until(lambda: len(m.got) >= 10, 30, "member reads 10")
        d = a.describe_consumer_groups([g])[g].result(timeout=30)
        check(str(d.state).endswith("STABLE") and len(d.members) == 1, f"describe {d.state} {d.members}")
    finally:
        m.close()
    tps = [TopicPartition(t, p) for p in range(3)]

    def committed():
        r = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(g, tps)])[g].result(timeout=30)
        return sum(max(tp.offset, 0) for tp in r.topic_partitions)
    check(committed() == 10, f"committed sum {committed()}")
    listed = [x.group_id for x in a.list_consumer_groups().result(timeout=30).valid]
    check(g in listed, f"not listed {listed}")
    a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(g, [TopicPartition(t, p, 0) for p in range(3)])])[g].result(timeout=30)
    check(committed() == 0, f"after reset committed sum {committed()}")
    wait_all(a.delete_consumer_groups([g]))
    listed = [x.group_id for x in a.list_consumer_groups().result(timeout=30).valid]
    check(g not in listed, "still listed after delete")


def transactions():
    t = topic("txn")
    p = producer(transactional_id=topic("tx"))
    p.init_transactions(30)
    for tag, commit in (("c1", True), ("ab", False), ("c2", True)):
        p.begin_transaction()
        send(p, t, records(5, tag), partition=0)
        p.commit_transaction(30) if commit else p.abort_transaction(30)
    got = consume_all(t, 10, [0], isolation_level="read_committed")
    check([m.value() for m in got] == [v for _, v, _ in records(5, "c1") + records(5, "c2")],
          f"read_committed {[m.value() for m in got]}")
    got = consume_all(t, 15, [0], isolation_level="read_uncommitted")
    check(len(got) == 15, f"read_uncommitted got {len(got)}")


matrixlib.CLIENT, matrixlib.VERSION = "confluent-kafka", confluent_kafka.version()[0]
matrixlib.run_all({
    "metadata_autocreate": metadata_autocreate,
    "codec": codec,
    "keyed_partitioning": keyed,
    "seek_offset": seek_offset,
    "seek_timestamp": seek_timestamp,
    "group_rebalance_commit": group,
    "idempotent_produce": idempotent,
    "admin_topics": admin_topics,
    "admin_configs": admin_configs,
    "group_admin": group_admin,
    "transactions": transactions,
})
