"""Kafka transactions with librdkafka's transactional API (confluent-kafka) against the real broker.

What a Kafka user relies on: records of a transaction become visible to `read_committed`
consumers only when it commits, never when it aborts; the last stable offset (LSO) holds
read_committed consumers, watermarks and timestamp lookups at the first offset of an open
transaction; consume-transform-produce with send_offsets_to_transaction copies each record
exactly once even when the copier is killed at random points; a new producer with the same
transactional.id fences the old one; and the transaction coordinator survives kill -9 (committed
stays committed, an open transaction is aborted after transaction.timeout.ms).

Run as a script (`python test_transactions_librdkafka.py BOOTSTRAP SRC DST GROUP TXN_ID`) this
file is the copier process of the exactly-once test.
"""
import itertools
import os
import queue
import random
import subprocess
import sys
import threading
import time
import uuid

import pytest
from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

FENCED_CODES = (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH)


def create_topics(bootstrap, *specs):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(n, num_partitions=p, replication_factor=1) for n, p in specs])
    for name, f in fs.items():
        f.result(timeout=10)


def txn_producer(bootstrap, txn_id, extra=None):
    conf = {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5}
    conf.update(extra or {})
    p = Producer(conf)
    p.init_transactions(30)
    return p


class Sender:
    """Produces numbered values round-robin over the partitions, flushes after each call (so the
    append order of a partition is the order of the calls) and remembers that order."""

    def __init__(self, topic, partitions, ts_start):
        self.topic = topic
        self.partitions = partitions
        self.order = {p: [] for p in range(partitions)}
        self.clock = itertools.count(ts_start)
        self.errors = []

    def send(self, producer, prefix, n):
        sent = []
        for i in range(n):
            v = f"{prefix}-{i}".encode()
            part = i % self.partitions
            producer.produce(self.topic, key=v, value=v, partition=part, timestamp=next(self.clock),
                             on_delivery=lambda e, m: e and self.errors.append((m.value(), e)))
            sent.append((part, v))
            self.order[part].append(v)
        assert producer.flush(30) == 0, f"{prefix}: records still undelivered after 30 s"
        assert not self.errors, f"delivery failed: {self.errors[:5]}"
        return sent


class Reader:
    """A consumer assigned to every partition of a topic from the beginning."""

    def __init__(self, bootstrap, topic, partitions, isolation):
        self.topic = topic
        self.partitions = partitions
        self.isolation = isolation
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4()}",
                           "enable.auto.commit": False, "isolation.level": isolation})
        self.c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        self.records = {p: [] for p in range(partitions)}  # (offset, value) in delivery order

    def count(self):
        return sum(len(r) for r in self.records.values())

    def values(self, p):
        return [v for _, v in self.records[p]]

    def _poll(self, t):
        m = self.c.poll(t)
        if m is None:
            return
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF or m.error().retriable():
                return
            raise AssertionError(f"{self.isolation} consumer of {self.topic}: {m.error()}")
        self.records[m.partition()].append((m.offset(), m.value()))

    def read(self, want, timeout=30, grace=1.0):
        """Reads until `want` records in total have arrived, then `grace` seconds more so that
        records beyond those expected show up too."""
        deadline = time.time() + timeout
        while self.count() < want:
            if time.time() > deadline:
                raise AssertionError(
                    f"{self.isolation} consumer of {self.topic}: {self.count()} records after "
                    f"{timeout} s, expected {want}; per partition: "
                    f"{ {p: len(r) for p, r in self.records.items()} }")
            self._poll(0.2)
        end = time.time() + grace
        while time.time() < end:
            self._poll(0.1)
        for p, recs in self.records.items():
            offs = [o for o, _ in recs]
            assert offs == sorted(set(offs)), f"partition {p}: offsets not strictly increasing: {offs}"

    def settle(self, seconds):
        end = time.time() + seconds
        while time.time() < end:
            self._poll(0.1)

    def high(self, p):
        """ListOffsets(latest) with this consumer's isolation level: the high watermark for
        read_uncommitted, the last stable offset for read_committed."""
        return self.c.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10, cached=False)[1]

    def close(self):
        self.c.close()


def test_commit_and_abort_interleaved_read_committed_sees_only_committed(broker):
    bs = broker.bootstrap
    create_topics(bs, ("txn", 3))
    plain = Producer({"bootstrap.servers": bs, "linger.ms": 0})
    a = txn_producer(bs, "txn-a")
    b = txn_producer(bs, "txn-b")
    # Timestamps ahead of the wall clock (within log.message.timestamp.after.max.ms): transaction
    # markers carry the broker's current time, so they stay below every timestamp looked up here.
    ts0 = int(time.time() * 1000) + 600_000
    s = Sender("txn", 3, ts0)
    committed = {}  # value -> visible to read_committed

    for k in range(6):
        # Two transactions open at once, non-transactional records between their records.
        a.begin_transaction()
        sa = s.send(a, f"a{k}", 12)
        b.begin_transaction()
        sb = s.send(b, f"b{k}", 9)
        sp = s.send(plain, f"p{k}", 6)
        sa += s.send(a, f"a{k}x", 6)
        ends = [(a, sa, k % 3 != 1), (b, sb, k % 2 == 0)]
        if k % 2:
            ends.reverse()
        for prod, sent, commit in ends:
            if commit:
                prod.commit_transaction(30)
            else:
                prod.abort_transaction(30)
            for _, v in sent:
                committed[v] = commit
        for _, v in sp:
            committed[v] = True

    want_rc = {p: [v for v in s.order[p] if committed[v]] for p in range(3)}
    rc = Reader(bs, "txn", 3, "read_committed")
    ru = Reader(bs, "txn", 3, "read_uncommitted")
    rc.read(sum(len(v) for v in want_rc.values()))
    ru.read(sum(len(v) for v in s.order.values()))
    for p in range(3):
        got = rc.values(p)
        extra = [v for v in got if not committed[v]]
        assert not extra, f"partition {p}: read_committed returned aborted records {extra[:5]}"
        assert got == want_rc[p], (
            f"partition {p}: read_committed should return exactly the committed and "
            f"non-transactional records, each once, in append order; expected {len(want_rc[p])}, "
            f"got {len(got)}; first difference at "
            f"{next((i for i, (x, y) in enumerate(zip(got, want_rc[p])) if x != y), min(len(got), len(want_rc[p])))}")
        assert ru.values(p) == s.order[p], (
            f"partition {p}: read_uncommitted should return every record (aborted ones too) in "
            f"append order; expected {len(s.order[p])}, got {len(ru.values(p))}")

    # No transaction open: the LSO is the high watermark.
    hw = {p: ru.high(p) for p in range(3)}
    for p in range(3):
        assert rc.high(p) == hw[p], f"partition {p}: no open transaction, LSO {rc.high(p)} should equal HWM {hw[p]}"

    # An open transaction holds the LSO at its first offset.
    t_open = next(s.clock) + 10_000
    s.clock = itertools.count(t_open)
    a.begin_transaction()
    so = s.send(a, "open", 6)  # two per partition, at offsets hw[p], hw[p]+1
    sl = s.send(plain, "late", 3)  # one per partition, behind the open transaction
    for p in range(3):
        assert ru.high(p) == hw[p] + 3, f"partition {p}: read_uncommitted high watermark should be {hw[p] + 3}"
        assert rc.high(p) == hw[p], (
            f"partition {p}: read_committed ListOffsets(latest) should answer the LSO = first "
            f"offset of the open transaction {hw[p]}, got {rc.high(p)}")
    before = rc.c.offsets_for_times([TopicPartition("txn", p, ts0) for p in range(3)], timeout=10)
    rc_t = rc.c.offsets_for_times([TopicPartition("txn", p, t_open) for p in range(3)], timeout=10)
    ru_t = ru.c.offsets_for_times([TopicPartition("txn", p, t_open) for p in range(3)], timeout=10)
    for p in range(3):
        assert before[p].offset == 0, f"partition {p}: offsets_for_times(first timestamp) should be 0, got {before[p].offset}"
        assert ru_t[p].offset == hw[p], (
            f"partition {p}: read_uncommitted offsets_for_times(open txn's timestamp) should be "
            f"{hw[p]}, got {ru_t[p].offset}")
        assert rc_t[p].offset == -1, (
            f"partition {p}: read_committed offsets_for_times for a timestamp only found at or "
            f"past the LSO should find no offset (-1), got {rc_t[p].offset}")
    rc.settle(3)
    for p in range(3):
        leaked = [v for v in rc.values(p) if v.startswith(b"open-") or v.startswith(b"late-")]
        assert not leaked, f"partition {p}: read_committed consumer read past the LSO: {leaked}"
        pos = rc.c.position([TopicPartition("txn", p)])[0].offset
        assert pos <= hw[p], f"partition {p}: read_committed position {pos} went past the open transaction's first offset {hw[p]}"
    ru.read(ru.count() + 9)
    for p in range(3):
        assert ru.values(p) == s.order[p], f"partition {p}: read_uncommitted should see the open transaction and the later record"

    a.commit_transaction(30)
    for _, v in so:
        committed[v] = True
    for _, v in sl:
        committed[v] = True
    rc.read(sum(1 for p in range(3) for v in s.order[p] if committed[v]))
    for p in range(3):
        want = [v for v in s.order[p] if committed[v]]
        assert rc.values(p) == want, (
            f"partition {p}: after the commit read_committed should continue with the transaction's "
            f"records and then the later one: expected tail {want[-4:]}, got {rc.values(p)[-4:]}")
        assert rc.high(p) == ru.high(p) == hw[p] + 4, (
            f"partition {p}: after the commit LSO and HWM should both be {hw[p] + 4} (3 records + marker), "
            f"got LSO {rc.high(p)} HWM {ru.high(p)}")
    rc_t = rc.c.offsets_for_times([TopicPartition("txn", p, t_open) for p in range(3)], timeout=10)
    for p in range(3):
        assert rc_t[p].offset == hw[p], f"partition {p}: after the commit read_committed offsets_for_times should find {hw[p]}"
    rc.close()
    ru.close()


# --- exactly-once copy with a copier that is SIGKILLed --------------------------------------

def run_copier(bootstrap, src, dst, group, txn_id):
    """The consume-transform-produce loop of librdkafka's transactional examples."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "isolation.level": "read_committed",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "session.timeout.ms": 3000, "heartbeat.interval.ms": 500, "max.poll.interval.ms": 10000,
    })
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                         "transaction.timeout.ms": 10000, "linger.ms": 5})
    producer.init_transactions(30)
    consumer.subscribe([src])
    print("ready", flush=True)
    rng = random.Random()

    def retrying(call):
        for attempt in range(20):
            try:
                return call()
            except KafkaException as e:
                err = e.args[0]
                if err.retriable() and not err.txn_requires_abort() and not err.fatal() and attempt < 19:
                    time.sleep(0.2)
                    continue
                raise

    while True:
        recs = []
        for m in consumer.consume(num_messages=rng.randint(1, 50), timeout=0.5):
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    print(f"consumer error: {m.error()}", file=sys.stderr, flush=True)
                continue
            recs.append(m)
        if not recs:
            continue
        producer.begin_transaction()
        try:
            for m in recs:
                producer.produce(dst, key=m.key(), value=b"copy:" + m.value(), partition=m.partition())
            producer.poll(0)
            time.sleep(rng.uniform(0, 0.03))  # widen the window for a kill inside the transaction
            positions = [tp for tp in consumer.position(consumer.assignment()) if tp.offset >= 0]
            retrying(lambda: producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30))
            retrying(lambda: producer.commit_transaction(30))
        except KafkaException as e:
            err = e.args[0]
            if not err.txn_requires_abort():
                raise
            print(f"aborting: {err}", file=sys.stderr, flush=True)
            producer.abort_transaction(30)
            first = {}
            for m in recs:
                first.setdefault(m.partition(), m.offset())
            for p, o in first.items():
                consumer.seek(TopicPartition(src, p, o))
            continue
        print(f"committed {len(recs)}", flush=True)


class CopierProcess:
    def __init__(self, args, stderr_path):
        self.stderr_path = stderr_path
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(stderr_path, "a"), text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def died(self):
        rc = self.proc.poll()
        if rc is None:
            return None
        with open(self.stderr_path) as f:
            tail = f.read()[-3000:]
        return f"copier exited by itself with status {rc}; stderr tail:\n{tail}"

    def wait_commits(self, n, timeout):
        deadline = time.time() + timeout
        seen = 0
        while seen < n:
            if time.time() > deadline:
                raise AssertionError(f"copier committed {seen} transactions in {timeout} s, expected {n}")
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                msg = self.died()
                assert msg is None, msg
                continue
            if line.startswith("committed"):
                seen += 1

    def wait_ready(self, timeout):
        deadline = time.time() + timeout
        while True:
            try:
                if self.lines.get(timeout=0.2) == "ready":
                    return
            except queue.Empty:
                msg = self.died()
                assert msg is None, msg
                assert time.time() < deadline, f"copier not ready (init_transactions) after {timeout} s"

    def kill9(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def test_copy_exactly_once_with_sigkilled_copiers(broker_factory, tmp_path):
    broker = broker_factory("group.min.session.timeout.ms=1000")
    bs = broker.bootstrap
    n = 3000
    create_topics(bs, ("eos-in", 3), ("eos-out", 3))
    src = Producer({"bootstrap.servers": bs, "linger.ms": 5})
    inputs = {p: [] for p in range(3)}
    for i in range(n):
        v = b"in-%05d" % i
        src.produce("eos-in", key=v, value=v, partition=i % 3)
        inputs[i % 3].append(v)
    assert src.flush(30) == 0
    ends = {p: len(inputs[p]) for p in range(3)}

    group, txn_id = "eos-copier-group", "eos-copier"
    args = [sys.executable, os.path.abspath(__file__), bs, "eos-in", "eos-out", group, txn_id]
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"kill schedule seed {seed}")
    checker = Consumer({"bootstrap.servers": bs, "group.id": group, "enable.auto.commit": False})

    def committed_offsets():
        try:
            tps = checker.committed([TopicPartition("eos-in", p) for p in range(3)], timeout=10)
        except KafkaException:
            return None
        return {tp.partition: tp.offset for tp in tps}

    kills = 5
    for round_ in range(kills):
        c = CopierProcess(args, str(tmp_path / "copier.stderr"))
        try:
            c.wait_ready(40)
            commits = rng.randint(0, 6)
            if commits:
                c.wait_commits(commits, 60)
                time.sleep(rng.uniform(0, 0.05))
            else:
                time.sleep(rng.uniform(0, 1.5))
            msg = c.died()
            assert msg is None, msg
        finally:
            c.kill9()
        print(f"round {round_}: killed after {commits} commits; committed offsets {committed_offsets()}")

    c = CopierProcess(args, str(tmp_path / "copier.stderr"))
    try:
        deadline = time.time() + 180
        while True:
            got = committed_offsets()
            if got == ends:
                break
            msg = c.died()
            assert msg is None, msg
            assert time.time() < deadline, (
                f"copier did not finish in 180 s: group offsets {got}, input end offsets {ends}")
            time.sleep(0.5)
    finally:
        c.kill9()
    checker.close()

    rc = Reader(bs, "eos-out", 3, "read_committed")
    rc.read(n, timeout=60, grace=2.0)
    for p in range(3):
        want = [b"copy:" + v for v in inputs[p]]
        got = rc.values(p)
        dups = len(got) - len(set(got))
        missing = set(want) - set(got)
        assert got == want, (
            f"partition {p}: read_committed output should hold every input record exactly once in "
            f"input order: expected {len(want)}, got {len(got)} ({dups} duplicates, "
            f"{len(missing)} missing, e.g. {sorted(missing)[:3]}); kill seed {seed}")
    rc.close()
    ru = Reader(bs, "eos-out", 3, "read_uncommitted")
    ru.read(n, timeout=60, grace=2.0)
    print(f"output log holds {ru.count()} records read_uncommitted ({ru.count() - n} from aborted transactions)")
    ru.close()


# --- fencing --------------------------------------------------------------------------------

def fenced_producer(bs, txn_id):
    # With an error_cb, librdkafka's fatal error is reported there and by the next
    # transactional call instead of being raised from poll()/flush().
    return txn_producer(bs, txn_id, {"error_cb": lambda e: None})


def assert_fenced(err, what):
    assert err.fatal(), f"{what}: a fenced producer's commit should fail with a fatal error, got {err!r}"
    assert err.code() in FENCED_CODES, f"{what}: the error should say the producer was fenced, got {err!r}"


def test_second_producer_with_same_transactional_id_fences_the_first(broker):
    bs = broker.bootstrap
    create_topics(bs, ("fence", 2))
    s = Sender("fence", 2, int(time.time() * 1000))

    # 1. Fenced between its writes and its commit: EndTxn with the old epoch is refused.
    zombie = fenced_producer(bs, "fence-a")
    zombie.begin_transaction()
    s.send(zombie, "zombie-a", 10)
    winner = txn_producer(bs, "fence-a")  # bumps the epoch: the zombie's open transaction is aborted
    with pytest.raises(KafkaException) as ei:
        zombie.commit_transaction(30)
    assert_fenced(ei.value.args[0], "EndTxn after fencing")
    with pytest.raises(KafkaException):
        zombie.begin_transaction()
    winner.begin_transaction()
    s.send(winner, "winner-a", 6)
    winner.commit_transaction(30)

    # 2. The zombie keeps writing after the new instance committed: its records are refused.
    zombie = fenced_producer(bs, "fence-b")
    zombie.begin_transaction()
    s.send(zombie, "zombie-b", 10)
    winner = txn_producer(bs, "fence-b")
    winner.begin_transaction()
    s.send(winner, "winner-b", 6)
    winner.commit_transaction(30)
    late_errors = []
    for i in range(4):
        zombie.produce("fence", value=b"zombie-late-%d" % i, partition=i % 2,
                       on_delivery=lambda e, m: e and late_errors.append(e))
    with pytest.raises(KafkaException) as ei:
        zombie.commit_transaction(30)
    assert_fenced(ei.value.args[0], "produce after fencing")
    deadline = time.time() + 15
    while len(late_errors) < 4 and time.time() < deadline:
        zombie.poll(0.2)  # serve the delivery reports
    assert len(late_errors) == 4, f"the fenced producer's 4 late records should fail delivery, got {late_errors}"

    rc = Reader(bs, "fence", 2, "read_committed")
    rc.read(12)
    for p in range(2):
        assert all(v.startswith(b"winner-") for v in rc.values(p)), (
            f"partition {p}: read_committed should see only the new producers' records, got {rc.values(p)}")
    ru = Reader(bs, "fence", 2, "read_uncommitted")
    ru.read(32)
    for p in range(2):
        late = [v for v in ru.values(p) if v.startswith(b"zombie-late")]
        assert not late, f"partition {p}: the broker stored records from a fenced producer: {late}"
        assert ru.values(p) == s.order[p], f"partition {p}: read_uncommitted should hold every accepted record in order"
        assert rc.high(p) == ru.high(p), f"partition {p}: the fenced transactions were aborted, LSO should equal HWM"
    rc.close()
    ru.close()


# --- broker kill -9 with transactions in flight ---------------------------------------------

def test_broker_kill9_keeps_committed_and_times_out_open_transaction(broker_factory):
    broker = broker_factory("transaction.abort.timed.out.transaction.cleanup.interval.ms=500")
    bs = broker.bootstrap
    create_topics(bs, ("crash", 2))
    s = Sender("crash", 2, int(time.time() * 1000))
    plain = Producer({"bootstrap.servers": bs, "linger.ms": 0})
    done = txn_producer(bs, "crash-done")
    done.begin_transaction()
    first = s.send(done, "done1", 20)
    done.commit_transaction(30)

    hung = txn_producer(bs, "crash-hung", {"transaction.timeout.ms": 4000})
    hung.begin_transaction()
    s.send(hung, "hung", 20)  # written, never committed
    after = s.send(plain, "after", 10)
    done.begin_transaction()
    last = s.send(done, "done2", 10)
    done.commit_transaction(30)  # acknowledged, then immediately:
    broker.kill9()
    broker.start()

    visible = {v for _, v in first + after + last}
    rc = Reader(bs, "crash", 2, "read_committed")
    ru = Reader(bs, "crash", 2, "read_uncommitted")
    deadline = time.time() + 60
    while True:
        try:
            lso = [rc.high(p) for p in range(2)]
            hwm = [ru.high(p) for p in range(2)]
        except KafkaException:
            lso, hwm = None, None
        if lso is not None and lso == hwm:
            break
        assert time.time() < deadline, (
            f"the open transaction (transaction.timeout.ms=4000) was not aborted by the coordinator "
            f"within 60 s of the restart: LSO {lso}, HWM {hwm}")
        time.sleep(0.5)
    rc.read(len(visible))
    for p in range(2):
        want = [v for v in s.order[p] if v in visible]
        assert rc.values(p) == want, (
            f"partition {p}: after kill -9 and restart read_committed should see both committed "
            f"transactions and the non-transactional records, nothing of the timed-out one; "
            f"expected {len(want)}, got {len(rc.values(p))}: "
            f"{[v for v in rc.values(p) if v not in visible][:3]} unexpected, "
            f"{[v for v in want if v not in rc.values(p)][:3]} missing")
    ru.read(sum(len(o) for o in s.order.values()))
    for p in range(2):
        assert ru.values(p) == s.order[p], f"partition {p}: read_uncommitted should still hold every written record"

    # The timed-out transaction cannot be committed any more.
    with pytest.raises(KafkaException):
        hung.commit_transaction(30)
    # The coordinator still knows the committed transactional.id and keeps working.
    again = txn_producer(bs, "crash-done")
    again.begin_transaction()
    post = s.send(again, "post", 4)
    again.commit_transaction(30)
    rc.read(len(visible) + len(post))
    for p in range(2):
        assert rc.values(p)[-2:] == [v for q, v in post if q == p], f"partition {p}: new transaction after restart not visible"
    rc.close()
    ru.close()


if __name__ == "__main__":
    run_copier(*sys.argv[1:6])
