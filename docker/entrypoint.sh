#!/usr/bin/env bash
# Container entry point; it also runs outside a container, from a checkout (the tests do).
#
# Writes a server.properties from $KAFKA_HOME/config/server.properties plus the KAFKA_* environment
# variables, then runs the command given as arguments, or the broker on the written file:
#
#   docker/entrypoint.sh                      -> bin/kafka-server-start.sh <written file>
#   docker/entrypoint.sh CMD ARGS...          -> CMD ARGS... (after writing the file)
#   docker/entrypoint.sh --config-only        -> writes the file, prints its path, exits
#   (KAFKA_CONFIG_ONLY=1 does the same as --config-only)
#
# Environment (wurstmeister/kafka-docker's convention): every KAFKA_<NAME>=value becomes the
# property <name>=value: KAFKA_ stripped, lower case, each _ a dot. It replaces the key in
# config/server.properties (even when commented out there) or is appended.
#   KAFKA_BROKER_ID=1                          broker.id=1
#   KAFKA_ZOOKEEPER_CONNECT=zk1:2181,zk2:2181/kafka   zookeeper.connect=zk1:2181,zk2:2181/kafka
#   KAFKA_ADVERTISED_HOST_NAME=kafka1          advertised.host.name=kafka1 (default: `hostname`)
#   KAFKA_ADVERTISED_PORT=9093                 advertised.port=9093
#   KAFKA_PORT, KAFKA_HOST_NAME, KAFKA_LOG_DIRS, KAFKA_DEFAULT_REPLICATION_FACTOR, ...
# Not properties (they set up the launcher, as in Kafka's scripts, or this script):
#   KAFKA_HOME          the installation (default: the directory above this script; /opt/kafka in the image)
#   KAFKA_CONFIG_FILE   the file to write (default $KAFKA_HOME/config/server-docker.properties)
#   KAFKA_CONFIG_ONLY   1: write the file and exit
#   KAFKA_HEAP_OPTS KAFKA_OPTS KAFKA_JMX_OPTS KAFKA_LOG4J_OPTS KAFKA_JVM_PERFORMANCE_OPTS
#   KAFKA_GC_LOG_OPTS KAFKA_DEBUG KAFKA_VERSION, and KAFKA_TEST_* (the test suite's own settings)
set -euo pipefail

KAFKA_HOME=${KAFKA_HOME:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)}
out=${KAFKA_CONFIG_FILE:-$KAFKA_HOME/config/server-docker.properties}
config_only=${KAFKA_CONFIG_ONLY:-0}
if [ "${1-}" = "--config-only" ]; then
    config_only=1
    shift
fi

base=$KAFKA_HOME/config/server.properties
[ -f "$base" ] || { echo "entrypoint: $base not found (set KAFKA_HOME)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
tmp=$(mktemp "$out.XXXXXX")
cp "$base" "$tmp"
chmod 644 "$tmp"

# set_prop KEY VALUE: the first line setting KEY (possibly commented out) becomes KEY=VALUE,
# further ones are dropped; appended when there is none. awk takes both from the environment,
# so values may hold any character (| & / \ included).
set_prop() {
    PROP_KEY=$1 PROP_VALUE=$2 awk '
        BEGIN { key = ENVIRON["PROP_KEY"]; value = ENVIRON["PROP_VALUE"]; done = 0 }
        {
            line = $0
            sub(/^[ \t]*#?[ \t]*/, "", line)
            eq = index(line, "=")
            name = eq > 0 ? substr(line, 1, eq - 1) : ""
            sub(/[ \t]+$/, "", name)
            if (name == key) {
                if (!done) { print key "=" value; done = 1 }
                next
            }
            print
        }
        END { if (!done) print key "=" value }
    ' "$tmp" > "$tmp.new"
    mv "$tmp.new" "$tmp"
}

not_a_property() {
    case "$1" in
        KAFKA_HOME|KAFKA_CONFIG_FILE|KAFKA_CONFIG_ONLY|KAFKA_HEAP_OPTS|KAFKA_OPTS|KAFKA_JMX_OPTS|KAFKA_LOG4J_OPTS) return 0 ;;
        KAFKA_JVM_PERFORMANCE_OPTS|KAFKA_GC_LOG_OPTS|KAFKA_DEBUG|KAFKA_VERSION|KAFKA_TEST_*) return 0 ;;
    esac
    return 1
}

[ -n "${KAFKA_ADVERTISED_HOST_NAME:-}" ] || set_prop advertised.host.name "$(hostname)"
for name in $(compgen -e | LC_ALL=C sort); do
    case "$name" in KAFKA_?*) ;; *) continue ;; esac
    not_a_property "$name" && continue
    key=${name#KAFKA_}
    key=${key,,}
    set_prop "${key//_/.}" "${!name}"
done
mv "$tmp" "$out"

if [ "$config_only" = 1 ]; then
    echo "$out"
    exit 0
fi
if [ $# -eq 0 ]; then
    set -- "$KAFKA_HOME/bin/kafka-server-start.sh" "$out"
fi
exec "$@"
