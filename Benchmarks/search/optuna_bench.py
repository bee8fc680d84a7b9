#!/usr/bin/env python3
"""Optuna side of the EdgeNAS sampler benchmark (same problems, same output format).

    /tmp/optuna-venv/bin/python Benchmarks/search/optuna_bench.py [--quick] [--seeds N] [--out FILE] [--nb201 DIR]

Needs optuna >= 5, and torch >= 2 + scipy for GPSampler (Debian's python3-torch 1.13 is too old):
Benchmarks/search/setup-optuna.sh makes such a venv. Everything runs on one thread (torch, OpenMP,
OpenBLAS, MKL), like EdgeNAS's samplers, so that the overhead figures compare one core with one
core; --threads N changes that. --first-seed K runs seeds K ..< K + SEEDS, to split a long run
(--threads and --first-seed are this script's only; run.sh passes its options to both sides).
Quality rows carry the cumulative wall and CPU seconds of the study at each checkpoint; the
checkpoints are points of one study, not one study each. The problems mirror
Benchmarks/search/Sources/Problems.swift exactly: 6 variables in [0, 1], 2 objectives;
"-sr" variants shift and rotate the distance variables so the optimum is inside the box.
"""
import argparse
import csv
import json
import math
import os
import sys
import time


def _threads_from_argv(argv):
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return "1"


# Thread pools read these when numpy/torch load, so they are set before optuna imports them.
THREADS = _threads_from_argv(sys.argv)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = THREADS

import optuna  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)

DIM = 6
OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]


def shift_rotate(tail):
    k = len(tail)
    z = [v - (0.2 + 0.6 * i / max(k - 1, 1)) for i, v in enumerate(tail)]
    c, s = math.cos(0.5), math.sin(0.5)
    for i in range(k - 1):
        a, b = z[i], z[i + 1]
        z[i] = c * a - s * b
        z[i + 1] = s * a + c * b
    return z


def zdt(kind, x, shifted):
    tail = x[1:]
    n = len(x)
    if shifted:
        g = 1 + 9 / (n - 1) * sum(v * v for v in shift_rotate(tail))
    elif kind == 6:
        g = 1 + 9 * (sum(tail) / (n - 1)) ** 0.25
    else:
        g = 1 + 9 / (n - 1) * sum(tail)
    if shifted and kind == 6:
        g = 1 + 9 * ((g - 1) / 9) ** 0.25
    f1 = 1 - math.exp(-4 * x[0]) * math.sin(6 * math.pi * x[0]) ** 6 if kind == 6 else x[0]
    r = f1 / g
    if kind == 1:
        h = 1 - math.sqrt(r)
    elif kind in (2, 6):
        h = 1 - r * r
    else:
        h = 1 - math.sqrt(r) - r * math.sin(10 * math.pi * f1)
    return [f1, g * h]


def dtlz(kind, x, shifted):
    tail = x[1:]
    if kind == 2:
        g = sum(v * v for v in shift_rotate(tail)) if shifted else sum((v - 0.5) ** 2 for v in tail)
        return [(1 + g) * math.cos(x[0] * math.pi / 2), (1 + g) * math.sin(x[0] * math.pi / 2)]
    s = sum(abs(v) for v in shift_rotate(tail)) if shifted else sum(tail)
    g = 1 + 9 / len(tail) * s
    f1 = x[0]
    h = 2 - f1 / (1 + g) * (1 + math.sin(3 * math.pi * f1))
    return [f1, (1 + g) * h]


def front(name):
    base = name.replace("-sr", "")
    count = 20000
    grid = [i / count for i in range(count + 1)]
    if base == "zdt1":
        return [[t, 1 - math.sqrt(t)] for t in grid]
    if base == "zdt2":
        return [[t, 1 - t * t] for t in grid]
    if base == "zdt3":
        return [[t, 1 - math.sqrt(t) - t * math.sin(10 * math.pi * t)] for t in grid]
    if base == "zdt6":
        out = []
        for t in grid:
            f1 = 1 - math.exp(-4 * t) * math.sin(6 * math.pi * t) ** 6
            out.append([f1, 1 - f1 * f1])
        return out
    if base == "dtlz2":
        return [[math.cos(t * math.pi / 2), math.sin(t * math.pi / 2)] for t in grid]
    return [[t, 2 * (2 - t / 2 * (1 + math.sin(3 * math.pi * t)))] for t in grid]


def hypervolume2d(points, ref):
    pts = sorted(p for p in points if p[0] < ref[0] and p[1] < ref[1])
    volume, best = 0.0, ref[1]
    for p in pts:
        if p[1] < best:
            volume += (ref[0] - p[0]) * (best - p[1])
            best = p[1]
    return volume


class Problem:
    def __init__(self, name, nb201_dir):
        self.name = name
        if name.startswith("nb201-"):
            device = name[len("nb201-"):]
            acc = load_column(nb201_dir + "/archs.csv", "cifar10_test_acc")
            lat = load_column(nb201_dir + "/latency.csv", device + "_ms")
            max_lat = max(lat.values())
            self.directions = ["maximize", "minimize"]
            self.ref = [1.0, 1.05]
            self.to_losses = lambda v: [1 - v[0] / 100, v[1] / max_lat]
            self.true_hv = hypervolume2d([self.to_losses([acc[a], lat[a]]) for a in acc], self.ref)

            def evaluate(trial):
                ops = [trial.suggest_categorical(f"edge{i}", OPS) for i in range(6)]
                arch = f"|{ops[0]}~0|+|{ops[1]}~0|{ops[2]}~1|+|{ops[3]}~0|{ops[4]}~1|{ops[5]}~2|"
                return acc[arch], lat[arch]
        else:
            shifted = name.endswith("-sr")
            base = name.replace("-sr", "")
            kind = int(base[3:] if base.startswith("zdt") else base[4:])
            fn = zdt if base.startswith("zdt") else dtlz
            self.directions = ["minimize", "minimize"]
            self.ref = [1.1, 4.4] if base == "dtlz7" else [1.1, 1.1]
            self.to_losses = lambda v: list(v)
            self.true_hv = hypervolume2d(front(name), self.ref)

            def evaluate(trial):
                x = [trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(DIM)]
                return tuple(fn(kind, x, shifted))
        self.evaluate = evaluate


def load_column(path, column):
    with open(path) as f:
        rows = csv.DictReader(f)
        return {r["arch_str"]: float(r[column]) for r in rows}


def set_torch_threads(n):
    try:
        import torch
    except ImportError:  # only GPSampler needs torch
        return
    torch.set_num_threads(n)


def versions():
    found = [f"python {sys.version.split()[0]}", f"optuna {optuna.__version__}"]
    for module in ("torch", "scipy", "numpy", "greenlet"):
        try:
            found.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            found.append(f"{module} missing")
    return "optuna_bench: " + ", ".join(found) + f"; threads {THREADS}"


def make_sampler(name, seed):
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "tpe-multivariate":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=20)
    raise ValueError(name)


def quality(problem, sampler_name, seed, checkpoints):
    """One study run to the largest checkpoint; the hypervolume ratio and the cumulative wall and
    CPU seconds are recorded at each checkpoint on the way (not one study per checkpoint)."""
    study = optuna.create_study(directions=problem.directions, sampler=make_sampler(sampler_name, seed))
    out, done = {}, 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for c in sorted(checkpoints):
        study.optimize(problem.evaluate, n_trials=c - done)
        done = c
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        losses = [problem.to_losses(t.values) for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        out[c] = (hypervolume2d(losses, problem.ref) / problem.true_hv, wall, cpu)
    return out


def overhead(problem, sampler_name, history, repeats=5):
    """Mean ask + tell wall and CPU time (ms) with `history` random trials already in the study."""
    study = optuna.create_study(directions=problem.directions, sampler=make_sampler(sampler_name, 1))
    prefill = optuna.create_study(directions=problem.directions, sampler=optuna.samplers.RandomSampler(seed=99))
    prefill.optimize(problem.evaluate, n_trials=history)
    study.add_trials(prefill.trials)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        trial = study.ask()
        values = problem.evaluate(trial)
        study.tell(trial, values)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return wall * 1000 / repeats, cpu * 1000 / repeats


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0, help="run seeds FIRST ..< FIRST + SEEDS (to split a run)")
    parser.add_argument("--out", default="Benchmarks/search/results-optuna.jsonl")
    parser.add_argument("--nb201", default="../shared/data/nb201")
    parser.add_argument("--samplers", default="random,tpe,tpe-multivariate,gp,nsga2")
    parser.add_argument("--problems", default="zdt1,zdt2,zdt3,zdt6,dtlz2,dtlz7,zdt1-sr,dtlz2-sr,nb201-raspi4,nb201-1080ti_1")
    parser.add_argument("--trials", default="50,100,200")
    parser.add_argument("--overhead", default="100,500,1000")
    parser.add_argument("--no-overhead", action="store_true")
    parser.add_argument("--no-quality", action="store_true")
    parser.add_argument("--repeats", type=int, default=5, help="ask + tell rounds timed per overhead figure")
    parser.add_argument("--threads", default="1", help="torch/OpenMP/BLAS threads (default 1, as EdgeNAS)")
    a = parser.parse_args()
    set_torch_threads(int(a.threads))
    print(versions(), file=sys.stderr, flush=True)
    problems = a.problems.split(",")
    checkpoints = [int(t) for t in a.trials.split(",")]
    seeds = a.seeds
    if a.quick:
        seeds = min(seeds, 3)
        problems = [p for p in problems if p in ("zdt1", "zdt3", "dtlz2", "zdt1-sr", "nb201-raspi4")]
        checkpoints = [50, 100]
    samplers = a.samplers.split(",")
    with open(a.out, "w") as out:
        def emit(fields):
            line = json.dumps(fields, sort_keys=True)
            out.write(line + "\n")
            out.flush()
            print(line, flush=True)

        if not a.no_quality:
            for s in samplers:
                for name in problems:
                    problem = Problem(name, a.nb201)
                    for seed in range(a.first_seed, a.first_seed + seeds):
                        for trials, (ratio, wall, cpu) in sorted(quality(problem, s, seed, checkpoints).items()):
                            emit({"framework": "optuna", "sampler": s, "problem": name, "seed": seed, "trials": trials,
                                  "hv_ratio": ratio, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3)})
        if not a.no_overhead:
            problem = Problem("zdt1", a.nb201)
            for s in samplers:
                for size in [int(v) for v in a.overhead.split(",")]:
                    wall, cpu = overhead(problem, s, size, a.repeats)
                    emit({"framework": "optuna", "sampler": s, "problem": "zdt1", "trials": size, "ms_per_trial": wall, "cpu_ms_per_trial": cpu,
                          "repeats": a.repeats})


if __name__ == "__main__":
    main()
