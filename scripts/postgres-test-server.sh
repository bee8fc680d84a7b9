#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the storage tests and benchmarks.
#
#   scripts/postgres-test-server.sh start    # init + start, create the database, print exports
#   scripts/postgres-test-server.sh restart  # fast restart (drops every connection)
#   scripts/postgres-test-server.sh stop     # stop and delete the cluster
#   scripts/postgres-test-server.sh url      # print the URL again
#
# Typical use:   eval "$(scripts/postgres-test-server.sh start)"
#                swift test --filter StorageTests
#                scripts/postgres-test-server.sh stop
# `start` prints EDGENAS_TEST_POSTGRES_URL (the tests' database) and
# EDGENAS_TEST_POSTGRES_RESTART (the command the restart test runs).
#
# Settings (environment): EDGENAS_PG_DIR (cluster directory, default /tmp/edgenas-storage-postgres-PORT),
# EDGENAS_PG_PORT (default 54329), EDGENAS_PG_BIN (default /usr/lib/postgresql/15/bin),
# EDGENAS_PG_USER (the OS account the server runs as when this script runs as root; the
# server refuses to run as root; default postgres).
set -euo pipefail

port="${EDGENAS_PG_PORT:-54329}"
dir="${EDGENAS_PG_DIR:-/tmp/edgenas-storage-postgres-$port}"
bin="${EDGENAS_PG_BIN:-/usr/lib/postgresql/15/bin}"
os_user="${EDGENAS_PG_USER:-postgres}"
database=edgenas_test
db_user=edgenas
password=edgenas
script="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"

# Runs a command as the server's OS account (as is when we are not root).
as_server_user() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$os_user" -- "$@"
    else
        "$@"
    fi
}

url() { echo "postgresql://$db_user:$password@127.0.0.1:$port/$database?sslmode=disable"; }

# The server outlives this script, so it must not inherit the caller's descriptors: a caller
# that watches a pipe or socket for its child's exit (Foundation's Process does) would wait
# for the server too. The subshell closes every descriptor above stderr before pg_ctl runs.
pg_ctl_run() {
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        as_server_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 "$@" >/dev/null
    )
}

case "${1:-}" in
start)
    if [ -f "$dir/data/postmaster.pid" ]; then
        echo "a cluster is already running in $dir; run '$0 stop' first" >&2
        exit 1
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown "$os_user" "$dir"
    as_server_user bash -c "echo '$password' > '$dir/pwfile'"
    as_server_user "$bin/initdb" -D "$dir/data" -U "$db_user" --pwfile="$dir/pwfile" \
        --auth=scram-sha-256 --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    # Sockets in the cluster directory (the default one may not be writable); TCP on
    # loopback only; enough connections for 8 workers plus tests and benchmarks.
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
CONF
    pg_ctl_run start || { cat "$dir/server.log" >&2; exit 1; }
    as_server_user env PGPASSWORD="$password" "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$db_user" "$database"
    echo "export EDGENAS_TEST_POSTGRES_URL='$(url)'"
    echo "export EDGENAS_TEST_POSTGRES_RESTART='EDGENAS_PG_PORT=$port EDGENAS_PG_DIR=$dir $script restart'"
    ;;
restart)
    pg_ctl_run restart -m fast
    ;;
stop)
    if [ -f "$dir/data/postmaster.pid" ]; then pg_ctl_run stop -m fast; fi
    rm -rf "$dir"
    ;;
url)
    url
    ;;
*)
    echo "usage: $0 start|restart|stop|url" >&2
    exit 2
    ;;
esac
