#!/usr/bin/env python3
"""Drives kafka-python 3.x WITHOUT api_version (it probes the broker with ApiVersions) against a
broker, for Tests/IntegrationTests/ModernClientTests.swift. Run with .venv-modern/bin/python.

    modern_client_check.py produce --bootstrap H:P --topic T [--compression none|gzip]  < "key:value" lines
        Sends each line (split at the first ':' into key and value) and waits for each
        acknowledgement. Prints one JSON object per message:
        {"key": ..., "value": ..., "partition": p, "offset": o}, then
        {"broker_version": "x.y.z"} (what the client concluded from ApiVersions).

    modern_client_check.py consume --bootstrap H:P --topic T --count N [--group G] [--timeout 60]
        Without --group: assigns every partition of T and reads from the beginning (no group).
        With --group: subscribes as a member of group G (JoinGroup/SyncGroup through the
        coordinator), starts from the committed offsets (earliest when none), commits what it
        read before leaving. Prints one JSON object per message:
        {"key": ..., "value": ..., "partition": p, "offset": o}; exit 1 if fewer than N arrive in time.
"""

import argparse
import sys
import time

import kafka
from kafka import TopicPartition

from interop_common import emit, kafka_python_consumer, kafka_python_producer, split_key, take, text


def produce(args):
    producer = kafka_python_producer(args, acks=1)
    count = 0
    for line in sys.stdin.read().splitlines():
        key, value = split_key(line, ":")
        fut = producer.send(args.topic, key=None if key is None else key.encode("utf-8"), value=value.encode("utf-8"))
        md = fut.get(timeout=30)
        emit({"key": key, "value": value, "partition": md.partition, "offset": md.offset})
        count += 1
    producer.flush(timeout=30)
    emit({"broker_version": ".".join(map(str, producer.config["api_version"]))})
    producer.close(timeout=10)
    print("kafka-python %s produced %d messages" % (kafka.__version__, count), file=sys.stderr)
    return 0


def consume(args):
    if args.group:
        consumer = kafka_python_consumer(args, args.topic, group_id=args.group, enable_auto_commit=False, consumer_timeout_ms=1000,
                                         session_timeout_ms=10000, heartbeat_interval_ms=1000)
    else:
        consumer = kafka_python_consumer(args, group_id=None, enable_auto_commit=False, consumer_timeout_ms=1000)
        deadline = time.time() + args.timeout
        partitions = None
        while not partitions and time.time() < deadline:
            partitions = consumer.partitions_for_topic(args.topic)
            if not partitions:
                time.sleep(0.2)
        tps = [TopicPartition(args.topic, p) for p in sorted(partitions or [])]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
    got = 0
    for msg in take(args.count, args.timeout, lambda _n: consumer):
        emit({"key": text(msg.key), "value": text(msg.value), "partition": msg.partition, "offset": msg.offset})
        got += 1
    if args.group:
        consumer.commit()
    consumer.close()
    print("kafka-python %s consumed %d messages" % (kafka.__version__, got), file=sys.stderr)
    return 0 if got >= args.count else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("produce")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--compression", default="none")
    c = sub.add_parser("consume")
    c.add_argument("--bootstrap", required=True)
    c.add_argument("--topic", required=True)
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--group")
    c.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    return produce(args) if args.cmd == "produce" else consume(args)


if __name__ == "__main__":
    sys.exit(main())
