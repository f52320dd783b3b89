"""The exact semantics: sympy expressions, real numbers with no rounding at all.

Tensors are NumPy object arrays of sympy expressions (:func:`tensor`, :func:`symbols`); a loss
over them is a sympy expression, and over numbers an exact number (``mse`` of ``[1/2, 2]``
against zeros is ``17/8``).

- Python floats are read as their shortest decimal: ``0.1`` is ``1/10`` and ``EPSILON = 1e-6`` is
  ``1/10**6`` (the number the user typed, not the binary double nearest to it). Integers are
  exact; sympy objects are kept as they are.
- A branch is a ``sympy.Piecewise``; where its condition is decidable it is decided, so numbers
  in give numbers out and symbols in give ``Piecewise`` out. ``maximum(a, b)`` is
  ``Piecewise((b, a < b), (a, True))`` (and ``minimum`` alike), which differentiates branch by
  branch, unlike ``sympy.Max``.
- ``expm1(x)`` is ``exp(x) - 1`` and ``log1p(x)`` is ``log(1 + x)``: in exact arithmetic there is
  no cancellation to avoid. ``norm`` is ``sqrt(sum(x**2))``; ``sign`` is ``sympy.sign``;
  ``exp_shift`` is 0 (log-softmax does not depend on the shift).
- Results are not simplified (call ``sympy.simplify`` or ``sympy.nsimplify`` as needed).
- ``nan`` is ``sympy.nan`` and propagates; comparisons with it are false, as in IEEE arithmetic.
"""

from __future__ import annotations

import contextlib
from fractions import Fraction
from typing import Any

import numpy as np
import sympy

from torchlean.contexts._object import ObjectContext, shortest_decimal
from torchlean.contexts._precision import mpmath_prec

__all__ = ["CONTEXT", "ExactContext", "symbols", "tensor"]


def _is_bool(c: Any) -> bool:
    return isinstance(c, bool | np.bool_) or c is sympy.true or c is sympy.false


class ExactContext(ObjectContext):
    """Context over sympy expressions."""

    name = "exact"
    kind = "sympy expressions"
    scalar_type = sympy.Basic

    # sympy decides comparisons of numbers such as tanh(1/2) < 1 by evaluating them with mpmath,
    # and sets mpmath's global precision to do it: so the evaluation holds the precision lock.
    def scope(self) -> contextlib.AbstractContextManager[Any]:
        return mpmath_prec()

    # -- conversion -----------------------------------------------------------------------------
    def _from_int(self, v: int) -> Any:
        return sympy.Integer(v)

    def _from_float(self, v: float | np.floating) -> Any:
        if np.isnan(v):
            return sympy.nan
        if np.isinf(v):
            return sympy.oo if v > 0 else -sympy.oo
        f = shortest_decimal(v)
        return sympy.Rational(f.numerator, f.denominator)

    def _from_fraction(self, v: Fraction) -> Any:
        return sympy.Rational(v.numerator, v.denominator)

    def _from_other(self, v: Any) -> Any:
        module = type(v).__module__ or ""
        if module.startswith("mpmath") and hasattr(v, "_mpf_"):
            # An mpf is a binary number: read it exactly, not by its decimal digits.
            return (sympy.Rational(*_mpf_ratio(v)) if _is_finite_mpf(v)
                    else self._from_float(float(v)))
        return None

    # -- branches -------------------------------------------------------------------------------
    def _compare(self, rel: Any, a: Any, b: Any) -> Any:
        if a is sympy.nan or b is sympy.nan:
            return sympy.false
        return rel(a, b)

    def _lt1(self, a: Any, b: Any) -> Any:
        return self._compare(sympy.Lt, a, b)

    def _le1(self, a: Any, b: Any) -> Any:
        return self._compare(sympy.Le, a, b)

    def _and1(self, a: Any, b: Any) -> Any:
        return sympy.And(a, b)

    def _isnan1(self, x: Any) -> bool:
        return x is sympy.nan

    def _where1(self, c: Any, a: Any, b: Any) -> Any:
        if _is_bool(c):
            return a if c else b
        return sympy.Piecewise((a, c), (b, True))

    def _max1(self, a: Any, b: Any) -> Any:
        if a is sympy.nan or b is sympy.nan:
            return sympy.nan
        return self._where1(self._lt1(a, b), b, a)

    def _min1(self, a: Any, b: Any) -> Any:
        if a is sympy.nan or b is sympy.nan:
            return sympy.nan
        return self._where1(self._lt1(b, a), b, a)

    # -- functions ------------------------------------------------------------------------------
    def _abs1(self, x: Any) -> Any:
        return sympy.Abs(x)

    def _sign1(self, x: Any) -> Any:
        return sympy.sign(x)

    def _exp1(self, x: Any) -> Any:
        return sympy.exp(x)

    def _expm1_1(self, x: Any) -> Any:
        return sympy.exp(x) - 1

    def _log1(self, x: Any) -> Any:
        return sympy.log(x)

    def _log1p1(self, x: Any) -> Any:
        return sympy.log(1 + x)

    def _sqrt1(self, x: Any) -> Any:
        return sympy.sqrt(x)

    def _tanh1(self, x: Any) -> Any:
        return sympy.tanh(x)

    # -- reductions -----------------------------------------------------------------------------
    def _sum1(self, xs: list[Any]) -> Any:
        return sympy.Add(*xs) if xs else sympy.Integer(0)

    def _norm1(self, xs: list[Any]) -> Any:
        return sympy.sqrt(self._sum1([x**2 for x in xs]))

    def _shift1(self, xs: list[Any]) -> Any:
        return sympy.Integer(0)

    # -- domain checks --------------------------------------------------------------------------
    def _outside1(self, x: Any, lo: Any, hi: Any) -> bool:
        # Only a decided comparison counts; a symbol may lie anywhere.
        below = lo is not None and self._lt1(x, lo) is sympy.true
        above = hi is not None and self._lt1(hi, x) is sympy.true
        return below or above


def _is_finite_mpf(v: Any) -> bool:
    import mpmath

    return bool(mpmath.isfinite(v))


def _mpf_ratio(v: Any) -> tuple[int, int]:
    man, exp = v.man_exp
    return (int(man) * 2**exp, 1) if exp >= 0 else (int(man), 2**-exp)


#: The exact semantics (``ctx=torchlean.contexts.exact`` selects it).
CONTEXT = ExactContext()


def tensor(values: Any) -> np.ndarray:
    """``values`` as an object array of sympy expressions (0-d for a scalar).

    Python floats are read as their shortest decimal (``0.1`` -> ``1/10``), integers exactly;
    sympy objects are kept.
    """
    return CONTEXT._convert(values, "values")


def symbols(name: str, shape: tuple[int, ...] | int) -> np.ndarray:
    """An object array of real ``sympy.Symbol``\\ s named ``f"{name}_{i}_{j}"`` (``name`` for
    shape ``()``)."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(shape):
        out[idx] = sympy.Symbol("_".join([name, *map(str, idx)]), real=True)
    return out
