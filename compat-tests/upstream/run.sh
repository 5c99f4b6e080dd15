#!/usr/bin/env bash
# The UPSTREAM client test suites' transactional tests against Oxbow, from the copies that the
# crates.io packages in ~/.cargo/registry contain (never a git checkout):
#  (a) the rdkafka crate's tests/test_transactions.rs (+ its utils.rs), built as a package of its
#      own in target/upstream/rdkafka with the dev-dependencies of the crate's Cargo.toml.orig;
#      the broker address goes in through the suite's KAFKA_HOST;
#  (b) librdkafka's own test suite (tests/ in rdkafka-sys), the tests that use transactions
#      against a real broker, in full mode (`test-runner -E -L`; UPSTREAM_QUICK=1 adds -Q, see
#      below), built from only those test sources; the bootstrap servers go in through the suite's
#      test.conf, the broker version through TEST_KAFKA_VERSION. One change to the suite: its
#      topic-creation helper asks for replication factor 1 where 0098/0103 ask for 3.
# librdkafka is built once (CMake, shared, in target/upstream) and serves both: the rdkafka crate
# links it through rdkafka-sys's `dynamic-linking` feature. Every candidate test that is not run
# is named in excluded.txt with its reason. One broker ($OXBOW_BIN) serves every test; its log
# is target/upstream/logs/oxbow.log (OXBOW_LOG=debug for more). Prints `N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
HERE="$ROOT/compat-tests/upstream"
WORK="$ROOT/target/upstream"
LOGS="$WORK/logs"
JOBS="${CARGO_BUILD_JOBS:-2}"
OXBOW_BIN="${OXBOW_BIN:-$ROOT/target/debug/oxbow}"
# The tests that run; every other candidate must be in excluded.txt.
RDKAFKA_TESTS=(test_transaction_abort test_transaction_commit utils::tests::test_populate_topic)
LIBRDKAFKA_TESTS=(0061_consumer_lag 0098_consumer_txn 0103_transactions 0129_fetch_aborted_msgs
  0137_barrier_batch_consume)
# The suites gate some checks on the broker version (librdkafka's default assumption is 2.4).
BROKER_VERSION=4.0.0
# librdkafka's tests run in full mode: its quick mode (-Q, UPSTREAM_QUICK=1) skips every subtest
# not marked quick, which is all of 0061's and 0137's and 0098's Java scenarios 0-4.
if [ "${UPSTREAM_QUICK:-0}" = 1 ]; then MODE_ARGS=(-Q); MODE_NAME="quick mode"; else MODE_ARGS=(); MODE_NAME="full mode"; fi

die() { printf 'upstream: %s\n' "$*" >&2; exit 1; }
say() { printf '\n--- upstream: %s\n' "$*"; }

[ -x "$OXBOW_BIN" ] || die "no broker binary at $OXBOW_BIN (cargo build -p oxbow-broker)"
for t in cargo cmake make cc c++ pkg-config java javac mvn; do
  command -v "$t" >/dev/null || die "$t is required but missing"
done
if [ ! -e /usr/include/rapidjson/document.h ]; then
  echo "installing rapidjson-dev (librdkafka's test 0098 needs it)"
  sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends rapidjson-dev \
    || { "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends rapidjson-dev; } \
    || die "could not install rapidjson-dev"
fi

# --- the registry copies ------------------------------------------------------------------------
lock_version() { # the version of crate $1 pinned in Cargo.lock
  awk -v n="$1" '$0=="name = \"" n "\"" {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock
}
RDKAFKA_VER="$(lock_version rdkafka)"
RDKAFKA_SYS_VER="$(lock_version rdkafka-sys)"
[ -n "$RDKAFKA_VER" ] && [ -n "$RDKAFKA_SYS_VER" ] || die "rdkafka/rdkafka-sys not found in Cargo.lock"
registry_dir() { ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$1" 2>/dev/null | head -1 || true; }
if [ -z "$(registry_dir "rdkafka-$RDKAFKA_VER")" ] || [ -z "$(registry_dir "rdkafka-sys-$RDKAFKA_SYS_VER")" ]; then
  say "cargo fetch (rdkafka $RDKAFKA_VER, rdkafka-sys $RDKAFKA_SYS_VER into ~/.cargo/registry)"
  cargo fetch --locked
fi
CRATE_SRC="$(registry_dir "rdkafka-$RDKAFKA_VER")"
SYS_SRC="$(registry_dir "rdkafka-sys-$RDKAFKA_SYS_VER")"
[ -n "$CRATE_SRC" ] && [ -f "$CRATE_SRC/tests/test_transactions.rs" ] && [ -f "$CRATE_SRC/Cargo.toml.orig" ] \
  || die "FATAL: no rdkafka-$RDKAFKA_VER with tests/test_transactions.rs in ~/.cargo/registry/src even after cargo fetch"
[ -n "$SYS_SRC" ] && [ -f "$SYS_SRC/librdkafka/tests/test.c" ] \
  || die "FATAL: no rdkafka-sys-$RDKAFKA_SYS_VER/librdkafka/tests in ~/.cargo/registry/src even after cargo fetch"
echo "rdkafka crate: $CRATE_SRC"
echo "librdkafka:    $SYS_SRC/librdkafka"

mkdir -p "$WORK"
rm -rf "$LOGS"
mkdir -p "$LOGS"
LRK="$WORK/librdkafka"           # copy of the librdkafka source (tests run in $LRK/tests)
LRK_BUILD="$WORK/librdkafka-build"
LRK_PREFIX="$WORK/librdkafka-install"
rm -rf "$LRK" "$WORK/rdkafka"
# Timestamps are kept so that a second run on the same machine rebuilds nothing.
cp -r --preserve=timestamps "$SYS_SRC/librdkafka" "$LRK"
cp -r --preserve=timestamps "$CRATE_SRC" "$WORK/rdkafka"
chmod -R u+w "$LRK" "$WORK/rdkafka"
# The one change to the suite: 0098 and 0103 create their topics with replication factor 3 (they
# are written for a 3-broker trivup cluster) and Oxbow is one broker, so the suite's topic
# creation helper (test_admin_create_topic) asks for replication factor 1 instead.
rf_from='rd_kafka_NewTopic_new(topicname, partition_cnt, replication_factor,'
rf_to='rd_kafka_NewTopic_new(topicname, partition_cnt, replication_factor > 1 ? 1 : replication_factor,'
[ "$(grep -cF "$rf_from" "$LRK/tests/test.c")" -eq 1 ] || die "test.c: topic creation helper not found"
sed -i "s/$rf_from/$rf_to/" "$LRK/tests/test.c"
grep -qF "$rf_to" "$LRK/tests/test.c" || die "test.c: patching the replication factor failed"

# --- the candidate tests and the exclusion list -------------------------------------------------
candidates() {
  grep -oE '^(async )?fn test_[a-z_0-9]+' "$WORK/rdkafka/tests/test_transactions.rs" \
    | sed 's/.*fn /rdkafka /'
  grep -oE '^    (async )?fn test_[a-z_0-9]+' "$WORK/rdkafka/tests/utils.rs" | sed 's/.*fn /rdkafka utils::tests::/'
  local f
  for f in $(grep -lE 'transactional\.id|isolation\.level|read_committed|init_transactions' \
    "$LRK"/tests/0[0-9][0-9][0-9]-*.c "$LRK"/tests/0[0-9][0-9][0-9]-*.cpp); do
    grep -oE 'int main_[0-9]{4}_[A-Za-z0-9_]+' "$f" | sed 's/int main_/librdkafka /'
  done
}
excluded() { grep -vE '^\s*(#|$)' "$HERE/excluded.txt" | awk '{print $1, $2}'; }
selected() {
  printf 'rdkafka %s\n' "${RDKAFKA_TESTS[@]}"
  printf 'librdkafka %s\n' "${LIBRDKAFKA_TESTS[@]}"
}
mismatch="$(diff <(candidates | sort -u) <({ selected; excluded; } | sort) || true)"
[ -z "$mismatch" ] || die "the candidate tests (<) differ from the run + excluded.txt ones (>):
$mismatch"

# --- build: librdkafka (shared, C and C++) ------------------------------------------------------
say "build librdkafka $RDKAFKA_SYS_VER (CMake, shared) in $LRK_BUILD"
start=$SECONDS
cmake -S "$LRK" -B "$LRK_BUILD" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_INSTALL_PREFIX="$LRK_PREFIX" \
  -DCMAKE_INSTALL_LIBDIR=lib -DRDKAFKA_BUILD_TESTS=OFF -DRDKAFKA_BUILD_EXAMPLES=OFF \
  -DWITH_SSL=OFF -DWITH_SASL=OFF -DWITH_CURL=OFF -DWITH_ZSTD=OFF -DENABLE_LZ4_EXT=OFF \
  -DWITH_PLUGINS=OFF -DCMAKE_POLICY_VERSION_MINIMUM=3.5 >"$LOGS/librdkafka-cmake.log" 2>&1 \
  || { tail -30 "$LOGS/librdkafka-cmake.log"; die "cmake for librdkafka failed"; }
{ cmake --build "$LRK_BUILD" -j "$JOBS" && cmake --install "$LRK_BUILD"; } >"$LOGS/librdkafka-build.log" 2>&1 \
  || { tail -30 "$LOGS/librdkafka-build.log"; die "building librdkafka failed"; }
echo "librdkafka built in $((SECONDS - start))s"

# --- build: librdkafka's test-runner with only the selected tests -------------------------------
say "build librdkafka's test-runner (${LIBRDKAFKA_TESTS[*]})"
start=$SECONDS
test_srcs=()
for t in "${LIBRDKAFKA_TESTS[@]}"; do
  f="$(grep -lE "int main_${t}\(" "$LRK"/tests/0*.c "$LRK"/tests/0*.cpp | head -1)"
  [ -n "$f" ] || die "no source defines main_$t"
  test_srcs+=("$(basename "$f")")
done
mapfile -t test_srcs < <(printf '%s\n' "${test_srcs[@]}" | sort -u)
defined="$(cat "${test_srcs[@]/#/$LRK/tests/}" | grep -oE 'int main_[0-9]{4}_[A-Za-z0-9_]+' | sed 's/int main_//' | sort -u)"
{
  echo '#include <stdio.h>'
  echo '/* Generated by compat-tests/upstream/run.sh: tests that are not built. */'
  grep -oE '^_TEST_DECL\([0-9A-Za-z_]+\)' "$LRK/tests/test.c" | sed 's/_TEST_DECL(\(.*\))/\1/' | sort -u \
    | grep -vxF "$defined" \
    | sed 's/.*/int main_&(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "& is not built here\\n"); return 1; }/'
} >"$WORK/test-stubs.c"
make -f "$HERE/librdkafka-tests.mk" -j "$JOBS" SRC="$LRK" INC="$LRK_BUILD/generated/dummy" \
  LIB="$LRK_PREFIX/lib" OUT="$WORK/librdkafka-tests" TEST_SRCS="${test_srcs[*]}" \
  STUBS="$WORK/test-stubs.c" >"$LOGS/test-runner-build.log" 2>&1 \
  || { tail -30 "$LOGS/test-runner-build.log"; die "building librdkafka's test-runner failed"; }
cp "$WORK/librdkafka-tests/test-runner" "$LRK/tests/test-runner"
echo "test-runner built in $((SECONDS - start))s"

# 0098's Java transactional producer: kafka-clients from Maven and a kafka-run-class.sh stand-in.
say "kafka-clients for librdkafka's Java test helper (0098)"
KAFKA_PATH="$WORK/kafka"
rm -rf "$KAFKA_PATH"
mkdir -p "$KAFKA_PATH/bin" "$KAFKA_PATH/libs"
cp "$HERE/kafka-run-class.sh" "$KAFKA_PATH/bin/"
mvn -B -ntp -q -f "$HERE/kafka-clients.pom.xml" dependency:copy-dependencies \
  -DoutputDirectory="$KAFKA_PATH/libs" -DincludeScope=runtime >"$LOGS/mvn.log" 2>&1 \
  || { tail -30 "$LOGS/mvn.log"; die "mvn dependency:copy-dependencies (kafka-clients) failed"; }
rm -rf "$HERE/target"
ls "$KAFKA_PATH"/libs/kafka-clients-*.jar >/dev/null || die "no kafka-clients jar in $KAFKA_PATH/libs"

# --- build: the rdkafka crate's test_transactions -----------------------------------------------
say "build the rdkafka $RDKAFKA_VER crate's test_transactions"
start=$SECONDS
crate="$WORK/rdkafka"
# The packaged Cargo.toml keeps only async-std of the dev-dependencies: drop it, add the ones
# test_transactions.rs and utils.rs use, with the requirements of the crate's Cargo.toml.orig,
# and make the copy a workspace of its own.
awk '/^\[dev-dependencies\./ {skip=1; next} /^\[/ {skip=0} !skip' "$crate/Cargo.toml" >"$crate/Cargo.toml.new"
{
  echo
  echo '[dev-dependencies]'
  awk '/^\[dev-dependencies\]/ {on=1; next} /^\[/ {on=0} on' "$crate/Cargo.toml.orig" \
    | grep -E '^(env_logger|maplit|rand|regex|tokio) '
  echo
  echo '[workspace]'
} >>"$crate/Cargo.toml.new"
mv "$crate/Cargo.toml.new" "$crate/Cargo.toml"
[ "$(grep -cE '^(env_logger|maplit|rand|regex|tokio) ' "$crate/Cargo.toml")" -eq 5 ] \
  || die "dev-dependencies of rdkafka's Cargo.toml.orig not found"
# The project's Cargo.lock pins the versions shared with it (rdkafka-sys among them).
cp Cargo.lock "$crate/Cargo.lock"
export PKG_CONFIG_PATH="$LRK_PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export CARGO_TARGET_DIR="$WORK/cargo-target"
cargo test --manifest-path "$crate/Cargo.toml" --features dynamic-linking --test test_transactions \
  --no-run -j "$JOBS" >"$LOGS/rdkafka-build.log" 2>&1 \
  || { tail -40 "$LOGS/rdkafka-build.log"; die "building rdkafka's test_transactions failed"; }
echo "rdkafka tests built in $((SECONDS - start))s"

# --- the broker ---------------------------------------------------------------------------------
BROKER_PID=""
declare -A PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$BROKER_PID" ]; then kill "$BROKER_PID" 2>/dev/null || true; wait "$BROKER_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
DATA="$WORK/data"
rm -rf "$DATA"
mkdir -p "$DATA"
say "start $OXBOW_BIN (log: $LOGS/oxbow.log)"
OXBOW_LOG="${OXBOW_LOG:-info}" "$OXBOW_BIN" serve --override listeners=PLAINTEXT://127.0.0.1:0 \
  --override log.dirs="$DATA" --override group.initial.rebalance.delay.ms=0 \
  >"$LOGS/oxbow.stdout" 2>"$LOGS/oxbow.log" &
BROKER_PID=$!
BOOTSTRAP=""
for _ in $(seq 300); do
  BOOTSTRAP="$(sed -n 's/^oxbow ready PLAINTEXT:\/\/\(.*\)$/\1/p' "$LOGS/oxbow.stdout" | head -1)"
  [ -n "$BOOTSTRAP" ] && break
  kill -0 "$BROKER_PID" 2>/dev/null || { tail -20 "$LOGS/oxbow.log"; die "the broker exited"; }
  sleep 0.1
done
[ -n "$BOOTSTRAP" ] || { tail -20 "$LOGS/oxbow.log"; die "the broker was not ready within 30 s"; }
echo "broker at $BOOTSTRAP"

PASSED=0
FAILED=0
declare -a FAILURES=()
pass() { PASSED=$((PASSED + 1)); printf 'PASS  %s\n' "$1"; }
fail() { FAILED=$((FAILED + 1)); FAILURES+=("$1 (log: $2)"); printf 'FAIL  %s (log: %s)\n' "$1" "$2"; }

# --- the runs: librdkafka's tests in the background (one test-runner each), the crate's meanwhile;
# they spend most of their time waiting (JVM starts, consume timeouts), not on the CPU.
say "librdkafka $RDKAFKA_SYS_VER tests ($MODE_NAME), against $BOOTSTRAP, in the background"
printf '%s\n' "# Written by compat-tests/upstream/run.sh" "metadata.broker.list=$BOOTSTRAP" \
  >"$LRK/tests/test.conf"
for t in "${LIBRDKAFKA_TESTS[@]}"; do
  (cd "$LRK/tests" && TESTS="${t%%_*}" TEST_KAFKA_VERSION="$BROKER_VERSION" KAFKA_PATH="$KAFKA_PATH" \
    RDKAFKA_GITVER="$RDKAFKA_SYS_VER" exec timeout 300 ./test-runner "${MODE_ARGS[@]}" -E -L -p1) \
    >"$LOGS/librdkafka-$t.log" 2>&1 &
  PIDS[$t]=$!
done

# --- (a) the rdkafka crate ----------------------------------------------------------------------
say "rdkafka $RDKAFKA_VER tests/test_transactions.rs"
rc=0
KAFKA_HOST="$BOOTSTRAP" KAFKA_VERSION="$BROKER_VERSION" LD_LIBRARY_PATH="$LRK_PREFIX/lib" \
  timeout 300 cargo test --manifest-path "$crate/Cargo.toml" --features dynamic-linking \
  --test test_transactions -j "$JOBS" -- --test-threads=2 >"$LOGS/rdkafka-tests.log" 2>&1 || rc=$?
grep -E '^test .* \.\.\. |^test result' "$LOGS/rdkafka-tests.log" || true
for t in "${RDKAFKA_TESTS[@]}"; do
  if grep -qxF "test $t ... ok" "$LOGS/rdkafka-tests.log"; then
    pass "rdkafka $t"
  else
    fail "rdkafka $t" "$LOGS/rdkafka-tests.log"
  fi
done
[ "$rc" -eq 0 ] || echo "cargo test exited with $rc"

# --- (b) librdkafka's test suite ----------------------------------------------------------------
say "librdkafka $RDKAFKA_SYS_VER tests: waiting"
for t in "${LIBRDKAFKA_TESTS[@]}"; do
  log="$LOGS/librdkafka-$t.log"
  rc=0
  wait "${PIDS[$t]}" || rc=$?
  # A test that skipped itself counts as failed: the summary must say PASSED.
  if [ "$rc" -eq 0 ] && grep -qE "\|[^ ]* +${t} +\| +PASSED +\|" "$log"; then
    pass "librdkafka $t"
  else
    sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^Test assertion failed|^### Test|Exception in thread' | head -4 || true
    fail "librdkafka $t (exit $rc)" "$log"
  fi
done

kill -0 "$BROKER_PID" 2>/dev/null || { FAILED=$((FAILED + 1)); FAILURES+=("the broker died (log: $LOGS/oxbow.log)"); }
printf '\n%d passed, %d failed\n' "$PASSED" "$FAILED"
if [ "$FAILED" -ne 0 ]; then
  printf 'failed: %s\n' "${FAILURES[@]}"
  exit 1
fi
