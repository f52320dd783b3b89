"""The interval (arb) semantics: soundness against the 50-digit oracle on random boxes, tightness,
outward rounding of ``bounds``, the branch and clamp rules."""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from typing import Any

import flint
import mpmath
import numpy as np
import pytest
from flint import arb
from hypothesis import given, settings
from hypothesis import strategies as st
from mpmath import mpf
from spec_functions import NAMES

import torchlean
from torchlean.contexts import interval, precise
from torchlean.errors import DomainError, ParameterError, ShapeError
from torchlean.spec.layers import loss as L

EPS = L.EPSILON
WIDTHS = [0.0, 1e-12, 1e-6, 1e-3, 0.1, 1.0]

# --------------------------------------------------------------------------------------------
# Soundness: for every point of the boxes, the 50-digit value lies within the bounds.
# --------------------------------------------------------------------------------------------

reals = st.floats(-4, 4, allow_nan=False, allow_subnormal=False)
probabilities = st.one_of(st.floats(0, 1), st.sampled_from([0.0, EPS, 1 - EPS, 1.0, 1e-7]))


def pair_centers(name: str) -> st.SearchStrategy[tuple[float, float]]:
    """(predicted, target) box centres, often on a kink or clamp edge of ``name`` (hand-made
    for the losses named; any other loss: residuals on its declared residual seams, 0 and
    +-1, or anywhere)."""
    if name in ("cross_entropy", "binary_cross_entropy"):
        return st.tuples(probabilities, st.floats(0, 1))
    if name == "poisson":
        return st.tuples(reals, st.floats(0, 10))
    if name == "hinge":  # the margin t * x = 1
        return st.one_of(st.tuples(reals, reals),
                         st.sampled_from([(1.0, 1.0), (-1.0, -1.0), (0.5, 2.0)]))
    # d = p - t on 0 (mae), +-delta (huber) and +-1 (log_cosh's switch), or anywhere.
    decl = torchlean.LOSSES[name]
    seams = [s.location(decl.params) for s in decl.seams if s.coordinate == "residual"]
    return st.one_of(st.tuples(reals, reals),
                     st.builds(lambda p, k: (p, p - k), reals,
                               st.sampled_from([0.0, 1.0, -1.0, 0.5, *seams])))


def spans(n: int) -> st.SearchStrategy[list[tuple[float, float]]]:
    """Per element: a width and where the centre sits inside the box (0: left end)."""
    return st.lists(st.tuples(st.sampled_from(WIDTHS), st.floats(0, 1)), min_size=n,
                    max_size=n)


def make_box(centers: list[float], sp: list[tuple[float, float]], clip: tuple[float, float]
             ) -> tuple[np.ndarray, np.ndarray]:
    lo = np.array([c - w * f for c, (w, f) in zip(centers, sp, strict=True)])
    hi = np.array([c + w * (1 - f) for c, (w, f) in zip(centers, sp, strict=True)])
    lo, hi = np.clip(lo, *clip), np.clip(hi, *clip)
    return lo, np.maximum(lo, hi)


def samples(lo: np.ndarray, hi: np.ndarray, fracs: list[float]) -> list[np.ndarray]:
    """Both corners and one inner point (float64 points of the box)."""
    inner = np.clip(lo + np.array(fracs[: lo.size]).reshape(lo.shape) * (hi - lo), lo, hi)
    return [lo, hi, inner]


def assert_within(value: Any, lo: float, hi: float, what: str, points: bool) -> None:
    if math.isnan(lo) or math.isnan(hi):
        # nan is "no information", vacuously sound. It happens only for wide boxes, where a
        # ball's 30-bit radius blurs an end near 0 before a division (q (1 - q) over q in
        # [eps, 1 - eps]); point inputs must always give an enclosure.
        assert not points, f"{what}: no enclosure for point inputs"
        return
    # The oracle is itself rounded at 50 digits; the slack is far below one float ulp.
    slack = mpf(10) ** -30 * max(1, abs(value))
    assert mpf(lo) - slack <= value <= mpf(hi) + slack, f"{what}: {value} not in [{lo}, {hi}]"


def check_sound(name: str, p_lo: np.ndarray, p_hi: np.ndarray, t_lo: np.ndarray,
                t_hi: np.ndarray, fracs: list[float]) -> None:
    entry = torchlean.LOSSES[name]
    pb, tb = interval.box(p_lo, p_hi), interval.box(t_lo, t_hi)
    v_lo, v_hi = interval.bounds(entry.value(pb, tb))
    d_lo, d_hi = interval.bounds(entry.deriv(pb, tb))
    points = bool((p_lo == p_hi).all() and (t_lo == t_hi).all())
    # Corners and an inner point, paired (lo with lo, ...) and crossed once.
    pairs = list(zip(samples(p_lo, p_hi, fracs), samples(t_lo, t_hi, fracs[::-1]), strict=True))
    pairs.append((p_lo, t_hi))
    for p, t in pairs:
        pp, tt = precise.tensor(p), precise.tensor(t)
        assert_within(entry.value(pp, tt), v_lo, v_hi, f"{name} value at {p}, {t}", points)
        for idx, g in np.ndenumerate(entry.deriv(pp, tt)):
            assert_within(g, d_lo[idx], d_hi[idx], f"{name} deriv[{idx}] at {p}, {t}", points)


@pytest.mark.parametrize("name", [n for n in NAMES if torchlean.LOSSES[n].kind == "elementwise"])
def test_elementwise_losses_are_sound(name: str) -> None:
    n = 3
    dom = torchlean.LOSSES[name].domain  # targets inside the checked domain
    clip_t = (-np.inf if dom.target_lo is None else dom.target_lo,
              np.inf if dom.target_hi is None else dom.target_hi)

    @settings(max_examples=25, deadline=None)
    @given(st.lists(pair_centers(name), min_size=n, max_size=n), spans(n), spans(n),
           st.lists(st.floats(0, 1), min_size=n, max_size=n))
    def check(centers: list[tuple[float, float]], sp: list[tuple[float, float]],
              st_: list[tuple[float, float]], fracs: list[float]) -> None:
        p_lo, p_hi = make_box([c[0] for c in centers], sp, (-np.inf, np.inf))
        t_lo, t_hi = make_box([c[1] for c in centers], st_, clip_t)
        check_sound(name, p_lo, p_hi, t_lo, t_hi, fracs)

    check()


@settings(max_examples=25, deadline=None)
@given(st.lists(reals, min_size=3, max_size=3), st.lists(reals, min_size=3, max_size=3),
       st.sampled_from([1.0, 1e-6, 6e-7, 1e-7]), spans(3), spans(3),
       st.lists(st.floats(0, 1), min_size=3, max_size=3))
def test_cosine_is_sound_including_the_norm_clamp(p: list[float], t: list[float], scale: float,
                                                  sp: list[tuple[float, float]],
                                                  st_: list[tuple[float, float]],
                                                  fracs: list[float]) -> None:
    # Scaled down, ||p|| sits near eps = 1e-6 and the boxes straddle the clamp.
    p_lo, p_hi = make_box([v * scale for v in p], [(w * scale, f) for w, f in sp],
                          (-np.inf, np.inf))
    t_lo, t_hi = make_box(t, st_, (-np.inf, np.inf))
    check_sound("cosine_similarity", p_lo, p_hi, t_lo, t_hi, fracs)


@settings(max_examples=20, deadline=None)
@given(st.lists(reals, min_size=6, max_size=6), st.lists(st.floats(0, 2), min_size=6, max_size=6),
       spans(6), spans(6), st.lists(st.floats(0, 1), min_size=6, max_size=6))
def test_cross_entropy_logits_is_sound(z: list[float], t: list[float],
                                       sp: list[tuple[float, float]],
                                       st_: list[tuple[float, float]], fracs: list[float]) -> None:
    z_lo, z_hi = make_box(z, sp, (-np.inf, np.inf))
    t_lo, t_hi = make_box(t, st_, (-np.inf, np.inf))
    shape = (2, 3)
    check_sound("cross_entropy_logits", z_lo.reshape(shape), z_hi.reshape(shape),
                t_lo.reshape(shape), t_hi.reshape(shape), fracs + fracs)


# --------------------------------------------------------------------------------------------
# Tightness
# --------------------------------------------------------------------------------------------


def ulps_apart(lo: float, hi: float) -> int:
    n = 0
    while lo < hi:
        lo = math.nextafter(lo, math.inf)
        n += 1
    return n


POINT_INPUTS = {
    "cross_entropy_logits": ([[0.3, -1.2, 2.0], [0.5, 0.1, -0.7]], [[0, 1, 0], [0.2, 0.3, 0.5]]),
    "hinge": ([0.3, -1.2, 2.0], [1, -1, -1]),
    "poisson": ([0.3, -1.2, 2.0], [1, 0, 3]),
    # log-probabilities on both sides: the default inputs are not, and their terms cancel
    "kl_divergence_log_targets": ([-1.2, -0.5, -2.0], [-2.3, -0.22, -0.51]),
}


@pytest.mark.parametrize("name", NAMES)
def test_point_boxes_are_about_one_ulp_wide(name: str) -> None:
    p, t = POINT_INPUTS.get(name, ([0.3, 0.45, 0.9], [0.1, 0.8, 0.6]))
    entry = torchlean.LOSSES[name]
    lo, hi = interval.bounds(entry.value(interval.point(p), interval.point(t)))
    assert ulps_apart(lo, hi) <= 2, (lo, hi)
    # ... and near the float64 result (which may be a few ulps off where the formula cancels).
    v64 = float(entry.value(np.array(p, float), np.array(t, float)))
    assert abs(v64 - lo) <= 1e-15 * abs(v64)


@pytest.mark.parametrize(("lo", "hi", "point"), [
    (0.0, 1e-7, 0.0),  # below eps: the clamp gives eps
    (0.9999999, 1.0, 1.0),  # above 1 - eps: the clamp gives 1 - eps
], ids=["below-eps", "above-1-eps"])
def test_box_inside_the_clamp_is_as_narrow_as_a_point(lo: float, hi: float,
                                                      point: float) -> None:
    t = interval.point([0.7])
    boxed = interval.bounds(L.cross_entropy_spec(interval.box([lo], [hi]), t))
    pointed = interval.bounds(L.cross_entropy_spec(interval.point([point]), t))
    assert boxed == pointed and ulps_apart(*pointed) <= 1
    g = L.cross_entropy_deriv_spec(interval.box([lo], [hi]), t)[0]
    assert g.is_exact() and g.is_zero()  # the derivative is exactly 0 there


def test_hinge_box_beyond_the_margin_is_exact_zero() -> None:
    # 1 - t x < 0 on the whole box: max(., 0) returns the point 0, not a hull.
    v = L.hinge_spec(interval.box([2.0], [3.0]), interval.point([1]))
    assert v.is_exact() and v.is_zero()


# --------------------------------------------------------------------------------------------
# bounds: outward rounding
# --------------------------------------------------------------------------------------------


def test_bounds_round_outward() -> None:
    with flint.ctx.workprec(80) if hasattr(flint.ctx, "workprec") else _prec(80):
        third = arb(1) / 3
    lo, hi = interval.bounds(third)
    assert isinstance(lo, float) and isinstance(hi, float)
    assert Fraction(lo) < Fraction(1, 3) < Fraction(hi)
    assert hi == math.nextafter(lo, math.inf)  # adjacent floats: as tight as can be
    # A float is its own bounds.
    assert interval.bounds(interval.point(0.1)) == (0.1, 0.1)
    # Beyond the float range: the finite side rounds to the largest float.
    big = arb(10) ** 400
    assert interval.bounds(big) == (sys.float_info.max, math.inf)
    assert interval.bounds(-big) == (-math.inf, -sys.float_info.max)
    # Below the smallest subnormal: 0 and the smallest subnormal.
    tiny = arb(2) ** -1100
    assert interval.bounds(tiny) == (0.0, 5e-324)
    assert interval.bounds(-tiny) == (-5e-324, -0.0)
    assert all(math.isnan(v) for v in interval.bounds(arb("nan")))


class _prec:
    def __init__(self, bits: int) -> None:
        self.bits = bits

    def __enter__(self) -> None:
        self.old, flint.ctx.prec = flint.ctx.prec, self.bits

    def __exit__(self, *exc: Any) -> None:
        flint.ctx.prec = self.old


def test_bounds_shapes() -> None:
    lo, hi = interval.bounds(interval.box([[0.0, 1.0]], [[0.5, 2.0]]))
    assert lo.dtype == np.float64 and lo.shape == (1, 2)
    assert np.allclose(lo, [[0.0, 1.0]], rtol=0, atol=1e-8) and (lo <= [[0.0, 1.0]]).all()
    assert np.allclose(hi, [[0.5, 2.0]], rtol=0, atol=1e-8) and (hi >= [[0.5, 2.0]]).all()
    lo, hi = interval.bounds(interval.box(1.0, 3.0))  # 0-d: Python floats
    assert type(lo) is float and type(hi) is float and lo <= 1.0 and hi >= 3.0
    assert interval.bounds(interval.box(1.0, 1.0)) == (1.0, 1.0)


# --------------------------------------------------------------------------------------------
# the per-operation rules
# --------------------------------------------------------------------------------------------

C = interval.CONTEXT


def b(lo: float, hi: float) -> np.ndarray:
    return interval.box([lo], [hi])


def bnd(x: np.ndarray) -> tuple[float, float]:
    lo, hi = interval.bounds(x)
    return float(lo[0]), float(hi[0])


def encloses_tightly(x: np.ndarray, lo: float, hi: float) -> bool:
    """``x`` contains ``[lo, hi]`` and reaches beyond it by no more than arb's radius rounding
    (a 30-bit mantissa: about 2**-30 of the width; 1e-8 of it here)."""
    got_lo, got_hi = bnd(x)
    slack = 1e-8 * (1 + hi - lo)
    return lo - slack <= got_lo <= lo and hi <= got_hi <= hi + slack


def test_comparisons_are_three_valued() -> None:
    assert C.lt(b(0, 1), 2)[0] is True
    assert C.lt(b(2, 3), 1)[0] is False
    assert C.lt(b(0, 2), 1)[0] is None
    assert C.logical_and(C.lt(b(0, 2), 1), C.lt(b(2, 3), 1))[0] is False
    assert C.logical_and(C.lt(b(0, 2), 1), C.lt(b(0, 1), 2))[0] is None


def test_undecided_where_is_the_hull() -> None:
    out = C.where(C.lt(b(0, 2), 1), interval.point([5]), interval.point([7]))
    assert encloses_tightly(out, 5.0, 7.0)
    out = C.where(C.lt(b(0, 0.5), 1), interval.point([5]), interval.point([7]))
    assert bnd(out) == (5.0, 5.0)


def test_maximum_minimum_are_monotone() -> None:
    assert encloses_tightly(C.maximum(b(0, 2), 1), 1.0, 2.0)
    assert encloses_tightly(C.minimum(b(0, 2), 1), 0.0, 1.0)
    m = C.maximum(b(0, 0.5), 1)[0]
    assert m.is_exact() and m == 1
    assert encloses_tightly(C.maximum(b(0, 2), b(1, 3)), 1.0, 3.0)
    assert C.maximum(interval.point([float("nan")]), 1)[0].is_nan()


def test_abs_and_sign_are_tight() -> None:
    assert encloses_tightly(C.abs(b(-1, 2)), 0.0, 2.0)  # arb's own abs gives [-1, 2]
    assert encloses_tightly(C.abs(b(-3, -1)), 1.0, 3.0)
    assert encloses_tightly(C.sign(b(-1, 2)), -1.0, 1.0)
    assert encloses_tightly(C.sign(b(0, 2)), 0.0, 1.0)
    assert encloses_tightly(C.sign(b(-2, 0)), -1.0, 0.0)
    assert bnd(C.sign(b(0.5, 2))) == (1.0, 1.0)
    assert C.sign(interval.point([0.0]))[0].is_zero()


def test_norm_and_sqrt_through_zero() -> None:
    # sqrt([0, 1] + [9, 16]) = [3, sqrt(17)]; the squares are tight, not [-1, 1] * [-1, 1].
    norm = C.norm(interval.box([-1.0, 3.0], [1.0, 4.0]))
    assert encloses_tightly(norm.reshape(1), 3.0, math.nextafter(math.sqrt(17), math.inf))
    assert encloses_tightly(C.sqrt(b(-1e-30, 1.0)), 0.0, 1.0)
    # exp, log, ... of a wide ball from its ends: exp([0, 1]) = [1, e].
    assert encloses_tightly(C.exp(b(0.0, 1.0)), 1.0, math.nextafter(math.e, math.inf))
    assert C.sqrt(b(-2.0, -1.0))[0].is_nan()


def test_exp_shift_is_an_exact_point() -> None:
    s = C.exp_shift(interval.box([[0.0, 4.0, -1.0]], [[1.0, 6.0, 0.0]]), -1)
    assert s.shape == (1, 1) and s[0, 0].is_exact() and s[0, 0] == 5


def test_log_softmax_is_shift_free_and_sound() -> None:
    # logits 1000, 0, -1000: the point shift keeps exp finite; log-softmax is (0, -1000, -2000)
    # up to exp(-1000).
    from torchlean.spec.layers.activation import log_softmax_spec

    lo, hi = interval.bounds(log_softmax_spec(interval.point([1000.0, 0.0, -1000.0])))
    assert lo[1] <= -1000 <= hi[1] and lo[2] <= -2000 <= hi[2] and lo[0] <= 0 <= hi[0]
    assert max(hi - lo) < 1e-12


# --------------------------------------------------------------------------------------------
# domain checks, inputs, every loss
# --------------------------------------------------------------------------------------------


def test_check_range_only_for_boxes_wholly_outside() -> None:
    with pytest.raises(DomainError, match="`target`"):
        L.poisson_spec(interval.point([0.0]), interval.box([-2.0], [-1.0]))
    L.poisson_spec(interval.point([0.0]), interval.box([-1.0], [0.5]))  # may be inside
    with pytest.raises(DomainError, match="`target`"):
        L.binary_cross_entropy_tensor_spec(interval.point([0.5]), interval.box([1.5], [2.0]))


@pytest.mark.parametrize(("lo", "hi", "err"), [
    ([1.0], [0.0], ParameterError),
    ([float("nan")], [1.0], ParameterError),
    ([0.0, 1.0], [1.0], ShapeError),
], ids=["reversed", "nan", "shape"])
def test_box_validation(lo: list[float], hi: list[float], err: type[Exception]) -> None:
    with pytest.raises(err, match="`"):
        interval.box(lo, hi)


def test_points_and_conversions() -> None:
    x = interval.point([0.1, 3, Fraction(1, 3), mpf(0.25)])
    assert x[0].is_exact() and x[0] == arb(0.1)  # the double itself
    assert x[1].is_exact() and x[3].is_exact() and x[3] == arb(0.25)
    lo, hi = interval.bounds(x[2])
    assert Fraction(lo) < Fraction(1, 3) < Fraction(hi) and not x[2].is_exact()
    assert interval.tensor is interval.point
    with mpmath.workdps(40):
        big = mpf(1) / 7
    assert interval.point(big)[()].is_exact()  # a 133-bit mpf converts exactly


def test_working_precision_is_restored() -> None:
    before = flint.ctx.prec
    L.log_cosh_spec(interval.box([0.0], [2.0]), interval.point([0.5]))
    assert flint.ctx.prec == before
    assert interval.IntervalContext(prec=200).prec == 200
    with pytest.raises(ParameterError, match="`prec`"):
        interval.IntervalContext(prec=1)


def test_nan_in_nan_out() -> None:
    v = L.mse_spec(interval.point([float("nan"), 1.0]), interval.point([0.0, 0.0]))
    assert v.is_nan()
    g = L.cross_entropy_deriv_spec(interval.point([float("nan"), 0.5]), interval.point([1, 1]))
    assert g[0].is_nan() and not g[1].is_nan()


@pytest.mark.parametrize("name", NAMES)
def test_every_loss_encloses_float64(name: str) -> None:
    p, t = [[0.2, 0.5], [0.3, 0.9]], [[0.0, 1.0], [1.0, 0.0]]
    entry = torchlean.LOSSES[name]
    value = entry.value(interval.point(p), interval.point(t))
    deriv = entry.deriv(interval.point(p), interval.point(t))
    assert isinstance(value, arb) and all(isinstance(g, arb) for g in deriv.flat)
    v_lo, v_hi = interval.bounds(value)
    v64 = float(entry.value(np.array(p), np.array(t)))
    assert abs(v64 - v_lo) <= 4e-16 * max(1, abs(v64)) and v_lo <= v_hi
    # empty tensors give the float64 value exactly (means: 0; cosine: 1)
    empty = entry.value(interval.point(np.zeros(0)), interval.point(np.zeros(0)), ctx=interval)
    assert empty == float(entry.value(np.zeros(0), np.zeros(0)))
