#!/usr/bin/env bash
# Kafka 0.8.2's kafka-consumer-offset-checker.sh (kafka.tools.ConsumerOffsetChecker): runs
# `kafka-tools consumer-offset-checker` from the release build. Run it without arguments for its help text.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
kafka_exec_tool consumer-offset-checker "$@"
