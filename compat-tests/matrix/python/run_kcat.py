"""kcat (Debian's, on Debian's librdkafka) driven as a user would, one subprocess per step."""
import json
import os
import re
import signal
import subprocess
import time

import matrixlib
from matrixlib import BOOTSTRAP, CODECS, NotApplicable, check, run, topic, wait_until

KCAT = os.environ.get("KCAT", "kcat")
BASE = [KCAT, "-b", BOOTSTRAP, "-X", "socket.timeout.ms=10000"]


def kcat_version():
    v = subprocess.run([KCAT, "-V"], capture_output=True, text=True).stdout
    m = re.search(r"Version (\S+) .*librdkafka (\S+)", v)
    return f"{m.group(1)} (librdkafka {m.group(2)})" if m else "unknown"


def kcat(args, input_text=None, timeout=60):
    p = subprocess.run(BASE + args, input=input_text, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"kcat {' '.join(args)} exited {p.returncode}: {p.stderr.strip()[-300:]}")
    return p.stdout


def produce(t, lines, extra=()):
    kcat(["-P", "-t", t, "-K:", *extra], "".join(f"{l}\n" for l in lines))


def consume(t, extra=("-o", "beginning")):
    out = kcat(["-C", "-t", t, "-e", "-q", "-J", *extra])
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def metadata_autocreate():
    t = topic("auto")
    produce(t, ["k:v"])
    md = json.loads(kcat(["-L", "-t", t, "-J"]))
    check(len(md["brokers"]) == 1, f"brokers: {md['brokers']}")
    tp = [x for x in md["topics"] if x["topic"] == t]
    check(tp and len(tp[0]["partitions"]) == 3 and not tp[0].get("error"), f"topic metadata: {tp}")


def codec(c):
    t = topic(f"codec-{c}")
    lines = [f"k{i % 4}:{c}-{i}" for i in range(20)]
    produce(t, lines, ["-z", c, "-H", "h=1", "-H", "h=2", "-H", "x=y"])
    got = consume(t)
    check(len(got) == 20, f"consumed {len(got)} of 20")
    check(sorted(m["payload"] for m in got) == sorted(l.split(":")[1] for l in lines), "values differ")
    for m in got:
        check(m["headers"] == ["h", "1", "h", "2", "x", "y"], f"headers {m['headers']}")
        check(m["payload"].split("-")[1] and m["key"] == f"k{int(m['payload'].split('-')[1]) % 4}", f"key {m}")


def keyed():
    t = topic("keyed")
    produce(t, [f"key{i % 6}:{i}" for i in range(36)])
    got = consume(t)
    check(len(got) == 36, f"consumed {len(got)} of 36")
    parts = {}
    for m in got:
        parts.setdefault(m["key"], set()).add(m["partition"])
    check(all(len(p) == 1 for p in parts.values()), f"key -> partitions: {parts}")
    check(len({next(iter(p)) for p in parts.values()}) > 1, "every key landed in one partition")
    for k in parts:  # per-key order
        vals = [int(m["payload"]) for m in sorted(got, key=lambda m: m["offset"]) if m["key"] == k]
        check(vals == sorted(vals), f"order of {k}: {vals}")


def seek_offset():
    t = topic("seek")
    produce(t, [f"k:{i}" for i in range(20)], ["-p", "0"])
    got = consume(t, ["-p", "0", "-o", "7", "-c", "3"])
    check([(m["offset"], m["payload"]) for m in got] == [(7, "7"), (8, "8"), (9, "9")], f"got {got}")
    got = consume(t, ["-p", "0", "-o", "-5"])  # relative to the end
    check([m["offset"] for m in got] == [15, 16, 17, 18, 19], f"from end: {[m['offset'] for m in got]}")


def seek_timestamp():
    t = topic("ts")
    produce(t, [f"k:a{i}" for i in range(10)], ["-p", "0"])
    time.sleep(1.2)
    ts = int(time.time() * 1000)
    time.sleep(0.1)
    produce(t, [f"k:b{i}" for i in range(10)], ["-p", "0"])
    got = consume(t, ["-p", "0", "-o", f"s@{ts}"])
    check([m["offset"] for m in got] == list(range(10, 20)), f"offsets from s@{ts}: {[m['offset'] for m in got]}")
    got = consume(t, ["-p", "0", "-o", f"s@{ts - 3_600_000}", "-c", "1"])
    check(got and got[0]["offset"] == 0, f"from an hour ago: {got}")


def group():
    t, g = topic("group"), topic("g")
    produce(t, ["k:init"], ["-p", "0"])  # create it (3 partitions)
    procs, logs = [], []
    d = os.environ.get("MATRIX_TMP", "/tmp")
    for i in range(2):
        out = open(os.path.join(d, f"kcat-group-{i}.out"), "w+")
        err = open(os.path.join(d, f"kcat-group-{i}.err"), "w+")
        procs.append(subprocess.Popen(BASE + ["-G", g, "-J", "-u", "-X", "auto.offset.reset=latest",
                                              "-X", "auto.commit.interval.ms=500", t],
                                      stdout=out, stderr=err, text=True))
        logs.append((out, err))
        time.sleep(1.5)

    def assigned():
        # each member reports its assignment after the last rebalance (kcat prints it on stderr)
        res = []
        for _, err in logs:
            err.seek(0)
            lines = [l for l in err.read().splitlines() if "assigned:" in l]
            res.append(set(re.findall(r"\[(\d+)\]", lines[-1])) if lines else set())
        # the latest assignments split the 3 partitions between the two members
        return all(res) and not (res[0] & res[1]) and len(res[0] | res[1]) == 3 and res

    try:
        a = wait_until(assigned, 30, "both members assigned")
        time.sleep(1)
        produce(t, [f"key{i}:m{i}" for i in range(30)])

        def received():
            n = []
            for out, _ in logs:
                out.seek(0)
                n.append([json.loads(l)["payload"] for l in out.read().splitlines() if l.strip()])
            return n if sum(map(len, n)) >= 30 else None
        n = wait_until(received, 30, "30 records across the two members")
        check(all(n), f"one member got nothing: {[len(x) for x in n]}; assignments {a}")
        check(sorted(n[0] + n[1]) == sorted(f"m{i}" for i in range(30)), "records differ")
        time.sleep(1.5)  # auto commit
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)  # kcat commits and leaves on the way out
        for p in procs:
            p.wait(timeout=20)
    produce(t, [f"key{i}:r{i}" for i in range(10)])
    out = kcat(["-G", g, "-J", "-q", "-e", t], timeout=60)
    vals = sorted(json.loads(l)["payload"] for l in out.splitlines() if l.strip())
    check(vals == sorted(f"r{i}" for i in range(10)), f"resumed group read {vals}")


def idempotent():
    t = topic("idem")
    produce(t, [f"k{i % 3}:{i}" for i in range(30)], ["-X", "enable.idempotence=true", "-X", "acks=all"])
    got = consume(t)
    check(sorted(int(m["payload"]) for m in got) == list(range(30)), f"got {len(got)} records")


def transactions():
    # kcat commits one transaction per run (at the end of its input); it has no abort.
    t = topic("txn")
    tx = ["-X", f"transactional.id={topic('tx')}", "-p", "0"]
    produce(t, [f"k:c1-{i}" for i in range(5)], tx)
    produce(t, [f"k:c2-{i}" for i in range(5)], tx)
    rc = consume(t, ["-o", "beginning", "-X", "isolation.level=read_committed"])
    got = [(m["offset"], m["payload"]) for m in rc]
    want = [(i, f"c1-{i}") for i in range(5)] + [(6 + i, f"c2-{i}") for i in range(5)]
    check(got == want, f"read_committed got {got} (want commit markers at offsets 5 and 11)")


def na(why):
    def f():
        raise NotApplicable(why)
    return f


matrixlib.CLIENT = "kcat"
matrixlib.VERSION = kcat_version()
matrixlib.run_all({
    "metadata_autocreate": metadata_autocreate,
    "codec": codec,
    "keyed_partitioning": keyed,
    "seek_offset": seek_offset,
    "seek_timestamp": seek_timestamp,
    "group_rebalance_commit": group,
    "idempotent_produce": idempotent,
    "admin_topics": na("kcat has no topic create/delete commands"),
    "admin_configs": na("kcat has no config commands"),
    "group_admin": na("kcat has no group describe/reset/delete commands"),
    "transactions": transactions,
})
