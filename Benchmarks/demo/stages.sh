#!/bin/bash
# The demo's stages after its base model and supernet (selection, search, retraining, report),
# timed for two builds of edgenas alternately on the same machine in one run. Both builds start
# from the same trained base model and supernet (the demo skips a training a previous run
# finished), so the figures compare only what happens after them, and the rank tables and fronts
# of the two builds can be compared file by file.
#
# Usage (from the repository root):
#   Benchmarks/demo/stages.sh BEFORE AFTER DEMO [ROUNDS] [OUTPUT]
# BEFORE, AFTER: edgenas binaries, e.g. a release build of the commit before a change
#   (git worktree add /tmp/before REV~1 && cd /tmp/before && swift build -c release --product edgenas)
#   and of the change itself.
# DEMO: a finished demo directory (`edgenas demo --output DEMO`): its data/, base-model/ and
#   supernet/ are copied for every run. ROUNDS default 2, OUTPUT default runs/demo-stages.
# results.csv: seconds of the selection, the search, the retraining and the whole run per build
# and round; each run's log (timestamped) and directory stay beside it. Odd rounds run BEFORE
# first, even rounds AFTER first, so a drift of the machine's speed does not favour one build.
# FIRST_ROUND=N (environment) adds rounds N..ROUNDS to an earlier run's results.
set -euo pipefail
BEFORE=$(realpath "$1"); AFTER=$(realpath "$2"); DEMO=$(realpath "$3")
ROUNDS=${4:-2}
OUT=$(mkdir -p "${5:-runs/demo-stages}" && cd "${5:-runs/demo-stages}" && pwd)
cd "$OUT"
# Seconds between the first lines of the log matching two patterns.
between() { python3 - "$1" "$2" "$3" <<'PY'
import re, sys
from datetime import datetime
log, first, second = sys.argv[1:]
def when(pattern):
    for line in open(log):
        if re.search(pattern, line):
            return datetime.strptime(line[:8], "%H:%M:%S")
    sys.exit(f"no line matches {pattern!r} in {log}")
seconds = (when(second) - when(first)).total_seconds()
print(int(seconds + 86400) % 86400)
PY
}
FIRST_ROUND=${FIRST_ROUND:-1}
[ "$FIRST_ROUND" = 1 ] && echo "build,round,select_s,search_s,retrain_s,total_s,chosen" > results.csv
for round in $(seq "$FIRST_ROUND" "$ROUNDS"); do
    order="before after"; [ $((round % 2)) = 0 ] && order="after before"
    for build in $order; do
        binary=$BEFORE; [ "$build" = after ] && binary=$AFTER
        run="run-$build-$round"
        rm -rf "$run" && mkdir -p "$run"
        cp -r "$DEMO/data" "$DEMO/base-model" "$DEMO/supernet" "$run/"
        log="log-$build-$round.txt"
        "$binary" demo --output "$run" 2>&1 | while IFS= read -r line; do echo "$(date +%T) $line"; done > "$log"
        chosen=$(sed -n 's/.*select: done in .*; chosen \([^;]*\);.*/\1/p' "$log")
        select=$(between "$log" 'select: training' 'select: done')
        search=$(between "$log" 'select: done' 'retrain: ')
        retrain=$(between "$log" 'retrain: ' 'report: ')
        total=$(between "$log" 'dataset: ' 'report: ')
        echo "$build,$round,$select,$search,$retrain,$total,$chosen" >> results.csv
        tail -1 results.csv
    done
done
