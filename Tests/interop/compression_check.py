#!/usr/bin/env python3
"""kafka-python (api_version=(0,8,2)) as a compressing producer and a consumer, for
Tests/IntegrationTests/CompressionInteropTests.swift and CompressedFuzzTests.swift.

    compression_check.py produce --bootstrap H:P --topic T --compression none|gzip|snappy|lz4
                                 [--partition 0] [--separator :] [--linger-ms 20]   < "key:value" lines
        Sends every stdin line (split at the first separator into key and value; a line without
        it has no key) asynchronously, so that kafka-python packs many messages into each
        compressed wrapper, then flushes and waits for every acknowledgement. Prints one JSON
        object per message, in input order: {"key": ..., "value": ..., "offset": o}.
        Exit 1 (with the error on stderr) if any message failed. lz4 needs the venv's lz4 and
        xxhash packages: for 0.8.2 kafka-python writes Kafka 0.8's LZ4 frame (header checksum
        over the magic too), as the broker expects.

    compression_check.py consume --bootstrap H:P --topic T --count N [--partition 0]
                                 [--offset 0] [--timeout 60]
        Reads N messages from the offset (no consumer group; CRCs checked, kafka-python's
        default). Prints one JSON object per message: {"key": ..., "value": ..., "offset": o};
        exit 1 if fewer than N arrive in time or a fetch fails.

Lines are split at b"\\n" only and decoded as UTF-8, so values may hold any other character.
"""

import argparse
import sys

from interop_common import (KAFKA_PYTHON_API_VERSION, kafka_python_arguments, kafka_python_assigned,
                            kafka_python_producer, shortfall, split_key, take, text)
from interop_common import emit as emit_line


def emit(obj):
    emit_line(obj, ensure_ascii=False, flush=False)


def produce(args):
    producer = kafka_python_producer(args, api_version=KAFKA_PYTHON_API_VERSION, acks=args.acks,
                                     linger_ms=args.linger_ms, batch_size=args.batch_size)
    data = sys.stdin.buffer.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    sep = args.separator.encode("utf-8")
    futures = []
    for line in lines:
        key, value = split_key(line, sep)
        futures.append((key, value, producer.send(args.topic, key=key, value=value, partition=args.partition)))
    producer.flush(timeout=60)
    failed = 0
    for key, value, fut in futures:
        try:
            md = fut.get(timeout=60)
        except Exception as e:  # noqa: BLE001 - report every failure, keep going
            failed += 1
            if failed <= 5:
                print("send failed for key %r: %r" % (key, e), file=sys.stderr)
            continue
        emit({"key": text(key), "value": text(value), "offset": md.offset})
    sys.stdout.flush()
    producer.close(timeout=10)
    print("produced %d messages (%s), %d failed" % (len(futures) - failed, args.compression, failed),
          file=sys.stderr)
    return 1 if failed else 0


def consume(args):
    consumer, tp = kafka_python_assigned(args, check_crcs=True)
    got = 0
    try:
        for msg in take(args.count, args.timeout, lambda n: consumer.poll(timeout_ms=500, max_records=n).get(tp, [])):
            emit({"key": text(msg.key), "value": text(msg.value), "offset": msg.offset})
            got += 1
    except Exception as e:  # noqa: BLE001 - a corrupt record must fail the run, visibly
        sys.stdout.flush()
        print("consume failed after %d messages: %r" % (got, e), file=sys.stderr)
        consumer.close()
        return 1
    sys.stdout.flush()
    consumer.close()
    return shortfall(got, args.count, args.timeout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p, _ = kafka_python_arguments(sub, ["none", "gzip", "snappy", "lz4"], consume_timeout=60)
    p.add_argument("--linger-ms", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64 * 1024)
    args = ap.parse_args()
    return {"produce": produce, "consume": consume}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
