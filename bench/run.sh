#!/usr/bin/env bash
# Oxbow vs Apache Kafka on this machine, one command:
#
#   bash bench/run.sh                        # full run (about 25 min on 2 cores)
#   RECORDS=100000 RUNS=1 bash bench/run.sh  # quick run (a few minutes)
#   bash bench/run.sh --profile-only         # redo only the perf profile section
#   bash bench/run.sh --report-only          # re-render RESULTS.md from bench/work/*.json
#
# Builds Oxbow (release), downloads Apache Kafka's broker and tools from Maven Central, builds
# librdkafka's rdkafka_performance from the source bundled in the rdkafka-sys crate, then runs
# bench/bench.py, which writes bench/RESULTS.md. Everything it builds or downloads, and every
# data directory and log, goes under bench/work/ (git-ignored).
#
# Knobs (environment):
#   RECORDS=1000000     records per throughput workload (W1-W4, W7)
#   RUNS=3              sessions per broker mode (medians are over these)
#   LAT_SECONDS=10      measured duration of each fixed-rate latency workload (W5, W6), after 1 s warm-up
#   LAT_RATES=1000,10000  fixed producer rates for W5;  E2E_RATE=10000 for W6
#   IDLE_CONNS=200      idle connections in W7
#   MODES=oxbow,kafka,oxbow-relaxed,kafka-flush1   modes, in the order sessions alternate
#   WORKLOADS=W1,W2,W3,W4,W5,W6,W7,W8   TOOLS=rdkafka,java   TXN_MS=100 (W8 commit interval)
#   PERF=1              profile one extra W1 session per broker with `perf` (0 to skip)
#   KAFKA_VERSION=4.4.0 KAFKA_TOOLS_VERSION=4.3.1   KAFKA_HEAP_OPTS="-Xmx1G -Xms1G"
#   OXBOW_BIN=path      use this oxbow binary instead of building one
#   OXBOW_PORT=19092 KAFKA_PORT=29092 KAFKA_CONTROLLER_PORT=29093
#   RESULTS=bench/RESULTS.md
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$ROOT/bench/work
mkdir -p "$WORK"

die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
step() { printf '\n==> %s\n' "$*"; }

# The command line to print in RESULTS.md: the knobs that were set, then this script.
knobs=()
for k in RECORDS RUNS LAT_SECONDS LAT_RATES E2E_RATE IDLE_CONNS MODES WORKLOADS TOOLS PERF \
         KAFKA_VERSION KAFKA_TOOLS_VERSION KAFKA_HEAP_OPTS OXBOW_BIN; do
  if [ -n "${!k+x}" ]; then
    v=${!k}
    case $v in *[\ \"\']*) v="'$v'";; esac
    knobs+=("$k=$v")
  fi
done
export BENCH_COMMAND="${knobs[*]:+${knobs[*]} }bash bench/run.sh"

for tool in cargo java mvn cmake make cc python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done

# --- Oxbow --------------------------------------------------------------------------------------
if [ -z "${OXBOW_BIN:-}" ]; then
  step "build oxbow (release)"
  cargo build --release -p oxbow-broker -j "${CARGO_BUILD_JOBS:-2}" \
    || die "cargo build --release -p oxbow-broker failed"
  OXBOW_BIN=$ROOT/target/release/oxbow
fi
[ -x "$OXBOW_BIN" ] || die "no oxbow binary at $OXBOW_BIN"
OXBOW_BIN=$(realpath "$OXBOW_BIN")
export OXBOW_BIN

# --- Apache Kafka (broker and tools) from Maven Central ----------------------------------------
# kafka_2.13 (broker) and kafka-tools are fetched into separate directories and used on separate
# classpaths; kafka-tools is published later than the broker, so its newest version can lag.
export KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
export KAFKA_TOOLS_VERSION=${KAFKA_TOOLS_VERSION:-4.3.1}
fetch_jars() { # artifact version dir
  if [ ! -f "$3/.complete" ]; then
    step "download org.apache.kafka:$1:$2 from Maven Central"
    rm -rf "$3"
    mvn -B -ntp -q -f bench/kafka/pom.xml dependency:copy-dependencies -DincludeScope=runtime \
      -Dkafka.artifact="$1" -Dkafka.version="$2" -DoutputDirectory="$3" \
      || die "could not download org.apache.kafka:$1:$2"
    touch "$3/.complete"
  fi
}
export KAFKA_JARS=$WORK/kafka-broker-$KAFKA_VERSION/jars
export KAFKA_TOOLS_JARS=$WORK/kafka-tools-$KAFKA_TOOLS_VERSION/jars
fetch_jars kafka_2.13 "$KAFKA_VERSION" "$KAFKA_JARS"
fetch_jars kafka-tools "$KAFKA_TOOLS_VERSION" "$KAFKA_TOOLS_JARS"

# --- rdkafka_performance from the librdkafka source in the rdkafka-sys crate --------------------
ver=$(awk '/^name = "rdkafka-sys"/ {getline; gsub(/[" ]/, ""); sub(/^version=/, ""); print; exit}' Cargo.lock)
[ -n "$ver" ] || die "rdkafka-sys not found in Cargo.lock"
export RDKAFKA_VERSION=${ver#*+}
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"rdkafka-sys-$ver"/librdkafka 2>/dev/null | head -1 || true)
if [ -z "$src" ]; then
  step "cargo fetch (for the librdkafka source in rdkafka-sys $ver)"
  cargo fetch -q || die "cargo fetch failed"
  src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"rdkafka-sys-$ver"/librdkafka | head -1)
fi
export RDKAFKA_SRC=$src
build=$WORK/librdkafka-$RDKAFKA_VERSION
export RDKAFKA_PERF=$build/examples/rdkafka_performance
if [ ! -x "$RDKAFKA_PERF" ]; then
  step "build rdkafka_performance (librdkafka $RDKAFKA_VERSION)"
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRDKAFKA_BUILD_EXAMPLES=ON \
    -DRDKAFKA_BUILD_TESTS=OFF -DRDKAFKA_BUILD_STATIC=ON -DWITH_SSL=OFF -DWITH_SASL=OFF \
    -DWITH_CURL=OFF -DWITH_ZSTD=OFF -DENABLE_LZ4_EXT=OFF -DWITH_PLUGINS=OFF >"$WORK/librdkafka-cmake.log" 2>&1 \
    || die "cmake for librdkafka failed (see $WORK/librdkafka-cmake.log)"
  make -C "$build" -j "${CARGO_BUILD_JOBS:-2}" rdkafka_performance >"$WORK/librdkafka-make.log" 2>&1 \
    || die "building rdkafka_performance failed (see $WORK/librdkafka-make.log)"
fi

# --- the ports must be free -------------------------------------------------------------------
for p in "${OXBOW_PORT:-19092}" "${KAFKA_PORT:-29092}" "${KAFKA_CONTROLLER_PORT:-29093}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    die "port $p is in use; stop what listens there or set OXBOW_PORT/KAFKA_PORT"
  fi
done

step "benchmark: $BENCH_COMMAND"
export BENCH_WORK=$WORK
exec python3 bench/bench.py "$@"
