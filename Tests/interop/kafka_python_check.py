#!/usr/bin/env python3
"""Drives kafka-python (api_version=(0,8,2)) against a broker, for the interop tests.

    kafka_python_check.py produce  --bootstrap H:P --topic T [--partition 0] [--acks 1]
                                   [--compression none|gzip|snappy] [--separator :]   < "key:value" lines
        Sends each stdin line (split at the first separator into key and value; a line without it
        has no key) and waits for each acknowledgement. Prints one JSON object per message:
        {"key": ..., "value": ..., "partition": p, "offset": o}

    kafka_python_check.py consume  --bootstrap H:P --topic T [--partition 0] [--offset 0] --count N
                                   [--timeout 30]
        Reads N messages from the offset (no consumer group). Prints one JSON object per message:
        {"key": ..., "value": ..., "offset": o}; exit 1 if fewer than N arrive in time.

    kafka_python_check.py metadata --bootstrap H:P [--topic T]
        Prints {"brokers": [{"id":..,"host":..,"port":..}], "topics": {"T": {"0": leader, ...}}}
"""

import argparse
import json
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.client_async import KafkaClient

API_VERSION = (0, 8, 2)


def text(b):
    return None if b is None else b.decode("utf-8", errors="replace")


def produce(args):
    producer = KafkaProducer(
        bootstrap_servers=args.bootstrap,
        api_version=API_VERSION,
        acks=args.acks,
        compression_type=None if args.compression == "none" else args.compression,
        retries=0,
        request_timeout_ms=30000,
        max_block_ms=30000,
    )
    count = 0
    for line in sys.stdin.read().splitlines():
        if args.separator in line:
            key, value = line.split(args.separator, 1)
            key = key.encode("utf-8")
        else:
            key, value = None, line
        fut = producer.send(args.topic, key=key, value=value.encode("utf-8"), partition=args.partition)
        md = fut.get(timeout=30)
        print(json.dumps({"key": text(key), "value": value, "partition": md.partition, "offset": md.offset}))
        sys.stdout.flush()
        count += 1
    producer.flush(timeout=30)
    producer.close(timeout=10)
    print("produced %d messages" % count, file=sys.stderr)
    return 0


def consume(args):
    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        api_version=API_VERSION,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=1000,
        request_timeout_ms=30000,
    )
    tp = TopicPartition(args.topic, args.partition)
    consumer.assign([tp])
    consumer.seek(tp, args.offset)
    got = 0
    deadline = time.time() + args.timeout
    while got < args.count and time.time() < deadline:
        for msg in consumer:
            print(json.dumps({"key": text(msg.key), "value": text(msg.value), "offset": msg.offset}))
            sys.stdout.flush()
            got += 1
            if got >= args.count:
                break
    consumer.close()
    if got < args.count:
        print("only %d of %d messages arrived within %ss" % (got, args.count, args.timeout), file=sys.stderr)
        return 1
    return 0


def metadata(args):
    client = KafkaClient(bootstrap_servers=args.bootstrap, api_version=API_VERSION)
    try:
        topics = [args.topic] if args.topic else None
        future = client.cluster.request_update()
        if topics:
            client.set_topics(topics)
            future = client.cluster.request_update()
        client.poll(future=future, timeout_ms=30000)
        if not future.is_done or future.failed():
            print("metadata request failed: %r" % (future.exception,), file=sys.stderr)
            return 1
        cluster = client.cluster
        brokers = [{"id": b.nodeId, "host": b.host, "port": b.port} for b in cluster.brokers()]
        out = {"brokers": sorted(brokers, key=lambda b: b["id"]), "topics": {}}
        for t in sorted(cluster.topics()):
            parts = cluster.partitions_for_topic(t) or set()
            out["topics"][t] = {str(p): cluster.leader_for_partition(TopicPartition(t, p)) for p in sorted(parts)}
        print(json.dumps(out, sort_keys=True))
        return 0
    finally:
        client.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("produce")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--partition", type=int, default=0)
    p.add_argument("--acks", type=int, default=1)
    p.add_argument("--compression", default="none", choices=["none", "gzip", "snappy"])
    p.add_argument("--separator", default=":")
    c = sub.add_parser("consume")
    c.add_argument("--bootstrap", required=True)
    c.add_argument("--topic", required=True)
    c.add_argument("--partition", type=int, default=0)
    c.add_argument("--offset", type=int, default=0)
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--timeout", type=float, default=30)
    m = sub.add_parser("metadata")
    m.add_argument("--bootstrap", required=True)
    m.add_argument("--topic")
    args = ap.parse_args()
    return {"produce": produce, "consume": consume, "metadata": metadata}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
