"""The 50-digit oracle: the spec itself, evaluated in :mod:`torchlean.contexts.precise`.

Every reference value of the certifier is the same spec function the user calls, run over
50-digit mpmath numbers on the exact binary values of the float inputs. It is an oracle for the
*arithmetic* (rounding, overflow, cancellation), not for the formula: the symbolic and kink checks
hold the formula to the derivative of the value.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from torchlean.contexts._precision import mpmath_prec

__all__ = ["DPS", "Oracle", "ulps"]

#: decimal digits of the oracle
DPS = 50


class Oracle:
    """50-digit evaluation of spec functions, and the mpmath helpers the plans need."""

    def __init__(self, dps: int = DPS) -> None:
        import mpmath

        from torchlean.contexts import precise

        precise.PreciseContext(dps)  # the ParameterError for a dps it does not accept
        self.dps = dps
        self.module = precise
        self._mp = mpmath.mp
        self.source = "torchlean.contexts.precise"

    def digits(self) -> contextlib.AbstractContextManager[None]:
        """mpmath arithmetic at the oracle's precision inside the block (holding the package's
        precision lock: mpmath's precision is one global setting)."""
        return mpmath_prec(dps=self.dps)

    # -- numbers ---------------------------------------------------------------------------------
    def mpf(self, v: Any) -> Any:
        """A number (float read exactly, or a decimal string) as a 50-digit mpf."""
        with self.digits():
            return self._mp.mpf(v)

    def sqrt(self, v: Any) -> Any:
        with self.digits():
            return self._mp.sqrt(v)

    def fsum(self, values: Iterable[Any]) -> Any:
        with self.digits():
            return self._mp.fsum(values)

    def const(self, v: float) -> Any:
        """The oracle semantics' own reading of a parameter (``eps`` as the decimal 10**-6)."""
        with self.digits():
            return _scalar(self.module.CONTEXT.const(v))

    def tensor(self, values: Any) -> Any:
        """Float values (read exactly) or mpf values as a tensor of the oracle semantics."""
        return self.module.tensor(values, dps=self.dps)

    # -- spec evaluation -------------------------------------------------------------------------
    def value(self, fn: Callable[..., Any], p: Any, t: Any, params: Mapping[str, Any]) -> Any:
        """``fn(p, t)`` at 50 digits, as an mpf (NaN where the spec gives NaN)."""
        with self.digits():
            return _scalar(fn(self.tensor(p), self.tensor(t), ctx=self.module, **params))

    def deriv(self, fn: Callable[..., Any], p: Any, t: Any,
              params: Mapping[str, Any]) -> np.ndarray:
        """``fn(p, t)`` at 50 digits, as an object array of mpf of the shape of ``p``."""
        with self.digits():
            g = fn(self.tensor(p), self.tensor(t), ctx=self.module, **params)
            return np.vectorize(_scalar, otypes=[object])(np.asarray(g, dtype=object))


def _scalar(x: Any) -> Any:
    """An mpf from whatever a semantics returns for one number (0-d array, mpf, ...)."""
    import mpmath

    if isinstance(x, np.ndarray):
        x = x.reshape(()).item() if x.size == 1 else x
    for attr in ("mid", "value"):
        if not isinstance(x, mpmath.mpf) and hasattr(x, attr) and not callable(getattr(x, attr)):
            x = getattr(x, attr)
    return mpmath.mpf(x)


def ulps(computed: float, exact: Any, dtype: Any) -> float:
    """``|computed - exact| / spacing(exact rounded to dtype)``; 0 when both are NaN or the
    same infinity, and also when ``exact`` overflows ``dtype`` and ``computed`` is that
    infinity (its correct rounding). Evaluated at the oracle's precision."""
    with mpmath_prec(dps=DPS):
        return _ulps(computed, exact, dtype)


def _ulps(computed: float, exact: Any, dtype: Any) -> float:
    import mpmath

    info = np.finfo(dtype)
    c_nan, e_nan = math.isnan(computed), mpmath.isnan(exact)
    if c_nan or e_nan:
        return 0.0 if c_nan and e_nan else math.inf
    # the rounding of exact to dtype (through float64: only the spacing uses it)
    with np.errstate(over="ignore"):
        r = np.asarray(float(exact)).astype(dtype) if not mpmath.isinf(exact) else None
    if r is None or math.isinf(float(r)):
        limit = mpmath.mpf(float(info.max)) * (1 + mpmath.mpf(2) ** -(info.nmant + 1))
        rounds_to_inf = mpmath.isinf(exact) or abs(exact) >= limit
        if rounds_to_inf and math.isinf(computed) and (computed > 0) == (exact > 0):
            return 0.0
        if math.isinf(computed) or rounds_to_inf:
            return math.inf
        r = np.asarray(info.max, dtype=dtype)
    if math.isinf(computed):
        return math.inf
    spacing = float(np.spacing(np.abs(r)))
    return float(abs(mpmath.mpf(computed) - exact) / spacing)
