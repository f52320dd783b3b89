"""The rational (Fraction) semantics: exact values, exact branches, refused transcendentals."""

from __future__ import annotations

from fractions import Fraction as F
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spec_functions import NAMES

import torchlean
from torchlean.contexts import rational
from torchlean.errors import DomainError, DTypeError, UnsupportedOperationError
from torchlean.spec.layers import loss as L

RUNS = ("mse", "mae", "huber", "hinge", "squared_error", "quantile")

fractions = st.fractions(min_value=-4, max_value=4, max_denominator=12)
# Pairs of equal-length lists of Fractions.
pairs = st.integers(1, 4).flatmap(
    lambda n: st.tuples(st.lists(fractions, min_size=n, max_size=n),
                        st.lists(fractions, min_size=n, max_size=n)))
# Huber thresholds as the floats a user types; the semantics reads their decimals.
deltas = st.sampled_from([(0.5, F(1, 2)), (1.0, F(1)), (0.1, F(1, 10)), (2.5, F(5, 2))])


def T(values: Any) -> np.ndarray:
    return rational.tensor(values)


def sign(x: F) -> int:
    return (x > 0) - (x < 0)


def assert_exact(got: Any, want: Any) -> None:
    assert type(got) is F and got == want, (got, want)


# The formulas below are the losses' definitions written out by hand for Fractions.


@settings(max_examples=40, deadline=None)
@given(pairs)
def test_mse_exact(pt: tuple[list[F], list[F]]) -> None:
    p, t = pt
    n = len(p)
    want = sum(((a - b) ** 2 for a, b in zip(p, t, strict=True)), F(0)) / n
    assert_exact(L.mse_spec(T(p), T(t)), want)
    got = L.mse_deriv_spec(T(p), T(t))
    for g, a, b in zip(got, p, t, strict=True):
        assert_exact(g, 2 * (a - b) / n)


@settings(max_examples=40, deadline=None)
@given(pairs)
def test_mae_exact(pt: tuple[list[F], list[F]]) -> None:
    p, t = pt
    n = len(p)
    want = sum((abs(a - b) for a, b in zip(p, t, strict=True)), F(0)) / n
    assert_exact(L.mae_spec(T(p), T(t)), want)
    for g, a, b in zip(L.mae_deriv_spec(T(p), T(t)), p, t, strict=True):
        assert_exact(g, F(sign(a - b), n))  # sign(0) = 0: the kink choice


@settings(max_examples=40, deadline=None)
@given(pairs, deltas)
def test_huber_exact(pt: tuple[list[F], list[F]], delta: tuple[float, F]) -> None:
    p, t = pt
    n = len(p)
    given_delta, dl = delta

    def h(d: F) -> F:
        return d * d / (2 * dl) if abs(d) < dl else abs(d) - dl / 2

    def g(d: F) -> F:
        return d / dl if abs(d) < dl else F(sign(d))

    value = L.huber_spec(T(p), T(t), delta=given_delta)
    assert_exact(value, sum((h(a - b) for a, b in zip(p, t, strict=True)), F(0)) / n)
    deriv = L.huber_deriv_spec(T(p), T(t), delta=given_delta)
    for got, a, b in zip(deriv, p, t, strict=True):
        assert_exact(got, g(a - b) / n)


@settings(max_examples=40, deadline=None)
@given(pairs)
def test_hinge_exact(pt: tuple[list[F], list[F]]) -> None:
    x, t = pt
    n = len(x)
    value = sum((max(F(0), 1 - b * a) for a, b in zip(x, t, strict=True)), F(0)) / n
    assert_exact(L.hinge_spec(T(x), T(t)), value)
    for got, a, b in zip(L.hinge_deriv_spec(T(x), T(t)), x, t, strict=True):
        assert_exact(got, -b / n if 1 - b * a > 0 else F(0))  # 0 at the margin


probabilities = st.fractions(min_value=0, max_value=1, max_denominator=10**7)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(probabilities, probabilities), min_size=1, max_size=4))
def test_clamped_probability_derivatives_exact(pt: list[tuple[F, F]]) -> None:
    # Only comparisons and division: the derivatives of the clamped losses are rational.
    p, t = [a for a, _ in pt], [b for _, b in pt]
    n, eps = len(p), F(1, 10**6)  # EPSILON read as its decimal
    ce = L.cross_entropy_deriv_spec(T(p), T(t))
    bce = L.binary_cross_entropy_tensor_deriv_spec(T(p), T(t))
    for i, (a, b) in enumerate(pt):
        inside = eps < a < 1 - eps
        assert_exact(ce[i], -b / a / n if inside else F(0))
        assert_exact(bce[i], (a - b) / (a * (1 - a)) / n if inside else F(0))


def test_hand_values() -> None:
    # mse of (1/2, 2) against 0: (1/4 + 4) / 2 = 17/8.
    assert_exact(L.mse_spec(T([0.5, 2]), T([0, 0])), F(17, 8))
    # 0.1 and 0.2 are read as 1/10 and 2/10: d = -1/10, mse 1/100 exactly (no binary error).
    assert_exact(L.mse_spec(T([0.1]), T([0.2])), F(1, 100))
    # huber delta = 1 at |d| = delta exactly: the linear branch, 1 - 1/2 = 1/2; derivative 1.
    assert_exact(L.huber_spec(T([1]), T([0])), F(1, 2))
    assert_exact(L.huber_deriv_spec(T([1]), T([0]))[0], F(1))
    # empty tensors average to 0
    assert_exact(L.mae_spec(T([]), T([]), ctx=rational), F(0))


@pytest.mark.parametrize("name", NAMES)
def test_every_loss_runs_or_refuses(name: str) -> None:
    p, t = T([[0.2, 0.5], [0.3, 0.9]]), T([[0, 1], [1, 0]])
    entry = torchlean.LOSSES[name]
    if name in RUNS:
        assert type(entry.value(p, t)) is F
        assert all(type(g) is F for g in entry.deriv(p, t).flat)
    else:
        with pytest.raises(UnsupportedOperationError, match="rational semantics cannot compute"):
            entry.value(p, t)


FUNCTIONS = ["exp", "expm1", "log", "log1p", "sqrt", "tanh", "norm"]


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize("values", [[F(1, 2)], []], ids=["one", "empty"])
def test_transcendentals_raise_with_their_name(fn: str, values: list[F]) -> None:
    with pytest.raises(UnsupportedOperationError, match=f"`{fn}`") as info:
        getattr(rational.CONTEXT, fn)(T(values))
    assert "exact" in str(info.value) and "precise" in str(info.value)


@pytest.mark.parametrize(("name", "fn"), [
    ("poisson", "exp"), ("cosine_similarity", "norm"), ("cross_entropy", "log"),
    ("log_cosh", "expm1"), ("cross_entropy_logits", "exp"),
])
def test_losses_name_the_refused_function(name: str, fn: str) -> None:
    with pytest.raises(UnsupportedOperationError, match=f"`{fn}`"):
        torchlean.LOSSES[name].value(T([0.5]), T([1]))


def test_conversions() -> None:
    assert T(0.1)[()] == F(1, 10) and T(1e-6)[()] == F(1, 10**6)
    assert rational.CONTEXT.const(L.EPSILON) == F(1, 10**6)
    assert T(np.float32(0.1))[()] == F(1, 10)  # float32 by its own shortest digits
    assert list(T(np.array([1, 2], dtype=np.int64)).flat) == [1, 2]
    assert T(True)[()] == 1
    assert T(F(2, 3))[()] == F(2, 3)
    import sympy

    assert T(sympy.Rational(3, 7))[()] == F(3, 7)
    # inference from an object array of Fractions
    assert_exact(L.mse_spec(np.array([F(1, 3)], dtype=object), [0]), F(1, 9))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")],
                         ids=["nan", "inf", "-inf"])
def test_non_finite_refused(bad: float) -> None:
    with pytest.raises(DomainError, match=r"`predicted` at index \(1,\).*finite"):
        L.mse_spec([1.0, bad], [0, 0], ctx=rational)


def test_non_numbers_refused() -> None:
    with pytest.raises(DTypeError, match="`target`"):
        L.mse_spec([1.0], ["x"], ctx=rational)
    with pytest.raises(DTypeError, match="`predicted`"):
        L.mse_spec([1j], [0], ctx=rational)


def test_domain_checks_are_exact() -> None:
    with pytest.raises(DomainError, match="`target`"):
        L.binary_cross_entropy_tensor_deriv_spec(T([0.5]), T([F(-1, 10**9)]))
    # exactly at the ends is inside [0, 1]
    got = L.binary_cross_entropy_tensor_deriv_spec(T([0.5, 0.5]), T([0, 1]))
    assert list(got.flat) == [F(1), F(-1)]  # (1/2 - y) / (1/4) / 2
    got = L.binary_cross_entropy_tensor_deriv_spec(T([0.5]), T([2]), check_domain=False)
    assert_exact(got[0], F(-6))  # (1/2 - 2) / (1/4)
