#!/usr/bin/env bash
# libFuzzer over the broker's request decoders and message-set validator (Fuzz/RequestFuzzer).
#
#   bin/fuzz.sh --build                 build .build-fuzz/release/kafka-request-fuzzer only
#   bin/fuzz.sh [libFuzzer flags...]    build, then fuzz with a corpus in .build-fuzz/corpus seeded
#                                       from Tests/Vectors and ../shared/vectors, e.g.
#   bin/fuzz.sh -runs=10000000          (the long run of RELIABILITY.md)
#   bin/fuzz.sh -max_total_time=60
#
# The binary is built with `-sanitize=fuzzer,address` (coverage, libFuzzer, AddressSanitizer with
# LeakSanitizer, so leaks and memory errors fail the run too) in its own scratch
# directory, so it never disturbs the normal `.build`. Crash inputs land in .build-fuzz/crashes/;
# replay one with the plain build: `.build/release/kafka-request-fuzzer <file>`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scratch="$root/.build-fuzz"
bin="$scratch/release/kafka-request-fuzzer"

swift build -c release --scratch-path "$scratch" --product kafka-request-fuzzer \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -D -Xswiftc KAFKA_FUZZ -Xcc -fsanitize=fuzzer-no-link,address >&2
[[ "${1:-}" == "--build" ]] && { echo "$bin"; exit 0; }

corpus="$scratch/corpus"
mkdir -p "$corpus" "$scratch/crashes"
for d in "$root/Tests/Vectors" "$root/../shared/vectors"; do
    [[ -d "$d" ]] && cp -n "$d"/*.bin "$corpus"/ 2>/dev/null || true
done
exec "$bin" "$corpus" -artifact_prefix="$scratch/crashes/" -max_len=65536 -rss_limit_mb=2048 "$@"
