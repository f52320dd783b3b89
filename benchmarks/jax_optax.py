"""The optax-compatible losses against optax's own, jit-compiled ``jax.value_and_grad`` of the
summed per-example loss, float32, 10**6 elements (10**5 x 10 for the per-example reductions
along the last axis). Run from the repository root:

    python benchmarks/jax_optax.py          # writes benchmarks/results/jax_optax.md

Each figure is the minimum over ``REPEATS`` calls (more while they take under ``BUDGET``
seconds) after a warm-up call that compiles; ``ours / optax`` is the ratio of the minima, and
the target is 1.2 at most. ``PASSES`` whole passes, each figure the smallest of the passes (the
machine is shared: the ratios matter, not the absolute times).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import jax.numpy as jnp
import numpy as np
import optax

from torchlean.interop import optax as ours

OUT = Path(__file__).resolve().parent / "results" / "jax_optax.md"

N = 10**6
ROWS, K = 10**5, 10
REPEATS = 10
BUDGET = 1.0
PASSES = 2
TARGET = 1.2


def _inputs(kind: str, rng: np.random.Generator) -> tuple[Any, Any]:
    """``(predicted, target)`` float32 in the input convention of optax's functions: ``kind``
    names the target's (real values, labels 0/1, signs, class probabilities, class ids,
    log-probabilities)."""
    shape = (ROWS, K)
    p = rng.normal(size=shape).astype(np.float32)
    if kind == "real":
        t = rng.normal(size=shape)
    elif kind == "labels":
        t = rng.integers(0, 2, size=shape)
    elif kind == "signs":
        t = 2.0 * rng.integers(0, 2, size=shape) - 1
    elif kind == "probabilities":
        t = np.asarray(jax.nn.softmax(rng.normal(size=shape), axis=-1))
    elif kind == "ids":
        return jnp.asarray(p), jnp.asarray(rng.integers(0, K, size=ROWS), jnp.int32)
    elif kind == "log_probabilities":
        p = np.asarray(jax.nn.log_softmax(p, axis=-1))
        t = np.asarray(jax.nn.log_softmax(rng.normal(size=shape), axis=-1))
    else:  # pragma: no cover
        raise ValueError(kind)
    return jnp.asarray(p, jnp.float32), jnp.asarray(t, jnp.float32)


#: (function name, target convention, keyword arguments); the names are optax's
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("l2_loss", "real", {}),
    ("squared_error", "real", {}),
    ("huber_loss", "real", {"delta": 1.0}),
    ("log_cosh", "real", {}),
    ("hinge_loss", "signs", {}),
    ("sigmoid_binary_cross_entropy", "labels", {}),
    ("sigmoid_focal_loss", "labels", {}),
    ("sigmoid_focal_loss", "labels", {"alpha": 0.25}),
    ("cosine_similarity", "real", {}),
    ("cosine_distance", "real", {}),
    ("softmax_cross_entropy", "probabilities", {}),
    ("softmax_cross_entropy_with_integer_labels", "ids", {}),
    ("safe_softmax_cross_entropy", "probabilities", {}),
    ("poly_loss_cross_entropy", "probabilities", {}),
    ("kl_divergence", "probabilities", {}),
    ("kl_divergence_with_log_targets", "log_probabilities", {}),
]


def _compiled(f: Callable[..., Any], kw: dict[str, Any]) -> Callable[[Any, Any], Any]:
    return jax.jit(jax.value_and_grad(lambda p, t: jnp.sum(f(p, t, **kw))))


def _time(fn: Callable[[Any, Any], Any], p: Any, t: Any) -> float:
    jax.block_until_ready(fn(p, t))  # compile
    best, spent, n = float("inf"), 0.0, 0
    while n < REPEATS or spent < BUDGET:
        t0 = time.perf_counter()
        jax.block_until_ready(fn(p, t))
        dt = time.perf_counter() - t0
        best, spent, n = min(best, dt), spent + dt, n + 1
        if n >= 200:
            break
    return best


def run() -> list[tuple[str, str, float, float, str]]:
    rng = np.random.default_rng(0)
    rows: dict[tuple[str, str], list[float]] = {}
    notes: dict[tuple[str, str], str] = {}
    inputs = {kind: _inputs(kind, rng) for kind in {c[1] for c in CASES}}
    for _ in range(PASSES):
        for name, kind, kw in CASES:
            label = name + (f"({', '.join(f'{k}={v}' for k, v in kw.items())})" if kw else "")
            p, t = inputs[kind]
            mine = _compiled(getattr(ours, name), kw)
            theirs = _compiled(getattr(optax.losses, name), kw)
            try:
                a = _time(mine, p, t)
            except Exception as exc:  # a declaration not registered: say so in the table
                notes[(label, kind)] = f"{type(exc).__name__}: {exc}".splitlines()[0][:90]
                a = float("nan")
            b = _time(theirs, p, t)
            prev = rows.get((label, kind), [float("inf"), float("inf")])
            rows[(label, kind)] = [min(prev[0], a) if a == a else a, min(prev[1], b)]
    return [(label, kind, a, b, notes.get((label, kind), "")) for (label, kind), (a, b)
            in rows.items()]


def report(rows: list[tuple[str, str, float, float, str]]) -> str:
    lines = [
        "# optax-compatible losses: jit(value_and_grad) against optax",
        "",
        f"`python benchmarks/jax_optax.py`; jax {jax.__version__}, optax {optax.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; float32, "
        f"{ROWS} x {K} = {N} elements (per-example losses over the last axis: {ROWS} examples); "
        f"minimum of at least {REPEATS} calls after the compiling one, smallest of {PASSES} "
        f"passes. Target: ours / optax <= {TARGET}.",
        "",
        "| function | target | ours (ms) | optax (ms) | ours / optax |",
        "|---|---|---:|---:|---:|",
    ]
    for label, kind, a, b, note in rows:
        ratio = a / b
        flag = "" if ratio <= TARGET else " (over)"
        cell = f"{a * 1e3:.2f}" if a == a else f"- ({note})"
        lines.append(f"| `{label}` | {kind} | {cell} | {b * 1e3:.2f} | {ratio:.2f}{flag} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    text = report(run())
    print(text)
    if "--no-write" not in sys.argv:
        OUT.write_text(text)


if __name__ == "__main__":
    main()
