#!/usr/bin/env bash
# Stops the ZooKeeper started by bin/zookeeper-server-start.sh: the pid in $PID_DIR/zookeeper.pid
# (default run/), else any ZooKeeper started from this project (matched by its -Dswiftkafka.home).
# Sends SIGTERM (the JVM's clean shutdown; it works even for a ZooKeeper started with SIGINT
# ignored, which Kafka's SIGINT does not stop), waits up to 10 s, then SIGKILL. It says which
# pid it stopped and how long it took.
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

alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)
    [ "$state" != "Z" ]
}

START=$SECONDS
for PID in "${PIDS[@]}"; do
    kill -TERM "$PID" 2>/dev/null || true
done
for PID in "${PIDS[@]}"; do
    for _ in $(seq 1 100); do
        alive "$PID" || break
        sleep 0.1
    done
    if alive "$PID"; then
        echo "ZooKeeper (pid $PID) did not stop within 10 s of SIGTERM; killing it (SIGKILL)" >&2
        kill -KILL "$PID" 2>/dev/null || true
    fi
    echo "ZooKeeper (pid $PID) stopped in $((SECONDS - START)) s"
done
rm -f "$PID_FILE"
