#!/usr/bin/env bash
# Runs the whole test suite (README's second command; .ci/run calls exactly this).
#
#   1. bin/setup.sh --no-start: installs what is missing (apt packages, .venv) and builds
#      `swift build -c release`. It does NOT start the 2181/9092 services: the tests start
#      their own ZooKeeper and brokers on free ports and stop them.
#   2. swift test -c release --disable-testable-imports: compiles the test targets against the
#      release build made in step 1 (no second full build) and runs every test.
#
# Options: any argument is passed to `swift test` (e.g. --filter QuickstartTests).
# Environment: KAFKA_TEST_TIMEOUT (minutes, default 45) bounds the test run.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KAFKA_HOME"

start=$SECONDS
bin/setup.sh --no-start
echo
echo "==> swift build -c release (binaries for bin/ and the integration tests)"
swift build -c release
build_done=$SECONDS

echo
# Tests must not use @testable import: testable imports would force a second build of every
# module with -enable-testing. Release tests reuse the objects of the release build.
testable=(--disable-testable-imports)
if offenders=$(grep -rlE '^[[:space:]]*@testable[[:space:]]+import' Tests/ 2>/dev/null) && [ -n "$offenders" ]; then
    echo "WARNING: these test files use @testable import, which forces a second full build of every" >&2
    echo "         module with -enable-testing (minutes on 2 cores). Use public API instead:" >&2
    echo "$offenders" | sed 's/^/           /' >&2
    testable=()
fi
echo "==> swift test -c release ${testable[*]} $*"
status=0
timeout --kill-after=30s "$((${KAFKA_TEST_TIMEOUT:-45} * 60))s" \
    swift test -c release "${testable[@]}" "$@" </dev/null || status=$?

echo
if [ "$status" -eq 124 ]; then
    echo "test.sh: the test run exceeded ${KAFKA_TEST_TIMEOUT:-45} minutes and was stopped" >&2
fi
echo "test.sh: setup+build $((build_done - start)) s, tests $((SECONDS - build_done)) s, exit status $status"
exit "$status"
