#!/usr/bin/env bash
# README's test command: runs the whole test suite. Starts a throwaway PostgreSQL server on
# loopback for the distributed-storage tests (stopped again on exit, whatever happens), then
# `swift test`. Extra arguments go to `swift test` (e.g. `scripts/test.sh --filter SearchTests`).
# Needs what `scripts/install.sh --deps` installs.
set -euo pipefail
cd "$(dirname "$0")/.."

# libgomp reads this once at load: idle OpenMP workers must sleep, not spin, on shared cores.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

log="" own_server=""
cleanup() {
    [ -z "$log" ] || rm -f "$log"
    [ -z "$own_server" ] || scripts/postgres-test-server.sh stop
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

if [ -z "${EDGENAS_TEST_POSTGRES_URL:-}" ] && [ -x /usr/lib/postgresql/15/bin/pg_ctl ]; then
    # A cluster of this run's own (directory and port), so a developer's server is untouched.
    export EDGENAS_PG_DIR="${TMPDIR:-/tmp}/edgenas-pg-test-$$" EDGENAS_PG_PORT="${EDGENAS_PG_PORT:-54339}"
    exports=$(scripts/postgres-test-server.sh start)
    own_server=1
    eval "$exports"
    echo "==> PostgreSQL test server at $EDGENAS_TEST_POSTGRES_URL"
fi

# The Python check scripts run in the repository's virtual environment (scripts/python-env.sh
# creates it once; never the system Python). EDGENAS_PYTHON is its interpreter, for scripts and
# tests that want it. The ONNX fixture the ONNXRuntime tests read must be what its script makes.
if EDGENAS_PYTHON=$(scripts/python-env.sh); then
    export EDGENAS_PYTHON
    fixture_dir=$(mktemp -d)
    "$EDGENAS_PYTHON" scripts/reference/make_onnx_fixtures.py "$fixture_dir" >/dev/null
    if ! cmp -s "$fixture_dir/conv_relu_add.onnx" Tests/ONNXRuntimeTests/Fixtures/conv_relu_add.onnx; then
        echo "error: scripts/reference/make_onnx_fixtures.py no longer makes the committed Tests/ONNXRuntimeTests/Fixtures/conv_relu_add.onnx" >&2
        exit 1
    fi
    rm -rf "$fixture_dir"
    echo "==> ONNX fixture reproduced by $EDGENAS_PYTHON"
else
    echo "error: no Python environment for the check scripts; run scripts/install.sh --deps" >&2
    exit 1
fi

swift build --build-tests

# A hung test must fail the run and say which test it is, not use up CI's 90 minutes: the
# suite takes about 12 minutes on 2 cores. Lines go out as they are written (a pipe would
# hold them in a buffer, and a killed run would lose its last minutes of output).
log=$(mktemp)
limit="${EDGENAS_TEST_TIME_LIMIT:-2400}"
status=0
stdbuf -oL -eL timeout --kill-after=30 "$limit" swift test --skip-build "$@" 2>&1 | tee "$log" || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "error: the tests did not finish within $limit s (EDGENAS_TEST_TIME_LIMIT); started and never ended:" >&2
    # Swift Testing prints "◇ Test name(...) started." and "✔/✘ Test name(...) passed/failed ...".
    awk '/^◇ Test .* started\.$/ { sub(/^◇ Test /, ""); sub(/\(.*/, ""); open[$0]++ }
         /^[✔✘] Test .* (passed|failed|skipped)/ { sub(/^[✔✘] Test /, ""); sub(/\(.*/, ""); open[$0]-- }
         END { for (name in open) if (open[name] > 0) print "  " name }' "$log" >&2
fi
exit "$status"
