"""Shared by the Python runners (stdlib only): where to connect, how to record a cell.

run.sh starts a fresh broker per runner and passes OXBOW_BOOTSTRAP, MATRIX_OUT (the JSON-lines
file), MATRIX_CLIENT and MATRIX_VERSION. Each scenario is a function; an exception is a "fail"
cell whose note is the exception, NotApplicable is an "n/a" cell (the client lacks the feature).
"""
import json
import os
import sys
import time
import traceback

BOOTSTRAP = os.environ.get("OXBOW_BOOTSTRAP", "127.0.0.1:9092")
OUT = os.environ.get("MATRIX_OUT")
CLIENT = os.environ.get("MATRIX_CLIENT", "unknown")
VERSION = os.environ.get("MATRIX_VERSION", "unknown")
RUN_ID = str(int(time.time() * 1000) % 10_000_000)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


class NotApplicable(Exception):
    """The client itself lacks the feature; the message says why."""


def topic(name):
    return f"mx-{name}-{RUN_ID}"


def emit(scenario, result, note=""):
    line = json.dumps({"client": CLIENT, "version": VERSION, "scenario": scenario,
                       "result": result, "note": note})
    print(line, flush=True)
    if OUT:
        with open(OUT, "a") as f:
            f.write(line + "\n")


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def run(scenario, fn, *args):
    start = time.time()
    try:
        fn(*args)
    except NotApplicable as e:
        emit(scenario, "n/a", str(e))
    except Exception as e:  # noqa: BLE001 - every error is a failed cell
        traceback.print_exc(file=sys.stderr)
        note = f"{type(e).__name__}: {e}".strip()
        emit(scenario, "fail", note[:400])
    else:
        emit(scenario, "pass")
    print(f"  [{CLIENT} {VERSION}] {scenario}: {time.time() - start:.1f}s", file=sys.stderr, flush=True)


def run_all(scenarios, run_one=None):
    """Runs the matrix's scenarios, in the order MATRIX.md lists them, with the runner's
    functions: `scenarios` maps scenario names (and "codec", called once per codec in CODECS)
    to functions; `run_one` is the runner's own `run` when it needs one (aiokafka's runs
    coroutines), else `run` above."""
    run_one = run_one or run
    run_one("metadata_autocreate", scenarios["metadata_autocreate"])
    for c in CODECS:
        run_one(f"codec_{c}", scenarios["codec"], c)
    for name in ("keyed_partitioning", "seek_offset", "seek_timestamp", "group_rebalance_commit",
                 "idempotent_produce", "admin_topics", "admin_configs", "group_admin",
                 "transactions"):
        run_one(name, scenarios[name])


def records(n, tag):
    """n records: key, value, headers (a duplicate header key and a binary value)."""
    return [(f"k{i % 4}".encode(), f"{tag}-{i}".encode(),
             [("h", b"1"), ("h", b"2"), ("bin", bytes([0, 255, i % 256]))]) for i in range(n)]


def wait_until(fn, timeout, what):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)
