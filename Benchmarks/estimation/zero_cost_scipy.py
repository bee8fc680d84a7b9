#!/usr/bin/env python3
"""Recomputes the zero-cost proxy correlations with scipy and prints them beside the Swift figures.

    swift build -c release --product edgenas-bench-estimation
    .build/release/edgenas-bench-estimation --out bench-out
    python3 Benchmarks/estimation/zero_cost_scipy.py --data ../shared/data/nb201 --swift bench-out/zero_cost_correlations.csv --table bench-out/cifar10_proxy_rank_table.csv

Also prints scipy.stats.bootstrap percentile intervals of the CIFAR-10 Kendall tau beside the Swift
rank table (--table); those use a different random stream, so they agree only to Monte Carlo error
(about 0.01) and are not part of the pass/fail check.

Missing values: NASLib's failure score -1e8 and non-finite values (-inf in nwot) are dropped pairwise,
as the Swift benchmark does. Exits non-zero when any statistic differs by more than 1e-9.
"""
import argparse
import csv
import math
import sys

from scipy import stats

PROXIES = ["epe_nas", "fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm", "nwot", "params", "plain", "snip", "synflow"]
TEST_COLUMN = {"cifar10": "cifar10_test_acc", "cifar100": "cifar100_test_acc", "ImageNet16-120": "imagenet16_test_acc"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="../shared/data/nb201")
    parser.add_argument("--swift", default="bench-out/zero_cost_correlations.csv")
    parser.add_argument("--table", default=None, help="cifar10_proxy_rank_table.csv from the Swift benchmark")
    args = parser.parse_args()
    with open(f"{args.data}/archs.csv") as f:
        archs = {int(r["index"]): r for r in csv.DictReader(f)}
    with open(f"{args.data}/zero_cost.csv") as f:
        zc = list(csv.DictReader(f))
    with open(args.swift) as f:
        swift = {(r["dataset"], r["proxy"], r["target"]): r for r in csv.DictReader(f)}
    worst = 0.0
    print(f"{'dataset':15s} {'proxy':10s} {'target':13s} {'n':>4s} {'tau scipy':>10s} {'tau swift':>10s} {'rho scipy':>10s} {'rho swift':>10s}")
    for dataset in ["cifar10", "cifar100", "ImageNet16-120"]:
        rows = [r for r in zc if r["dataset"] == dataset]
        for proxy in PROXIES:
            for target in ["val_accuracy", "test_accuracy"]:
                pairs = []
                for r in rows:
                    s = float(r[proxy])
                    t = float(r["val_accuracy"]) if target == "val_accuracy" else float(archs[int(r["index"])][TEST_COLUMN[dataset]])
                    if math.isfinite(s) and s != -1e8 and math.isfinite(t):
                        pairs.append((s, t))
                x, y = zip(*pairs)
                tau = stats.kendalltau(x, y).statistic
                rho = stats.spearmanr(x, y).statistic
                ours = swift[(dataset, proxy, target)]
                st, sr = float(ours["kendall_tau"]), float(ours["spearman_rho"])
                worst = max(worst, abs(st - tau), abs(sr - rho))
                print(f"{dataset:15s} {proxy:10s} {target:13s} {len(x):4d} {tau:10.6f} {st:10.6f} {rho:10.6f} {sr:10.6f}")
    print(f"max |swift - scipy| = {worst:.3e}")
    if args.table:
        with open(args.table) as f:
            table = list(csv.DictReader(f))
        rows = [r for r in zc if r["dataset"] == "cifar10"]
        print(f"\n{'proxy':10s} {'swift 95% CI':>18s} {'scipy 95% CI':>18s}")
        for t in table:
            pairs = [(float(r[t["strategy"]]), float(archs[int(r["index"])]["cifar10_test_acc"])) for r in rows]
            pairs = [(s, a) for s, a in pairs if math.isfinite(s) and s != -1e8]
            x, y = map(list, zip(*pairs))
            ci = stats.bootstrap((x, y), lambda a, b: stats.kendalltau(a, b).statistic, paired=True, vectorized=False,
                                 method="percentile", n_resamples=1000, rng=0).confidence_interval
            print(f"{t['strategy']:10s} [{float(t['tau_ci_lower']):.3f}, {float(t['tau_ci_upper']):.3f}]   [{ci.low:.3f}, {ci.high:.3f}]")
    sys.exit(0 if worst < 1e-9 else 1)


if __name__ == "__main__":
    main()
