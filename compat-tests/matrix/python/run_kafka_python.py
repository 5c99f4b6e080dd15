"""kafka-python (its own protocol code), with api_version auto-detected or pinned.

Usage: run_kafka_python.py [auto | 2.0.0]. One source for kafka-python 2.0.x (Debian's) and 3.x
(PyPI): where their APIs differ (admin group calls, idempotence, transactions) it looks the
feature up and records n/a when the installed version lacks it.
"""
import sys
import threading
import time

import kafka
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from kafka.structs import OffsetAndMetadata

import matrixlib
from matrixlib import BOOTSTRAP, CODECS, NotApplicable, check, records, run, topic, wait_until

API = None if len(sys.argv) < 2 or sys.argv[1] == "auto" else tuple(int(x) for x in sys.argv[1].split("."))
COMMON = {"bootstrap_servers": BOOTSTRAP, "request_timeout_ms": 30000}
if API:
    COMMON["api_version"] = API
HAS_IDEMPOTENCE = "enable_idempotence" in KafkaProducer.DEFAULT_CONFIG
HAS_TXN = "transactional_id" in KafkaProducer.DEFAULT_CONFIG


def producer(**kw):
    return KafkaProducer(**COMMON, linger_ms=5, **kw)


def consumer(**kw):
    kw.setdefault("enable_auto_commit", False)
    return KafkaConsumer(**COMMON, **kw)


def send(p, t, recs, partition=None, timestamps=None):
    futs = [p.send(t, key=k, value=v, headers=h, partition=partition,
                   timestamp_ms=timestamps[i] if timestamps else None)
            for i, (k, v, h) in enumerate(recs)]
    p.flush()
    return [f.get(timeout=30) for f in futs]


def read(c, n, timeout=20):
    got, deadline = [], time.time() + timeout
    while len(got) < n and time.time() < deadline:
        for batch in c.poll(timeout_ms=300).values():
            got.extend(batch)
    for batch in c.poll(timeout_ms=300).values():  # anything beyond n
        got.extend(batch)
    return got


def consume_all(t, n, partitions=None, **kw):
    c = consumer(**kw)
    try:
        parts = partitions if partitions is not None else sorted(wait_until(lambda: c.partitions_for_topic(t), 10, "partitions"))
        c.assign([TopicPartition(t, p) for p in parts])
        c.seek_to_beginning()
        return read(c, n)
    finally:
        c.close()


def same(got, want):
    check(len(got) == len(want), f"got {len(got)} records, want {len(want)}")
    by_value = {r.value: r for r in got}
    for k, v, h in want:
        r = by_value.get(v)
        check(r is not None, f"missing {v!r}")
        check(r.key == k and list(map(tuple, r.headers)) == h, f"{v!r}: key {r.key!r} headers {r.headers!r}")


def metadata_autocreate():
    t = topic("auto")
    p = producer()
    try:
        parts = p.partitions_for(t)  # the metadata request auto-creates it
        check(len(parts) == 3, f"partitions {parts}")
        send(p, t, records(1, "a"))
    finally:
        p.close()
    c = consumer()
    try:
        check(c.topics() >= {t}, "topic not listed")
    finally:
        c.close()


def codec(name):
    t = topic(f"codec-{name}")
    try:
        p = producer(compression_type=None if name == "none" else name)
    except AssertionError as e:  # the codec library is missing: ours to install, not n/a
        raise AssertionError(f"{name} unavailable in this install: {e}")
    except ValueError as e:
        raise NotApplicable(f"kafka-python refuses {name}: {e}")
    want = records(20, name)
    try:
        send(p, t, want)
    finally:
        p.close()
    same(consume_all(t, 20), want)


def keyed():
    t = topic("keyed")
    p = producer()
    try:
        send(p, t, [(f"key{i % 6}".encode(), str(i).encode(), []) for i in range(36)])
    finally:
        p.close()
    got = consume_all(t, 36)
    check(len(got) == 36, f"consumed {len(got)}")
    parts = {}
    for r in got:
        parts.setdefault(r.key, set()).add(r.partition)
    check(all(len(v) == 1 for v in parts.values()), f"key -> partitions {parts}")
    check(len({min(v) for v in parts.values()}) > 1, "every key in one partition")
    for k in parts:
        vals = [int(r.value) for r in sorted(got, key=lambda r: r.offset) if r.key == k]
        check(vals == sorted(vals), f"order of {k}")


def seek_offset():
    t = topic("seek")
    p = producer()
    try:
        send(p, t, records(20, "s"), partition=0)
    finally:
        p.close()
    c = consumer()
    try:
        tp = TopicPartition(t, 0)
        c.assign([tp])
        c.seek(tp, 7)
        got = read(c, 13)
        check([r.offset for r in got] == list(range(7, 20)) and got[0].value == b"s-7", f"offsets {[r.offset for r in got]}")
        check(c.end_offsets([tp])[tp] == 20 and c.beginning_offsets([tp])[tp] == 0, "watermarks")
    finally:
        c.close()


def seek_timestamp():
    t = topic("ts")
    base = (int(time.time()) - 3600) * 1000
    p = producer()
    try:
        send(p, t, records(20, "t"), partition=0, timestamps=[base + i * 1000 for i in range(20)])
    finally:
        p.close()
    c = consumer()
    try:
        tp = TopicPartition(t, 0)
        c.assign([tp])
        r = c.offsets_for_times({tp: base + 7500})[tp]
        check(r is not None and r.offset == 8 and r.timestamp == base + 8000, f"offsets_for_times(+7.5s) = {r}")
        r = c.offsets_for_times({tp: base - 1000})[tp]
        check(r is not None and r.offset == 0, f"offsets_for_times(before) = {r}")
        r = c.offsets_for_times({tp: base + 60_000})[tp]
        check(r is None, f"offsets_for_times(after the last) = {r}, want None")
        c.seek(tp, 8)
        got = read(c, 12)
        check(got and got[0].value == b"t-8" and got[0].timestamp == base + 8000, f"first after seek {got[:1]}")
    finally:
        c.close()


class Member:
    def __init__(self, g, t):
        self.got, self.stop = [], False
        self.c = consumer(group_id=g, auto_offset_reset="earliest", enable_auto_commit=True,
                          auto_commit_interval_ms=200, session_timeout_ms=10000, heartbeat_interval_ms=500)
        self.c.subscribe([t])
        self.th = threading.Thread(target=self.loop, daemon=True)
        self.th.start()

    def loop(self):
        while not self.stop:
            for batch in self.c.poll(timeout_ms=200).values():
                self.got.extend(batch)

    def assigned(self):
        return self.c.assignment()

    def close(self):
        self.stop = True
        self.th.join(timeout=10)
        self.c.commit()
        self.c.close()


def group():
    t, g = topic("group"), topic("g")
    p = producer()
    try:
        p.partitions_for(t)
        a = Member(g, t)
        wait_until(lambda: len(a.assigned()) == 3, 30, "first member assigned 3 partitions")
        b = Member(g, t)
        wait_until(lambda: a.assigned() and b.assigned() and len(a.assigned()) + len(b.assigned()) == 3, 30,
                   "rebalance to 2 members")
        want = records(30, "m")
        send(p, t, want)
        wait_until(lambda: len(a.got) + len(b.got) >= 30, 30, "30 records")
        time.sleep(0.5)
        check(a.got and b.got, f"a member got nothing: {len(a.got)}/{len(b.got)}")
        check(sorted(r.value for r in a.got + b.got) == sorted(v for _, v, _ in want), "records differ")
        a.close()
        b.close()
        more = records(10, "r")
        send(p, t, more)
    finally:
        p.close()
    c = Member(g, t)
    try:
        wait_until(lambda: len(c.got) >= 10, 30, "resumed member reads 10")
        time.sleep(0.5)
        check(sorted(r.value for r in c.got) == sorted(v for _, v, _ in more), f"resumed read {[r.value for r in c.got]}")
    finally:
        c.close()


def idempotent():
    if not HAS_IDEMPOTENCE:
        raise NotApplicable(f"kafka-python {kafka.__version__} has no idempotent producer (added in 2.1)")
    t = topic("idem")
    p = producer(enable_idempotence=True, acks="all")
    try:
        check(p._transaction_manager is not None or getattr(p, "_txn_manager", None) is not None
              or p.config["enable_idempotence"], "idempotence was switched off (api_version?)")
        want = records(30, "i")
        for i in range(3):
            send(p, t, want[i * 10:(i + 1) * 10])
    finally:
        p.close()
    same(consume_all(t, 30), want)


def admin():
    return KafkaAdminClient(**COMMON)


def admin_topics():
    a = admin()
    t = topic("admin")
    try:
        a.create_topics([NewTopic(t, 2, 1, topic_configs={"retention.ms": "3600000"})])
        d = a.describe_topics([t])
        check(len(d) == 1 and len(d[0]["partitions"]) == 2 and d[0]["error_code"] == 0, f"describe {d}")
        a.create_partitions({t: NewPartitions(4)})
        d = a.describe_topics([t])
        check(len(d[0]["partitions"]) == 4, f"after grow {len(d[0]['partitions'])} partitions")
        a.delete_topics([t])
        wait_until(lambda: t not in a.list_topics(), 10, "topic gone from list_topics")
    finally:
        a.close()


def config_value(a, t, name):
    res = ConfigResource(ConfigResourceType.TOPIC, t)
    try:
        r = a.describe_configs([res], config_filter="all")  # 3.x: only modified keys by default
    except TypeError:
        r = a.describe_configs([res])
    r = r[0] if isinstance(r, list) else r
    if hasattr(r, "resources"):  # kafka-python 2.0: the raw response
        entries = {e[0]: e[1] for e in r.resources[0][4]}
    elif isinstance(r, dict) and "topic" in r:
        entries = {k: (v.get("value") if isinstance(v, dict) else v) for k, v in r["topic"][t].items()}
    else:
        raise AssertionError(f"unexpected describe_configs result {r!r}"[:300])
    return entries.get(name)


def admin_configs():
    a = admin()
    t = topic("cfg")
    try:
        a.create_topics([NewTopic(t, 1, 1)])
        check(config_value(a, t, "cleanup.policy") == "delete", "cleanup.policy")
        a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, t, configs={"retention.ms": "12345678"})])
        v = config_value(a, t, "retention.ms")
        check(v == "12345678", f"retention.ms after alter: {v!r}")
    finally:
        a.close()


def group_admin():
    t, g = topic("gadmin"), topic("ga")
    p = producer()
    try:
        send(p, t, records(10, "g"))
    finally:
        p.close()
    a = admin()
    try:
        m = Member(g, t)
        try:
            wait_until(lambda: len(m.got) >= 10, 30, "member reads 10")
            describe = getattr(a, "describe_consumer_groups", None) or a.describe_groups
            d = describe([g])
            d0 = d[0] if isinstance(d, list) else d[g]
            state = d0.state if hasattr(d0, "state") else d0["group_state"] if "group_state" in d0 else d0.get("state")
            members = d0.members if hasattr(d0, "members") else d0["members"]
            check(state == "Stable" and len(members) == 1, f"describe: {d!r}"[:300])
        finally:
            m.close()

        def committed():
            if hasattr(a, "list_consumer_group_offsets"):
                offs = a.list_consumer_group_offsets(g)
            else:
                offs = a.list_group_offsets({g: None})[g]
            return sum(o.offset for o in offs.values())
        check(committed() == 10, f"committed sum {committed()}")
        listed = a.list_consumer_groups() if hasattr(a, "list_consumer_groups") else a.list_groups()
        check(g in str(listed), f"not listed: {listed}"[:300])
        # reset to the earliest offsets by committing as a non-member (what kafka-consumer-groups does)
        c = consumer(group_id=g)
        try:
            tps = [TopicPartition(t, i) for i in range(3)]
            c.assign(tps)
            c.commit({tp: OffsetAndMetadata(0, "", -1) if len(OffsetAndMetadata._fields) == 3
                      else OffsetAndMetadata(0, "") for tp in tps})
        finally:
            c.close()
        check(committed() == 0, f"after reset committed sum {committed()}")
        delete = getattr(a, "delete_consumer_groups", None) or a.delete_groups
        r = delete([g])
        check(all(not e or getattr(e, "errno", 0) == 0 for _, e in (r.items() if isinstance(r, dict) else r)), f"delete: {r}")
        listed = a.list_consumer_groups() if hasattr(a, "list_consumer_groups") else a.list_groups()
        check(g not in str(listed), f"still listed after delete: {listed}"[:300])
    finally:
        a.close()


def transactions():
    if not HAS_TXN:
        raise NotApplicable(f"kafka-python {kafka.__version__} has no transactional producer (added in 2.2)")
    t = topic("txn")
    p = producer(transactional_id=topic("tx"))
    try:
        p.init_transactions()
        for tag, commit in (("c1", True), ("ab", False), ("c2", True)):
            p.begin_transaction()
            send(p, t, records(5, tag), partition=0)
            p.commit_transaction() if commit else p.abort_transaction()
    finally:
        p.close()
    got = consume_all(t, 10, [0], isolation_level="read_committed")
    check([r.value for r in got] == [v for _, v, _ in records(5, "c1") + records(5, "c2")],
          f"read_committed {[r.value for r in got]}")
    got = consume_all(t, 15, [0], isolation_level="read_uncommitted")
    check(len(got) == 15, f"read_uncommitted got {len(got)}")


matrixlib.CLIENT, matrixlib.VERSION = "kafka-python", kafka.__version__ + ('' if API is None else ' api_version=' + '.'.join(map(str, API)))
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
