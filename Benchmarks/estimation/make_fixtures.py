#!/usr/bin/env python3
"""Reference values for the Swift rank statistics (Tests/EstimationTests/Fixtures/rank_statistics.json).

Run from the repository root:  python3 Benchmarks/estimation/make_fixtures.py
Needs numpy and scipy. The cases cover no ties, heavy ties in one or both samples, joint ties,
negative correlation, a constant sample (undefined statistic -> null) and a larger random case.
"""
import json
import os

import numpy as np
import scipy
from scipy import stats


def case(name, x, y):
    x = [float(v) for v in x]
    y = [float(v) for v in y]
    tau = stats.kendalltau(x, y).statistic  # default variant="b"
    rho = stats.spearmanr(x, y).statistic
    r = stats.pearsonr(x, y).statistic if np.std(x) > 0 and np.std(y) > 0 else float("nan")

    def clean(v):
        return None if v is None or not np.isfinite(v) else float(v)

    return {"name": name, "x": x, "y": y, "kendall_tau_b": clean(tau), "spearman_rho": clean(rho), "pearson": clean(r)}


def main():
    rng = np.random.default_rng(20240601)
    cases = [
        case("no_ties", [1, 2, 3, 4, 5, 6, 7], [2, 1, 4, 3, 7, 5, 6]),
        case("ties_in_x", [1, 1, 2, 2, 3, 3, 4], [1, 2, 3, 4, 5, 6, 7]),
        case("ties_both_joint", [1, 1, 1, 2, 2, 3, 3, 3], [5, 5, 4, 4, 4, 1, 2, 2]),
        case("negative", [10, 9, 8, 7, 6, 5], [1, 3, 2, 5, 4, 6]),
        case("constant_y", [1, 2, 3, 4], [2, 2, 2, 2]),
        case("two_points", [0.5, 0.7], [3.0, 1.0]),
        case("random_small_ints", rng.integers(0, 6, 60).tolist(), rng.integers(0, 4, 60).tolist()),
    ]
    x = rng.normal(size=500)
    y = 0.6 * x + rng.normal(size=500)
    cases.append(case("random_continuous_500", np.round(x, 6).tolist(), np.round(y, 6).tolist()))
    out = {"generator": "Benchmarks/estimation/make_fixtures.py", "scipy_version": scipy.__version__, "cases": cases}
    path = os.path.join("Tests", "EstimationTests", "Fixtures", "rank_statistics.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print(f"wrote {path} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
