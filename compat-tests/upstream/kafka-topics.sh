#!/usr/bin/env bash
# Stand-in for a Kafka distribution's bin/kafka-topics.sh, which librdkafka's tests run as
# `$KAFKA_PATH/bin/kafka-topics.sh --bootstrap-server $BROKERS ...` (test_kafka_topics(), used by
# 0045 and 0052): Kafka's own TopicCommand from kafka-tools (fetched by Maven with kafka-clients,
# see kafka-clients.pom.xml).
set -euo pipefail
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.TopicCommand "$@"
