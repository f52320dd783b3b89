"""Values of every spec function: hand-derived cases, a 50-digit mpmath oracle, the kink choices,
the totalized mean, NaN propagation and the numerically delicate regimes.

This is the file of hand-derived values: a new loss adds its rows to ``HAND_CASES`` (and its
delicate regimes below); every other test reads the loss's declaration."""

from __future__ import annotations

import math
from typing import Any

import mpmath
import numpy as np
import oracle
import pytest
from loss_inputs import smooth_case, zones
from oracle import mp_fn, ulps
from spec_functions import NAMES, SPECS

import torchlean
from torchlean.spec.core.tensor import mean_over, to_scalar_spec
from torchlean.spec.layers import loss as L
from torchlean.spec.layers.activation import log_softmax_spec, softmax_spec

LN2, LN3 = math.log(2.0), math.log(3.0)
SQRT2, SQRT5 = math.sqrt(2.0), math.sqrt(5.0)
PSEUDO_HUBER = torchlean.LOSSES["pseudo_huber"]


def close(actual: Any, expected: Any, rtol: float = 1e-15, atol: float = 1e-16) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64),
                               np.asarray(expected, dtype=np.float64), rtol=rtol, atol=atol)


# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------


def test_epsilon_is_torchleans_numbers_epsilon() -> None:
    assert L.EPSILON == 1e-6
    assert isinstance(L.EPSILON, float)


# --------------------------------------------------------------------------------------------
# Hand-derived values (each row: the derivation in the comment above it)
# --------------------------------------------------------------------------------------------

HAND_CASES = [
    # (1 + 4 + 9) / 3
    pytest.param(L.mse_spec, [1.0, 2.0, 3.0], [0.0, 0.0, 0.0], {}, 14 / 3, id="mse"),
    # (1 + 1 + 0.25 + 0) / 4, 2-D input, mean over all four elements
    pytest.param(L.mse_spec, [[1.0, -1.0], [0.5, 0.0]], [[0.0] * 2] * 2, {}, 0.5625,
                 id="mse-2d"),
    # 2 d / n with d = (1, 2, 3), n = 3
    pytest.param(L.mse_deriv_spec, [1.0, 2.0, 3.0], [0.0] * 3, {}, [2 / 3, 4 / 3, 2.0],
                 id="mse_deriv"),
    # (|1| + |-2| + |0|) / 3
    pytest.param(L.mae_spec, [1.0, -2.0, 0.5], [0.0, 0.0, 0.5], {}, 1.0, id="mae"),
    # sign(d) / 3 = (1, -1, 0) / 3, sign(0) = 0 at the kink
    pytest.param(L.mae_deriv_spec, [1.0, -2.0, 0.5], [0.0, 0.0, 0.5], {}, [1 / 3, -1 / 3, 0.0],
                 id="mae_deriv"),
    # delta = 1, d = (0.5, -2, 1): 0.25/2 + (2 - 0.5) + (1 - 0.5) [|d| = delta is linear] = 2.125
    pytest.param(L.huber_spec, [0.5, -2.0, 1.0], [0.0] * 3, {}, 2.125 / 3, id="huber"),
    # (d / delta, sign(d), sign(d)) / 3
    pytest.param(L.huber_deriv_spec, [0.5, -2.0, 1.0], [0.0] * 3, {}, [0.5 / 3, -1 / 3, 1 / 3],
                 id="huber_deriv"),
    # delta = 2, d = (1, -3): 1/4 + (3 - 1) = 2.25, / 2
    pytest.param(L.huber_spec, [1.0, -3.0], [0.0, 0.0], {"delta": 2.0}, 1.125, id="huber-d2"),
    # (1 / 2, -1) / 2
    pytest.param(L.huber_deriv_spec, [1.0, -3.0], [0.0, 0.0], {"delta": 2.0}, [0.25, -0.5],
                 id="huber_deriv-d2"),
    # delta = 0 is the MAE: (1 + 2 + 0) / 3, derivative (1, -1, 0) / 3
    pytest.param(L.huber_spec, [1.0, -2.0, 0.0], [0.0] * 3, {"delta": 0.0}, 1.0, id="huber-d0"),
    pytest.param(L.huber_deriv_spec, [1.0, -2.0, 0.0], [0.0] * 3, {"delta": 0},
                 [1 / 3, -1 / 3, 0.0], id="huber_deriv-d0"),
    # -(1 * log 0.5) / 3
    pytest.param(L.cross_entropy_spec, [0.25, 0.5, 0.25], [0.0, 1.0, 0.0], {}, LN2 / 3,
                 id="cross_entropy"),
    # -t / p / n: (0, -2/3, 0)
    pytest.param(L.cross_entropy_deriv_spec, [0.25, 0.5, 0.25], [0.0, 1.0, 0.0], {},
                 [0.0, -2 / 3, 0.0], id="cross_entropy_deriv"),
    # eps = 0.25: q = clamp(0.1, 0.9, 0.5, 0.25, 0.75) = (.25, .75, .5, .25, .75), t = 1
    pytest.param(L.cross_entropy_spec, [0.1, 0.9, 0.5, 0.25, 0.75], [1.0] * 5,
                 {"epsilon": 0.25}, -(2 * math.log(0.25) + 2 * math.log(0.75) + math.log(0.5)) / 5,
                 id="cross_entropy-clamped"),
    # derivative 0 beyond AND at the bounds; -1 / 0.5 / 5 inside
    pytest.param(L.cross_entropy_deriv_spec, [0.1, 0.9, 0.5, 0.25, 0.75], [1.0] * 5,
                 {"epsilon": 0.25}, [0.0, 0.0, -0.4, 0.0, 0.0], id="cross_entropy_deriv-clamped"),
    # rows: -log(1/2) and -log(3/4), n = 4 elements: (ln 2 + ln 4/3) / 4 = ln(8/3) / 4
    pytest.param(L.cross_entropy_logits_spec, [[0.0, 0.0], [0.0, LN3]], [[1.0, 0.0], [0.0, 1.0]],
                 {}, math.log(8 / 3) / 4, id="cross_entropy_logits"),
    # (softmax * 1 - t) / 4: softmax rows (1/2, 1/2) and (1/4, 3/4)
    pytest.param(L.cross_entropy_logits_deriv_spec, [[0.0, 0.0], [0.0, LN3]],
                 [[1.0, 0.0], [0.0, 1.0]], {}, [[-1 / 8, 1 / 8], [1 / 16, -1 / 16]],
                 id="cross_entropy_logits_deriv"),
    # unnormalised targets (2, 1): -(2 + 1) log(1/2) / 2
    pytest.param(L.cross_entropy_logits_spec, [0.0, 0.0], [2.0, 1.0], {}, 1.5 * LN2,
                 id="cross_entropy_logits-unnormalised"),
    # (softmax * (2 + 1) - t) / 2 = ((1.5, 1.5) - (2, 1)) / 2 (softmax - t would be wrong here)
    pytest.param(L.cross_entropy_logits_deriv_spec, [0.0, 0.0], [2.0, 1.0], {}, [-0.25, 0.25],
                 id="cross_entropy_logits_deriv-unnormalised"),
    # 1 - t x = (-1, 0.5, 0, 0, 1.5) -> max(0, .) sums to 2, / 5
    pytest.param(L.hinge_spec, [2.0, 0.5, 1.0, -1.0, 0.5], [1.0, 1.0, 1.0, -1.0, -1.0], {}, 0.4,
                 id="hinge"),
    # -t / n where 1 - t x > 0; 0 at the two margins (t x = 1)
    pytest.param(L.hinge_deriv_spec, [2.0, 0.5, 1.0, -1.0, 0.5], [1.0, 1.0, 1.0, -1.0, -1.0], {},
                 [0.0, -0.2, 0.0, 0.0, 0.2], id="hinge_deriv"),
    # (e^0 - 1 * 0) + (e^ln2 - 3 ln 2) = 3 - 3 ln 2, / 2
    pytest.param(L.poisson_spec, [0.0, LN2], [1.0, 3.0], {}, (3 - 3 * LN2) / 2, id="poisson"),
    # (e^x - t) / 2 = (0, -1) / 2
    pytest.param(L.poisson_deriv_spec, [0.0, LN2], [1.0, 3.0], {}, [0.0, -0.5],
                 id="poisson_deriv"),
    # 1 - (p.t) / (|p| |t|) = 1 - 1 / sqrt 2
    pytest.param(L.cosine_similarity_spec, [1.0, 0.0], [1.0, 1.0], {}, 1 - 1 / SQRT2,
                 id="cosine_similarity"),
    # P = 1, T = sqrt 2: ((p.t)/P^2 p - t) / (P T) = ((1, 0) - (1, 1)) / sqrt 2
    pytest.param(L.cosine_similarity_deriv_spec, [1.0, 0.0], [1.0, 1.0], {}, [0.0, -1 / SQRT2],
                 id="cosine_similarity_deriv"),
    # eps = 0.4 > |p| = 0.2236: 1 - 0.3 / (0.4 sqrt 2) = 1 - 0.75 / sqrt 2
    pytest.param(L.cosine_similarity_spec, [0.1, 0.2], [1.0, 1.0], {"epsilon": 0.4},
                 1 - 0.75 / SQRT2, id="cosine_similarity-clamped"),
    # radial term vanishes: -t / (eps T) = -(1, 1) / (0.4 sqrt 2) = -(2.5, 2.5) / sqrt 2
    pytest.param(L.cosine_similarity_deriv_spec, [0.1, 0.2], [1.0, 1.0], {"epsilon": 0.4},
                 [-2.5 / SQRT2, -2.5 / SQRT2], id="cosine_similarity_deriv-clamped"),
    # cosh(ln 2) = 5/4, cosh(ln 3) = 5/3: (0 + ln 5/4 + ln 5/3) / 3
    pytest.param(L.log_cosh_spec, [0.0, LN2, 0.0], [0.0, 0.0, LN3], {},
                 (math.log(1.25) + math.log(5 / 3)) / 3, id="log_cosh"),
    # tanh(ln 2) = 3/5, tanh(-ln 3) = -4/5, / 3
    pytest.param(L.log_cosh_deriv_spec, [0.0, LN2, 0.0], [0.0, 0.0, LN3], {},
                 [0.0, 0.2, -0.8 / 3], id="log_cosh_deriv"),
    # delta = 1, d = (0, 1, -2): sqrt(1 + d**2) - 1 = (0, sqrt 2 - 1, sqrt 5 - 1), / 3
    pytest.param(PSEUDO_HUBER.value, [0.0, 1.0, -2.0], [0.0] * 3, {}, (SQRT2 + SQRT5 - 2) / 3,
                 id="pseudo_huber"),
    # d / sqrt(1 + d**2) / 3 = (0, 1 / sqrt 2, -2 / sqrt 5) / 3
    pytest.param(PSEUDO_HUBER.deriv, [0.0, 1.0, -2.0], [0.0] * 3, {},
                 [0.0, 1 / (3 * SQRT2), -2 / (3 * SQRT5)], id="pseudo_huber_deriv"),
    # delta = 2, d = (2, -4, 0): 4 (sqrt(1 + (d / 2)**2) - 1) = (4 (sqrt 2 - 1), 4 (sqrt 5 - 1),
    # 0), / 3
    pytest.param(PSEUDO_HUBER.value, [3.0, -3.0, 1.0], [1.0, 1.0, 1.0], {"delta": 2.0},
                 4 * (SQRT2 + SQRT5 - 2) / 3, id="pseudo_huber-d2"),
    # d / sqrt(1 + (d / 2)**2) / 3 = (2 / sqrt 2, -4 / sqrt 5, 0) / 3
    pytest.param(PSEUDO_HUBER.deriv, [3.0, -3.0, 1.0], [1.0, 1.0, 1.0], {"delta": 2.0},
                 [SQRT2 / 3, -4 / (3 * SQRT5), 0.0], id="pseudo_huber_deriv-d2"),
    # d = 1e200: delta**2 (sqrt(1 + d**2) - 1) = 1e200 - 1 (to 1e-200 relative), which rounds to
    # 1e200 (d**2 itself overflows); the derivative tends to sign(d) delta = 1
    pytest.param(PSEUDO_HUBER.value, [1e200], [0.0], {}, 1e200, id="pseudo_huber-huge"),
    pytest.param(PSEUDO_HUBER.deriv, [-1e200], [0.0], {}, [-1.0], id="pseudo_huber_deriv-huge"),
    # d = 1e-100: d**2 / 2 (the next term, -d**4 / 8, is 1e-200 relative); derivative d
    pytest.param(PSEUDO_HUBER.value, [1e-100], [0.0], {}, 5e-201, id="pseudo_huber-tiny"),
    pytest.param(PSEUDO_HUBER.deriv, [1e-100], [0.0], {}, [1e-100], id="pseudo_huber_deriv-tiny"),
    # extreme delta: 1e300 with d = (0, 1): d**2 / (sqrt(1 + (d / delta)**2) + 1) = (0, 1/2),
    # / 2 (delta**2 overflows, and 0 * inf gave NaN); 1e-150 with d = 1e200: delta (|d| - delta)
    # to 1e-350 relative, 1e50 (|d| / delta overflows)
    pytest.param(PSEUDO_HUBER.value, [0.0, 1.0], [0.0, 0.0], {"delta": 1e300}, 0.25,
                 id="pseudo_huber-huge-delta"),
    pytest.param(PSEUDO_HUBER.value, [1e200], [0.0], {"delta": 1e-150}, 1e50,
                 id="pseudo_huber-tiny-delta"),
    pytest.param(PSEUDO_HUBER.deriv, [1e200], [0.0], {"delta": 1e-150}, [1e-150],
                 id="pseudo_huber_deriv-tiny-delta"),
    # -log(1/4) = 2 ln 2
    pytest.param(L.binary_cross_entropy_spec, 0.25, 1.0, {}, 2 * LN2, id="bce"),
    # -log(3/4)
    pytest.param(L.binary_cross_entropy_spec, 0.25, 0.0, {}, math.log(4 / 3), id="bce-y0"),
    # -(ln(1/4) + ln(3/4)) / 2 = ln(16/3) / 2
    pytest.param(L.binary_cross_entropy_spec, 0.25, 0.5, {}, math.log(16 / 3) / 2,
                 id="bce-y-half"),
    # (p - y) / (p (1 - p)) = -0.75 / 0.1875
    pytest.param(L.binary_cross_entropy_deriv_spec, 0.25, 1.0, {}, -4.0, id="bce_deriv"),
    # 0.25 / 0.1875
    pytest.param(L.binary_cross_entropy_deriv_spec, 0.25, 0.0, {}, 4 / 3, id="bce_deriv-y0"),
    # 2 ln 2 (p = 1/4, y = 1) + ln 4/3 (p = 1/4, y = 0) + ln 2 (p = 1/2, any y), over n = 3
    pytest.param(L.binary_cross_entropy_tensor_spec, [0.25, 0.25, 0.5], [1.0, 0.0, 0.5], {},
                 (3 * LN2 + math.log(4 / 3)) / 3, id="bce_tensor"),
    # (-4, 4/3, 0) / 3
    pytest.param(L.binary_cross_entropy_tensor_deriv_spec, [0.25, 0.25, 0.5], [1.0, 0.0, 0.5], {},
                 [-4 / 3, 4 / 9, 0.0], id="bce_tensor_deriv"),
]


@pytest.mark.parametrize(("fn", "p", "t", "kw", "expected"), HAND_CASES)
def test_hand_derived_value(fn: Any, p: Any, t: Any, kw: dict[str, Any], expected: Any) -> None:
    scalar = isinstance(p, float)  # the scalar BCE takes Python numbers
    out = fn(p, t, **kw) if scalar else fn(np.asarray(p), np.asarray(t), **kw)
    close(out, expected, rtol=4e-15, atol=1e-15)
    assert np.shape(out) == np.shape(expected)


def test_to_scalar_spec_sums_everything() -> None:
    # 1 + 2 + 3 + 4; an empty tensor sums to 0; float32 stays float32
    close(to_scalar_spec(np.array([[1.0, 2.0], [3.0, 4.0]])), 10.0)
    assert to_scalar_spec(np.zeros((0, 3))) == 0.0
    out = to_scalar_spec(np.array([0.5, 0.25], dtype=np.float32))
    assert out.dtype == np.float32 and out == np.float32(0.75)


@pytest.mark.parametrize(("x", "shape", "expected"), [
    pytest.param(6.0, (2, 3), 1.0, id="2x3"),      # 6 / 6
    pytest.param(5.0, (0,), 5.0, id="empty"),      # n = max(0, 1) = 1
    pytest.param(5.0, (4, 0), 5.0, id="empty-2d"),
    pytest.param(7.0, (), 7.0, id="0-d"),          # a 0-d tensor has one element
])
def test_mean_over_divides_by_the_totalized_size(x: float, shape: tuple[int, ...],
                                                 expected: float) -> None:
    assert mean_over(x, shape) == expected


def test_softmax_and_log_softmax_values() -> None:
    # softmax(0, ln 3) = (1, 3) / 4; log-softmax = (-ln 4, ln 3/4); row-wise over the last axis
    z = np.array([[0.0, LN3], [0.0, 0.0]])
    close(softmax_spec(z), [[0.25, 0.75], [0.5, 0.5]], rtol=1e-15)
    close(log_softmax_spec(z), [[-math.log(4), math.log(0.75)], [-LN2, -LN2]], rtol=2e-15)


def test_log_softmax_of_huge_logits_is_exact() -> None:
    # the shift by the slice maximum makes (1000, 0, -1000) exact: (0, -1000, -2000)
    z = np.array([1000.0, 0.0, -1000.0])
    np.testing.assert_array_equal(log_softmax_spec(z), [0.0, -1000.0, -2000.0])
    np.testing.assert_array_equal(softmax_spec(z), [1.0, 0.0, 0.0])
    # the loss on it: -(1 * -2000) / 3; derivative (softmax - t) / 3 = (1, 0, -1) / 3
    t = np.array([0.0, 0.0, 1.0])
    close(L.cross_entropy_logits_spec(z, t), 2000 / 3)
    close(L.cross_entropy_logits_deriv_spec(z, t), [1 / 3, 0.0, -1 / 3])


# --------------------------------------------------------------------------------------------
# Against the 50-digit oracle (tests/oracle.py: the declaration at 50 digits, its derivative by
# mpmath's numerical differentiation)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", NAMES)
def test_value_and_derivative_match_mpmath(name: str, seed: int) -> None:
    value_fn, deriv_fn, _ = SPECS[name]
    p, t, params = smooth_case(name, (2, 3), seed)
    v_ref = oracle.value(name, p, t, **params)
    g_ref = np.array([float(g) for g in oracle.deriv(name, p, t, **params)]).reshape(p.shape)
    # six O(1) terms in float64: a few ulps of the largest term
    assert abs(float(value_fn(p, t, **params)) - float(v_ref)) <= 1e-14 * max(1.0, abs(v_ref))
    np.testing.assert_allclose(deriv_fn(p, t, **params), g_ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("p", "y"), [(0.3, 0.0), (0.3, 1.0), (0.7, 0.2), (0.01, 0.99)])
def test_scalar_bce_matches_mpmath(p: float, y: float) -> None:
    # hand formulas at 50 digits: -(y log p + (1 - y) log(1 - p)) and its derivative
    v_ref = mp_fn(lambda q, w: -(w * mpmath.log(q) + (1 - w) * mpmath.log(1 - q)), p, y)
    g_ref = mp_fn(lambda q, w: (q - w) / (q * (1 - q)), p, y)
    assert ulps(L.binary_cross_entropy_spec(p, y), v_ref) <= 4
    assert ulps(L.binary_cross_entropy_deriv_spec(p, y), g_ref) <= 4


@pytest.mark.parametrize("delta", [0.3, 2.5])
def test_huber_with_other_deltas_matches_mpmath(delta: float) -> None:
    rng = np.random.default_rng(3)
    t = rng.normal(size=6)
    p = t + np.array([0.1, -0.2, 0.29, -0.31, 1.7, -3.0])  # both sides of both thresholds
    v_ref = oracle.value("huber", p, t, delta=delta)
    g_ref = [float(g) for g in oracle.deriv("huber", p, t, delta=delta)]
    close(L.huber_spec(p, t, delta=delta), float(v_ref), rtol=1e-14)
    close(L.huber_deriv_spec(p, t, delta=delta), g_ref, rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------------------------
# Kink choices (documented in each derivative's docstring)
# --------------------------------------------------------------------------------------------


def test_mae_derivative_is_zero_at_d_zero() -> None:
    # sign(0) = 0, for +0 and -0 residuals alike
    p = np.array([1.0, 0.0, -0.0, 2.0])
    t = np.array([1.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(L.mae_deriv_spec(p, t), [0.0, 0.0, 0.0, 0.25])
    np.testing.assert_array_equal(L.huber_deriv_spec(p, t, delta=0.0), [0.0, 0.0, 0.0, 0.25])


def test_hinge_derivative_is_zero_at_the_margin() -> None:
    # t x = 1 for every element (both label signs and a non-unit label): value 0, derivative 0
    x, t = np.array([1.0, -1.0, 0.5]), np.array([1.0, -1.0, 2.0])
    assert L.hinge_spec(x, t) == 0.0
    np.testing.assert_array_equal(L.hinge_deriv_spec(x, t), [0.0, 0.0, 0.0])


def test_huber_derivative_at_the_threshold_is_continuous() -> None:
    # |d| = delta takes the linear branch, sign(d) = d / delta there: (-1, 1) / 2
    np.testing.assert_array_equal(L.huber_deriv_spec(np.array([-2.0, 2.0]), np.zeros(2),
                                                      delta=2.0), [-0.5, 0.5])


def _at_upper_clamp(eps: float) -> float:
    """The smallest float64 at or beyond the real ``1 - eps``: ``1 - eps`` itself when that is a
    float (eps = 0.25), else the float just above it (``1 - p`` is exact for p >= 1/2)."""
    hi = 1.0 - eps
    return hi if 1.0 - hi <= eps else float(np.nextafter(hi, 2.0))


@pytest.mark.parametrize("eps", [L.EPSILON, 0.25])
def test_cross_entropy_derivative_is_zero_at_and_beyond_the_clamp(eps: float) -> None:
    lo, hi = eps, _at_upper_clamp(eps)
    p = np.array([-1.0, 0.0, lo, hi, 1.0, 2.0])
    t = np.array([1.0, 0.5, 1.0, 1.0, 0.3, 1.0])
    np.testing.assert_array_equal(L.cross_entropy_deriv_spec(p, t, epsilon=eps), np.zeros(6))
    # values: each log taken at the clamped q (hand: -t log clamp(p)); the upper clamp is the
    # real 1 - eps, whose log is log1p(-eps)
    up = math.log1p(-eps)
    expected = -(1.0 * math.log(lo) + 0.5 * math.log(lo) + 1.0 * math.log(lo)
                 + 1.0 * up + 0.3 * up + 1.0 * up) / 6
    close(L.cross_entropy_spec(p, t, epsilon=eps), expected, rtol=1e-15)
    # the float just below the real 1 - eps is inside: -t / p / n (hand)
    below = float(np.nextafter(1.0 - eps, 0.0)) if hi != 1.0 - eps else hi
    if below < 1.0 - eps and 1.0 - below > eps:
        g = L.cross_entropy_deriv_spec(np.array([below]), np.array([1.0]), epsilon=eps)
        close(g, np.array([-1.0 / below]), rtol=1e-15)


@pytest.mark.parametrize("eps", [L.EPSILON, 0.25])
def test_bce_derivative_is_zero_at_and_beyond_the_clamp(eps: float) -> None:
    lo, hi = eps, _at_upper_clamp(eps)
    for p, y in [(-0.5, 1.0), (0.0, 1.0), (lo, 0.3), (hi, 0.3), (1.0, 0.0), (1.5, 0.0)]:
        assert L.binary_cross_entropy_deriv_spec(p, y, epsilon=eps) == 0.0, (p, y)
    p = np.array([-0.5, 0.0, lo, hi, 1.0, 1.5])
    y = np.array([1.0, 1.0, 0.3, 0.3, 0.0, 0.0])
    np.testing.assert_array_equal(L.binary_cross_entropy_tensor_deriv_spec(p, y, epsilon=eps),
                                  np.zeros(6))
    # p = 0, y = 1 clamps to -log(eps); p = 1, y = 0 to -log(1 - (1 - eps)) = -log(eps) (hand)
    close(L.binary_cross_entropy_spec(0.0, 1.0, epsilon=eps), -math.log(lo))
    close(L.binary_cross_entropy_spec(1.0, 0.0, epsilon=eps), -math.log(eps))


def test_cosine_derivative_below_and_at_eps_drops_the_radial_term() -> None:
    eps = 0.25
    t = np.array([3.0, 4.0])  # T = 5
    for p in (np.array([0.25, 0.0]), np.array([0.0, -0.25]), np.array([0.1, 0.1]),
              np.zeros(2)):
        # ||p|| <= eps (0.25 exactly for the first two): -t / (eps T) = -t / 1.25
        close(L.cosine_similarity_deriv_spec(p, t, epsilon=eps), -t / 1.25, rtol=1e-15)
    # a zero target vector: T = eps, derivative -t / eps^2 = 0
    np.testing.assert_array_equal(L.cosine_similarity_deriv_spec(np.zeros(3), np.zeros(3)),
                                  np.zeros(3))


# --------------------------------------------------------------------------------------------
# The totalized mean: an empty tensor gives 0 (cosine: 1), derivatives keep the shape
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 4)], ids=["0", "3x0", "0x4"])
@pytest.mark.parametrize("name", NAMES)
def test_empty_input(name: str, shape: tuple[int, ...]) -> None:
    value_fn, deriv_fn, _ = SPECS[name]
    p, t = np.zeros(shape), np.zeros(shape)
    v = value_fn(p, t)
    # a mean: 0 / max(0, 1), a sum: 0; a loss of the whole tensor: its own value there, at 50
    # digits (cosine: 1 - 0 / (eps * eps) = 1)
    if torchlean.LOSSES[name].reduction in ("mean", "sum"):
        assert float(v) == 0.0
    else:
        assert float(v) == float(oracle.value(name, p, t))
    g = deriv_fn(p, t)
    assert g.shape == shape and g.dtype == np.float64


# --------------------------------------------------------------------------------------------
# NaN in gives NaN out
# --------------------------------------------------------------------------------------------


def _nan_cases() -> list[Any]:
    # every branch region of every loss: a NaN must not vanish on a flat or constant branch
    return [pytest.param(name, k, where, id=f"{name}-{zone.name}-nan-{where}")
            for name in NAMES for k, zone in enumerate(zones(name))
            for where in ("predicted", "target")]


@pytest.mark.parametrize(("name", "zone", "where"), _nan_cases())
def test_nan_propagates(name: str, zone: int, where: str) -> None:
    value_fn, deriv_fn, kind = SPECS[name]
    p, t, params = smooth_case(name, (2, 3), seed=5, zone=zone)
    (p if where == "predicted" else t)[0, 1] = np.nan
    # the domain checks let NaN through (NaN in gives NaN out)
    assert math.isnan(float(value_fn(p, t, **params)))
    g = deriv_fn(p, t, **params)
    expected_nan = np.zeros(p.shape, dtype=bool)
    if kind == "elementwise":
        expected_nan[0, 1] = True
    elif kind == "slice":
        expected_nan[0, :] = True
    else:
        expected_nan[:] = True
    np.testing.assert_array_equal(np.isnan(g), expected_nan)


@pytest.mark.parametrize(("p", "y"), [(np.nan, 1.0), (0.5, np.nan), (0.0, np.nan),
                                      (1.0, np.nan)],
                         ids=["nan-p", "nan-y", "nan-y-clamped-low", "nan-y-clamped-high"])
def test_scalar_bce_nan_propagates(p: float, y: float) -> None:
    assert math.isnan(L.binary_cross_entropy_spec(p, y))
    assert math.isnan(L.binary_cross_entropy_deriv_spec(p, y))


# --------------------------------------------------------------------------------------------
# Numerically delicate regimes, against 50-digit mpmath
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [1e4, -1e4, 1e3, 710.6, 30.0, 1.0, 0.5, 1e-3, 1e-8, -1e-8, 1e-200])
def test_log_cosh_is_accurate_without_overflow(d: float) -> None:
    # naive log(cosh d) overflows above 710.48 and cancels to 0 below ~1e-8 (loses d^2 / 2)
    p, t = np.array([d]), np.array([0.0])
    v_ref = mp_fn(lambda x: mpmath.log(mpmath.cosh(x)), d)
    g_ref = mp_fn(mpmath.tanh, d)
    assert ulps(L.log_cosh_spec(p, t), v_ref) <= 3
    assert ulps(L.log_cosh_deriv_spec(p, t)[0], g_ref) <= 1


@pytest.mark.parametrize(("p", "y"), [
    (2e-6, 1.0), (2e-6, 0.0), (1e-5, 0.3), (1 - 1e-5, 0.7), (1 - 2e-6, 0.0), (1 - 2e-6, 1.0),
    (1e-9, 1.0), (1 - 1e-12, 0.0), (0.0, 1.0), (1.0, 0.0),
])
def test_bce_near_zero_and_one(p: float, y: float) -> None:
    # inside the clamp: accurate to a few ulps (log1p(-q) keeps 1 - q exact); outside it the
    # value is taken at the float bound and the derivative is 0
    def bce(a: mpmath.mpf, w: mpmath.mpf) -> mpmath.mpf:  # hand formula, clamped at the reals
        q = min(max(a, mpmath.mpf(L.EPSILON)), 1 - mpmath.mpf(L.EPSILON))
        return -(w * mpmath.log(q) + (1 - w) * mpmath.log(1 - q))

    v_ref = mp_fn(bce, p, y)
    assert ulps(L.binary_cross_entropy_spec(p, y), v_ref) <= 4
    assert ulps(L.binary_cross_entropy_tensor_spec(np.array([p]), np.array([y])), v_ref) <= 4
    if L.EPSILON < p < 1 - L.EPSILON:
        g_ref = mp_fn(lambda q, w: (q - w) / (q * (1 - q)), p, y)  # hand derivative of the log
        assert ulps(L.binary_cross_entropy_deriv_spec(p, y), g_ref) <= 4
    else:
        assert L.binary_cross_entropy_deriv_spec(p, y) == 0.0


@pytest.mark.parametrize(("x", "y"), [(700.0, 3.0), (709.0, 0.0), (-700.0, 3.0), (30.0, 1e11),
                                      (20.0, 4.85e8)])
def test_poisson_large_log_rates(x: float, y: float) -> None:
    # exp(x) - y x and its derivative exp(x) - y, against 50 digits. float64 cannot do better
    # than the rounding of exp(x) itself where the difference cancels (x = 20, y ~ e^20), so
    # the bound is a few ulps of the largest term; without cancellation that is a few ulps.
    p, t = np.array([x]), np.array([y])
    v_ref = mp_fn(lambda a, b: mpmath.exp(a) - b * a, x, y)
    g_ref = mp_fn(lambda a, b: mpmath.exp(a) - b, x, y)
    scale = max(math.exp(x), abs(y * x), abs(y))
    ulp_of_scale = float(np.spacing(scale))
    assert abs(float(L.poisson_spec(p, t)) - float(v_ref)) <= 4 * ulp_of_scale
    assert abs(float(L.poisson_deriv_spec(p, t)[0]) - float(g_ref)) <= 4 * ulp_of_scale
    assert np.isfinite(L.poisson_spec(p, t))


def _mp_cosine(p: np.ndarray, t: np.ndarray) -> tuple[mpmath.mpf, list[mpmath.mpf]]:
    """Value and derivative of the cosine loss at 50 digits (hand formula, norms above eps):
    1 - c with c = p.t / (P T); gradient c p / P^2 - t / (P T)."""
    with mpmath.mp.workdps(50):
        pm, tm = oracle.mp_list(p), oracle.mp_list(t)
        pn = mpmath.sqrt(mpmath.fsum(a * a for a in pm))
        tn = mpmath.sqrt(mpmath.fsum(b * b for b in tm))
        c = mpmath.fsum(a * b for a, b in zip(pm, tm, strict=True)) / (pn * tn)
        return 1 - c, [c * a / pn**2 - b / (pn * tn) for a, b in zip(pm, tm, strict=True)]


@pytest.mark.parametrize("scale", [1e200, 1e-6, 1.0], ids=["huge", "just-above-eps", "unit"])
def test_cosine_with_extreme_magnitudes(scale: float) -> None:
    # p.t = 1 * scale^2 overflows (or underflows) a naive dot product; |p| = sqrt 5 s,
    # |t| = sqrt 10 s, so the value is 1 - 1 / sqrt 50 at every scale
    p = np.array([1.0, 2.0]) * scale
    t = np.array([3.0, -1.0]) * scale
    v_ref, g_ref = _mp_cosine(p, t)
    v = L.cosine_similarity_spec(p, t)
    assert ulps(v, v_ref) <= 4
    assert abs(float(v) - (1 - 1 / math.sqrt(50))) <= 1e-15
    g = L.cosine_similarity_deriv_spec(p, t)
    assert np.all(np.isfinite(g))
    for gi, ri in zip(g, g_ref, strict=True):
        assert ulps(gi, ri) <= 8


def test_cosine_with_zero_vectors() -> None:
    # both zero: 1 - 0 / (eps eps) = 1, derivative -0 / (eps eps) = 0
    assert L.cosine_similarity_spec(np.zeros(3), np.zeros(3)) == 1.0
    # zero prediction: value 1; derivative -t / (eps |t|) with |t| = 3 (hand)
    t = np.array([1.0, 2.0, 2.0])
    assert L.cosine_similarity_spec(np.zeros(3), t) == 1.0
    close(L.cosine_similarity_deriv_spec(np.zeros(3), t), -t / (L.EPSILON * 3.0), rtol=1e-15)
    # zero target: value 1, derivative 0 (both terms carry t)
    p = np.array([1.0, -2.0, 0.5])
    assert L.cosine_similarity_spec(p, np.zeros(3)) == 1.0
    np.testing.assert_array_equal(L.cosine_similarity_deriv_spec(p, np.zeros(3)), np.zeros(3))


@pytest.mark.parametrize("name", NAMES)
def test_longdouble_is_evaluated_in_float64(name: str) -> None:
    # docs/semantics.md: wider floats get their dtype back with float64 accuracy.
    value, deriv, _ = SPECS[name]
    p, t, params = smooth_case(name)
    wide_p, wide_t = p.astype(np.longdouble), t.astype(np.longdouble)
    for fn in (value, deriv):
        got, want = fn(wide_p, wide_t, **params), fn(p, t, **params)
        assert np.asarray(got).dtype == np.longdouble
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want).astype(np.longdouble))
