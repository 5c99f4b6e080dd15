"""A tiny Kafka wire-protocol client (Python standard library only) for the benchmark harness.

It does the few things the load generators do not: create topics and wait for their leaders,
produce one record as fast as possible after a broker starts (start-to-first-produce), and hold
idle connections open (W7). Only non-flexible request versions that both Kafka 4.x and Oxbow
accept are used: ApiVersions v0, Metadata v4, CreateTopics v2, Produce v3.
"""

import socket
import struct
import time

# --- CRC-32C (Castagnoli), needed for the v2 record batch -------------------------------------

_CRC32C_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC32C_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# --- encoding helpers -------------------------------------------------------------------------

def _varint(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)  # zigzag
    out = bytearray()
    while True:
        b = z & 0x7F
        z >>= 7
        if z:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _str(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def record_batch(value: bytes, ts_ms: int) -> bytes:
    rec_body = (
        b"\x00"            # attributes
        + _varint(0)       # timestamp delta
        + _varint(0)       # offset delta
        + _varint(-1)      # key: null
        + _varint(len(value)) + value
        + _varint(0)       # no headers
    )
    record = _varint(len(rec_body)) + rec_body
    after_crc = (
        struct.pack(">hiqqqhii", 0, 0, ts_ms, ts_ms, -1, -1, -1, 1)  # attrs..record count
        + record
    )
    crc = crc32c(after_crc)
    after_len = struct.pack(">ibI", -1, 2, crc) + after_crc  # leader epoch, magic, crc
    return struct.pack(">qi", 0, len(after_len)) + after_len


class Reader:
    def __init__(self, buf: bytes):
        self.buf, self.pos = buf, 0

    def take(self, fmt: str):
        v = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.buf[self.pos:self.pos + n].decode()
        self.pos += n
        return s


# --- connection -------------------------------------------------------------------------------

class Conn:
    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.corr = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _recv_exact(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            c = self.sock.recv(n - got)
            if not c:
                raise ConnectionError("connection closed by broker")
            chunks.append(c)
            got += len(c)
        return b"".join(chunks)

    def request(self, api_key: int, version: int, body: bytes) -> Reader:
        self.corr += 1
        header = struct.pack(">hhi", api_key, version, self.corr) + _str("oxbow-bench")
        msg = header + body
        self.sock.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", self._recv_exact(4))[0]
        r = Reader(self._recv_exact(size))
        corr = r.take(">i")
        if corr != self.corr:
            raise ConnectionError(f"correlation id {corr} != {self.corr}")
        return r

    def api_versions(self) -> int:
        r = self.request(18, 0, b"")
        return r.take(">h")

    def create_topic(self, name: str, partitions: int, timeout_ms: int = 30000) -> int:
        body = (
            struct.pack(">i", 1) + _str(name) + struct.pack(">ih", partitions, 1)
            + struct.pack(">i", 0) + struct.pack(">i", 0)  # no assignments, no configs
            + struct.pack(">ib", timeout_ms, 0)
        )
        r = self.request(19, 2, body)
        r.take(">i")  # throttle
        n = r.take(">i")
        err = 0
        for _ in range(n):
            r.string()
            e = r.take(">h")
            r.string()
            if e not in (0, 36):  # 36 = TOPIC_ALREADY_EXISTS
                err = e
        return err

    def leaders(self, name: str):
        """Returns {partition: leader id} for topic `name`, or None if the topic has an error."""
        body = struct.pack(">i", 1) + _str(name) + b"\x00"  # allow_auto_topic_creation=false
        r = self.request(3, 4, body)
        r.take(">i")  # throttle
        for _ in range(r.take(">i")):  # brokers
            r.take(">i"); r.string(); r.take(">i"); r.string()
        r.string()  # cluster id
        r.take(">i")  # controller
        out = None
        for _ in range(r.take(">i")):
            terr = r.take(">h")
            r.string()
            r.take(">b")
            parts = {}
            for _ in range(r.take(">i")):
                perr, idx, leader = r.take(">hii")
                for _ in range(r.take(">i")):
                    r.take(">i")
                for _ in range(r.take(">i")):
                    r.take(">i")
                parts[idx] = leader if perr == 0 else -1
            if terr == 0:
                out = parts
        return out

    def produce_one(self, topic: str, partition: int, value: bytes, acks: int = -1,
                    timeout_ms: int = 30000) -> int:
        batch = record_batch(value, int(time.time() * 1000))
        body = (
            struct.pack(">h", -1)  # transactional id: null
            + struct.pack(">hi", acks, timeout_ms)
            + struct.pack(">i", 1) + _str(topic)
            + struct.pack(">i", 1) + struct.pack(">i", partition)
            + struct.pack(">i", len(batch)) + batch
        )
        r = self.request(0, 3, body)
        r.take(">i")
        r.string()
        r.take(">i")
        r.take(">i")
        return r.take(">h")


def wait_port(host: str, port: int, deadline: float) -> Conn:
    while True:
        try:
            return Conn(host, port, timeout=5.0)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def ensure_topic(host: str, port: int, name: str, partitions: int, timeout: float = 60.0):
    """Creates `name` and waits until every partition has a leader."""
    deadline = time.monotonic() + timeout
    c = wait_port(host, port, deadline)
    try:
        while True:
            err = c.create_topic(name, partitions)
            if err == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"CreateTopics {name}: error {err}")
            time.sleep(0.05)
        while True:
            parts = c.leaders(name)
            if parts and len(parts) == partitions and all(v >= 0 for v in parts.values()):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {name}: partitions without leader: {parts}")
            time.sleep(0.05)
    finally:
        c.close()


def first_produce(host: str, port: int, topic: str, t0: float, timeout: float = 120.0) -> float:
    """Loops connect -> create `topic` -> produce one record (acks=all) until the produce
    succeeds; returns seconds since `t0` (a time.monotonic() taken just before the broker
    process was spawned)."""
    deadline = t0 + timeout
    created = False
    while True:
        c = None
        try:
            c = wait_port(host, port, deadline)
            while True:
                if not created:
                    err = c.create_topic(topic, 1)
                    if err == 0:
                        created = True
                if created:
                    err = c.produce_one(topic, 0, b"first")
                    if err == 0:
                        return time.monotonic() - t0
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no successful produce within {timeout}s (error {err})")
                time.sleep(0.005)
        except (OSError, ConnectionError, struct.error):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)
        finally:
            if c is not None:
                c.close()


def open_idle(host: str, port: int, n: int):
    """Opens `n` connections, each of which completes one ApiVersions round trip, and returns
    them (the caller keeps them idle and closes them)."""
    conns = []
    for _ in range(n):
        c = Conn(host, port)
        c.api_versions()
        conns.append(c)
    return conns
