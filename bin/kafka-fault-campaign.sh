#!/usr/bin/env bash
# A long fault campaign by one command: ZooKeeper and three brokers, each on its own
# network-namespace host (veth + bridge, 10.77.<n>.x), under steady acks=-1 and acks=1 load
# (RF 3, min.insync.replicas=2, unclean.leader.election.enable=false), with faults drawn from a
# seed: kill -9 + restart, SIGSTOP/SIGCONT past the session timeout, partitions, a broker's Kafka
# port blocked from the other brokers, ZooKeeper stopped, a full log disk (tmpfs), failing fsync
# and writes (LD_PRELOAD shim), Jepsen's leader isolation. Then it heals, drains every partition
# and prints the checker's table: acknowledged, lost, duplicated, reordered, offset conflicts,
# replicas byte-identical up to the high watermark, and availability after each heal.
#
#   bin/kafka-fault-campaign.sh                  >= 100 faults over >= 15 minutes, safe settings
#   bin/kafka-fault-campaign.sh --unsafe         unclean election on, min.insync.replicas=1 (shows loss)
#   bin/kafka-fault-campaign.sh --seed 42        replay a run (the seed is printed at the start)
#   bin/kafka-fault-campaign.sh --quick          ~2 minutes, one fault of each kind
#
# Other options go to `kafka-tools fault-campaign` (e.g. --faults kill,pause --duration-seconds 300
# --min-faults 20 --zk-stop-seconds 10 --keep); run `kafka-tools fault-campaign --help` for all.
# --broker-command 'CMD {}' runs another broker on each host ({} = its server.properties), e.g. a
# hand-built Kafka 0.8.2.2 (`exec java ... kafka.Kafka "$1"`), to compare it on the same faults.
# Needs root (ip netns, nftables, tmpfs mounts) and the release build. Exit status 0 when nothing
# acknowledged with acks=-1 was lost and the replicas are identical (with --unsafe: when it ran).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ "${1-}" = "-h" ] || [ "${1-}" = "--help" ]; then sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
[ "$(id -u)" -eq 0 ] || kafka_die "needs root (network namespaces, nftables, tmpfs): run it as root"
command -v ip >/dev/null 2>&1 || kafka_die "ip (iproute2) is missing: run bin/setup.sh"
command -v nft >/dev/null 2>&1 || kafka_die "nft (nftables) is missing: run bin/setup.sh"
kafka_require_binary kafka-server >/dev/null
tools=$(kafka_require_binary kafka-tools)

defaults=(--duration-seconds 900 --min-faults 100 --zk-stop-seconds 30)
args=()
for a in "$@"; do
    case "$a" in
        --quick) defaults=(--duration-seconds 0 --min-faults 9 --max-faults 9 --zk-stop-seconds 6) ;;
        *) args+=("$a") ;;
    esac
done
# Options given later win (ArgumentParser keeps the last value of a repeated option).
exec "$tools" fault-campaign "${defaults[@]}" "${args[@]}"
