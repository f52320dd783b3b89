"""docs/figures/boosting.png and the agreement table of docs/gradient-boosting.md.

Run from the repository root: ``python docs/figures/boosting.py``. It trains each library with
the torchlean objective and with its built-in objective on the data sets and parameters of
tests/test_boosting_training.py, prints the largest difference of the raw scores (the table of
the document) and draws each model's training loss per round.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

import test_boosting_training as side  # noqa: E402

import torchlean  # noqa: E402

CURVE_ROUNDS = 30
#: the losses drawn (each library's case list gives the built-in objective)
DRAWN = ("squared_error", "logistic", "softmax", "poisson_log", "tweedie_log")


def per_sample_loss(name: str, params: dict[str, Any], scores: np.ndarray,
                    y: np.ndarray) -> float:
    """The mean per-sample loss, from the declaration's value (a sum over samples)."""
    decl = torchlean.get_loss(name)
    target = np.eye(scores.shape[1])[y.astype(int)] if decl.kind == "slice" else y
    return float(decl.value(scores, target, **params)) / len(y)


def agreement() -> list[tuple[str, str, float]]:
    rows = []
    for case in side.XGB_CASES:
        a, b = side.xgb_pair(*case)
        rows.append(("XGBoost", case[0], float(np.max(np.abs(a - b)))))
    for case in side.LGB_CASES:
        a, b = side.lgb_pair(*case)
        rows.append(("LightGBM", case[0], float(np.max(np.abs(a - b)))))
    for case in side.CB_CASES:
        a, b = side.cb_pair(*case)
        rows.append(("CatBoost", case[0], float(np.max(np.abs(a - b)))))
    a, b = side.cb_pair("quantile", {"alpha": 0.3}, "auto", "Quantile:alpha=0.3", "real", True,
                        extra={"leaf_estimation_method": "Gradient"})
    rows.append(("CatBoost", "quantile (Gradient leaves)", float(np.max(np.abs(a - b)))))
    return rows


def xgb_curves(case: tuple[Any, ...]) -> tuple[list[float], list[float]]:
    import xgboost as xgb

    from torchlean.interop import xgboost as tx

    name, params, hessian, builtin, kind, weighted = case
    x, y, w = side.make_data(kind)
    k = builtin.get("num_class")
    d = xgb.DMatrix(x, label=y, weight=w if weighted else None,
                    base_margin=np.zeros((len(y), k) if k else len(y)))
    ours = xgb.train({**side.XGB_PARAMS, **({"num_class": k} if k else {})}, d, CURVE_ROUNDS,
                     obj=tx.objective(name, hessian=hessian, **params))
    theirs = xgb.train({**side.XGB_PARAMS, **builtin}, d, CURVE_ROUNDS)
    return tuple(  # type: ignore[return-value]
        [per_sample_loss(name, params, _cols(m.predict(d, output_margin=True,
                                                       iteration_range=(0, i)), k)
                         if i else np.zeros((len(y), k) if k else len(y)), y)
         for i in range(CURVE_ROUNDS + 1)] for m in (ours, theirs))


def lgb_curves(case: tuple[Any, ...]) -> tuple[list[float], list[float]]:
    import lightgbm as lgb

    from torchlean.interop import lightgbm as tl

    name, params, hessian, builtin, kind, weighted = case
    x, y, w = side.make_data(kind)
    k = builtin.get("num_class")

    def fit(p: dict[str, Any]) -> Any:
        return lgb.train(p, lgb.Dataset(x, y, weight=w if weighted else None), CURVE_ROUNDS)

    ours = fit({**side.LGB_PARAMS, **({"num_class": k} if k else {}),
                "objective": tl.objective(name, hessian=hessian, **params)})
    theirs = fit({**side.LGB_PARAMS, **builtin})
    return tuple(  # type: ignore[return-value]
        [per_sample_loss(name, params, _cols(m.predict(x, raw_score=True, num_iteration=i), k)
                         if i else np.zeros((len(y), k) if k else len(y)), y)
         for i in range(CURVE_ROUNDS + 1)] for m in (ours, theirs))


def cb_curves(case: tuple[Any, ...]) -> tuple[list[float], list[float]]:
    import catboost as cb

    from torchlean.interop import catboost as tc

    name, params, hessian, builtin, kind, weighted = case
    x, y, w = side.make_data(kind)
    if kind == "classes":
        x, y, w = x[:120], y[:120], w[:120]
    k = 3 if kind == "classes" else None

    def fit(loss: Any) -> Any:
        m = cb.CatBoost({**side.CB_PARAMS, "iterations": CURVE_ROUNDS, "loss_function": loss,
                         "eval_metric": builtin})
        return m.fit(x, y, sample_weight=w if weighted else None)

    return tuple(  # type: ignore[return-value]
        [per_sample_loss(name, params, np.zeros((len(y), k) if k else len(y)), y)]
        + [per_sample_loss(name, params, _cols(s, k), y)
           for s in m.staged_predict(x, prediction_type="RawFormulaVal")]
        for m in (fit(tc.objective(name, hessian=hessian, **params)), fit(builtin)))


def _cols(s: np.ndarray, k: int | None) -> np.ndarray:
    s = np.asarray(s, dtype=np.float64)
    return s.reshape(len(s), k) if k else s.reshape(-1)


def draw(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("XGBoost", side.XGB_CASES, xgb_curves), ("LightGBM", side.LGB_CASES, lgb_curves),
              ("CatBoost", side.CB_CASES, cb_curves)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), sharey=True)
    colors = dict(zip(DRAWN, ("C0", "C1", "C2", "C3", "C4"), strict=True))
    for ax, (title, cases, curves) in zip(axes, panels, strict=True):
        for case in cases:
            if case[0] not in DRAWN:
                continue
            ours, theirs = curves(case)
            start = ours.pop(0)
            theirs.pop(0)
            r = np.arange(1, CURVE_ROUNDS + 1)
            ax.plot(r, np.array(theirs) / start, color=colors[case[0]], lw=2, alpha=0.6,
                    label=f"{case[0]}: built-in")
            ax.plot(r, np.array(ours) / start, "o", color=colors[case[0]], ms=3.5, mfc="none",
                    label=f"{case[0]}: torchlean")
        ax.set_title(title)
        ax.set_xlabel("boosting round")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("training loss / loss at raw score 0")
    axes[0].set_yscale("log")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.suptitle("Built-in objective (line) and torchlean objective (circles), same data, "
                 "rounds and parameters", fontsize=11)
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    print("| library | loss | largest difference of the raw scores |")
    print("|---|---|---|")
    for lib, loss, diff in agreement():
        print(f"| {lib} | `{loss}` | {diff:.1e} |")
    out = ROOT / "docs" / "figures" / "boosting.png"
    draw(out)
    print(f"wrote {out.relative_to(ROOT)}")
