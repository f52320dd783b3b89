"""The exact (sympy) semantics: exact values of every loss, Piecewise on symbols, conversions."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import sympy
from spec_functions import NAMES
from sympy import Rational as R

import torchlean
from torchlean.contexts import exact
from torchlean.errors import DomainError, DTypeError, ShapeError
from torchlean.spec.core.tensor import to_scalar_spec
from torchlean.spec.layers import loss as L
from torchlean.spec.layers.activation import log_softmax_spec, softmax_spec


def same(a: Any, b: Any) -> bool:
    """Equal as real numbers: exactly when sympy can tell, else to 80 digits."""
    diff = sympy.sympify(a) - sympy.sympify(b)
    if sympy.simplify(diff) == 0:
        return True
    return abs(sympy.N(diff, 100)) < sympy.Float(10) ** -80


def same_all(got: np.ndarray, want: list[Any]) -> bool:
    assert isinstance(got, np.ndarray) and got.dtype == object
    flat = list(got.flat)
    return len(flat) == len(want) and all(same(g, w) for g, w in zip(flat, want, strict=True))


def T(values: Any) -> np.ndarray:
    return exact.tensor(values)


LOG2, LOG10 = sympy.log(2), sympy.log(10)

# (name, predicted, target, params, value, derivative), all derived by hand; d = p - t.
HAND = [
    # mse: ((1/2)**2 + 2**2) / 2 = 17/8; derivative 2 d / 2 = d.
    ("mse", [0.5, 2], [0, 0], {}, R(17, 8), [R(1, 2), 2]),
    # mae: (1/2 + 2) / 2 = 5/4; derivative sign(d) / 2.
    ("mae", [0.5, -2], [0, 0], {}, R(5, 4), [R(1, 2), R(-1, 2)]),
    # mae at d = 0: value 0, derivative 0 (the stated kink choice).
    ("mae", [1, 3], [1, 3], {}, 0, [0, 0]),
    # huber delta = 1: |d| = 1/2 -> d**2 / 2 = 1/8; |d| = 2 -> 2 - 1/2 = 3/2; (1/8 + 3/2) / 2.
    # derivative (d / delta, sign(d)) / 2 = (1/4, 1/2).
    ("huber", [0.5, 2], [0, 0], {}, R(13, 16), [R(1, 4), R(1, 2)]),
    # huber delta = 0.1 (read as 1/10): |d| = 1/20 -> (1/400) / (1/5) = 1/80; |d| = 1 ->
    # 1 - 1/20 = 19/20; mean (1/80 + 19/20) / 2 = 77/160; derivative ((1/20) / (1/10), -1) / 2.
    ("huber", [0.05, -1], [0, 0], {"delta": 0.1}, R(77, 160), [R(1, 4), R(-1, 2)]),
    # hinge: 1 - t x = (1/2, 3) -> (1/2 + 3) / 2 = 7/4; derivative -t / 2 where 1 - t x > 0.
    ("hinge", [0.5, 2], [1, -1], {}, R(7, 4), [R(-1, 2), R(1, 2)]),
    # hinge at the margin t x = 1 and beyond: value 0, derivative 0.
    ("hinge", [1, 3], [1, 1], {}, 0, [0, 0]),
    # poisson: (e**0 - 2*0 + e**1 - 3*1) / 2 = (e - 2) / 2; derivative (e**x - t) / 2.
    ("poisson", [0, 1], [2, 3], {}, (sympy.E - 2) / 2, [R(-1, 2), (sympy.E - 3) / 2]),
    # cross_entropy: -(log(1/4) + log(1/2)) / 2 = 3 log(2) / 2; derivative -t / p / 2.
    ("cross_entropy", [0.25, 0.5], [1, 1], {}, 3 * LOG2 / 2, [-2, -1]),
    # cross_entropy, both clamps active (at p = 0 and exactly at the bound 1 - 1e-6; EPSILON is
    # exactly 10**-6): -(log(10**-6) + log(1 - 10**-6)) / 2; derivative 0 (kink choice).
    ("cross_entropy", [0, 0.999999], [1, 1], {},
     (6 * LOG10 - sympy.log(R(999999, 10**6))) / 2, [0, 0]),
    # cross_entropy_logits: equal logits -> log_softmax = -log 2; value -(1 * -log 2) / 2;
    # derivative (softmax * sum(t) - t) / 2 = ((1/2, 1/2) - (1, 0)) / 2.
    ("cross_entropy_logits", [0, 0], [1, 0], {}, LOG2 / 2, [R(-1, 4), R(1, 4)]),
    # cosine: p = (3, 4), t = (4, 3): cos = 24/25, value 1/25; derivative
    # (p.t) / (P**3 T) p - t / (P T) = 24/625 (3, 4) - (4, 3) / 25 = (-28, 21) / 625.
    ("cosine_similarity", [3, 4], [4, 3], {}, R(1, 25), [R(-28, 625), R(21, 625)]),
    # log_cosh: d = (0, 2): (log cosh 0 + log cosh 2) / 2; derivative tanh(d) / 2.
    ("log_cosh", [0, 2], [0, 0], {}, sympy.log(sympy.cosh(2)) / 2, [0, sympy.tanh(2) / 2]),
    # log_cosh on the small branch: d = 1/2 -> log cosh(1/2); derivative tanh(1/2).
    ("log_cosh", [0.5], [0], {}, sympy.log(sympy.cosh(R(1, 2))), [sympy.tanh(R(1, 2))]),
    # binary_cross_entropy: -(log(1/4) + log(1 - 1/2)) / 2 = 3 log(2) / 2; derivative
    # (p - t) / (p (1 - p)) / 2 = ((-3/4) / (3/16), (1/2) / (1/4)) / 2 = (-2, 1).
    ("binary_cross_entropy", [0.25, 0.5], [1, 0], {}, 3 * LOG2 / 2, [-2, 1]),
]


@pytest.mark.parametrize(("name", "p", "t", "params", "value", "deriv"), HAND,
                         ids=[f"{h[0]}-{i}" for i, h in enumerate(HAND)])
def test_hand_derived_values(name: str, p: list[Any], t: list[Any], params: dict[str, Any],
                             value: Any, deriv: list[Any]) -> None:
    entry = torchlean.LOSSES[name]
    got_v = entry.value(T(p), T(t), **params)
    got_d = entry.deriv(T(p), T(t), **params)
    assert isinstance(got_v, sympy.Basic)
    assert same(got_v, value), (got_v, value)
    assert same_all(got_d, deriv), (got_d, deriv)


def test_mse_is_exactly_17_8() -> None:
    # 17/8 by hand; an exact number, not a float close to it.
    assert L.mse_spec(T([0.5, 2]), T([0, 0])) == R(17, 8)


def test_scalar_bce_and_reductions() -> None:
    # BCE of p = 1/4 against y = 1: -log(1/4) = 2 log 2; derivative (1/4 - 1) / (3/16) = -4.
    assert same(L.binary_cross_entropy_spec(T(0.25), T(1)), 2 * LOG2)
    assert L.binary_cross_entropy_deriv_spec(T(0.25), T(1)) == -4
    # to_scalar: 1/10 + 2/10 = 3/10 exactly (floats read as decimals).
    assert to_scalar_spec(T([0.1, 0.2])) == R(3, 10)
    # softmax of equal logits is exactly 1/2; log-softmax -log 2.
    assert same_all(softmax_spec(T([[5, 5]])), [R(1, 2), R(1, 2)])
    assert same_all(log_softmax_spec(T([7, 7])), [-LOG2, -LOG2])


@pytest.mark.parametrize("name", NAMES)
def test_every_loss_gives_numbers_for_numbers(name: str) -> None:
    p = T([[0.2, 0.5], [0.3, 0.9]])
    t = T([[0, 1], [1, 0]]) if name != "hinge" else T([[-1, 1], [1, -1]])
    value = torchlean.LOSSES[name].value(p, t)
    deriv = torchlean.LOSSES[name].deriv(p, t)
    # Decided branches leave no Piecewise and no free symbol behind.
    assert value.is_number and not value.has(sympy.Piecewise)
    assert all(g.is_number and not g.has(sympy.Piecewise) for g in deriv.flat)
    # The same value as the float semantics (to float64 accuracy; both read the same numbers).
    want = torchlean.LOSSES[name].value(np.array([[0.2, 0.5], [0.3, 0.9]]),
                                        np.array(sympy.matrix2numpy(sympy.Matrix(t)), float))
    assert math.isclose(float(value), float(want), rel_tol=1e-13, abs_tol=1e-300)


@pytest.mark.parametrize("name", NAMES)
def test_empty_tensors_average_to_zero(name: str) -> None:
    # An empty object array names no semantics: ctx= picks it.
    value = torchlean.LOSSES[name].value(T(np.zeros((0,))), T(np.zeros((0,))), ctx=exact)
    # max(size, 1) = 1 and an empty sum is 0 (cosine: 1 - 0).
    assert value == (1 if name == "cosine_similarity" else 0)


# --------------------------------------------------------------------------------------------
# symbols
# --------------------------------------------------------------------------------------------


def test_symbols_names_shape_and_realness() -> None:
    s = exact.symbols("p", (2, 3))
    assert s.shape == (2, 3) and s.dtype == object
    assert str(s[1, 2]) == "p_1_2" and s[0, 0].is_real
    assert str(exact.symbols("x", 2)[1]) == "x_1"
    assert str(exact.symbols("z", ())[()]) == "z"


@pytest.mark.parametrize(("name", "in_value", "in_deriv"), [
    ("mae", False, False),  # Abs and sign, no branch
    ("huber", True, True),
    ("hinge", True, True),
    ("cross_entropy", True, True),
    ("cosine_similarity", True, True),
    ("log_cosh", True, False),  # the value switches form at |d| = 1; tanh is smooth
    ("binary_cross_entropy", True, True),
])
def test_symbolic_branches_are_piecewise(name: str, in_value: bool, in_deriv: bool) -> None:
    P, Tt = exact.symbols("p", (2,)), exact.symbols("t", (2,))
    entry = torchlean.LOSSES[name]
    value, deriv = entry.value(P, Tt), entry.deriv(P, Tt)
    assert value.has(sympy.Piecewise) == in_value
    assert any(g.has(sympy.Piecewise) for g in deriv.flat) == in_deriv
    assert value.free_symbols == {*P, *Tt}


def test_symbolic_mae_uses_abs_and_sign() -> None:
    P, Tt = exact.symbols("p", (2,)), exact.symbols("t", (2,))
    d0 = P[0] - Tt[0]
    assert L.mae_spec(P, Tt) == (sympy.Abs(d0) + sympy.Abs(P[1] - Tt[1])) / 2
    assert L.mae_deriv_spec(P, Tt)[0] == sympy.sign(d0) / 2


@pytest.mark.parametrize("name", ["mse", "poisson", "cross_entropy_logits"])
def test_symbolic_derivative_of_smooth_losses(name: str) -> None:
    # sympy's own derivative of the value spec equals the derivative spec, symbol by symbol.
    P, Tt = exact.symbols("p", (2,)), exact.symbols("t", (2,))
    entry = torchlean.LOSSES[name]
    value, deriv = entry.value(P, Tt), entry.deriv(P, Tt)
    for i in range(2):
        assert sympy.simplify(sympy.diff(value, P[i]) - deriv[i]) == 0


def test_huber_symbolic_branch_values() -> None:
    # Substituting a point into the symbolic Piecewise gives the numeric result.
    P, Tt = exact.symbols("p", (1,)), exact.symbols("t", (1,))
    v = L.huber_spec(P, Tt)
    # |d| = 1/2 < 1: d**2 / 2 = 1/8;  |d| = 3: 3 - 1/2 = 5/2.
    assert v.subs({P[0]: R(1, 2), Tt[0]: 0}) == R(1, 8)
    assert v.subs({P[0]: -3, Tt[0]: 0}) == R(5, 2)


# --------------------------------------------------------------------------------------------
# conversions, constants, errors
# --------------------------------------------------------------------------------------------


def test_floats_read_as_shortest_decimal() -> None:
    assert exact.tensor(0.1)[()] == R(1, 10)
    assert exact.tensor(1e-6)[()] == R(1, 10**6)
    assert exact.CONTEXT.const(L.EPSILON) == R(1, 10**6)
    assert exact.tensor(np.float32(0.1))[()] == R(1, 10)
    got = exact.tensor(np.array([[0.5, 3]]))
    assert got.shape == (1, 2) and list(got.flat) == [R(1, 2), 3]
    assert exact.tensor(Fraction(2, 7))[()] == R(2, 7)
    x = sympy.Symbol("x")
    assert exact.tensor([x, 1])[0] is x


def test_nan_propagates() -> None:
    p = T([float("nan"), 1])
    assert L.mse_spec(p, T([0, 0])) is sympy.nan
    assert L.huber_spec(p, T([0, 0])) is sympy.nan
    assert L.hinge_deriv_spec(p, T([1, 1]))[0] is sympy.nan


def test_domain_checks_decide_numbers_and_skip_symbols() -> None:
    with pytest.raises(DomainError, match="`target`"):
        L.poisson_spec(T([0.0]), T([-1]))
    with pytest.raises(DomainError, match="`target`"):
        L.binary_cross_entropy_tensor_spec(T([0.5]), T([1.5]))
    # A symbol may lie anywhere: nothing to refuse.
    s = exact.symbols("y", (1,))
    assert L.poisson_spec(T([1]), s) == sympy.E - s[0]


@pytest.mark.parametrize(("p", "t", "err"), [
    ([1, 2], [1], ShapeError),
    ([[1, 2], [3]], [1, 2], ShapeError),
    ([1j], [1], DTypeError),
    (["a"], [1], DTypeError),
    (np.array(["a"]), [1], DTypeError),
], ids=["shape-mismatch", "ragged", "complex", "string", "string-array"])
def test_errors_name_the_argument(p: Any, t: Any, err: type[Exception]) -> None:
    with pytest.raises(err, match="`"):
        L.mse_spec(p, t, ctx=exact)


def test_context_is_inferred_and_accepts_plain_numbers() -> None:
    # An object array of sympy numbers selects the exact semantics; the other argument may be
    # plain numbers.
    assert L.mse_spec(T([0.5, 2]), [0, 0]) == R(17, 8)
    assert L.mse_spec([0.5, 2], np.zeros(2), ctx=exact) == R(17, 8)
    assert L.mse_spec(0.5, 0, ctx=exact.CONTEXT) == R(1, 4)
