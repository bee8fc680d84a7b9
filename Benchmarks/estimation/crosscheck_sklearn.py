#!/usr/bin/env python3
"""Reference predictions from scikit-learn / xgboost for the Swift predictors.

Run from the repository root (needs numpy, scikit-learn, xgboost: `pip install scikit-learn xgboost`):
    python3 Benchmarks/estimation/crosscheck_sklearn.py
Writes Tests/EstimationTests/Fixtures/predictor_crosscheck.json, read by PredictorCrosscheckTests.

Only models with deterministic output are compared: BayesianRidge, LinearRegression (also on a
rank-deficient one-hot design), GaussianProcessRegressor with fixed kernel hyper-parameters
(optimizer=None), KNeighborsRegressor, SVR, xgboost (tree_method="exact", no sampling) and
RandomForestRegressor without bootstrap and with every feature tried at each split (each tree is
then the exact CART tree; the features are continuous, so no two splits tie and the random
feature order cannot matter). A DecisionTreeRegressor with bootstrap-like integer sample weights
stands for one bootstrap tree. The MLP's reference is crosscheck_torch_mlp.py (torch, other Python).
Data are rounded to float32-representable values because xgboost works in float32.
"""
import json
import os

import numpy as np
import sklearn
import xgboost
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Matern, WhiteKernel
from sklearn.linear_model import BayesianRidge, LinearRegression
from sklearn.ensemble import RandomForestRegressor
from sklearn.neighbors import KNeighborsRegressor
from sklearn.svm import SVR
from sklearn.tree import DecisionTreeRegressor


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def add_forests(out, xtr, ytr, xte, rng):
    """Random forests in the configuration where every tree is the deterministic CART tree.

    Two features that induce the same partition of a node give the same gain; both libraries then
    take the first in a random feature order, so such ties make test predictions differ. They are
    unavoidable in nodes of 2 rows (every continuous feature separates them), so every case keeps
    at least 3 rows per leaf; the script asserts that no tie is left (all trees agree).
    """
    cases = [("random_forest_leaf3", {"min_samples_leaf": 3}),
             ("random_forest_depth4", {"min_samples_leaf": 3, "max_depth": 4}),
             ("random_forest_split12", {"min_samples_leaf": 3, "min_samples_split": 12})]
    for key, limits in cases:
        forest = RandomForestRegressor(n_estimators=10, bootstrap=False, max_features=1.0, random_state=0, **limits)
        forest.fit(xtr, ytr)
        trees = [t.predict(xte) for t in forest.estimators_]
        assert all(np.array_equal(trees[0], t) for t in trees), f"{key}: tied splits, trees differ"
        out[key] = {"trees": 10, "max_depth": limits.get("max_depth"),
                    "min_samples_split": limits.get("min_samples_split", 2),
                    "min_samples_leaf": limits["min_samples_leaf"],
                    "node_count": int(forest.estimators_[0].tree_.node_count),
                    "predictions": forest.predict(xte).tolist()}

    # One bootstrap tree: row i drawn counts[i] times is CART with sample weight counts[i]. The
    # Swift forest counts the draws in a leaf (duplicates included), scikit-learn's
    # min_samples_leaf counts distinct rows, so the leaf limit is given here as a weight: 3.5 of
    # the 40 draws, i.e. at least 4 draws per leaf (3 would leave a tie on these draws).
    counts = np.bincount(rng.integers(0, len(xtr), size=len(xtr)), minlength=len(xtr))
    weighted = [DecisionTreeRegressor(min_weight_fraction_leaf=3.5 / len(xtr), random_state=seed)
                .fit(xtr, ytr, sample_weight=counts) for seed in range(10)]
    trees = [t.predict(xte) for t in weighted]
    assert all(np.array_equal(trees[0], t) for t in trees), "weighted tree: tied splits"
    out["decision_tree_weighted"] = {"counts": counts.tolist(), "min_samples_leaf": 4,
                                     "node_count": int(weighted[0].tree_.node_count),
                                     "predictions": trees[0].tolist()}


def main():
    rng = np.random.default_rng(7)
    n_train, n_test, d = 40, 15, 5
    x = f32(rng.uniform(-2, 2, size=(n_train + n_test, d)))
    w = np.array([1.5, -2.0, 0.5, 0.0, 1.0])
    y = f32(x @ w + np.sin(2 * x[:, 0]) + 0.3 * rng.normal(size=n_train + n_test))
    xtr, ytr, xte = x[:n_train], y[:n_train], x[n_train:]

    # Rank-deficient one-hot design: 3 choices x 4 options, 30 rows.
    choices = rng.integers(0, 4, size=(30, 3))
    onehot = np.zeros((30, 12))
    for c in range(3):
        onehot[np.arange(30), c * 4 + choices[:, c]] = 1
    y_onehot = onehot @ rng.normal(size=12) + 0.1 * rng.normal(size=30)

    out = {
        "generator": "Benchmarks/estimation/crosscheck_sklearn.py",
        "sklearn_version": sklearn.__version__,
        "xgboost_version": xgboost.__version__,
        "train_x": xtr.tolist(), "train_y": ytr.tolist(), "test_x": xte.tolist(),
        "onehot_x": onehot.tolist(), "onehot_y": y_onehot.tolist(),
    }

    br = BayesianRidge().fit(xtr, ytr)
    mean, std = br.predict(xte, return_std=True)
    out["bayesian_ridge"] = {"predictions": mean.tolist(), "std": std.tolist(),
                             "alpha": float(br.alpha_), "lambda": float(br.lambda_), "n_iter": int(br.n_iter_)}
    br1 = BayesianRidge().fit(onehot[:20], y_onehot[:20])
    out["bayesian_ridge_onehot"] = {"predictions": br1.predict(onehot[20:]).tolist()}

    # Wide design (8 rows, 12 columns): fewer samples than features.
    out["bayesian_ridge_wide"] = {"predictions": BayesianRidge().fit(onehot[:8], y_onehot[:8]).predict(onehot[20:]).tolist()}
    out["ols_wide"] = {"predictions": LinearRegression().fit(onehot[:8], y_onehot[:8]).predict(onehot[20:]).tolist()}

    out["ols"] = {"predictions": LinearRegression().fit(xtr, ytr).predict(xte).tolist()}
    out["ols_onehot"] = {"predictions": LinearRegression().fit(onehot[:20], y_onehot[:20]).predict(onehot[20:]).tolist()}

    for name, base in [("gp_rbf", RBF(length_scale=1.7)), ("gp_matern52", Matern(length_scale=1.7, nu=2.5))]:
        kernel = ConstantKernel(0.8) * base + WhiteKernel(0.05)
        gp = GaussianProcessRegressor(kernel=kernel, optimizer=None, normalize_y=True, alpha=1e-10).fit(xtr, ytr)
        m, s = gp.predict(xte, return_std=True)
        out[name] = {"length_scale": 1.7, "signal_variance": 0.8, "noise_variance": 0.05,
                     "predictions": m.tolist(), "std": s.tolist()}

    out["knn"] = {"k": 5, "predictions": KNeighborsRegressor(n_neighbors=5).fit(xtr, ytr).predict(xte).tolist()}

    svr = SVR(kernel="rbf", C=2.0, epsilon=0.1, gamma=0.3).fit(xtr, ytr)
    out["svr"] = {"c": 2.0, "epsilon": 0.1, "gamma": 0.3, "predictions": svr.predict(xte).tolist()}
    svr_scale = SVR(kernel="rbf").fit(xtr, ytr)
    out["svr_default_gamma"] = {"predictions": svr_scale.predict(xte).tolist()}

    base_score = float(np.mean(ytr))
    params = dict(n_estimators=20, learning_rate=0.3, max_depth=3, reg_lambda=1.0, gamma=0.5,
                  min_child_weight=1.0, tree_method="exact", base_score=base_score, subsample=1.0,
                  colsample_bytree=1.0)
    xgb = xgboost.XGBRegressor(**params).fit(xtr.astype(np.float32), ytr.astype(np.float32))
    out["xgboost"] = {"rounds": 20, "learning_rate": 0.3, "max_depth": 3, "lambda": 1.0, "gamma": 0.5,
                      "min_child_weight": 1.0, "base_score": base_score,
                      "predictions": xgb.predict(xte.astype(np.float32)).astype(np.float64).tolist()}

    add_forests(out, xtr, ytr, xte, rng)

    path = os.path.join("Tests", "EstimationTests", "Fixtures", "predictor_crosscheck.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
