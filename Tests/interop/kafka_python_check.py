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

from kafka import TopicPartition
from kafka.client_async import KafkaClient

from interop_common import (KAFKA_PYTHON_API_VERSION, emit, kafka_python_arguments, kafka_python_assigned,
                            kafka_python_producer, shortfall, split_key, take, text)


def produce(args):
    producer = kafka_python_producer(args, api_version=KAFKA_PYTHON_API_VERSION, acks=args.acks)
    count = 0
    for line in sys.stdin.read().splitlines():
        key, value = split_key(line, args.separator)
        fut = producer.send(args.topic, key=None if key is None else key.encode("utf-8"), value=value.encode("utf-8"),
                            partition=args.partition)
        md = fut.get(timeout=30)
        emit({"key": key, "value": value, "partition": md.partition, "offset": md.offset})
        count += 1
    producer.flush(timeout=30)
    producer.close(timeout=10)
    print("produced %d messages" % count, file=sys.stderr)
    return 0


def consume(args):
    consumer, _ = kafka_python_assigned(args, consumer_timeout_ms=1000)
    got = 0
    for msg in take(args.count, args.timeout, lambda _n: consumer):
        emit({"key": text(msg.key), "value": text(msg.value), "offset": msg.offset})
        got += 1
    consumer.close()
    return shortfall(got, args.count, args.timeout)


def metadata(args):
    client = KafkaClient(bootstrap_servers=args.bootstrap, api_version=KAFKA_PYTHON_API_VERSION)
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
    kafka_python_arguments(sub, ["none", "gzip", "snappy"], consume_timeout=30)
    m = sub.add_parser("metadata")
    m.add_argument("--bootstrap", required=True)
    m.add_argument("--topic")
    args = ap.parse_args()
    return {"produce": produce, "consume": consume, "metadata": metadata}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
