"""What the interop check scripts share (imported from the scripts' own directory, which Python
puts first on sys.path when a script is run by path, under .venv or .venv-modern alike).

Only the standard library is imported here at the top: kafka-python and pykafka are imported
inside the helpers that use them, so each script still needs only its own client.
"""

import json
import sys
import time

# What the 0.8.2 clients are told the broker is.
KAFKA_PYTHON_API_VERSION = (0, 8, 2)
PYKAFKA_BROKER_VERSION = "0.8.2"


def text(b):
    return None if b is None else b.decode("utf-8", errors="replace")


def emit(obj, ensure_ascii=True, flush=True):
    """One JSON object on its own stdout line."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=ensure_ascii) + "\n")
    if flush:
        sys.stdout.flush()


def split_key(line, separator):
    """(key, value) of a "key<separator>value" line (str or bytes); a line without the separator has no key."""
    if separator in line:
        key, value = line.split(separator, 1)
        return key, value
    return None, line


def take(count, timeout, batches):
    """Yields up to `count` messages, stopping when `timeout` seconds have passed. `batches(n)`
    returns the next messages that arrived (an iterable, possibly empty), asked for at most n."""
    got = 0
    deadline = time.time() + timeout
    while got < count and time.time() < deadline:
        for msg in batches(count - got):
            yield msg
            got += 1
            if got >= count:
                return


def shortfall(got, count, timeout):
    """The exit status of a consumer that read `got` of `count` messages (1, said on stderr, if fewer)."""
    if got < count:
        print("only %d of %d messages arrived within %ss" % (got, count, timeout), file=sys.stderr)
        return 1
    return 0


# kafka-python

def kafka_python_producer(args, **config):
    """A KafkaProducer for args.bootstrap with args.compression, no retries, 30 s timeouts."""
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=args.bootstrap,
        compression_type=None if args.compression == "none" else args.compression,
        retries=0,
        request_timeout_ms=30000,
        max_block_ms=30000,
        **config,
    )


def kafka_python_consumer(args, *topics, **config):
    """A KafkaConsumer for args.bootstrap (subscribed to `topics`, if any) from the earliest offset, 30 s request timeout."""
    from kafka import KafkaConsumer

    return KafkaConsumer(*topics, bootstrap_servers=args.bootstrap, auto_offset_reset="earliest", request_timeout_ms=30000,
                         **config)


def kafka_python_assigned(args, **config):
    """A 0.8.2 consumer without a group, on args.topic/args.partition from args.offset: (consumer, tp)."""
    from kafka import TopicPartition

    consumer = kafka_python_consumer(args, api_version=KAFKA_PYTHON_API_VERSION, group_id=None,
                                     enable_auto_commit=False, **config)
    tp = TopicPartition(args.topic, args.partition)
    consumer.assign([tp])
    consumer.seek(tp, args.offset)
    return consumer, tp


def kafka_python_arguments(sub, compressions, consume_timeout):
    """The "produce" and "consume" subcommands of the 0.8.2 kafka-python scripts: (produce, consume) parsers."""
    p = sub.add_parser("produce")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--partition", type=int, default=0)
    p.add_argument("--acks", type=int, default=1)
    p.add_argument("--compression", default="none", choices=compressions)
    p.add_argument("--separator", default=":")
    c = sub.add_parser("consume")
    c.add_argument("--bootstrap", required=True)
    c.add_argument("--topic", required=True)
    c.add_argument("--partition", type=int, default=0)
    c.add_argument("--offset", type=int, default=0)
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--timeout", type=float, default=consume_timeout)
    return p, c


# pykafka

def pykafka_client(hosts):
    from pykafka import KafkaClient

    return KafkaClient(hosts=hosts, broker_version=PYKAFKA_BROKER_VERSION, socket_timeout_ms=30000)


def pykafka_messages(consumer):
    """`batches` for take(): the next message of a pykafka consumer (blocking up to its consumer_timeout_ms)."""
    def batches(_n):
        msg = consumer.consume(block=True)
        return [] if msg is None else [msg]
    return batches
