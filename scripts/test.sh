#!/usr/bin/env bash
# README's test command: runs the whole test suite. Starts a throwaway PostgreSQL server on
# loopback for the distributed-storage tests (stopped again on exit, whatever happens), then
# `swift test`. Extra arguments go to `swift test` (e.g. `scripts/test.sh --filter SearchTests`).
set -euo pipefail
cd "$(dirname "$0")/.."

# libgomp reads this once at load: idle OpenMP workers must sleep, not spin, on shared cores.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

if [ -z "${EDGENAS_TEST_POSTGRES_URL:-}" ] && [ -x /usr/lib/postgresql/15/bin/pg_ctl ]; then
    # A cluster of this run's own (directory and port), so a developer's server is untouched.
    export EDGENAS_PG_DIR="${TMPDIR:-/tmp}/edgenas-pg-test-$$" EDGENAS_PG_PORT="${EDGENAS_PG_PORT:-54339}"
    exports=$(scripts/postgres-test-server.sh start)
    trap 'scripts/postgres-test-server.sh stop' EXIT
    eval "$exports"
    echo "==> PostgreSQL test server at $EDGENAS_TEST_POSTGRES_URL"
fi

swift build --build-tests
swift test --skip-build "$@"
