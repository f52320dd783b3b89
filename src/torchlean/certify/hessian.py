"""The second-order rows' own check: the declared sign of the Hessian, and (slice losses) the
Hessian-vector product against the derivative for every direction.

- **Sign.** ``hessian_sign="positive"``: the second derivative (a slice loss: its diagonal) is
  ``> 0`` at 50 digits, where nothing underflows, and ``>= 0`` in float64 (where it may
  underflow to 0); a 50-digit 0 at a float point passes when the arb enclosure there reaches
  above 0 (the oracle forms ``1 - softmax`` of extreme logits as ``1 + r - 1``, which rounds
  ``r = exp(-1e17)`` away; the enclosure keeps it), counted as ``rounded_to_zero``.
  ``"nonnegative"``: ``>= 0`` in both; ``"zero"``: exactly 0 in both; ``"any"`` claims
  nothing. Looked at over points of every
  zone, the seam points (where the declared choice is what counts) and the float edge cases
  (huge and tiny magnitudes, where a rounded ``1 - s`` could go negative). NaN and infinities
  are left out.
- **Slice losses.** The second-order declaration (:mod:`torchlean.certify.second`) holds
  ``hvp(p, t, t)`` to the derivative; here, at points of every zone and at 50 digits, each
  column of the Hessian, ``hvp(p, t, e_j)``, must equal the central difference quotient of the
  declared derivative along ``e_j`` (off-slice entries included: they must be 0), the declared
  diagonal its ``j``-th entry, and ``hvp(p, t, v)`` for a random ``v`` the combination
  ``sum_j v_j hvp(p, t, e_j)`` (a term that reads ``t`` where it should read ``v`` fails).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from torchlean.certify.common import Loss, subject
from torchlean.certify.oracle import Oracle
from torchlean.certify.result import CheckResult, Collector, skipped

__all__ = ["REL_TOL", "check_hessian"]

#: relative tolerance of the 50-digit comparisons (the difference quotient's error is about
#: ``h**2 |g'''|`` with ``h = 1e-20``; a wrong formula is off by far more)
REL_TOL = 1e-12


def check_hessian(loss: Loss, value_fn: Callable[..., Any] | None = None,
                  deriv_fn: Callable[..., Any] | None = None, *,
                  params: dict[str, Any] | None = None, points: int = 8,
                  seed: int = 0) -> CheckResult:
    """The sign claim of ``loss`` (a declaration or a registered name), and for a slice loss
    its Hessian-vector product and diagonal against its derivative.

    ``points``: points per zone for the sign (a quarter as many, at least one, for the slice
    comparison). SKIP for an elementwise loss that claims no sign; ``value_fn`` and
    ``deriv_fn`` are not used (the terms are the declaration's).
    """
    try:
        oracle = Oracle()
    except ImportError as exc:  # pragma: no cover - the certify extra is missing
        return skipped("hessian", f"needs mpmath and torchlean.contexts.precise ({exc})")
    s = subject(loss, params=params)
    decl = s.decl
    if not decl.has_second:
        return skipped("hessian", "the loss declares no second derivative")
    sign = decl.hessian_sign
    if sign == "any" and decl.kind != "slice":
        return skipped("hessian", "no sign claimed (hessian_sign 'any')")
    rng = np.random.default_rng(seed)
    col = Collector()
    figures: dict[str, Any] = {"hessian_sign": sign}
    parts = []
    if sign != "any":
        n = _sign(s, oracle, rng, points, col, figures)
        figures["sign_elements"] = n
        parts.append(f"{sign} at {n} elts")
    else:
        n = 0
    if decl.kind == "slice":
        cols, diag, combos = _slice(s, oracle, rng, max(1, points // 4), col)
        figures.update(columns=cols, diagonal=diag, combinations=combos)
        parts.append(f"{cols} cols, {diag} diag, {combos} H v")
        n += cols + diag + combos
    return col.result("hessian", "; ".join(parts), figures, examined=n, unit="elements")


def _sign(s: Any, oracle: Oracle, rng: np.random.Generator, points: int,
          col: Collector, figures: dict[str, Any]) -> int:
    decl, sign = s.decl, s.decl.hessian_sign
    shape = s.plan.shapes[-1]
    floats = [(p, t, f"zone {z}") for p, t, z in s.plan.region_points(rng, shape, s.params,
                                                                       points)]
    floats += [(c.predicted, c.target, c.label) for c in s.plan.edge_cases(s.params)]
    exact: list[tuple[Any, Any, str, bool]] = [(p, t, label, True) for p, t, label in floats]
    with oracle.digits():
        exact += [(k.predicted, k.target, k.label, False)
                  for k in s.plan.kinks(rng, shape, s.params, oracle, ordinary=0)]
    n = 0
    rounded = [0]
    for p, t, label, at_floats in exact:
        h = oracle.deriv(decl.second, p, t, s.call_params)
        with oracle.digits():
            zeros = [idx for idx, x in np.ndenumerate(h) if x == 0]
        upper = (_upper_bounds(s, p, t) if sign == "positive" and zeros and at_floats
                 else None)
        with oracle.digits():
            for idx, x in np.ndenumerate(h):
                if not _finite(x):
                    continue
                n += 1
                if x == 0 and upper is not None and upper[idx] > 0:
                    rounded[0] += 1  # 1 + r - 1 at 50 digits; the enclosure keeps it positive
                    continue
                if x < 0 or (sign == "positive" and x == 0) or (sign == "zero" and x != 0):
                    col.fail(f"{label}: second derivative {idx} is {float(x):.6g} at 50 digits, "
                             f"declared {sign}", predicted=_list(p), target=_list(t),
                             exact=float(x))
    figures["rounded_to_zero"] = rounded[0]
    for p, t, label in floats:
        with np.errstate(all="ignore"):
            h64 = np.asarray(decl.second(np.asarray(p, dtype=np.float64),
                                         np.asarray(t, dtype=np.float64), **s.call_params))
        for idx, x in np.ndenumerate(h64):
            if math.isfinite(x):
                n += 1
                if x < 0 or (sign == "zero" and x != 0):
                    col.fail(f"{label}: float64 second derivative {idx} is {x:.6g}, declared "
                             f"{sign}", predicted=_list(p), target=_list(t), computed=float(x))
    return n


def _slice(s: Any, oracle: Oracle, rng: np.random.Generator, per_zone: int,
           col: Collector) -> tuple[int, int, int]:
    decl = s.decl
    shape = s.plan.shapes[-1]
    n_cols = n_diag = n_combos = 0
    for p0, t0, zone in s.plan.region_points(rng, shape, s.params, per_zone):
        p, t = _mp(oracle, p0), _mp(oracle, t0)
        where = {"predicted": _list(p0), "target": _list(t0)}

        diag = oracle.deriv(decl.second, p, t, s.call_params)
        columns = []
        for j, idx in enumerate(np.ndindex(*shape)):
            e = np.zeros(shape)
            e[idx] = 1.0
            column = _hvp(oracle, s, p, t, e)
            columns.append(column)
            with oracle.digits():
                h = oracle.mpf("1e-20") * max(abs(p[idx]), oracle.mpf("1e-3"))
                up, down = p.copy(), p.copy()
                up[idx], down[idx] = p[idx] + h, p[idx] - h
            g_up = oracle.deriv(decl.deriv, up, t, s.call_params)
            g_down = oracle.deriv(decl.deriv, down, t, s.call_params)
            with oracle.digits():
                fd = (g_up - g_down) / (2 * h)
                scale = max(*(abs(x) for x in column.flat), *(abs(x) for x in fd.flat),
                            oracle.mpf("1e-300"))
                slack = oracle.mpf("1e-25") * max(abs(x) for x in g_up.flat)
                off = max(abs(a - b) for a, b in zip(column.flat, fd.flat, strict=True))
                ok = off <= REL_TOL * scale + slack
                d_off = abs(diag[idx] - column[idx])
                d_ok = d_off <= REL_TOL * max(abs(diag[idx]), abs(column[idx]),
                                              oracle.mpf("1e-300"))
            n_cols += 1
            if not ok:
                col.fail(f"{zone}: Hessian column {j} (hvp with e_{j}) is not the derivative's "
                         f"difference quotient along e_{j}", **where,
                         spec=_list(column), difference_quotient=_list(fd),
                         difference=float(off), relative_error=float(off / scale))
            n_diag += 1
            if not d_ok:
                col.fail(f"{zone}: diagonal element {j} differs from hvp with e_{j}", **where,
                         diagonal=float(diag[idx]), hvp=float(column[idx]),
                         difference=float(d_off))
        v = rng.integers(-16, 17, size=shape) / 8.0  # dyadic: exact in every semantics
        got = _hvp(oracle, s, p, t, v)
        with oracle.digits():
            weights = [oracle.mpf(float(x)) for x in v.flat]
            zero = np.full(shape, oracle.mpf(0), dtype=object)
            want = sum((c * w for c, w in zip(columns, weights, strict=True)), start=zero)
            bound = sum((np.abs(c) * abs(w) for c, w in zip(columns, weights, strict=True)),
                        start=zero)
            off = max(abs(a - b) for a, b in zip(got.flat, want.flat, strict=True))
            ok = off <= REL_TOL * max(max(bound.flat), oracle.mpf("1e-300"))
        n_combos += 1
        if not ok:
            col.fail(f"{zone}: hvp with v is not sum_j v_j hvp(e_j)", **where, vector=_list(v),
                     spec=_list(got), columns_combined=_list(want), difference=float(off))
    return n_cols, n_diag, n_combos


def _upper_bounds(s: Any, p: Any, t: Any) -> np.ndarray | None:
    """Upper bounds of the second derivative's arb enclosure at the float point ``(p, t)``
    (None without python-flint, or at a point with a NaN or an infinity)."""
    try:
        from torchlean.contexts import interval
    except ImportError:  # pragma: no cover - the certify extra is missing
        return None
    p, t = np.asarray(p, dtype=np.float64), np.asarray(t, dtype=np.float64)
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(t))):
        return None
    _, hi = interval.bounds(s.decl.second(interval.box(p, p), interval.box(t, t),
                                          **s.call_params))
    return np.asarray(hi, dtype=np.float64)


def _hvp(oracle: Oracle, s: Any, p: np.ndarray, t: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The declared Hessian-vector product at 50 digits."""
    vector = oracle.tensor(v)

    def fn(a: Any, b: Any, **kw: Any) -> Any:
        return s.decl.hvp(a, b, vector, **kw)

    return oracle.deriv(fn, p, t, s.call_params)


def _mp(oracle: Oracle, a: Any) -> np.ndarray:
    out = np.empty(np.shape(a), dtype=object)
    with oracle.digits():
        for idx, v in np.ndenumerate(np.asarray(a, dtype=np.float64)):
            out[idx] = oracle.mpf(float(v))
    return out


def _finite(x: Any) -> bool:
    import mpmath

    return bool(mpmath.isfinite(x))


def _list(a: Any) -> list[float]:
    return [float(x) for x in np.asarray(a, dtype=object).flat]
