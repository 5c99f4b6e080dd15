#!/usr/bin/env bash
# Stand-in for a Kafka distribution's bin/kafka-run-class.sh: librdkafka's test 0098 runs its
# Java helper (tests/java/TransactionProducerCli) as `$KAFKA_PATH/bin/kafka-run-class.sh CLASS
# ARGS` with CLASSPATH set to tests/java; $KAFKA_PATH/libs holds kafka-clients and its
# dependencies (fetched by Maven, see kafka-clients.pom.xml).
set -euo pipefail
libs="$(cd "$(dirname "$0")/../libs" && pwd)"
exec java -cp "${CLASSPATH:+$CLASSPATH:}$libs/*" "$@"
