"""The rational semantics: ``fractions.Fraction``, exact and decidable.

Tensors are NumPy object arrays of Fractions (:func:`tensor`). Addition, subtraction,
multiplication, division and every comparison are exact, so each branch is decided exactly and
the piecewise-polynomial losses (mse, mae, huber, hinge: values and derivatives) come out as
exact rationals; so do the derivatives of the clamped probability losses, which need only
comparisons and division.

- Python floats are read as their shortest decimal (``0.1`` -> ``1/10``, ``1e-6`` ->
  ``1/1000000``); NumPy float32 as its own shortest decimal; integers and Fractions exactly.
  NaN and infinities have no Fraction and are refused with a DomainError.
- ``exp``, ``expm1``, ``log``, ``log1p``, ``sqrt``, ``tanh`` and ``norm`` have irrational results
  and raise :class:`~torchlean.errors.UnsupportedOperationError` naming the function (never a
  silent 0); use ``exact`` (sympy) or ``precise`` (mpmath) for those losses.
- ``exp_shift`` is 0; ``isnan`` is always false.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, NoReturn

import numpy as np

from torchlean.contexts._object import ObjectContext, shortest_decimal
from torchlean.errors import DomainError, UnsupportedOperationError

__all__ = ["CONTEXT", "RationalContext", "tensor"]


class RationalContext(ObjectContext):
    """Context over Fractions."""

    name = "rational"
    kind = "Fractions"
    scalar_type = Fraction

    # -- conversion -----------------------------------------------------------------------------
    def _from_int(self, v: int) -> Fraction:
        return Fraction(v)

    def _from_float(self, v: float | np.floating) -> Fraction:
        if not math.isfinite(v):
            raise DomainError(
                f"must be a finite number for the rational semantics (a Fraction has no nan or "
                f"infinity); got {float(v)!r} (ctx=torchlean.contexts.precise accepts it)"
            )
        return shortest_decimal(v)

    def _from_fraction(self, v: Fraction) -> Fraction:
        return v

    def _from_other(self, v: Any) -> Fraction | None:
        if getattr(v, "is_Rational", False):  # a sympy Rational or Integer
            return Fraction(int(v.p), int(v.q))
        return None

    # -- branches -------------------------------------------------------------------------------
    def _lt1(self, a: Fraction, b: Fraction) -> bool:
        return a < b

    def _le1(self, a: Fraction, b: Fraction) -> bool:
        return a <= b

    def _isnan1(self, x: Fraction) -> bool:
        return False

    def _max1(self, a: Fraction, b: Fraction) -> Fraction:
        return b if a < b else a

    def _min1(self, a: Fraction, b: Fraction) -> Fraction:
        return b if b < a else a

    # -- functions ------------------------------------------------------------------------------
    def _sign1(self, x: Fraction) -> Fraction:
        return Fraction((x > 0) - (x < 0))

    def _sum1(self, xs: list[Any]) -> Fraction:
        return sum(xs, Fraction(0))

    def _shift1(self, xs: list[Any]) -> Fraction:
        return Fraction(0)

    def _outside1(self, x: Fraction, lo: Any, hi: Any) -> bool:
        return (lo is not None and x < lo) or (hi is not None and x > hi)

    # The irrational functions refuse at the method, so an empty tensor refuses too.
    def exp(self, x: Any) -> NoReturn:
        _refuse("exp")

    def expm1(self, x: Any) -> NoReturn:
        _refuse("expm1")

    def log(self, x: Any) -> NoReturn:
        _refuse("log")

    def log1p(self, x: Any) -> NoReturn:
        _refuse("log1p")

    def sqrt(self, x: Any) -> NoReturn:
        _refuse("sqrt")

    def tanh(self, x: Any) -> NoReturn:
        _refuse("tanh")

    def norm(self, x: Any) -> NoReturn:
        _refuse("norm", "it is a square root")


def _refuse(fn: str, why: str = "its values are irrational in general") -> NoReturn:
    raise UnsupportedOperationError(
        f"the rational semantics cannot compute `{fn}` ({why}); use "
        "ctx=torchlean.contexts.exact (sympy, exact symbolic) or torchlean.contexts.precise "
        "(mpmath, 50 digits)"
    )


#: The rational semantics (``ctx=torchlean.contexts.rational`` selects it).
CONTEXT = RationalContext()


def tensor(values: Any) -> np.ndarray:
    """``values`` as an object array of Fractions (0-d for a scalar); floats are read as their
    shortest decimal (``0.1`` -> ``Fraction(1, 10)``)."""
    return CONTEXT._convert(values, "values")
