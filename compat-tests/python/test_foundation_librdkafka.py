"""Produce, consume, replay and protocol robustness with librdkafka (confluent-kafka)."""
import socket
import struct
import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import free_port


def consume(bootstrap, topic, partition, n, offset=0, timeout_s=30):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, partition, offset)])
    out = []
    deadline = time.time() + timeout_s
    while len(out) < n and time.time() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            out.append(m)
    c.close()
    return out


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_each_codec_with_duplicate_header_keys_round_trips(broker, codec):
    topic = f"codec-{codec}"
    p = Producer({"bootstrap.servers": broker.bootstrap, "compression.codec": codec, "linger.ms": 20})
    sent = []
    for i in range(200):
        key = b"key-%d" % i
        value = (b"value-%d-" % i) * (i % 7 + 1)
        headers = [("dup", b"first"), ("other", b"x%d" % i), ("dup", b"second"), ("empty", b"")]
        p.produce(topic, key=key, value=value, headers=headers)
        sent.append((key, value, headers))
    assert p.flush(30) == 0
    got = consume(broker.bootstrap, topic, 0, len(sent))
    assert [(m.key(), m.value(), m.headers()) for m in got] == sent
    assert [m.offset() for m in got] == list(range(len(sent)))


def test_keys_land_in_stable_partitions(broker_factory):
    broker = broker_factory("num.partitions=6")
    placements = []
    for run in range(2):
        p = Producer({"bootstrap.servers": broker.bootstrap})
        seen = {}
        for i in range(60):
            key = b"customer-%d" % (i % 12)
            p.produce("keyed", key=key, value=b"%d-%d" % (run, i),
                      on_delivery=lambda e, m: seen.setdefault(m.key(), set()).add(m.partition()))
        assert p.flush(30) == 0
        placements.append(seen)
    assert all(len(parts) == 1 for parts in placements[0].values()), "a key was spread over partitions"
    assert placements[0] == placements[1], "two producers placed the same key differently"
    assert len({next(iter(s)) for s in placements[0].values()}) > 1, "every key in one partition"
    # Per-key order holds within the partition.
    by_partition = {}
    for key, parts in placements[0].items():
        by_partition.setdefault(next(iter(parts)), []).append(key)
    for partition, keys in by_partition.items():
        msgs = consume(broker.bootstrap, "keyed", partition, 10 * len(keys))
        for key in keys:
            values = [tuple(int(x) for x in m.value().split(b"-")) for m in msgs if m.key() == key]
            assert values == sorted(values), "per-key order broken"
            assert len(values) == 10


def test_offsets_for_times_and_watermarks(broker):
    base = int(time.time() * 1000) - 100_000
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    for i in range(20):
        p.produce("times", value=b"%d" % i, timestamp=base + i * 1000)
        p.flush(10)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "t"})
    found = c.offsets_for_times([TopicPartition("times", 0, base + 7500)], timeout=10)
    assert found[0].offset == 8
    found = c.offsets_for_times([TopicPartition("times", 0, base)], timeout=10)
    assert found[0].offset == 0
    found = c.offsets_for_times([TopicPartition("times", 0, base + 10_000_000)], timeout=10)
    assert found[0].offset == -1  # no such record: the end
    assert c.get_watermark_offsets(TopicPartition("times", 0), timeout=10) == (0, 20)
    c.close()


def test_auto_create_uses_num_partitions_and_can_be_disabled(broker_factory):
    on = broker_factory("num.partitions=3")
    p = Producer({"bootstrap.servers": on.bootstrap})
    p.produce("auto-made", value=b"x")
    assert p.flush(30) == 0
    md = AdminClient({"bootstrap.servers": on.bootstrap}).list_topics(timeout=10)
    assert len(md.topics["auto-made"].partitions) == 3

    off = broker_factory("auto.create.topics.enable=false")
    errors = []
    p = Producer({"bootstrap.servers": off.bootstrap, "message.timeout.ms": 3000})
    p.produce("never-made", value=b"x", on_delivery=lambda e, m: errors.append(e))
    p.flush(10)
    assert errors and errors[0] is not None
    md = AdminClient({"bootstrap.servers": off.bootstrap}).list_topics(timeout=10)
    assert "never-made" not in md.topics


class CuttingProxy(threading.Thread):
    """Forwards one client to the broker; cuts the connection once, after the client has sent a
    Produce request and before the broker's answer reaches the client."""

    def __init__(self, broker_port):
        super().__init__(daemon=True)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.broker_port = broker_port
        self.cuts = 0

    def run(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.pipe, args=(client,), daemon=True).start()

    def pipe(self, client):
        try:
            upstream = socket.create_connection(("127.0.0.1", self.broker_port))
        except OSError:
            client.close()
            return
        produce_sent = threading.Event()

        def c2b():
            buf = b""
            try:
                while True:
                    data = client.recv(65536)
                    if not data:
                        break
                    buf += data
                    while len(buf) >= 6:
                        size = struct.unpack(">i", buf[:4])[0]
                        if len(buf) < 4 + size:
                            break
                        if struct.unpack(">h", buf[4:6])[0] == 0:  # Produce
                            produce_sent.set()
                        buf = buf[4 + size:]
                    upstream.sendall(data)
            except OSError:
                pass

        threading.Thread(target=c2b, daemon=True).start()
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                if produce_sent.is_set() and self.cuts == 0:
                    self.cuts += 1
                    time.sleep(0.3)  # the broker has certainly appended by now
                    break  # drop the response: the client must retry
                client.sendall(data)
        except OSError:
            pass
        for sock in (client, upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the other direction's blocked recv
            except OSError:
                pass
            sock.close()


def test_retry_after_dropped_connection_writes_no_duplicates(broker_factory):
    # The broker advertises the proxy, so every connection of the client goes through it.
    proxy = CuttingProxy(0)
    broker = broker_factory(f"advertised.listeners=PLAINTEXT://127.0.0.1:{proxy.port}", port=free_port())
    proxy.broker_port = broker.port
    proxy.start()
    p = Producer({"bootstrap.servers": f"127.0.0.1:{proxy.port}", "enable.idempotence": True,
                  "linger.ms": 50, "retry.backoff.ms": 100})
    acked = []
    for i in range(100):
        p.produce("retried", value=b"m-%03d" % i, on_delivery=lambda e, m: acked.append((e, m.offset())))
    assert p.flush(30) == 0
    assert proxy.cuts == 1, "the proxy never cut a produce response"
    assert all(e is None for e, _ in acked)
    got = consume(broker.bootstrap, "retried", 0, 200, timeout_s=5)
    values = [m.value() for m in got]
    assert values == [b"m-%03d" % i for i in range(100)], "a retried batch was written twice or lost"


def raw_request(port, payload):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(5)
    s.sendall(payload)
    try:
        return s.recv(1024)
    except (ConnectionResetError, socket.timeout):
        return b""
    finally:
        s.close()


def test_malformed_and_oversized_frames_close_only_that_connection(broker):
    healthy = Producer({"bootstrap.servers": broker.bootstrap})
    healthy.produce("survivor", value=b"before")
    assert healthy.flush(10) == 0
    # Oversized: a 200 MB length prefix, over socket.request.max.bytes.
    assert raw_request(broker.port, struct.pack(">i", 200_000_000) + b"\0" * 16) == b""
    # Negative length.
    assert raw_request(broker.port, struct.pack(">i", -5)) == b""
    # Garbage body: unknown API key.
    assert raw_request(broker.port, struct.pack(">i", 10) + b"\x7f\x7f" + b"\x01" * 8) == b""
    # A Produce v3 declaring 2^31 topics in 14 bytes (used to abort the process).
    body = struct.pack(">hhi", 0, 3, 1) + struct.pack(">h", 4) + b"evil" + b"\xff\xff\x00\x01\x00\x00\x00\x00\x7f\xff\xff\xff"
    assert raw_request(broker.port, struct.pack(">i", len(body)) + body) == b""
    assert broker.proc.poll() is None, "the broker died"
    healthy.produce("survivor", value=b"after")
    assert healthy.flush(10) == 0
    assert [m.value() for m in consume(broker.bootstrap, "survivor", 0, 2)] == [b"before", b"after"]
