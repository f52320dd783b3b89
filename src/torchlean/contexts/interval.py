"""The interval semantics: python-flint ``arb`` balls, rigorous enclosures.

Tensors are NumPy object arrays of arb balls: :func:`box` makes balls that contain given
``[lo, hi]`` ranges, :func:`point` (= :func:`tensor`) exact point balls, and :func:`bounds`
reads any result back as float64 bounds rounded outward. The promise is soundness: for every
point of the input boxes, the true real value of a loss (or derivative) at that point lies in
the result's ball.

How each operation keeps that promise, and how tight it stays:

- Arithmetic is arb's, at a working precision of 80 bits (``IntervalContext(prec=...)`` for
  another, up to :data:`MAX_PREC`): rounding errors are folded into the radius, so a point input
  gives a result about one float64 ulp wide after :func:`bounds`, and the extra bits keep long
  formulas from widening it. While a loss is evaluated, products and quotients of two wide
  balls use the ends of the balls (as interval arithmetic does) instead of arb's midpoint-radius
  rule, which widens a product of wide balls by up to ``2 r1 r2`` and would make ``q (1 - q)``
  over ``q`` in ``[eps, 0.1]`` straddle 0. ``exp``, ``expm1``, ``log``, ``log1p``, ``sqrt`` and
  ``tanh`` are increasing and are evaluated at the two ends of a wide ball, for the same reason.
  Each operation still treats its operands as independent, so ``d * d`` over a ball straddling
  0 includes negative numbers (the dependency problem of interval arithmetic; sound, wider).
- A ball's radius has a 30-bit mantissa in arb, so a ball made from ``[lo, hi]`` reaches beyond
  it by up to about ``2**-30`` of its width.
- Comparisons are three-valued: True or False when certain for the whole balls, undecided
  otherwise. ``where`` with an undecided condition returns the union hull of both branches, so a
  box that straddles a branch point gives a sound but wider result.
- ``maximum``/``minimum`` are monotone (lower end of the result = max of the lower ends, upper
  end = max of the upper ends) and return an operand unchanged when the order is certain, so a
  box wholly inside the clamped region of a clamp gives the clamp's value exactly.
- ``abs`` and ``sign`` are tight: ``abs`` of a ball straddling 0 is ``[0, max|x|]`` (arb's own
  keeps the radius), ``sign`` of it is the hull ``[-1, 1]`` (``[0, 1]`` when it only touches 0
  from above).
- ``sqrt`` (and ``norm`` = ``sqrt(sum(x**2))``, with tight squares) clamps the lower end at 0
  first, so a ball that straddles 0 only through rounding still has a square root.
- ``exp_shift`` is a point (the largest finite midpoint of the slice): a point shift is exact,
  so it costs no width.
- ``check_range`` raises only for a ball wholly outside the range.
- A ball with a nan midpoint means "no information" (nan input, or a value arb cannot bound,
  such as division by a ball containing 0); :func:`bounds` reports it as nan.

Floats convert exactly (every double is an arb point), so ``EPSILON`` is the double nearest to
1e-6, as in the float and precise semantics; a Fraction becomes a tight ball around it.
"""

from __future__ import annotations

import contextlib
import math
import sys
from fractions import Fraction
from typing import Any

import flint
import numpy as np
from flint import arb

from torchlean.contexts._object import ObjectContext
from torchlean.contexts._precision import LOCK, flint_prec
from torchlean.errors import ParameterError, ShapeError

__all__ = ["CONTEXT", "DEFAULT_PREC", "MAX_PREC", "IntervalContext", "bounds", "box", "point",
           "tensor"]

#: working precision in bits: above float64's 53 so that point enclosures stay about 1 ulp wide
DEFAULT_PREC = 80
#: the largest ``prec`` accepted: about 19,700 decimal digits, far beyond what any enclosure of
#: a float input needs, where an elementary function still takes milliseconds (arb's time and
#: memory grow with the precision: 10**9 bits runs for hours, 2**40 crashes FLINT)
MAX_PREC = 2**16



class _Ball(arb):
    """An arb ball whose products and quotients use the ends of wide balls.

    Used only inside an evaluation: :meth:`IntervalContext.bind` converts inputs to it and
    ``finish_value``/``finish_deriv`` return plain ``arb``. Every operator returns a ``_Ball``
    so the rule carries through a whole formula.
    """

    def __add__(self, other: Any) -> Any:
        o = _operand(other)
        return NotImplemented if o is None else _Ball(arb.__add__(self, o))

    def __radd__(self, other: Any) -> Any:
        o = _operand(other)
        return NotImplemented if o is None else _Ball(arb.__add__(o, self))

    def __sub__(self, other: Any) -> Any:
        o = _operand(other)
        return NotImplemented if o is None else _Ball(arb.__sub__(self, o))

    def __rsub__(self, other: Any) -> Any:
        o = _operand(other)
        return NotImplemented if o is None else _Ball(arb.__sub__(o, self))

    def __mul__(self, other: Any) -> Any:
        o = _operand(other)
        return NotImplemented if o is None else _mul(self, o)

    def __rmul__(self, other: Any) -> Any:
        o = _operand(other)
        return NotImplemented if o is None else _mul(o, self)

    def __truediv__(self, other: Any) -> Any:
        o = _operand(other)
        return NotImplemented if o is None else _div(self, o)

    def __rtruediv__(self, other: Any) -> Any:
        o = _operand(other)
        return NotImplemented if o is None else _div(o, self)

    def __neg__(self) -> _Ball:
        return _Ball(arb.__neg__(self))

    def __pos__(self) -> _Ball:
        return self

    def __pow__(self, other: Any) -> Any:
        o = _operand(other)
        return NotImplemented if o is None else _Ball(arb.__pow__(self, o))


def _operand(x: Any) -> arb | None:
    if isinstance(x, arb):
        return x
    if isinstance(x, int | float):
        return arb(x)
    return None


def _wide(x: arb) -> bool:
    return not x.is_exact() and x.is_finite()


def _mul(a: arb, b: arb) -> _Ball:
    if not (_wide(a) and _wide(b)):
        # A point times a ball is exact in midpoint-radius form.
        return _Ball(arb.__mul__(a, b))
    al, ah, bl, bh = a.lower(), a.upper(), b.lower(), b.upper()
    prods = [arb.__mul__(x, y) for x in (al, ah) for y in (bl, bh)]
    return _span(_least([p.lower() for p in prods]), _most([p.upper() for p in prods]))


def _div(a: arb, b: arb) -> _Ball:
    if not _wide(b) or not (b > 0 or b < 0):
        return _Ball(arb.__truediv__(a, b))
    # 1/b over a ball of one sign is decreasing: [1/hi, 1/lo].
    lo, hi = arb.__truediv__(_ONE, b.upper()), arb.__truediv__(_ONE, b.lower())
    return _mul(a, _span(lo.lower(), hi.upper()))


def _least(xs: list[arb]) -> arb:
    best = xs[0]
    for x in xs[1:]:
        if x < best:
            best = x
    return best


def _most(xs: list[arb]) -> arb:
    best = xs[0]
    for x in xs[1:]:
        if x > best:
            best = x
    return best


def _span(lo: arb, hi: arb) -> _Ball:
    """A ball containing the exact ends ``lo <= hi`` and everything between them."""
    return _Ball(arb.union(lo, hi))


_NAN = _Ball("nan")
_ZERO = _Ball(0)
_ONE = _Ball(1)


def _hull(a: arb, b: arb) -> _Ball:
    """A ball containing both balls and everything between them."""
    return _Ball(arb.union(a, b))


def _nonneg(x: arb) -> _Ball:
    """``x`` cut at 0 from below, with an exact lower end 0 where it reached below (a ball
    known to hold only numbers >= 0 whose radius rounding reaches past 0)."""
    return _Ball(x.nonnegative_part())


def _increasing(f: Any, x: arb) -> _Ball:
    """``f(x)`` for an increasing ``f``: from the two ends when ``x`` is a wide ball (arb's own
    bound for a wide ball grows with the derivative across it)."""
    if _wide(x):
        lo, hi = f(x.lower()), f(x.upper())
        if not (lo.is_nan() or hi.is_nan()):
            return _span(lo.lower(), hi.upper())
    return _Ball(f(arb(x)))


class IntervalContext(ObjectContext):
    """Context over arb balls at ``prec`` bits."""

    name = "interval"
    kind = "arb balls"
    scalar_type = _Ball

    def __init__(self, prec: int = DEFAULT_PREC) -> None:
        if not isinstance(prec, int) or isinstance(prec, bool) or not 2 <= prec <= MAX_PREC:
            raise ParameterError(f"`prec` must be an integer number of bits in [2, {MAX_PREC}]; "
                                 f"got {prec!r}")
        self.prec = prec

    def __repr__(self) -> str:
        return f"IntervalContext(prec={self.prec})"

    # Both hold the package's precision lock while flint's global precision is changed.
    def _converting(self) -> contextlib.AbstractContextManager[Any]:
        return flint_prec(self.prec)

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        return flint_prec(self.prec)

    # Results are plain arb balls; the end-point rules stay inside the evaluation.
    def finish_value(self, value: Any) -> arb:
        return arb(super().finish_value(value))

    def finish_deriv(self, deriv: Any) -> np.ndarray:
        return _plain(super().finish_deriv(deriv))

    # -- conversion -----------------------------------------------------------------------------
    def _from_int(self, v: int) -> arb:
        return _Ball(v)

    def _from_float(self, v: float | np.floating) -> arb:
        f = float(v)
        if math.isnan(f):
            return _NAN
        return _Ball(f)

    def _from_fraction(self, v: Fraction) -> arb:
        return _Ball(flint.fmpq(v.numerator, v.denominator))

    def _from_other(self, v: Any) -> arb | None:
        if isinstance(v, arb):
            return _Ball(v)
        if getattr(v, "is_Rational", False):  # sympy Rational / Integer
            return self._from_fraction(Fraction(int(v.p), int(v.q)))
        mpf = getattr(v, "_mpf_", None)
        if mpf is not None and (type(v).__module__ or "").startswith(("mpmath", "sympy")):
            # mpf and sympy Float are binary numbers: convert them exactly.
            sign, man, exp, _ = mpf
            if not man:
                return self._from_float(float(v))
            return _Ball(flint.arf((-int(man) if sign else int(man), int(exp))))
        return None

    # -- branches: three-valued (True, False, or None when undecided) --------------------------
    def _lt1(self, a: arb, b: arb) -> bool | None:
        if a < b:
            return True
        if a >= b:
            return False
        return None

    def _le1(self, a: arb, b: arb) -> bool | None:
        if a <= b:
            return True
        if a > b:
            return False
        return None

    def _and1(self, a: Any, b: Any) -> bool | None:
        if (a is not None and not a) or (b is not None and not b):
            return False
        if a is None or b is None:
            return None
        return True

    def _isnan1(self, x: arb) -> bool:
        return bool(x.is_nan())

    def _where1(self, c: Any, a: arb, b: arb) -> arb:
        if c is None:
            return _hull(a, b)
        return a if c else b

    def _max1(self, a: arb, b: arb) -> arb:
        if a.is_nan() or b.is_nan():
            return _NAN
        if a >= b:
            return a
        if b >= a:
            return b
        lo = a.lower() if a.lower() >= b.lower() else b.lower()
        hi = a.upper() if a.upper() >= b.upper() else b.upper()
        return _hull(lo, hi)

    def _min1(self, a: arb, b: arb) -> arb:
        if a.is_nan() or b.is_nan():
            return _NAN
        if a <= b:
            return a
        if b <= a:
            return b
        lo = a.lower() if a.lower() <= b.lower() else b.lower()
        hi = a.upper() if a.upper() <= b.upper() else b.upper()
        return _hull(lo, hi)

    # -- functions ------------------------------------------------------------------------------
    def _abs1(self, x: arb) -> arb:
        if x.is_nan() or x >= 0:
            return x
        if x <= 0:
            return -x
        return _nonneg(_hull(_ZERO, x.abs_upper()))

    def _sign1(self, x: arb) -> arb:
        if x.is_nan():
            return _NAN
        if x > 0:
            return _ONE
        if x < 0:
            return -_ONE
        if x.is_zero():
            return _ZERO
        if x >= 0:
            return _nonneg(_hull(_ZERO, _ONE))
        if x <= 0:
            return -_nonneg(_hull(_ZERO, _ONE))
        return _hull(-_ONE, _ONE)

    def _exp1(self, x: arb) -> arb:
        return _increasing(arb.exp, x)

    def _expm1_1(self, x: arb) -> arb:
        return _increasing(arb.expm1, x)

    def _log1(self, x: arb) -> arb:
        return _increasing(arb.log, x)

    def _log1p1(self, x: arb) -> arb:
        return _increasing(arb.log1p, x)

    def _sqrt1(self, x: arb) -> arb:
        if x.is_nan() or x < 0:
            return _NAN
        return _increasing(arb.sqrt, x.nonnegative_part())

    def _tanh1(self, x: arb) -> arb:
        return _increasing(arb.tanh, x)

    # -- reductions -----------------------------------------------------------------------------
    def _sum1(self, xs: list[Any]) -> arb:
        total = _ZERO
        for x in xs:
            total = total + x
        return total

    def _square(self, x: arb) -> arb:
        """A tight enclosure of ``x**2`` from the ends of ``|x|`` (arb's ``x * x`` is not)."""
        if x.is_nan():
            return _NAN
        ax = self._abs1(x)
        lo, hi = ax.lower(), ax.upper()
        if lo < 0:  # |x| >= 0 even where the ball's rounding says otherwise
            lo = _ZERO
        return _nonneg(_hull(lo * lo, hi * hi))

    def _norm1(self, xs: list[Any]) -> arb:
        return self._sqrt1(self._sum1([self._square(x) for x in xs]))

    def _shift1(self, xs: list[Any]) -> arb:
        mids = [x.mid() for x in xs if x.is_finite()]
        if not mids:
            return _ZERO
        return _Ball(_most(mids))

    def _outside1(self, x: arb, lo: Any, hi: Any) -> bool:
        return bool((lo is not None and x < lo) or (hi is not None and x > hi))


#: The interval semantics (``ctx=torchlean.contexts.interval`` selects it; 80 bits).
CONTEXT = IntervalContext()


def _plain(x: np.ndarray) -> np.ndarray:
    return CONTEXT._map(arb, x)


def point(values: Any) -> np.ndarray:
    """``values`` as an object array of point arb balls (0-d for a scalar).

    Floats and integers are exact points; a Fraction becomes a tight ball around it.
    """
    with CONTEXT._converting():
        return _plain(CONTEXT._convert(values, "values"))


#: Context tensors from numbers: the same as :func:`point`.
tensor = point


def box(lo: Any, hi: Any) -> np.ndarray:
    """An object array of balls, each containing the range ``[lo_i, hi_i]`` (0-d for scalars).

    ``lo`` and ``hi`` must have one shape (ShapeError) and satisfy ``lo <= hi`` elementwise
    (ParameterError; nan is refused: use :func:`point` for a nan input).
    """
    with CONTEXT._converting():
        a, b = CONTEXT._convert(lo, "lo"), CONTEXT._convert(hi, "hi")
        if a.shape != b.shape:
            raise ShapeError(f"`hi` must have the shape of `lo` {a.shape}; got {b.shape}")
        out = np.empty(a.shape, dtype=object)
        for idx in np.ndindex(a.shape):
            x, y = a[idx], b[idx]
            if x.is_nan() or y.is_nan() or x > y:
                at = f" at index {idx}" if idx else ""
                raise ParameterError(
                    f"`lo` must be <= `hi` (and not nan){at}; got lo={_show(x)}, hi={_show(y)}"
                )
            if x.is_exact() and x == y:
                out[idx] = arb(x)
            elif x >= 0:  # keep a box that starts at 0 (or above) off the negative numbers
                out[idx] = arb(_nonneg(_hull(x, y)))
            elif y <= 0:
                out[idx] = arb(-_nonneg(-_hull(x, y)))
            else:
                out[idx] = arb(_hull(x, y))
        return out


def _show(x: arb) -> str:
    return "nan" if x.is_nan() else repr(float(x.mid()))


def _float_down(v: arb) -> float:
    """The largest float64 <= the exact arb ``v``."""
    f = float(v)
    if math.isnan(f):
        return f
    if math.isinf(f):
        # float() overflowed: a finite v above the float range rounds down to the largest float.
        return sys.float_info.max if f > 0 and v.is_finite() else f
    if arb(f) > v:
        return math.nextafter(f, -math.inf)
    g = math.nextafter(f, math.inf)
    return g if arb(g) <= v else f


def _float_up(v: arb) -> float:
    """The smallest float64 >= the exact arb ``v``."""
    return -_float_down(-v)


def _ends(x: Any) -> tuple[float, float]:
    if not isinstance(x, arb):
        x = CONTEXT._scalar(x)
    if x.is_nan():
        return math.nan, math.nan
    # flint.ctx.prec is read under the lock: another thread's evaluation may have changed it.
    with LOCK, flint_prec(max(CONTEXT.prec, flint.ctx.prec)):
        return _float_down(x.lower()), _float_up(x.upper())


def bounds(x: Any) -> tuple[Any, Any]:
    """``(lo, hi)``: float64 bounds of every ball of ``x``, rounded outward (``lo`` down,
    ``hi`` up), so ``lo <= value <= hi`` for every real value the ball contains.

    NumPy float64 arrays for an array, Python floats for a scalar or 0-d array; nan (both ends)
    for a ball with a nan midpoint, which carries no information.
    """
    if not isinstance(x, np.ndarray):
        return _ends(x)
    if x.ndim == 0:
        return _ends(x[()])
    lo = np.empty(x.shape, dtype=np.float64)
    hi = np.empty(x.shape, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        lo[idx], hi[idx] = _ends(x[idx])
    return lo, hi

