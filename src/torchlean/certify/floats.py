"""Check (d): float64 and float32 results against the 50-digit oracle, in ulps.

Over the edge cases derived from the declaration
(:meth:`~torchlean.certify.plans.Plan.edge_cases`: a point of every zone, points on and next to
every seam, large, huge, tiny and subnormal magnitudes, a NaN), the value and every derivative
element computed by the arrays semantics on NumPy inputs of each dtype are compared with the
same spec evaluated at 50 digits on the same (exactly converted) inputs:

    ulps = |computed - exact| / spacing(exact rounded to the dtype)

A derivative element whose input lies within one ulp of a jump of the derivative (a kink that
the float semantics places one rounding away, such as ``p = fl(1 - eps)``) passes when it
matches the exact derivative at the neighbouring float on either side; such elements are
counted as "beside a jump". NaN against NaN, and an infinity against an exact result that
rounds to it, count 0; anything else against NaN or infinity counts as infinitely many ulps.
A float32 run whose inputs do not fit in float32 (they round to infinity) is left out of the
float32 figures.

Where the exact result is a difference of nearly equal terms (``exp(x) - t`` at
``x = log t``, a softmax matching its target, the cosine derivative of opposite vectors), no
evaluation in working precision can meet a bound relative to the tiny result. Such an element
passes, counted as *conditioned*, when it lies within ``threshold`` ulps of the interval
enclosure (``torchlean.contexts.interval``) of the same spec over the box of inputs moved by one
float64 ulp: its error is then no larger than what a one-ulp change of the inputs causes. The
report shows the forward figure (the largest ulps) and the count of conditioned elements, so
nothing is hidden.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from torchlean.certify.common import Loss, subject
from torchlean.certify.oracle import Oracle, ulps
from torchlean.certify.result import CheckResult, Collector, skipped

__all__ = ["THRESHOLDS", "check_floats"]

#: the pass thresholds in ulps of the output dtype (see docs/certification.md)
THRESHOLDS: dict[str, float] = {"float32": 1.0, "float64": 4.0}


def check_floats(loss: Loss, value_fn: Callable[..., Any] | None = None,
                 deriv_fn: Callable[..., Any] | None = None, *,
                 params: dict[str, Any] | None = None, points: int = 0, seed: int = 0,
                 thresholds: dict[str, float] | None = None,
                 value: bool = True) -> CheckResult:
    """Check (d) for ``loss`` (a declaration or a registered name; or the pair ``value_fn``,
    ``deriv_fn``).

    ``points``: random points (of the declaration's zones) added to the edge-case suite.
    ``value=False`` measures the derivative alone (a second-order row: its value, the first
    derivative, is measured in the loss's own row).
    """
    try:
        oracle = Oracle()
    except ImportError as exc:
        return skipped("floats", f"needs mpmath and torchlean.contexts.precise ({exc})")
    s = subject(loss, value_fn, deriv_fn, params)
    limits = {**THRESHOLDS, **(thresholds or {})}
    rng = np.random.default_rng(seed)
    cases = [(c.label, c.predicted, c.target) for c in s.plan.edge_cases(
        s.params, seed, lambda p, t: s.deriv(p, t, **s.call_params))]
    shape = s.plan.shapes[-1]
    cases += [(f"random ({zone})", p, t) for p, t, zone in
              (s.plan.sample(rng, shape, s.params) for _ in range(points))]
    col = Collector()
    worst: dict[str, dict[str, Any]] = {}
    n_cases = kink_adjacent = conditioned = 0
    for dtype in (np.float64, np.float32):
        key = np.dtype(dtype).name
        worst[key] = {"value": 0.0, "deriv": 0.0, "case": ""}
        for label, p64, t64 in cases:
            with np.errstate(over="ignore"):
                p, t = p64.astype(dtype), t64.astype(dtype)
            if np.any(np.isinf(p) & np.isfinite(p64)) or np.any(np.isinf(t) & np.isfinite(t64)):
                continue
            n_cases += 1
            g = np.asarray(s.deriv(p, t, **s.call_params))
            p_in, t_in = p.astype(np.float64), t.astype(np.float64)
            g_ex = oracle.deriv(s.deriv, p_in, t_in, s.call_params)
            box = _InputUlpBox(s, p_in, t_in)
            u_v = 0.0
            if value:
                v = s.value(p, t, **s.call_params)
                v_ex = oracle.value(s.value, p_in, t_in, s.call_params)
                u_v = ulps(float(v), v_ex, dtype)
                worst[key]["value_forward"] = max(worst[key].get("value_forward", 0.0), u_v)
                if u_v > limits[key] and box.contains("value", (), float(v), dtype,
                                                      limits[key]):
                    conditioned += 1
                    u_v = 0.0
            u_g = 0.0
            for idx in np.ndindex(*g.shape):
                u = ulps(float(g[idx]), g_ex[idx], dtype)
                if u > limits[key] and _beside_jump(oracle, s, p_in, t_in, idx, float(g[idx]),
                                                    dtype, limits[key]):
                    kink_adjacent += 1
                    continue
                if u > limits[key]:
                    worst[key]["deriv_forward"] = max(worst[key].get("deriv_forward", 0.0), u)
                    if box.contains("deriv", idx, float(g[idx]), dtype, limits[key]):
                        conditioned += 1
                        continue
                u_g = max(u_g, u)
            for part, u in (("value", u_v), ("deriv", u_g))[0 if value else 1:]:
                if u > worst[key][part]:
                    worst[key][part] = u
                    worst[key][f"{part}_case"] = label
                if u > limits[key]:
                    col.fail(f"{key} {part}: {label}", ulps=u, threshold=limits[key],
                             predicted=p_in.ravel().tolist(), target=t_in.ravel().tolist())
    f32 = max(worst["float32"]["value"], worst["float32"]["deriv"])
    f64 = max(worst["float64"]["value"], worst["float64"]["deriv"])
    summary = f"f32 {_fmt(f32)}, f64 {_fmt(f64)} ulp"
    if conditioned:
        forward = max(max(w.get("value_forward", 0.0), w.get("deriv_forward", 0.0))
                      for w in worst.values())
        summary += f"; {conditioned} conditioned (forward {_fmt(forward)})"
    return col.result("floats", summary, {"cases": len(cases), "runs": n_cases,
                                          "beside_a_jump": kink_adjacent,
                                          "conditioned": conditioned,
                                          "max_ulps": worst, "thresholds": limits,
                                          "parts": ["value", "deriv"] if value else ["deriv"],
                                          "oracle": oracle.source},
                      examined=n_cases, unit="float runs")


def _beside_jump(oracle: Oracle, s: Any, p: np.ndarray, t: np.ndarray, idx: tuple[int, ...],
                 computed: float, dtype: Any, limit: float) -> bool:
    """True when the derivative jumps within one ulp of ``p[idx]`` and ``computed`` matches the
    exact derivative at a neighbouring float: the input sits on a kink that the float
    semantics places one rounding away (``1 - eps`` is not a float), so either side's value
    is a correct answer."""
    g_here = oracle.deriv(s.deriv, p, t, s.call_params)[idx]
    for direction in (-np.inf, np.inf):
        q = p.copy()
        q[idx] = float(np.nextafter(p[idx].astype(dtype), dtype(direction)))
        g_next = oracle.deriv(s.deriv, q, t, s.call_params)[idx]
        jumps = ulps(float(g_next), g_here, dtype) > limit
        if jumps and ulps(computed, g_next, dtype) <= limit:
            return True
    return False


class _InputUlpBox:
    """Enclosures of the spec's value and derivative over the inputs moved by one float64 ulp
    (each element of ``p`` and ``t`` in ``[prev, next]``), computed on first use."""

    def __init__(self, s: Any, p: np.ndarray, t: np.ndarray) -> None:
        self.s, self.p, self.t = s, p, t
        self._bounds: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}

    def _finite_parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(p, t, ok)``: for an elementwise or slice loss, whose derivative element reads only
        its own element or slice, the inputs with every non-finite element (slice) set to 0, and
        where the original was finite; None for a whole-tensor loss."""
        kind = self.s.decl.kind
        if kind == "whole":
            return None
        ok = np.isfinite(self.p) & np.isfinite(self.t)
        if kind == "slice" and ok.ndim:
            ok = np.broadcast_to(np.all(ok, axis=-1, keepdims=True), ok.shape)
        return np.where(ok, self.p, 0.0), np.where(ok, self.t, 0.0), ok

    def _enclosure(self, part: str) -> tuple[np.ndarray, np.ndarray] | None:
        if part not in self._bounds:
            try:
                from torchlean.contexts import interval
            except ImportError:
                self._bounds[part] = None
                return None
            p, t = self.p, self.t
            if part == "deriv":
                parts = self._finite_parts()
                if parts is not None:
                    p, t, _ = parts
            lo_p, hi_p = np.nextafter(p, -np.inf), np.nextafter(p, np.inf)
            lo_t, hi_t = np.nextafter(t, -np.inf), np.nextafter(t, np.inf)
            fn = self.s.value if part == "value" else self.s.deriv
            out = fn(interval.box(lo_p, hi_p), interval.box(lo_t, hi_t), **self.s.call_params)
            lo, hi = interval.bounds(out)
            self._bounds[part] = (np.asarray(lo, dtype=np.float64),
                                  np.asarray(hi, dtype=np.float64))
        return self._bounds[part]

    def contains(self, part: str, idx: tuple[int, ...], computed: float, dtype: Any,
                 limit: float) -> bool:
        """``computed`` lies within ``limit`` ulps (of ``dtype``) of the enclosure."""
        parts = self._finite_parts() if part == "deriv" else None
        if parts is not None:
            # a derivative element of a finite element (slice) beside a NaN elsewhere
            if not parts[2][idx]:
                return False
        elif not np.all(np.isfinite(self.p)) or not np.all(np.isfinite(self.t)):
            return False
        enc = self._enclosure(part)
        if enc is None or not math.isfinite(computed):
            return False
        lo, hi = float(enc[0][idx]), float(enc[1][idx])
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return False
        slack_lo = limit * float(np.spacing(np.abs(np.asarray(lo, dtype=dtype))))
        slack_hi = limit * float(np.spacing(np.abs(np.asarray(hi, dtype=dtype))))
        return lo - slack_lo <= computed <= hi + slack_hi


def _fmt(u: float) -> str:
    if math.isinf(u):
        return "inf"
    return f"{u:.2g}" if u < 100 else f"{u:.2e}"
