#!/usr/bin/env bash
# Kafka 0.8.2's kafka-simple-consumer-shell.sh (kafka.tools.SimpleConsumerShell): runs
# `kafka-tools simple-consumer-shell` from the release build. Run it without arguments for its help text.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
kafka_exec_tool simple-consumer-shell "$@"
