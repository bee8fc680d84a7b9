"""Compares detector searches run with and without a pruner (Benchmarks/pruning/run.sh).

For each study file: trials complete and pruned, training epochs and estimator seconds spent
(the `record` attribute the pipeline writes on every trial, pruned ones included), the search's
wall time (first trial start to last trial end), and the hypervolume of the front of AP@0.5
against latency, with one reference point for all files (AP 0, the slowest latency seen x 1.1).

    python3 compare.py none.db median.db
"""
import json
import sqlite3
import sys


def load(path):
    db = sqlite3.connect(path)
    rows = db.execute(
        "select t.state, t.started_at, t.completed_at, a.value from edgenas_trials t "
        "left join edgenas_trial_user_attributes a on a.trial_id = t.id and a.key = 'record'"
    ).fetchall()
    trials = []
    for state, started, completed, record in rows:
        trials.append({"state": state, "started": started, "completed": completed,
                       "record": json.loads(record) if record else None})
    return trials


def front(points):
    """Non-dominated (ap up, latency down) points, sorted by latency."""
    result = []
    for ap, latency in sorted(points, key=lambda p: (p[1], -p[0])):
        if not result or ap > result[-1][0]:
            result.append((ap, latency))
    return result


def hypervolume(points, reference_latency):
    area, previous_latency = 0.0, reference_latency
    for ap, latency in reversed(front(points)):  # slowest first
        area += ap * (previous_latency - latency)
        previous_latency = latency
    return area


def main(paths):
    studies = {path: load(path) for path in paths}
    latencies = [t["record"]["latencyMilliseconds"] for trials in studies.values() for t in trials if t["record"]]
    reference = 1.1 * max(latencies)
    print(f"hypervolume reference: AP@0.5 0, latency {reference:.3f} ms")
    print("| study | complete | pruned | epochs trained | estimator s | search wall s | front | hypervolume |")
    print("|---|---|---|---|---|---|---|---|")
    for path, trials in studies.items():
        finished = [t for t in trials if t["state"] in ("complete", "pruned") and t["record"]]
        # A repeated architecture takes an earlier trial's result and trains nothing.
        trained = [t for t in finished if t["record"].get("duplicateOf") is None]
        epochs = sum(t["record"]["estimateEpochs"] for t in trained)
        seconds = sum(t["record"]["estimateSeconds"] for t in trained)
        wall = max(t["completed"] for t in finished) - min(t["started"] for t in finished)
        points = [(t["record"]["score"], t["record"]["latencyMilliseconds"]) for t in finished if t["state"] == "complete"]
        best = front(points)
        pruned = sum(t["state"] == "pruned" for t in trials)
        complete = sum(t["state"] == "complete" for t in trials)
        print(f"| {path} | {complete} | {pruned} | {epochs} | {seconds:.0f} | {wall:.0f} | {len(best)} | "
              f"{hypervolume(points, reference):.4f} |")
    for path, trials in studies.items():
        points = [(t["record"]["score"], t["record"]["latencyMilliseconds"]) for t in trials
                  if t["state"] == "complete" and t["record"]]
        print(f"{path} front: " + ", ".join(f"{latency:.2f} ms {ap:.3f}" for ap, latency in front(points)))


if __name__ == "__main__":
    main(sys.argv[1:])
