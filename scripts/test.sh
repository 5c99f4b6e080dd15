#!/usr/bin/env bash
# The one command that runs every test of Oxbow, on a fresh Debian machine or a dev box:
#   formatting and lints, the workspace's unit/property/crash tests, the librdkafka tests
#   (the rdkafka crate compiles librdkafka from source), the Python clients (confluent-kafka,
#   kafka-python), franz-go (Go modules) and the Java clients with AdminClient and
#   kafka-transactions.sh (Maven, kafka-clients 4.4 and 3.9), and the client compatibility matrix
#   (compat-tests/MATRIX.md: kcat, librdkafka, Java 2.8-4.4, Go, Python and Node clients).
# System packages are installed with apt-get only when something is missing. A missing or
# broken tool fails the run with a clear message: nothing is ever skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
JOBS="${CARGO_BUILD_JOBS:-2}"
export CARGO_BUILD_JOBS="$JOBS"
export CARGO_TERM_COLOR=never

declare -a SUMMARY=()
RUN_START=$SECONDS

summary() {
  printf '\n==================== summary ====================\n'
  local line
  for line in "${SUMMARY[@]}"; do printf '%s\n' "$line"; done
  printf 'total: %ds\n' "$((SECONDS - RUN_START))"
}

die() {
  printf '\nFATAL: %s\n' "$*" >&2
  SUMMARY+=("FAIL  $*")
  summary
  exit 1
}

# step NAME COMMAND...: runs one step, records PASS/FAIL with its duration, stops at a failure.
step() {
  local name="$1"
  shift
  printf '\n==> %s\n' "$name"
  local start=$SECONDS rc=0
  "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then
    SUMMARY+=("$(printf 'FAIL  %-70s %4ds (exit %d)' "$name" "$((SECONDS - start))" "$rc")")
    summary
    printf '\nFAILED: %s\n' "$name" >&2
    exit "$rc"
  fi
  SUMMARY+=("$(printf 'ok    %-70s %4ds' "$name" "$((SECONDS - start))")")
}

have() { command -v "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------
go_minor() {
  go env GOVERSION 2>/dev/null | sed -n 's/^go1\.\([0-9]*\).*/\1/p'
}

java_major() {
  javac -version 2>&1 | sed -n 's/^javac \([0-9]*\).*/\1/p'
}

install_system_packages() {
  local missing=() pkgs=()
  have cmake || { missing+=(cmake); pkgs+=(cmake); }
  have g++ || { missing+=(g++); pkgs+=(g++); }
  have make || { missing+=(make); pkgs+=(make); }
  have pkg-config || { missing+=(pkg-config); pkgs+=(pkg-config); }
  have mvn || { missing+=(mvn); pkgs+=(maven); }
  if ! have javac || [ "$(java_major)" -lt 17 ] 2>/dev/null || [ -z "$(java_major)" ]; then
    missing+=("javac>=17"); pkgs+=(default-jdk-headless)
  fi
  have python3 || { missing+=(python3); pkgs+=(python3); }
  have curl || { missing+=(curl); pkgs+=(curl); }
  # librdkafka's CMake build (rdkafka-sys) turns curl support on when it finds libcurl and then
  # needs its headers, which the machine image lacks.
  if [ ! -e /usr/include/x86_64-linux-gnu/curl/curl.h ] && [ ! -e /usr/include/curl/curl.h ]; then
    missing+=(libcurl-headers); pkgs+=(libcurl4-openssl-dev)
  fi
  if ! python3 -c 'import confluent_kafka, kafka, pytest' >/dev/null 2>&1 \
    && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    missing+=(python3-venv); pkgs+=(python3-venv python3-pip)
  fi
  if [ ${#pkgs[@]} -eq 0 ]; then
    echo "all system tools present: cmake g++ make pkg-config mvn javac($(java_major)) python3 go"
    return 0
  fi
  echo "missing: ${missing[*]}; installing: ${pkgs[*]}"
  have apt-get || { echo "apt-get not found: install ${pkgs[*]} by hand" >&2; return 1; }
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    have sudo || { echo "not root and no sudo: install ${pkgs[*]} by hand" >&2; return 1; }
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq || return
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${pkgs[@]}" zlib1g-dev ca-certificates || return
}

# Go: the machine image ships a current Go; Debian's golang-go is too old for franz-go, and no
# toolchain can be downloaded from elsewhere here, so a missing or old Go fails the run.
install_go() {
  have go || { echo "go is required (Go 1.22+) for compat-tests/go and is not installed" >&2; return 1; }
  [ "$(go_minor)" -ge 22 ] 2>/dev/null || { echo "Go 1.22 or newer required, found $(go version)" >&2; return 1; }
  go version
}

check_tools() {
  local t
  for t in cargo rustc cmake g++ make mvn java javac python3 go; do
    have "$t" || { echo "$t is required but missing" >&2; return 1; }
  done
  [ "$(java_major)" -ge 17 ] || { echo "JDK 17 or newer required, found javac $(java_major)" >&2; return 1; }
  if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    have rustup || { echo "cargo fmt/clippy missing and no rustup to add them" >&2; return 1; }
    rustup component add rustfmt clippy || return
  fi
  cargo fmt --version && cargo clippy --version || return
  cargo --version && cmake --version | sed -n 1p && g++ --version | sed -n 1p || return
  mvn -B -v | sed -n 1p && javac -version && go version || return
}

PYTHON=python3
python_clients() {
  if python3 -c 'import confluent_kafka, kafka, pytest' >/dev/null 2>&1; then
    echo "python clients already installed for $(command -v python3)"
  else
    # A private venv: Debian's system Python refuses pip installs (PEP 668).
    local venv="$ROOT/target/compat-venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || return
    "$venv/bin/python" -m pip install -q --disable-pip-version-check \
      -r compat-tests/python/requirements.txt || return
    PYTHON="$venv/bin/python"
  fi
  "$PYTHON" -c 'import confluent_kafka, kafka, pytest
print("confluent-kafka", confluent_kafka.version(), "librdkafka", confluent_kafka.libversion())'
}

# Both Maven modules (kafka-clients 4.4 with transactions V2, 3.9 with V1) compile and run the
# shared transaction tests; a module that ran none of them, or any skipped test, fails the step.
java_clients() {
  (cd compat-tests/java && mvn -B -ntp --fail-at-end clean test) || return
  local m f
  for m in clients-4.4 clients-3.9; do
    for f in TransactionsTest ExactlyOnceCopierTest TransactionFencingTest TransactionTimeoutTest TransactionsAdminTest; do
      [ -s "compat-tests/java/$m/target/surefire-reports/TEST-dev.oxbow.compat.$f.xml" ] \
        || { echo "compat-tests/java/$m ran no $f" >&2; return 1; }
    done
  done
  if grep -l 'skipped="[1-9]' compat-tests/java/clients-*/target/surefire-reports/TEST-*.xml; then
    echo "skipped Java tests (listed above)" >&2
    return 1
  fi
}

build_broker() {
  cargo build -p oxbow-broker -j "$JOBS" || return
  [ -x "$ROOT/target/debug/oxbow" ] || { echo "no broker binary at target/debug/oxbow" >&2; return 1; }
}

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  step "system packages (apt-get only if something is missing)" install_system_packages
  step "go toolchain" install_go
fi
step "tool check" check_tools
step "python clients" python_clients

step "cargo fmt --all -- --check" cargo fmt --all -- --check
step "cargo clippy --workspace --all-targets -D warnings" \
  cargo clippy --workspace --all-targets -j "$JOBS" -- -D warnings
step "build the broker (cargo build -p oxbow-broker)" build_broker
export OXBOW_BIN="$ROOT/target/debug/oxbow"

step "cargo test --workspace (unit, property, crash, librdkafka, raw protocol)" \
  cargo test --workspace -j "$JOBS"
step "upstream suites: rdkafka crate tests and librdkafka test suite (quick mode)" bash compat-tests/upstream/run.sh
step "python clients (confluent-kafka, kafka-python)" \
  "$PYTHON" -m pytest -q -p no:cacheprovider compat-tests/python
step "franz-go (go test)" \
  bash -c 'cd compat-tests/go && go test -count=1 ./...'
step "java clients 4.4 and 3.9, AdminClient, kafka-transactions.sh (mvn test, both modules)" java_clients
step "kafka streams exactly_once_v2 (mvn test)" bash -c 'cd compat-tests/streams && mvn -B -ntp test'
step "client compatibility matrix (compat-tests/matrix/run.sh)" bash compat-tests/matrix/run.sh

summary
printf '\nall test suites passed\n'
