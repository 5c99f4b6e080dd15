#!/usr/bin/env bash
# Runs every test of Oxbow on a fresh Debian machine, installing what the tests need:
# formatting and lints, the Rust unit/property/crash tests, the librdkafka tests (the rdkafka
# crate builds librdkafka from source), the Python clients (confluent-kafka = librdkafka,
# kafka-python), franz-go (Go modules) and the Java client with AdminClient (Maven). A missing tool fails the run;
# nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
export CARGO_TERM_COLOR=never

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'FATAL: %s\n' "$*" >&2; exit 1; }

step "system packages"
missing=()
for tool in cmake g++ make mvn java python3 pkg-config curl-config; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
# librdkafka's CMake build turns curl support on when it finds libcurl, and then needs its headers.
[ -e /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -e /usr/include/curl/curl.h ] || missing+=("libcurl-headers")
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing for: ${missing[*]}"
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found and missing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq cmake g++ make maven default-jdk-headless python3 python3-pip pkg-config \
    libcurl4-openssl-dev libssl-dev zlib1g-dev >/dev/null
fi
for tool in cargo rustc cmake g++ mvn java python3 go; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required and could not be installed"
done
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "python clients"
python3 -m pip install -q --disable-pip-version-check -r compat-tests/python/requirements.txt \
  || die "pip could not install compat-tests/python/requirements.txt"
python3 -c "import confluent_kafka, kafka, pytest" || die "python test dependencies missing"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "build the broker"
cargo build -p oxbow-broker
export OXBOW_BIN="$PWD/target/debug/oxbow"
[ -x "$OXBOW_BIN" ] || die "no broker binary at $OXBOW_BIN"

step "cargo test (unit, property, crash and librdkafka tests)"
cargo test --workspace

step "python clients (librdkafka via confluent-kafka, kafka-python)"
python3 -m pytest -q compat-tests/python

step "franz-go (Go)"
(cd compat-tests/go && go test -count=1 ./...)

step "java client and AdminClient"
(cd compat-tests/java && mvn -B -ntp test)

printf '\nall test suites passed\n'
