"""Configuration as the Kafka images take it, and per-listener advertised addresses."""
import os
import subprocess

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from conftest import Broker, free_port, oxbow_bin


def test_bad_value_names_the_key_and_exits_nonzero(tmp_path):
    r = subprocess.run([oxbow_bin(), "serve", "--override", f"log.dirs={tmp_path}",
                        "--override", "num.partitions=many"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "num.partitions" in r.stderr
    env = dict(os.environ, KAFKA_LOG_RETENTION_MS="soon")
    r = subprocess.run([oxbow_bin(), "serve", "--override", f"log.dirs={tmp_path}"],
                       capture_output=True, text=True, timeout=30, env=env)
    assert r.returncode != 0
    assert "log.retention.ms" in r.stderr


def test_kafka_env_mapping_and_ignored_jvm_and_kraft_keys(tmp_path):
    port = free_port()
    env = dict(os.environ,
               KAFKA_NUM_PARTITIONS="4",
               KAFKA_LISTENERS=f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{free_port()}",
               KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
               KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
               KAFKA_PROCESS_ROLES="broker,controller",
               KAFKA_CONTROLLER_QUORUM_VOTERS="1@localhost:9093",
               KAFKA_HEAP_OPTS="-Xmx1G",
               KAFKA_LOG_DIRS=str(tmp_path),
               CLUSTER_ID="MkU3OEVBNTcwNTJENDM2Qk")
    proc = subprocess.Popen([oxbow_bin(), "serve"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"oxbow ready PLAINTEXT://127.0.0.1:{port}"), line
        p = Producer({"bootstrap.servers": f"127.0.0.1:{port}"})
        p.produce("from-env", value=b"x")
        assert p.flush(10) == 0
        md = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"}).list_topics(timeout=10)
        assert len(md.topics["from-env"].partitions) == 4
        assert md.cluster_id == "MkU3OEVBNTcwNTJENDM2Qk"
    finally:
        proc.kill()
        err = proc.stderr.read()
    assert "KAFKA_HEAP_OPTS" in err and "process.roles" in err, "ignored keys should be logged"


def test_metadata_answers_with_the_listener_the_client_used(tmp_path):
    inside, outside = free_port(), free_port()
    b = Broker(tmp_path, [
        f"listeners=PLAINTEXT://127.0.0.1:{inside},PLAINTEXT_HOST://127.0.0.1:{outside}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{inside},PLAINTEXT_HOST://localhost:{outside}",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT",
    ], port=inside)
    try:
        for port, host in ((inside, "127.0.0.1"), (outside, "localhost")):
            md = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"}).list_topics(timeout=10)
            brokers = [(x.host, x.port) for x in md.brokers.values()]
            assert brokers == [(host, port)], f"connected on {port}, told {brokers}"
    finally:
        b.kill9()
