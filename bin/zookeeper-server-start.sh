#!/usr/bin/env bash
# Starts ZooKeeper: bin/zookeeper-server-start.sh [-daemon] zookeeper.properties
#
# Runs Debian's ZooKeeper (package `zookeeper`, jars in /usr/share/java) with the given properties
# file, like Kafka's script (QuorumPeerMain, which runs standalone for a single-server config).
# The working directory is the project root, so a relative dataDir (./data/zookeeper) is resolved
# against the project root.
#   foreground: logs to this terminal; Ctrl-C (SIGINT) or SIGTERM stops it.
#   -daemon:    runs in the background; output in $LOG_DIR/zookeeper.out (default logs/),
#               pid in $PID_DIR/zookeeper.pid (default run/). Stop it with bin/zookeeper-server-stop.sh.
# Environment: KAFKA_HEAP_OPTS (default -Xmx512M -Xms512M), KAFKA_OPTS (extra JVM options),
#              JAVA (java binary), LOG_DIR, PID_DIR.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]:-$0}")/lib.sh"
HOME_DIR=$KAFKA_HOME
ZK_JAR=/usr/share/java/zookeeper.jar
PROG=$(basename "$0")

die() {
    echo "$PROG: $*" >&2
    exit 1
}

usage() {
    echo "USAGE: bin/zookeeper-server-start.sh [-daemon] zookeeper.properties" >&2
    exit 1
}

DAEMON=0
if [ "${1-}" = "-daemon" ]; then
    DAEMON=1
    shift
fi
[ $# -eq 1 ] || usage

CONFIG=$1
[ -e "$CONFIG" ] || die "config file not found: $CONFIG"
[ -f "$CONFIG" ] && [ -r "$CONFIG" ] || die "config file is not a readable file: $CONFIG"
case "$CONFIG" in
    /*) ;;
    *) CONFIG="$(cd "$(dirname "$CONFIG")" && pwd -P)/$(basename "$CONFIG")" ;;
esac

JAVA=${JAVA:-$(command -v java || true)}
if [ -z "$JAVA" ] || [ ! -x "$JAVA" ] || [ ! -f "$ZK_JAR" ]; then
    {
        echo "$PROG: ZooKeeper is not installed (need java and $ZK_JAR)."
        echo "Install the dependencies with:  bin/setup.sh"
        echo "                            or: sudo apt-get install -y zookeeper"
    } >&2
    exit 1
fi

# prop KEY DEFAULT -> value of KEY in the properties file (last one wins), or DEFAULT.
prop() {
    local value
    value=$(awk -F'=' -v key="$1" '
        /^[ \t]*[#!]/ { next }
        { k = $1; gsub(/^[ \t]+|[ \t]+$/, "", k) }
        k == key { v = substr($0, index($0, "=") + 1); gsub(/^[ \t]+|[ \t\r]+$/, "", v); found = v }
        END { print found }
    ' "$CONFIG")
    if [ -n "$value" ]; then printf '%s\n' "$value"; else printf '%s\n' "$2"; fi
}


PORT=$(prop clientPort 2181)
HOST=$(prop clientPortAddress 127.0.0.1)
[ "$HOST" = "0.0.0.0" ] && HOST=127.0.0.1
DATA_DIR=$(prop dataDir "")
[ -n "$DATA_DIR" ] || die "$CONFIG does not set dataDir"

cd "$HOME_DIR"
mkdir -p "$DATA_DIR" "$PID_DIR"

PID_FILE="$PID_DIR/zookeeper.pid"
if [ -f "$PID_FILE" ]; then
    OLD=$(cat "$PID_FILE" 2>/dev/null || true)
    if [ -n "$OLD" ] && kill -0 "$OLD" 2>/dev/null && grep -q QuorumPeerMain "/proc/$OLD/cmdline" 2>/dev/null; then
        die "ZooKeeper is already running (pid $OLD, $PID_FILE)"
    fi
    rm -f "$PID_FILE"
fi
if kafka_port_open "$HOST" "$PORT"; then
    die "port $PORT on $HOST is already in use (is another ZooKeeper running?)"
fi

# Console logging (to this terminal, or to zookeeper.out with -daemon). A client that goes away
# without closing its session (a port probe, a killed process) makes ZooKeeper log a WARN with an
# EndOfStreamException: that logger prints the exception's one-line message, not a stack trace.
LOG4J="$PID_DIR/zookeeper-log4j.properties"
cat > "$LOG4J" <<'PROPS'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.zookeeper.server.NIOServerCnxn=INFO, cnxn
log4j.additivity.org.apache.zookeeper.server.NIOServerCnxn=false
log4j.appender.cnxn=org.apache.log4j.ConsoleAppender
log4j.appender.cnxn.layout=org.apache.log4j.EnhancedPatternLayout
log4j.appender.cnxn.layout.ConversionPattern=[%d] %p %m (%c)%n%throwable{short}
PROPS

CLASSPATH="$ZK_JAR:/usr/share/java/zookeeper-jute.jar"
for jar in slf4j-log4j12.jar log4j-1.2.jar; do
    [ -f "/usr/share/java/$jar" ] && CLASSPATH="$CLASSPATH:/usr/share/java/$jar"
done

# shellcheck disable=SC2206
HEAP=(${KAFKA_HEAP_OPTS:--Xmx512M -Xms512M})
# shellcheck disable=SC2206
EXTRA=(${KAFKA_OPTS:-})
CMD=("$JAVA" "${HEAP[@]}" -server -XX:+UseG1GC -Djava.awt.headless=true
     "-Dlog4j.configuration=file:$LOG4J"
     -Dzookeeper.admin.enableServer=false
     "-Dzookeeper.4lw.commands.whitelist=*"
     -Dzookeeper.jmx.log4j.disable=true
     "-Dswiftkafka.home=$HOME_DIR"
     "${EXTRA[@]}"
     -cp "$CLASSPATH" org.apache.zookeeper.server.quorum.QuorumPeerMain "$CONFIG")

# A command started with `&` from a non-interactive shell (this script's -daemon, or a caller's
# background job) inherits SIGINT and SIGQUIT ignored, and the JVM keeps an ignored SIGINT ignored:
# Ctrl-C-style stops then do nothing. Reset SIGINT to its default so SIGINT and SIGTERM both run
# ZooKeeper's clean JVM shutdown.
if env --default-signal=INT true 2>/dev/null; then
    CMD=(env --default-signal=INT "${CMD[@]}")
fi

if [ "$DAEMON" -eq 0 ]; then
    exec "${CMD[@]}"
fi

mkdir -p "$LOG_DIR"
OUT="$LOG_DIR/zookeeper.out"
nohup "${CMD[@]}" > "$OUT" 2>&1 < /dev/null &
PID=$!
echo "$PID" > "$PID_FILE"

# Wait until it accepts connections (or dies).
for _ in $(seq 1 120); do
    if ! kill -0 "$PID" 2>/dev/null; then
        rm -f "$PID_FILE"
        echo "$PROG: ZooKeeper exited during startup; last lines of $OUT:" >&2
        tail -n 20 "$OUT" >&2
        exit 1
    fi
    if kafka_zk_serves "$HOST" "$PORT"; then
        echo "ZooKeeper started (pid $PID) on $HOST:$PORT; data in $DATA_DIR; log $OUT"
        exit 0
    fi
    sleep 0.25
done
echo "$PROG: ZooKeeper (pid $PID) is not listening on $HOST:$PORT after 30 s; see $OUT" >&2
exit 1
