"""Real training, side by side: a model trained with a torchlean objective predicts what the
same library's built-in objective predicts, same data, rounds and parameters, base scores made
equal.

The data sets are generated here (seeded). Base scores: XGBoost gets a zero ``base_margin`` in
the DMatrix (it overrides ``base_score`` on both sides); LightGBM's built-in objectives get
``boost_from_average=False`` (a callable objective starts from 0); CatBoost's get
``boost_from_average=False`` with one Newton step per leaf, no bootstrap and no random strength.

Tolerances (absolute, on the raw scores, the largest over all training rows):

- XGBoost: ``1e-5 * (1 + |score|)``: it hands the objective float32 margins and labels, so the
  two models may differ by float32 roundings of the same numbers.
- LightGBM: ``1e-6 * (1 + |score|)``: float64 scores, float32 labels. Its Poisson objective
  refuses ``poisson_max_delta_step = 0`` (default 0.7); it gets 1e-12.
- CatBoost: ``1e-12 * (1 + |score|)``: float64 scores.

Hessians: XGBoost's ``multi:softprob`` takes ``2 p (1 - p)`` (``hessian=Scaled(2.0)`` here),
LightGBM's ``multiclass`` ``k / (k - 1) p (1 - p)`` (``Scaled("k/(k-1)")``), CatBoost's
``MultiClass`` the whole Hessian matrix (``"exact"``). Quantile: XGBoost and LightGBM refit each
new leaf to a quantile of its residuals, which a custom objective cannot ask for: there the
trees of the first round have the same splits (the same partition of the rows) and both models
reach a coverage (share of labels below the prediction) near ``alpha``. CatBoost's quantile with
``leaf_estimation_method="Gradient"`` takes the same steps as the objective (tolerance 1e-6;
measured 2.8e-8, a difference not traced).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from torchlean.interop.boosting import Scaled

ROWS = 240
ROUNDS = 8
CLASSES = 3


def make_data(kind: str, n: int = ROWS, seed: int = 7) -> tuple[np.ndarray, np.ndarray,
                                                               np.ndarray]:
    """``(X, y, w)``: four normal features, labels of the kind asked, weights in [0.5, 2)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    lin = 0.8 * x[:, 0] - 0.5 * x[:, 1] + 0.3 * x[:, 2] * x[:, 3]
    w = rng.uniform(0.5, 2.0, size=n)
    if kind == "real":
        y = np.sin(2 * x[:, 0]) + 0.5 * x[:, 1] + 0.3 * rng.normal(size=n)
    elif kind == "binary":
        y = (lin + 0.7 * rng.normal(size=n) > 0).astype(np.float64)
    elif kind == "classes":
        z = np.stack([x[:, 0], x[:, 1], -x[:, 0] - x[:, 1]], axis=1)
        y = np.argmax(z + 0.8 * rng.normal(size=(n, CLASSES)), axis=1).astype(np.float64)
    elif kind == "counts":
        y = rng.poisson(np.exp(0.3 + 0.6 * lin)).astype(np.float64)
    elif kind == "tweedie":  # compound Poisson-gamma: many exact zeros, a continuous tail
        counts = rng.poisson(np.exp(0.6 * lin))
        y = np.array([rng.gamma(2.0, 0.5, size=c).sum() for c in counts])
    elif kind == "positive":
        y = rng.gamma(2.0, np.exp(0.5 * lin) / 2.0)
    else:  # pragma: no cover - a test's mistake
        raise AssertionError(kind)
    return x, y, w


def assert_close(a: np.ndarray, b: np.ndarray, rel: float) -> None:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    err = np.abs(a - b) / (1 + np.abs(b))
    assert err.max() <= rel, f"largest difference {err.max():.3g} (allowed {rel:g})"
    assert np.ptp(b) > 0.1  # the models learned something


# --------------------------------------------------------------------------------------------
# XGBoost
# --------------------------------------------------------------------------------------------

# (torchlean loss and its parameters, Hessian policy, XGBoost's built-in objective, data kind,
# weighted): the built-ins this comparison covers
XGB_CASES = [
    ("squared_error", {}, "auto", {"objective": "reg:squarederror"}, "real", True),
    ("logistic", {}, "auto", {"objective": "binary:logistic"}, "binary", True),
    ("softmax", {}, Scaled(2.0), {"objective": "multi:softprob", "num_class": CLASSES},
     "classes", True),
    ("poisson_log", {}, "auto", {"objective": "count:poisson", "max_delta_step": 0.0},
     "counts", False),
    ("tweedie_log", {"power": 1.5}, "auto",
     {"objective": "reg:tweedie", "tweedie_variance_power": 1.5}, "tweedie", False),
    ("gamma_log", {}, "auto", {"objective": "reg:gamma"}, "positive", False),
]
XGB_PARAMS = {"max_depth": 3, "eta": 0.3, "nthread": 1, "verbosity": 0, "tree_method": "hist"}


def _xgb_matrix(xgb: Any, x: np.ndarray, y: np.ndarray, w: np.ndarray | None,
                k: int | None) -> Any:
    margin = np.zeros((len(y), k) if k else len(y))
    return xgb.DMatrix(x, label=y, weight=w, base_margin=margin)


def xgb_pair(name: str, params: dict[str, Any], hessian: Any, builtin: dict[str, Any],
             kind: str, weighted: bool, *, n: int = ROWS, rounds: int = ROUNDS,
             seed: int = 7, extra: dict[str, Any] | None = None) -> tuple[np.ndarray,
                                                                        np.ndarray]:
    xgb = pytest.importorskip("xgboost")
    from torchlean.interop import xgboost as tx

    x, y, w = make_data(kind, n, seed)
    k = builtin.get("num_class")
    d = _xgb_matrix(xgb, x, y, w if weighted else None, k)
    base = {**XGB_PARAMS, **(extra or {})}
    ours = xgb.train({**base, **({"num_class": k} if k else {})}, d, rounds,
                     obj=tx.objective(name, hessian=hessian, **params))
    theirs = xgb.train({**base, **builtin}, d, rounds)
    return (ours.predict(d, output_margin=True), theirs.predict(d, output_margin=True))


@pytest.mark.parametrize(("name", "params", "hessian", "builtin", "kind", "weighted"),
                         XGB_CASES, ids=[c[0] for c in XGB_CASES])
def test_xgboost_matches_its_builtin(name: str, params: dict[str, Any], hessian: Any,
                                     builtin: dict[str, Any], kind: str,
                                     weighted: bool) -> None:
    ours, theirs = xgb_pair(name, params, hessian, builtin, kind, weighted)
    assert_close(ours, theirs, 1e-5)


def test_xgboost_sklearn_objective_with_weights() -> None:
    xgb = pytest.importorskip("xgboost")
    from torchlean.interop import xgboost as tx

    x, y, w = make_data("real")
    kw = {"n_estimators": ROUNDS, "max_depth": 3, "learning_rate": 0.3, "n_jobs": 1,
          "verbosity": 0, "tree_method": "hist", "base_score": 0.0}
    ours = xgb.XGBRegressor(objective=tx.sklearn_objective("squared_error"), **kw)
    theirs = xgb.XGBRegressor(objective="reg:squarederror", **kw)
    ours.fit(x, y, sample_weight=w)
    theirs.fit(x, y, sample_weight=w)
    assert_close(ours.predict(x, output_margin=True), theirs.predict(x, output_margin=True),
                 1e-5)


def test_xgboost_quantile_same_splits_and_coverage() -> None:
    """XGBoost's reg:quantileerror refits each leaf to the alpha-quantile of its residuals; the
    objective's leaves are Newton steps with Hessian 1 (the "auto" policy). The first round's
    splits read the same gradient and Hessian, so the rows fall into the same leaves."""
    xgb = pytest.importorskip("xgboost")
    from torchlean.interop import xgboost as tx

    alpha = 0.3
    x, y, _ = make_data("real")
    d = _xgb_matrix(xgb, x, y, None, None)
    obj = tx.objective("quantile", alpha=alpha)
    builtin = {**XGB_PARAMS, "objective": "reg:quantileerror", "quantile_alpha": alpha}
    first_ours = xgb.train(XGB_PARAMS, d, 1, obj=obj).predict(d, pred_leaf=True)
    first_theirs = xgb.train(builtin, d, 1).predict(d, pred_leaf=True)
    assert _same_partition(first_ours, first_theirs)
    ours = xgb.train({**XGB_PARAMS, "eta": 0.1}, d, 60, obj=obj).predict(d, output_margin=True)
    theirs = xgb.train({**builtin, "eta": 0.1}, d, 60).predict(d, output_margin=True)
    for pred in (ours, theirs):
        assert abs(np.mean(y < pred) - alpha) < 0.1


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two leaf assignments group the rows alike (leaf ids may be numbered apart)."""
    a, b = np.asarray(a).reshape(len(a), -1), np.asarray(b).reshape(len(b), -1)
    pairs = {(tuple(r), tuple(s)) for r, s in zip(a, b, strict=True)}
    return len(pairs) == len({p[0] for p in pairs}) == len({p[1] for p in pairs})


# --------------------------------------------------------------------------------------------
# LightGBM
# --------------------------------------------------------------------------------------------

LGB_CASES = [
    ("squared_error", {}, "auto", {"objective": "regression"}, "real", True),
    ("logistic", {}, "auto", {"objective": "binary"}, "binary", True),
    ("softmax", {}, Scaled("k/(k-1)"), {"objective": "multiclass", "num_class": CLASSES},
     "classes", True),
    ("poisson_log", {}, "auto", {"objective": "poisson", "poisson_max_delta_step": 1e-12},
     "counts", False),
    ("tweedie_log", {"power": 1.5}, "auto",
     {"objective": "tweedie", "tweedie_variance_power": 1.5}, "tweedie", False),
    ("gamma_log", {}, "auto", {"objective": "gamma"}, "positive", False),
]
LGB_PARAMS = {"num_leaves": 7, "learning_rate": 0.3, "min_data_in_leaf": 10, "num_threads": 1,
              "verbosity": -1, "boost_from_average": False, "deterministic": True}


def lgb_pair(name: str, params: dict[str, Any], hessian: Any, builtin: dict[str, Any],
             kind: str, weighted: bool, *, n: int = ROWS, rounds: int = ROUNDS,
             seed: int = 7, extra: dict[str, Any] | None = None) -> tuple[np.ndarray,
                                                                        np.ndarray]:
    lgb = pytest.importorskip("lightgbm")
    from torchlean.interop import lightgbm as tl

    x, y, w = make_data(kind, n, seed)
    k = builtin.get("num_class")
    base = {**LGB_PARAMS, **(extra or {})}

    def fit(p: dict[str, Any]) -> np.ndarray:
        data = lgb.Dataset(x, y, weight=w if weighted else None)
        return lgb.train(p, data, rounds).predict(x, raw_score=True)

    ours = fit({**base, **({"num_class": k} if k else {}),
                "objective": tl.objective(name, hessian=hessian, **params)})
    return ours, fit({**base, **builtin})


@pytest.mark.parametrize(("name", "params", "hessian", "builtin", "kind", "weighted"),
                         LGB_CASES, ids=[c[0] for c in LGB_CASES])
def test_lightgbm_matches_its_builtin(name: str, params: dict[str, Any], hessian: Any,
                                      builtin: dict[str, Any], kind: str,
                                      weighted: bool) -> None:
    ours, theirs = lgb_pair(name, params, hessian, builtin, kind, weighted)
    assert_close(ours, theirs, 1e-6)


def test_lightgbm_sklearn_objective_with_weights() -> None:
    lgb = pytest.importorskip("lightgbm")
    from torchlean.interop import lightgbm as tl

    x, y, w = make_data("classes")
    kw = {"n_estimators": ROUNDS, "num_leaves": 7, "learning_rate": 0.3, "n_jobs": 1,
          "verbose": -1, "min_child_samples": 10, "boost_from_average": False}
    ours = lgb.LGBMClassifier(objective=tl.sklearn_objective("softmax",
                                                             hessian=Scaled("k/(k-1)")), **kw)
    theirs = lgb.LGBMClassifier(objective="multiclass", **kw)
    ours.fit(x, y.astype(int), sample_weight=w)
    theirs.fit(x, y.astype(int), sample_weight=w)
    assert_close(ours.predict(x, raw_score=True), theirs.predict(x, raw_score=True), 1e-6)


def test_lightgbm_quantile_same_splits_and_coverage() -> None:
    """LightGBM's quantile objective refits each leaf to the alpha-quantile of its residuals
    (as XGBoost's)."""
    lgb = pytest.importorskip("lightgbm")
    from torchlean.interop import lightgbm as tl

    alpha = 0.3
    x, y, _ = make_data("real")

    def fit(objective: Any, rounds: int, rate: float) -> Any:
        p = {**LGB_PARAMS, "objective": objective, "alpha": alpha, "learning_rate": rate}
        return lgb.train(p, lgb.Dataset(x, y), rounds)

    obj = tl.objective("quantile", alpha=alpha)
    assert _same_partition(fit(obj, 1, 0.3).predict(x, pred_leaf=True),
                           fit("quantile", 1, 0.3).predict(x, pred_leaf=True))
    for model in (fit(obj, 60, 0.1), fit("quantile", 60, 0.1)):
        assert abs(np.mean(y < model.predict(x, raw_score=True)) - alpha) < 0.1


# --------------------------------------------------------------------------------------------
# CatBoost
# --------------------------------------------------------------------------------------------

CB_CASES = [
    ("squared_error", {}, "auto", "RMSE", "real", True),
    ("logistic", {}, "auto", "Logloss", "binary", True),
    ("softmax", {}, "exact", "MultiClass", "classes", True),
    ("poisson_log", {}, "auto", "Poisson", "counts", False),
    ("tweedie_log", {"power": 1.5}, "auto", "Tweedie:variance_power=1.5", "tweedie", False),
]
CB_PARAMS = {"depth": 3, "learning_rate": 0.3, "thread_count": 1, "verbose": False,
             "allow_writing_files": False, "boost_from_average": False,
             "leaf_estimation_method": "Newton", "leaf_estimation_iterations": 1,
             "bootstrap_type": "No", "random_strength": 0, "random_seed": 0}


def cb_pair(name: str, params: dict[str, Any], hessian: Any, builtin: str, kind: str,
            weighted: bool, *, n: int = ROWS, rounds: int = ROUNDS, seed: int = 7,
            extra: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    cb = pytest.importorskip("catboost")
    from torchlean.interop import catboost as tc

    x, y, w = make_data(kind, n, seed)
    if kind == "classes" and n == ROWS:  # one Python call per sample and round
        x, y, w = x[:120], y[:120], w[:120]
    base = {**CB_PARAMS, "iterations": rounds, **(extra or {})}

    def fit(loss: Any, metric: str) -> np.ndarray:
        model = cb.CatBoost({**base, "loss_function": loss, "eval_metric": metric})
        model.fit(x, y, sample_weight=w if weighted else None)
        return model.predict(x, prediction_type="RawFormulaVal")

    return fit(tc.objective(name, hessian=hessian, **params), builtin), fit(builtin, builtin)


@pytest.mark.parametrize(("name", "params", "hessian", "builtin", "kind", "weighted"),
                         CB_CASES, ids=[c[0] for c in CB_CASES])
def test_catboost_matches_its_builtin(name: str, params: dict[str, Any], hessian: Any,
                                      builtin: str, kind: str, weighted: bool) -> None:
    ours, theirs = cb_pair(name, params, hessian, builtin, kind, weighted)
    assert_close(ours, theirs, 1e-12)


def test_catboost_quantile_gradient_steps() -> None:
    ours, theirs = cb_pair("quantile", {"alpha": 0.3}, "auto", "Quantile:alpha=0.3", "real",
                           True, extra={"leaf_estimation_method": "Gradient"})
    assert_close(ours, theirs, 1e-6)


# --------------------------------------------------------------------------------------------
# Larger sweeps (CI's second tier)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("case", XGB_CASES, ids=[c[0] for c in XGB_CASES])
def test_xgboost_sweep(case: tuple[Any, ...], seed: int) -> None:
    ours, theirs = xgb_pair(*case, n=2000, rounds=40, seed=seed, extra={"max_depth": 5})
    assert_close(ours, theirs, 1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("case", LGB_CASES, ids=[c[0] for c in LGB_CASES])
def test_lightgbm_sweep(case: tuple[Any, ...], seed: int) -> None:
    ours, theirs = lgb_pair(*case, n=2000, rounds=40, seed=seed, extra={"num_leaves": 31})
    assert_close(ours, theirs, 1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("case", CB_CASES, ids=[c[0] for c in CB_CASES])
def test_catboost_sweep(case: tuple[Any, ...], seed: int) -> None:
    ours, theirs = cb_pair(*case, n=600, rounds=30, seed=seed, extra={"depth": 5})
    assert_close(ours, theirs, 1e-11)
