#!/usr/bin/env bash
# Runs the benchmark workloads against its own ZooKeeper and brokers (or an external broker) and
# prints tables of measured figures vs. targets.
#
#   bin/kafka-benchmark.sh [--quick] [--full-log] [--keep] [--latency] [--throughput] [--connections] [--all]
#                          [--scale [--scale-topics N]] [--recovery [--recovery-gb G]]
#                          [--runs N] [--latency-seconds S] [--rates R,R,...] [--no-scenarios]
#                          [--bootstrap HOST:PORT --broker-pid PID[,PID,PID] --zookeeper HOST:PORT
#                           [--data-dir DIR]]
#
#   (no workload flag)  the roadmap-4 workloads: produce, consume, end-to-end latency (kafka-tools
#               clients), RF 3 acks=-1, 1,000 partitions, the log's flat append
#   --latency   issue 8: the librdkafka client (bench/rdkafka_bench.c) at 10k, 50k and 100k msg/s,
#               acks=1, 60 s each after a 5 s warm-up, each rate --runs times back to back: p50, p99,
#               p99.9, max; then the scenarios, each --runs times: latency at 50 % of the broker's
#               measured maximum produce rate; 10k msg/s while a second consumer reads 2 GB from a
#               cold log (pages dropped with posix_fadvise); 10k msg/s while another topic with
#               flush.messages=1 is under load (targets: p99 <= 5 ms; within 2x the unloaded p99)
#   --throughput  issue 9: the librdkafka client produces 100 B messages (acks=1, batches of up to
#               10,000, linger 5 ms) to 1, 100 and 1,000 partitions, consumes 1 and 100 partitions,
#               and produces with RF 3, acks=-1 on 3 brokers, each --runs times: msg/s, MB/s, broker
#               CPU ns/msg (/proc/<pid>/stat), client CPU ns/msg, broker RSS, beside the log alone
#               (kafka-tools log-perf-test) measured in the same run
#   --connections  issue 9: 10,000 idle client connections: broker RSS added and the librdkafka
#               latency p99 at 10,000 msg/s with them open vs. without (30 s each, --runs times)
#   --scale     issue 9: --scale-topics x 1,000 partitions (default 10 x 1,000) led by one broker, RF 1:
#               topic creation -> all led, restart (SIGTERM, start) -> all led, RSS 10 s after start
#               (targets <= 15 s, <= 250 MB); then 3 brokers, RF 3: once all logs exist and every ISR
#               is full, kill -9 of a non-controller: kill -> session expiry (the controller's "Live
#               brokers changed"; zookeeper.session.timeout.ms=6000) -> every partition led by a live
#               broker (Metadata polled every 100 ms; target <= 5 s). Fresh cluster per run, --runs times
#   --recovery  issue 9: 1,000 partitions on one broker filled with --recovery-gb GB (default 20) of
#               1,000 B messages (log.segment.bytes 2 MB, recovery points checkpointed every 10 s); per
#               run 100 MB more (unflushed), kill -9, start: start -> all led and a produce + fetch
#               round trip (target <= 10 s), segments/MB rescanned. Needs ~1.1x that space free
#   --all       all of the above but --scale and --recovery
#   --runs N    repetitions of each latency rate and throughput workload (default 3)
#   --messages N  messages per --throughput workload (default 4,000,000, --quick 1,000,000; RF 3 sends
#               half). A consume of 4 M lasts about a second: give more for a steadier figure
#   --latency-seconds S  measured seconds per latency run (default 60, --quick 5)
#   --rates LIST  latency rates (default 10000,50000,100000)
#   --no-scenarios  --latency without the scenarios
#   --scenarios LIST  only these scenarios (default half-max,cold-read,fsync)
#   --quick     smaller runs: fewer messages, 5 s of latency (2 s warm-up), 1,000 partitions kept
#   --full-log  the log's flat-append check with >= 10 GB stored (needs ~14 GB free in $TMPDIR, slow);
#               by default the check runs with a 1 GB prefill
#   --keep      keep the temp directory (logs, data, client output) instead of removing it
#   --bootstrap HOST:PORT --broker-pid PIDS --zookeeper HOST:PORT
#               run --latency / --throughput against an already running broker (e.g. Kafka 0.8.2.2
#               started by hand) instead of starting brokers; topics are created through its
#               ZooKeeper with kafka-tools. One pid: the single-broker workloads; three pids (a
#               3-broker cluster): only the RF 3 workload. CPU and RSS are read from those pids.
#               --data-dir: that broker's log dir, for the cold-read scenario (skipped without it)
#
# Builds nothing but the small C client (gcc, when bench/rdkafka_bench.c is newer than it): run
# `swift build -c release` first. Starts ZooKeeper (Debian's, via java) and kafka-server processes
# on free ports, data under a fresh temp dir; stops them by pid at the end (also on Ctrl-C).
# Broker, clients and ZooKeeper all run on this machine and share its cores.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
PROG=$(basename "$0")

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

QUICK=0
FULL_LOG=0
KEEP=0
LEGACY=0
LATENCY=0
THROUGHPUT=0
RUNS=3
LAT_SECS=""
RATES="10000,50000,100000"
SCENARIOS=1
SCENARIO_LIST="half-max,cold-read,fsync"
CONNS=0
CONNECTIONS=10000
SCALE=0
SCALE_TOPICS=10
RECOVERY=0
RECOVERY_GB=20
EXT_DATA_DIR=""
TP_MSGS_ARG=""
EXT_BOOTSTRAP=""
EXT_PIDS=""
EXT_ZK=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --full-log) FULL_LOG=1 ;;
        --keep) KEEP=1 ;;
        --latency) LATENCY=1 ;;
        --throughput) THROUGHPUT=1 ;;
        --all) LEGACY=1; LATENCY=1; THROUGHPUT=1; CONNS=1 ;;
        --runs) RUNS=${2:?--runs needs a number}; shift ;;
        --messages) TP_MSGS_ARG=${2:?--messages needs a number}; shift ;;
        --latency-seconds) LAT_SECS=${2:?--latency-seconds needs a number}; shift ;;
        --rates) RATES=${2:?--rates needs a list}; shift ;;
        --no-scenarios) SCENARIOS=0 ;;
        --scenarios) SCENARIO_LIST=${2:?--scenarios needs a list}; shift ;;
        --connections) CONNS=1 ;;
        --scale) SCALE=1 ;;
        --scale-topics) SCALE_TOPICS=${2:?--scale-topics needs a number}; shift ;;
        --recovery) RECOVERY=1 ;;
        --recovery-gb) RECOVERY_GB=${2:?--recovery-gb needs a number}; shift ;;
        --data-dir) EXT_DATA_DIR=${2:?--data-dir needs a directory}; shift ;;
        --bootstrap) EXT_BOOTSTRAP=${2:?--bootstrap needs HOST:PORT}; shift ;;
        --broker-pid|--broker-pids) EXT_PIDS=${2:?--broker-pid needs a pid}; shift ;;
        --zookeeper) EXT_ZK=${2:?--zookeeper needs HOST:PORT}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "$PROG: unknown option $1" >&2; usage >&2; exit 1 ;;
    esac
    shift
done
EXTERNAL=0
if [ -n "$EXT_BOOTSTRAP" ]; then
    EXTERNAL=1
    [ -n "$EXT_PIDS" ] && [ -n "$EXT_ZK" ] || { echo "$PROG: --bootstrap needs --broker-pid and --zookeeper" >&2; exit 1; }
    [ "$LEGACY" -eq 1 ] && { echo "$PROG: the roadmap-4 workloads start their own brokers: use --latency / --throughput with --bootstrap" >&2; exit 1; }
    [ "$LATENCY" -eq 0 ] && [ "$THROUGHPUT" -eq 0 ] && [ "$CONNS" -eq 0 ] && { LATENCY=1; THROUGHPUT=1; }
fi
[ "$EXTERNAL" -eq 1 ] && [ $((SCALE + RECOVERY)) -gt 0 ] && { echo "$PROG: --scale and --recovery start their own brokers" >&2; exit 1; }
[ "$LATENCY" -eq 0 ] && [ "$THROUGHPUT" -eq 0 ] && [ "$CONNS" -eq 0 ] && [ "$SCALE" -eq 0 ] && [ "$RECOVERY" -eq 0 ] && LEGACY=1

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
start_zookeeper() {
    local shared="$KAFKA_HOME/config/test-zookeeper" i out
    ZK_PORT=$(free_port)
    mkdir -p "$WORK/zk/data"
    # The settings, logging and JVM options the tests' ZooKeeper servers use (config/test-zookeeper/).
    { cat "$shared/zoo.cfg"
      printf 'dataDir=%s\nclientPort=%s\nclientPortAddress=127.0.0.1\n' "$WORK/zk/data" "$ZK_PORT"
    } > "$WORK/zk/zoo.cfg"
    "$JAVA" "@$shared/jvm.options" "-Dlog4j.configuration=file:$shared/log4j.properties" \
        "-Dzookeeper.log.file=$WORK/zk/zookeeper.log" -cp "$ZK_JARS" \
        org.apache.zookeeper.server.ZooKeeperServerMain "$WORK/zk/zoo.cfg" > "$WORK/zk/zookeeper.out" 2>&1 < /dev/null &
    ZK_PID=$!
    PIDS+=("$ZK_PID")
    ZK="127.0.0.1:$ZK_PORT"
    for i in $(seq 1 120); do
        kill -0 "$ZK_PID" 2>/dev/null || { tail -20 "$WORK/zk/zookeeper.out" >&2; kafka_die "ZooKeeper exited"; }
        # A probe of a server still starting can hang: give up after 2 s and try again.
        out=$(timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf srvr >&3 && cat <&3' _ "$ZK_PORT" 2>/dev/null || true)
        case "$out" in *Mode:*) break ;; esac
        sleep 0.25
        [ "$i" -eq 120 ] && kafka_die "ZooKeeper did not start on $ZK"
    done
    say "ZooKeeper pid $ZK_PID on $ZK; work dir $WORK"
}

# --- brokers -----------------------------------------------------------------------------------
# broker_properties ID PORT DIR [KEY=VALUE...] -> a benchmark broker's server.properties on stdout:
# loopback, data in DIR/data, this run's ZooKeeper, the cleaner off, then the extra keys.
broker_properties() {
    cat <<EOF
broker.id=$1
port=$2
host.name=127.0.0.1
log.dirs=$3/data
num.partitions=1
default.replication.factor=1
log.cleaner.enable=false
zookeeper.connect=$ZK
zookeeper.connection.timeout.ms=6000
EOF
    shift 3
    [ $# -eq 0 ] || printf '%s\n' "$@"
}

# start_broker ID -> starts broker ID on a free port; sets BROKER_PID and BROKER_PORT.
start_broker() {
    local id=$1 port dir
    port=$(free_port)
    dir="$WORK/broker-$id"
    mkdir -p "$dir/data"
    broker_properties "$id" "$port" "$dir" log.segment.bytes=1073741824 > "$dir/server.properties"
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

run_legacy() {
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
}

fmt_int() { printf '%.0f' "$1" | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta'; }
pass() { if [ "$(echo "$1" | bc -l)" = 1 ]; then echo pass; else echo FAIL; fi; }

# kv LINE KEY -> the value of KEY in a key=value line of the librdkafka client.
kv() { printf '%s\n' "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2; exit }'; }

# cpu_steal -> "steal total" jiffies of all CPUs (/proc/stat): time the hypervisor gave this VM's
# CPUs to others, which no change to the broker can win back.
cpu_steal() { awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t }' /proc/stat; }

# host_reported_kib -> KiB of free memory this guest kernel has handed back to the hypervisor so far
# (free page reporting), or nothing where the kernel has no such counter. While it reports, the
# whole VM pauses for 10-30 ms at a time (BENCHMARKS.md, "Where the cold-read ... costs come from").
HOST_REPORTED=/sys/module/page_reporting/parameters/reported_kib
host_reported_kib() { [ -r "$HOST_REPORTED" ] && cat "$HOST_REPORTED" || true; }

# bench_client ARGS... -> runs the librdkafka client, its result line on stdout (also kept in
# $WORK/client.txt; its stderr in $WORK/client.err), with steal_pct: the CPU steal during the run,
# and host_reported_mib: the memory handed back to the hypervisor during it (where counted).
bench_client() {
    local line rc=0 s0 t0 s1 t1 r0 r1
    read -r s0 t0 < <(cpu_steal)
    r0=$(host_reported_kib)
    line=$("$BENCH" "$@" 2>> "$WORK/client.err") || rc=$?
    read -r s1 t1 < <(cpu_steal)
    r1=$(host_reported_kib)
    [ -z "$line" ] || line="$line steal_pct=$(awk -v s=$((s1 - s0)) -v t=$((t1 - t0)) 'BEGIN { printf "%.1f", (t > 0 ? 100 * s / t : 0) }')"
    [ -z "$line" ] || [ -z "$r0" ] || [ -z "$r1" ] || line="$line host_reported_mib=$(( (r1 - r0) / 1024 ))"
    printf '%s\n' "$line" >> "$WORK/client.txt"
    [ -n "$line" ] || { tail -5 "$WORK/client.err" >&2; kafka_die "the benchmark client failed (exit $rc): $*"; }
    [ "$rc" -eq 0 ] || say "  (client exit status $rc: incomplete run, see the line)"
    printf '%s\n' "$line"
}

# Names unique to this run, so an external broker that kept earlier topics gets fresh ones.
RUN_TAG=$(date +%H%M%S)

# --- issue 8: latency with the librdkafka client -----------------------------------------------
run_latency() {
    local bs=$1 pids=$2 rate run topic line secs warm
    secs=${LAT_SECS:-$([ "$QUICK" -eq 1 ] && echo 5 || echo 60)}
    warm=$([ "$QUICK" -eq 1 ] && echo 2 || echo 5)
    LAT_ROWS=()
    for rate in ${RATES//,/ }; do
        topic="lat-$rate-$RUN_TAG"
        create_topic "$topic" 1 1
        wait_led "$topic" 1 1 60
        for run in $(seq 1 "$RUNS"); do
            say "latency: $rate msg/s, run $run/$RUNS: ${warm} s warm-up + $secs s measured, 100 B, acks=1, linger 0, topic $topic"
            line=$(bench_client --mode latency --bootstrap "$bs" --topic "$topic" --rate "$rate" --seconds "$secs" \
                --warmup "$warm" --acks 1 --size 100 --broker-pids "$pids")
            say "  $line"
            LAT_ROWS+=("$rate|$run|$(uptime_load)|$line")
        done
    done
}

uptime_load() { cut -d' ' -f1 /proc/loadavg; }

# run_cell RUN LOAD LINE -> "2 (load 2.40, steal 3.1 %, 384 MiB to host)": the run column of a table
# row (the last part only when memory was handed back to the hypervisor during the run).
run_cell() {
    local steal reported
    steal=$(kv "$3" steal_pct)
    reported=$(kv "$3" host_reported_mib)
    [ "${reported:-0}" -gt 0 ] || reported=""
    echo "$1 (load $2${steal:+, steal $steal %}${reported:+, $reported MiB to host})"
}

# --- issue 8: the latency scenarios (after the rates, same broker) ------------------------------
# Each runs --runs times: the librdkafka latency client at a fixed rate on its own 1-partition topic
# while something else loads the same broker.
#   half-max   the broker's maximum produce rate is measured first (the throughput workload:
#              batches of up to 10,000, linger 5 ms, 1 partition); latency at 50 % of it
#   cold-read  10,000 msg/s while a second consumer reads a 2 GB topic from its beginning, over and
#              over, its segment files' pages dropped first (dd iflag=nocache: posix_fadvise
#              DONTNEED); needs the broker's data dir (--data-dir for an external broker)
#   fsync      10,000 msg/s while another topic with flush.messages=1 takes 2,000 one-message produce
#              requests per second (a second latency client, linger 0: every request is fsynced)
# Background loads run at nice 19 and stop (between their iterations) when the latency client is
# done; each row says how much load ran during it.
SCN_ROWS=()

# background_until FILE CMD... -> runs CMD repeatedly in the background until FILE exists; the
# number of completed iterations is written to FILE.count. Sets BG_PID, and BG_FROM (the first
# line of background.txt that this load's results will have). The load clients run at nice 19: on this
# 2-core machine the load client, the latency client and the broker share the cores, and the
# scenario asks whether the broker keeps one client's requests apart from another's, not whether
# the scheduler does; the rows say how much load ran.
background_until() {
    local stop=$1; shift
    rm -f "$stop" "$stop.count"
    touch "$WORK/background.txt"
    BG_FROM=$(($(wc -l < "$WORK/background.txt") + 1))
    ( n=0; while [ ! -e "$stop" ]; do "$@" >> "$WORK/background.txt" 2>> "$WORK/client.err" || break; n=$((n + 1)); done
      echo "$n" > "$stop.count" ) &
    BG_PID=$!
}

# stop_background FILE -> stops the loop of background_until FILE; BG_COUNT = iterations it completed.
stop_background() {
    touch "$1"
    wait "$BG_PID" 2>/dev/null || true
    BG_COUNT=$(cat "$1.count" 2>/dev/null || echo 0)
    [ "$BG_COUNT" -gt 0 ] || say "  WARNING: the background load completed no iteration (see $WORK/client.err)"
}

# drop_pages DIR -> evicts the page cache of every file under DIR (posix_fadvise DONTNEED via dd).
drop_pages() {
    local f
    for f in "$1"/*; do dd if="$f" iflag=nocache count=0 status=none; done
}

# cold_read_pass DIR BOOTSTRAP TOPIC MESSAGES -> one cold read of the whole topic.
cold_read_pass() {
    drop_pages "$1"
    nice -n 19 "$BENCH" --mode consume --bootstrap "$2" --topic "$3" --messages "$4"
}

run_latency_scenarios() {
    local bs=$1 pids=$2 data_dir=$3 secs warm run line topic max half cold_dir cold_msgs=200000
    secs=${LAT_SECS:-$([ "$QUICK" -eq 1 ] && echo 5 || echo 60)}
    warm=$([ "$QUICK" -eq 1 ] && echo 2 || echo 5)
    topic="scn-$RUN_TAG"
    create_topic "$topic" 1 1
    wait_led "$topic" 1 1 60
    settle() { sync; sleep 2; } # earlier writes' writeback must not land in the next measurement
    scn_latency() { # RATE -> the client's result in $line
        line=$(bench_client --mode latency --bootstrap "$bs" --topic "$topic" --rate "$1" --seconds "$secs" \
            --warmup "$warm" --acks 1 --size 100 --broker-pids "$pids")
        say "  $line"
    }

    # half of the maximum produce rate
    if [[ ",$SCENARIO_LIST," == *,half-max,* ]]; then
    create_topic "max-$RUN_TAG" 1 1
    wait_led "max-$RUN_TAG" 1 1 60
    say "scenario half-max: the maximum produce rate first ($TP_MSGS x 100 B, 1 partition, acks=1, batches of up to 10,000, linger 5 ms)"
    line=$(bench_client --mode produce --bootstrap "$bs" --topic "max-$RUN_TAG" --messages "$TP_MSGS" --size 100 \
        --acks 1 --batch 10000 --linger-ms 5 --broker-pids "$pids")
    say "  $line"
    max=$(kv "$line" msg_s); half=$(printf '%.0f' "$(echo "$max / 2" | bc -l)")
    for run in $(seq 1 "$RUNS"); do
        settle
        say "scenario half-max, run $run/$RUNS: latency at $(fmt_int "$half") msg/s (50 % of $(fmt_int "$max"))"
        scn_latency "$half"
        SCN_ROWS+=("half-max: $(fmt_int "$half") msg/s, 50 % of the measured maximum $(fmt_int "$max") msg/s|$run|$(uptime_load)|$line|-")
    done

    fi

    # a cold 2 GB read
    if [[ ",$SCENARIO_LIST," != *,cold-read,* ]]; then
        :
    elif [ -z "$data_dir" ]; then
        say "scenario cold-read skipped: the broker's data dir is unknown (--data-dir DIR)"
    else
        say "scenario cold-read: writing 2 GB ($cold_msgs x 10,000 B) to cold-$RUN_TAG"
        create_topic "cold-$RUN_TAG" 1 1
        wait_led "cold-$RUN_TAG" 1 1 60
        line=$(bench_client --mode produce --bootstrap "$bs" --topic "cold-$RUN_TAG" --messages "$cold_msgs" --size 10000 \
            --acks 1 --batch 100 --linger-ms 5)
        say "  $line"
        cold_dir="$data_dir/cold-$RUN_TAG-0"
        [ -d "$cold_dir" ] || kafka_die "no log dir $cold_dir for the cold topic"
        for run in $(seq 1 "$RUNS"); do
            settle
            say "scenario cold-read, run $run/$RUNS: 10,000 msg/s while a consumer reads cold-$RUN_TAG (2 GB) from a dropped page cache, repeatedly"
            background_until "$WORK/stop-cold" cold_read_pass "$cold_dir" "$bs" "cold-$RUN_TAG" "$cold_msgs"
            sleep 1
            scn_latency 10000
            stop_background "$WORK/stop-cold"
            local cold_mbs
            cold_mbs=$(tail -n "+$BG_FROM" "$WORK/background.txt" | awk '/^mode=consume/ { for (f = 1; f <= NF; f++) if ($f ~ /^mb_s=/) { sub(/mb_s=/, "", $f); s += $f; n++ } } END { printf "%.0f", n ? s / n : 0 }')
            SCN_ROWS+=("cold-read: 10,000 msg/s while a consumer read 2 GB from a cold log $BG_COUNT time(s), $cold_mbs MB/s each|$run|$(uptime_load)|$line|x2")
        done
    fi

    # another topic with flush.messages=1
    [[ ",$SCENARIO_LIST," == *,fsync,* ]] || return 0
    "$TOOLS" topics --zookeeper "$ZK" --create --topic "fsync-$RUN_TAG" --partitions 1 --replication-factor 1 \
        --config flush.messages=1 > /dev/null
    wait_led "fsync-$RUN_TAG" 1 1 60
    for run in $(seq 1 "$RUNS"); do
        settle
        say "scenario fsync, run $run/$RUNS: 10,000 msg/s while fsync-$RUN_TAG (flush.messages=1) takes 2,000 one-message produce requests/s, each fsynced"
        background_until "$WORK/stop-fsync" nice -n 19 "$BENCH" --mode latency --bootstrap "$bs" --topic "fsync-$RUN_TAG" \
            --rate 2000 --seconds "$((secs + warm + 5))" --warmup 1 --acks 1 --size 100
        sleep 2
        scn_latency 10000
        stop_background "$WORK/stop-fsync"
        SCN_ROWS+=("fsync: 10,000 msg/s while another topic (flush.messages=1) took 2,000 fsynced produce requests/s (its own p99 $(kv "$(tail -n "+$BG_FROM" "$WORK/background.txt" | grep "^mode=latency rate=2000 " | tail -1)" p99_ms) ms)|$run|$(uptime_load)|$line|x2")
    done
}

print_scenarios() {
    local row name run load line rule p99 base target res sorted
    # The unloaded 10,000 msg/s p99 of this run (median of its runs) is the scenarios' baseline.
    sorted=$(for row in "${LAT_ROWS[@]}"; do IFS='|' read -r rate run load line <<< "$row"
        if [ "$rate" = 10000 ]; then kv "$line" p99_ms; fi; done | sort -n)
    base=$(echo "$sorted" | awk 'NF { v[++n] = $1 } END { if (n) print v[int((n + 1) / 2)] }')
    echo
    echo "latency scenarios (same broker, same run); unloaded 10,000 msg/s p99 baseline: ${base:-not measured (add 10000 to --rates)} ms"
    echo
    echo "| scenario | run | achieved msg/s | p50 ms | p99 ms | p99.9 ms | max ms | lost | target | result |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for row in "${SCN_ROWS[@]}"; do
        IFS='|' read -r name run load line rule <<< "$row"
        p99=$(kv "$line" p99_ms)
        if [ "$rule" = x2 ]; then
            if [ -n "$base" ]; then target="p99 <= 2 x $base = $(echo "2 * $base" | bc -l | xargs printf '%.3f') ms"
                res=$(pass "$p99 <= 2 * $base && $(kv "$line" lost) == 0")
            else target="p99 <= 2 x unloaded"; res="-"; fi
        else
            target="p99 <= 5 ms"; res=$(pass "$p99 <= 5 && $(kv "$line" lost) == 0")
        fi
        echo "| $name | $(run_cell "$run" "$load" "$line") | $(fmt_int "$(kv "$line" achieved)") | $(kv "$line" p50_ms) | $p99 | $(kv "$line" p999_ms) | $(kv "$line" max_ms) | $(kv "$line" lost) | $target | $res |"
    done
}

print_latency() {
    local row rate run load line p99 max target
    echo
    echo "librdkafka latency ($([ "$EXTERNAL" -eq 1 ] && echo "external broker $EXT_BOOTSTRAP, pid $EXT_PIDS" || echo "this broker, $SERVER")), $(date '+%Y-%m-%d %H:%M'), $(nproc) cores, load at start $LOAD_START"
    echo
    echo "| rate | run | achieved msg/s | p50 ms | p99 ms | p99.9 ms | max ms | lost | client CPU % | broker CPU ns/msg | target p99 / max | result |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    for row in "${LAT_ROWS[@]}"; do
        IFS='|' read -r rate run load line <<< "$row"
        p99=$(kv "$line" p99_ms); max=$(kv "$line" max_ms)
        case "$rate" in 10000) target=1 ;; 50000) target=2 ;; 100000) target=3 ;; *) target="" ;; esac
        local cpu_pct
        cpu_pct=$(echo "$(kv "$line" client_cpu_ns_msg) * $(kv "$line" achieved) / 10000000" | bc -l | xargs printf '%.0f')
        echo "| $(fmt_int "$rate") | $(run_cell "$run" "$load" "$line") | $(fmt_int "$(kv "$line" achieved)") | $(kv "$line" p50_ms) | $p99 | $(kv "$line" p999_ms) | $max | $(kv "$line" lost) | $cpu_pct | $(kv "$line" broker_cpu_ns_msg) | $([ -n "$target" ] && echo "<= $target / <= 20" || echo -) | $([ -n "$target" ] && pass "$p99 <= $target && $max <= 20 && $(kv "$line" lost) == 0" || echo -) |"
    done
}

# --- issue 9: 10,000 idle client connections ---------------------------------------------------
# Each run: latency at 10,000 msg/s (the librdkafka client), then 10,000 idle TCP connections are
# opened to the broker and held (no request sent) while the same latency run repeats; the broker's
# RSS is read before and after they open.
CONN_ROWS=()
run_connections() {
    local bs=$1 pid=$2 secs warm run base loaded rss0 rss1 n host=${1%:*} port=${1##*:}
    secs=${LAT_SECS:-$([ "$QUICK" -eq 1 ] && echo 5 || echo 30)}
    warm=$([ "$QUICK" -eq 1 ] && echo 2 || echo 5)
    create_topic "conn-$RUN_TAG" 1 1
    wait_led "conn-$RUN_TAG" 1 1 60
    for run in $(seq 1 "$RUNS"); do
        say "connections, run $run/$RUNS: latency at 10,000 msg/s for $secs s without, then with $(fmt_int "$CONNECTIONS") idle connections"
        base=$(bench_client --mode latency --bootstrap "$bs" --topic "conn-$RUN_TAG" --rate 10000 --seconds "$secs" --warmup "$warm" --acks 1 --size 100)
        say "  without: $base"
        sleep 2
        rss0=$(rss_mb "$pid")
        rm -f "$WORK/conns.ready"
        python3 - "$host" "$port" "$CONNECTIONS" "$WORK/conns.ready" <<'PY' &
import resource, socket, sys, time
host, port, n, ready = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 100)), hard))
socks = [socket.create_connection((host, port)) for _ in range(n)]
open(ready, "w").write(str(len(socks)))
time.sleep(3600)
PY
        local holder=$!
        for _ in $(seq 1 240); do [ -s "$WORK/conns.ready" ] && break; kill -0 "$holder" 2>/dev/null || break; sleep 0.5; done
        n=$(cat "$WORK/conns.ready" 2>/dev/null || echo 0)
        [ "$n" = "$CONNECTIONS" ] || { kill "$holder" 2>/dev/null; kafka_die "only $n of $CONNECTIONS connections opened (ulimit -n is $(ulimit -n))"; }
        sleep 3
        rss1=$(rss_mb "$pid")
        say "  $n connections open: broker RSS $rss0 -> $rss1 MB"
        loaded=$(bench_client --mode latency --bootstrap "$bs" --topic "conn-$RUN_TAG" --rate 10000 --seconds "$secs" --warmup "$warm" --acks 1 --size 100)
        say "  with: $loaded"
        kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null || true
        CONN_ROWS+=("$run|$(uptime_load)|$rss0|$rss1|$base|$loaded")
        sleep 3
    done
}

print_connections() {
    local row run load rss0 rss1 base loaded pb pl
    echo
    echo "$(fmt_int "$CONNECTIONS") idle connections ($([ "$EXTERNAL" -eq 1 ] && echo "external broker $EXT_BOOTSTRAP, pid $EXT_PIDS" || echo "this broker, $SERVER")), $(date '+%Y-%m-%d %H:%M'), $(nproc) cores, load at start $LOAD_START"
    echo
    echo "| run | RSS before MB | RSS with connections MB | added MB | 10k msg/s p99 without ms | p99 with ms | ratio | max without / with ms | target | result |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for row in "${CONN_ROWS[@]}"; do
        IFS='|' read -r run load rss0 rss1 base loaded <<< "$row"
        pb=$(kv "$base" p99_ms); pl=$(kv "$loaded" p99_ms)
        echo "| $(run_cell "$run" "$load" "$loaded") | $rss0 | $rss1 | $(echo "$rss1 - $rss0" | bc -l | xargs printf '%.1f') | $pb | $pl | $(echo "$pl / $pb" | bc -l | xargs printf '%.2f') | $(kv "$base" max_ms) / $(kv "$loaded" max_ms) | <= 100 MB, p99 ratio <= 1.5 | $(pass "$rss1 - $rss0 <= 100 && $pl <= 1.5 * $pb && $(kv "$loaded" lost) == 0") |"
    done
}

# --- issue 9: throughput with the librdkafka client --------------------------------------------
# log_alone -> the log's own append limit in this run: sets LOG_MSGS_S and LOG_NS_MSG (medians).
log_alone() {
    local n=$1
    say "the log alone: log-perf-test --messages $n --runs 3 --no-read (200-message sets of 100 B)"
    "$TOOLS" log-perf-test --dir "$WORK/log-alone" --messages "$n" --runs 3 --no-read > "$WORK/log-alone.txt"
    grep -E '^append run' "$WORK/log-alone.txt" | sed 's/^/  /' >&2
    LOG_NS_MSG=$(awk -v n="$n" '/^append run/ { match($0, /cpu user [0-9.]+ s, sys [0-9.]+ s/); split(substr($0, RSTART, RLENGTH), a, " ");
                 print (a[3] + a[6]) * 1e9 / n }' "$WORK/log-alone.txt" | sort -n | awk '{ v[NR] = $1 } END { printf "%.0f", v[int((NR + 1) / 2)] }')
    LOG_MSGS_S=$(sed -n 's/^append median: \([0-9]*\) msgs\/s.*/\1/p' "$WORK/log-alone.txt")
    say "  log alone: median $(fmt_int "$LOG_MSGS_S") msg/s, $LOG_NS_MSG ns CPU/msg"
}

TP_ROWS=()
tp_row() { TP_ROWS+=("$1|$2|$(uptime_load)|$3"); }

run_throughput_single() {
    local bs=$1 pids=$2 run p line
    for p in 1 100 1000; do
        create_topic "tp$p-$RUN_TAG" "$p" 1
        wait_led "tp$p-$RUN_TAG" "$p" 1 180
    done
    for run in $(seq 1 "$RUNS"); do
        for p in 1 100 1000; do
            say "produce: $TP_MSGS x 100 B to $p partition(s), acks=1, batches of up to 10,000, linger 5 ms (run $run/$RUNS)"
            line=$(bench_client --mode produce --bootstrap "$bs" --topic "tp$p-$RUN_TAG" --messages "$TP_MSGS" --size 100 \
                --acks 1 --batch 10000 --linger-ms 5 --broker-pids "$pids")
            say "  $line"
            tp_row "produce, $p partition$([ "$p" -gt 1 ] && echo s), acks=1" "$run" "$line"
        done
        for p in 1 100; do
            say "consume: $TP_MSGS messages from $p partition(s), from the beginning (run $run/$RUNS)"
            line=$(bench_client --mode consume --bootstrap "$bs" --topic "tp$p-$RUN_TAG" --messages "$TP_MSGS" --broker-pids "$pids")
            say "  $line"
            tp_row "consume, $p partition$([ "$p" -gt 1 ] && echo s)" "$run" "$line"
        done
    done
}

run_throughput_rf3() {
    local bs=$1 pids=$2 run line
    create_topic "rf3-$RUN_TAG" 1 3
    wait_led "rf3-$RUN_TAG" 1 3 60
    for run in $(seq 1 "$RUNS"); do
        say "produce: $TP_RF3_MSGS x 100 B, RF 3, acks=-1, 3 brokers, 1 partition (run $run/$RUNS)"
        line=$(bench_client --mode produce --bootstrap "$bs" --topic "rf3-$RUN_TAG" --messages "$TP_RF3_MSGS" --size 100 \
            --acks -1 --batch 10000 --linger-ms 5 --broker-pids "$pids")
        say "  $line"
        tp_row "produce, RF 3, acks=-1, 3 brokers (CPU and RSS: sum of 3)" "$run" "$line"
    done
}

print_throughput() {
    local row name run load line bns ratio
    echo
    echo "librdkafka throughput ($([ "$EXTERNAL" -eq 1 ] && echo "external broker(s) $EXT_BOOTSTRAP, pid $EXT_PIDS" || echo "this broker, $SERVER")), 100 B messages, $(date '+%Y-%m-%d %H:%M'), $(nproc) cores, load at start $LOAD_START"
    echo "log alone (log-perf-test, same run, median of 3): $(fmt_int "$LOG_MSGS_S") msg/s, $LOG_NS_MSG ns CPU/msg"
    echo
    echo "| workload | run | msg/s | MB/s | broker CPU ns/msg | x log alone | client CPU ns/msg | broker RSS MB |"
    echo "|---|---|---|---|---|---|---|---|"
    for row in "${TP_ROWS[@]}"; do
        IFS='|' read -r name run load line <<< "$row"
        bns=$(kv "$line" broker_cpu_ns_msg)
        ratio=$(echo "$bns / $LOG_NS_MSG" | bc -l | xargs printf '%.2f')
        local done_n want_n note=""
        done_n=$(kv "$line" delivered); [ -n "$done_n" ] || done_n=$(kv "$line" consumed)
        want_n=$(kv "$line" messages)
        [ "$done_n" = "$want_n" ] || note=" (INCOMPLETE: $(fmt_int "$done_n") of $(fmt_int "$want_n"))"
        echo "| $name$note | $(run_cell "$run" "$load" "$line") | $(fmt_int "$(kv "$line" msg_s)") | $(kv "$line" mb_s) | $(fmt_int "$bns") | $ratio | $(fmt_int "$(kv "$line" client_cpu_ns_msg)") | $(kv "$line" broker_rss_mb) |"
    done
}

# --- issue 9: scale (10,000 partitions) and recovery (20 GB) -----------------------------------
# The Metadata poller both modes use: Metadata v0 (all topics) every --interval s until --expect
# partitions each name a leader that is not --dead (with --isr N: and list N in-sync replicas);
# prints "led SECONDS" (since --since, epoch s; progress on stderr). --leads ID also prints "leads ID
# COUNT". --roundtrip TOPIC then produces one message (acks=1) to partition 0 of TOPIC on its leader
# and fetches it back: "roundtrip SECONDS".
write_meta_poll() {
    cat > "$WORK/meta-poll.py" <<'EOF'
import argparse, socket, struct, sys, time, zlib
ap = argparse.ArgumentParser()
ap.add_argument('--port', type=int, required=True)
ap.add_argument('--expect', type=int, required=True)
ap.add_argument('--dead', type=int, default=-99)
ap.add_argument('--isr', type=int, default=0)
ap.add_argument('--leads', type=int, default=None)
ap.add_argument('--since', type=float, default=None)
ap.add_argument('--timeout', type=float, default=120)
ap.add_argument('--interval', type=float, default=0.1)
ap.add_argument('--roundtrip', default=None)
a = ap.parse_args()
since = a.since or time.time()

def call(port, api, body):
    s = socket.create_connection(('127.0.0.1', port), timeout=10)
    cid = b'scale-poll'
    req = struct.pack('>hhih', api, 0, 1, len(cid)) + cid + body
    s.sendall(struct.pack('>i', len(req)) + req)
    def rd(n):
        b = b''
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c: raise IOError('eof')
            b += c
        return b
    d = rd(struct.unpack('>i', rd(4))[0]); s.close()
    return d

class R:
    def __init__(s, d): s.d, s.o = d, 4
    def i16(s): v = struct.unpack_from('>h', s.d, s.o)[0]; s.o += 2; return v
    def i32(s): v = struct.unpack_from('>i', s.d, s.o)[0]; s.o += 4; return v
    def i64(s): v = struct.unpack_from('>q', s.d, s.o)[0]; s.o += 8; return v
    def st(s): l = s.i16(); v = s.d[s.o:s.o + l]; s.o += l; return v

def metadata():
    r = R(call(a.port, 3, struct.pack('>i', 0)))
    brokers = {}
    for _ in range(r.i32()):
        bid = r.i32(); r.st(); brokers[bid] = r.i32()
    total = led = 0; leaders = {}
    for _ in range(r.i32()):
        r.i16(); t = r.st()
        for _ in range(r.i32()):
            r.i16(); p = r.i32(); ldr = r.i32()
            for _ in range(r.i32()): r.i32()
            isr = r.i32()
            for _ in range(isr): r.i32()
            total += 1
            if ldr >= 0 and ldr != a.dead and (a.isr == 0 or isr >= a.isr): led += 1
            leaders[(t, p)] = ldr
    return total, led, brokers, leaders

def roundtrip(port, topic):
    t = topic.encode(); value = b'recovery-check-%d' % int(time.time() * 1000)
    msg = struct.pack('>bbi', 0, 0, -1) + struct.pack('>i', len(value)) + value
    msg = struct.pack('>I', zlib.crc32(msg) & 0xffffffff) + msg
    mset = struct.pack('>qi', 0, len(msg)) + msg
    body = struct.pack('>hii', 1, 10000, 1) + struct.pack('>h', len(t)) + t + struct.pack('>iii', 1, 0, len(mset)) + mset
    r = R(call(port, 0, body))
    r.i32(); r.st(); r.i32(); r.i32(); err = r.i16(); off = r.i64()
    if err != 0: raise IOError('produce error %d' % err)
    body = struct.pack('>iiii', -1, 100, 1, 1) + struct.pack('>h', len(t)) + t + struct.pack('>iiqi', 1, 0, off, 65536)
    r = R(call(port, 1, body))
    r.i32(); r.st(); r.i32(); r.i32(); err = r.i16(); r.i64(); size = r.i32()
    if err != 0 or value not in r.d[r.o:r.o + size]: raise IOError('fetch error %d' % err)

last = None
while True:
    try:
        total, led, brokers, leaders = metadata()
    except Exception:
        total, led = -1, 0
    now = time.time()
    if (total, led) != last:
        print('%8.2fs total=%d led=%d' % (now - since, total, led), file=sys.stderr, flush=True); last = (total, led)
    if total >= a.expect and led >= a.expect:
        print('led %.3f' % (now - since), flush=True); break
    if now - since > a.timeout:
        print('timeout %.3f total=%d led=%d' % (now - since, total, led), flush=True); sys.exit(1)
    time.sleep(a.interval)
if a.leads is not None:
    print('leads %d %d' % (a.leads, sum(1 for l in leaders.values() if l == a.leads)), flush=True)
if a.roundtrip:
    while True:
        try:
            _, _, brokers, leaders = metadata()
            roundtrip(brokers[leaders[(a.roundtrip.encode(), 0)]], a.roundtrip)
            print('roundtrip %.3f' % (time.time() - since), flush=True); break
        except Exception as e:
            if time.time() - since > a.timeout:
                print('timeout %.3f roundtrip: %s' % (time.time() - since, e), flush=True); sys.exit(1)
            time.sleep(a.interval)
EOF
}

# meta_poll ARGS... -> runs the poller; its result lines on stdout, progress appended to $WORK/meta-poll.log.
meta_poll() { python3 "$WORK/meta-poll.py" "$@" 2>> "$WORK/meta-poll.log" || true; }
# poll_value LINES KEY -> the first number after KEY at the start of a line.
poll_value() { printf '%s\n' "$1" | awk -v k="$2" '$1 == k { print $2; exit }'; }

now_s() { date +%s.%N; }
secs_since() { echo "$1 - $2" | bc -l | xargs printf '%.2f'; }

# fresh_zookeeper -> stops this run's ZooKeeper (if any), removes its data and starts a new one.
fresh_zookeeper() {
    [ -n "${ZK_PID:-}" ] && stop_pid "$ZK_PID"
    rm -rf "$WORK/zk"
    start_zookeeper
}

# scale_broker ID PORT [KEY=VALUE...] -> starts broker ID on PORT in $WORK/broker-ID, without waiting
# (the poller times it); its server.properties is written the first time (the keys then stay), its
# output appended to server.out across restarts. Sets BROKER_PID.
scale_broker() {
    local id=$1 port=$2 dir="$WORK/broker-$1"; shift 2
    mkdir -p "$dir/data"
    if [ ! -f "$dir/server.properties" ]; then
        broker_properties "$id" "$port" "$dir" zookeeper.session.timeout.ms=6000 "$@" > "$dir/server.properties"
    fi
    "$SERVER" "$dir/server.properties" >> "$dir/server.out" 2>&1 < /dev/null &
    BROKER_PID=$!
    PIDS+=("$BROKER_PID")
}

# kill9 PID -> kill -9, reaped, and out of PIDS.
kill9() {
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# log_line_after FILE PATTERN EPOCH -> the first line of FILE matching PATTERN logged at or after EPOCH
# (the broker's "[YYYY-MM-DD HH:MM:SS,mmm]" local time), prefixed with its epoch seconds.
log_line_after() {
    local line ts e
    while IFS= read -r line; do
        ts=$(printf '%s\n' "$line" | sed -n 's/^\[\([0-9-]* [0-9:]*\),\([0-9]*\)\].*/\1.\2/p')
        [ -n "$ts" ] || continue
        e=$(date -d "$ts" +%s.%N)
        if [ "$(echo "$e >= $3" | bc -l)" = 1 ]; then printf '%s %s\n' "$e" "$line"; return; fi
    done < <(grep -- "$2" "$1")
}

# partition_dirs DIR -> how many partition directories a broker's log dir holds.
partition_dirs() { find "$1" -mindepth 1 -maxdepth 1 -type d | wc -l; }

SCALE_A_ROWS=()
SCALE_B_ROWS=()

# 10,000 partitions (SCALE_TOPICS x 1,000), RF 1, led by one broker; then SIGTERM and start again.
run_scale_single() {
    local run n=$((SCALE_TOPICS * 1000)) port t0 out create restart rss t
    for run in $(seq 1 "$RUNS"); do
        fresh_zookeeper
        rm -rf "$WORK/broker-20"
        port=$(free_port)
        scale_broker 20 "$port"
        meta_poll --port "$port" --expect 0 --timeout 60 > /dev/null
        say "scale, 1 broker (run $run/$RUNS): $SCALE_TOPICS topics x 1,000 partitions, RF 1 (load $(uptime_load))"
        t0=$(now_s)
        for t in $(seq 1 "$SCALE_TOPICS"); do create_topic "scale$t" 1000 1; done
        out=$(meta_poll --port "$port" --expect "$n" --since "$t0" --timeout 600 --interval 0.2)
        create=$(poll_value "$out" led)
        [ -n "$create" ] || kafka_die "scale: the $n partitions were not led within 600 s ($out)"
        say "  topic creation -> all $n led: $create s; SIGTERM, start again"
        stop_pid "$BROKER_PID"
        t0=$(now_s)
        scale_broker 20 "$port"
        out=$(meta_poll --port "$port" --expect "$n" --since "$t0" --timeout 120)
        restart=$(poll_value "$out" led)
        [ -n "$restart" ] || restart="> 120 (${out})"
        t=$(echo "$t0 + 10 - $(now_s)" | bc -l); [ "$(echo "$t > 0" | bc -l)" = 1 ] && sleep "$t"
        rss=$(rss_mb "$BROKER_PID")
        say "  start -> all $n led: $restart s; VmRSS 10 s after start: $rss MB (load $(uptime_load))"
        SCALE_A_ROWS+=("$run|$(uptime_load)|$create|$restart|$rss|$(partition_dirs "$WORK/broker-20/data")")
        stop_pid "$BROKER_PID"
    done
}

# 3 brokers, 10,000 partitions RF 3; once every broker has all its logs and every ISR is full, kill -9
# a broker that is not the controller: kill -> the controller's "Live brokers changed" line (session
# expiry), and that line -> every partition led by a live broker (Metadata from the controller).
run_scale_failover() {
    local run n=$((SCALE_TOPICS * 1000)) id t0 tk out create logs ctrl victim cport rss exp expiry failover leads i ok
    local -a ports bpids
    for run in $(seq 1 "$RUNS"); do
        fresh_zookeeper
        for id in 0 1 2; do
            rm -rf "$WORK/broker-2$id"
            ports[id]=$(free_port)
            scale_broker "2$id" "${ports[id]}"
            bpids[id]=$BROKER_PID
            for i in $(seq 1 120); do kafka_broker_registered "${ports[id]}" "2$id" && break; sleep 0.25; done
        done
        say "scale, 3 brokers (run $run/$RUNS): $SCALE_TOPICS topics x 1,000 partitions, RF 3 (load $(uptime_load))"
        t0=$(now_s)
        for i in $(seq 1 "$SCALE_TOPICS"); do create_topic "scale$i" 1000 3; done
        out=$(meta_poll --port "${ports[0]}" --expect "$n" --isr 3 --since "$t0" --timeout 900 --interval 0.5)
        create=$(poll_value "$out" led)
        [ -n "$create" ] || kafka_die "scale: the $n partitions were not led with 3 in-sync replicas within 900 s ($out)"
        for i in $(seq 1 600); do
            ok=1
            for id in 0 1 2; do [ "$(partition_dirs "$WORK/broker-2$id/data")" -ge "$n" ] || ok=0; done
            [ "$ok" -eq 1 ] && break
            sleep 1
        done
        logs=$(secs_since "$(now_s)" "$t0")
        say "  topic creation -> all led with ISR 3: $create s; every broker has its $n logs: $logs s"
        sleep 10
        rss=""
        for id in 0 1 2; do rss="$rss${rss:+ / }$(rss_mb "${bpids[id]}")"; done
        ctrl=""
        for id in 0 1 2; do grep -q "is now the controller" "$WORK/broker-2$id/server.out" && ctrl=$id; done
        victim=2; [ "$ctrl" = 2 ] && victim=1
        cport=${ports[${ctrl:-0}]}
        out=$(meta_poll --port "$cport" --expect "$n" --leads "2$victim" --timeout 10)
        leads=$(printf '%s\n' "$out" | awk '$1 == "leads" { print $3 }')
        say "  kill -9 broker 2$victim (leads $leads partitions; controller 2$ctrl; RSS $rss MB; load $(uptime_load))"
        tk=$(now_s)
        kill9 "${bpids[victim]}"
        out=$(meta_poll --port "$cport" --expect "$n" --dead "2$victim" --since "$tk" --timeout 300)
        failover=$(poll_value "$out" led)
        exp=$(log_line_after "$WORK/broker-2$ctrl/server.out" "Live brokers changed" "$tk")
        if [ -n "$exp" ] && [ -n "$failover" ]; then
            expiry=$(secs_since "${exp%% *}" "$tk")
            failover=$(secs_since "$failover" "$expiry")
        else
            expiry="?"; failover="${failover:-> 300} (from the kill)"
        fi
        say "  kill -> session expiry: $expiry s; expiry -> all $n led by live brokers: $failover s"
        awk -v t="$(date -d "@${tk%.*}" '+%Y-%m-%d %H:%M:%S')" 'substr($0, 2, 19) >= t && /partition states in|Live brokers changed/' \
            "$WORK/broker-2$ctrl/server.out" | sed 's/^/    /' >&2
        SCALE_B_ROWS+=("$run|$(uptime_load)|$create|$logs|$rss|2$victim|$leads|$expiry|$failover")
        for id in 0 1 2; do [ "$id" = "$victim" ] || stop_pid "${bpids[id]}"; done
    done
}

print_scale() {
    local row run load create restart rss dirs logs victim leads expiry failover
    echo
    echo "scale: $SCALE_TOPICS x 1,000 partitions (this broker, $SERVER), $(date '+%Y-%m-%d %H:%M'), $(nproc) cores, load at start $LOAD_START"
    echo
    echo "| 1 broker, RF 1: run | topic creation -> all led s | restart (SIGTERM, start) -> all led s | RSS 10 s after start MB | target | result |"
    echo "|---|---|---|---|---|---|"
    for row in "${SCALE_A_ROWS[@]}"; do
        IFS='|' read -r run load create restart rss dirs <<< "$row"
        echo "| $run (load $load) | $create | $restart | $rss | all led <= 15 s after start, RSS <= 250 MB | $(pass "${restart%% *} <= 15 && $rss <= 250") |"
    done
    echo
    echo "| 3 brokers, RF 3, kill -9 of a non-controller: run | creation -> all led, ISR 3 s | -> all logs created s | RSS idle MB (3 brokers) | killed (leads) | kill -> session expiry s | expiry -> all led by live brokers s | target | result |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for row in "${SCALE_B_ROWS[@]}"; do
        IFS='|' read -r run load create logs rss victim leads expiry failover <<< "$row"
        echo "| $run (load $load) | $create | $logs | $rss | $victim ($leads) | $expiry | $failover | <= 5 s after expiry | $(pass "${failover%% *} <= 5") |"
    done
}

RECOVERY_ROWS=()

# 1,000 partitions on one broker filled with RECOVERY_GB GB of 1,000-byte messages (2 MB segments: the
# rolls flush the older segments; recovery points checkpointed every 10 s), then per run: wait for a
# checkpoint, write 100 MB more (unflushed), kill -9, start again: start -> all 1,000 led and a
# produce + fetch round trip, and what recovery rescanned (the "Recovering unflushed segment" lines).
run_recovery() {
    local port pid dir="$WORK/broker-30" msgs line run tk out led rt from segs bytes stored need avail ckpt loaded
    need=$(echo "$RECOVERY_GB * 1.1 * 1048576" | bc | cut -d. -f1)
    avail=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
    [ "$avail" -ge "$need" ] || kafka_die "--recovery needs about $((need / 1048576)) GB free under $WORK ($((avail / 1048576)) GB free)"
    fresh_zookeeper
    port=$(free_port)
    scale_broker 30 "$port" log.segment.bytes=2097152 log.flush.offset.checkpoint.interval.ms=10000
    pid=$BROKER_PID
    meta_poll --port "$port" --expect 0 --timeout 60 > /dev/null
    create_topic recovery 1000 1
    meta_poll --port "$port" --expect 1000 --timeout 120 > /dev/null
    msgs=$(echo "$RECOVERY_GB * 1000000" | bc | cut -d. -f1)
    say "recovery: filling 1,000 partitions with $(fmt_int "$msgs") x 1,000 B ($RECOVERY_GB GB; 2 MB segments) (load $(uptime_load))"
    line=$(bench_client --mode produce --bootstrap "127.0.0.1:$port" --topic recovery --messages "$msgs" --size 1000 \
        --acks 1 --batch 10000 --linger-ms 5 --broker-pids "$pid")
    say "  $line"
    for run in $(seq 1 "$RUNS"); do
        ckpt=$(stat -c %Y "$dir/data/recovery-point-offset-checkpoint" 2>/dev/null || echo 0)
        for i in $(seq 1 60); do
            [ "$(stat -c %Y "$dir/data/recovery-point-offset-checkpoint" 2>/dev/null || echo 0)" -gt "$ckpt" ] && break
            sleep 0.5
        done
        say "recovery (run $run/$RUNS): recovery points checkpointed; 100,000 x 1,000 B more (not flushed), then kill -9"
        bench_client --mode produce --bootstrap "127.0.0.1:$port" --topic recovery --messages 100000 --size 1000 \
            --acks 1 --batch 10000 --linger-ms 5 > /dev/null
        stored=$(find "$dir/data" -name '*.log' -printf '%s\n' | awk '{ s += $1 } END { printf "%.1f", s / 1e9 }')
        kill9 "$pid"
        from=$(($(wc -l < "$dir/server.out") + 1))
        tk=$(now_s)
        scale_broker 30 "$port"
        pid=$BROKER_PID
        out=$(meta_poll --port "$port" --expect 1000 --since "$tk" --timeout 300 --roundtrip recovery)
        led=$(poll_value "$out" led); rt=$(poll_value "$out" roundtrip)
        [ -n "$rt" ] || rt="> 300 ($out)"
        # What was rescanned: each "Recovering unflushed segment BASE in log [topic,partition]." line's file.
        tail -n +"$from" "$dir/server.out" | sed -n 's/.*Recovering unflushed segment \([0-9]*\) in log \[\(.*\),\([0-9]*\)\]\..*/\2-\3 \1/p' \
            > "$WORK/recovered-$run.txt"
        segs=$(wc -l < "$WORK/recovered-$run.txt")
        bytes=$(awk -v d="$dir/data" '{ printf "%s/%s/%020d.log\n", d, $1, $2 }' "$WORK/recovered-$run.txt" | xargs -r stat -c %s |
            awk '{ s += $1 } END { printf "%.0f", s / 1048576 }')
        loaded=$(tail -n +"$from" "$dir/server.out" | grep -c "Loading log" || true)
        say "  start -> all led: $led s, -> produce + fetch: $rt s; rescanned $segs segments, $bytes MB; $stored GB stored (load $(uptime_load))"
        RECOVERY_ROWS+=("$run|$(uptime_load)|$stored|$led|$rt|$segs|$bytes|$loaded")
    done
    stop_pid "$pid"
}

print_recovery() {
    local row run load stored led rt segs bytes loaded
    echo
    echo "recovery after kill -9: 1,000 partitions (this broker, $SERVER), $(date '+%Y-%m-%d %H:%M'), $(nproc) cores, load at start $LOAD_START"
    echo
    echo "| run | stored GB | start -> all 1,000 led s | start -> produce + fetch round trip s | segments rescanned | MB rescanned | target | result |"
    echo "|---|---|---|---|---|---|---|---|"
    for row in "${RECOVERY_ROWS[@]}"; do
        IFS='|' read -r run load stored led rt segs bytes loaded <<< "$row"
        echo "| $run (load $load) | $stored | $led | $rt | $segs | $bytes | serving <= 10 s after start | $(pass "${rt%% *} <= 10") |"
    done
}

# --- main --------------------------------------------------------------------------------------
if [ "$QUICK" -eq 1 ]; then TP_MSGS=1000000; TP_RF3_MSGS=500000; LOG_ALONE_MSGS=1000000
else TP_MSGS=4000000; TP_RF3_MSGS=2000000; LOG_ALONE_MSGS=2000000; fi
if [ -n "$TP_MSGS_ARG" ]; then
    [[ "$TP_MSGS_ARG" =~ ^[1-9][0-9]*$ ]] || { echo "$PROG: --messages needs a positive whole number, not '$TP_MSGS_ARG'" >&2; exit 1; }
    TP_MSGS=$TP_MSGS_ARG; TP_RF3_MSGS=$(( (TP_MSGS_ARG + 1) / 2 ))
fi

if [ "$LATENCY" -eq 1 ] || [ "$THROUGHPUT" -eq 1 ] || [ "$CONNS" -eq 1 ] || [ "$RECOVERY" -eq 1 ]; then
    BENCH=$(kafka_build_bench_client) || exit 1
fi

if [ "$EXTERNAL" -eq 1 ]; then
    ZK=$EXT_ZK
    say "external broker(s): $EXT_BOOTSTRAP, pid(s) $EXT_PIDS ($(tr '\0' ' ' < "/proc/${EXT_PIDS%%,*}/cmdline" | cut -c1-80)...), ZooKeeper $ZK; work dir $WORK"
    NPIDS=$(echo "$EXT_PIDS" | tr ',' '\n' | grep -c .)
    if [ "$LATENCY" -eq 1 ]; then
        run_latency "$EXT_BOOTSTRAP" "$EXT_PIDS"
        [ "$SCENARIOS" -eq 1 ] && run_latency_scenarios "$EXT_BOOTSTRAP" "$EXT_PIDS" "$EXT_DATA_DIR"
    fi
    if [ "$CONNS" -eq 1 ]; then run_connections "$EXT_BOOTSTRAP" "${EXT_PIDS%%,*}"; fi
    if [ "$THROUGHPUT" -eq 1 ]; then
        log_alone "$LOG_ALONE_MSGS"
        if [ "$NPIDS" -ge 3 ]; then run_throughput_rf3 "$EXT_BOOTSTRAP" "$EXT_PIDS"
        else run_throughput_single "$EXT_BOOTSTRAP" "$EXT_PIDS"; fi
    fi
else
    [ $((LEGACY + LATENCY + THROUGHPUT + CONNS)) -eq 0 ] || start_zookeeper   # --scale/--recovery: one per run
    if [ "$LEGACY" -eq 1 ]; then run_legacy; fi
    if [ "$LATENCY" -eq 1 ]; then
        start_broker 11
        run_latency "127.0.0.1:$BROKER_PORT" "$BROKER_PID"
        [ "$SCENARIOS" -eq 1 ] && run_latency_scenarios "127.0.0.1:$BROKER_PORT" "$BROKER_PID" "$WORK/broker-11/data"
        stop_pid "$BROKER_PID"
    fi
    if [ "$CONNS" -eq 1 ]; then
        start_broker 16
        run_connections "127.0.0.1:$BROKER_PORT" "$BROKER_PID"
        stop_pid "$BROKER_PID"
    fi
    if [ "$THROUGHPUT" -eq 1 ]; then
        log_alone "$LOG_ALONE_MSGS"
        start_broker 12
        run_throughput_single "127.0.0.1:$BROKER_PORT" "$BROKER_PID"
        stop_pid "$BROKER_PID"
        start_broker 13; R1="127.0.0.1:$BROKER_PORT"; RP="$BROKER_PID"
        start_broker 14; RP="$RP,$BROKER_PID"
        start_broker 15; RP="$RP,$BROKER_PID"
        run_throughput_rf3 "$R1" "$RP"
    fi
    if [ $((SCALE + RECOVERY)) -gt 0 ]; then
        write_meta_poll
        for pid in "${PIDS[@]}"; do stop_pid "$pid"; done   # each run starts a fresh ZooKeeper
        ZK_PID=""
    fi
    if [ "$SCALE" -eq 1 ]; then run_scale_single; run_scale_failover; fi
    if [ "$RECOVERY" -eq 1 ]; then run_recovery; fi
fi
if [ "$LATENCY" -eq 1 ]; then print_latency; [ "$SCENARIOS" -eq 1 ] && print_scenarios; fi
if [ "$CONNS" -eq 1 ]; then print_connections; fi
if [ "$THROUGHPUT" -eq 1 ]; then print_throughput; fi
if [ "$SCALE" -eq 1 ]; then print_scale; fi
if [ "$RECOVERY" -eq 1 ]; then print_recovery; fi
