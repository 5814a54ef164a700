#!/usr/bin/env bash
# Kafka 0.8.2's kafka-producer-perf-test.sh (kafka.tools.ProducerPerformance): runs `kafka-tools producer-perf-test` from the release build.
# Run it without arguments for its help text.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
kafka_exec_tool producer-perf-test "$@"
