#!/bin/bash
# Wall time of one detector search's trials with 1 process (`search`) and with 2 (`search` plus
# one `worker --config`) on this machine, same config, same synthetic data.
# The search phase is measured from the study itself: first trial start to last trial end.
#
# Usage (from the repository root): Benchmarks/distributed/run.sh [TRIALS]   (default 12)
# THREADS=N sets training.threads of every process (default: every core).
set -euo pipefail
TRIALS=${1:-12}
THREADS=${THREADS:-$(nproc)}
swift build -c release --product edgenas >/dev/null
BIN=$(swift build -c release --product edgenas --show-bin-path)/edgenas
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$BIN" data synth --output "$WORK/data" --train 48 --val 16 --seed 3 >/dev/null
span() {  # seconds from the first trial's start to the last trial's end
    /usr/bin/python3 - "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
start, end = db.execute("select min(started_at), max(completed_at) from edgenas_trials where state = 'complete'").fetchone()
count, = db.execute("select count(*) from edgenas_trials where state = 'complete'").fetchone()
print(f"{end - start:.1f} {count}")
PY
}
for processes in 1 2; do
    dir="$WORK/run$processes"
    mkdir -p "$dir"
    cat >"$dir/edgenas.yaml" <<YAML
name: bench
dataset: {path: $WORK/data}
budget: {trials: $TRIALS}
estimator: short
latency: {backend: int8}
storage: sqlite://study.db
seed: 1
training: {epochs: 4, short_epochs: 1, batch_size: 8, threads: $THREADS}
retrain: {candidates: 1}
output: report
YAML
    (cd "$dir" && "$BIN" search --config edgenas.yaml >search.log 2>&1) &
    if [ "$processes" = 2 ]; then (cd "$dir" && "$BIN" worker --config edgenas.yaml >worker.log 2>&1) & fi
    wait
    read -r seconds complete < <(span "$dir/study.db")
    echo "processes=$processes training_threads=$THREADS complete=$complete search_phase_s=$seconds"
done
