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
import json
import sys
import time

import kafka
from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def text(b):
    return None if b is None else b.decode("utf-8", errors="replace")


def emit(obj):
    print(json.dumps(obj))
    sys.stdout.flush()


def produce(args):
    producer = KafkaProducer(
        bootstrap_servers=args.bootstrap,
        compression_type=None if args.compression == "none" else args.compression,
        acks=1,
        retries=0,
        request_timeout_ms=30000,
        max_block_ms=30000,
    )
    count = 0
    for line in sys.stdin.read().splitlines():
        key, value = line.split(":", 1) if ":" in line else (None, line)
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
    common = dict(
        bootstrap_servers=args.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=1000,
        request_timeout_ms=30000,
    )
    if args.group:
        consumer = KafkaConsumer(args.topic, group_id=args.group, enable_auto_commit=False,
                                 session_timeout_ms=10000, heartbeat_interval_ms=1000, **common)
    else:
        consumer = KafkaConsumer(group_id=None, enable_auto_commit=False, **common)
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
    deadline = time.time() + args.timeout
    while got < args.count and time.time() < deadline:
        for msg in consumer:
            emit({"key": text(msg.key), "value": text(msg.value), "partition": msg.partition, "offset": msg.offset})
            got += 1
            if got >= args.count:
                break
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
