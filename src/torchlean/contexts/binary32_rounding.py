"""Correctly rounded binary32 elementary functions: ``exp``, ``expm1``, ``log``, ``log1p``,
``tanh``.

For a binary32 input ``x`` the result is ``RN32(f(x))``: the exact real ``f(x)`` rounded once to
the nearest binary32 number, ties to even (overflow to infinity and gradual underflow as IEEE 754
rounds them). Two steps give it:

1. ``y = f64(x)``, the binary64 library function at the (exact) binary64 value of ``x``. Any
   reasonable libm is within a few binary64 ulps of ``f(x)``, far inside the guard band
   ``|y - f(x)| <= TOL * |y|`` with ``TOL = 2**-40`` (about 8000 binary64 ulps).
2. If every real in ``[y (1 - TOL), y (1 + TOL)]`` rounds to the same binary32 number, that number
   is ``RN32(f(x))``, whatever the library's exact error was. Otherwise (the band straddles a
   binary32 rounding boundary: about 2**-15 of random inputs) the element is recomputed with
   mpmath in a Ziv loop: at ``prec`` bits, then twice as many, until the same band test at the
   mpmath precision decides it (holding the package's precision lock, as mpmath's precision is
   one global setting).

So the result depends on IEEE 754 basic operations (the binary64 -> binary32 conversion) and on
the guard band, never on the exact bits of the platform's libm: it is the same on every machine.
mpmath is imported only when step 2 is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from torchlean.contexts._precision import LOCK, mpmath_prec
from torchlean.errors import UnsupportedOperationError

__all__ = ["FUNCTIONS", "TOL", "correctly_rounded", "round_mpf_to_binary32"]

#: Relative guard band around the binary64 library result (see the module docstring).
TOL = 2.0**-40

#: The functions, by name: the binary64 NumPy ufunc and the mpmath function of the same name.
FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": np.exp,
    "expm1": np.expm1,
    "log": np.log,
    "log1p": np.log1p,
    "tanh": np.tanh,
}

# First mpmath precision (bits) and the one at which the Ziv loop gives up and takes the
# nearest (binary32 worst cases need far fewer than 2 * 24 + 64 bits; this is a backstop).
_FIRST_PREC = 128
_LAST_PREC = 4096

_F32_POS_INF = np.float32(np.inf)
_F32_NEG_INF = np.float32(-np.inf)


def correctly_rounded(name: str, x: np.ndarray) -> np.ndarray:
    """``RN32(f(x))`` elementwise for a float32 array ``x`` (any shape, 0-d included).

    Returns a new float32 ndarray of the shape of ``x``. NaN in gives NaN out; infinities and
    signed zeros follow the IEEE 754 / C99 special cases of ``f``.
    """
    f64 = FUNCTIONS[name]
    x = np.asarray(x, dtype=np.float32, order="C")
    with np.errstate(all="ignore"):
        y = f64(x.astype(np.float64))
        out = y.astype(np.float32, order="C")
        lo = (y * (1 - TOL)).astype(np.float32)
        hi = (y * (1 + TOL)).astype(np.float32)
    unsure = (lo != hi) & ~np.isnan(y)
    if unsure.any():
        flat_x = x.reshape(-1)
        flat_out = out.reshape(-1)
        for i in np.flatnonzero(unsure):
            flat_out[i] = _mp_rounded(name, float(flat_x[i]))
    return out


def _mp_rounded(name: str, x: float) -> np.float32:
    """``RN32(f(x))`` for one finite binary32 ``x`` with mpmath, in a Ziv loop."""
    try:
        import mpmath
    except ImportError as exc:  # pragma: no cover - mpmath ships with the test and exact extras
        raise UnsupportedOperationError(
            f"binary32 `{name}` needs mpmath to round {x!r} correctly (its binary64 value lies "
            "next to a binary32 rounding boundary); install torchlean[exact]"
        ) from exc
    fn = getattr(mpmath, name)
    prec = _FIRST_PREC
    while True:
        with mpmath_prec(prec=prec):
            v = fn(mpmath.mpf(x))
            # mpmath's error at `prec` bits is a few ulps; 2**-(prec - 16) leaves a wide margin.
            band = mpmath.ldexp(abs(v), 16 - prec)
            a = round_mpf_to_binary32(v - band)
            b = round_mpf_to_binary32(v + band)
            if a.view(np.uint32) == b.view(np.uint32):
                return a
            if prec >= _LAST_PREC:
                return round_mpf_to_binary32(v)
        prec *= 2


def _value(mpmath: Any, c: np.float32) -> Any:
    """The exact real value of a binary32 number; infinity stands for 2**128 (the next power of
    two past the largest finite number), which makes IEEE overflow fall out of "nearest"."""
    if np.isinf(c):
        return mpmath.ldexp(1 if c > 0 else -1, 128)
    return mpmath.mpf(float(c))


def round_mpf_to_binary32(v: Any) -> np.float32:
    """The binary32 number nearest to the real ``v`` (an mpmath ``mpf``), ties to even.

    ``v`` need not be exact to 24 bits: the candidates are the binary64 rounding of ``v`` and
    its two binary32 neighbours, and the nearest one is chosen by exact mpmath comparisons, so no
    double rounding can occur. Overflow gives +-inf (values from ``(2 - 2**-24) 2**127`` up),
    tiny values round to subnormals or to a zero of the sign of ``v``.
    """
    import mpmath

    if v == 0:
        return np.float32(0.0)
    sign_neg = v < 0
    try:
        with np.errstate(over="ignore"):
            guess = np.float32(float(v))
    except OverflowError:  # beyond binary64: certainly beyond binary32
        guess = _F32_NEG_INF if sign_neg else _F32_POS_INF
    with np.errstate(over="ignore"):
        cands = (np.nextafter(guess, _F32_NEG_INF), guess, np.nextafter(guess, _F32_POS_INF))
    # The working precision must hold the exact candidates and their differences with v; the
    # caller's precision is read under the lock, as no other thread's evaluation can change it.
    with LOCK, mpmath_prec(prec=max(mpmath.mp.prec, 64) + 300):
        dist = [abs(v - _value(mpmath, c)) for c in cands]
        best = min(dist)
        ties = [c for c, d in zip(cands, dist, strict=True) if d == best]
    pick = ties[0]
    if len(ties) > 1:
        pick = next(c for c in ties if int(c.view(np.uint32)) & 1 == 0)
    if pick == 0:
        return np.float32(-0.0) if sign_neg else np.float32(0.0)
    return np.float32(pick)
