#!/usr/bin/env python3
"""Drives pykafka (broker_version="0.8.2") against a broker, for the interop tests.

pykafka sends correlation id 0 on every request and matches responses by their order, so it
checks that the broker answers strictly in request order on each connection.

    pykafka_check.py produce --hosts H:P --topic T [--separator :]   < "key:value" lines
        Sync producer (required_acks=1); a line without the separator has no key.
        Prints {"produced": N}.

    pykafka_check.py consume --hosts H:P --topic T --count N [--timeout 30]
        SimpleConsumer without a group, from the earliest offset. Prints one JSON object per
        message: {"key": ..., "value": ..., "partition": p, "offset": o}; exit 1 if fewer arrive.
"""

import argparse
import json
import logging
import sys

from pykafka.common import OffsetType

from interop_common import emit, pykafka_client, pykafka_messages, shortfall, split_key, take, text


def produce(args):
    kafka = pykafka_client(args.hosts)   # keep a reference: topics only hold a weak reference to the cluster
    topic = kafka.topics[args.topic]
    n = 0
    with topic.get_sync_producer(required_acks=1, ack_timeout_ms=10000) as producer:
        for line in sys.stdin.read().splitlines():
            key, value = split_key(line, args.separator)
            if key is not None:
                producer.produce(value.encode("utf-8"), partition_key=key.encode("utf-8"))
            else:
                producer.produce(line.encode("utf-8"))
            n += 1
    print(json.dumps({"produced": n}))
    return 0


def consume(args):
    kafka = pykafka_client(args.hosts)
    topic = kafka.topics[args.topic]
    consumer = topic.get_simple_consumer(
        auto_offset_reset=OffsetType.EARLIEST,
        reset_offset_on_start=True,
        consumer_timeout_ms=1000,
    )
    got = 0
    try:
        for msg in take(args.count, args.timeout, pykafka_messages(consumer)):
            emit({"key": text(msg.partition_key), "value": text(msg.value),
                  "partition": msg.partition_id, "offset": msg.offset})
            got += 1
    finally:
        consumer.stop()
    return shortfall(got, args.count, args.timeout)


def main():
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("produce")
    p.add_argument("--hosts", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--separator", default=":")
    c = sub.add_parser("consume")
    c.add_argument("--hosts", required=True)
    c.add_argument("--topic", required=True)
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--timeout", type=float, default=30)
    args = ap.parse_args()
    return {"produce": produce, "consume": consume}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
