#!/usr/bin/env python3
"""Oxbow vs Apache Kafka on the same machine. Called by bench/run.sh, which builds/downloads
everything first and passes the paths in the environment. Standard library only.

Each *session* starts one broker in one mode on a fresh data directory, measures its start,
runs every workload against it, and stops it. Sessions alternate between the modes
(oxbow, kafka, oxbow-relaxed, kafka-flush1, oxbow, kafka, ...); a figure is the median over
RUNS sessions of its mode.
"""

import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
import base64

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kclient  # noqa: E402

HOST = "127.0.0.1"
BENCH = os.path.dirname(os.path.abspath(__file__))
ENV = os.environ


def env_int(name, default):
    return int(ENV.get(name, default))


RECORDS = env_int("RECORDS", 1_000_000)
RUNS = env_int("RUNS", 3)
LAT_SECONDS = env_int("LAT_SECONDS", 10)
LAT_RATES = [int(x) for x in ENV.get("LAT_RATES", "1000,10000").split(",")]
E2E_RATE = env_int("E2E_RATE", 10000)
IDLE_CONNS = env_int("IDLE_CONNS", 200)
MODES = ENV.get("MODES", "oxbow,kafka,oxbow-relaxed,kafka-flush1").split(",")
WORKLOADS = ENV.get("WORKLOADS", "W1,W2,W3,W4,W5,W6,W7,W8").split(",")
TXN_MS = env_int("TXN_MS", 100)
TOOLS = ENV.get("TOOLS", "rdkafka,java").split(",")
OXBOW_PORT = env_int("OXBOW_PORT", 19092)
KAFKA_PORT = env_int("KAFKA_PORT", 29092)
KAFKA_CONTROLLER_PORT = env_int("KAFKA_CONTROLLER_PORT", 29093)
KAFKA_HEAP = ENV.get("KAFKA_HEAP_OPTS", "-Xmx1G -Xms1G")
PERF = ENV.get("PERF", "1") == "1"
WORK = ENV.get("BENCH_WORK", os.path.join(BENCH, "work"))
OUT = ENV.get("RESULTS", os.path.join(BENCH, "RESULTS.md"))
OXBOW_BIN = ENV["OXBOW_BIN"]
RDKAFKA_PERF = ENV["RDKAFKA_PERF"]
KAFKA_JARS = ENV["KAFKA_JARS"]
TOOLS_JARS = ENV["KAFKA_TOOLS_JARS"]
KAFKA_VERSION = ENV.get("KAFKA_VERSION", "?")
KAFKA_TOOLS_VERSION = ENV.get("KAFKA_TOOLS_VERSION", "?")
COMMAND = ENV.get("BENCH_COMMAND", "bash bench/run.sh")

# Kafka's bin/kafka-run-class.sh defaults (KAFKA_JVM_PERFORMANCE_OPTS) plus KAFKA_HEAP_OPTS.
KAFKA_JVM = KAFKA_HEAP.split() + [
    "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15", "-Djava.awt.headless=true",
]
TICKS = os.sysconf("SC_CLK_TCK")

SESS_DIR = os.path.join(WORK, "sessions")
LOG = open(os.path.join(WORK, "bench.log"), "a")


def log(*a):
    line = time.strftime("%H:%M:%S ") + " ".join(str(x) for x in a)
    print(line, flush=True)
    LOG.write(line + "\n")
    LOG.flush()


# --- /proc sampling ---------------------------------------------------------------------------

def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def proc_user_sys(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def proc_status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def proc_write_bytes(pid):
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    return None


# --- brokers ----------------------------------------------------------------------------------

class Broker:
    def __init__(self, mode, sess):
        self.mode = mode
        self.kind = "oxbow" if mode.startswith("oxbow") else "kafka"
        self.port = OXBOW_PORT if self.kind == "oxbow" else KAFKA_PORT
        self.dir = os.path.join(SESS_DIR, sess)
        self.data = os.path.join(self.dir, "data")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.data)
        self.proc = None
        self.prep_s = None

    def command(self):
        if self.kind == "oxbow":
            cmd = [OXBOW_BIN, "serve",
                   "--override", f"listeners=PLAINTEXT://{HOST}:{self.port}",
                   "--override", f"log.dirs={self.data}",
                   "--override", "group.initial.rebalance.delay.ms=0"]
            if self.mode == "oxbow-relaxed":
                cmd += ["--override", "oxbow.durability=relaxed"]
            return cmd
        props = os.path.join(self.dir, "server.properties")
        lines = [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers={HOST}:{KAFKA_CONTROLLER_PORT}",
            f"listeners=PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{KAFKA_CONTROLLER_PORT}",
            f"advertised.listeners=PLAINTEXT://{HOST}:{self.port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={self.data}",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
        ]
        if self.mode == "kafka-flush1":
            lines.append("log.flush.interval.messages=1")
        with open(props, "w") as f:
            f.write("\n".join(lines) + "\n")
        log4j = f"-Dlog4j2.configurationFile={os.path.join(BENCH, 'kafka', 'log4j2.properties')}"
        if not os.path.exists(os.path.join(self.data, "meta.properties")):
            cluster = "-"
            while cluster.startswith("-"):  # an id starting with '-' would read as an option
                cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            t = time.monotonic()
            subprocess.run(["java", log4j, "-cp", os.path.join(KAFKA_JARS, "*"),
                            "kafka.tools.StorageTool", "format", "-t", cluster, "-c", props,
                            "--standalone"],
                           check=True, stdout=self.logf(), stderr=subprocess.STDOUT)
            self.prep_s = time.monotonic() - t
        return ["java"] + KAFKA_JVM + [log4j, "-cp", os.path.join(KAFKA_JARS, "*"),
                                       "kafka.Kafka", props]

    def logf(self):
        return open(os.path.join(self.dir, "broker.log"), "a")

    def start(self):
        """Starts the broker; returns seconds from spawn to the first successful produce."""
        cmd = self.command()
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=self.logf(), stderr=subprocess.STDOUT,
                                     cwd=self.dir)
        return kclient.first_produce(HOST, self.port, "probe", t0)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


# --- load generators --------------------------------------------------------------------------

class WorkloadError(Exception):
    pass


def run_tool(name, cmd, timeout, logdir):
    path = os.path.join(logdir, name.replace("/", "_") + ".out")
    with open(path, "w") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        t = time.monotonic()
        try:
            p = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise WorkloadError(f"timed out after {timeout}s")
        wall = time.monotonic() - t
    out = open(path).read()
    if p.returncode != 0:
        tail = " | ".join(out.strip().splitlines()[-3:])[-300:]
        raise WorkloadError(f"exit {p.returncode}: {tail}")
    return out, wall


def rd_common(port):
    return [RDKAFKA_PERF, "-b", f"{HOST}:{port}", "-X", "client.id=oxbow-bench"]


def rd_produce(port, topic, size, count, logdir, name, partition=0, linger=5, rate=None,
               latfile=None, timeout=None):
    cmd = rd_common(port) + ["-P", "-t", topic, "-s", str(size), "-c", str(count), "-a", "-1",
                             "-X", f"linger.ms={linger}", "-X", "batch.size=1048576"]
    if partition is not None:
        cmd += ["-p", str(partition)]
    if rate:
        cmd += ["-r", str(rate)]
    if latfile:
        cmd += ["-l", "-A", latfile]
    out, wall = run_tool(name, cmd, timeout or max(180, count / 2000), logdir)
    # The last of its periodic summary lines is the final one.
    m = re.findall(r"% (\d+) messages produced \((\d+) bytes\), (\d+) delivered \(offset -?\d+, "
                   r"(\d+) failed\) in (\d+)ms", out)
    if not m:
        raise WorkloadError("no summary line from rdkafka_performance")
    msgs, nbytes, ok, failed, ms = (int(x) for x in m[-1])
    if failed or ok != count:
        raise WorkloadError(f"{ok}/{count} delivered, {failed} failed")
    secs = ms / 1000.0
    return {"msgs_s": ok / secs, "MB_s": ok * size / 1e6 / secs, "bytes": ok * size,
            "secs": secs}


def rd_consume(port, topic, count, logdir, name, partition=0, offset="beginning", latfile=None,
               timeout=None, popen=False):
    cmd = rd_common(port) + ["-C", "-t", topic, "-p", str(partition), "-o", offset,
                             "-c", str(count)]
    if latfile:
        cmd += ["-l", "-A", latfile]
    if popen:
        path = os.path.join(logdir, name.replace("/", "_") + ".out")
        f = open(path, "w")
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT), path
    out, wall = run_tool(name, cmd, timeout or max(180, count / 5000), logdir)
    return parse_rd_consume(out, count)


def parse_rd_consume(out, count):
    m = re.findall(r"% (\d+) messages \((\d+) bytes\) consumed in (\d+)ms", out)
    if not m:
        raise WorkloadError("no summary line from rdkafka_performance")
    msgs, nbytes, ms = (int(x) for x in m[-1])
    if msgs < count:
        raise WorkloadError(f"consumed {msgs}/{count}")
    secs = max(ms, 1) / 1000.0
    return {"msgs_s": msgs / secs, "MB_s": nbytes / 1e6 / secs, "bytes": nbytes, "secs": secs}


def java_tool(cls):
    return ["java", "-Xmx512M", f"-Dlog4j2.configurationFile={os.path.join(BENCH, 'kafka', 'log4j2-tools.properties')}",
            "-cp", os.path.join(TOOLS_JARS, "*"), f"org.apache.kafka.tools.{cls}"]


PP_LINE = re.compile(r"(\d+) (steady state )?records sent, ([\d.]+) records/sec \([\d.]+ MB/sec\), "
                     r"([\d.]+) ms avg latency, [\d.]+ ms max latency, (\d+) ms 50th, \d+ ms 95th, "
                     r"(\d+) ms 99th, (\d+) ms 99.9th")


def java_produce(port, topic, size, count, logdir, name, linger=5, rate=-1, warmup=0,
                 timeout=None, txn_ms=None):
    cmd = java_tool("ProducerPerformance") + [
        "--topic", topic, "--num-records", str(count), "--record-size", str(size),
        "--throughput", str(rate), "--command-property", f"bootstrap.servers={HOST}:{port}",
        "acks=all", f"linger.ms={linger}", "batch.size=1048576", "client.id=oxbow-bench"]
    if warmup:
        cmd += ["--warmup-records", str(warmup)]
    if txn_ms:
        # A transactional producer that commits every txn_ms (ProducerPerformance's own loop).
        cmd += ["--transactional-id", f"oxbow-bench-{uuid.uuid4().hex[:8]}",
                "--transaction-duration-ms", str(txn_ms)]
    out, wall = run_tool(name, cmd, timeout or max(180, count / 2000), logdir)
    lines = PP_LINE.findall(out)
    total = [x for x in lines if not x[1]]
    if not total:
        raise WorkloadError("no summary line from ProducerPerformance")
    sent = int(total[-1][0])
    if sent != count:
        raise WorkloadError(f"sent {sent}/{count}")
    if re.search(r"Exception|ERROR", out):
        raise WorkloadError("errors in ProducerPerformance output")
    # With --warmup-records, the "steady state" line (printed after the total) is the one used.
    x = lines[-1]
    rps = float(x[2])
    return {"msgs_s": rps, "MB_s": rps * size / 1e6, "bytes": sent * size,
            "avg_ms": float(x[3]), "p50_ms": float(x[4]), "p99_ms": float(x[5]),
            "p999_ms": float(x[6])}


def java_consume(port, topic, count, logdir, name, timeout=None):
    cmd = java_tool("ConsumerPerformance") + [
        "--bootstrap-server", f"{HOST}:{port}", "--topic", topic, "--num-records", str(count),
        "--group", f"bench-{uuid.uuid4().hex[:8]}", "--timeout", "60000",
        "--command-property", "client.id=oxbow-bench"]
    out, wall = run_tool(name, cmd, timeout or max(180, count / 5000), logdir)
    lines = [ln for ln in out.splitlines() if ln.count(",") >= 9 and not ln.startswith("start")]
    if not lines:
        raise WorkloadError("no result row from ConsumerPerformance")
    f = [x.strip() for x in lines[-1].split(",")]
    # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
    # rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
    mib, nmsg, fetch_ms = float(f[2]), int(f[4]), float(f[7])
    if nmsg < count:
        raise WorkloadError(f"consumed {nmsg}/{count}")
    secs = max(fetch_ms, 1) / 1000.0
    return {"msgs_s": nmsg / secs, "MB_s": mib * 1.048576 / secs, "bytes": int(mib * 1048576),
            "secs": secs, "rebalance_ms": float(f[6])}


def percentiles(path, skip=0):
    """Latency percentiles (ms) from a file of per-record microseconds, after dropping the first
    `skip` records (warm-up)."""
    with open(path) as f:
        v = sorted([int(x) for x in f if x.strip()][skip:])
    if not v:
        raise WorkloadError("no latency samples")

    def p(q):
        return v[min(len(v) - 1, int(q * len(v)))] / 1000.0

    return {"p50_ms": p(0.50), "p99_ms": p(0.99), "p999_ms": p(0.999),
            "max_ms": v[-1] / 1000.0, "samples": len(v)}


# --- one session ------------------------------------------------------------------------------

def children_cpu_s():
    """User+system CPU-seconds of every finished (waited-for) child process so far: the load
    generators, which run as children of this script."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def measured(broker, res, key, fn, *, setup=None, bytes_key="bytes"):
    """Runs setup() (not measured), then fn(), and stores fn's figures plus the broker's
    CPU-seconds, disk writes and wall time under res[key]; stores {"error": ...} if either
    fails."""
    if not broker.alive():
        res[key] = {"error": "broker not running"}
        return None
    try:
        if setup:
            setup()
        cpu0, wb0 = proc_cpu_s(broker.pid), proc_write_bytes(broker.pid)
        us0 = proc_user_sys(broker.pid)
        gen0 = children_cpu_s()
        t = time.monotonic()
        r = fn()
    except Exception as e:  # noqa: BLE001 - a failing workload is reported, the run goes on
        res[key] = {"error": str(e)[:300]}
        log(f"  {key}: FAILED {e}")
        return None
    wall = time.monotonic() - t
    if not broker.alive():
        res[key] = {"error": "broker exited during the workload"}
        return None
    cpu = proc_cpu_s(broker.pid) - cpu0
    wb = proc_write_bytes(broker.pid) - wb0
    us1 = proc_user_sys(broker.pid)
    r["broker_user_s"], r["broker_sys_s"] = us1[0] - us0[0], us1[1] - us0[1]
    r["broker_cpu_s"] = cpu
    r["loadgen_cpu_s"] = children_cpu_s() - gen0
    r["wall_s"] = wall
    # Share of the machine's CPUs that broker and load generator used together: near 100 %
    # means the run was CPU-bound, so a broker can only go faster by using less CPU.
    r["cpu_busy_pct"] = 100 * (cpu + r["loadgen_cpu_s"]) / (wall * (os.cpu_count() or 1))
    if r.get(bytes_key):
        r["cpu_s_per_GB"] = cpu / (r[bytes_key] / 1e9)
        r["loadgen_cpu_s_per_GB"] = r["loadgen_cpu_s"] / (r[bytes_key] / 1e9)
        r["disk_write_per_byte"] = wb / r[bytes_key]
    res[key] = r
    brief = {k: round(v, 3) for k, v in r.items() if isinstance(v, float)}
    log(f"  {key}: {brief}")
    return r


def topic(port, name, partitions=1):
    return lambda: kclient.ensure_topic(HOST, port, name, partitions)


def run_workloads(b, res):
    port, logdir, n = b.port, b.dir, RECORDS
    w = res.setdefault("w", {})

    for tool in TOOLS:
        rd = tool == "rdkafka"
        if "W1" in WORKLOADS:
            t = f"w1-{tool}"
            fn = (lambda t=t: rd_produce(port, t, 1024, n, logdir, "W1-rdkafka")) if rd else \
                (lambda t=t: java_produce(port, t, 1024, n, logdir, "W1-java"))
            measured(b, w, f"W1/{tool}", fn, setup=topic(port, t))
        if "W2" in WORKLOADS:
            t = f"w2-{tool}"
            fn = (lambda t=t: rd_produce(port, t, 100, n, logdir, "W2-rdkafka")) if rd else \
                (lambda t=t: java_produce(port, t, 100, n, logdir, "W2-java"))
            measured(b, w, f"W2/{tool}", fn, setup=topic(port, t))
        if "W3" in WORKLOADS:
            t = f"w3-{tool}"
            fn = (lambda t=t: rd_produce(port, t, 1024, n, logdir, "W3-rdkafka",
                                         partition=None)) if rd else \
                (lambda t=t: java_produce(port, t, 1024, n, logdir, "W3-java"))
            measured(b, w, f"W3/{tool}", fn, setup=topic(port, t, 8))

    if "W4" in WORKLOADS:
        # Consumes the 1 KiB records W1 stored (the rdkafka topic, else the Java one).
        src = next((f"w1-{t}" for t in TOOLS if "error" not in w.get(f"W1/{t}", {"error": 1})),
                   None)
        for tool in TOOLS:
            if src is None:
                w[f"W4/{tool}"] = {"error": "no W1 topic to consume (W1 failed or not run)"}
                continue
            fn = (lambda: rd_consume(port, src, n, logdir, "W4-rdkafka")) \
                if tool == "rdkafka" else \
                (lambda: java_consume(port, src, n, logdir, "W4-java"))
            measured(b, w, f"W4/{tool}", fn)

    if "W5" in WORKLOADS:
        for rate in LAT_RATES:
            cnt = rate * (LAT_SECONDS + 1)  # the first second is warm-up, not counted
            for tool in TOOLS:
                t = f"w5-{rate}-{tool}"
                if tool == "rdkafka":
                    def fn(t=t, cnt=cnt, rate=rate):
                        lat = os.path.join(logdir, f"{t}.lat")
                        r = rd_produce(port, t, 1024, cnt, logdir, f"W5-{rate}-rdkafka",
                                       linger=0, rate=rate, latfile=lat)
                        r.update(percentiles(lat, skip=rate))
                        return r
                else:
                    def fn(t=t, cnt=cnt, rate=rate):
                        return java_produce(port, t, 1024, cnt, logdir, f"W5-{rate}-java",
                                            linger=0, rate=rate, warmup=rate)
                measured(b, w, f"W5@{rate}/{tool}", fn, setup=topic(port, t))

    if "W6" in WORKLOADS and "rdkafka" in TOOLS:
        cnt = E2E_RATE * (LAT_SECONDS + 1)  # the first second is warm-up, not counted

        def fn():
            clat = os.path.join(logdir, "w6-consumer.lat")
            cons, cpath = rd_consume(port, "w6", cnt, logdir, "W6-consumer", offset="end",
                                     latfile=clat, popen=True)
            try:
                time.sleep(3)  # let the consumer reach the end of the (empty) log
                rd_produce(port, "w6", 1024, cnt, logdir, "W6-producer", linger=0,
                           rate=E2E_RATE, latfile=os.path.join(logdir, "w6-producer.lat"))
                cons.wait(timeout=60)
            except subprocess.TimeoutExpired:
                raise WorkloadError("consumer did not receive every record within 60 s")
            finally:
                if cons.poll() is None:
                    cons.kill()
                    cons.wait()
            r = parse_rd_consume(open(cpath).read(), cnt)
            r = {"msgs_s": r["msgs_s"]}
            r.update(percentiles(clat, skip=E2E_RATE))
            return r
        measured(b, w, "W6/rdkafka", fn, setup=topic(port, "w6"))

    if "W8" in WORKLOADS and "java" in TOOLS:
        # Transactional produce: 1 KiB records, a commit every TXN_MS ms.
        measured(b, w, "W8/java",
                 lambda: java_produce(port, "w8", 1024, n, logdir, "W8-java", txn_ms=TXN_MS),
                 setup=topic(port, "w8"))

    if "W7" in WORKLOADS and "rdkafka" in TOOLS:
        conns = []
        rss = {}

        def setup():
            kclient.ensure_topic(HOST, port, "w7", 1)
            rss[0] = proc_status_kb(b.pid, "VmRSS")
            conns.extend(kclient.open_idle(HOST, port, IDLE_CONNS))
            time.sleep(2)
            rss[1] = proc_status_kb(b.pid, "VmRSS")

        def fn():
            r = rd_produce(port, "w7", 1024, n, logdir, "W7-rdkafka")
            for c in conns:  # the idle connections must still be usable
                c.api_versions()
            return r
        try:
            r = measured(b, w, "W7/rdkafka", fn, setup=setup)
            if r is not None:
                r["rss_per_idle_conn_kb"] = (rss[1] - rss[0]) / IDLE_CONNS
        finally:
            for c in conns:
                c.close()


def session(mode, run_no):
    sess = f"run{run_no}-{mode}"
    b = Broker(mode, sess)
    res = {"mode": mode, "run": run_no, "loadavg_before": os.getloadavg()[0]}
    log(f"session {sess} (load average {res['loadavg_before']:.2f})")
    try:
        try:
            res["start_to_first_produce_s"] = b.start()
        except Exception as e:  # noqa: BLE001 - any start failure is reported as such
            res["error"] = f"start failed: {e}"[:300]
            log(f"  start FAILED: {e}")
            return res
        if b.prep_s is not None:
            res["storage_format_s"] = b.prep_s
        log(f"  start-to-first-produce {res['start_to_first_produce_s']:.3f}s")
        time.sleep(3)
        res["idle_rss_kb"] = proc_status_kb(b.pid, "VmRSS")
        try:
            run_workloads(b, res)
        except Exception as e:  # noqa: BLE001 - report, then go on with the next session
            res["error"] = f"session aborted: {e}"[:300]
            log(f"  session aborted: {e}")
        if b.alive():
            res["peak_rss_kb"] = proc_status_kb(b.pid, "VmHWM")
            res["session_cpu_s"] = proc_cpu_s(b.pid)
        else:
            res["error"] = f"broker exited (code {b.proc.returncode})"
    finally:
        res["stop_rc"] = b.stop()
        du = sum(os.path.getsize(os.path.join(dp, f))
                 for dp, _, fs in os.walk(b.data) for f in fs)
        res["data_dir_bytes"] = du
        shutil.rmtree(b.data, ignore_errors=True)  # keep the logs, drop the data
        os.sync()  # leave no dirty pages behind for the next session's broker to pay for
        time.sleep(1)
    return res


def perf_profile():
    """One extra, unscored Oxbow session: W1 (rdkafka) under `perf record`, for where the time
    goes. Best effort."""
    if not shutil.which("perf"):
        return None
    out = {}
    for mode in ("oxbow", "kafka"):
        b = Broker(mode, f"perf-{mode}")
        try:
            b.start()
            kclient.ensure_topic(HOST, b.port, "w1-perf", 1)
            data = os.path.join(b.dir, "perf.data")
            pr = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-p", str(b.pid), "-o",
                                   data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
            try:
                rd_produce(b.port, "w1-perf", 1024, RECORDS, b.dir, "perf-W1")
            finally:
                pr.send_signal(signal.SIGINT)
                pr.wait(timeout=60)
            rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                                  "--sort", "dso,sym", "-g", "none", "--percent-limit", "1.5"],
                                 capture_output=True, text=True, timeout=300).stdout
            rows = [ln.rstrip() for ln in rep.splitlines() if ln.strip() and not
                    ln.startswith("#")]
            by_dso = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                                     "--sort", "dso", "-g", "none", "--percent-limit", "1"],
                                    capture_output=True, text=True, timeout=300).stdout
            dsos = [ln.rstrip() for ln in by_dso.splitlines() if ln.strip() and not
                    ln.startswith("#")]
            out[mode] = ["by binary:"] + dsos[:12] + ["", "by symbol (>= 1.5 %):"] + rows[:25]
            os.remove(data)
        except Exception as e:  # noqa: BLE001 - the profile is optional
            out[mode] = [f"(profile failed: {e})"]
        finally:
            b.stop()
            shutil.rmtree(b.data, ignore_errors=True)
    return out


# --- report -----------------------------------------------------------------------------------

LABEL = {"oxbow": "Oxbow default (fsync before ack)",
         "oxbow-relaxed": "Oxbow relaxed (ack from page cache)",
         "kafka": "Kafka default (ack from page cache)",
         "kafka-flush1": "Kafka log.flush.interval.messages=1 (fsync per append)"}
SHORT = {"oxbow": "Oxbow default", "oxbow-relaxed": "Oxbow relaxed", "kafka": "Kafka default",
         "kafka-flush1": "Kafka flush=1"}
PAIRS = [("oxbow", "kafka", "Ox default ÷ Kafka default"),
         ("oxbow-relaxed", "kafka", "Ox relaxed ÷ Kafka default"),
         ("oxbow", "kafka-flush1", "Ox default ÷ Kafka flush=1")]


def machine():
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                                  timeout=20).stdout.strip()
        except Exception:  # noqa: BLE001
            return "?"
    cpu = sh("lscpu | sed -n 's/^Model name: *//p' | head -1")
    mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    dev = sh(f"df -PT {WORK} | tail -1 | awk '{{print $1\" (\"$2\")\"}}'")
    reporting = "/sys/module/page_reporting/parameters/reported_kib"
    if os.path.exists(reporting):
        # A VM whose freed guest pages go back to the host: new page-cache pages then cost a host
        # page fault on first touch, which shows as kernel time in whoever writes them.
        mem += (f"; free page reporting to the hypervisor is on ({int(sh('cat ' + reporting) or 0) // 1048576} "
                "GiB reported since boot), so writing into fresh page cache is slow and varies run to run")
    return {
        "cpu": f"{cpu}, {os.cpu_count()} logical CPUs (shared by broker and load generator)",
        "memory": mem,
        "kernel": platform.release(),
        "disk": f"{dev}, data directories under {os.path.relpath(SESS_DIR, os.path.dirname(BENCH))}",
        "java": sh("java -version 2>&1 | head -1"),
        "rustc": sh("rustc --version"),
        "oxbow": sh(f"cd {BENCH}/.. && git rev-parse --short HEAD") +
        (" + uncommitted changes" if sh(f"cd {BENCH}/.. && git status --porcelain -- . ':!bench'")
         else ""),
        "librdkafka": ENV.get("RDKAFKA_VERSION", "?") + " (rdkafka_performance, built from the source in the rdkafka-sys crate)",
    }


def med(values):
    return statistics.median(values) if values else None


def collect(results, mode, getter):
    vals, errs = [], []
    for r in results:
        if r["mode"] != mode:
            continue
        try:
            v = getter(r)
        except KeyError:
            v = None
        if isinstance(v, str):
            errs.append(v)
        elif v is not None:
            vals.append(v)
        else:
            errs.append(r.get("error", "not measured"))
    return vals, errs


def wget(key, field):
    def g(r):
        if "error" in r and "w" not in r:
            return r["error"]
        x = r["w"].get(key)
        if x is None:
            return None
        if "error" in x:
            return x["error"]
        return x.get(field)
    return g


def sget(field, scale=1.0):
    def g(r):
        if field not in r:
            return r.get("error")
        return r[field] * scale
    return g


def fmt(v, digits=None):
    if v is None:
        return "—"
    if digits is None:
        a = abs(v)
        digits = 0 if a >= 1000 else 1 if a >= 10 else 2 if a >= 0.1 else 3
    return f"{v:,.{digits}f}"


def loadgen_rows(key, tool):
    """The load generator's CPU per GB and how busy the machine was, for one workload."""
    return [(f"{key} load generator CPU-s per GB, {tool}",
             wget(f"{key}/{tool}", "loadgen_cpu_s_per_GB"), "low", None),
            (f"{key} broker + load generator CPU busy %, {tool}",
             wget(f"{key}/{tool}", "cpu_busy_pct"), "low", None)]


# (row label, getter, better: "high"/"low", target ratio or None)
def rows():
    r = []
    for key, what in [("W1", "W1 produce 1 KiB ×1 partition"), ("W2", "W2 produce 100 B ×1 partition"),
                      ("W3", "W3 produce 1 KiB ×8 partitions")]:
        tgt = 1.5 if key in ("W1", "W2", "W3") else None
        for tool in TOOLS:
            r.append((f"{what}, {tool}: MB/s", wget(f"{key}/{tool}", "MB_s"), "high", tgt))
            r.append((f"{what}, {tool}: msg/s", wget(f"{key}/{tool}", "msgs_s"), "high", None))
        for tool in TOOLS:
            r.append((f"{key} broker CPU-s per GB, {tool}", wget(f"{key}/{tool}", "cpu_s_per_GB"),
                      "low", 0.5))
        for tool in TOOLS:
            r.extend(loadgen_rows(key, tool))
        r.append((f"{key} disk bytes written per byte produced, {TOOLS[0]}",
                  wget(f"{key}/{TOOLS[0]}", "disk_write_per_byte"), "low", None))
    for tool in TOOLS:
        r.append((f"W4 consume 1 KiB from offset 0, {tool}: MB/s", wget(f"W4/{tool}", "MB_s"),
                  "high", 1.5))
        r.append((f"W4 consume, {tool}: msg/s", wget(f"W4/{tool}", "msgs_s"), "high", None))
    for tool in TOOLS:
        r.append((f"W4 broker CPU-s per GB, {tool}", wget(f"W4/{tool}", "cpu_s_per_GB"), "low",
                  0.5))
    for tool in TOOLS:
        r.extend(loadgen_rows("W4", tool))
    for rate in LAT_RATES:
        for tool in TOOLS:
            for p, lab in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")):
                r.append((f"W5 ack latency @{rate} msg/s, {tool}: {lab} ms",
                          wget(f"W5@{rate}/{tool}", p), "low", 0.2 if lab == "p99" else None))
            r.append((f"W5 @{rate} msg/s, {tool}: achieved msg/s", wget(f"W5@{rate}/{tool}",
                                                                       "msgs_s"), "high", None))
    if "rdkafka" in TOOLS:
        for p, lab in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")):
            r.append((f"W6 end-to-end latency @{E2E_RATE} msg/s, rdkafka: {lab} ms",
                      wget("W6/rdkafka", p), "low", 0.2 if lab == "p99" else None))
        r.append((f"W6 @{E2E_RATE} msg/s, rdkafka: achieved msg/s", wget("W6/rdkafka", "msgs_s"),
                  "high", None))
        r.append((f"W7 produce 1 KiB with {IDLE_CONNS} idle connections, rdkafka: MB/s",
                  wget("W7/rdkafka", "MB_s"), "high", 1.5))
        r.append(("W7 broker VmRSS growth ÷ idle connections (KiB, noisy)",
                  wget("W7/rdkafka", "rss_per_idle_conn_kb"), "low", None))
    if "java" in TOOLS:
        r.append((f"W8 transactional produce 1 KiB, commit every {TXN_MS} ms, java: MB/s",
                  wget("W8/java", "MB_s"), "high", None))
        r.append(("W8 broker CPU-s per GB, java", wget("W8/java", "cpu_s_per_GB"), "low", None))
    r.append(("Idle RSS (MiB)", sget("idle_rss_kb", 1 / 1024), "low", 0.1))
    r.append(("Peak RSS (MiB)", sget("peak_rss_kb", 1 / 1024), "low", None))
    r.append(("Start to first successful produce (s)", sget("start_to_first_produce_s"), "low",
              0.05))
    # Only the workloads this run measured (WORKLOADS), plus the whole-session figures.
    return [row for row in r
            if not re.match(r"W\d", row[0]) or row[0].split()[0] in WORKLOADS]


def verdict(ratio, better, target):
    if ratio is None or target is None:
        return ""
    ok = ratio >= target if better == "high" else ratio <= target
    return "✅" if ok else "❌"


def cpu_ceiling(results, pairs, line):
    """Lines of the CPU-ceiling table: for each throughput workload, the Oxbow ÷ Kafka ratio a
    CPU-bound run could reach even if Oxbow's broker used no CPU at all, next to the measured one."""
    def m(mode, key, field):
        vals, _ = collect(results, mode, wget(key, field))
        return med(vals) if vals else None

    L = ["## The CPU ceiling of the throughput ratios\n",
         "Broker and load generator share the machine's CPUs. When a run is CPU-bound (*CPU "
         "busy %* near 100 in both modes), throughput is the CPU budget divided by the "
         "CPU-seconds per GB that broker and load generator spend together, so a broker that "
         "used no CPU at all would reach about (load generator + Kafka broker CPU-s per GB) ÷ "
         "(load generator CPU-s per GB with Oxbow) times Kafka's throughput. That estimate is the "
         "ceiling below; where the Kafka broker spends less than half of what the load generator "
         "spends per GB, it is under 1.5× and no broker could reach the target on this machine. "
         "It is an estimate (the runs are never exactly equally busy, and a JVM's start-up is a "
         "fixed cost), and it only applies to CPU-bound runs: the Java tools keep both CPUs "
         "~85–90 % busy, while rdkafka_performance is limited by its one application thread "
         "first. Ceiling (measured) per pair:\n",
         line(["Workload, load generator"] + [p[2] for p in pairs]),
         "|" + "---|" * (1 + len(pairs))]
    for key, what in [("W1", "W1 1 KiB ×1"), ("W2", "W2 100 B ×1"), ("W3", "W3 1 KiB ×8"),
                      ("W4", "W4 consume")]:
        if key not in WORKLOADS:
            continue
        for tool in TOOLS:
            cells = []
            for a, b, _ in pairs:
                la, lb, bb = (m(a, f"{key}/{tool}", "loadgen_cpu_s_per_GB"),
                              m(b, f"{key}/{tool}", "loadgen_cpu_s_per_GB"),
                              m(b, f"{key}/{tool}", "cpu_s_per_GB"))
                ta, tb = m(a, f"{key}/{tool}", "MB_s"), m(b, f"{key}/{tool}", "MB_s")
                if None in (la, lb, bb, ta, tb) or not la or not tb:
                    cells.append("—")
                else:
                    cells.append(f"{(lb + bb) / la:.2f}× ({ta / tb:.2f}×)")
            L.append(line([f"{what}, {tool}"] + cells))
    L.append("")
    return L


MACHINE = None  # described once when the sessions start (the checkout may move on later)


def report(results, profile, started, finished):
    modes = [m for m in ["oxbow", "oxbow-relaxed", "kafka", "kafka-flush1"] if m in MODES]
    pairs = [p for p in PAIRS if p[0] in modes and p[1] in modes]
    L = []
    L.append("# Oxbow vs Apache Kafka — benchmark results\n")
    L.append("Generated by `bench/run.sh`; do not edit by hand. Command:\n")
    L.append(f"```sh\n{COMMAND}\n```\n")
    planned = RUNS * len(MODES)
    if len(results) < planned:
        L.append(f"**Partial: {len(results)} of {planned} sessions had completed when this file "
                 f"was written.**\n")
    L.append(f"Started {started} UTC, finished {finished} UTC. {RUNS} session(s) per broker mode, "
             f"alternating {' → '.join(MODES)} → …; every figure is the **median** over the "
             f"sessions of its mode (n = number of sessions that produced the figure, when some "
             f"failed). Ratios are Oxbow ÷ Kafka of those medians; ✅/❌ compare the ratio "
             f"with the issue's target where one exists.\n")
    mach = MACHINE or machine()
    L.append("## Machine\n")
    for k, v in mach.items():
        L.append(f"- {k}: {v}")
    L.append(f"- Apache Kafka broker {KAFKA_VERSION} (jars from Maven Central, KRaft single node "
             f"broker+controller, storage formatted with `kafka.tools.StorageTool format "
             f"--standalone`), JVM options as `kafka-server-start.sh`: `{' '.join(KAFKA_JVM)}`")
    L.append(f"- Kafka tools (ProducerPerformance, ConsumerPerformance) {KAFKA_TOOLS_VERSION} "
             f"(`kafka-tools` {KAFKA_VERSION} is not on Maven Central yet), `-Xmx512M`")
    L.append("- Oxbow: `target/release/oxbow` (release profile of the workspace)\n")
    L.append("## Modes\n")
    for m in modes:
        L.append(f"- **{SHORT[m]}** — {LABEL[m]}")
    L.append("\nOxbow's default acknowledges `acks=all` only after fsync; Kafka's default "
             "acknowledges from the page cache and leaves flushing to the OS. So the like-for-like "
             "comparisons are *Oxbow relaxed vs Kafka default* (neither fsyncs before acking) and "
             "*Oxbow default vs Kafka flush=1* (both fsync before acking); *Oxbow default vs Kafka "
             "default* compares what each ships with.\n")
    def tlabel(better, target):
        if target is None:
            return ""
        if better == "high":
            return f"≥ {target}×"
        return {0.5: "≤ 1/2", 0.2: "≤ 1/5", 0.1: "≤ 1/10", 0.05: "≤ 1/20"}.get(target, f"≤ {target}×")

    table = []  # (label, cells, ratio cells, target label, better, target)
    for label, getter, better, target in rows():
        cells, meds = [], {}
        for m in modes:
            vals, errs = collect(results, m, getter)
            if vals:
                meds[m] = med(vals)
                c = fmt(meds[m])
                if len(vals) < len([r for r in results if r["mode"] == m]):
                    c += f" (n={len(vals)})"
                cells.append(c)
            elif errs:
                cells.append("FAILED: " + errs[0][:80].replace("|", "/"))
            else:
                cells.append("—")
        rcells = []
        for a, b, _ in pairs:
            if a in meds and b in meds and meds[b]:
                ratio = meds[a] / meds[b]
                rcells.append(f"{ratio:.2f}× {verdict(ratio, better, target)}".strip())
            else:
                rcells.append("—")
        table.append((label, cells, rcells, tlabel(better, target)))

    L.append("## Targets (Oxbow ÷ Kafka, medians of the same run)\n")
    def line(cells):
        return "| " + " | ".join(cells) + " |"
    L.append(line(["Figure", "Target"] + [p[2] for p in pairs]))
    L.append("|" + "---|" * (2 + len(pairs)))
    for label, cells, rcells, tl in table:
        if tl:
            L.append(line([label, tl] + rcells))
    L.append("")
    tallies = []
    for i, (_, _, pname) in enumerate(pairs):
        marks = [rc[i] for _, _, rc, tl in table if tl]
        tallies.append(f"{pname}: {sum('✅' in m for m in marks)} of {len(marks)} met"
                       f"{f', {sum(m == chr(8212) for m in marks)} not measurable' if any(m == chr(8212) for m in marks) else ''}")
    L.append("Targets met — " + "; ".join(tallies) + ".\n")
    L.extend(cpu_ceiling(results, pairs, line))
    L.append("## All figures (medians)\n")
    L.append(line(["Figure"] + [SHORT[m] for m in modes] + [p[2] for p in pairs]))
    L.append("|" + "---|" * (1 + len(modes) + len(pairs)))
    for label, cells, rcells, tl in table:
        L.append(line([label] + cells +
                      [r.replace(" ✅", "").replace(" ❌", "") for r in rcells]))
    L.append("")
    fmts = [r for r in results if "storage_format_s" in r]
    if fmts:
        L.append(f"Kafka's separate `StorageTool format` step took a median "
                 f"{med([r['storage_format_s'] for r in fmts]):.2f} s before each Kafka start; "
                 f"it is not included in Kafka's start-to-first-produce.\n")
    L.append("## Workloads and how each figure is measured\n")
    L.append(f"""- All producers: acks=all, `linger.ms=5`, `batch.size=1048576` (W1–W3, W7); no
  compression; no keys. rdkafka_performance writes to partition 0 (`-p 0`) except in W3 (random
  partition per record); the Java producer uses its default partitioner (idempotence on, its
  default). librdkafka also caps a request at its `message.max.bytes` (1,000,000).
- **W1** {RECORDS:,} × 1 KiB records to a 1-partition topic. **W2** the same with 100 B records.
  **W3** 1 KiB records to an 8-partition topic.
- **W4** consumes the {RECORDS:,} 1 KiB records that W1 stored, from offset 0:
  rdkafka_performance in assign mode (`-C -p 0 -o beginning`), ConsumerPerformance with a
  consumer group (subscribe); its fetch-phase rate is used (group join time excluded).
- **W5** producer acknowledgement latency at a fixed 1k and 10k msg/s for 1 + {LAT_SECONDS} s
  each (1 KiB, acks=all, `linger.ms=0` so batching delay does not hide the broker); the first
  second is warm-up and left out of the percentiles. rdkafka_performance `-r <rate> -l -A` records
  each record's produce→delivery-report time in µs; ProducerPerformance (`--throughput <rate>
  --warmup-records <rate>`, steady-state line) reports whole milliseconds only, so its small
  figures are coarse. rdkafka_performance's rate limiter sleeps in whole milliseconds at 1k msg/s
  (it reaches ~800–950 msg/s) and busy-waits at 10k msg/s (one CPU); the achieved rate is shown.
- **W6** end-to-end latency at {E2E_RATE:,} msg/s for 1 + {LAT_SECONDS} s (first second
  left out): an rdkafka_performance consumer (`-l`, assigned to partition 0 at its end) measures
  send-timestamp→receive per record while an rdkafka_performance producer sends at that rate
  (acks=all, `linger.ms=0`). Oxbow's default mode only exposes fsynced records to consumers, so
  its figure includes the fsync.
- **W7** {IDLE_CONNS} extra connections (each completes one ApiVersions round trip, then stays
  idle) held open during W1 (rdkafka); reports throughput and the broker's RSS growth per
  connection.
- **W8** {RECORDS:,} × 1 KiB records from ProducerPerformance as a transactional producer
  (`--transactional-id`, `--transaction-duration-ms {TXN_MS}`: a commit every {TXN_MS} ms,
  acks=all, idempotent) to a 1-partition topic; the throughput includes every commit.
- **Throughput**: records × record size ÷ elapsed time as reported by the tool; MB = 10⁶ bytes.
- **Broker CPU-seconds per GB**: utime+stime of the broker process (all threads, `/proc/PID/stat`)
  over the workload ÷ GB (10⁹ bytes of record values) moved. **Load generator CPU-s per GB**: the
  same for the load generator processes (`getrusage(RUSAGE_CHILDREN)`; for W6 both producer and
  consumer). **CPU busy %**: broker + load generator CPU-seconds ÷ (wall time × {os.cpu_count()}
  CPUs); near 100 % the run is CPU-bound, and a broker can then only raise throughput by using
  less CPU per GB, which bounds the Oxbow ÷ Kafka ratio by (load generator + Kafka broker CPU per
  GB) ÷ (load generator + Oxbow broker CPU per GB).
- **Disk bytes written per byte produced**: `write_bytes` of `/proc/PID/io` over the workload ÷
  record-value bytes (counted when pages are dirtied, so Kafka's page-cache writes count too).
- **Idle RSS**: `VmRSS` 3 s after the first successful produce; **peak RSS**: `VmHWM` at the end of
  a session (after W1–W7).
- **Start to first successful produce**: from spawning the broker process to the first acks=all
  Produce that succeeds, done by a small client that loops connect → CreateTopics → Produce
  (`bench/kclient.py`) on a fresh data directory.
- Broker and load generators share the same {os.cpu_count()} CPUs; nothing is pinned. Each
  session starts from an empty data directory on the same disk.
""")
    if profile:
        L.append("## Where the broker's time goes (W1, rdkafka, one unscored session each)\n")
        L.append("`perf record -F 499 -g -p <broker>` during W1 (after the scored sessions), then "
                 "`perf report --no-children --sort dso` and `--sort dso,sym`. Kafka's JIT-compiled "
                 "Java shows as `[JIT]` addresses (no perf map agent).\n")
        for mode, lines in profile.items():
            L.append(f"**{SHORT[mode]}**\n")
            L.append("```\n" + "\n".join(lines) + "\n```\n")
    L.append("## Per-session figures\n")
    L.append("Raw results: `bench/work/results.json` (not committed); logs of every tool run under "
             "`bench/work/sessions/`.\n")
    L.append("Load average is the 1-minute load just before the session started (anything above ~0 "
             "means other work shared the machine).\n")
    L.append("| Session | load avg | start→produce s | idle RSS MiB | W1 rdkafka MB/s | W1 java MB/s | "
             "W4 rdkafka MB/s | W5@10k rdkafka p99 ms | errors |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        def g(key, field):
            x = r.get("w", {}).get(key, {})
            return fmt(x[field]) if field in x else ("FAILED" if "error" in x else "—")
        errs = [f"{k}: {v['error'][:60]}" for k, v in r.get("w", {}).items() if "error" in v]
        if "error" in r:
            errs.insert(0, r["error"][:80])
        L.append(f"| run {r['run']} {SHORT[r['mode']]} | {fmt(r.get('loadavg_before'), 2)} | "
                 f"{fmt(r.get('start_to_first_produce_s'))} | "
                 f"{fmt(r['idle_rss_kb'] / 1024) if r.get('idle_rss_kb') else '—'} | "
                 f"{g('W1/rdkafka', 'MB_s')} | {g('W1/java', 'MB_s')} | {g('W4/rdkafka', 'MB_s')} | "
                 f"{g(f'W5@{LAT_RATES[-1]}/rdkafka', 'p99_ms')} | "
                 f"{'; '.join(errs).replace('|', '/') or ''} |")
    L.append("")
    with open(OUT, "w") as f:
        f.write("\n".join(L))
    log(f"wrote {OUT}")


def main():
    """bench.py            run the sessions, then the profile, writing RESULTS.md as it goes
    bench.py --profile-only   redo only the profile, re-render RESULTS.md from saved results
    bench.py --report-only    only re-render RESULTS.md from the saved results and profile"""
    os.makedirs(SESS_DIR, exist_ok=True)
    rpath = os.path.join(WORK, "results.json")
    ppath = os.path.join(WORK, "profile.json")
    mpath = os.path.join(WORK, "meta.json")
    args = sys.argv[1:]
    global COMMAND, MACHINE
    if args and args[0] in ("--profile-only", "--report-only"):
        results = json.load(open(rpath))
        meta = json.load(open(mpath))
        COMMAND = meta["command"]
        MACHINE = meta.get("machine")
        profile = json.load(open(ppath)) if os.path.exists(ppath) else None
        if args[0] == "--profile-only":
            profile = perf_profile()
            json.dump(profile, open(ppath, "w"), indent=1)
        report(results, profile, meta["started"], meta["finished"])
        return
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    MACHINE = machine()
    log(f"RECORDS={RECORDS} RUNS={RUNS} MODES={MODES} WORKLOADS={WORKLOADS} TOOLS={TOOLS}")
    results = []
    for run_no in range(1, RUNS + 1):
        for mode in MODES:
            results.append(session(mode, run_no))
            with open(rpath, "w") as f:
                json.dump(results, f, indent=1)
            report(results, None, started, time.strftime("%Y-%m-%d %H:%M", time.gmtime()))
    finished = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    json.dump({"command": COMMAND, "started": started, "finished": finished,
               "machine": MACHINE}, open(mpath, "w"), indent=1)
    profile = perf_profile() if PERF else None
    if profile:
        json.dump(profile, open(ppath, "w"), indent=1)
    report(results, profile, started, finished)


if __name__ == "__main__":
    main()
