#!/usr/bin/env bash
# Stops brokers started on this machine: sends SIGTERM (a clean shutdown:
# deregister from ZooKeeper, flush, close) and waits for them to exit.
#
#   bin/kafka-server-stop.sh                     every broker (pid files in run/, else any kafka-server process
#                                                running this project's .build/release/kafka-server)
#   bin/kafka-server-stop.sh server.properties   only the broker with that file's broker.id
#
# A broker with controlled.shutdown.enable (the default) first asks the controller to move its
# partition leaderships to other brokers; that needs ZooKeeper. The script says so when ZooKeeper
# does not answer (the broker then gives up after controlled.shutdown.max.retries attempts,
# controlled.shutdown.retry.backoff.ms apart, and stops anyway), and while it waits it prints the
# broker's shutdown progress (daemon brokers: from their log) every few seconds.
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

# broker_props PID -> the properties file the broker runs with (its first argument).
broker_props() {
    local f
    f=$(tr '\0' '\n' < "/proc/$1/cmdline" 2>/dev/null | sed -n 2p)
    [ -n "$f" ] && [ -f "$f" ] && printf '%s\n' "$f"
}

# zookeeper_answers CONNECT -> true when some server of a zookeeper.connect string accepts connections.
zookeeper_answers() {
    local hostport host port
    for hostport in $(printf '%s\n' "${1%%/*}" | tr ',' ' '); do
        host=${hostport%:*}
        port=${hostport##*:}
        [ "$host" = "$hostport" ] && port=2181
        # The `srvr` four-letter word, not a bare connect (ZooKeeper logs an exception for those).
        case "$( (exec 3<>"/dev/tcp/$host/$port" && printf srvr >&3 && timeout 2 cat <&3) 2>/dev/null || true)" in
            ?*) return 0 ;;
        esac
    done
    return 1
}

declare -A logfile_of=() logstart_of=()
for pid in "${pids[@]}"; do
    echo "Stopping kafka-server (pid $pid)"
    props=$(broker_props "$pid" || true)
    if [ -n "$props" ]; then
        id=$(kafka_prop "$props" broker.id 0)
        zk=$(kafka_prop "$props" zookeeper.connect "")
        controlled=$(kafka_prop "$props" controlled.shutdown.enable true)
        retries=$(kafka_prop "$props" controlled.shutdown.max.retries 3)
        backoff=$(kafka_prop "$props" controlled.shutdown.retry.backoff.ms 5000)
        log="$LOG_DIR/kafka-server-$id.log"
        if [ -f "$log" ]; then
            logfile_of[$pid]=$log
            logstart_of[$pid]=$(($(stat -c %s "$log") + 1))
        fi
        if [ "$controlled" = "true" ] && [ -n "$zk" ] && ! zookeeper_answers "$zk"; then
            [ "$retries" -ge 1 ] 2>/dev/null || retries=1
            echo "  ZooKeeper ($zk) does not answer: broker $id cannot reach the controller for its controlled shutdown."
            echo "  It gives up after $retries attempts, $backoff ms apart (about $(( (retries - 1) * backoff / 1000 )) s), and stops without moving its leaderships first."
        elif [ "$controlled" = "true" ]; then
            echo "  Controlled shutdown: broker $id first asks the controller to move its partition leaderships to other brokers."
        fi
    fi
    kill -TERM "$pid" 2>/dev/null || true
done

# print_progress PID -> the broker's shutdown lines logged since the SIGTERM (daemon brokers).
print_progress() {
    local pid=$1 log=${logfile_of[$1]-} from
    [ -n "$log" ] || return 0
    from=${logstart_of[$pid]}
    size=$(stat -c %s "$log" 2>/dev/null || echo 0)
    [ "$size" -ge "$from" ] || return 0
    tail -c "+$from" "$log" 2>/dev/null | head -c $((size - from + 1)) \
        | grep -E "ontrolled shutdown|shut down|shutting down|Proceeding" | sed 's/^/  /' || true
    logstart_of[$pid]=$((size + 1))
}

deadline=$((SECONDS + timeout))
for pid in "${pids[@]}"; do
    started=$SECONDS
    next_note=$((SECONDS + 3))
    ticks=0
    while kafka_pid_alive "$pid"; do
        if [ $SECONDS -ge $deadline ]; then
            echo "kafka-server (pid $pid) did not stop within ${timeout}s; it is still running." >&2
            echo "Force it with: kill -9 $pid" >&2
            exit 1
        fi
        ticks=$((ticks + 1))
        [ $((ticks % 5)) -eq 0 ] && print_progress "$pid"
        if [ $SECONDS -ge $next_note ]; then
            echo "  still waiting for kafka-server (pid $pid) to stop ($((SECONDS - started)) s)"
            next_note=$((SECONDS + 5))
        fi
        sleep 0.2
    done
    print_progress "$pid"
done
[ ${#pidfiles[@]} -gt 0 ] && rm -f "${pidfiles[@]}"
echo "Stopped"
