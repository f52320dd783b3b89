"""The precise (mpmath) semantics: agreement with mpmath formulas evaluated directly (hand data
for the losses written out here), every declared loss's digits and derivative on its zones,
precision handling, real-valued functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np
import oracle
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loss_inputs import smooth_case, zones
from mpmath import mpf
from spec_functions import NAMES

import torchlean
from torchlean.contexts import precise
from torchlean.spec.layers import loss as L
from torchlean.spec.layers.activation import softmax_spec

EPS = mpf(L.EPSILON)  # the double nearest 1e-6, exactly, as the precise semantics reads it

# --------------------------------------------------------------------------------------------
# The losses written out directly with mpmath (the reference; each is the textbook formula,
# without the stable rewritings the specs use), value and derivative, on flat lists of mpf.
# --------------------------------------------------------------------------------------------


def _clamp(p: mpf) -> mpf:
    return min(max(p, EPS), 1 - EPS)


def _inside(p: mpf) -> bool:
    return EPS < p < 1 - EPS


def _cos_parts(p: list[mpf], t: list[mpf]) -> tuple[mpf, mpf, mpf]:
    pn = mpmath.sqrt(mpmath.fsum(a * a for a in p))
    tn = mpmath.sqrt(mpmath.fsum(b * b for b in t))
    return pn, max(tn, EPS), mpmath.fsum(a * b for a, b in zip(p, t, strict=True))


def _cos_deriv(p: list[mpf], t: list[mpf]) -> list[mpf]:
    pn, big_t, dot = _cos_parts(p, t)
    if pn > EPS:
        return [dot / (pn**3 * big_t) * a - b / (pn * big_t) for a, b in zip(p, t, strict=True)]
    return [-b / (EPS * big_t) for b in t]


Elementwise = Callable[[mpf, mpf], mpf]

# name -> (per-element value term, per-element derivative term); the loss is the mean.
ELEMENTWISE: dict[str, tuple[Elementwise, Elementwise]] = {
    "mse": (lambda a, b: (a - b) ** 2, lambda a, b: 2 * (a - b)),
    "mae": (lambda a, b: abs(a - b), lambda a, b: mpmath.sign(a - b)),
    "huber": (lambda a, b: (a - b) ** 2 / 2 if abs(a - b) < 1 else abs(a - b) - mpf(1) / 2,
              lambda a, b: a - b if abs(a - b) < 1 else mpmath.sign(a - b)),
    "cross_entropy": (lambda a, b: -b * mpmath.log(_clamp(a)),
                      lambda a, b: -b / a if _inside(a) else mpf(0)),
    "hinge": (lambda a, b: max(mpf(0), 1 - b * a), lambda a, b: -b if 1 - b * a > 0 else mpf(0)),
    "poisson": (lambda a, b: mpmath.exp(a) - b * a, lambda a, b: mpmath.exp(a) - b),
    "log_cosh": (lambda a, b: mpmath.log(mpmath.cosh(a - b)), lambda a, b: mpmath.tanh(a - b)),
    "binary_cross_entropy": (
        lambda a, b: -(b * mpmath.log(_clamp(a)) + (1 - b) * mpmath.log(1 - _clamp(a))),
        lambda a, b: (a - b) / (a * (1 - a)) if _inside(a) else mpf(0)),
}


def direct(name: str, p: list[mpf], t: list[mpf], rows: int) -> tuple[mpf, list[mpf]]:
    """(value, derivative) of ``name`` at flat ``p``, ``t`` (``rows`` rows for logits)."""
    n = len(p)
    if name in ELEMENTWISE:
        f, g = ELEMENTWISE[name]
        return (mpmath.fsum(f(a, b) for a, b in zip(p, t, strict=True)) / n,
                [g(a, b) / n for a, b in zip(p, t, strict=True)])
    if name == "cosine_similarity":
        pn, big_t, dot = _cos_parts(p, t)
        return 1 - dot / (max(pn, EPS) * big_t), _cos_deriv(p, t)
    assert name == "cross_entropy_logits"
    k = n // rows
    value, deriv = mpf(0), []
    for r in range(rows):
        z, y = p[r * k:(r + 1) * k], t[r * k:(r + 1) * k]
        lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in z))
        value -= mpmath.fsum(b * (v - lse) for v, b in zip(z, y, strict=True))
        mass = mpmath.fsum(y)
        deriv += [(mpmath.exp(v - lse) * mass - b) / n for v, b in zip(z, y, strict=True)]
    return value / n, deriv


def close(a: mpf, b: mpf, tol: mpf) -> bool:
    return abs(a - b) <= tol * max(1, abs(b))


# --------------------------------------------------------------------------------------------
# agreement, every loss, hypothesis inputs
# --------------------------------------------------------------------------------------------

reals = st.floats(-4, 4, allow_nan=False, allow_subnormal=False)
unit = st.floats(0, 1, allow_nan=False)
# Values that sit on a kink or a clamp bound of some loss.
edges = st.sampled_from([0.0, 1.0, -1.0, 0.5, L.EPSILON, 1 - L.EPSILON, 1e-7, 1e-300])


def inputs(name: str) -> st.SearchStrategy[tuple[list[float], list[float]]]:
    size = 6 if name == "cross_entropy_logits" else 3
    if name in ("cross_entropy", "binary_cross_entropy"):
        p_el, t_el = st.one_of(unit, edges.filter(lambda v: 0 <= v <= 1)), unit
    elif name == "poisson":
        p_el, t_el = reals, st.floats(0, 10)
    else:
        p_el, t_el = st.one_of(reals, edges), st.one_of(reals, edges)
    return st.tuples(st.lists(p_el, min_size=size, max_size=size),
                     st.lists(t_el, min_size=size, max_size=size))


#: the losses written out above (hand data; every loss also gets the declaration-driven check
#: below)
DIRECT = [*ELEMENTWISE, "cosine_similarity", "cross_entropy_logits"]


@pytest.mark.parametrize("name", DIRECT)
def test_agrees_with_direct_mpmath(name: str) -> None:
    @settings(max_examples=15, deadline=None)
    @given(inputs(name))
    def check(pt: tuple[list[float], list[float]]) -> None:
        p_list, t_list = pt
        shape = (2, 3) if name == "cross_entropy_logits" else (3,)
        p = precise.tensor(np.reshape(p_list, shape))
        t = precise.tensor(np.reshape(t_list, shape))
        entry = torchlean.LOSSES[name]
        value, deriv = entry.value(p, t), entry.deriv(p, t)
        assert isinstance(value, mpf) and isinstance(deriv, precise.PreciseTensor)
        with mpmath.workdps(50):
            want_v, want_d = direct(name, [mpf(v) for v in p_list], [mpf(v) for v in t_list],
                                    shape[0] if len(shape) == 2 else 1)
        tol = mpf(10) ** -45
        assert close(value, want_v, tol), (value, want_v)
        # The cosine derivative is a difference of two terms of size |t| / (P T); where they
        # cancel, both forms are accurate to 50 digits of the terms, not of the result.
        scale = mpf(1)
        if name == "cosine_similarity":
            with mpmath.workdps(50):
                pn, big_t, _ = _cos_parts([mpf(v) for v in p_list], [mpf(v) for v in t_list])
                scale = max(mpf(1), max(abs(mpf(v)) for v in t_list) / (max(pn, EPS) * big_t))
        for got, want in zip(deriv.flat, want_d, strict=True):
            assert close(got, want, tol * scale), (got, want)

    check()


@pytest.mark.parametrize("name", NAMES)
def test_every_loss_keeps_its_digits_and_differentiates(name: str) -> None:
    """On samples of every branch region: the value at 50 digits is the value at 80 digits to
    45 (no digits lost in the formula), and the derivative term is mpmath's numerical
    derivative of the 50-digit value (the oracle of ``tests/oracle.py``)."""
    entry = torchlean.LOSSES[name]
    for k, _ in enumerate(zones(name)):
        p, t, params = smooth_case(name, (2, 3), seed=k, zone=k)
        v50 = entry.value(precise.tensor(p), precise.tensor(t), **params)
        v80 = entry.value(precise.tensor(p, dps=80), precise.tensor(t, dps=80), **params)
        assert close(v50, v80, mpf(10) ** -45), (v50, v80)
        got = entry.deriv(precise.tensor(p), precise.tensor(t), **params)
        want = oracle.deriv(name, p, t, **params)
        scale = max(mpf(1), *(abs(w) for w in want))
        for g, w in zip(got.flat, want, strict=True):
            assert abs(g - w) <= mpf(10) ** -30 * scale, (k, g, w)


def test_bce_scalar_against_mpmath() -> None:
    # -log(1/4) = log 4 to 50 digits; derivative (1/4 - 1) / (1/4 * 3/4) = -4.
    with mpmath.workdps(50):
        want = mpmath.log(4)
    got = L.binary_cross_entropy_spec(precise.tensor(0.25), precise.tensor(1))
    assert close(got, want, mpf(10) ** -48)
    assert L.binary_cross_entropy_deriv_spec(precise.tensor(0.25), precise.tensor(1)) == -4


# --------------------------------------------------------------------------------------------
# precision handling
# --------------------------------------------------------------------------------------------


THIRD = mpf(1) / 3  # at mpmath's default 53 bits: one double, the same input everywhere


def _log_cosh_80() -> mpf:
    with mpmath.workdps(80):
        return (mpmath.log(mpmath.cosh(THIRD)) + mpmath.log(mpmath.cosh(3))) / 2


def test_tensor_dps_sets_the_working_precision() -> None:
    p80 = precise.tensor([THIRD, 3], dps=80)
    p30 = precise.tensor([0, 0], dps=30)
    assert p80.dps == 80 and p30.dps == 30
    want = _log_cosh_80()
    # 80 digits with 30 digits: the larger wins.
    got = L.log_cosh_spec(p80, p30)
    with mpmath.workdps(80):
        assert abs(got - want) < mpf(10) ** -75
    assert L.log_cosh_deriv_spec(p80, p30).dps == 80
    # Untagged inputs evaluate at the default 50 digits.
    plain = np.array([mpf(2)], dtype=object)
    assert L.mse_deriv_spec(plain, [0]).dps == precise.DEFAULT_DPS == 50


def test_explicit_context_precision() -> None:
    ctx = precise.PreciseContext(dps=20)
    want = _log_cosh_80()
    p = precise.tensor([THIRD, 3], dps=80)
    got = L.log_cosh_spec(p, [0, 0], ctx=ctx)
    err = abs(got - want)
    # 20 digits: accurate to about 1e-19, visibly not to 1e-30.
    assert err < mpf(10) ** -18 and err > mpf(10) ** -30
    assert L.mse_deriv_spec(p, [0, 0], ctx=ctx).dps == 20
    with pytest.raises(torchlean.errors.ParameterError, match="`dps`"):
        precise.PreciseContext(dps=0)


def test_global_precision_is_restored() -> None:
    before = mpmath.mp.dps
    L.poisson_spec(precise.tensor([1.5]), precise.tensor([2]))
    assert mpmath.mp.dps == before


def test_floats_convert_exactly() -> None:
    x = precise.tensor(0.1)[()]
    assert x == mpf(0.1)  # the double, not the decimal 1/10
    with mpmath.workdps(50):
        assert x != mpf("0.1")
    assert precise.CONTEXT.const(L.EPSILON) == mpf(1e-6)
    third = precise.tensor(__import__("fractions").Fraction(1, 3))[()]
    with mpmath.workdps(50):
        assert abs(third - mpf(1) / 3) < mpf(10) ** -49


# --------------------------------------------------------------------------------------------
# real-valued functions, nan, extremes
# --------------------------------------------------------------------------------------------


def test_real_valued_like_ieee() -> None:
    c = precise.CONTEXT
    x = precise.tensor([-1.0])
    for fn in (c.log, c.sqrt):
        out = fn(x)[0]
        assert isinstance(out, mpf) and mpmath.isnan(out)
    assert mpmath.isnan(c.log1p(precise.tensor([-2.0]))[0])
    assert c.log(precise.tensor([0.0]))[0] == -mpmath.inf


def test_nan_propagates() -> None:
    nan = float("nan")
    assert mpmath.isnan(L.mse_spec(precise.tensor([nan, 1]), [0, 0]))
    g = L.cross_entropy_deriv_spec(precise.tensor([nan, 0.5]), [1, 1])
    assert mpmath.isnan(g[0]) and g[1] == -1  # -1 / (1/2) / 2
    assert mpmath.isnan(L.hinge_deriv_spec(precise.tensor([nan]), [1])[0])


def test_extremes_do_not_overflow() -> None:
    # log cosh(1e6) = 1e6 - log 2 + log1p(e**-2e6): to 50 digits, 1e6 - log 2.
    got = L.log_cosh_spec(precise.tensor([1e6]), [0])
    with mpmath.workdps(50):
        assert close(got, 10**6 - mpmath.log(2), mpf(10) ** -45)
    s = softmax_spec(precise.tensor([1000.0, 0.0, -1000.0]))
    with mpmath.workdps(50):
        assert close(s[1], mpmath.exp(-1000) / (1 + mpmath.exp(-1000) + mpmath.exp(-2000)),
                     mpf(10) ** -45)


def test_empty_and_inference() -> None:
    empty = precise.tensor(np.zeros((0,)))
    # the tensor type names its semantics, so even an empty tensor infers it
    assert L.mse_spec(empty, empty) == 0
    assert L.cosine_similarity_spec(empty, empty) == 1
    assert type(L.mse_spec(np.array([mpf(3)], dtype=object), [1])) is mpf


def test_exp_shift_is_the_slice_maximum() -> None:
    c = precise.CONTEXT
    out = c.exp_shift(precise.tensor([[1.0, 5.0, -2.0], [float("inf"), 3.0, 1.0]]), -1)
    assert out.shape == (2, 1)
    assert out[0, 0] == 5 and out[1, 0] == 3  # largest finite entry


def test_arb_points_and_sympy_numbers_convert() -> None:
    import sympy
    from flint import arb

    assert precise.tensor(arb(0.375))[()] == mpf(0.375)
    assert precise.tensor(sympy.Rational(1, 4))[()] == mpf(0.25)
    with pytest.raises(torchlean.errors.DTypeError, match="`values`"):
        precise.tensor(arb(1, 0.5))  # a wide ball is not a number


def run_all(name: str) -> Any:
    entry = torchlean.LOSSES[name]
    p = precise.tensor([[0.2, 0.5], [0.3, 0.9]])
    t = precise.tensor([[0, 1], [1, 0]])
    return entry.value(p, t), entry.deriv(p, t)


@pytest.mark.parametrize("name", NAMES)
def test_every_loss_matches_float64(name: str) -> None:
    value, deriv = run_all(name)
    v64 = torchlean.LOSSES[name].value(np.array([[0.2, 0.5], [0.3, 0.9]]),
                                       np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert abs(float(value) - float(v64)) <= 1e-14 * max(1.0, abs(float(v64)))
    assert all(isinstance(g, mpf) for g in deriv.flat)
