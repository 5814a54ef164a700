# Shared helpers for the bin/ scripts. Source it; do not run it.
#
#   . "$(dirname "$0")/lib.sh"
#
# Sets KAFKA_HOME (the project root, the parent of bin/), RELEASE_DIR (default .build/release,
# or $KAFKA_RELEASE_DIR),
# LOG_DIR (default $KAFKA_HOME/logs) and PID_DIR (default $KAFKA_HOME/run).

KAFKA_HOME=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd -P)
RELEASE_DIR=${KAFKA_RELEASE_DIR:-"$KAFKA_HOME/.build/release"}  # KAFKA_RELEASE_DIR: run another build
LOG_DIR=${LOG_DIR:-"$KAFKA_HOME/logs"}
PID_DIR=${PID_DIR:-"$KAFKA_HOME/run"}

# Swift may live in /opt/swift without being on PATH in a non-login shell.
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    PATH="/opt/swift/usr/bin:$PATH"
    export PATH
fi

kafka_die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

# kafka_require_binary NAME -> prints the absolute path of .build/release/NAME,
# or explains how to build it and exits 1.
kafka_require_binary() {
    local exe="$RELEASE_DIR/$1"
    if [ ! -x "$exe" ]; then
        {
            echo "$(basename "$0"): $exe is missing: the release build has not been made."
            echo "Build it with:  bin/setup.sh          (installs dependencies, builds, starts ZooKeeper + a broker)"
            echo "            or: swift build -c release (from $KAFKA_HOME)"
        } >&2
        exit 1
    fi
    printf '%s\n' "$exe"
}

# kafka_exec_tool SUBCOMMAND ARGS... -> replaces the shell with kafka-tools SUBCOMMAND ARGS...
kafka_exec_tool() {
    local sub=$1
    shift
    local exe
    exe=$(kafka_require_binary kafka-tools) || exit 1
    exec "$exe" "$sub" "$@"
}

# kafka_abspath PATH -> absolute path of PATH (relative to the current directory).
kafka_abspath() {
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s\n' "$(cd "$(dirname "$1")" && pwd -P)/$(basename "$1")" ;;
    esac
}

# kafka_prop FILE KEY [DEFAULT] -> value of KEY in a Java-style properties file
# (last occurrence wins, surrounding blanks trimmed), or DEFAULT.
kafka_prop() {
    local file=$1 key=$2 default=${3-} value
    value=$(awk -v key="$key" '
        /^[ \t]*[#!]/ { next }
        {
            line = $0
            sub(/^[ \t]+/, "", line)
            n = index(line, "=")
            c = index(line, ":")
            if (n == 0 || (c > 0 && c < n)) n = c
            if (n == 0) next
            k = substr(line, 1, n - 1); sub(/[ \t]+$/, "", k)
            if (k != key) next
            v = substr(line, n + 1); sub(/^[ \t]+/, "", v); sub(/[ \t\r]+$/, "", v)
            found = v; have = 1
        }
        END { if (have) print found }
    ' "$file")
    if [ -n "$value" ]; then printf '%s\n' "$value"; else printf '%s\n' "$default"; fi
}

# kafka_port_open HOST PORT -> true when something accepts TCP connections there.
kafka_port_open() {
    (exec 3<>"/dev/tcp/$1/$2") >/dev/null 2>&1
}

# kafka_zk_serves HOST PORT -> true when ZooKeeper answers the `srvr` four-letter word there (a
# bare connect-and-close would make it log an EndOfStreamException for every probe).
kafka_zk_serves() {
    local reply
    reply=$( (exec 3<>"/dev/tcp/$1/$2" && printf srvr >&3 && timeout 2 cat <&3) 2>/dev/null || true)
    case "$reply" in *"Zookeeper version"*|*"not executed"*) return 0 ;; *) return 1 ;; esac
}

# kafka_wait_zk HOST PORT SECONDS -> waits until ZooKeeper serves there.
kafka_wait_zk() {
    local i
    for i in $(seq 1 $(($3 * 4))); do
        kafka_zk_serves "$1" "$2" && return 0
        sleep 0.25
    done
    return 1
}

# kafka_wait_port HOST PORT SECONDS -> waits until the port accepts connections.
kafka_wait_port() {
    local host=$1 port=$2 secs=$3 i=0
    while [ "$i" -lt $((secs * 4)) ]; do
        if kafka_port_open "$host" "$port"; then return 0; fi
        sleep 0.25
        i=$((i + 1))
    done
    return 1
}

# kafka_pid_alive PID -> true when the process exists (and is not a zombie).
kafka_pid_alive() {
    local pid=$1 state
    [ -n "$pid" ] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
    [ "$state" != "Z" ]
}

# kafka_pid_is_server PID -> true when PID is a live kafka-server process.
kafka_pid_is_server() {
    kafka_pid_alive "$1" || return 1
    local comm
    comm=$(cat "/proc/$1/comm" 2>/dev/null || true)
    [ "$comm" = "kafka-server" ]
}

# kafka_broker_registered PORT ID -> true when the broker on localhost:PORT answers a Metadata
# request that lists broker ID among the live brokers (uses kcat; without kcat: port open).
kafka_broker_registered() {
    local port=$1 id=$2 out
    if ! command -v kcat >/dev/null 2>&1; then
        kafka_port_open 127.0.0.1 "$port"
        return
    fi
    out=$(kcat -b "localhost:$port" -X api.version.request=false -X broker.version.fallback=0.8.2 \
        -L -J -m 3 2>/dev/null) || return 1
    case "$out" in
        *"\"brokers\":["*"{\"id\":$id,"*) return 0 ;;
        *) return 1 ;;
    esac
}

# kafka_build_bench_client -> compiles bench/rdkafka_bench.c (the librdkafka benchmark client used by
# bin/kafka-benchmark.sh) into .build/bench/rdkafka-bench when the binary is missing or older than
# the source; needs gcc and librdkafka-dev (bin/setup.sh installs them). Prints the binary's path.
BENCH_CLIENT="$KAFKA_HOME/.build/bench/rdkafka-bench"
kafka_build_bench_client() {
    local src="$KAFKA_HOME/bench/rdkafka_bench.c" flags
    if [ -x "$BENCH_CLIENT" ] && [ ! "$src" -nt "$BENCH_CLIENT" ]; then
        printf '%s\n' "$BENCH_CLIENT"
        return 0
    fi
    flags=$(pkg-config --cflags --libs rdkafka 2>/dev/null) || flags="-lrdkafka"
    mkdir -p "$(dirname "$BENCH_CLIENT")"
    # shellcheck disable=SC2086
    gcc -O2 -g -Wall -Wextra -o "$BENCH_CLIENT.tmp.$$" "$src" $flags -lpthread >&2 || {
        rm -f "$BENCH_CLIENT.tmp.$$"
        echo "$(basename "$0"): could not compile $src (needs gcc and librdkafka-dev: bin/setup.sh --no-start installs them)" >&2
        return 1
    }
    mv -f "$BENCH_CLIENT.tmp.$$" "$BENCH_CLIENT"
    printf '%s\n' "$BENCH_CLIENT"
}
