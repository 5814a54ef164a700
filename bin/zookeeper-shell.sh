#!/usr/bin/env bash
# Kafka 0.8.2's zookeeper-shell.sh: bin/zookeeper-shell.sh host:port[/chroot] [cmd args]
#
# Runs Debian's ZooKeeper CLI (org.apache.zookeeper.ZooKeeperMain from package `zookeeper`, jars in
# /usr/share/java — the installation bin/zookeeper-server-start.sh uses) against the given server.
# With a command (e.g. `ls /brokers/ids`) it runs it and exits; without one it is interactive.
# Environment: KAFKA_HEAP_OPTS (default -Xmx256M), KAFKA_OPTS (extra JVM options), JAVA (java binary).
set -euo pipefail

ZK_JAR=/usr/share/java/zookeeper.jar
PROG=$(basename "$0")

if [ $# -lt 1 ] || [ -z "${1-}" ]; then
    echo "$PROG: missing argument: zookeeper_host:port[/path]" >&2
    echo "USAGE: $PROG zookeeper_host:port[/path] [args...]" >&2
    exit 1
fi

JAVA=${JAVA:-$(command -v java || true)}
if [ -z "$JAVA" ] || [ ! -x "$JAVA" ] || [ ! -f "$ZK_JAR" ]; then
    {
        echo "$PROG: the ZooKeeper CLI is not installed (need java and $ZK_JAR)."
        echo "Install the dependencies with:  bin/setup.sh"
        echo "                            or: sudo apt-get install -y zookeeper"
    } >&2
    exit 1
fi

# Client log lines (connection state, warnings) go to stderr so stdout holds only command output.
LOG4J=$(mktemp "${TMPDIR:-/tmp}/zookeeper-shell-log4j.XXXXXX")
trap 'rm -f "$LOG4J"' EXIT
cat > "$LOG4J" <<'PROPS'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
PROPS

CLASSPATH="$ZK_JAR:/usr/share/java/zookeeper-jute.jar"
for jar in slf4j-log4j12.jar log4j-1.2.jar jline2.jar; do
    [ -f "/usr/share/java/$jar" ] && CLASSPATH="$CLASSPATH:/usr/share/java/$jar"
done

SERVER=$1
shift

# Fail fast, with a plain message, when no server of the connect string accepts connections
# (ZooKeeperMain would otherwise print connection-loss stack traces).
reachable=0
IFS=',' read -r -a SERVERS <<< "${SERVER%%/*}"
for hp in "${SERVERS[@]}"; do
    host=${hp%:*}; port=${hp##*:}
    [ "$host" = "$hp" ] && port=2181
    if (exec 3<>"/dev/tcp/$host/$port") >/dev/null 2>&1; then reachable=1; break; fi
done
if [ "$reachable" -eq 0 ]; then
    echo "$PROG: cannot connect to ZooKeeper at ${SERVER%%/*} (nothing accepts connections there)" >&2
    exit 1
fi
# shellcheck disable=SC2206
HEAP=(${KAFKA_HEAP_OPTS:--Xmx256M})
# shellcheck disable=SC2206
EXTRA=(${KAFKA_OPTS:-})
"$JAVA" "${HEAP[@]}" -Djava.awt.headless=true "-Dlog4j.configuration=file:$LOG4J" \
    -Dzookeeper.jmx.log4j.disable=true "${EXTRA[@]}" \
    -cp "$CLASSPATH" org.apache.zookeeper.ZooKeeperMain -server "$SERVER" "$@"
