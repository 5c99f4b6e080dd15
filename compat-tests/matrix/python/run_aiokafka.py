"""aiokafka (asyncio, its own protocol code)."""
import asyncio
import time

import aiokafka
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import OffsetAndMetadata

import matrixlib
from matrixlib import BOOTSTRAP, CODECS, NotApplicable, check, emit, records, topic

LOOP = asyncio.new_event_loop()


async def producer(**kw):
    p = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=5, **kw)
    await p.start()
    return p


async def send(p, t, recs, partition=None, timestamps=None):
    futs = [await p.send(t, key=k, value=v, headers=h, partition=partition,
                         timestamp_ms=timestamps[i] if timestamps else None) for i, (k, v, h) in enumerate(recs)]
    return [await f for f in futs]


async def produce(t, recs, **kw):
    p = await producer(**{k: v for k, v in kw.items() if k not in ("partition", "timestamps")})
    try:
        await send(p, t, recs, kw.get("partition"), kw.get("timestamps"))
        return await p.partitions_for(t)
    finally:
        await p.stop()


async def read(c, n, timeout=20):
    got, deadline = [], time.time() + timeout
    while len(got) < n and time.time() < deadline:
        for batch in (await c.getmany(timeout_ms=300)).values():
            got.extend(batch)
    for batch in (await c.getmany(timeout_ms=300)).values():
        got.extend(batch)
    return got


async def consume_all(t, n, partitions, **kw):
    c = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, **kw)
    await c.start()
    try:
        c.assign([TopicPartition(t, p) for p in partitions])
        await c.seek_to_beginning()
        return await read(c, n)
    finally:
        await c.stop()


def same(got, want):
    check(len(got) == len(want), f"got {len(got)} records, want {len(want)}")
    by_value = {r.value: r for r in got}
    for k, v, h in want:
        r = by_value.get(v)
        check(r is not None, f"missing {v!r}")
        check(r.key == k and list(map(tuple, r.headers)) == h, f"{v!r}: key {r.key!r} headers {r.headers!r}")


async def metadata_autocreate():
    t = topic("auto")
    parts = await produce(t, records(1, "a"))
    check(len(parts) == 3, f"partitions {parts}")
    a = await admin()
    try:
        check(t in await a.list_topics(), "not listed")
        check(len((await a.describe_cluster())["brokers"]) == 1, "brokers")
    finally:
        await a.close()


async def codec(name):
    t = topic(f"codec-{name}")
    want = records(20, name)
    parts = await produce(t, want, compression_type=None if name == "none" else name)
    same(await consume_all(t, 20, sorted(parts)), want)


async def keyed():
    t = topic("keyed")
    parts = await produce(t, [(f"key{i % 6}".encode(), str(i).encode(), []) for i in range(36)])
    got = await consume_all(t, 36, sorted(parts))
    check(len(got) == 36, f"consumed {len(got)}")
    kp = {}
    for r in got:
        kp.setdefault(r.key, set()).add(r.partition)
    check(all(len(v) == 1 for v in kp.values()), f"key -> partitions {kp}")
    check(len({min(v) for v in kp.values()}) > 1, "every key in one partition")
    for k in kp:
        vals = [int(r.value) for r in sorted(got, key=lambda r: r.offset) if r.key == k]
        check(vals == sorted(vals), f"order of {k}")


async def seek_offset():
    t = topic("seek")
    await produce(t, records(20, "s"), partition=0)
    c = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    await c.start()
    try:
        tp = TopicPartition(t, 0)
        c.assign([tp])
        c.seek(tp, 7)
        got = await read(c, 13)
        check([r.offset for r in got] == list(range(7, 20)) and got[0].value == b"s-7", f"offsets {[r.offset for r in got]}")
        check((await c.end_offsets([tp]))[tp] == 20 and (await c.beginning_offsets([tp]))[tp] == 0, "watermarks")
    finally:
        await c.stop()


async def seek_timestamp():
    t = topic("ts")
    base = (int(time.time()) - 3600) * 1000
    await produce(t, records(20, "t"), partition=0, timestamps=[base + i * 1000 for i in range(20)])
    c = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    await c.start()
    try:
        tp = TopicPartition(t, 0)
        c.assign([tp])
        r = (await c.offsets_for_times({tp: base + 7500}))[tp]
        check(r is not None and r.offset == 8 and r.timestamp == base + 8000, f"offsets_for_times(+7.5s) = {r}")
        r = (await c.offsets_for_times({tp: base - 1000}))[tp]
        check(r is not None and r.offset == 0, f"offsets_for_times(before) = {r}")
        r = (await c.offsets_for_times({tp: base + 60_000}))[tp]
        check(r is None, f"offsets_for_times(after the last) = {r}")
        c.seek(tp, 8)
        got = await read(c, 12)
        check(got and got[0].value == b"t-8" and got[0].timestamp == base + 8000, f"first after seek {got[:1]}")
    finally:
        await c.stop()


class Member(ConsumerRebalanceListener):
    def __init__(self, g, t):
        self.g, self.t, self.got, self.assigned, self.stop = g, t, [], set(), False

    async def start(self):
        self.c = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=self.g, auto_offset_reset="earliest",
                                  enable_auto_commit=True, auto_commit_interval_ms=200, heartbeat_interval_ms=500)
        await self.c.start()
        self.c.subscribe([self.t], listener=self)
        self.task = asyncio.ensure_future(self.loop())
        return self

    async def on_partitions_revoked(self, revoked):
        self.assigned = set()

    async def on_partitions_assigned(self, assigned):
        self.assigned = set(assigned)

    async def loop(self):
        while not self.stop:
            for batch in (await self.c.getmany(timeout_ms=200)).values():
                self.got.extend(batch)

    async def close(self):
        self.stop = True
        await self.task
        await self.c.stop()  # commits and leaves


async def wait_until(f, timeout, what):
    deadline = time.time() + timeout
    while not f():
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


async def group():
    t, g = topic("group"), topic("g")
    await produce(t, [])
    a = await Member(g, t).start()
    await wait_until(lambda: len(a.assigned) == 3, 30, "first member assigned 3 partitions")
    b = await Member(g, t).start()
    await wait_until(lambda: a.assigned and b.assigned and len(a.assigned) + len(b.assigned) == 3, 30, "rebalance to 2 members")
    want = records(30, "m")
    await produce(t, want)
    await wait_until(lambda: len(a.got) + len(b.got) >= 30, 30, "30 records")
    await asyncio.sleep(0.5)
    check(a.got and b.got, f"a member got nothing: {len(a.got)}/{len(b.got)}")
    check(sorted(r.value for r in a.got + b.got) == sorted(v for _, v, _ in want), "records differ")
    await a.close()
    await b.close()
    more = records(10, "r")
    await produce(t, more)
    c = await Member(g, t).start()
    try:
        await wait_until(lambda: len(c.got) >= 10, 30, "resumed member reads 10")
        await asyncio.sleep(0.5)
        check(sorted(r.value for r in c.got) == sorted(v for _, v, _ in more), f"resumed read {[r.value for r in c.got]}")
    finally:
        await c.close()


async def idempotent():
    t = topic("idem")
    want = records(30, "i")
    p = await producer(enable_idempotence=True)
    try:
        for i in range(3):
            await send(p, t, want[i * 10:(i + 1) * 10])
        parts = await p.partitions_for(t)
    finally:
        await p.stop()
    same(await consume_all(t, 30, sorted(parts)), want)


async def admin():
    a = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await a.start()
    return a


async def admin_topics():
    a, t = await admin(), topic("admin")
    try:
        await a.create_topics([NewTopic(t, 2, 1, topic_configs={"retention.ms": "3600000"})])
        d = await a.describe_topics([t])
        check(len(d) == 1 and len(d[0]["partitions"]) == 2 and d[0]["error_code"] == 0, f"describe {d}")
        await a.create_partitions({t: NewPartitions(4)})
        d = await a.describe_topics([t])
        check(len(d[0]["partitions"]) == 4, "4 partitions after grow")
        await a.delete_topics([t])
        await wait_until_async(lambda: a.list_topics(), lambda ts: t not in ts, 10, "topic gone")
    finally:
        await a.close()


async def wait_until_async(get, pred, timeout, what):
    deadline = time.time() + timeout
    while not pred(await get()):
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.2)


async def config_value(a, t, name):
    rs = await a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t)])
    obj = rs[0].to_object()
    entries = obj["resources"][0]["config_entries"]
    return {e["config_names"] if "config_names" in e else e["config_name"]: e["config_value"] for e in entries}.get(name)


async def admin_configs():
    a, t = await admin(), topic("cfg")
    try:
        await a.create_topics([NewTopic(t, 1, 1)])
        check(await config_value(a, t, "cleanup.policy") == "delete", "cleanup.policy")
        await a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, t, configs={"retention.ms": "12345678"})])
        v = await config_value(a, t, "retention.ms")
        check(v == "12345678", f"retention.ms after alter {v!r}")
    finally:
        await a.close()


async def group_admin():
    t, g = topic("gadmin"), topic("ga")
    parts = await produce(t, records(10, "g"))
    a = await admin()
    try:
        m = await Member(g, t).start()
        try:
            await wait_until(lambda: len(m.got) >= 10, 30, "member reads 10")
            d = (await a.describe_consumer_groups([g]))[0].to_object()["groups"][0]
            check(d.get("state", d.get("group_state")) == "Stable" and len(d["members"]) == 1, f"describe {d}"[:300])
        finally:
            await m.close()

        async def committed():
            return sum(o.offset for o in (await a.list_consumer_group_offsets(g)).values())
        check(await committed() == 10, f"committed sum {await committed()}")
        check(g in [x[0] for x in await a.list_consumer_groups()], "group not listed")
        c = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=g, enable_auto_commit=False)
        await c.start()
        try:
            tps = [TopicPartition(t, p) for p in sorted(parts)]
            c.assign(tps)
            await c.commit({tp: OffsetAndMetadata(0, "") for tp in tps})
        finally:
            await c.stop()
        check(await committed() == 0, f"after reset committed sum {await committed()}")
    finally:
        await a.close()
    raise NotApplicable(f"aiokafka {aiokafka.__version__}'s admin client has no delete-group call "
                        "(describe, list, committed offsets and a reset were checked and passed)")


async def transactions():
    t = topic("txn")
    p = await producer(transactional_id=topic("tx"))
    try:
        for tag, commit in (("c1", True), ("ab", False), ("c2", True)):
            await p.begin_transaction()
            await send(p, t, records(5, tag), partition=0)
            await (p.commit_transaction() if commit else p.abort_transaction())
    finally:
        await p.stop()
    got = await consume_all(t, 10, [0], isolation_level="read_committed")
    check([r.value for r in got] == [v for _, v, _ in records(5, "c1") + records(5, "c2")], f"read_committed {[r.value for r in got]}")
    got = await consume_all(t, 15, [0], isolation_level="read_uncommitted")
    check(len(got) == 15, f"read_uncommitted got {len(got)}")


def run(scenario, coro_fn, *args):
    import sys
    import traceback
    start = time.time()
    try:
        LOOP.run_until_complete(asyncio.wait_for(coro_fn(*args), 120))
    except NotApplicable as e:
        emit(scenario, "n/a", str(e))
    except Exception as e:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        emit(scenario, "fail", f"{type(e).__name__}: {e}"[:400])
    else:
        emit(scenario, "pass")
    print(f"  [aiokafka] {scenario}: {time.time() - start:.1f}s", file=sys.stderr, flush=True)


matrixlib.CLIENT, matrixlib.VERSION = "aiokafka", aiokafka.__version__
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
}, run)
