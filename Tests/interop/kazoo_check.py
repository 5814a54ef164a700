#!/usr/bin/env python3
"""Reads a Kafka 0.8.2 cluster's ZooKeeper nodes with kazoo and checks their JSON.

    kazoo_check.py --zk HOST:PORT[/chroot] --broker-id 0 --host 127.0.0.1 --port 9092 \
                   [--topic T --partitions N] [--controller ID] [--no-key-order]

Checks (kafka-0.8-cluster.md §1.1):
  /brokers/ids/<id>                      ephemeral, {"jmx_port":-1,"timestamp":"<ms>","host":H,"version":1,"port":P}
  /brokers/topics/<t>                    {"version":1,"partitions":{"0":[id,...],...}}
  /brokers/topics/<t>/partitions/<p>/state
                                         {"controller_epoch":E,"leader":L,"version":1,"leader_epoch":N,"isr":[...]}
  /config/topics/<t> (when present)      {"version":1,"config":{...}}
  /controller                            ephemeral, {"version":1,"brokerid":ID,"timestamp":"<ms>"}
Data must be compact JSON (no whitespace) with the keys in Kafka's order (unless --no-key-order).

Prints what it read as one JSON object on stdout. Every failed check is a line "FAIL: ..." on
stderr and the exit code is 1; exit 2 means ZooKeeper could not be reached.
"""

import argparse
import json
import sys
import time

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def parse(path, raw, key_order, check_order):
    """Parses raw znode bytes as JSON and checks compactness and key order."""
    if raw is None:
        fail("%s has null data" % path)
        return None
    text = raw.decode("utf-8")
    try:
        pairs = json.loads(text, object_pairs_hook=lambda kv: kv)
        obj = json.loads(text)
    except ValueError as e:
        fail("%s is not JSON (%s): %r" % (path, e, text))
        return None
    if not isinstance(obj, dict):
        fail("%s is not a JSON object: %r" % (path, text))
        return None
    compact = json.dumps(obj, separators=(",", ":"))
    if any(c in text for c in " \n\t\r") and compact != text:
        fail("%s has whitespace (Kafka writes compact JSON): %r" % (path, text))
    keys = [k for k, _ in pairs]
    if sorted(keys) != sorted(key_order):
        fail("%s has keys %s, expected exactly %s: %r" % (path, keys, key_order, text))
    elif check_order and keys != key_order:
        fail("%s has key order %s, Kafka 0.8.2 writes %s: %r" % (path, keys, key_order, text))
    return obj


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_timestamp(path, v):
    if not isinstance(v, str) or not v.isdigit():
        fail("%s: timestamp must be a string of digits (ms since the epoch), got %r" % (path, v))
        return
    now_ms = time.time() * 1000
    if abs(now_ms - int(v)) > 24 * 3600 * 1000:
        fail("%s: timestamp %s is not a recent time in milliseconds" % (path, v))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zk", required=True, help="host:port[/chroot]")
    ap.add_argument("--broker-id", type=int, required=True)
    ap.add_argument("--host", required=True, help="expected host in /brokers/ids/<id>")
    ap.add_argument("--port", type=int, required=True, help="expected port in /brokers/ids/<id>")
    ap.add_argument("--topic")
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--controller", type=int, help="expected controller broker id (default: --broker-id)")
    ap.add_argument("--no-key-order", action="store_true", help="do not check the JSON key order")
    args = ap.parse_args()
    order = not args.no_key_order

    zk = KazooClient(hosts=args.zk, timeout=15)
    try:
        zk.start(timeout=15)
    except Exception as e:  # noqa: BLE001 - report any connection failure
        print("cannot connect to ZooKeeper at %s: %s" % (args.zk, e), file=sys.stderr)
        return 2

    out = {}
    try:
        # ---- broker registration
        path = "/brokers/ids/%d" % args.broker_id
        try:
            raw, stat = zk.get(path)
        except NoNodeError:
            fail("%s does not exist (broker not registered); /brokers/ids has %s"
                 % (path, zk.get_children("/brokers/ids") if zk.exists("/brokers/ids") else "no node"))
            raw, stat = None, None
        if stat is not None:
            if stat.ephemeralOwner == 0:
                fail("%s must be ephemeral" % path)
            b = parse(path, raw, ["jmx_port", "timestamp", "host", "version", "port"], order)
            out["broker"] = {"path": path, "raw": raw.decode("utf-8") if raw else None, "json": b,
                             "ephemeral": stat.ephemeralOwner != 0}
            if b:
                if b.get("jmx_port") != -1:
                    fail("%s: jmx_port must be -1, got %r" % (path, b.get("jmx_port")))
                check_timestamp(path, b.get("timestamp"))
                if b.get("host") != args.host:
                    fail("%s: host must be %r, got %r" % (path, args.host, b.get("host")))
                if b.get("version") != 1:
                    fail("%s: version must be 1, got %r" % (path, b.get("version")))
                if b.get("port") != args.port or not is_int(b.get("port")):
                    fail("%s: port must be the number %d, got %r" % (path, args.port, b.get("port")))

        # ---- controller
        want_ctrl = args.controller if args.controller is not None else args.broker_id
        try:
            raw, stat = zk.get("/controller")
            if stat.ephemeralOwner == 0:
                fail("/controller must be ephemeral")
            c = parse("/controller", raw, ["version", "brokerid", "timestamp"], order)
            out["controller"] = {"raw": raw.decode("utf-8") if raw else None, "json": c}
            if c:
                if c.get("version") != 1:
                    fail("/controller: version must be 1, got %r" % c.get("version"))
                if c.get("brokerid") != want_ctrl:
                    fail("/controller: brokerid must be %d, got %r" % (want_ctrl, c.get("brokerid")))
                check_timestamp("/controller", c.get("timestamp"))
        except NoNodeError:
            fail("/controller does not exist (no controller elected)")
        try:
            raw, _ = zk.get("/controller_epoch")
            text = raw.decode("utf-8") if raw else ""
            out["controller_epoch"] = text
            if not text.isdigit() or int(text) < 1:
                fail("/controller_epoch must be a positive decimal, got %r" % text)
        except NoNodeError:
            fail("/controller_epoch does not exist")

        for p in ["/consumers", "/brokers/ids", "/brokers/topics", "/config/changes", "/config/topics",
                  "/admin/delete_topics"]:
            if not zk.exists(p):
                fail("%s does not exist (the broker creates it at start-up)" % p)

        # ---- topic
        if args.topic:
            t = args.topic
            path = "/brokers/topics/%s" % t
            try:
                raw, _ = zk.get(path)
                a = parse(path, raw, ["version", "partitions"], order)
                out["topic"] = {"raw": raw.decode("utf-8") if raw else None, "json": a}
            except NoNodeError:
                fail("%s does not exist" % path)
                a = None
            if a:
                if a.get("version") != 1:
                    fail("%s: version must be 1, got %r" % (path, a.get("version")))
                parts = a.get("partitions")
                if not isinstance(parts, dict):
                    fail("%s: partitions must be an object" % path)
                    parts = {}
                want = sorted(str(i) for i in range(args.partitions))
                if sorted(parts.keys()) != want:
                    fail("%s: partitions must be %s, got %s" % (path, want, sorted(parts.keys())))
                for k, reps in parts.items():
                    if not isinstance(reps, list) or not reps or not all(is_int(r) for r in reps):
                        fail("%s: partition %s replicas must be a non-empty list of ints, got %r" % (path, k, reps))
            out["states"] = {}
            for p in range(args.partitions):
                spath = "%s/partitions/%d/state" % (path, p)
                try:
                    raw, _ = zk.get(spath)
                except NoNodeError:
                    fail("%s does not exist (the controller did not create the partition state)" % spath)
                    continue
                s = parse(spath, raw, ["controller_epoch", "leader", "version", "leader_epoch", "isr"], order)
                out["states"][str(p)] = {"raw": raw.decode("utf-8") if raw else None, "json": s}
                if not s:
                    continue
                if s.get("version") != 1:
                    fail("%s: version must be 1, got %r" % (spath, s.get("version")))
                for k in ["controller_epoch", "leader", "leader_epoch"]:
                    if not is_int(s.get(k)):
                        fail("%s: %s must be an int, got %r" % (spath, k, s.get(k)))
                isr = s.get("isr")
                if not isinstance(isr, list) or not all(is_int(r) for r in isr):
                    fail("%s: isr must be a list of ints, got %r" % (spath, isr))
                    continue
                reps = (a or {}).get("partitions", {}).get(str(p)) if a else None
                if reps is not None:
                    if s.get("leader") not in reps:
                        fail("%s: leader %r is not a replica %r" % (spath, s.get("leader"), reps))
                    if not set(isr) <= set(reps):
                        fail("%s: isr %r is not a subset of the replicas %r" % (spath, isr, reps))
                    if s.get("leader") not in isr:
                        fail("%s: leader %r is not in the isr %r" % (spath, s.get("leader"), isr))
            cpath = "/config/topics/%s" % t
            if zk.exists(cpath):
                raw, _ = zk.get(cpath)
                cfg = parse(cpath, raw, ["version", "config"], order)
                out["config"] = {"raw": raw.decode("utf-8") if raw else None, "json": cfg}
                if cfg and (cfg.get("version") != 1 or not isinstance(cfg.get("config"), dict)):
                    fail("%s must be {\"version\":1,\"config\":{...}}, got %r" % (cpath, raw))
    finally:
        zk.stop()
        zk.close()

    print(json.dumps(out, sort_keys=True))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
