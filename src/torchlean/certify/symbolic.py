"""Check (a): on each branch region, the derivative spec IS the derivative of the value spec.

Both specs run over :mod:`torchlean.contexts.exact` on tensors of real sympy symbols, giving a
sympy expression for the value and one per element for the derivative, with every branch a
``Piecewise``. A sampled point fixes a *region*: the choice made by every ``Piecewise``, ``Abs``
and ``sign`` there. With those choices substituted, both sides are ordinary (analytic)
expressions valid on the whole open region, and for each element ``i``

    diff(value_R, p_i) - deriv_R[i] == 0

is proven by ``expand``, ``cancel`` or (time-boxed) ``simplify``. Where sympy cannot decide, the
identity is tested at 50 digits at every sampled point of the region, the points the plan drew
plus more from the same zone. A failure is always a 50-digit counterexample, never a failed
simplification.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from torchlean.certify.common import Loss, Subject, subject, time_boxed
from torchlean.certify.result import CheckResult, Collector, skipped

__all__ = ["check_symbolic"]

#: seconds sympy's ``simplify`` may spend on one identity before the numeric fallback
SIMPLIFY_SECONDS = 2.0
#: relative tolerance of the 50-digit comparison (50-digit evaluation of both sides)
NUMERIC_RTOL = 1e-35
#: the same where the expressions hold float constants (53 bits: a ratio of two of them is off
#: by about 1e-16, and a mistake in a formula is off by far more)
FLOAT_CONSTANT_RTOL = 1e-12
DIGITS = 50


class _OnKink(Exception):
    """A sampled point lies on a branch boundary (no region to speak of)."""


def _resolve(expr: Any, point: dict[Any, Any], choices: list[Any]) -> Any:
    """``expr`` with each Piecewise, Abs and sign replaced by its branch at ``point``; the
    choices made are appended to ``choices`` (they name the region)."""
    import sympy

    memo: dict[Any, Any] = {}

    def truth(cond: Any) -> bool:
        c = cond.subs(point)
        if c not in (sympy.true, sympy.false):
            c = sympy.sympify(bool(c.evalf(DIGITS)))  # pragma: no cover - sympy left it open
        return c is sympy.true

    def sign_at(u: Any) -> int:
        v = u.subs(point).evalf(DIGITS)
        if v == 0:
            raise _OnKink(str(u))
        return 1 if v > 0 else -1

    def walk(e: Any) -> Any:
        if e in memo:
            return memo[e]
        out: Any
        if isinstance(e, sympy.Piecewise):
            for k, (val, cond) in enumerate(e.args):
                if cond is sympy.true or truth(cond):
                    choices.append((e, k))
                    out = walk(val)
                    break
            else:  # pragma: no cover - a Piecewise without a default
                raise _OnKink(str(e))
        elif isinstance(e, sympy.Abs):
            u = walk(e.args[0])
            s = sign_at(u)
            choices.append((e, s))
            out = s * u
        elif isinstance(e, sympy.sign):
            s = sign_at(walk(e.args[0]))
            choices.append((e, s))
            out = sympy.Integer(s)
        elif e.args:
            out = e.func(*[walk(a) for a in e.args])
        else:
            out = e
        memo[e] = out
        return out

    return walk(expr)


def _is_zero(d: Any) -> str | None:
    """How sympy proved ``d == 0`` ("expand", "cancel", "simplify"), or None."""
    import sympy

    if d == 0:
        return "expand"
    ok, e = time_boxed(lambda: sympy.expand(d), SIMPLIFY_SECONDS)
    if ok and e == 0:
        return "expand"
    ok, e = time_boxed(lambda: sympy.cancel(sympy.together(d)), SIMPLIFY_SECONDS)
    if ok and e == 0:
        return "cancel"
    ok, e = time_boxed(lambda: sympy.simplify(d.rewrite(sympy.exp)), SIMPLIFY_SECONDS)
    if ok and e == 0:
        return "simplify"
    return None


class _Region:
    """One branch region of one shape: its branch-free value, derivative and points."""

    def __init__(self, label: str, zone: str, value: Any, deriv: list[Any]) -> None:
        self.label, self.zone = label, zone
        self.value, self.deriv = value, deriv
        self.points: list[dict[Any, Any]] = []


def _bind_point(syms_p: np.ndarray, syms_t: np.ndarray, p: np.ndarray,
                t: np.ndarray) -> dict[Any, Any]:
    import sympy

    point = {s: sympy.Rational(float(v)) for s, v in zip(syms_p.flat, p.flat, strict=True)}
    point.update({s: sympy.Rational(float(v)) for s, v in zip(syms_t.flat, t.flat, strict=True)})
    return point


def _num(e: Any, point: dict[Any, Any]) -> Any:
    return e.evalf(DIGITS, subs=point)


def check_symbolic(loss: Loss, value_fn: Callable[..., Any] | None = None,
                   deriv_fn: Callable[..., Any] | None = None, *, params: dict[str, Any] | None
                   = None, points: int = 3, seed: int = 0,
                   shapes: tuple[tuple[int, ...], ...] | None = None) -> CheckResult:
    """Check (a) for ``loss`` (a declaration or a registered name; or the pair ``value_fn``,
    ``deriv_fn``).

    ``points``: points drawn per zone and shape (and as many with zones mixed per element);
    a region sympy cannot decide is tested at up to ``4 * points`` points.
    """
    try:
        import sympy

        from torchlean.contexts import exact
    except ImportError as exc:
        return skipped("symbolic", f"needs sympy and torchlean.contexts.exact ({exc})")
    s = subject(loss, value_fn, deriv_fn, params)
    rng = np.random.default_rng(seed)
    col = Collector()
    proofs: dict[str, int] = {"expand": 0, "cancel": 0, "simplify": 0, "numeric": 0}
    n_regions = n_points = 0
    runs = [(shape, s, "") for shape in shapes or s.plan.shapes]
    other = _other_params(s) if shapes is None else None
    if other is not None:
        # a mistake in a parameter's role may vanish at its default (delta = 1): once more
        # with other values
        runs.append((runs[min(1, len(runs) - 1)][0], replace(s, params=other),
                     " at " + ", ".join(f"{k}={v:g}" for k, v in other.items())))
    for shape, s, where in runs:
        P, T = exact.symbols("p", shape), exact.symbols("t", shape)
        value = s.value(P, T, ctx=exact, **s.call_params)
        deriv = np.asarray(s.deriv(P, T, ctx=exact, **s.call_params), dtype=object)
        rtol = FLOAT_CONSTANT_RTOL if _has_floats(value, deriv) else NUMERIC_RTOL
        regions: dict[tuple[Any, ...], _Region] = {}
        for p, t, zone in s.plan.region_points(rng, shape, s.params, points):
            point = _bind_point(P, T, p, t)
            choices: list[Any] = []
            try:
                v_r = _resolve(value, point, choices)
                g_r = [_resolve(g, point, choices) for g in deriv.flat]
            except _OnKink:  # pragma: no cover - zones keep a margin from every kink
                continue
            key = tuple(choices)
            if key not in regions:
                regions[key] = _Region(f"{shape} {zone}{where}", zone, v_r, g_r)
            regions[key].points.append(point)
        for key, region in regions.items():
            n_regions += 1
            _certify_region(s, shape, key, region, value, deriv, P, T, rng, points, col,
                            proofs, rtol)
            n_points += len(region.points)
    proven = proofs["expand"] + proofs["cancel"] + proofs["simplify"]
    summary = f"{proven} proven, {proofs['numeric']} numeric; {n_regions} regions"
    return col.result("symbolic", summary, {"shapes": [list(x[0]) for x in runs],
                                           "other_params": other,
                                           "regions": n_regions, "points": n_points,
                                           "proofs": proofs, "sympy": sympy.__version__},
                      examined=sum(proofs.values()), unit="identities")


def _has_floats(value: Any, deriv: np.ndarray) -> bool:
    """Whether sympy holds a float constant (a term that used a parameter as a Python float:
    ``d / 0.75`` becomes ``1.33333333333333 * d``, correct to 53 bits only)."""
    import sympy

    return any(isinstance(e, sympy.Basic) and e.has(sympy.Float) for e in (value, *deriv.flat))


def _other_params(s: Subject) -> dict[str, Any] | None:
    """Each nonzero float parameter times 3/4 (exact in binary), when the validators accept
    them; None for a loss without such parameters."""
    changed = {k: v * 0.75 for k, v in s.params.items()
               if isinstance(v, float) and v != 0 and math.isfinite(v)}
    if not changed:
        return None
    try:
        return s.decl.checked_params({**s.params, **changed})
    except Exception:  # a validator that refuses them: the defaults alone are checked
        return None


def _region_key(value: Any, deriv: np.ndarray, point: dict[Any, Any]) -> tuple[Any, ...] | None:
    """The branch choices of value and derivative at ``point`` (None on a boundary)."""
    choices: list[Any] = []
    try:
        _resolve(value, point, choices)
        for g in deriv.flat:
            _resolve(g, point, choices)
    except _OnKink:
        return None
    return tuple(choices)


def _certify_region(s: Subject, shape: tuple[int, ...], key: tuple[Any, ...], region: _Region,
                    value: Any, deriv: np.ndarray, P: np.ndarray, T: np.ndarray,
                    rng: np.random.Generator, points: int, col: Collector,
                    proofs: dict[str, int], rtol: float = NUMERIC_RTOL) -> None:
    import sympy

    undecided = []
    for i, sym in enumerate(P.flat):
        diff = sympy.diff(region.value, sym)
        how = _is_zero(diff - region.deriv[i])
        if how is None:
            undecided.append((i, diff))
        else:
            proofs[how] += 1
    if not undecided:
        return
    # More points of the same region: draw from its zone, keep those with the same branches.
    zone = tuple(z for z in s.plan.zones if z.name == region.zone)
    pts = list(region.points)
    for _ in range(16 * points if zone else 0):
        if len(pts) >= 4 * points:
            break
        p, t, _ = s.plan.sample(rng, shape, s.params, zone)
        point = _bind_point(P, T, p, t)
        if _region_key(value, deriv, point) == key:
            pts.append(point)
    for i, diff in undecided:
        proofs["numeric"] += 1
        for point in pts:
            a, b = _num(diff, point), _num(region.deriv[i], point)
            scale = max(abs(a), abs(b), sympy.Float(1e-300))
            if abs(a - b) > rtol * scale:
                col.fail(f"{region.label}: element {i}, derivative is not d value / d p_{i}",
                         predicted=[float(point[x]) for x in P.flat],
                         target=[float(point[x]) for x in T.flat],
                         derivative_of_value=float(a), derivative_spec=float(b),
                         difference=float(abs(a - b)), relative_error=float(abs(a - b) / scale))
                break
