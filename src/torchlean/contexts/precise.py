"""The precise semantics: mpmath ``mpf`` numbers at a working precision of 50 decimal digits.

This is the accuracy oracle: every operation of a loss is carried out at ``dps`` digits
(mpmath's working precision, set around the evaluation), so a result is correct to about ``dps``
digits except where the formula itself loses them (catastrophic cancellation against inputs that are
exact, which the specs avoid). Real-valued like IEEE arithmetic: ``log`` of a negative number,
``sqrt`` of a negative number and ``log1p`` below -1 give nan (mpmath alone would return complex
numbers), and nan propagates.

- :func:`tensor` takes ``dps`` (default 50) and returns a :class:`PreciseTensor`, an object array
  of ``mpf`` that remembers its precision. A call evaluates at the largest ``dps`` of its inputs
  (50 when no input carries one); a context made as ``PreciseContext(dps=N)`` and passed as
  ``ctx=`` evaluates at exactly ``N`` digits. ``dps`` is at most :data:`MAX_DPS`.
- Python floats are converted exactly (an ``mpf`` holds every double), so ``EPSILON`` is the
  double nearest to 1e-6, as in the float semantics; integers and Fractions are rounded to the
  working precision.
- ``exp_shift`` is the largest finite entry of the slice (0 when there is none), as for floats;
  sums and norms use ``mpmath.fsum``.
"""

from __future__ import annotations

import contextlib
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np

from torchlean.contexts._object import ObjectContext
from torchlean.contexts._precision import mpmath_prec
from torchlean.errors import ParameterError

__all__ = ["CONTEXT", "DEFAULT_DPS", "MAX_DPS", "PreciseContext", "PreciseTensor", "tensor"]

#: the working precision, in decimal digits, when no input or context names one
DEFAULT_DPS = 50
#: the largest ``dps`` accepted: about 66,000 bits, as the interval semantics' ``MAX_PREC``; an
#: elementary function there takes a fraction of a second (mpmath's time grows faster than
#: linearly with the digits, and 10**9 digits exhaust time and memory)
MAX_DPS = 20_000

_NAN = mpmath.mpf("nan")


class PreciseTensor(np.ndarray):
    """An object array of ``mpf`` that carries the decimal precision ``dps`` it was made at."""

    __torchlean_context__ = "precise"
    dps: int | None

    def __array_finalize__(self, obj: Any) -> None:
        self.dps = getattr(obj, "dps", None)


def _tag(arr: np.ndarray, dps: int) -> PreciseTensor:
    out = arr.view(PreciseTensor)
    out.dps = dps
    return out


class PreciseContext(ObjectContext):
    """Context over ``mpf`` numbers at ``dps`` decimal digits (None: from the inputs)."""

    name = "precise"
    kind = "mpmath mpf numbers"
    scalar_type = mpmath.mpf

    def __init__(self, dps: int | None = None) -> None:
        if dps is not None and (not isinstance(dps, int) or isinstance(dps, bool)
                                or not 1 <= dps <= MAX_DPS):
            raise ParameterError(f"`dps` must be an integer number of digits in [1, {MAX_DPS}]; "
                                 f"got {dps!r}")
        self.dps = dps

    @property
    def working_dps(self) -> int:
        return DEFAULT_DPS if self.dps is None else self.dps

    def _bound(self, predicted: Any, target: Any) -> PreciseContext:
        if self.dps is not None:
            return self
        tags = [x.dps for x in (predicted, target) if getattr(x, "dps", None) is not None]
        return PreciseContext(max(tags, default=DEFAULT_DPS))

    # Both hold the package's precision lock while mpmath's global precision is changed.
    def _converting(self) -> contextlib.AbstractContextManager[Any]:
        return mpmath_prec(dps=self.working_dps)

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        return mpmath_prec(dps=self.working_dps)

    def finish_deriv(self, deriv: Any) -> PreciseTensor:
        return _tag(super().finish_deriv(deriv), self.working_dps)

    def __repr__(self) -> str:
        return f"PreciseContext(dps={self.dps})"

    # -- conversion -----------------------------------------------------------------------------
    def _from_int(self, v: int) -> mpmath.mpf:
        return mpmath.mpf(v)

    def _from_float(self, v: float | np.floating) -> mpmath.mpf:
        return mpmath.mpf(float(v))

    def _from_fraction(self, v: Fraction) -> mpmath.mpf:
        return mpmath.mpf(v.numerator) / v.denominator

    def _from_other(self, v: Any) -> mpmath.mpf | None:
        if getattr(v, "is_Rational", False):  # sympy Rational / Integer
            return self._from_fraction(Fraction(int(v.p), int(v.q)))
        if getattr(v, "is_Float", False):  # sympy Float: its binary value
            return mpmath.mpf(v._mpf_)
        if type(v).__module__.startswith("flint") and hasattr(v, "man_exp"):
            # A point arb ball is one binary number; a wide ball is not a number.
            if v.is_nan():
                return _NAN
            if v.is_exact() and v.is_finite():
                man, exp = v.man_exp()
                return mpmath.mpf((int(man), int(exp)))
        return None

    # -- branches -------------------------------------------------------------------------------
    def _lt1(self, a: Any, b: Any) -> bool:
        return bool(a < b)

    def _le1(self, a: Any, b: Any) -> bool:
        return bool(a <= b)

    def _isnan1(self, x: Any) -> bool:
        return bool(mpmath.isnan(x))

    def _max1(self, a: Any, b: Any) -> Any:
        if mpmath.isnan(a) or mpmath.isnan(b):
            return _NAN
        return b if a < b else a

    def _min1(self, a: Any, b: Any) -> Any:
        if mpmath.isnan(a) or mpmath.isnan(b):
            return _NAN
        return b if b < a else a

    # -- functions ------------------------------------------------------------------------------
    def _abs1(self, x: Any) -> Any:
        return mpmath.fabs(x)

    def _sign1(self, x: Any) -> Any:
        return mpmath.sign(x)

    def _exp1(self, x: Any) -> Any:
        return mpmath.exp(x)

    def _expm1_1(self, x: Any) -> Any:
        return mpmath.expm1(x)

    def _log1(self, x: Any) -> Any:
        return _NAN if x < 0 else mpmath.log(x)

    def _log1p1(self, x: Any) -> Any:
        return _NAN if x < -1 else mpmath.log1p(x)

    def _sqrt1(self, x: Any) -> Any:
        return _NAN if x < 0 else mpmath.sqrt(x)

    def _tanh1(self, x: Any) -> Any:
        return mpmath.tanh(x)

    # -- reductions -----------------------------------------------------------------------------
    def _sum1(self, xs: list[Any]) -> Any:
        return mpmath.fsum(xs) if xs else mpmath.mpf(0)

    def _norm1(self, xs: list[Any]) -> Any:
        return mpmath.sqrt(mpmath.fsum(xs, squared=True)) if xs else mpmath.mpf(0)

    def _shift1(self, xs: list[Any]) -> Any:
        finite = [x for x in xs if mpmath.isfinite(x)]
        # An infinite maximum would turn finite entries into nan; any finite shift keeps the
        # value (and an infinite entry still dominates).
        return max(finite) if finite else mpmath.mpf(0)

    def _outside1(self, x: Any, lo: Any, hi: Any) -> bool:
        return bool((lo is not None and x < lo) or (hi is not None and x > hi))


#: The precise semantics (``ctx=torchlean.contexts.precise`` selects it; 50 digits unless the
#: inputs carry more).
CONTEXT = PreciseContext()


def tensor(values: Any, dps: int = DEFAULT_DPS) -> PreciseTensor:
    """``values`` as an object array of ``mpf`` at ``dps`` decimal digits (0-d for a scalar).

    Floats are converted exactly; integers and Fractions are rounded to ``dps`` digits.
    """
    ctx = PreciseContext(dps)
    with ctx._converting():
        return _tag(ctx._convert(values, "values"), dps)
