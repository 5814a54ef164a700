#!/usr/bin/env bash
# Runs every roadmap-4 workload against its own ZooKeeper and brokers and prints one table:
#   workload | measured | target | pass/fail
#
#   bin/kafka-benchmark.sh [--quick] [--full-log] [--keep]
#
#   --quick     smaller runs (about 1 minute): fewer messages, 5 s of latency, 1,000 partitions kept
#   --full-log  the log's flat-append check with >= 10 GB stored (needs ~14 GB free in $TMPDIR, slow);
#               by default the check runs with a 1 GB prefill
#   --keep      keep the temp directory (logs, data) instead of removing it
#
# Builds nothing: run `swift build -c release` first. Starts ZooKeeper (Debian's, via java) and
# kafka-server processes on free ports, data under a fresh temp dir; stops them by pid at the end
# (also on Ctrl-C). Broker, clients and ZooKeeper all run on this machine and share its cores.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
PROG=$(basename "$0")

QUICK=0
FULL_LOG=0
KEEP=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        --full-log) FULL_LOG=1 ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "$PROG: unknown option $arg" >&2; sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 1 ;;
    esac
done

for exe in kafka-server kafka-tools; do
    if [ ! -x "$RELEASE_DIR/$exe" ]; then
        echo "$PROG: $RELEASE_DIR/$exe is missing. Build it first:  swift build -c release   (in $KAFKA_HOME)" >&2
        exit 1
    fi
done
SERVER="$RELEASE_DIR/kafka-server"
TOOLS="$RELEASE_DIR/kafka-tools"
JAVA=${JAVA:-$(command -v java || true)}
ZK_JARS="/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"
if [ -z "$JAVA" ] || [ ! -f /usr/share/java/zookeeper.jar ]; then
    echo "$PROG: ZooKeeper is not installed (need java and /usr/share/java/zookeeper.jar): run bin/setup.sh" >&2
    exit 1
fi

if [ "$QUICK" -eq 1 ]; then
    PRODUCE_MSGS=1000000; RF3_MSGS=500000; E2E_SECS=5; LOG_ARGS=(--messages 1000000 --runs 3 --prefill-gb 0.5)
else
    PRODUCE_MSGS=4000000; RF3_MSGS=2000000; E2E_SECS=10; LOG_ARGS=(--messages 2000000 --runs 5 --prefill-gb 1)
fi
[ "$FULL_LOG" -eq 1 ] && LOG_ARGS=(--messages 5000000 --runs 5 --prefill-gb 10)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kafka-benchmark.XXXXXX")
PIDS=()

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$KEEP" -eq 1 ]; then
        echo "kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "$PROG: interrupted" >&2; exit 130' INT TERM

say() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# free_port -> a TCP port nothing listens on now (the kernel's pick).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null && return
    local p
    while :; do
        p=$((20000 + RANDOM % 30000))
        kafka_port_open 127.0.0.1 "$p" || { echo "$p"; return; }
    done
}

stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# --- ZooKeeper ---------------------------------------------------------------------------------
ZK_PORT=$(free_port)
mkdir -p "$WORK/zk/data"
cat > "$WORK/zk/zoo.cfg" <<EOF
tickTime=500
initLimit=10
syncLimit=5
dataDir=$WORK/zk/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
maxClientCnxns=0
minSessionTimeout=1000
maxSessionTimeout=60000
admin.enableServer=false
4lw.commands.whitelist=*
forceSync=no
EOF
cat > "$WORK/zk/log4j.properties" <<EOF
log4j.rootLogger=INFO, FILE
log4j.appender.FILE=org.apache.log4j.FileAppender
log4j.appender.FILE.File=$WORK/zk/zookeeper.log
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} %-5p [%t] %c{1}: %m%n
EOF
"$JAVA" -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Djava.net.preferIPv4Stack=true "-Dlog4j.configuration=file:$WORK/zk/log4j.properties" \
    -Dzookeeper.jmx.log4j.disable=true -Dzookeeper.preAllocSize=1024 -cp "$ZK_JARS" \
    org.apache.zookeeper.server.ZooKeeperServerMain "$WORK/zk/zoo.cfg" > "$WORK/zk/zookeeper.out" 2>&1 < /dev/null &
ZK_PID=$!
PIDS+=("$ZK_PID")
ZK="127.0.0.1:$ZK_PORT"
for i in $(seq 1 120); do
    kill -0 "$ZK_PID" 2>/dev/null || { tail -20 "$WORK/zk/zookeeper.out" >&2; kafka_die "ZooKeeper exited"; }
    out=$( (exec 3<>"/dev/tcp/127.0.0.1/$ZK_PORT" && printf srvr >&3 && cat <&3) 2>/dev/null || true)
    case "$out" in *Mode:*) break ;; esac
    sleep 0.25
    [ "$i" -eq 120 ] && kafka_die "ZooKeeper did not start on $ZK"
done
say "ZooKeeper pid $ZK_PID on $ZK; work dir $WORK"

# --- brokers -----------------------------------------------------------------------------------
# start_broker ID -> starts broker ID on a free port; sets BROKER_PID and BROKER_PORT.
start_broker() {
    local id=$1 port dir
    port=$(free_port)
    dir="$WORK/broker-$id"
    mkdir -p "$dir/data"
    cat > "$dir/server.properties" <<EOF
broker.id=$id
port=$port
host.name=127.0.0.1
log.dirs=$dir/data
num.partitions=1
default.replication.factor=1
log.segment.bytes=1073741824
log.cleaner.enable=false
zookeeper.connect=$ZK
zookeeper.connection.timeout.ms=6000
EOF
    "$SERVER" "$dir/server.properties" > "$dir/server.out" 2>&1 < /dev/null &
    BROKER_PID=$!
    PIDS+=("$BROKER_PID")
    BROKER_PORT=$port
    for i in $(seq 1 120); do
        kill -0 "$BROKER_PID" 2>/dev/null || { tail -20 "$dir/server.out" >&2; kafka_die "broker $id exited"; }
        if kafka_broker_registered "$port" "$id"; then break; fi
        sleep 0.25
        [ "$i" -eq 120 ] && kafka_die "broker $id did not register within 30 s"
    done
    say "broker $id pid $BROKER_PID on 127.0.0.1:$port"
}

# wait_led TOPIC PARTITIONS ISR_SIZE SECONDS -> waits until every partition has a leader and ISR_SIZE in-sync replicas.
wait_led() {
    local topic=$1 n=$2 isr=$3 secs=$4 i ok
    for i in $(seq 1 $((secs * 2))); do
        ok=$("$TOOLS" topics --zookeeper "$ZK" --describe --topic "$topic" 2>/dev/null |
            awk -v want="$isr" '/Partition:/ { for (f = 1; f <= NF; f++) { if ($f == "Leader:") l = $(f + 1); if ($f == "Isr:") s = $(f + 1) }
                                              if (l >= 0 && split(s, a, ",") == want) c++ } END { print c + 0 }')
        [ "$ok" -ge "$n" ] && return 0
        sleep 0.5
    done
    echo "$PROG: $topic: only $ok of $n partitions led with $isr in-sync replicas after $secs s" >&2
    return 1
}

create_topic() {
    "$TOOLS" topics --zookeeper "$ZK" --create --topic "$1" --partitions "$2" --replication-factor "$3" > /dev/null
}

last_field() { tail -n 1 | awk -F', *' '{ print $NF }'; }

declare -A M
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)

# --- 1 broker: produce, consume, end-to-end latency --------------------------------------------
start_broker 1
B1_PID=$BROKER_PID; B1="127.0.0.1:$BROKER_PORT"
create_topic bench 1 1
wait_led bench 1 1 30
say "produce: $PRODUCE_MSGS x 100 B, acks=1, batches of 200, 8 in flight"
M[produce]=$("$TOOLS" producer-perf-test --broker-list "$B1" --topics bench --messages "$PRODUCE_MSGS" \
    --message-size 100 --request-num-acks 1 | tee "$WORK/produce.txt" | last_field)
say "  $(tail -1 "$WORK/produce.txt")"
say "consume: the whole partition, 1 MiB fetches"
M[consume]=$("$TOOLS" consumer-perf-test --zookeeper "$ZK" --topic bench | tee "$WORK/consume.txt" | last_field)
say "  $(tail -1 "$WORK/consume.txt")"
create_topic e2e 1 1
wait_led e2e 1 1 30
say "end-to-end latency: 10,000 msg/s for $E2E_SECS s (first second not counted), acks=1"
"$TOOLS" end-to-end-latency --broker-list "$B1" --topic e2e --rate 10000 --seconds "$E2E_SECS" --acks 1 > "$WORK/e2e.txt"
sed 's/^/  /' "$WORK/e2e.txt" >&2
M[e2e_p99]=$(awk '/^latency ms:/ { for (f = 1; f <= NF; f++) if ($f == "p99") { v = $(f + 1); sub(/,/, "", v); print v } }' "$WORK/e2e.txt")
M[e2e_p50]=$(awk '/^latency ms:/ { for (f = 1; f <= NF; f++) if ($f == "p50") { v = $(f + 1); sub(/,/, "", v); print v } }' "$WORK/e2e.txt")
M[e2e_rate]=$(awk '/achieved/ { for (f = 1; f <= NF; f++) if ($f == "achieved") print $(f + 1) }' "$WORK/e2e.txt")
stop_pid "$B1_PID"

# --- 1,000 partitions on one fresh broker ------------------------------------------------------
start_broker 2
B2_PID=$BROKER_PID
sleep 2
M[rss_idle]=$(rss_mb "$B2_PID")
say "1,000-partition topic on broker 2 (resident before: ${M[rss_idle]} MB)"
"$TOOLS" topics --zookeeper "$ZK" --create --topic many --replica-assignment "$(printf '2%.0s,' $(seq 1 1000) | sed 's/,$//')" > /dev/null
T0=$(date +%s.%N)
wait_led many 1000 1 120
for i in $(seq 1 240); do
    n=$(find "$WORK/broker-2/data" -maxdepth 1 -name 'many-*' -type d | wc -l)
    [ "$n" -ge 1000 ] && break
    sleep 0.5
done
T1=$(date +%s.%N)
sleep 3
M[rss_1000]=$(rss_mb "$B2_PID")
M[led_secs]=$(echo "$T1 - $T0" | bc -l | xargs printf '%.1f')
say "  1,000 partitions led and their logs open in ${M[led_secs]} s; VmRSS ${M[rss_1000]} MB"
stop_pid "$B2_PID"

# --- RF 3, acks=-1 -----------------------------------------------------------------------------
start_broker 3; B3="127.0.0.1:$BROKER_PORT"
start_broker 4
start_broker 5
create_topic rf3 1 3
wait_led rf3 1 3 60
say "RF 3 produce: $RF3_MSGS x 100 B, acks=-1, to the leader of partition 0 (3 brokers on this machine)"
M[rf3]=$("$TOOLS" producer-perf-test --broker-list "$B3" --topics rf3 --messages "$RF3_MSGS" \
    --message-size 100 --request-num-acks -1 | tee "$WORK/rf3.txt" | last_field)
say "  $(tail -1 "$WORK/rf3.txt")"
for pid in "${PIDS[@]}"; do [ "$pid" = "$ZK_PID" ] || stop_pid "$pid"; done
stop_pid "$ZK_PID"

# --- the log alone: flat append rate, empty vs. full -------------------------------------------
say "log flat-append check: log-perf-test ${LOG_ARGS[*]} --no-read"
"$TOOLS" log-perf-test --dir "$WORK/log-perf" "${LOG_ARGS[@]}" --no-read > "$WORK/logperf.txt"
grep -E 'median|full vs' "$WORK/logperf.txt" | sed 's/^/  /' >&2
M[flat]=$(sed -n 's/.*full vs\. empty log (interleaved): \([-+0-9.]*\)%.*/\1/p' "$WORK/logperf.txt")
M[flat_stored]=$(sed -n 's/^append median, full log (now \([0-9.]*\) GB.*/\1/p' "$WORK/logperf.txt")
M[append]=$(sed -n 's/^append median, full log.*: \([0-9]*\) msgs\/s.*/\1/p' "$WORK/logperf.txt")

# --- the table ---------------------------------------------------------------------------------
fmt_int() { printf '%.0f' "$1" | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta'; }
pass() { if [ "$(echo "$1" | bc -l)" = 1 ]; then echo pass; else echo FAIL; fi; }
ABS_FLAT=${M[flat]#[-+]}
FLAT_NOTE=""
if [ "$FULL_LOG" -eq 0 ]; then FLAT_NOTE=" (small prefill; --full-log for >= 10 GB)"; fi
FLAT_RESULT=$(pass "$ABS_FLAT <= 10")
if [ "$FULL_LOG" -eq 0 ] && [ "$FLAT_RESULT" = pass ]; then FLAT_RESULT="pass at ${M[flat_stored]} GB"; fi

echo
echo "kafka-benchmark $( [ "$QUICK" -eq 1 ] && echo '--quick ')$( [ "$FULL_LOG" -eq 1 ] && echo '--full-log ')$(date '+%Y-%m-%d %H:%M'), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo), load at start $LOAD_START"
echo
echo "| workload | measured | target | result |"
echo "|---|---|---|---|"
echo "| produce 100 B, acks=1, 1 broker, 1 partition ($(fmt_int "$PRODUCE_MSGS") msgs) | $(fmt_int "${M[produce]}") msg/s | >= 1,000,000 msg/s | $(pass "${M[produce]} >= 1000000") |"
echo "| consume the same partition, 1 MiB fetches | $(fmt_int "${M[consume]}") msg/s | >= 2,000,000 msg/s | $(pass "${M[consume]} >= 2000000") |"
echo "| end-to-end p99 at 10k msg/s, acks=1 (achieved $(fmt_int "${M[e2e_rate]}") msg/s, p50 ${M[e2e_p50]} ms) | ${M[e2e_p99]} ms | <= 5 ms | $(pass "${M[e2e_p99]} <= 5 && ${M[e2e_rate]} >= 9900") |"
echo "| produce 100 B, RF 3, acks=-1, 3 brokers ($(fmt_int "$RF3_MSGS") msgs) | $(fmt_int "${M[rf3]}") msg/s | >= 400,000 msg/s | $(pass "${M[rf3]} >= 400000") |"
echo "| log append rate, ${M[flat_stored]} GB stored vs. empty$FLAT_NOTE | ${M[flat]} % ($(fmt_int "${M[append]}") msg/s full) | within 10 % with >= 10 GB | $FLAT_RESULT |"
echo "| 1,000 partitions led on one broker: VmRSS (idle before: ${M[rss_idle]} MB; led in ${M[led_secs]} s) | ${M[rss_1000]} MB | <= 150 MB | $(pass "${M[rss_1000]} <= 150") |"
