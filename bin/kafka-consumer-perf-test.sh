#!/usr/bin/env bash
# Kafka 0.8.2's kafka-consumer-perf-test.sh (kafka.tools.ConsumerPerformance): runs `kafka-tools consumer-perf-test` from the release build.
# Run it without arguments for its help text.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
kafka_exec_tool consumer-perf-test "$@"
