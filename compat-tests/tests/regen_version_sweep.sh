#!/usr/bin/env bash
# Regenerates compat-tests/tests/version_sweep_expected.tsv by running the version sweep
# (compat-tests/tests/version_sweep.rs) against a real Apache Kafka broker on this machine.
#
#   bash compat-tests/tests/regen_version_sweep.sh          # Kafka 4.4.0, KRaft single node
#   KEEP_KAFKA=1 bash compat-tests/tests/regen_version_sweep.sh   # leave Kafka running afterwards
#
# Kafka's jars come from Maven Central (bench/kafka/pom.xml, `mvn dependency:copy-dependencies`)
# into target/kafka-$KAFKA_VERSION/ (git-ignored; never commit jars). The broker runs as
# bench/bench.py runs it: broker+controller in one JVM, storage formatted with
# `kafka.tools.StorageTool format --standalone`, replication factors of 1. Its data dir and log
# are in target/kafka-$KAFKA_VERSION/run/ (log: broker.log).
#
# The sweep is the same test CI runs against Oxbow, with VERSION_SWEEP_BOOTSTRAP pointing at
# Kafka and VERSION_SWEEP_RECORD naming the table to write. It asks Kafka's ApiVersions for
# ranges, but sweeps the versions Oxbow advertises (VERSION_SWEEP_OXBOW_RANGES, printed by the
# sweep against an Oxbow broker it starts first), so every row Oxbow checks has a Kafka answer.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
KAFKA_PORT=${KAFKA_PORT:-39092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-39093}
HOST=127.0.0.1
WORK=$ROOT/target/kafka-$KAFKA_VERSION
JARS=$WORK/jars
RUN=$WORK/run
OUT=${OUT:-$ROOT/compat-tests/tests/version_sweep_expected.tsv}

die() { printf 'regen_version_sweep: %s\n' "$*" >&2; exit 1; }

if [ ! -f "$JARS/.complete" ]; then
  echo "==> download org.apache.kafka:kafka_2.13:$KAFKA_VERSION from Maven Central into $JARS"
  rm -rf "$JARS"
  mvn -B -ntp -q -f bench/kafka/pom.xml dependency:copy-dependencies -DincludeScope=runtime \
    -Dkafka.artifact=kafka_2.13 -Dkafka.version="$KAFKA_VERSION" -DoutputDirectory="$JARS" \
    || die "could not download org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
  touch "$JARS/.complete"
fi

for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
  if (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null; then
    die "port $p is in use; set KAFKA_PORT/KAFKA_CONTROLLER_PORT"
  fi
done

rm -rf "$RUN"
mkdir -p "$RUN/data"
cat >"$RUN/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$RUN/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
LOG4J=-Dlog4j2.configurationFile=$ROOT/bench/kafka/log4j2.properties
CLUSTER=$(python3 -c 'import base64,uuid; print("A"+base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")[1:])')
java "$LOG4J" -cp "$JARS/*" kafka.tools.StorageTool format -t "$CLUSTER" \
  -c "$RUN/server.properties" --standalone >"$RUN/broker.log" 2>&1 \
  || die "StorageTool format failed (see $RUN/broker.log)"
java -Xmx1G -Xms1G -server -XX:+UseG1GC "$LOG4J" -cp "$JARS/*" kafka.Kafka "$RUN/server.properties" \
  >>"$RUN/broker.log" 2>&1 &
KAFKA_PID=$!
echo "$KAFKA_PID" >"$RUN/kafka.pid"
stop_kafka() {
  if [ -z "${KEEP_KAFKA:-}" ]; then
    kill "$KAFKA_PID" 2>/dev/null || true
    wait "$KAFKA_PID" 2>/dev/null || true
  else
    echo "Kafka left running (pid $KAFKA_PID) on $HOST:$KAFKA_PORT"
  fi
}
trap stop_kafka EXIT

echo "==> waiting for Kafka $KAFKA_VERSION on $HOST:$KAFKA_PORT"
for _ in $(seq 1 120); do
  if grep -q "Kafka Server started" "$RUN/broker.log" 2>/dev/null; then break; fi
  kill -0 "$KAFKA_PID" 2>/dev/null || die "Kafka exited (see $RUN/broker.log)"
  sleep 1
done
grep -q "Kafka Server started" "$RUN/broker.log" || die "Kafka did not start in 120 s (see $RUN/broker.log)"

[ -n "${KAFKA_ONLY:-}" ] && { KEEP_KAFKA=1; echo "Kafka running on $HOST:$KAFKA_PORT"; exit 0; }

echo "==> sweep Kafka, writing $OUT"
cargo build -p oxbow-broker -j "${CARGO_BUILD_JOBS:-2}"
VERSION_SWEEP_BOOTSTRAP=$HOST:$KAFKA_PORT VERSION_SWEEP_RECORD=$OUT VERSION_SWEEP_KAFKA_VERSION=$KAFKA_VERSION \
  cargo test -p oxbow-compat-tests --test version_sweep -j "${CARGO_BUILD_JOBS:-2}" -- --nocapture
echo "==> wrote $OUT; check it with: cargo test -p oxbow-compat-tests --test version_sweep"
