"""The shorter polynomials of :mod:`torchlean.kernels.vmath` that the all-float32 terms use,
against 50-digit mpmath: ``exp_split_short`` (13 float64 ulps of ``e**r - 1``),
``atanh2_short`` (3 ulps), ``log_split``/``log_from_split`` with a shared reciprocal (4 ulps),
and ``fence``, which leaves its argument's value alone. Each bound is the one the function's
docstring states; float32 results need about 2**-30."""

from __future__ import annotations

import math
from typing import Any

import mpmath
import numpy as np
import pytest

numba = pytest.importorskip("numba")

from torchlean.kernels import vmath  # noqa: E402

ULP = 2.0**-52
_HALF_LN2 = math.log(2) / 2


@numba.njit(error_model="numpy", fastmath={"reassoc", "contract"})
def _run(x: np.ndarray, out: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    # rows of x: exponents, atanh arguments, log arguments; out: exp_split_short's c q and c,
    # atanh2_short, and log from the split with 1 / (2 + f) taken from a reciprocal shared with
    # another factor, as the terms do (times a fenced 1, which must change nothing)
    for i in range(x.shape[1]):
        c, q = vmath.exp_split_short(x[0, i])
        out[0, i] = c * q
        out[1, i] = c
        out[2, i] = vmath.atanh2_short(x[1, i]) * vmath.fence(1.0)
        y = x[2, i]
        e, f = vmath.log_split(y)
        d = 2.0 + f
        w = y * 3.0
        r = 1.0 / (d * w)
        out[3, i] = vmath.log_from_split(e, f, w * r)


@pytest.fixture(autouse=True, scope="module")
def _fifty_digits() -> Any:
    # 50 digits for this module's references only: mpmath's precision is global
    with mpmath.workdps(50):
        yield


@pytest.fixture(scope="module")
def results() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(31)
    m = 2000
    # |x| <= ln(2) / 2 (c = 1: c q is expm1 itself) and wider x for the reduction; |s| <= 1/9;
    # positive normal log arguments, many near 1
    x = np.stack([
        np.concatenate([rng.uniform(-_HALF_LN2, _HALF_LN2, m - 500), rng.uniform(-40, 40, 500)]),
        rng.uniform(-1 / 9, 1 / 9, m),
        np.concatenate([np.exp(rng.uniform(-700, 700, m // 2)),
                        1 + rng.uniform(-0.3, 0.4, m // 2)]),
    ])
    out = np.empty((4, m))
    _run(x, out)
    return x, out


def _rel(got: float, ref: Any) -> float:
    return float(abs((mpmath.mpf(got) - ref) / ref))


def test_exp_split_short_is_within_13_ulps_of_the_reduced_expm1(results: Any) -> None:
    x, out = results
    worst = 0.0
    for xi, cq, c in zip(x[0], out[0], out[1], strict=True):
        # e**x = c (1 + q), c a power of two: c q is e**x - c, relative to itself
        assert c == 2.0 ** round(math.log2(c))
        ref = mpmath.exp(mpmath.mpf(xi)) - mpmath.mpf(c)
        if ref != 0:
            worst = max(worst, _rel(cq, ref))
    assert worst <= 13 * ULP, worst / ULP


def test_atanh2_short_is_within_3_ulps(results: Any) -> None:
    x, out = results
    worst = max(_rel(g, 2 * mpmath.atanh(mpmath.mpf(s)))
                for s, g in zip(x[1], out[2], strict=True) if s != 0)
    assert worst <= 3 * ULP, worst / ULP


def test_log_from_split_with_a_shared_reciprocal_is_within_4_ulps(results: Any) -> None:
    x, out = results
    worst = max(_rel(g, mpmath.log(mpmath.mpf(y)))
                for y, g in zip(x[2], out[3], strict=True) if y != 1.0)
    assert worst <= 4 * ULP, worst / ULP
