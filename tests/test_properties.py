"""Properties of the losses over generated inputs (hypothesis): signs and ranges, zeros,
Huber's limits, symmetries, invariances, and the float32 contract."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from spec_functions import NAMES, SPECS

import torchlean
from torchlean.spec.layers import loss as L

# Small shapes and a modest budget keep this file to a few seconds.
PROFILE = settings(max_examples=40, deadline=None)

SHAPES = hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=4)


def reals(lo: float = -1e3, hi: float = 1e3, width: int = 64) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=width)


@st.composite
def pairs(draw: st.DrawFn, p_elems: st.SearchStrategy[float] | None = None,
          t_elems: st.SearchStrategy[float] | None = None, dtype: Any = np.float64,
          shapes: st.SearchStrategy[tuple[int, ...]] = SHAPES) -> tuple[np.ndarray, np.ndarray]:
    """Two arrays of one generated shape."""
    shape = draw(shapes)
    p_elems = p_elems if p_elems is not None else reals()
    p = draw(hnp.arrays(dtype, shape, elements=p_elems))
    t = draw(hnp.arrays(dtype, shape, elements=t_elems if t_elems is not None else p_elems))
    return p, t


def _value(name: str, p: np.ndarray, t: np.ndarray, **kw: Any) -> float:
    return float(SPECS[name][0](p, t, **kw))


def _deriv(name: str, p: np.ndarray, t: np.ndarray, **kw: Any) -> np.ndarray:
    return np.asarray(SPECS[name][1](p, t, **kw))


# --------------------------------------------------------------------------------------------
# Signs and ranges
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mse", "mae", "huber", "log_cosh", "hinge"])
@PROFILE
@given(pt=pairs(), delta=reals(0.0, 10.0))
def test_nonnegative(name: str, pt: tuple[np.ndarray, np.ndarray], delta: float) -> None:
    kw = {"delta": delta} if name == "huber" else {}
    assert _value(name, *pt, **kw) >= 0.0


@PROFILE
@given(pt=pairs(reals(-0.5, 1.5), reals(0.0, 1.0)), eps=reals(1e-12, 0.49))
def test_bce_nonnegative(pt: tuple[np.ndarray, np.ndarray], eps: float) -> None:
    # each term is -(y log q + (1 - y) log(1 - q)) with q in (0, 1) and y in [0, 1]
    assert _value("binary_cross_entropy", *pt, epsilon=eps) >= 0.0


@PROFILE
@given(pt=pairs(reals(-1.0, 2.0), reals(0.0, 10.0)))
def test_cross_entropy_nonnegative_for_nonnegative_targets(
        pt: tuple[np.ndarray, np.ndarray]) -> None:
    # q <= 1 - eps < 1, so -t log q >= 0 for t >= 0
    assert _value("cross_entropy", *pt) >= 0.0


@PROFILE
@given(pt=pairs(reals(-50.0, 50.0), reals(0.0, 10.0)))
def test_cross_entropy_logits_nonnegative_for_nonnegative_targets(
        pt: tuple[np.ndarray, np.ndarray]) -> None:
    # log-softmax <= 0 (the shifted exponents sum to >= 1)
    assert _value("cross_entropy_logits", *pt) >= 0.0


@PROFILE
@given(pt=pairs(reals(-1e3, 1e3), reals(-1e3, 1e3)), eps=reals(1e-9, 0.49))
def test_cosine_loss_lies_in_0_2(pt: tuple[np.ndarray, np.ndarray], eps: float) -> None:
    # 1 - cos with |cos| <= 1 (Cauchy-Schwarz); the float cosine may pass +-1 by a few ulps
    v = _value("cosine_similarity", *pt, epsilon=eps)
    slack = 4 * np.spacing(1.0)
    assert -slack <= v <= 2.0 + slack


# --------------------------------------------------------------------------------------------
# Zero at predicted == target
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mse", "mae", "huber", "log_cosh"])
@PROFILE
@given(p=hnp.arrays(np.float64, SHAPES, elements=reals()), delta=reals(0.0, 10.0))
def test_zero_at_target(name: str, p: np.ndarray, delta: float) -> None:
    kw = {"delta": delta} if name == "huber" else {}
    assert _value(name, p, p.copy(), **kw) == 0.0
    np.testing.assert_array_equal(_deriv(name, p, p.copy(), **kw), np.zeros(p.shape))


# --------------------------------------------------------------------------------------------
# Huber's limits
# --------------------------------------------------------------------------------------------


@PROFILE
@given(pt=pairs(reals(-1.0, 1.0)), delta=reals(2.5, 1e6))
def test_huber_is_mse_over_2delta_inside_delta(pt: tuple[np.ndarray, np.ndarray],
                                               delta: float) -> None:
    # every |d| <= 2 < delta: h(d) = d^2 / (2 delta), derivative d / delta
    p, t = pt
    np.testing.assert_allclose(_value("huber", p, t, delta=delta),
                               _value("mse", p, t) / (2 * delta), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(_deriv("huber", p, t, delta=delta),
                               _deriv("mse", p, t) / (2 * delta), rtol=1e-12, atol=1e-300)


@st.composite
def far_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Residuals with |d| >= 1e-3 (then p = t + d)."""
    shape = draw(SHAPES)
    t = draw(hnp.arrays(np.float64, shape, elements=reals(-10.0, 10.0)))
    mag = draw(hnp.arrays(np.float64, shape, elements=reals(1e-3, 10.0)))
    sign = draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([-1.0, 1.0])))
    p = t + sign * mag
    return p, t


@PROFILE
@given(pt=far_pairs(), delta=reals(0.0, 1e-4))
def test_huber_is_mae_minus_half_delta_for_small_delta(pt: tuple[np.ndarray, np.ndarray],
                                                       delta: float) -> None:
    # every |d| >= delta: h(d) = |d| - delta / 2, derivative sign(d)
    p, t = pt
    d = p - t
    if np.any(np.abs(d) < delta):  # p = t + d may round |d| below a tiny delta
        return
    np.testing.assert_allclose(_value("huber", p, t, delta=delta),
                               _value("mae", p, t) - delta / 2, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(_deriv("huber", p, t, delta=delta), _deriv("mae", p, t))


# --------------------------------------------------------------------------------------------
# Symmetries and invariances
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mse", "mae", "log_cosh"])
@PROFILE
@given(pt=pairs())
def test_symmetric_in_d(name: str, pt: tuple[np.ndarray, np.ndarray]) -> None:
    # f depends on d only through d^2, |d| or cosh d; swapping p and t negates d exactly
    p, t = pt
    assert _value(name, p, t) == _value(name, t, p)
    np.testing.assert_array_equal(_deriv(name, p, t), -_deriv(name, t, p))


@st.composite
def cosine_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, float]:
    shape = draw(SHAPES)
    p = draw(hnp.arrays(np.float64, shape, elements=reals(-100.0, 100.0)))
    t = draw(hnp.arrays(np.float64, shape, elements=reals(-100.0, 100.0)))
    c = draw(reals(1e-3, 1e3))
    return p, t, c


@PROFILE
@given(case=cosine_cases())
def test_cosine_scale_invariance_and_orthogonality(case: tuple[np.ndarray, np.ndarray,
                                                               float]) -> None:
    p, t, c = case
    # away from the eps clamp for both p and c p
    if np.linalg.norm(p) < 1e-2 or np.linalg.norm(t) < 1e-2:
        return
    v, g = _value("cosine_similarity", p, t), _deriv("cosine_similarity", p, t)
    v_c, g_c = _value("cosine_similarity", c * p, t), _deriv("cosine_similarity", c * p, t)
    np.testing.assert_allclose(v_c, v, rtol=0, atol=1e-13)
    # both terms of the gradient, cos u / P and v / P, are at most 1 / P in size: the scale of
    # its rounding errors (it is itself ~0 when p is parallel to t)
    g_scale = 1.0 / np.linalg.norm(p)
    # p -> c p: the value is unchanged, so the gradient scales by 1 / c
    np.testing.assert_allclose(g_c * c, g, rtol=1e-9, atol=1e-12 * g_scale)
    # and it has no radial part (the value does not change along p): g . p = cos - cos = 0
    assert abs(float(np.dot(g.ravel(), p.ravel()))) <= 1e-13


@st.composite
def logits_cases(draw: st.DrawFn, normalise: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    shape = draw(SHAPES)
    z = draw(hnp.arrays(np.float64, shape, elements=reals(-30.0, 30.0)))
    t = draw(hnp.arrays(np.float64, shape, elements=reals(0.0, 5.0)))
    if normalise:
        t = (t + 1e-3) / np.sum(t + 1e-3, axis=-1, keepdims=True)
    shift = draw(hnp.arrays(np.float64, (*shape[:-1], 1), elements=reals(-50.0, 50.0)))
    return z, t, shift


@PROFILE
@given(case=logits_cases(normalise=False))
def test_cross_entropy_logits_invariant_under_slice_shift(
        case: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    z, t, shift = case
    # log-softmax(z + c) = log-softmax(z) per slice; z + c is rounded, hence the tolerance
    scale = 1e-13 * (1.0 + np.abs(z).max() + np.abs(shift).max())
    np.testing.assert_allclose(_value("cross_entropy_logits", z + shift, t),
                               _value("cross_entropy_logits", z, t), rtol=0,
                               atol=scale * np.abs(t).sum())
    np.testing.assert_allclose(_deriv("cross_entropy_logits", z + shift, t),
                               _deriv("cross_entropy_logits", z, t), rtol=0,
                               atol=scale * np.abs(t).max())


@pytest.mark.parametrize("normalise", [True, False], ids=["targets-sum-1", "unnormalised"])
@PROFILE
@given(data=st.data())
def test_cross_entropy_logits_derivative_slices_sum_to_zero(normalise: bool,
                                                            data: st.DataObject) -> None:
    # sum_last(softmax * mass - t) = mass - mass = 0, for any targets
    z, t, _ = data.draw(logits_cases(normalise=normalise))
    g = _deriv("cross_entropy_logits", z, t)
    row_sums = np.sum(g, axis=-1)
    np.testing.assert_allclose(row_sums, 0.0, atol=1e-15 * (1.0 + np.abs(t).sum()))


# --------------------------------------------------------------------------------------------
# float32 in, float32 out, within 1 float32 ulp of the float64 result
# --------------------------------------------------------------------------------------------


def _declared_elements(name: str) -> tuple[st.SearchStrategy[float], Any]:
    """binary32 elements over the declaration's sampling ranges: ``predicted`` in its range,
    the target in its range or among its labels."""
    dom = torchlean.LOSSES[name].domain

    def in_f32(lo: float, hi: float) -> st.SearchStrategy[float]:
        # the float32 numbers inside [lo, hi]
        return reals(float(np.nextafter(np.float32(lo), np.float32(hi))) if np.float32(lo) < lo
                     else float(np.float32(lo)),
                     float(np.nextafter(np.float32(hi), np.float32(lo))) if np.float32(hi) > hi
                     else float(np.float32(hi)), 32)

    t_el = st.sampled_from(list(dom.labels)) if dom.labels else in_f32(*dom.target)
    return in_f32(*dom.predicted), t_el


def _within_one_f32_ulp(out32: Any, ref64: Any) -> None:
    out32, ref64 = np.asarray(out32), np.asarray(ref64, dtype=np.float64)
    assert out32.dtype == np.float32
    ulp = np.spacing(np.abs(ref64.astype(np.float32)))
    # NaN where the float64 result is NaN too (a cosine of a zero vector with epsilon 0)
    same_nan = np.isnan(out32) & np.isnan(ref64)
    assert np.all(same_nan | (np.abs(out32.astype(np.float64) - ref64) <= ulp)), (out32, ref64)


@pytest.mark.parametrize("name", NAMES)
@PROFILE
@given(data=st.data())
def test_float32_in_float32_out(name: str, data: st.DataObject) -> None:
    p_el, t_el = _declared_elements(name)
    p32, t32 = data.draw(pairs(p_el, t_el, dtype=np.float32))
    # the float64 result on the very same (exactly widened) inputs is the reference
    p64, t64 = p32.astype(np.float64), t32.astype(np.float64)
    _within_one_f32_ulp(SPECS[name][0](p32, t32), SPECS[name][0](p64, t64))
    _within_one_f32_ulp(SPECS[name][1](p32, t32), SPECS[name][1](p64, t64))


@PROFILE
@given(p=reals(0.0, 1.0, 32), y=reals(0.0, 1.0, 32))
def test_scalar_bce_float32(p: float, y: float) -> None:
    p32, y32 = np.float32(p), np.float32(y)
    _within_one_f32_ulp(L.binary_cross_entropy_spec(p32, y32),
                        L.binary_cross_entropy_spec(float(p32), float(y32)))
    _within_one_f32_ulp(L.binary_cross_entropy_deriv_spec(p32, y32),
                        L.binary_cross_entropy_deriv_spec(float(p32), float(y32)))
