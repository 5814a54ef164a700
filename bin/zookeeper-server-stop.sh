#!/usr/bin/env bash
# Stops the ZooKeeper started by bin/zookeeper-server-start.sh: the pid in $PID_DIR/zookeeper.pid
# (default run/), else any ZooKeeper started from this project (matched by its -Dswiftkafka.home).
# Sends SIGINT (as Kafka's script does), waits up to 20 s, then SIGTERM, then SIGKILL.
set -euo pipefail

HOME_DIR=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd -P)
PID_DIR=${PID_DIR:-"$HOME_DIR/run"}
PID_FILE="$PID_DIR/zookeeper.pid"

is_zookeeper() {
    kill -0 "$1" 2>/dev/null && tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -q QuorumPeerMain
}

PIDS=()
if [ -f "$PID_FILE" ]; then
    PID=$(cat "$PID_FILE" 2>/dev/null || true)
    if [ -n "$PID" ] && is_zookeeper "$PID"; then
        PIDS+=("$PID")
    fi
fi
if [ ${#PIDS[@]} -eq 0 ]; then
    while read -r PID; do
        [ -n "$PID" ] && PIDS+=("$PID")
    done < <(pgrep -f -- "-Dswiftkafka.home=$HOME_DIR .*QuorumPeerMain" || true)
fi
if [ ${#PIDS[@]} -eq 0 ]; then
    rm -f "$PID_FILE"
    echo "No zookeeper server to stop"
    exit 1
fi

for PID in "${PIDS[@]}"; do
    kill -INT "$PID" 2>/dev/null || true
done
for PID in "${PIDS[@]}"; do
    for i in $(seq 1 80); do
        kill -0 "$PID" 2>/dev/null || break
        [ "$i" -eq 40 ] && kill -TERM "$PID" 2>/dev/null || true
        sleep 0.25
    done
    if kill -0 "$PID" 2>/dev/null; then
        kill -KILL "$PID" 2>/dev/null || true
    fi
    echo "ZooKeeper (pid $PID) stopped"
done
rm -f "$PID_FILE"
