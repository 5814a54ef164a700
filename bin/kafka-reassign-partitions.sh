#!/usr/bin/env bash
# Kafka 0.8.2's kafka-reassign-partitions.sh: runs `kafka-tools reassign-partitions` from the
# release build (--generate, --execute, --verify). Run it without arguments for its help text.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
kafka_exec_tool reassign-partitions "$@"
