#!/usr/bin/env bash
# Starts a broker: bin/kafka-server-start.sh [-daemon] server.properties
#
# Runs .build/release/kafka-server with the project root as its working
# directory, so relative paths in the properties file (log.dirs=./data/...)
# are resolved against the project root.
#   foreground: the broker logs to this terminal; Ctrl-C (SIGINT) or SIGTERM stops it.
#   -daemon:    runs in the background; log in $LOG_DIR/kafka-server-<broker.id>.log
#               (default logs/), pid in $PID_DIR/kafka-server-<broker.id>.pid (default run/).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

usage() {
    echo "USAGE: bin/$(basename "$0") [-daemon] server.properties" >&2
    exit 1
}

daemon=false
if [ "${1-}" = "-daemon" ]; then
    daemon=true
    shift
fi
[ $# -ge 1 ] || usage
case "$1" in -h|--help|-help) usage ;; esac

props=$1
shift
[ -f "$props" ] || kafka_die "properties file not found: $props"
props=$(kafka_abspath "$props")
exe=$(kafka_require_binary kafka-server) || exit 1

if ! $daemon; then
    cd "$KAFKA_HOME"
    exec "$exe" "$props" "$@"
fi

broker_id=$(kafka_prop "$props" broker.id 0)
port=$(kafka_prop "$props" port 9092)
mkdir -p "$LOG_DIR" "$PID_DIR"
pidfile="$PID_DIR/kafka-server-$broker_id.pid"
logfile="$LOG_DIR/kafka-server-$broker_id.log"

if [ -f "$pidfile" ]; then
    oldpid=$(cat "$pidfile" 2>/dev/null || true)
    if kafka_pid_is_server "$oldpid"; then
        echo "kafka-server with broker.id=$broker_id is already running (pid $oldpid, $pidfile)." >&2
        echo "Stop it first with bin/kafka-server-stop.sh" >&2
        exit 1
    fi
    rm -f "$pidfile"
fi

cd "$KAFKA_HOME"
echo "=== $(date '+%Y-%m-%d %H:%M:%S') starting kafka-server $props" >>"$logfile"
if command -v setsid >/dev/null 2>&1; then
    nohup setsid "$exe" "$props" "$@" >>"$logfile" 2>&1 </dev/null &
else
    nohup "$exe" "$props" "$@" >>"$logfile" 2>&1 </dev/null &
fi
pid=$!
echo "$pid" >"$pidfile"

# A broker with a bad configuration exits at once: report that here.
sleep 1
if ! kafka_pid_alive "$pid"; then
    rm -f "$pidfile"
    echo "kafka-server (broker.id=$broker_id) exited during start-up; last lines of $logfile:" >&2
    tail -n 20 "$logfile" >&2
    exit 1
fi
echo "kafka-server (broker.id=$broker_id, port $port) started in the background: pid $pid"
echo "  log: $logfile"
echo "  pid: $pidfile"
echo "  stop: bin/kafka-server-stop.sh"
