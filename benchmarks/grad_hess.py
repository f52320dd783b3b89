"""Per-sample gradient and Hessian at 10**6 samples: ``torchlean.grad_hess`` against the same
objective written with NumPy ufuncs, and against one boosting round of XGBoost and LightGBM, in
one run. Run from the repository root:

    python benchmarks/grad_hess.py          # writes benchmarks/results/grad_hess.md

Losses: every declaration naming a per-sample kernel (``grad_hess_kernel``), with its default
parameters, on inputs drawn from its zones (labels where it takes only labels); a slice loss
(softmax) gets 10**6 rows of ``K`` classes. Columns, each the minimum over ``REPEATS`` runs of
``time.perf_counter`` (more while they take under ``BUDGET`` seconds):

- ``grad_hess``: the fused NumPy path (the default);
- ``spec``: the same call with the kernels off (``torchlean.kernels.disabled()``): the
  declaration's terms evaluated with NumPy ufuncs, with their cancellation-free forms;
- ``hand``: the objective as a user writes it with NumPy ufuncs, in the input dtype (below,
  :data:`HAND`; each is checked against ``grad_hess`` before it is timed);
- ``xgboost``, ``lightgbm``: the library's own work for one boosting round on 10**6 x 10
  features, with its built-in objective of the loss's kind (regression for a per-element loss,
  multi-class with ``K`` classes for a per-row one): the smallest of the times between
  consecutive rounds (a training callback's timestamps), the smallest, the first round
  (setup) left out.

The ratios matter, not the absolute times: the machine is shared.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import torchlean
from torchlean import kernels

OUT = Path(__file__).resolve().parent / "results" / "grad_hess.md"

N = 10**6
K = 5  # classes of a per-row loss
FEATURES = 10
REPEATS = 5
BUDGET = 0.5  # seconds of repeats per timing beyond the first REPEATS
ROUNDS = 8
PASSES = 2  # the whole measurement repeated, each figure the smallest of the passes
DTYPES = ("float32", "float64")


# ------------------------------------------------------------------------------------------
# The objectives as a user writes them with NumPy ufuncs (the obvious formulas, in the input
# dtype). They restate the declarations' formulas, so `check_hand` holds each to grad_hess.
# ------------------------------------------------------------------------------------------


def _sigmoid(s: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-s))


def _hand_softmax(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    e = np.exp(s - s.max(axis=1, keepdims=True))
    sm = e / e.sum(axis=1, keepdims=True)
    g = sm.copy()
    g[np.arange(len(y)), y] -= 1
    return g, sm * (1 - sm)


def _hand_focal(s: np.ndarray, y: np.ndarray, gamma: float,
                alpha: float) -> tuple[np.ndarray, np.ndarray]:
    sg = 2 * y - 1
    m = sg * s
    r, q = _sigmoid(m), _sigmoid(-m)
    lg = np.logaddexp(0, -m)
    at = alpha * y + (1 - alpha) * (1 - y)
    qg = q**gamma
    g = -sg * at * qg * (gamma * r * lg + q)
    h = at * qg * r * (gamma * lg * (gamma * r - q) + q * (2 * gamma + 1))
    return g, h


def _hand_pseudo_huber(p: np.ndarray, y: np.ndarray,
                       delta: float) -> tuple[np.ndarray, np.ndarray]:
    d = p - y
    r = 1 + (d / delta) ** 2
    sr = np.sqrt(r)
    return d / sr, 1 / (r * sr)


def _hand_tweedie(s: np.ndarray, y: np.ndarray, power: float) -> tuple[np.ndarray, np.ndarray]:
    a = y * np.exp((1 - power) * s)
    b = np.exp((2 - power) * s)
    return b - a, (power - 1) * a + (2 - power) * b


def _exp_minus(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    e = np.exp(s)
    return e - y, e


def _gamma(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    e = y * np.exp(-s)
    return 1 - e, e


def _logistic(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = _sigmoid(s)
    return p - y, p * (1 - p)


def _quantile(p: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    d = y - p
    return np.where(d > 0, -alpha, np.where(d < 0, 1 - alpha, 0)).astype(p.dtype), \
        np.zeros_like(p)


def _squared(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return p - y, np.ones_like(p)


#: the user's version of each objective, by the name of the loss it restates
HAND: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "squared_error": _squared, "logistic": _logistic, "quantile": _quantile,
    "poisson_log": _exp_minus, "gamma_log": _gamma, "tweedie_log": _hand_tweedie,
    "binary_focal": _hand_focal, "pseudo_huber": _hand_pseudo_huber, "softmax": _hand_softmax,
}


# ------------------------------------------------------------------------------------------
# Inputs from the declarations
# ------------------------------------------------------------------------------------------


def names() -> list[str]:
    return [n for n, d in torchlean.LOSSES.items() if d.grad_hess_kernel is not None]


def inputs(name: str, dtype: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores and targets: elementwise from the zones (a zone drawn per sample); a slice
    loss (N, K) scores and integer class ids."""
    decl = torchlean.LOSSES[name]
    if decl.kind == "slice":
        return rng.normal(size=(N, K)).astype(dtype), rng.integers(0, K, size=N)
    draws = [z.sample(rng, (N,), decl.params) for z in decl.region_zones()]
    pick = rng.integers(len(draws), size=N)
    p = np.choose(pick, [np.asarray(d[0], dtype=np.float64) for d in draws])
    t = np.choose(pick, [np.asarray(d[1], dtype=np.float64) for d in draws])
    if decl.domain.only_labels:
        t = rng.choice(np.asarray(decl.domain.labels, dtype=np.float64), size=N)
    return p.astype(dtype), t.astype(dtype)


def best(fn: Callable[[], Any]) -> float:
    """The minimum time of ``REPEATS`` runs, or of as many more as fit in ``BUDGET`` seconds
    (a busy machine delays single runs; the minimum is the run nothing delayed)."""
    fn()  # warm: compilation, page faults
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < REPEATS or (time.perf_counter() - start < BUDGET
                                   and len(times) < 10 * REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def check_hand(name: str, got: tuple[np.ndarray, np.ndarray],
               ref: tuple[np.ndarray, np.ndarray]) -> None:
    """The user's formulas agree with grad_hess (float64, away from overflow): the timed
    baseline computes the same objective."""
    for a, b in zip(got, ref, strict=True):
        ok = np.isclose(a, b, rtol=1e-9, atol=1e-12) | ~np.isfinite(b)
        if not np.all(ok):
            i = int(np.argmax(~ok))
            raise AssertionError(f"the hand-written {name} differs from grad_hess: "
                                 f"{a.reshape(-1)[i]!r} vs {b.reshape(-1)[i]!r}")


def time_one(name: str, p: np.ndarray, t: np.ndarray) -> tuple[float, float, float | None]:
    """(grad_hess, spec, hand-written) seconds for one loss and one input."""
    prm = dict(torchlean.LOSSES[name].params)
    hand = HAND.get(name)
    fast = best(lambda: torchlean.grad_hess(name, p, t))

    def spec() -> Any:
        with kernels.disabled():
            return torchlean.grad_hess(name, p, t)

    slow = best(spec)
    if hand is None:
        return fast, slow, None
    with np.errstate(all="ignore"):
        if p.dtype == np.float64:
            check_hand(name, hand(p, t, **prm), torchlean.grad_hess(name, p, t))
        return fast, slow, best(lambda: hand(p, t, **prm))


def time_losses() -> dict[tuple[str, str], tuple[float, float, float | None]]:
    rng = np.random.default_rng(0)
    out: dict[tuple[str, str], tuple[float, float, float | None]] = {}
    for name in names():
        for dtype in DTYPES:
            fast, slow, hand = out[(name, dtype)] = time_one(name, *inputs(name, dtype, rng))
            print(f"{name:14s} {dtype}: grad_hess {fast * 1e3:7.2f} ms, spec {slow * 1e3:7.2f}"
                  f" ms, hand {'-' if hand is None else f'{hand * 1e3:7.2f}'} ms", flush=True)
    return out


# ------------------------------------------------------------------------------------------
# One boosting round of each library
# ------------------------------------------------------------------------------------------


def _per_round(stamps: list[float], start: float) -> float:
    gaps = np.diff([start, *stamps])[1:]  # the first round includes the library's setup
    return float(min(gaps))


def library_rounds() -> dict[tuple[str, str], float]:
    """Seconds per boosting round, by (library, kind of loss)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N, FEATURES)).astype(np.float32)
    y_reg = (x[:, 0] + 0.5 * rng.normal(size=N)).astype(np.float32)
    y_cls = rng.integers(0, K, size=N).astype(np.float32)
    threads = os.cpu_count() or 1
    out: dict[tuple[str, str], float] = {}
    try:
        import xgboost as xgb
    except ImportError:
        xgb = None
    if xgb is not None:
        class Stamps(xgb.callback.TrainingCallback):
            def __init__(self) -> None:
                self.t: list[float] = []

            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                self.t.append(time.perf_counter())
                return False

        for kind, y, params in (
                ("elementwise", y_reg, {"objective": "reg:squarederror"}),
                ("slice", y_cls, {"objective": "multi:softprob", "num_class": K})):
            dm = xgb.DMatrix(x, label=y, nthread=threads)
            cb = Stamps()
            t0 = time.perf_counter()
            xgb.train({"tree_method": "hist", "nthread": threads, **params}, dm,
                      num_boost_round=ROUNDS, callbacks=[cb])
            out[("XGBoost", kind)] = _per_round(cb.t, t0)
            print(f"XGBoost {kind}: {out[('XGBoost', kind)] * 1e3:.1f} ms per round", flush=True)
    try:
        import lightgbm as lgb
    except ImportError:
        lgb = None
    if lgb is not None:
        for kind, y, params in (("elementwise", y_reg, {"objective": "regression"}),
                                ("slice", y_cls, {"objective": "multiclass", "num_class": K})):
            ds = lgb.Dataset(x, label=y, free_raw_data=False,
                             params={"verbose": -1}).construct()
            stamps: list[float] = []
            t0 = time.perf_counter()
            lgb.train({"verbose": -1, "num_threads": threads, **params}, ds,
                      num_boost_round=ROUNDS,
                      callbacks=[lambda env, s=stamps: s.append(time.perf_counter())])
            out[("LightGBM", kind)] = _per_round(stamps, t0)
            print(f"LightGBM {kind}: {out[('LightGBM', kind)] * 1e3:.1f} ms per round",
                  flush=True)
    return out


# ------------------------------------------------------------------------------------------
# The results file
# ------------------------------------------------------------------------------------------


def _ms(x: float | None) -> str:
    return "—" if x is None else f"{x * 1e3:.1f}"


def _ratio(a: float | None, b: float) -> str:
    return "—" if a is None else f"{a / b:.1f}×"


def write(losses: dict[tuple[str, str], tuple[float, float, float | None]],
          rounds: dict[tuple[str, str], float], elapsed: float) -> str:
    libs = sorted({lib for lib, _ in rounds})
    head = ["loss", "dtype", "grad_hess ms", "hand NumPy ms", "spec NumPy ms",
            "hand / grad_hess", "spec / grad_hess",
            *[f"{lib} round / grad_hess" for lib in libs]]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (name, dtype), (fast, slow, hand) in losses.items():
        kind = torchlean.LOSSES[name].kind
        shape = f"{N:,} × {K}" if kind == "slice" else f"{N:,}"
        libcols = [_ratio(rounds.get((lib, kind)), fast) for lib in libs]
        rows.append(f"| {name} ({shape}) | {dtype} | {_ms(fast)} | {_ms(hand)} | {_ms(slow)} | "
                    f"{_ratio(hand, fast)} | {_ratio(slow, fast)} | " + " | ".join(libcols) + " |")
    lib_rows = ["| library | kind of loss | objective | ms per round |", "|---|---|---|---|"]
    objective = {("XGBoost", "elementwise"): "reg:squarederror",
                 ("XGBoost", "slice"): f"multi:softprob, {K} classes",
                 ("LightGBM", "elementwise"): "regression",
                 ("LightGBM", "slice"): f"multiclass, {K} classes"}
    for (lib, kind), sec in rounds.items():
        lib_rows.append(f"| {lib} | {kind} | {objective[(lib, kind)]} | {_ms(sec)} |")
    versions = [f"Python {platform.python_version()}", f"NumPy {np.__version__}"]
    for mod in ("numba", "xgboost", "lightgbm"):
        with contextlib.suppress(ImportError):
            versions.append(f"{mod} {__import__(mod).__version__}")
    return f"""# Per-sample gradient and Hessian: `torchlean.grad_hess` at {N:,} samples

Generated by `python benchmarks/grad_hess.py` ({elapsed:.0f} s, one run, {os.cpu_count()} CPU
cores, {", ".join(versions)}). Times are the minimum of at least {REPEATS} repeats
(`time.perf_counter`), the whole measurement made {PASSES} times in turn and each figure the
smallest of them; read the ratios, not the absolute times (a shared machine, where a busy
spell stalls a 2-thread pool for a whole time slice: single figures of 20-25 ms are that).

- **grad_hess**: `torchlean.grad_hess(name, predicted, target)` with its defaults: the fused
  NumPy path (one compiled pass over the samples, the declaration's per-sample kernel).
- **hand NumPy**: the same objective written the obvious way with NumPy ufuncs, in the input
  dtype (`HAND` in the script: `sigmoid(s) - y`, `exp(s) - y`, ...; each checked against
  `grad_hess` in float64 before it is timed). It computes float32 in float32, while `grad_hess`
  computes every sample in float64 and rounds once.
- **spec NumPy**: `grad_hess` with the kernels off: the declaration's terms through the NumPy
  arrays context, in float64 with their cancellation-free forms (what runs without numba).
- **library round**: one boosting round of the library on {N:,} × {FEATURES} float32 features,
  `tree_method="hist"` for XGBoost, defaults otherwise, all cores, with its built-in objective
  of the loss's kind. A round's time is the smallest gap between consecutive rounds' callback
  timestamps over {ROUNDS} rounds, the first (setup, binning) left out. A custom objective adds
  its `grad_hess` time to that round; "round / grad_hess" says how many times over the objective
  fits in one round.

{chr(10).join(rows)}

Library rounds:

{chr(10).join(lib_rows)}
"""


def _least(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else min(a, b)


def main() -> None:
    if not kernels.available():
        sys.exit("numba is not installed: grad_hess has no fused path here")
    start = time.perf_counter()
    # Each measurement twice, in two passes over everything, the smaller kept: a busy spell of
    # the machine (another job taking a core stalls a thread pool for a whole time slice) then
    # spoils one pass of a cell, not the figure.
    losses, rounds = time_losses(), library_rounds()
    for _ in range(PASSES - 1):
        more_losses, more_rounds = time_losses(), library_rounds()
        losses = {k: tuple(_least(a, b) for a, b in zip(v, more_losses[k], strict=True))
                  for k, v in losses.items()}  # type: ignore[misc]
        rounds = {k: min(v, more_rounds[k]) for k, v in rounds.items()}
    text = write(losses, rounds, time.perf_counter() - start)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
