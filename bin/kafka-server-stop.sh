#!/usr/bin/env bash
# Stops brokers started on this machine: sends SIGTERM (a clean shutdown:
# deregister from ZooKeeper, flush, close) and waits for them to exit.
#
#   bin/kafka-server-stop.sh                     every broker (pid files in run/, else any kafka-server process
#                                                running this project's .build/release/kafka-server)
#   bin/kafka-server-stop.sh server.properties   only the broker with that file's broker.id
#
# KAFKA_STOP_TIMEOUT (seconds, default 60) bounds the wait.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

timeout=${KAFKA_STOP_TIMEOUT:-60}
pids=()
pidfiles=()

if [ $# -ge 1 ]; then
    [ -f "$1" ] || kafka_die "properties file not found: $1"
    broker_id=$(kafka_prop "$1" broker.id 0)
    candidates=("$PID_DIR/kafka-server-$broker_id.pid")
else
    shopt -s nullglob
    candidates=("$PID_DIR"/kafka-server-*.pid)
    shopt -u nullglob
fi

for f in "${candidates[@]}"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    if kafka_pid_is_server "$pid"; then
        pids+=("$pid")
    fi
    pidfiles+=("$f")
done

if [ ${#pids[@]} -eq 0 ] && [ $# -eq 0 ]; then
    # No live pid file: fall back to the process name, as Kafka's script does, but only for
    # brokers running this project's binary (not another checkout's).
    while read -r pid; do
        [ -n "$pid" ] || continue
        exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
        case "$exe" in
            "$RELEASE_DIR/kafka-server"|"$RELEASE_DIR/kafka-server (deleted)") pids+=("$pid") ;;
        esac
    done < <(pgrep -x kafka-server 2>/dev/null || true)
fi

if [ ${#pids[@]} -eq 0 ]; then
    [ ${#pidfiles[@]} -gt 0 ] && rm -f "${pidfiles[@]}"
    echo "No kafka server to stop"
    exit 1
fi

for pid in "${pids[@]}"; do
    echo "Stopping kafka-server (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
done

deadline=$((SECONDS + timeout))
for pid in "${pids[@]}"; do
    while kafka_pid_alive "$pid"; do
        if [ $SECONDS -ge $deadline ]; then
            echo "kafka-server (pid $pid) did not stop within ${timeout}s; it is still running." >&2
            echo "Force it with: kill -9 $pid" >&2
            exit 1
        fi
        sleep 0.2
    done
done
[ ${#pidfiles[@]} -gt 0 ] && rm -f "${pidfiles[@]}"
echo "Stopped"
