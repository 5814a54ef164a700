#!/usr/bin/env bash
# Container entry point (sketch): writes config/server-docker.properties from
# config/server.properties plus KAFKA_* environment variables, then runs the command.
#
#   KAFKA_BROKER_ID              broker.id (default 0)
#   KAFKA_ZOOKEEPER_CONNECT      zookeeper.connect (default zookeeper:2181)
#   KAFKA_ADVERTISED_HOST_NAME   advertised.host.name (default: the container's hostname)
#   KAFKA_ADVERTISED_PORT        advertised.port
#   KAFKA_PROP_<name>            any other key, dots written as underscores
#                                (KAFKA_PROP_num_partitions=3 -> num.partitions=3)
set -euo pipefail
cd /opt/kafka
out=config/server-docker.properties
cp config/server.properties "$out"

set_prop() {
    local key=$1 value=$2
    if grep -qE "^[[:space:]]*#?[[:space:]]*${key//./\\.}=" "$out"; then
        sed -i -E "s|^[[:space:]]*#?[[:space:]]*${key//./\\.}=.*|$key=$value|" "$out"
    else
        echo "$key=$value" >>"$out"
    fi
}

set_prop broker.id "${KAFKA_BROKER_ID:-0}"
set_prop zookeeper.connect "${KAFKA_ZOOKEEPER_CONNECT:-zookeeper:2181}"
set_prop advertised.host.name "${KAFKA_ADVERTISED_HOST_NAME:-$(hostname)}"
[ -n "${KAFKA_ADVERTISED_PORT:-}" ] && set_prop advertised.port "$KAFKA_ADVERTISED_PORT"
while IFS='=' read -r name value; do
    case "$name" in
        KAFKA_PROP_*) key=${name#KAFKA_PROP_}; set_prop "${key//_/.}" "$value" ;;
    esac
done < <(env)

exec "$@"
