#!/usr/bin/env bash
# One command from a fresh Debian 12 clone to a running ZooKeeper + broker.
#
#   bin/setup.sh              install what is missing, build (release), start ZooKeeper on 2181
#                             and one broker on 9092 (config/server.properties)
#   bin/setup.sh --no-start   install + build only (what bin/test.sh uses)
#   bin/setup.sh --no-build   install + start only
#
# Safe to re-run: installed packages, the Python venvs and running services are kept.
#
# Steps:
#   1. apt packages: libzookeeper-mt-dev libsnappy-dev zlib1g-dev zookeeper kcat librdkafka-dev python3-venv ...
#   2. .venv/ with the Python test clients (Tests/interop/requirements.txt), and .venv-modern/
#      with kafka-python 3.0.12 (Tests/interop/requirements-modern.txt)
#   3. swift build -c release, and the librdkafka benchmark client bench/rdkafka_bench.c
#      (gcc, into .build/bench/rdkafka-bench; rebuilt when the source is newer)
#   4. ZooKeeper (bin/zookeeper-server-start.sh -daemon config/zookeeper.properties) and the
#      broker (bin/kafka-server-start.sh -daemon config/server.properties), unless already answering
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KAFKA_HOME"

do_build=true
do_start=true
for arg in "$@"; do
    case "$arg" in
        --no-start) do_start=false ;;
        --no-build) do_build=false ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) kafka_die "unknown option: $arg (try --help)" ;;
    esac
done

step() { printf '\n==> %s\n' "$*"; }

# --------------------------------------------------------------------------------------------
# 1. System packages
# --------------------------------------------------------------------------------------------
APT_PACKAGES=(
    libzookeeper-mt-dev libsnappy-dev zlib1g-dev pkg-config  # C libraries the Swift targets link
    liblz4-dev libxxhash-dev                                 # LZ4 blocks + XXH32 under Kafka's LZ4 frame
    libisal-dev                                              # ISA-L: the message CRC32 (carry-less multiply)
    zookeeper                                                # ZooKeeper server (tests and bin/zookeeper-*)
    kcat                                                     # interop tests (librdkafka client)
    librdkafka-dev gcc                                       # bench/rdkafka_bench.c, the benchmark client
    python3-venv                                             # .venv for kafka-python, pykafka, kazoo
    procps                                                   # pgrep / ps for the stop scripts
    iproute2 nftables                                        # fault harness: network-namespace hosts, packet drops
)

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else kafka_die "not root and no sudo: cannot install packages"; fi
fi

# Runs an apt-get command, retrying while another apt/dpkg holds the lock.
apt_retry() {
    local attempt out
    out=$(mktemp)
    for attempt in $(seq 1 40); do
        if $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=30 "$@" >"$out" 2>&1; then
            rm -f "$out"
            return 0
        fi
        if grep -qiE 'lock|could not get|temporarily unavailable' "$out"; then
            echo "   apt is busy (dpkg lock held by another process); retrying in 5 s ($attempt/40)"
            sleep 5
            continue
        fi
        cat "$out" >&2
        rm -f "$out"
        return 1
    done
    cat "$out" >&2
    rm -f "$out"
    return 1
}

missing=()
for p in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
step "System packages"
if [ ${#missing[@]} -eq 0 ]; then
    echo "   all present: ${APT_PACKAGES[*]}"
else
    echo "   installing: ${missing[*]}"
    apt_retry update
    apt_retry install -y --no-install-recommends "${missing[@]}" || kafka_die "apt-get install failed"
fi

command -v swift >/dev/null 2>&1 || kafka_die "swift is not on PATH (expected Swift 6 at /opt/swift/usr/bin); install the Swift toolchain first"

# --------------------------------------------------------------------------------------------
# 2. Python venvs with the interop test clients
# --------------------------------------------------------------------------------------------
# make_venv DIR REQUIREMENTS IMPORTS FREEZE_RE: creates DIR with the requirements unless its stamp
# (the requirements' sha256) matches and IMPORTS import; pip retried 3 times (offline blips).
make_venv() {
    local venv="$1" reqs="$2" imports="$3" freeze_re="$4"
    local stamp="$venv/.requirements.sha256"
    step "Python venv ($venv)"
    venv_ok() {
        [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys' >/dev/null 2>&1
    }
    local want
    want=$(sha256sum "$reqs" | awk '{print $1}')
    if venv_ok && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
        && "$venv/bin/python" -c "import $imports" >/dev/null 2>&1; then
        echo "   up to date ($("$venv/bin/python" --version), $(grep -vc '^\s*\(#\|$\)' "$reqs") requirements)"
        return 0
    fi
    if ! venv_ok; then
        rm -rf "$venv"
        local created=false py
        # The first python3 on PATH may be a pyenv build; Debian's /usr/bin/python3 is the fallback.
        for py in python3 /usr/bin/python3; do
            command -v "$py" >/dev/null 2>&1 || continue
            if "$py" -m venv "$venv" >/dev/null 2>&1 && venv_ok && "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
                echo "   created with $(command -v "$py") ($("$venv/bin/python" --version))"
                created=true
                break
            fi
            rm -rf "$venv"
        done
        $created || kafka_die "could not create a Python venv (is python3-venv installed?)"
    fi
    local ok=false attempt
    for attempt in 1 2 3; do
        if "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$reqs"; then ok=true; break; fi
        echo "   pip install failed (attempt $attempt/3); retrying in 5 s"
        sleep 5
    done
    $ok || kafka_die "pip install -r $reqs failed"
    "$venv/bin/python" -c "import $imports" || kafka_die "the venv's packages do not import"
    echo "$want" >"$stamp"
    echo "   installed: $("$venv/bin/python" -m pip freeze --disable-pip-version-check | grep -iE "$freeze_re" | tr '\n' ' ')"
}

# 0.8.2-era clients (kafka-python 2.0.2, pykafka, kazoo) for the interop tests.
make_venv "$KAFKA_HOME/.venv" "$KAFKA_HOME/Tests/interop/requirements.txt" \
    'kafka, kazoo, pykafka, snappy, lz4.frame, xxhash' '^(kafka-python|pykafka|kazoo|python-snappy|cramjam|lz4|xxhash)=='
# A modern client (kafka-python 3.0.12, no api_version: ApiVersions probing) for ModernClientTests.
# Its own venv: both kafka-python versions install the same `kafka` package.
make_venv "$KAFKA_HOME/.venv-modern" "$KAFKA_HOME/Tests/interop/requirements-modern.txt" \
    'kafka, snappy' '^(kafka-python|python-snappy|cramjam)=='

# --------------------------------------------------------------------------------------------
# 3. Release build
# --------------------------------------------------------------------------------------------
if $do_build; then
    step "swift build -c release"
    start=$SECONDS
    swift build -c release
    echo "   built in $((SECONDS - start)) s: $RELEASE_DIR/kafka-server, $RELEASE_DIR/kafka-tools"
    step "librdkafka benchmark client (bench/rdkafka_bench.c)"
    bench=$(kafka_build_bench_client) || kafka_die "could not build the benchmark client"
    echo "   $bench (rebuilt when the source is newer)"
fi

$do_start || exit 0

# --------------------------------------------------------------------------------------------
# 4. ZooKeeper on 2181 and one broker on 9092
# --------------------------------------------------------------------------------------------
ZK_CONFIG=config/zookeeper.properties
ZK_PORT=$(kafka_prop "$ZK_CONFIG" clientPort 2181)
ZK_DATA=$(kafka_prop "$ZK_CONFIG" dataDir "")
SERVER_CONFIG=config/server.properties
BROKER_ID=$(kafka_prop "$SERVER_CONFIG" broker.id 0)
BROKER_PORT=$(kafka_prop "$SERVER_CONFIG" port 9092)
BROKER_DATA=$(kafka_prop "$SERVER_CONFIG" log.dirs "$(kafka_prop "$SERVER_CONFIG" log.dir /tmp/kafka-logs)")

step "ZooKeeper (localhost:$ZK_PORT)"
if kafka_zk_serves 127.0.0.1 "$ZK_PORT"; then
    echo "   already answering on localhost:$ZK_PORT"
else
    bin/zookeeper-server-start.sh -daemon "$ZK_CONFIG"
    if ! kafka_wait_zk 127.0.0.1 "$ZK_PORT" 60; then
        echo "ZooKeeper did not answer on localhost:$ZK_PORT within 60 s; last lines of its log:" >&2
        tail -n 30 "$LOG_DIR/zookeeper.out" >&2 || true
        exit 1
    fi
    echo "   answering on localhost:$ZK_PORT"
fi

step "Broker $BROKER_ID (localhost:$BROKER_PORT)"
if kafka_port_open 127.0.0.1 "$BROKER_PORT"; then
    echo "   already answering on localhost:$BROKER_PORT"
else
    bin/kafka-server-start.sh -daemon "$SERVER_CONFIG"
    if ! kafka_wait_port 127.0.0.1 "$BROKER_PORT" 60; then
        echo "The broker did not answer on localhost:$BROKER_PORT within 60 s; last lines of its log:" >&2
        tail -n 30 "$LOG_DIR/kafka-server-$BROKER_ID.log" >&2 || true
        exit 1
    fi
    echo "   answering on localhost:$BROKER_PORT"
fi
# Registered in ZooKeeper? After a kill -9 the broker first waits for its previous session's
# /brokers/ids/$BROKER_ID to expire (zookeeper.session.timeout.ms).
registered=false
for _ in $(seq 1 180); do
    if kafka_broker_registered "$BROKER_PORT" "$BROKER_ID"; then registered=true; break; fi
    sleep 0.5
done
if $registered; then
    echo "   registered as broker $BROKER_ID (/brokers/ids/$BROKER_ID)"
else
    echo "The broker on localhost:$BROKER_PORT did not register as broker $BROKER_ID within 90 s; last lines of its log:" >&2
    tail -n 30 "$LOG_DIR/kafka-server-$BROKER_ID.log" >&2 || true
    exit 1
fi

cat <<EOF

Ready.
  ZooKeeper  localhost:$ZK_PORT    data: ${ZK_DATA:-?}   log: $LOG_DIR/zookeeper.out
  Broker $BROKER_ID   localhost:$BROKER_PORT    data: $BROKER_DATA   log: $LOG_DIR/kafka-server-$BROKER_ID.log
  (relative paths are under $KAFKA_HOME)

Try the quickstart:
  bin/kafka-topics.sh --zookeeper localhost:$ZK_PORT --create --topic test --partitions 1 --replication-factor 1
  bin/kafka-console-producer.sh --broker-list localhost:$BROKER_PORT --topic test
  bin/kafka-console-consumer.sh --zookeeper localhost:$ZK_PORT --topic test --from-beginning

Stop them with:
  bin/kafka-server-stop.sh
  bin/zookeeper-server-stop.sh
EOF
