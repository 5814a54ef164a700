#!/usr/bin/env bash
# Kafka 0.8.2's kafka-preferred-replica-election.sh: runs `kafka-tools preferred-replica-election`
# from the release build. Run it without arguments for its help text.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
kafka_exec_tool preferred-replica-election "$@"
