#!/usr/bin/env bash
# The client compatibility matrix: every runner (one client at one version or configuration)
# against its own fresh `oxbow` broker, then compat-tests/MATRIX.md rendered from the results.
#   bash compat-tests/matrix/run.sh            # everything (installs what is missing)
#   MATRIX_ONLY='kcat sarama' bash ...run.sh    # runners whose id contains one of the words
#                                               (writes target/matrix/MATRIX.partial.md instead)
# Installs (only when missing): Debian's kcat, python3-confluent-kafka, python3-kafka and codec
# modules (apt); a venv with the PyPI clients (target/matrix/venv); kafkajs (npm ci); the Go
# runner (go build); the Java runner once per kafka-clients version (Maven).
# Exits non-zero when a cell is ❌ and not listed in known-failures.txt, or a runner produced
# no results. Results: target/matrix/results/<runner>.jsonl; broker logs target/matrix/brokers/.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
M="$ROOT/compat-tests/matrix"
W="$ROOT/target/matrix"
OXBOW_BIN="${OXBOW_BIN:-$ROOT/target/debug/oxbow}"
PARALLEL="${MATRIX_PARALLEL:-3}"
JAVA_VERSIONS=(2.8.2 3.9.1 4.4.0)
START=$SECONDS

fail() { echo "matrix: $*" >&2; exit 1; }
[ -x "$OXBOW_BIN" ] || fail "no broker binary at $OXBOW_BIN (cargo build -p oxbow-broker, or set OXBOW_BIN)"
mkdir -p "$W"

# ---- installs --------------------------------------------------------------------------------
APT_PKGS=(kcat python3-confluent-kafka python3-kafka python3-snappy python3-lz4 python3-zstandard)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# kafkajs needs Node; Debian's nodejs/npm (Node 18) are enough where the machine has none.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "matrix: installing ${missing[*]} (apt)"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq || fail "apt-get update failed"
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" || fail "apt-get install ${missing[*]} failed"
fi
SYS_PY=/usr/bin/python3
"$SYS_PY" -c 'import confluent_kafka, kafka, snappy, lz4, zstandard' || fail "Debian's python3 clients do not import"

VENV="$W/venv"
REQ="$M/python/requirements.txt"
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQ" "$VENV/requirements.txt"; then
  echo "matrix: creating $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || fail "python3 -m venv failed (apt-get install python3-venv)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ" || fail "pip install failed"
  cp "$REQ" "$VENV/requirements.txt"
fi

command -v node >/dev/null && command -v npm >/dev/null || fail "node and npm are required for kafkajs"
if [ ! -d "$M/node/node_modules/kafkajs" ] || [ "$M/node/package-lock.json" -nt "$M/node/node_modules/.package-lock.json" ]; then
  (cd "$M/node" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci failed"
fi

command -v go >/dev/null || fail "go is required"
mkdir -p "$W/bin"
(cd "$M/go" && go build -o "$W/bin/matrix-go" .) || fail "go build of the Go runner failed"

command -v mvn >/dev/null && command -v java >/dev/null || fail "mvn and java are required"
build_java() {
  local v="$1" dir="$W/java/$1"
  if [ -d "$dir/classes" ] && [ -z "$(find "$M/java" -newer "$dir/built" -name '*.java' -o -newer "$dir/built" -name pom.xml 2>/dev/null)" ]; then
    return 0
  fi
  rm -rf "$dir"
  (cd "$M/java" && mvn -B -q -ntp -Dkafka.version="$v" -Dmatrix.build="$dir" package dependency:copy-dependencies) \
    > "$W/java-build-$v.log" 2>&1 || { cat "$W/java-build-$v.log" >&2; return 1; }
  touch "$dir/built"
}
pids=()
for v in "${JAVA_VERSIONS[@]}"; do build_java "$v" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || fail "Maven build of the Java runner failed"; done
echo "matrix: installs and builds done in $((SECONDS - START))s"

# ---- versions and runners --------------------------------------------------------------------
deb() { dpkg-query -W -f='${Version}' "$1" | sed 's/-[^-]*$//'; }
pyver() { "$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))"; }
gomod() { (cd "$M/go" && go list -m -f '{{.Version}}' "$1"); }
KCAT_V=$(deb kcat); RDK_DEB=$(deb librdkafka1); CK_DEB=$(deb python3-confluent-kafka); KP_DEB=$(deb python3-kafka)
CK_V=$(pyver confluent-kafka); KP_V=$(pyver kafka-python); AIO_V=$(pyver aiokafka)
RDK_V=$("$VENV/bin/python" -c 'import confluent_kafka; print(confluent_kafka.libversion()[0])')
FRANZ_V=$(gomod github.com/twmb/franz-go); SARAMA_V=$(gomod github.com/IBM/sarama); KGO_V=$(gomod github.com/segmentio/kafka-go)
KJS_V=$(node -p "require('$M/node/node_modules/kafkajs/package.json').version")

# id <TAB> column title <TAB> command (run from compat-tests/matrix)
RUNNERS=$(cat <<EOT
kcat-$KCAT_V	kcat $KCAT_V (Debian 12, librdkafka $RDK_DEB)	$SYS_PY python/run_kcat.py
confluent-kafka-$CK_DEB	confluent-kafka $CK_DEB (Debian 12, librdkafka $RDK_DEB)	$SYS_PY python/run_confluent.py
confluent-kafka-$CK_V	confluent-kafka $CK_V (librdkafka $RDK_V)	$VENV/bin/python python/run_confluent.py
java-2.8.2	Java 2.8.2	java -cp $W/java/2.8.2/classes:$W/java/2.8.2/lib/* dev.oxbow.matrix.Runner
java-3.9.1	Java 3.9.1	java -cp $W/java/3.9.1/classes:$W/java/3.9.1/lib/* dev.oxbow.matrix.Runner
java-4.4.0	Java 4.4.0	java -cp $W/java/4.4.0/classes:$W/java/4.4.0/lib/* dev.oxbow.matrix.Runner
franz-go-$FRANZ_V	franz-go $FRANZ_V	$W/bin/matrix-go -client franz-go
sarama-$SARAMA_V-V2_0_0_0	sarama $SARAMA_V, Version=V2_0_0_0	$W/bin/matrix-go -client sarama -sarama-version 2.0.0
sarama-$SARAMA_V-V2_8_0_0	sarama $SARAMA_V, Version=V2_8_0_0 (default)	$W/bin/matrix-go -client sarama -sarama-version 2.8.0
sarama-$SARAMA_V-max	sarama $SARAMA_V, Version=MaxVersion	$W/bin/matrix-go -client sarama -sarama-version max
kafka-go-$KGO_V	kafka-go $KGO_V	$W/bin/matrix-go -client kafka-go
kafka-python-$KP_DEB	kafka-python $KP_DEB (Debian 12), api_version auto	$SYS_PY python/run_kafka_python.py auto
kafka-python-$KP_V	kafka-python $KP_V, api_version auto	$VENV/bin/python python/run_kafka_python.py auto
kafka-python-$KP_V-api2.0.0	kafka-python $KP_V, api_version=(2,0,0)	$VENV/bin/python python/run_kafka_python.py 2.0.0
aiokafka-$AIO_V	aiokafka $AIO_V	$VENV/bin/python python/run_aiokafka.py
kafkajs-$KJS_V	kafkajs $KJS_V	node node/run_kafkajs.js
EOT
)
if [ -n "${MATRIX_ONLY:-}" ]; then
  RUNNERS=$(printf '%s\n' "$RUNNERS" | grep -E "^[^	]*($(echo "$MATRIX_ONLY" | tr ' ' '|'))" || true)
  [ -n "$RUNNERS" ] || fail "MATRIX_ONLY=$MATRIX_ONLY matches no runner"
fi
rm -rf "$W/results" "$W/brokers"
mkdir -p "$W/results" "$W/brokers"
printf '%s\n' "$RUNNERS" | cut -f1,2 > "$W/expected.tsv"

# run_one ID COMMAND: a fresh broker, the runner with a time limit, the broker stopped.
run_one() {
  set +e # a background job: nothing in here may end it early
  local id="$1" cmd="$2" dir="$W/brokers/$1" t0=$SECONDS
  mkdir -p "$dir/data"
  OXBOW_LOG="${MATRIX_OXBOW_LOG:-debug}" "$OXBOW_BIN" serve \
    --override listeners=PLAINTEXT://127.0.0.1:0 --override "log.dirs=$dir/data" \
    --override auto.create.topics.enable=true --override num.partitions=3 \
    --override group.initial.rebalance.delay.ms=0 \
    > "$dir/stdout" 2> "$dir/oxbow.log" &
  local bpid=$! i bootstrap=""
  echo "$bpid" > "$dir/pid"
  for i in $(seq 1 300); do
    bootstrap=$(sed -n 's/^oxbow ready PLAINTEXT:\/\/\([^ ]*\).*/\1/p' "$dir/stdout" 2>/dev/null || true)
    [ -n "$bootstrap" ] && break
    kill -0 "$bpid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$bootstrap" ]; then
    echo "matrix: $id: broker did not start; see $dir/oxbow.log" >&2
    kill "$bpid" 2>/dev/null || true
    return 0
  fi
  # shellcheck disable=SC2086 # the command line is split on purpose (globbing off: java -cp dir/*)
  (set -f; cd "$M" && OXBOW_BOOTSTRAP="$bootstrap" MATRIX_OUT="$W/results/$id.jsonl" \
    MATRIX_TMP="$dir" PYTHONPATH="$M/python" timeout -k 10 "${MATRIX_RUNNER_TIMEOUT:-420}" $cmd) \
    > "$dir/runner.stdout" 2> "$dir/runner.stderr" || echo "matrix: $id: runner exited $? (see $dir/runner.stderr)" >&2
  kill -TERM "$bpid" 2>/dev/null || true
  wait "$bpid" 2>/dev/null || true
  rm -f "$dir/pid"
  local n
  n=$(grep -c . "$W/results/$id.jsonl" 2>/dev/null || true)
  printf 'matrix: %-40s %3ss  %s results, %s failed\n' "$id" "$((SECONDS - t0))" "${n:-0}" \
    "$(grep -c '"result": *"fail"' "$W/results/$id.jsonl" 2>/dev/null || true)"
}

# brokers still running when the script ends (interrupted, timed out) are stopped by their pid
stop_brokers() {
  local f
  for f in "$W"/brokers/*/pid; do
    [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null
  done
  return 0
}
trap stop_brokers EXIT

RUN_START=$SECONDS
running=0
while IFS=$'\t' read -r id _title cmd; do
  if [ "$running" -ge "$PARALLEL" ]; then wait -n || true; running=$((running - 1)); fi
  run_one "$id" "$cmd" &
  running=$((running + 1))
done <<< "$RUNNERS"
wait
echo "matrix: runners done in $((SECONDS - RUN_START))s"

rc=0
OUT_MD="$ROOT/compat-tests/MATRIX.md"
[ -z "${MATRIX_ONLY:-}" ] || OUT_MD="$W/MATRIX.partial.md" # a partial run never replaces MATRIX.md
python3 "$M/render.py" "$W/results" "$W/expected.tsv" "$M/known-failures.txt" "$OUT_MD" || rc=$?
echo "matrix: wrote ${OUT_MD#"$ROOT"/}; total $((SECONDS - START))s"
while IFS=$'\t' read -r id _; do
  [ -s "$W/results/$id.jsonl" ] || { echo "matrix: runner $id produced no results (see $W/brokers/$id/runner.stderr)" >&2; rc=1; }
done < "$W/expected.tsv"
exit "$rc"
