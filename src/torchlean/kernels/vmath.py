"""Float64 ``exp``, ``expm1``, ``log`` and ``log1p`` written so that LLVM can vectorise the loops
that call them.

A loop that calls libm stays scalar (3 ns per ``exp``/``log``, 7 ns per ``expm1``/``log1p`` on
one core here); these are straight-line float and integer arithmetic plus selects, which LLVM
turns into 8-lane AVX-512 code. Each is accurate to about 1 ulp (``tests/test_kernels.py``
measures them against NumPy on a million points and at the special values).

Methods (textbook range reductions; ``log``'s polynomial is the Taylor series, truncated where the
next term is below 2**-60 of the result on the reduced range):

- ``exp(x) = 2**k e**r``: ``k = round(x / ln 2)`` (the ``1.5 * 2**52`` shifter), ``r = x - k ln 2``
  with ``ln 2`` split in two (``k * LN2_HI`` exact), ``|r| <= ln(2) / 2``;
  ``e**r - 1 = r + r**2 q(r)`` with ``q`` the degree-10 Chebyshev interpolant of
  ``(e**r - 1 - r) / r**2`` on that interval (fitted with mpmath at 50 digits: within
  ``4e-19 e**r`` of ``e**r - 1`` there, closer than the Taylor series to degree 13 and one
  multiply-add shorter); ``2**k`` applied as two exact powers of two so subnormal results round
  once (:func:`exp_split` leaves the scaling to its caller).
- ``expm1``: for ``|x| < ln(2) / 2`` the series ``x + x**2/2 + ...`` to degree 14; otherwise
  ``2**k (e**r - 1) + (2**k - 1)``, which cancels at most a factor 2.
- ``log(x) = e ln 2 + log(m)`` with ``x = m 2**e``, ``m`` in ``[sqrt(1/2), sqrt(2))``; with
  ``f = m - 1`` and ``s = f / (2 + f)``, ``log(1 + f) = 2 atanh(s) = f - s (f - 2 T)``,
  ``T = s**2/3 + s**4/5 + ...`` to ``s**20`` (``|s| <= 0.172``).
- ``log1p(y) = log(u) + (y - (u - 1)) / u`` with ``u = 1 + y`` rounded: the second term restores
  what rounding ``1 + y`` lost.
- ``exp_split_short``, ``atanh2_short``: :func:`exp_split` and :func:`atanh2_small` from shorter
  polynomials (degree 8 in ``r``, 4 in ``s**2``; 2**-48 and 2**-50 of the result), for float32
  results where nothing cancels.
- ``log_split``/``log_from_split``: ``log`` in two halves for a caller that divides anyway and
  shares one reciprocal between several divisions (``r`` near ``1 / (2 + f)``, a few ulps off
  changes the result by a few ulps of ``f**2``), a shorter series (2**-50, for float32
  results); positive normal arguments only.
- ``atanh2_small(s) = 2 atanh(s) = log((1 + s) / (1 - s))`` for ``|s| <= 0.112``: the Taylor series
  ``2 s (1 + s**2/3 + s**4/5 + ...)`` to ``s**16`` (the next term is below ``2**-55`` of the
  result), no division.
"""

from __future__ import annotations

import math

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["EXP_OVERFLOW", "EXP_UNDERFLOW", "atanh2_short", "atanh2_small", "exp", "exp_expm1",
           "exp_minus", "exp_split", "exp_split_short", "expm1", "fence", "log", "log1p",
           "log_from_split", "log_split"]

_LN2_HI = 0.6931471805598903  # ln 2 to 42 fraction bits: k * _LN2_HI is exact for |k| < 2**11
_LN2_LO = 5.497923018708371e-14  # ln 2 - _LN2_HI
_INV_LN2 = 1.4426950408889634
_SHIFT = 6755399441055744.0  # 1.5 * 2**52: adding it rounds to an integer
_SQRT2 = 1.4142135623730951
_EXP_MAX = 709.782712893384  # log(DBL_MAX): above, exp overflows
_EXP_MIN = -745.1332191019412  # log(2**-1075): below, exp rounds to 0
#: above, ``exp`` is infinite; below, 0
EXP_OVERFLOW, EXP_UNDERFLOW = _EXP_MAX, _EXP_MIN
_HALF_LN2 = 0.34657359027997264
_INF = math.inf
_NAN = math.nan


@intrinsic
def _bits(typingctx, x):  # type: ignore[no-untyped-def]
    """The IEEE bits of a float64 as an int64."""
    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def _float(typingctx, b):  # type: ignore[no-untyped-def]
    """The float64 with IEEE bits ``b``."""
    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@intrinsic
def fence(typingctx, x):  # type: ignore[no-untyped-def]
    """``x``, which LLVM's fast-math rewrites may not merge with the expression that uses it
    (``llvm.arithmetic.fence``; no instruction is emitted). Under ``fastmath`` ``reassoc``
    LLVM turns ``g * (1 / n)`` into ``g / n``, a division per element; ``g * fence(1 / n)``
    keeps one reciprocal, hoisted out of the loop."""
    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        fn = builder.module.declare_intrinsic("llvm.arithmetic.fence", [ir.DoubleType()])
        return builder.call(fn, args)
    return types.float64(types.float64), codegen


@njit(inline="always", error_model="numpy")
def _pow2(k: int) -> float:
    """``2.0**k`` for ``-1022 <= k <= 1023``."""
    return _float((k + 1023) << 52)


@njit(inline="always", error_model="numpy")
def _reduce(x: float) -> tuple[float, float]:
    """``(k, r)`` with ``x = k ln 2 + r``, ``k`` integral, ``|r| <= ln(2) / 2`` (plus rounding)."""
    kf = (x * _INV_LN2 + _SHIFT) - _SHIFT
    r = (x - kf * _LN2_HI) - kf * _LN2_LO
    return kf, r


# q(r) = (e**r - 1 - r) / r**2 on |r| <= 1.0001 ln(2) / 2: the degree-10 Chebyshev interpolant's
# coefficients, highest degree first (mpmath.chebyfit at 50 digits, rounded to float64)
_Q10 = 2.0914686968086876e-09
_Q9 = 2.5105217004720745e-08
_Q8 = 2.75572736431103e-07
_Q7 = 2.7557255400206422e-06
_Q6 = 2.4801587325547743e-05
_Q5 = 0.00019841269874820627
_Q4 = 0.0013888888888883748
_Q3 = 0.008333333333326136
_Q2 = 0.04166666666666667
_Q1 = 0.1666666666666667
_Q0 = 0.5


@njit(inline="always", error_model="numpy")
def _expm1_reduced(r: float) -> float:
    """``e**r - 1`` for ``|r| <= 0.35``: ``r + r**2 q(r)``."""
    p = _Q10 * r + _Q9
    p = p * r + _Q8
    p = p * r + _Q7
    p = p * r + _Q6
    p = p * r + _Q5
    p = p * r + _Q4
    p = p * r + _Q3
    p = p * r + _Q2
    p = p * r + _Q1
    p = p * r + _Q0
    return r + r * r * p


@njit(inline="always", error_model="numpy")
def exp(x: float) -> float:
    """``e**x``."""
    xc = min(max(x, -746.0), 710.0)
    kf, r = _reduce(xc)
    k = int(kf)
    k1 = k >> 1
    y = (1.0 + _expm1_reduced(r)) * _pow2(k1) * _pow2(k - k1)
    y = _INF if x > _EXP_MAX else y
    y = 0.0 if x < _EXP_MIN else y
    return x if x != x else y


@njit(inline="always", error_model="numpy")
def expm1(x: float) -> float:
    """``e**x - 1``, accurate near 0."""
    # small |x|: the series directly
    p = 1.0 / 87178291200.0
    p = p * x + 1.0 / 6227020800.0
    p = p * x + 1.0 / 479001600.0
    p = p * x + 1.0 / 39916800.0
    p = p * x + 1.0 / 3628800.0
    p = p * x + 1.0 / 362880.0
    p = p * x + 1.0 / 40320.0
    p = p * x + 1.0 / 5040.0
    p = p * x + 1.0 / 720.0
    p = p * x + 1.0 / 120.0
    p = p * x + 1.0 / 24.0
    p = p * x + 1.0 / 6.0
    p = p * x + 0.5
    small = x + x * x * p
    # otherwise 2**k (e**r - 1) + (2**k - 1) on [-60, 40] (2**k stays normal); below -60 the
    # result is -1 to the last bit, above 40 it is exp(x) to the last bit
    xc = min(max(x, -60.0), 40.0)
    kf, r = _reduce(xc)
    k = int(kf)
    k1 = k >> 1
    s1 = _pow2(k1)
    s2 = _pow2(k - k1)
    large = (_expm1_reduced(r) * s1) * s2 + (s1 * s2 - 1.0)
    y = small if abs(x) < _HALF_LN2 else large
    y = exp(x) if x > 40.0 else y
    return x if x != x else y


@njit(inline="always", error_model="numpy")
def exp_expm1(x: float) -> tuple[float, float]:
    """``(e**x, e**x - 1)`` from one range reduction: :func:`exp` and :func:`expm1`'s forms
    (below ``|x| = ln(2) / 2`` the reduction leaves ``r = x``, so the series is ``expm1``)."""
    xc = min(max(x, -746.0), 710.0)
    kf, r = _reduce(xc)
    k = int(kf)
    k1 = k >> 1
    s1 = _pow2(k1)
    s2 = _pow2(k - k1)
    pr = _expm1_reduced(r)
    e = (1.0 + pr) * s1 * s2
    e = _INF if x > _EXP_MAX else e
    e = 0.0 if x < _EXP_MIN else e
    m = (pr * s1) * s2 + (s1 * s2 - 1.0)
    m = pr if abs(x) < _HALF_LN2 else m
    m = e if x > 40.0 else m
    return (x, x) if x != x else (e, m)


@njit(inline="always", error_model="numpy")
def exp_split(x: float) -> tuple[float, float]:
    """``(c, q)`` with ``e**x = c (1 + q)``, ``c`` a power of two and ``|q| < 0.42``, for ``x``
    clamped to ``[-700, 700]`` (where ``c`` is normal: beyond, the caller selects its own
    results). ``c q + (c - y)`` is then ``e**x - y`` accurate relative to itself where it
    cancels: ``c - y`` is exact for ``y`` within a factor 2 of ``c`` (Sterbenz), and ``c q`` is
    exact scaling of ``q``, which at ``c = 1`` is ``expm1(x)``."""
    xc = min(max(x, -700.0), 700.0)
    kf, r = _reduce(xc)
    return _pow2(int(kf)), _expm1_reduced(r)


@njit(inline="always", error_model="numpy")
def exp_minus(x: float, y: float) -> tuple[float, float]:
    """``(e**x, e**x - y)`` from :func:`exp_split`, the difference as ``c q + (c - y)``:
    accurate relative to itself where it cancels, with no select between forms and no
    division. Meant for results rounded to float32 (products with float32 numbers included):
    beyond ``|x| = 700``, where ``c`` would leave the normal range, ``e**x`` is exp's own 0 or
    infinity there and the difference ``e**x - y``; NaN is the caller's to select."""
    c, q = exp_split(x)
    cq = c * q
    e = cq + c
    d = cq + (c - y)
    e = _INF if x > _EXP_MAX else e
    e = 0.0 if x < _EXP_MIN else e
    d = (e - y) if abs(x) > 700.0 else d
    return e, d


# q(r) as above, the degree-8 interpolant: e**r - 1 within 13 ulps (2**-48) of itself
_Q8S = (2.761380686153829e-07, 2.762511557828763e-06, 2.4801536388690766e-05,
        0.00019841208732536384, 0.0013888888905881542, 0.008333333353729397,
        0.04166666666665136, 0.1666666666664829, 0.5)


@njit(inline="always", error_model="numpy")
def exp_split_short(x: float) -> tuple[float, float]:
    """:func:`exp_split` with ``q`` from a degree-8 polynomial, within 13 float64 ulps of
    ``e**r - 1`` (2**-48): for a float32 result that nothing cancels (``c q + (c - y)`` near
    its zero needs :func:`exp_split`)."""
    xc = min(max(x, -700.0), 700.0)
    kf, r = _reduce(xc)
    p = _Q8S[0] * r + _Q8S[1]
    p = p * r + _Q8S[2]
    p = p * r + _Q8S[3]
    p = p * r + _Q8S[4]
    p = p * r + _Q8S[5]
    p = p * r + _Q8S[6]
    p = p * r + _Q8S[7]
    p = p * r + _Q8S[8]
    return _pow2(int(kf)), r + r * r * p


@njit(inline="always", error_model="numpy")
def log(x: float) -> float:
    """Natural logarithm (NaN below 0, ``-inf`` at 0)."""
    sub = x < 2.2250738585072014e-308  # subnormal (or <= 0): scale into the normal range
    xs = x * 18014398509481984.0 if sub else x  # 2**54
    b = _bits(xs)
    e = ((b >> 52) & 0x7FF) - 1023 - (54 if sub else 0)
    m = _float((b & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000)  # in [1, 2)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    ef = float(e + (1 if big else 0))
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    t = z * (1.0 / 21.0)
    t = z * (t + 1.0 / 19.0)
    t = z * (t + 1.0 / 17.0)
    t = z * (t + 1.0 / 15.0)
    t = z * (t + 1.0 / 13.0)
    t = z * (t + 1.0 / 11.0)
    t = z * (t + 1.0 / 9.0)
    t = z * (t + 1.0 / 7.0)
    t = z * (t + 1.0 / 5.0)
    t = z * (t + 1.0 / 3.0)
    y = ef * _LN2_HI + ((f - s * (f - 2.0 * t)) + ef * _LN2_LO)
    y = _INF if x == _INF else y
    y = -_INF if x == 0.0 else y
    y = _NAN if x < 0.0 else y
    return x if x != x else y


@njit(inline="always", error_model="numpy")
def log_split(x: float) -> tuple[float, float]:
    """``(e, f)`` with ``x = 2**e (1 + f)``, ``e`` integral and ``1 + f`` in
    ``[sqrt(1/2), sqrt(2))``, for a positive normal ``x`` (anything else: meaningless, for the
    caller to select away); :func:`log`'s reduction."""
    b = _bits(x)
    m = _float((b & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000)  # in [1, 2)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    return float(((b >> 52) & 0x7FF) - 1023 + (1 if big else 0)), m - 1.0


@njit(inline="always", error_model="numpy")
def log_from_split(e: float, f: float, r: float) -> float:
    """``log(2**e (1 + f))`` from :func:`log_split`'s ``(e, f)`` and ``r``, ``1 / (2 + f)`` to a
    few ulps: :func:`log`'s form with ``s = f r`` and ``T`` a degree-5 polynomial in ``s**2``
    (``_T5``), within 4 float64 ulps of the logarithm (2**-50: for results rounded to float32,
    where :func:`log`'s degree 10 buys nothing)."""
    s = f * r
    z = s * s
    t = _T5[0] * z + _T5[1]
    t = t * z + _T5[2]
    t = t * z + _T5[3]
    t = t * z + _T5[4]
    t = t * z + _T5[5]
    t = t * z
    return e * _LN2_HI + ((f - s * (f - 2.0 * t)) + e * _LN2_LO)


# T(z) = (atanh(s) / s - 1) / z, z = s**2 <= 1.0001 * 0.1716**2: the degree-5 Chebyshev
# interpolant's coefficients, highest degree first (mpmath.chebyfit at 40 digits); z T(z) is
# within 7e-16 of the truth there
_T5 = (0.08311179010022224, 0.09070078998976595, 0.1111143154965294, 0.14285712065397765,
       0.2000000000561511, 0.33333333333331033)


@njit(inline="always", error_model="numpy")
def log1p(y: float) -> float:
    """``log(1 + y)``, accurate near 0."""
    u = 1.0 + y
    corr = (y - (u - 1.0)) / u
    v = log(u) + corr
    v = y if u == 1.0 else v
    v = -_INF if u == 0.0 else v
    v = _INF if y == _INF else v
    return v


@njit(inline="always", error_model="numpy")
def atanh2_small(s: float) -> float:
    """``2 atanh(s)`` for ``|s| <= 0.112``, relative to itself (no cancellation, no division)."""
    z = s * s
    p = z * (1.0 / 17.0)
    p = z * (p + 1.0 / 15.0)
    p = z * (p + 1.0 / 13.0)
    p = z * (p + 1.0 / 11.0)
    p = z * (p + 1.0 / 9.0)
    p = z * (p + 1.0 / 7.0)
    p = z * (p + 1.0 / 5.0)
    p = z * (p + 1.0 / 3.0)
    return (s + s) + (s + s) * p


# (atanh(s) / s - 1) / s**2 for s**2 <= 1.0001 / 81: the degree-4 Chebyshev interpolant in s**2,
# highest degree first (mpmath.chebyfit at 40 digits)
_A4 = (0.09332539862716478, 0.1110848611430959, 0.14285725889752582, 0.19999999982070588,
       0.3333333333333776)


@njit(inline="always", error_model="numpy")
def atanh2_short(s: float) -> float:
    """:func:`atanh2_small` for ``|s| <= 1/9``, within 3 float64 ulps (2**-50), from a degree-4
    polynomial in ``s**2``: for results rounded to float32."""
    z = s * s
    p = _A4[0] * z + _A4[1]
    p = p * z + _A4[2]
    p = p * z + _A4[3]
    p = p * z + _A4[4]
    return (s + s) + (s + s) * (z * p)
