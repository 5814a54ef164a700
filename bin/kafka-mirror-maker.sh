#!/usr/bin/env bash
# Kafka 0.8.2's kafka-mirror-maker.sh: runs `kafka-tools mirror-maker` from the release build.
# Run it without arguments for its help text.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
kafka_exec_tool mirror-maker "$@"
