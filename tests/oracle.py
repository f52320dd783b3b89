"""The tests' one 50-digit mpmath reference, the edge-case grid and ulp distances.

Reference values are the declarations themselves evaluated by :mod:`torchlean.contexts.precise`
at 50 decimal digits on the exact binary values of the float inputs (:func:`exact`,
:func:`value`): an oracle for the arithmetic (rounding, overflow, cancellation), while the
formulas are held to hand-derived values, PyTorch and finite differences elsewhere. The
reference derivative (:func:`deriv`) is mpmath's numerical differentiation of that 50-digit
value, so it shares nothing with the declared derivative term. ``ulps`` counts representable
numbers of the output dtype between a result and the correctly rounded exact value, so 0 means
correctly rounded; it is the tests' one ulp distance.

The grid puts every loss at its edges, per dtype. The hand-made grids (``_GRIDS``): residuals
from the subnormals to the overflow limit, the huber and log-cosh branch switch at ``|d| = 1``,
probabilities 0, ``eps``, ``1 - eps``, 1 and their neighbours, logits up to 1e4 and softmax rows
that match the target (cancellation), log-rates past the overflow of ``exp``, and zero, tiny,
``eps``-sized and huge vectors for cosine similarity. Any other loss gets a grid read from its
declaration: its zones' samples, its seams and the floats beside them, and the residual sweep
for losses of elements on the whole real line. Used by ``tests/test_extremes.py`` and
``benchmarks/accuracy.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

import torchlean
from torchlean.contexts import precise
from torchlean.spec.layers.loss import EPSILON

__all__ = ["DPS", "GRID_DTYPES", "Case", "deriv", "exact", "grid", "mp_fn", "mp_list",
           "round_to", "ulps", "value"]

DPS = 50
GRID_DTYPES = ("float32", "float64")


# --------------------------------------------------------------------------------------------
# Oracle and ulps
# --------------------------------------------------------------------------------------------


def exact(fn: Callable[..., Any], p: np.ndarray, t: np.ndarray, **params: Any) -> np.ndarray:
    """``fn(p, t)`` at 50 digits on the exact values of ``p`` and ``t``: an object array of mpf
    (0-d for a loss value)."""
    with mpmath.workdps(DPS):
        out = fn(precise.tensor(p.astype(np.float64), dps=DPS),
                 precise.tensor(t.astype(np.float64), dps=DPS), ctx=precise, **params)
    arr = np.empty(np.shape(out), dtype=object)
    arr[...] = out
    return arr


def mp_list(a: Any) -> list[mpmath.mpf]:
    """The exact values of a float array (or number), flattened, as mpf."""
    return [mpmath.mpf(float(v)) for v in np.asarray(a, dtype=np.float64).ravel()]


def mp_fn(f: Callable[..., Any], *args: float) -> Any:
    """A hand formula ``f`` (mpmath functions) at 50 digits on the exact values of ``args``."""
    with mpmath.workdps(DPS):
        return f(*(mpmath.mpf(a) for a in args))


def _precise_value(name: str, p: list[Any], t: list[Any], shape: tuple[int, ...],
                   params: dict[str, Any]) -> Any:
    """The loss at mpf inputs, at mpmath's current working precision."""
    dps = mpmath.mp.dps
    pa, ta = np.empty(len(p), dtype=object), np.empty(len(t), dtype=object)
    pa[:], ta[:] = p, t
    return torchlean.LOSSES[name].value(precise.tensor(pa.reshape(shape), dps=dps),
                                        precise.tensor(ta.reshape(shape), dps=dps),
                                        ctx=precise.PreciseContext(dps), **params)


def value(name: str, predicted: Any, target: Any, **params: Any) -> Any:
    """The loss ``name`` at float inputs, to 50 digits (an mpf)."""
    shape = np.shape(predicted)
    with mpmath.workdps(DPS):
        return _precise_value(name, mp_list(predicted), mp_list(target), shape, params)


def deriv(name: str, predicted: Any, target: Any, **params: Any) -> list[Any]:
    """d value / d predicted_i for every element (flattened): mpmath's numerical
    differentiation of the 50-digit value. Only valid away from kinks and clamp bounds."""
    shape = np.shape(predicted)
    with mpmath.workdps(DPS):
        p, t = mp_list(predicted), mp_list(target)
        out = []
        for i in range(len(p)):
            def f(x: Any, i: int = i) -> Any:
                q = list(p)
                q[i] = x
                return _precise_value(name, q, t, shape, params)
            out.append(mpmath.diff(f, p[i]))
        return out


def round_to(x: Any, dtype: Any) -> float:
    """The exact number ``x`` (an mpf) rounded to nearest (ties to even) in ``dtype``, as a
    Python float holding that dtype's value; +-inf past the overflow threshold, nan for nan."""
    info = np.finfo(dtype)
    if mpmath.isnan(x):
        return math.nan
    if mpmath.isinf(x):
        return math.copysign(math.inf, float(x))
    if x == 0:
        return 0.0
    with mpmath.workdps(DPS + 20):
        _, e = mpmath.frexp(x)  # |x| = m * 2**e with m in [0.5, 1)
        q = max(int(e) - 1, int(info.minexp)) - int(info.nmant)
        scaled = mpmath.ldexp(x, -q)
        n = mpmath.floor(scaled)
        frac = scaled - n
        if frac > 0.5 or (frac == 0.5 and int(n) % 2):
            n += 1
        r = mpmath.ldexp(n, q)
    if abs(r) > mpmath.mpf(float(info.max)):
        return math.copysign(math.inf, float(x))
    return float(r)


def _key(v: float, dtype: Any) -> int:
    """Position of ``v`` among the dtype's numbers, ordered (+0 and -0 share 0)."""
    bits = int(np.asarray(v, dtype=dtype).view(np.int32 if np.dtype(dtype).itemsize == 4
                                               else np.int64))
    sign_mask = 1 << (np.dtype(dtype).itemsize * 8 - 1)
    return -(bits & (sign_mask - 1)) if bits < 0 else bits


def ulps(computed: Any, x: Any, dtype: Any = np.float64) -> float:
    """Representable numbers of ``dtype`` between ``computed`` and the correct rounding of the
    exact ``x`` (0: correctly rounded; nan against nan is 0, nan against a number is inf)."""
    computed = float(computed)
    r = round_to(x, dtype)
    if math.isnan(computed) or math.isnan(r):
        return 0.0 if math.isnan(computed) and math.isnan(r) else math.inf
    if math.isinf(computed) or math.isinf(r):
        return 0.0 if computed == r else math.inf
    return float(abs(_key(computed, dtype) - _key(r, dtype)))


# --------------------------------------------------------------------------------------------
# The grid
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One input pair of the grid, already of the dtype under test."""

    label: str
    predicted: np.ndarray
    target: np.ndarray


def _f(dtype: Any, v: float) -> float:
    """``v`` rounded to ``dtype``, back as a Python float."""
    with np.errstate(over="ignore"):
        return float(np.asarray(v, dtype=np.float64).astype(dtype))


def _nxt(dtype: Any, v: float, direction: float) -> float:
    return float(np.nextafter(np.asarray(v, dtype=dtype), np.asarray(direction, dtype=dtype)))


def _residuals(dtype: Any) -> list[float]:
    """Residual magnitudes from the smallest subnormal to the largest float."""
    info = np.finfo(dtype)
    one_up, one_down = _nxt(dtype, 1.0, 2.0), _nxt(dtype, 1.0, 0.0)
    mags = [float(info.smallest_subnormal), float(info.smallest_normal) / 3,
            float(info.smallest_normal), 1e-30, 1e-8, 1e-4, 0.25, 0.5, one_down, 1.0, one_up,
            1.5, 2.0, 20.0, 88.0, 700.0, 1e4, 1e20, 1e30, float(info.max) / 4,
            float(info.max)]
    if dtype == np.float64:
        mags += [1e-300, 1e-160, 1e154, 1e200, 1e300]
    return sorted({_f(dtype, m) for m in mags})


def _elementwise_regression(dtype: Any) -> Iterator[Case]:
    mags = _residuals(dtype)
    ds = [0.0, -0.0, *mags, *(-m for m in mags)]
    for d in ds:
        yield Case(f"d={d:.3g}", np.array([d], dtype), np.array([0.0], dtype))
    # the same residual on top of a large target (p - t exact, both large)
    for base in (1.0, 1e10, -3e7):
        b = _f(dtype, base)
        for steps in (1, 3):
            p = b
            for _ in range(steps):
                p = _nxt(dtype, p, math.inf)
            yield Case(f"t={b:.3g}, p=t+{steps}ulp", np.array([p], dtype), np.array([b], dtype))
    # several elements: the mean divides by n
    big = mags[-1]
    yield Case("n=4, mixed", np.array([mags[0], -1.0, 0.5, mags[-4]], dtype),
               np.zeros(4, dtype))
    yield Case("n=3, max and -max/4", np.array([big, -big / 4, 0.0], dtype), np.zeros(3, dtype))


def _probabilities(dtype: Any, eps: float) -> list[float]:
    e = _f(dtype, eps)
    hi = _f(dtype, 1.0 - eps)
    info = np.finfo(dtype)
    ps = [0.0, float(info.smallest_subnormal), e / 2, _nxt(dtype, e, 0.0), e, _nxt(dtype, e, 1.0),
          1e-5, 0.1, 0.5, 1 - 1e-5, _nxt(dtype, hi, 0.0), hi, _nxt(dtype, hi, 2.0),
          _nxt(dtype, 1.0, 0.0), 1.0, 1.5, -0.5]
    return [_f(dtype, p) for p in ps]


def _cross_entropy(dtype: Any) -> Iterator[Case]:
    for p in _probabilities(dtype, EPSILON):
        for t in (0.0, 1.0, 0.3, 1e-30, 1e4):
            yield Case(f"p={p:.9g}, t={t:g}", np.array([p], dtype), np.array([t], dtype))
    yield Case("n=3 row", np.array([0.2, 0.5, 0.3], dtype), np.array([0.0, 1.0, 0.0], dtype))


def _bce(dtype: Any) -> Iterator[Case]:
    ts = (0.0, 1.0, 0.5, 1e-30, _nxt(dtype, 1.0, 0.0))
    for p in _probabilities(dtype, EPSILON):
        for t in ts:
            yield Case(f"p={p:.9g}, t={t:.9g}", np.array([p], dtype), np.array([t], dtype))
    # the prediction equals the target: the derivative (p - t) / (p (1 - p)) is exactly 0
    yield Case("p=t=0.3", np.array([0.3], dtype), np.array([_f(dtype, 0.3)], dtype))


def _logits(dtype: Any) -> Iterator[Case]:
    rows = {
        "zeros": [0.0, 0.0, 0.0],
        "+-1e4": [1e4, -1e4, 0.0],
        "1e4 ties": [1e4, 1e4 - 1, 1e4],
        "-1e4 all": [-1e4, -1e4, -1e4],
        "+-1000": [1000.0, 0.0, -1000.0],
        "1 2 3": [1.0, 2.0, 3.0],
        "tiny gaps": [1e-8, 0.0, -1e-8],
        "log(0.2 0.5 0.3)": [math.log(0.2), math.log(0.5), math.log(0.3)],
    }
    targets = {
        "onehot": [0.0, 1.0, 0.0],
        "uniform": [1 / 3, 1 / 3, 1 / 3],
        "mass 2": [0.0, 2.0, 0.0],
        "zeros": [0.0, 0.0, 0.0],
        "soft": [0.2, 0.5, 0.3],
    }
    for rn, row in rows.items():
        for tn, trow in targets.items():
            yield Case(f"z={rn}, t={tn}", np.array([row], dtype), np.array([trow], dtype))
    yield Case("two rows", np.array([[1e4, 0, -1e4], [0.5, 0.25, 0]], dtype),
               np.array([[1, 0, 0], [0.2, 0.5, 0.3]], dtype))


def _hinge(dtype: Any) -> Iterator[Case]:
    info = np.finfo(dtype)
    xs = [0.0, 1.0, -1.0, _nxt(dtype, 1.0, 0.0), _nxt(dtype, 1.0, 2.0), 0.5, 2.0, 1e4,
          float(info.max), -float(info.max), float(info.smallest_subnormal), 1e-30]
    for t in (1.0, -1.0, 0.5, 1e-30, 1e30):
        for x in xs:
            yield Case(f"x={x:.9g}, t={t:g}", np.array([_f(dtype, x)], dtype),
                       np.array([t], dtype))


def _poisson(dtype: Any) -> Iterator[Case]:
    xs = [-1e4, -745.0, -700.0, -104.0, -20.0, -1e-8, 0.0, 1e-8, 1.0, 20.0, 88.0, 88.7, 89.0,
          700.0, 709.7, 709.8, 710.0, 1e4, float(np.finfo(dtype).smallest_subnormal)]
    for x in xs:
        for t in (0.0, 1.0, 3.0, 1e10):
            yield Case(f"x={x:g}, t={t:g}", np.array([_f(dtype, x)], dtype), np.array([t], dtype))
    # exp(x) close to t: the derivative exp(x) - t cancels
    for t in (3.0, 1e10, 0.7):
        x = _f(dtype, math.log(t))
        yield Case(f"x=log({t:g}), t={t:g}", np.array([x], dtype), np.array([t], dtype))


def _cosine(dtype: Any) -> Iterator[Case]:
    info = np.finfo(dtype)
    big, sub = float(info.max), float(info.smallest_subnormal)
    e = _f(dtype, EPSILON)
    vecs = {
        "zero": [0.0, 0.0, 0.0],
        "subnormal": [sub, sub, 0.0],
        "tiny": [1e-30, -2e-30, 3e-30],
        "norm=eps": [e, 0.0, 0.0],
        "norm just above eps": [_nxt(dtype, e, 1.0), 0.0, 0.0],
        "norm eps/2": [e / 2, 0.0, 0.0],
        "unit": [1.0, 0.0, 0.0],
        "general": [0.3, -1.2, 2.5],
        "huge": [big, big, big / 2],
        "1e30": [1e30, -1e30, 1e29],
    }
    targets = {
        "zero": [0.0, 0.0, 0.0],
        "parallel": [2.0, 0.0, 0.0],
        "general": [1.0, 1.0, -0.5],
        "huge": [big, -big / 2, big],
        "tiny": [1e-30, 0.0, 1e-30],
    }
    for pn, pv in vecs.items():
        for tn, tv in targets.items():
            yield Case(f"p={pn}, t={tn}", np.array([_f(dtype, v) for v in pv], dtype),
                       np.array([_f(dtype, v) for v in tv], dtype))
    # nearly parallel: the derivative's two terms cancel
    q = _nxt(dtype, 1.0, 2.0)
    yield Case("nearly parallel", np.array([1.0, 2.0, q], dtype), np.array([1.0, 2.0, 1.0],
                                                                            dtype))


_GRIDS: dict[str, Callable[[Any], Iterator[Case]]] = {
    "mse": _elementwise_regression,
    "mae": _elementwise_regression,
    "huber": _elementwise_regression,
    "log_cosh": _elementwise_regression,
    "cross_entropy": _cross_entropy,
    "binary_cross_entropy": _bce,
    "cross_entropy_logits": _logits,
    "hinge": _hinge,
    "poisson": _poisson,
    "cosine_similarity": _cosine,
}


def _declared(name: str) -> Callable[[Any], Iterator[Case]]:
    """The grid of a loss without a hand-made one, read from its declaration: its zones'
    samples, each elementwise seam and the floats beside it, and (for losses of elements on
    the whole real line) the residual sweep of ``_elementwise_regression``."""
    decl = torchlean.LOSSES[name]

    def cases(dtype: Any) -> Iterator[Case]:
        rng = np.random.default_rng(7)
        prm = dict(decl.params)
        zones = decl.region_zones()
        for z in zones:
            # at least 42 cases in all, however few zones and seams the loss has
            for k in range(max(6, -(-42 // len(zones)))):
                p, t = z.sample(rng, (3,), prm)
                yield Case(f"{z.name} #{k}", np.asarray(p, dtype), np.asarray(t, dtype))
        for s in decl.seams:
            if s.coordinate not in ("residual", "predicted"):
                continue
            at = _f(dtype, s.location(prm))
            for v in (_nxt(dtype, at, -math.inf), at, _nxt(dtype, at, math.inf)):
                t = 0.0 if s.coordinate == "residual" else float(np.mean(decl.domain.target))
                p = v + t if s.coordinate == "residual" else v
                yield Case(f"{s.label}: {v:.9g}", np.array([p], dtype), np.array([t], dtype))
        if (decl.kind == "elementwise" and not decl.domain.labels
                and not decl.domain.checked):
            yield from _elementwise_regression(dtype)

    return cases


def grid(name: str, dtype: Any) -> list[Case]:
    """The edge-case grid of the loss ``name`` in ``dtype`` (finite inputs only)."""
    dt = np.dtype(dtype).type
    with np.errstate(over="ignore"):
        cases = list(_GRIDS.get(name, _declared(name))(dt))
    return [c for c in cases if np.all(np.isfinite(c.predicted)) and np.all(np.isfinite(c.target))]


# --------------------------------------------------------------------------------------------
# Measuring one implementation over the grid
# --------------------------------------------------------------------------------------------


@dataclass
class Worst:
    """The largest ulp error seen, where, and the results that should have been finite."""

    ulps: float = 0.0
    case: str = ""
    #: labels of cases with an inf or nan result where the correctly rounded exact one is finite
    nonfinite: list[str] | None = None

    def add(self, u: float, label: str, computed: float, x: Any, dtype: Any) -> None:
        r = round_to(x, dtype)
        if math.isfinite(r) and not math.isfinite(computed):
            # listed apart, so that one overflow does not hide the accuracy everywhere else
            self.nonfinite = [*(self.nonfinite or []), label]
            return
        if u > self.ulps or (u == self.ulps and not self.case):
            self.ulps, self.case = u, label


@dataclass
class Report:
    """Max ulps of values and derivative elements of one implementation, one loss, one dtype."""

    loss: str
    dtype: str
    cases: int
    value: Worst
    deriv: Worst
    #: the same errors in ulps of the cancelling terms (:func:`term_scale`), where they cancel
    value_scaled: Worst | None = None
    deriv_scaled: Worst | None = None


Impl = Callable[[np.ndarray, np.ndarray], tuple[Any, Any] | None]

def spec_impl(name: str) -> Impl:
    """torchlean on NumPy inputs: ``value_and_deriv(name, p, t)``."""
    return lambda p, t: torchlean.value_and_deriv(name, p, t)


def measure(name: str, dtype: Any, impl: Impl | None = None,
            skip: Callable[[Case, str], bool] | None = None) -> Report:
    """Run ``impl`` (default: torchlean) over the grid of ``name`` in ``dtype`` against the
    oracle. ``skip(case, part)`` leaves out cases where ``impl`` is defined differently
    (``part`` is "value" or "deriv"); ``impl`` may return None for the same purpose."""
    entry = torchlean.LOSSES[name]
    impl = impl or spec_impl(name)
    dt = np.dtype(dtype)
    rep = Report(name, dt.name, 0, Worst(), Worst())
    for case in grid(name, dt):
        out = impl(case.predicted, case.target)
        if out is None:
            continue
        rep.cases += 1
        v, g = out
        if not (skip and skip(case, "value")):
            xv = exact(entry.value, case.predicted, case.target)[()]
            rep.value.add(ulps(float(v), xv, dt), case.label, float(v), xv, dt)
            vs = value_scale(name, case.predicted, case.target)
            if vs is not None:
                rep.value_scaled = rep.value_scaled or Worst()
                rep.value_scaled.add(scaled_ulps(float(v), xv, vs, dt), case.label, float(v),
                                     xv, dt)
        if not (skip and skip(case, "deriv")):
            xg = exact(entry.deriv, case.predicted, case.target)
            g = np.asarray(g, dtype=np.float64)
            gs = term_scale(name, case.predicted, case.target)
            for idx in np.ndindex(g.shape):
                label = f"{case.label} {list(idx)}"
                rep.deriv.add(ulps(float(g[idx]), xg[idx], dt), label, float(g[idx]), xg[idx], dt)
                if gs is not None:
                    rep.deriv_scaled = rep.deriv_scaled or Worst()
                    rep.deriv_scaled.add(scaled_ulps(float(g[idx]), xg[idx], gs[idx], dt), label,
                                         float(g[idx]), xg[idx], dt)
    return rep


def _mp(a: np.ndarray) -> list[Any]:
    return [mpmath.mpf(float(v)) for v in np.asarray(a, dtype=np.float64).ravel()]


def term_scale(name: str, p: np.ndarray, t: np.ndarray) -> np.ndarray | None:
    """Per derivative element, the exact magnitude of the larger of the two terms that the
    derivative subtracts, for the losses whose derivative is a difference of two terms that may
    cancel (None for the others): poisson ``exp(x)`` and ``t``; cross-entropy on logits
    ``softmax * mass`` and ``t``; cosine ``(u.v) u`` and ``v``; each over ``n`` (or ``P``).

    An error measured in ulps of this scale is what a float evaluation of the difference can
    promise: the terms themselves carry a rounding error of that size.
    """
    n = max(p.size, 1)
    with mpmath.workdps(DPS):
        ps, ts = _mp(p), _mp(t)
        if name == "poisson":
            out = [max(mpmath.exp(x), abs(y)) / n for x, y in zip(ps, ts, strict=True)]
        elif name == "cross_entropy_logits":
            cols = p.shape[-1]
            out = []
            for r in range(0, len(ps), cols):
                z, y = ps[r:r + cols], ts[r:r + cols]
                m = max(z)
                e = [mpmath.exp(v - m) for v in z]
                tot, mass = mpmath.fsum(e), mpmath.fsum(y)
                out += [max(abs(mass) * ei / tot, abs(yi)) / n for ei, yi in zip(e, y,
                                                                                 strict=True)]
        elif name == "cosine_similarity":
            eps = mpmath.mpf(EPSILON)
            big_p = max(mpmath.sqrt(mpmath.fsum(x * x for x in ps)), eps)
            big_t = max(mpmath.sqrt(mpmath.fsum(y * y for y in ts)), eps)
            u = [x / big_p for x in ps]
            v = [y / big_t for y in ts]
            cos = mpmath.fsum(a * b for a, b in zip(u, v, strict=True))
            out = [max(abs(cos * a), abs(b)) / big_p for a, b in zip(u, v, strict=True)]
        else:
            return None
    arr = np.empty(len(out), dtype=object)
    arr[:] = out
    return arr.reshape(p.shape)


def scaled_ulps(computed: float, x: Any, scale: Any, dtype: Any) -> float:
    """``|computed - x|`` in ulps of ``scale`` rounded to ``dtype`` (subnormal ulps below
    the normal range); 0 for nan against nan, inf for a non-finite against a finite."""
    if math.isnan(computed) or mpmath.isnan(x):
        return 0.0 if math.isnan(computed) and mpmath.isnan(x) else math.inf
    if math.isinf(computed) or mpmath.isinf(x):
        return 0.0 if round_to(x, dtype) == computed else math.inf
    info = np.finfo(dtype)
    s = round_to(scale, dtype)
    if math.isinf(s):
        s = float(info.max)
    unit = max(float(np.spacing(np.asarray(abs(s), dtype=dtype))), float(info.smallest_subnormal))
    with mpmath.workdps(DPS):
        return float(abs(mpmath.mpf(computed) - x) / unit)


def value_scale(name: str, p: np.ndarray, t: np.ndarray) -> Any:
    """The exact magnitude of the terms a loss value subtracts, for the values that cancel
    (None for the others): poisson ``mean(max(exp(x), |t x|))``; cosine 1 (``1`` and
    ``u . v``)."""
    with mpmath.workdps(DPS):
        if name == "poisson":
            terms = [max(mpmath.exp(x), abs(y * x)) for x, y in zip(_mp(p), _mp(t), strict=True)]
            return mpmath.fsum(terms) / max(p.size, 1)
        if name == "cosine_similarity":
            return mpmath.mpf(1)
    return None
