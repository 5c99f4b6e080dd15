#!/usr/bin/env bash
# The UPSTREAM client test suites against Oxbow, from the copies that the crates.io packages in
# ~/.cargo/registry contain (never a git checkout):
#  (a) every integration test of the rdkafka crate (tests/test_*.rs, + the utils.rs module they
#      include), built as a package of its own in target/upstream/rdkafka with the
#      dev-dependencies of the crate's Cargo.toml.orig; they run against a broker on
#      localhost:9092, node id 0, num.partitions=3 (the crate's docker-compose.yaml; some tests
#      hard-code localhost:9092);
#  (b) librdkafka's own test suite (tests/ in rdkafka-sys), every 0nnn test, in the suite's quick
#      mode (`make quick`: `test-runner -Q -E`, plus -L: no broker-less tests), except the
#      transactional tests 0061 0098 0103 0129 0137, which keep running in full mode
#      (UPSTREAM_QUICK=1: those in quick mode too). One test-runner per test number, several at
#      a time; bootstrap servers through the suite's test.conf, broker version through
#      TEST_KAFKA_VERSION, the "noautocreate" scenario's tests against a broker with
#      auto.create.topics.enable=false. One change to the suite: its topic-creation helper asks
#      for replication factor 1 where 0098/0103 ask for 3.
# librdkafka is built once (CMake, shared, in target/upstream) and serves both: the rdkafka crate
# links it through rdkafka-sys's `dynamic-linking` feature. excluded.txt names every test not run,
# with its reason, and the known failures (`oxbow-bug:`), which run but do not fail the step.
# Broker logs: target/upstream/logs/oxbow-*.log (OXBOW_LOG=debug for more). Prints
# `N passed, N failed` per suite and writes them to compat-tests/upstream/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
HERE="$ROOT/compat-tests/upstream"
WORK="$ROOT/target/upstream"
LOGS="$WORK/logs"
JOBS="${CARGO_BUILD_JOBS:-2}"
OXBOW_BIN="${OXBOW_BIN:-$ROOT/target/debug/oxbow}"
# librdkafka test-runners at a time (they mostly wait on the broker, not on the CPU).
PARALLEL="${UPSTREAM_PARALLEL:-6}"
# The suites gate some checks on the broker version (librdkafka's default assumption is 2.4).
BROKER_VERSION=4.0.0
# librdkafka's transactional tests run in full mode: quick mode (-Q) skips every subtest not
# marked quick, which is all of 0061's and 0137's and 0098's Java scenarios 0-4.
FULL_MODE_TESTS=" 0061 0098 0103 0129 0137 "
[ "${UPSTREAM_QUICK:-0}" = 1 ] && FULL_MODE_TESTS=" "

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
# Same timestamp as the original, so the object built from the patched file stays up to date.
touch -r "$SYS_SRC/librdkafka/tests/test.c" "$LRK/tests/test.c"

# --- the candidate tests and the exclusion list -------------------------------------------------
# Candidates: every test function of the crate's tests/test_*.rs (`<file>::<fn>`) and of the
# utils.rs module they all include (run once, in test_transactions); every 0nnn test of
# librdkafka's test list in tests/test.c (the 8nnn ones are manual and never run by `make`).
crate="$WORK/rdkafka"
RDKAFKA_FILES=()
for f in "$crate"/tests/test_*.rs; do RDKAFKA_FILES+=("$(basename "$f" .rs)"); done
candidates() {
  local b
  for b in "${RDKAFKA_FILES[@]}"; do
    grep -oE '^(async )?fn test_[a-z_0-9]+' "$crate/tests/$b.rs" | sed "s/.*fn /rdkafka $b::/"
  done
  grep -oE '^    (async )?fn test_[a-z_0-9]+' "$crate/tests/utils.rs" | sed 's/.*fn /rdkafka utils::tests::/'
  grep -oE '^ *_TEST\(0[0-9]{3}_[A-Za-z0-9_]+' "$LRK/tests/test.c" | sed 's/.*(/librdkafka /'
}
# excluded.txt: `<suite> <test> <reason>`; a reason starting with `oxbow-bug:` is a known failure.
entries() { grep -vE '^\s*(#|$)' "$HERE/excluded.txt"; }
mapfile -t CANDIDATES < <(candidates)
declare -A IS_CANDIDATE=() EXCLUDED=() KNOWN=()
for c in "${CANDIDATES[@]}"; do IS_CANDIDATE[$c]=1; done
while read -r suite test reason; do
  key="$suite $test"
  [ -n "${IS_CANDIDATE[$key]:-}" ] || die "excluded.txt names '$key', which is not a candidate test"
  [ -z "${EXCLUDED[$key]:-}${KNOWN[$key]:-}" ] || die "excluded.txt names '$key' twice"
  [ -n "$reason" ] || die "excluded.txt: no reason given for '$key'"
  case "$reason" in
    oxbow-bug:*) KNOWN[$key]="$reason" ;;
    *) EXCLUDED[$key]="$reason" ;;
  esac
done < <(entries)
RUN=()   # candidates that run: all but the excluded (known failures run too)
for c in "${CANDIDATES[@]}"; do [ -n "${EXCLUDED[$c]:-}" ] || RUN+=("$c"); done
echo "${#CANDIDATES[@]} candidate tests: ${#RUN[@]} run (${#KNOWN[@]} of them known Oxbow failures), ${#EXCLUDED[@]} excluded"

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

# --- build: librdkafka's test-runner (all tests, as the suite's Makefile builds it) -------------
say "build librdkafka's test-runner"
start=$SECONDS
make -f "$HERE/librdkafka-tests.mk" -j "$JOBS" SRC="$LRK" INC="$LRK_BUILD/generated/dummy" \
  LIB="$LRK_PREFIX/lib" OUT="$WORK/librdkafka-tests" >"$LOGS/test-runner-build.log" 2>&1 \
  || { tail -30 "$LOGS/test-runner-build.log"; die "building librdkafka's test-runner failed"; }
cp "$WORK/librdkafka-tests/test-runner" "$LRK/tests/test-runner"
echo "test-runner built in $((SECONDS - start))s"

# A Kafka distribution's bin/ as the tests use it ($KAFKA_PATH): kafka-run-class.sh (0098's Java
# transactional producer) and kafka-topics.sh (0045, 0052), with kafka-clients and kafka-tools.
say "kafka-clients and kafka-tools for librdkafka's tests (\$KAFKA_PATH)"
KAFKA_PATH="$WORK/kafka"
rm -rf "$KAFKA_PATH"
mkdir -p "$KAFKA_PATH/bin" "$KAFKA_PATH/libs"
cp "$HERE/kafka-run-class.sh" "$HERE/kafka-topics.sh" "$KAFKA_PATH/bin/"
mvn -B -ntp -q -f "$HERE/kafka-clients.pom.xml" dependency:copy-dependencies \
  -DoutputDirectory="$KAFKA_PATH/libs" -DincludeScope=runtime >"$LOGS/mvn.log" 2>&1 \
  || { tail -30 "$LOGS/mvn.log"; die "mvn dependency:copy-dependencies (kafka-clients, kafka-tools) failed"; }
rm -rf "$HERE/target"
ls "$KAFKA_PATH"/libs/kafka-clients-*.jar "$KAFKA_PATH"/libs/kafka-tools-*.jar >/dev/null \
  || die "no kafka-clients/kafka-tools jar in $KAFKA_PATH/libs"

# --- build: the rdkafka crate's integration tests -----------------------------------------------
say "build the rdkafka $RDKAFKA_VER crate's integration tests (${RDKAFKA_FILES[*]})"
start=$SECONDS
# The packaged Cargo.toml keeps only async-std of the dev-dependencies: drop it, add the ones
# the tests use, with the requirements of the crate's Cargo.toml.orig, and make the copy a
# workspace of its own.
DEV_DEPS='backon|env_logger|futures|maplit|rand|regex|tokio'
awk '/^\[dev-dependencies\./ {skip=1; next} /^\[/ {skip=0} !skip' "$crate/Cargo.toml" >"$crate/Cargo.toml.new"
{
  echo
  echo '[dev-dependencies]'
  awk '/^\[dev-dependencies\]/ {on=1; next} /^\[/ {on=0} on' "$crate/Cargo.toml.orig" \
    | grep -E "^($DEV_DEPS) "
  echo
  echo '[workspace]'
} >>"$crate/Cargo.toml.new"
mv "$crate/Cargo.toml.new" "$crate/Cargo.toml"
[ "$(grep -cE "^($DEV_DEPS) " "$crate/Cargo.toml")" -eq 7 ] \
  || die "dev-dependencies of rdkafka's Cargo.toml.orig not found"
# The project's Cargo.lock pins the versions shared with it (rdkafka-sys among them); cargo
# adds the test-only ones (backon, futures).
cp Cargo.lock "$crate/Cargo.lock"
export PKG_CONFIG_PATH="$LRK_PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export CARGO_TARGET_DIR="$WORK/cargo-target"
test_args=()
for b in "${RDKAFKA_FILES[@]}"; do test_args+=(--test "$b"); done
cargo test --manifest-path "$crate/Cargo.toml" --features dynamic-linking "${test_args[@]}" \
  --no-run -j "$JOBS" >"$LOGS/rdkafka-build.log" 2>&1 \
  || { tail -40 "$LOGS/rdkafka-build.log"; die "building rdkafka's integration tests failed"; }
echo "rdkafka tests built in $((SECONDS - start))s"

# --- the brokers ----------------------------------------------------------------------------------
BROKER_PIDS=()
declare -A PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${BROKER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
rm -rf "$WORK/data"
# start_broker NAME LISTENER KEY=VALUE...: `oxbow serve --dev` (auto-create, no initial rebalance
# delay, page-cache acks), its own data dir; sets BOOTSTRAP to the address it is ready on.
start_broker() {
  local name="$1" listener="$2" o args=() pid
  shift 2
  for o in "$@"; do args+=(--override "$o"); done
  mkdir -p "$WORK/data/$name"
  OXBOW_LOG="${OXBOW_LOG:-info}" "$OXBOW_BIN" serve --dev --override listeners="PLAINTEXT://$listener" \
    --override log.dirs="$WORK/data/$name" "${args[@]}" \
    >"$LOGS/oxbow-$name.stdout" 2>"$LOGS/oxbow-$name.log" &
  pid=$!
  BROKER_PIDS+=("$pid")
  BOOTSTRAP=""
  for _ in $(seq 300); do
    BOOTSTRAP="$(sed -n 's/^oxbow ready PLAINTEXT:\/\/\(.*\)$/\1/p' "$LOGS/oxbow-$name.stdout" | head -1)"
    [ -n "$BOOTSTRAP" ] && break
    kill -0 "$pid" 2>/dev/null || { tail -20 "$LOGS/oxbow-$name.log"; die "the $name broker exited"; }
    sleep 0.1
  done
  [ -n "$BOOTSTRAP" ] || { tail -20 "$LOGS/oxbow-$name.log"; die "the $name broker was not ready within 30 s"; }
  echo "$name broker at $BOOTSTRAP (log: $LOGS/oxbow-$name.log)"
}
say "start the brokers ($OXBOW_BIN)"
# The crate's tests expect its docker-compose.yaml broker: node id 0, 3 partitions per
# auto-created topic, and localhost:9092 (test_high_producers and test_metadata hard-code it).
start_broker rdkafka localhost:9092 node.id=0 num.partitions=3 \
  || die "the rdkafka crate's tests need localhost:9092 free"
RDKAFKA_BOOTSTRAP="$BOOTSTRAP"
# librdkafka's scenarios (tests/scenarios/*.json): 4 partitions; "noautocreate" has auto-creation
# off. Its group tests are timed for Kafka's default initial rebalance delay (trivup keeps it):
# with 0, the first consumer of 0118 gets every partition before the second one joins.
LRK_CONF=(num.partitions=4 group.initial.rebalance.delay.ms=3000)
start_broker librdkafka 127.0.0.1:0 "${LRK_CONF[@]}"
LRK_BOOTSTRAP="$BOOTSTRAP"
start_broker librdkafka-noautocreate 127.0.0.1:0 "${LRK_CONF[@]}" auto.create.topics.enable=false
LRK_NOAUTO_BOOTSTRAP="$BOOTSTRAP"
printf '%s\n' "# Written by compat-tests/upstream/run.sh" "metadata.broker.list=$LRK_BOOTSTRAP" \
  >"$LRK/tests/test.conf"
printf '%s\n' "# Written by compat-tests/upstream/run.sh" "metadata.broker.list=$LRK_NOAUTO_BOOTSTRAP" \
  >"$LRK/tests/test-noautocreate.conf"

# Results, per suite: pass / fail / known (a known Oxbow failure that failed) / fixed (one that passed).
declare -A NPASS=() NFAIL=() NKNOWN=() NFIXED=()
FAILURES=()
KNOWN_SEEN=()
FIXED_SEEN=()
result() { # SUITE TEST ok|fail LOG
  local key="$1 $2"
  if [ -n "${KNOWN[$key]:-}" ]; then
    if [ "$3" = ok ]; then
      NFIXED[$1]=$((${NFIXED[$1]:-0} + 1)); FIXED_SEEN+=("$key")
      printf 'PASS  %s (listed as a known Oxbow failure: remove it from excluded.txt)\n' "$key"
    else
      NKNOWN[$1]=$((${NKNOWN[$1]:-0} + 1)); KNOWN_SEEN+=("$key")
      printf 'KNOWN %s (log: %s)\n' "$key" "$4"
    fi
  elif [ "$3" = ok ]; then
    NPASS[$1]=$((${NPASS[$1]:-0} + 1)); printf 'PASS  %s\n' "$key"
  else
    NFAIL[$1]=$((${NFAIL[$1]:-0} + 1)); FAILURES+=("$key (log: $4)"); printf 'FAIL  %s (log: %s)\n' "$key" "$4"
  fi
}

# --- (b) librdkafka's tests, in the background: one test-runner per (test number, scenario) -----
# The runner picks tests by number (TESTS=0045 runs every 0045_* test of the scenario); the
# excluded tests that share a number with a run one are the broker-less (-L) and sockem (-E) ones.
declare -A SCENARIO=()
while read -r t scn; do SCENARIO[$t]="$scn"; done < <(awk '
  match($0, /_TEST\(0[0-9][0-9][0-9]_[A-Za-z0-9_]+/) { if (t != "") print t, s; t = substr($0, RSTART + 6, RLENGTH - 6); s = "default" }
  t != "" && match($0, /\.scenario *= *"[^"]*"/) { s = substr($0, RSTART, RLENGTH); sub(/.*= *"/, "", s); sub(/"$/, "", s) }
  /^ *\{NULL\}/ { if (t != "") print t, s; t = "" }' "$LRK/tests/test.c")
declare -A RUN_GROUPS=()
for c in "${RUN[@]}"; do
  case "$c" in librdkafka\ *) t="${c#librdkafka }" ;; *) continue ;; esac
  scn="${SCENARIO[$t]:-default}"
  case "$scn" in noautocreate) ;; *) scn=default ;; esac
  RUN_GROUPS["${t%%_*} $scn"]=1
done
# Longest first: the full-mode ones.
mapfile -t GROUP_LIST < <(for g in "${!RUN_GROUPS[@]}"; do
  case "$FULL_MODE_TESTS" in *" ${g%% *} "*) echo "0 $g" ;; *) echo "1 $g" ;; esac; done | sort | cut -d' ' -f2-)
say "librdkafka $RDKAFKA_SYS_VER tests: ${#GROUP_LIST[@]} test-runners, $PARALLEL at a time, in the background"
run_group() { # NUM SCENARIO
  local num="$1" scn="$2" conf="test.conf" bs="$LRK_BOOTSTRAP" mode=(-Q)
  if [ "$scn" = noautocreate ]; then conf="test-noautocreate.conf"; bs="$LRK_NOAUTO_BOOTSTRAP"; fi
  case "$FULL_MODE_TESTS" in *" $num "*) mode=() ;; esac
  cd "$LRK/tests" && TESTS="$num" TEST_SCENARIO="$scn" RDKAFKA_TEST_CONF="$conf" BROKERS="$bs" \
    TEST_KAFKA_VERSION="$BROKER_VERSION" KAFKA_PATH="$KAFKA_PATH" RDKAFKA_GITVER="$RDKAFKA_SYS_VER" \
    exec timeout 600 ./test-runner "${mode[@]}" -E -L -p1
}
(
  for g in "${GROUP_LIST[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$PARALLEL" ]; do wait -n || true; done
    ( run_group $g >"$LOGS/librdkafka-${g/ /-}.log" 2>&1; echo "exit $?" >>"$LOGS/librdkafka-${g/ /-}.log" ) &
  done
  wait
) &
PIDS[librdkafka]=$!
lrk_start=$SECONDS

# --- (a) the rdkafka crate, meanwhile: one test binary after the other ---------------------------
say "rdkafka $RDKAFKA_VER tests/test_*.rs, against $RDKAFKA_BOOTSTRAP"
for b in "${RDKAFKA_FILES[@]}"; do
  skips=()
  [ "$b" = test_transactions ] || skips+=(--skip utils::tests::test_populate_topic)
  for key in "${!EXCLUDED[@]}"; do
    case "$key" in "rdkafka $b::"*) skips+=(--skip "${key#rdkafka "$b"::}") ;; esac
  done
  log="$LOGS/rdkafka-$b.log"
  rc=0
  KAFKA_HOST="$RDKAFKA_BOOTSTRAP" KAFKA_VERSION="$BROKER_VERSION" LD_LIBRARY_PATH="$LRK_PREFIX/lib" \
    timeout 300 cargo test --manifest-path "$crate/Cargo.toml" --features dynamic-linking \
    --test "$b" -j "$JOBS" -- --exact --test-threads=4 "${skips[@]}" >"$log" 2>&1 || rc=$?
  for c in "${RUN[@]}"; do
    case "$c" in
      "rdkafka $b::"*) t="${c#rdkafka "$b"::}" ;;
      "rdkafka utils::"*) [ "$b" = test_transactions ] || continue; t="${c#rdkafka }" ;;
      *) continue ;;
    esac
    if grep -qxF "test $t ... ok" "$log"; then result rdkafka "${c#rdkafka }" ok "$log"
    else result rdkafka "${c#rdkafka }" fail "$log"; fi
  done
done

# --- (b) librdkafka's results ---------------------------------------------------------------------
say "librdkafka $RDKAFKA_SYS_VER tests: waiting"
wait "${PIDS[librdkafka]}" || true
unset 'PIDS[librdkafka]'
echo "librdkafka tests took $((SECONDS - lrk_start))s"
for c in "${RUN[@]}"; do
  case "$c" in librdkafka\ *) t="${c#librdkafka }" ;; *) continue ;; esac
  scn="${SCENARIO[$t]:-default}"
  case "$scn" in noautocreate) ;; *) scn=default ;; esac
  log="$LOGS/librdkafka-${t%%_*}-$scn.log"
  # The runner's summary table; a test that failed, timed out or skipped itself is not PASSED.
  if sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -qE "^\| +$t +\| +PASSED +\|"; then
    result librdkafka "$t" ok "$log"
  else
    result librdkafka "$t" fail "$log"
    [ -n "${KNOWN[librdkafka $t]:-}" ] || sed 's/\x1b\[[0-9;]*m//g' "$log" \
      | grep -E '^Test assertion failed|^### Test|Exception in thread|timed out' | head -4 || true
  fi
done
# An excluded test must not run: it shares its number with a run test, so -L/-E must filter it.
for key in "${!EXCLUDED[@]}"; do
  case "$key" in librdkafka\ *) t="${key#librdkafka }" ;; *) continue ;; esac
  for log in "$LOGS/librdkafka-${t%%_*}-"*.log; do
    [ -e "$log" ] || continue
    if sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -qE "^\| +$t +\| +(PASSED|FAILED) +\|"; then
      NFAIL[librdkafka]=$((${NFAIL[librdkafka]:-0} + 1))
      FAILURES+=("librdkafka $t ran although excluded.txt excludes it (log: $log)")
    fi
  done
done

for b in "${BROKER_PIDS[@]}"; do
  kill -0 "$b" 2>/dev/null || { NFAIL[broker]=1; FAILURES+=("a broker died (logs: $LOGS/oxbow-*.log)"); }
done

# --- report ---------------------------------------------------------------------------------------
summary_line() { # SUITE
  printf '%d passed, %d failed' "${NPASS[$1]:-0}" "${NFAIL[$1]:-0}"
  [ "${NKNOWN[$1]:-0}" -eq 0 ] || printf ', %d known Oxbow failures' "${NKNOWN[$1]}"
  [ "${NFIXED[$1]:-0}" -eq 0 ] || printf ', %d known failures now passing' "${NFIXED[$1]}"
}
n_excluded() { local k n=0; for k in "${!EXCLUDED[@]}"; do case "$k" in "$1 "*) n=$((n + 1)) ;; esac; done; echo "$n"; }
echo
printf 'rdkafka %s (tests/test_*.rs): %s\n' "$RDKAFKA_VER" "$(summary_line rdkafka)"
printf 'librdkafka %s (tests/, quick mode): %s\n' "${RDKAFKA_SYS_VER#*+}" "$(summary_line librdkafka)"
TOTAL_PASS=$((${NPASS[rdkafka]:-0} + ${NPASS[librdkafka]:-0}))
TOTAL_FAIL=$((${NFAIL[rdkafka]:-0} + ${NFAIL[librdkafka]:-0} + ${NFAIL[broker]:-0}))
printf '%d passed, %d failed\n' "$TOTAL_PASS" "$TOTAL_FAIL"

commit="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
if [ "$commit" != unknown ] && ! git diff --quiet HEAD -- . ':!compat-tests/upstream/RESULTS.md' 2>/dev/null; then
  commit="$commit (with uncommitted changes)"
fi
{
  echo "# Upstream client suites against Oxbow"
  echo
  echo "Generated by \`compat-tests/upstream/run.sh\` (do not edit): $(date -u '+%Y-%m-%d %H:%M UTC'), Oxbow"
  echo "commit $commit, against brokers that run.sh starts (\`oxbow serve --dev\`, settings in run.sh)."
  echo
  echo "| Suite | Passed | Failed | Known Oxbow bugs (failing) | Excluded (reasons in excluded.txt) |"
  echo "|---|---|---|---|---|"
  echo "| rdkafka $RDKAFKA_VER crate, \`tests/test_*.rs\` | ${NPASS[rdkafka]:-0} | ${NFAIL[rdkafka]:-0} | ${NKNOWN[rdkafka]:-0} | $(n_excluded rdkafka) |"
  echo "| librdkafka ${RDKAFKA_SYS_VER#*+} \`tests/\` (0nnn), quick mode$([ "$FULL_MODE_TESTS" = " " ] || echo "; full mode for${FULL_MODE_TESTS% }") | ${NPASS[librdkafka]:-0} | ${NFAIL[librdkafka]:-0} | ${NKNOWN[librdkafka]:-0} | $(n_excluded librdkafka) |"
  echo
  echo "## Failures"
  echo
  if [ "${#FAILURES[@]}" -eq 0 ]; then echo "None."; else printf -- '- %s\n' "${FAILURES[@]%% (log:*}"; fi
  echo
  echo "## Known Oxbow bugs (\`oxbow-bug:\` in excluded.txt; they run, and do not fail the step)"
  echo
  if [ "${#KNOWN[@]}" -eq 0 ]; then echo "None."; else
    for k in $(printf '%s\n' "${!KNOWN[@]}" | sed 's/ /\//' | sort); do
      k="${k/\// }"
      status="failed"
      printf '%s\n' "${FIXED_SEEN[@]}" | grep -qxF "$k" && status="PASSED (remove it from the list)"
      printf -- '- %s: %s — %s\n' "$k" "$status" "${KNOWN[$k]#oxbow-bug: }"
    done
  fi
} >"$HERE/RESULTS.md"
echo "wrote $HERE/RESULTS.md"

if [ "$TOTAL_FAIL" -ne 0 ]; then
  printf 'failed: %s\n' "${FAILURES[@]}"
  exit 1
fi
