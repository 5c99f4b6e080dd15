"""Starts the real `oxbow` binary for each test on an ephemeral port and a temporary data dir.

The binary is `$OXBOW_BIN`, else `<workspace>/target/debug/oxbow`; a missing binary fails the
run loudly rather than skipping.
"""
import os
import pathlib
import re
import signal
import socket
import subprocess
import time

import pytest


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port

ROOT = pathlib.Path(__file__).resolve().parents[2]


def oxbow_bin():
    path = os.environ.get("OXBOW_BIN") or str(ROOT / "target" / "debug" / "oxbow")
    if not os.path.exists(path):
        raise RuntimeError(f"oxbow binary not found at {path}: build it (cargo build -p oxbow-broker) or set OXBOW_BIN")
    return path


class Broker:
    def __init__(self, data_dir, overrides=(), port=0):
        self.data_dir = str(data_dir)
        self.overrides = list(overrides)
        self.port = port
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
        if self.port == 0:
            self.port = int(m.group(1))  # the advertised port is the bound one unless overridden

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.stderr.close()

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.stderr.close()

    def restart(self):
        self.stop()
        self.start()


@pytest.fixture
def broker_factory(tmp_path):
    brokers = []

    def make(*overrides, port=0):
        d = tmp_path / f"data{len(brokers)}"
        d.mkdir()
        b = Broker(d, ["group.initial.rebalance.delay.ms=0", *overrides], port=port)
        brokers.append(b)
        return b

    yield make
    for b in brokers:
        b.kill9()


@pytest.fixture
def broker(broker_factory):
    return broker_factory()
