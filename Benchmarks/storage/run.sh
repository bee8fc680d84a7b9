#!/usr/bin/env bash
# Study-storage throughput: EdgeNAS (edgenas-storage-worker) vs Optuna 5 RDBStorage, with
# 1, 4 and 8 worker processes, on SQLite and on PostgreSQL (a throwaway local server), in the
# same run. Each worker does TRIALS ask/tell cycles (take a trial, set one parameter, finish
# it); throughput = all trials / the slowest worker's loop time (process start-up excluded
# on both sides).
#   Benchmarks/storage/run.sh            needs: pip install optuna psycopg2-binary
set -euo pipefail
cd "$(dirname "$0")/../.."
TRIALS=${TRIALS:-100}
export OMP_WAIT_POLICY=PASSIVE
swift build -c release --product edgenas-storage-worker >/dev/null
worker=.build/release/edgenas-storage-worker
work=$(mktemp -d)
chmod 755 "$work"   # the PostgreSQL server runs as another OS user and must reach its directory
export EDGENAS_PG_DIR="$work/pg" EDGENAS_PG_PORT=${EDGENAS_PG_PORT:-54349}
exports=$(scripts/postgres-test-server.sh start)
trap 'scripts/postgres-test-server.sh stop >/dev/null; rm -rf "$work"' EXIT
eval "$exports"
pg_swift=$EDGENAS_TEST_POSTGRES_URL
# SQLAlchemy's form of the same database.
pg_python=$(echo "$pg_swift" | sed 's|^postgresql://|postgresql+psycopg2://|; s|?sslmode=disable||')

# Runs N copies of a command at once; prints trials per second over the slowest loop time.
throughput() {
    local n=$1; shift
    local logs=()
    for i in $(seq 1 "$n"); do "$@" > "$work/log.$i" 2>&1 & logs+=("$work/log.$i"); done
    wait
    cat "${logs[@]}" | awk -v n="$n" -v t="$TRIALS" '/finished/ { if ($5 > max) max = $5 } END { printf "%.1f", n * t / max }'
}

printf "%-10s %-8s %14s %14s %8s\n" engine workers "EdgeNAS tr/s" "Optuna tr/s" ratio
for engine in sqlite postgresql; do
    for n in 1 4 8; do
        study="bench-$engine-$n"
        if [ "$engine" = sqlite ]; then
            swift_url="sqlite://$work/edgenas-$n.db"; python_url="sqlite:///$work/optuna-$n.db"
        else
            swift_url=$pg_swift; python_url=$pg_python
        fi
        "$worker" --storage "$swift_url" --study "$study" --create --trials 0 >/dev/null
        python3 -c "import optuna; optuna.create_study(study_name='$study', storage='$python_url')" 2>/dev/null
        ours=$(throughput "$n" "$worker" --storage "$swift_url" --study "$study" --trials "$TRIALS")
        theirs=$(throughput "$n" python3 Benchmarks/storage/optuna_worker.py "$python_url" "$study" "$TRIALS")
        printf "%-10s %-8s %14s %14s %8s\n" "$engine" "$n" "$ours" "$theirs" "$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.1fx", a / b }')"
    done
done
