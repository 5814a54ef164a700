#!/usr/bin/env python3
"""pykafka's BalancedConsumer (ZooKeeper-balanced, use_rdkafka=False) against a broker.

    pykafka_balanced_check.py consume --hosts H:P --zookeeper Z --topic T --group G --count N [--timeout 60]
        One balanced consumer. Prints one JSON object per message
        {"value": ..., "partition": p, "offset": o}, then {"held": [partitions]}; commits its
        offsets (OffsetCommit to the group's coordinator) and stops. Exit 1 if fewer than N arrive.

    pykafka_balanced_check.py split --hosts H:P --zookeeper Z --topic T --group G --count N [--timeout 60]
        Two balanced consumers in one group (two clients in one process). Waits until their
        partition sets are disjoint and together cover the topic, then consumes from both until N
        messages arrived. Prints {"consumer": i, "value": ..., "partition": p, "offset": o} per
        message and finally {"held": [[...], [...]], "ids": {id: data}, "owners": {name: data}}:
        the partitions each held and the ZooKeeper nodes pykafka wrote under /consumers/G.
        Commits, stops; exit 1 if the split never settled or fewer than N arrived.
"""

import argparse
import json
import logging
import sys
import time

from pykafka.common import OffsetType

from interop_common import emit, pykafka_client, pykafka_messages, shortfall, take, text


def balanced(args):
    kafka = pykafka_client(args.hosts)
    topic = kafka.topics[args.topic]
    consumer = topic.get_balanced_consumer(
        args.group.encode("utf-8"),
        managed=False,
        use_rdkafka=False,
        zookeeper_connect=args.zookeeper,
        auto_offset_reset=OffsetType.EARLIEST,
        auto_commit_enable=False,
        rebalance_backoff_ms=500,
        rebalance_max_retries=10,
        consumer_timeout_ms=200,
    )
    return kafka, consumer


def held(consumer):
    return sorted(consumer.partitions.keys())


def consume(args):
    kafka, consumer = balanced(args)
    got = 0
    try:
        for msg in take(args.count, args.timeout, pykafka_messages(consumer)):
            emit({"value": text(msg.value), "partition": msg.partition_id, "offset": msg.offset})
            got += 1
        print(json.dumps({"held": held(consumer)}))
        consumer.commit_offsets()
    finally:
        consumer.stop()
    del kafka
    return shortfall(got, args.count, args.timeout)


def zk_layout(zk, group):
    ids = {}
    base = "/consumers/%s" % group
    for c in zk.get_children(base + "/ids"):
        data, _ = zk.get("%s/ids/%s" % (base, c))
        ids[c] = text(data)
    owners = {}
    for t in zk.get_children(base + "/owners"):
        for p in zk.get_children("%s/owners/%s" % (base, t)):
            data, _ = zk.get("%s/owners/%s/%s" % (base, t, p))
            owners["%s/%s" % (t, p)] = text(data)
    return ids, owners


def split(args):
    from kazoo.client import KazooClient

    c1 = balanced(args)
    c2 = balanced(args)
    consumers = [c1[1], c2[1]]
    kafka = pykafka_client(args.hosts)
    all_parts = sorted(kafka.topics[args.topic].partitions.keys())
    zk = KazooClient(hosts=args.zookeeper)
    zk.start()
    deadline = time.time() + args.timeout
    try:
        # Wait for a settled split: disjoint, covering, both non-empty.
        while True:
            a, b = held(consumers[0]), held(consumers[1])
            if a and b and not set(a) & set(b) and sorted(a + b) == all_parts:
                break
            if time.time() > deadline:
                print("the two consumers never split the partitions: %s / %s" % (a, b), file=sys.stderr)
                return 1
            time.sleep(0.2)
        ids, owners = zk_layout(zk, args.group)
        got = 0
        while got < args.count and time.time() < deadline:
            progressed = False
            for i, c in enumerate(consumers):
                msg = c.consume(block=False)
                if msg is None:
                    continue
                progressed = True
                print(json.dumps({"consumer": i, "value": text(msg.value), "partition": msg.partition_id,
                                  "offset": msg.offset}))
                got += 1
            if not progressed:
                time.sleep(0.05)
        sys.stdout.flush()
        print(json.dumps({"held": [held(consumers[0]), held(consumers[1])], "ids": ids, "owners": owners}))
        for c in consumers:
            c.commit_offsets()
    finally:
        for c in consumers:
            c.stop()
        zk.stop()
    return shortfall(got, args.count, args.timeout)


def main():
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["consume", "split"])
    p.add_argument("--hosts", required=True)
    p.add_argument("--zookeeper", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--timeout", type=float, default=60)
    args = p.parse_args()
    return consume(args) if args.mode == "consume" else split(args)


if __name__ == "__main__":
    sys.exit(main())
