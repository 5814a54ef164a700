#!/usr/bin/env bash
# Kafka's kafka-run-class.sh for the classes this implementation provides:
#
#   bin/kafka-run-class.sh [-daemon] [-name NAME] CLASS [ARGS...]
#
#   kafka.Kafka                        -> kafka-server
#   kafka.admin.TopicCommand           -> kafka-tools topics
#   kafka.tools.ConsoleProducer        -> kafka-tools console-producer
#   kafka.tools.ConsoleConsumer        -> kafka-tools console-consumer
#   kafka.tools.DumpLogSegments        -> kafka-tools dump-log
#   kafka.tools.ProducerPerformance    -> kafka-tools producer-perf-test
#   kafka.tools.ConsumerPerformance    -> kafka-tools consumer-perf-test
#   kafka.tools.ConsumerOffsetChecker  -> kafka-tools consumer-offset-checker
#   kafka.admin.PreferredReplicaLeaderElectionCommand -> kafka-tools preferred-replica-election
#   kafka.admin.ReassignPartitionsCommand -> kafka-tools reassign-partitions
#   kafka.tools.ReplicaVerificationTool -> kafka-tools replica-verification
#   kafka.tools.MirrorMaker            -> kafka-tools mirror-maker
#
# -daemon runs it in the background with output in $LOG_DIR/NAME.out (NAME
# defaults to the class's last component), as Kafka's script does.
# JVM options (-loggc, KAFKA_HEAP_OPTS, KAFKA_OPTS, JMX_PORT) are accepted and ignored.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

usage() {
    echo "USAGE: bin/$(basename "$0") [-daemon] [-name servicename] [-loggc] classname [opts]" >&2
    exit 1
}

daemon=false
name=
while [ $# -gt 0 ]; do
    case "$1" in
        -daemon) daemon=true; shift ;;
        -name) [ $# -ge 2 ] || usage; name=$2; shift 2 ;;
        -loggc) shift ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || usage
class=$1
shift

case "$class" in
    kafka.Kafka) exe=kafka-server; sub= ;;
    kafka.admin.TopicCommand) exe=kafka-tools; sub=topics ;;
    kafka.tools.ConsoleProducer|kafka.producer.ConsoleProducer) exe=kafka-tools; sub=console-producer ;;
    kafka.tools.ConsoleConsumer|kafka.consumer.ConsoleConsumer) exe=kafka-tools; sub=console-consumer ;;
    kafka.tools.DumpLogSegments) exe=kafka-tools; sub=dump-log ;;
    kafka.tools.ProducerPerformance|kafka.perf.ProducerPerformance) exe=kafka-tools; sub=producer-perf-test ;;
    kafka.tools.ConsumerPerformance|kafka.perf.ConsumerPerformance) exe=kafka-tools; sub=consumer-perf-test ;;
    kafka.tools.ConsumerOffsetChecker) exe=kafka-tools; sub=consumer-offset-checker ;;
    kafka.admin.PreferredReplicaLeaderElectionCommand) exe=kafka-tools; sub=preferred-replica-election ;;
    kafka.admin.ReassignPartitionsCommand) exe=kafka-tools; sub=reassign-partitions ;;
    kafka.tools.ReplicaVerificationTool) exe=kafka-tools; sub=replica-verification ;;
    kafka.tools.MirrorMaker) exe=kafka-tools; sub=mirror-maker ;;
    *)
        {
            echo "kafka-run-class.sh: class $class is not available in this Swift implementation."
            echo "Available: kafka.Kafka, kafka.admin.TopicCommand, kafka.tools.ConsoleProducer,"
            echo "           kafka.tools.ConsoleConsumer, kafka.tools.DumpLogSegments,"
            echo "           kafka.tools.ProducerPerformance, kafka.tools.ConsumerPerformance,"
            echo "           kafka.tools.ConsumerOffsetChecker, kafka.admin.PreferredReplicaLeaderElectionCommand,"
            echo "           kafka.admin.ReassignPartitionsCommand, kafka.tools.ReplicaVerificationTool,"
            echo "           kafka.tools.MirrorMaker"
        } >&2
        exit 1
        ;;
esac

path=$(kafka_require_binary "$exe") || exit 1
cmd=("$path")
[ -n "$sub" ] && cmd+=("$sub")
if [ "$exe" = kafka-server ]; then
    # The broker resolves relative paths (log.dirs) against the project root.
    [ $# -ge 1 ] && [ -f "$1" ] && { p=$(kafka_abspath "$1"); shift; set -- "$p" "$@"; }
    cd "$KAFKA_HOME"
fi

if $daemon; then
    [ -n "$name" ] || name=${class##*.}
    mkdir -p "$LOG_DIR"
    nohup "${cmd[@]}" "$@" >"$LOG_DIR/$name.out" 2>&1 </dev/null &
    echo "$name started in the background: pid $!, output in $LOG_DIR/$name.out"
    exit 0
fi
exec "${cmd[@]}" "$@"
