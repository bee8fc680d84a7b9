#!/usr/bin/env python3
"""Summarises results-edgenas.jsonl and results-optuna.jsonl as Markdown tables.

    python3 Benchmarks/search/compare.py [EDGENAS_JSONL[,EDGENAS_JSONL...]] [OPTUNA_JSONL]

Several EdgeNAS files (comma-separated) combine runs of different samplers: a sampler's
quality rows in a later file replace its rows from the earlier ones (a re-measured sampler
after a change, beside the unchanged ones).
"""
import json
import statistics
import sys
from collections import defaultdict


def load(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def print_best(quality, problems, trials):
    """Each framework's best sampler per problem (mean ± std, and n where it is not 10)."""
    print(f"\n#### Best sampler of each framework at {trials} trials\n")
    print("| problem | EdgeNAS best (sampler) | Optuna best (sampler) | EdgeNAS >= Optuna |")
    print("|---|---|---|---|")
    for p in problems:
        best = {}
        for framework in ("edgenas", "optuna"):
            means = [(statistics.mean(v), statistics.pstdev(v), s, len(v))
                     for (pp, t, f, s), v in quality.items() if pp == p and t == trials and f == framework]
            best[framework] = max(means) if means else None
        if None in best.values():
            continue
        cells = [f"{m:.3f} ± {sd:.3f} ({s}{'' if n == 10 else f', n={n}'})" for m, sd, s, n in (best["edgenas"], best["optuna"])]
        print(f"| {p} | {cells[0]} | {cells[1]} | {'yes' if best['edgenas'][0] >= best['optuna'][0] else 'no'} |")


def load_edgenas(paths):
    """Rows of several files; a later file's samplers replace the earlier files' rows."""
    rows = []
    for path in paths.split(","):
        newer = load(path)
        replaced = {r["sampler"] for r in newer if "hv_ratio" in r}
        rows = [r for r in rows if "hv_ratio" not in r or r["sampler"] not in replaced] + newer
    return rows


def main():
    edgenas = sys.argv[1] if len(sys.argv) > 1 else "Benchmarks/search/results-edgenas.jsonl"
    optuna = sys.argv[2] if len(sys.argv) > 2 else "Benchmarks/search/results-optuna.jsonl"
    rows = load_edgenas(edgenas) + load(optuna)
    quality = defaultdict(list)
    overhead, cpu = {}, {}
    for r in rows:
        if "hv_ratio" in r:
            quality[(r["problem"], r["trials"], r["framework"], r["sampler"])].append(r["hv_ratio"])
        else:
            overhead[(r["framework"], r["sampler"], r["trials"])] = r["ms_per_trial"]
            if "cpu_ms_per_trial" in r:
                cpu[(r["framework"], r["sampler"], r["trials"])] = r["cpu_ms_per_trial"]
    columns = sorted({(k[2], k[3]) for k in quality})
    for trials in sorted({k[1] for k in quality}):
        problems = sorted({k[0] for k in quality if k[1] == trials})
        print(f"\n### Normalised hypervolume at {trials} trials (mean ± std over seeds)\n")
        print("| problem | " + " | ".join(f"{f} {s}" for f, s in columns) + " | EdgeNAS best >= Optuna best |")
        print("|---" * (len(columns) + 2) + "|")
        wins = total = 0
        for p in problems:
            cells, best = [], {"edgenas": -1.0, "optuna": -1.0}
            for f, s in columns:
                values = quality.get((p, trials, f, s), [])
                if not values:
                    cells.append("—")
                    continue
                mean = statistics.mean(values)
                std = statistics.pstdev(values)
                best[f] = max(best[f], mean)
                cells.append(f"{mean:.3f} ± {std:.3f} (n={len(values)})")
            verdict = "—"
            if best["edgenas"] >= 0 and best["optuna"] >= 0:
                total += 1
                win = best["edgenas"] >= best["optuna"]
                wins += win
                verdict = "yes" if win else "no"
            print(f"| {p} | " + " | ".join(cells) + f" | {verdict} |")
        if total:
            print(f"\nEdgeNAS best >= Optuna best on {wins}/{total} problems ({100 * wins / total:.0f}%).")
        print_best(quality, problems, trials)
    for title, table in (("wall", overhead), ("CPU", cpu)):
        if not table:
            continue
        print(f"\n### Sampler overhead per trial ({title} ms, ask + tell with N finished trials)\n")
        sizes = sorted({k[2] for k in table})
        print("| framework | sampler | " + " | ".join(f"N={n}" for n in sizes) + " |")
        print("|---" * (len(sizes) + 2) + "|")
        for f, s in sorted({(k[0], k[1]) for k in table}):
            cells = [f"{table[(f, s, n)]:.2f}" if (f, s, n) in table else "—" for n in sizes]
            print(f"| {f} | {s} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
