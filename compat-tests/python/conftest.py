"""Starts the real `oxbow` binary for each test on an ephemeral port and a temporary data dir.

The binary is `$OXBOW_BIN`, else `<workspace>/target/debug/oxbow`; a missing binary fails the
run loudly rather than skipping.
"""
import os
import pathlib
import re
import signal
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def oxbow_bin():
    path = os.environ.get("OXBOW_BIN") or str(ROOT / "target" / "debug" / "oxbow")
    if not os.path.exists(path):
        raise RuntimeError(f"oxbow binary not found at {path}: build it (cargo build -p oxbow-broker) or set OXBOW_BIN")
    return path


class Broker:
    def __init__(self, data_dir, overrides=()):
        self.data_dir = str(data_dir)
        self.overrides = list(overrides)
        self.port = 0
        self.proc = None
        self.start()

    def start(self):
        args = [oxbow_bin(), "serve",
                "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "--override", f"log.dirs={self.data_dir}"]
        for o in self.overrides:
            args += ["--override", o]
        self.stderr = open(os.path.join(self.data_dir, "..", f"oxbow-{os.getpid()}-{time.time_ns()}.stderr"), "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"oxbow ready PLAINTEXT://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"broker did not become ready: {line!r}; see {self.stderr.name}")
        self.port = int(m.group(1))

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self):
        self.stop()
        self.start()


@pytest.fixture
def broker_factory(tmp_path):
    brokers = []

    def make(*overrides):
        d = tmp_path / f"data{len(brokers)}"
        d.mkdir()
        b = Broker(d, ["group.initial.rebalance.delay.ms=0", *overrides])
        brokers.append(b)
        return b

    yield make
    for b in brokers:
        b.kill9()


@pytest.fixture
def broker(broker_factory):
    return broker_factory()
