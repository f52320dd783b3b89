"""The divergences and similarity losses of the optax family: kl_divergence,
kl_divergence_log_targets, poly_loss_cross_entropy, safe_softmax_cross_entropy and
cosine_distance.

Values are held to hand derivations (stated beside each), to optax 0.2.8 on the same inputs
(its per-example results summed, in float64), and to PyTorch; derivatives to central
differences, PyTorch autograd and optax's own gradient; the edges (a zero label at a -inf
logit, t = 0 in KL, zero vectors in cosine) and bad input to the package's errors.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

import torchlean
from torchlean.errors import DomainError, ParameterError, ShapeError

NAMES = ("kl_divergence", "kl_divergence_log_targets", "poly_loss_cross_entropy",
         "safe_softmax_cross_entropy", "cosine_distance")
SLICES = ("poly_loss_cross_entropy", "safe_softmax_cross_entropy", "cosine_distance")
LOG4_3 = math.log(4 / 3)


def _loss(name: str) -> Any:
    return torchlean.LOSSES[name]


def _inputs(name: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ordinary float64 inputs of shape (3, 4) in each loss's domain."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(4), size=3)
    if name == "kl_divergence":
        return np.log(rng.dirichlet(np.ones(4), size=3)), probs
    if name == "kl_divergence_log_targets":
        return np.log(rng.dirichlet(np.ones(4), size=3)), np.log(probs)
    if name == "cosine_distance":
        return rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    return rng.normal(size=(3, 4)) * 3, probs


# --------------------------------------------------------------------------------------------
# Hand values
# --------------------------------------------------------------------------------------------


def test_kl_hand_values() -> None:
    # t = (1/2, 1/2, 0), q = (1/4, 3/4, 0): 1/2 log 2 + 1/2 log(2/3) = 1/2 log(4/3); the t = 0
    # element costs 0 even at lp = -inf (0 log 0 = 0); derivative -t
    lp = np.log(np.array([0.25, 0.75, 1.0]))
    lp[2] = -np.inf
    t = np.array([0.5, 0.5, 0.0])
    kl = _loss("kl_divergence")
    assert kl.value(lp, t) == pytest.approx(LOG4_3 / 2, rel=1e-15)
    np.testing.assert_array_equal(kl.deriv(lp, t), -t)
    np.testing.assert_array_equal(kl.second(lp, t), np.zeros(3))


def test_kl_log_targets_hand_values() -> None:
    # the same divergence with log targets; exp(lt) = 0 (lt = -inf) costs 0; derivative
    # -exp(lt)
    lp = np.log(np.array([0.25, 0.75, 0.5]))
    lt = np.array([math.log(0.5), math.log(0.5), -np.inf])
    kl = _loss("kl_divergence_log_targets")
    assert kl.value(lp, lt) == pytest.approx(LOG4_3 / 2, rel=1e-15)
    np.testing.assert_allclose(kl.deriv(lp, lt), [-0.5, -0.5, 0.0], rtol=1e-15)


def test_safe_cross_entropy_hand_values() -> None:
    # z = (0, 0, -inf), one-hot on class 0: softmax (1/2, 1/2, 0), value log 2, derivative
    # softmax - t = (-1/2, 1/2, 0): finite at the -inf logit
    z = np.array([0.0, 0.0, -np.inf])
    t = np.array([1.0, 0.0, 0.0])
    ce = _loss("safe_softmax_cross_entropy")
    assert ce.value(z, t) == pytest.approx(math.log(2), rel=1e-15)
    np.testing.assert_array_equal(ce.deriv(z, t), [-0.5, 0.5, 0.0])
    # Hessian diagonal p (1 - p) = (1/4, 1/4, 0)
    np.testing.assert_array_equal(ce.second(z, t), [0.25, 0.25, 0.0])
    # a -inf logit with label 1/2: that class has probability 0, the value is +inf; the
    # derivative is softmax - t = (0, 1/2, -1/2), as optax's
    t2 = np.array([0.5, 0.0, 0.5])
    assert ce.value(z, t2) == math.inf
    np.testing.assert_array_equal(ce.deriv(z, t2), [0.0, 0.5, -0.5])


def test_poly_hand_values() -> None:
    # z = (0, 0), one-hot on class 0, eps = 2: cross-entropy log 2, 1 - p_t = 1/2, value
    # log 2 + 1; derivative: softmax - t = (-1/2, 1/2) plus eps p (S - t) with S = 1/2:
    # 2 (1/2)(-1/2) = -1/2 and 2 (1/2)(1/2) = 1/2, so (-1, 1); diagonal: p (1 - p) = 1/4 plus
    # eps p (S - t)(1 - 2p) = 0 at p = 1/2
    z, t = np.zeros(2), np.array([1.0, 0.0])
    poly = _loss("poly_loss_cross_entropy")
    assert poly.value(z, t) == pytest.approx(math.log(2) + 1, rel=1e-15)
    np.testing.assert_allclose(poly.deriv(z, t), [-1.0, 1.0], rtol=1e-15)
    np.testing.assert_allclose(poly.second(z, t), [0.25, 0.25], rtol=1e-15)
    # eps = 0 is the cross-entropy
    assert poly.value(z, t, epsilon=0) == pytest.approx(math.log(2), rel=1e-15)


def test_cosine_hand_values() -> None:
    # p = (3, 4), t = (4, 3): cos = 24/25, distance 1/25; derivative (cos u - v) / |p| with
    # u = (3, 4)/5, v = (4, 3)/5: (0.576 - 0.8, 0.768 - 0.6) / 5 = (-0.0448, 0.0336)
    p, t = np.array([[3.0, 4.0]]), np.array([[4.0, 3.0]])
    cd = _loss("cosine_distance")
    assert cd.value(p, t) == pytest.approx(1 / 25, rel=1e-14)
    np.testing.assert_allclose(cd.deriv(p, t), [[-0.0448, 0.0336]], rtol=1e-14)
    # epsilon floors the SQUARED norm: |p|**2 = 25 >= 16, nothing changes
    assert cd.value(p, t, epsilon=16.0) == pytest.approx(1 / 25, rel=1e-14)
    # |p|**2 = 25 < 100: p / 10 and t / 10, cos = 24/100
    assert cd.value(p, t, epsilon=100.0) == pytest.approx(1 - 0.24, rel=1e-14)


def test_cosine_zero_vector() -> None:
    # p = 0, t = (0, 2), eps = 1/4: u = 0, value 1; gradient -t / (|t| sqrt(eps)) = (0, -2)
    p, t = np.zeros((1, 2)), np.array([[0.0, 2.0]])
    cd = _loss("cosine_distance")
    assert cd.value(p, t, epsilon=0.25) == 1.0
    np.testing.assert_array_equal(cd.deriv(p, t, epsilon=0.25), [[0.0, -2.0]])
    np.testing.assert_array_equal(cd.second(p, t, epsilon=0.25), [[0.0, 0.0]])
    # eps = 0: a zero vector has no direction, NaN (as optax: 0 / 0)
    assert math.isnan(cd.value(p, t))
    assert np.all(np.isnan(cd.deriv(p, t)))
    assert math.isnan(cd.value(t, p))


# --------------------------------------------------------------------------------------------
# optax on the same inputs
# --------------------------------------------------------------------------------------------


def _optax(name: str, p: np.ndarray, t: np.ndarray, **params: Any) -> Any:
    """optax's per-example loss, summed, and its gradient, in float64."""
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    fn = {
        "kl_divergence": optax.losses.kl_divergence,
        "kl_divergence_log_targets": optax.losses.kl_divergence_with_log_targets,
        "poly_loss_cross_entropy": optax.losses.poly_loss_cross_entropy,
        "safe_softmax_cross_entropy": optax.losses.safe_softmax_cross_entropy,
        "cosine_distance": optax.losses.cosine_distance,
    }[name]
    with jax.enable_x64(True):
        value, grad = jax.value_and_grad(lambda a: fn(a, t, **params).sum())(p)
        return float(value), np.asarray(grad)


@pytest.mark.parametrize(("name", "params"), [
    ("kl_divergence", {}), ("kl_divergence_log_targets", {}),
    ("poly_loss_cross_entropy", {}), ("poly_loss_cross_entropy", {"epsilon": -1.0}),
    ("safe_softmax_cross_entropy", {}), ("cosine_distance", {}),
    ("cosine_distance", {"epsilon": 0.5}),
])
def test_values_and_gradients_equal_optax(name: str, params: dict[str, float]) -> None:
    p, t = _inputs(name)
    if name == "cosine_distance" and params:
        p[0] *= 0.1  # that row's squared norm below the floor
    value, grad = _optax(name, p, t, **params)
    decl = _loss(name)
    assert decl.value(p, t, **params) == pytest.approx(value, rel=1e-14, abs=1e-15)
    np.testing.assert_allclose(decl.deriv(p, t, **params), grad, rtol=1e-13, atol=1e-15)


def test_optax_edges() -> None:
    # a -inf logit with label 0: optax's safe variant and ours agree, value and gradient
    z = np.array([[1.0, -np.inf, 0.5], [0.0, 2.0, -1.0]])
    t = np.array([[0.7, 0.0, 0.3], [0.0, 1.0, 0.0]])
    value, grad = _optax("safe_softmax_cross_entropy", z, t)
    ce = _loss("safe_softmax_cross_entropy")
    assert ce.value(z, t) == pytest.approx(value, rel=1e-15)
    np.testing.assert_allclose(ce.deriv(z, t), grad, rtol=1e-15)
    assert np.all(np.isfinite(ce.deriv(z, t)))
    # the same in Poly-1 (optax's poly loss gives NaN there: it is not the safe form)
    g = _loss("poly_loss_cross_entropy").deriv(z, t)
    assert np.all(np.isfinite(g)) and g[0, 1] == 0
    assert math.isnan(_optax("poly_loss_cross_entropy", z, t)[0])
    # cosine at a zero vector, eps > 0: optax's gradient is -t_hat / sqrt(eps) too
    p0, t0 = np.zeros((1, 3)), np.array([[1.0, 2.0, 2.0]])
    value, grad = _optax("cosine_distance", p0, t0, epsilon=0.04)
    cd = _loss("cosine_distance")
    assert cd.value(p0, t0, epsilon=0.04) == value == 1.0
    np.testing.assert_allclose(cd.deriv(p0, t0, epsilon=0.04), grad, rtol=1e-15)
    np.testing.assert_allclose(grad, -t0 / 3 / 0.2, rtol=1e-15)
    # eps = 0: both NaN
    assert math.isnan(_optax("cosine_distance", p0, t0)[0])


def test_kl_zero_target_differs_from_optax_at_infinite_log_prediction() -> None:
    # documented difference: at t = 0 and lp = -inf optax computes 0 * (0 - -inf) = NaN; the
    # declaration takes 0 log 0 = 0 whatever lp is
    lp, t = np.array([-np.inf, 0.0]), np.array([0.0, 1.0])
    assert math.isnan(_optax("kl_divergence", lp, t)[0])
    assert _loss("kl_divergence").value(lp, t) == 0.0
    lt = np.array([-np.inf, 0.0])
    assert math.isnan(_optax("kl_divergence_log_targets", np.array([-1.0, 0.0]), lt)[0])
    assert _loss("kl_divergence_log_targets").value(np.array([-1.0, 0.0]), lt) == 0.0


# --------------------------------------------------------------------------------------------
# Derivatives: finite differences, PyTorch, second order
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_derivative_is_the_difference_quotient(name: str) -> None:
    p, t = _inputs(name, seed=1)
    decl = _loss(name)
    g = decl.deriv(p, t)
    h = 1e-6
    for idx in np.ndindex(*p.shape):
        up, down = p.copy(), p.copy()
        up[idx] += h
        down[idx] -= h
        fd = (decl.value(up, t) - decl.value(down, t)) / (2 * h)
        assert g[idx] == pytest.approx(fd, rel=1e-6, abs=1e-8), idx


@pytest.mark.parametrize("name", NAMES)
def test_value_gradient_and_hessian_equal_pytorch(name: str) -> None:
    p, t = _inputs(name, seed=2)
    decl = _loss(name)
    pt, tt = torch.tensor(p, requires_grad=True), torch.tensor(t)
    ref = decl.torch_reference(pt, tt, **decl.params)
    (g,) = torch.autograd.grad(ref, pt)
    assert decl.value(p, t) == pytest.approx(float(ref.detach()), rel=1e-13)
    np.testing.assert_allclose(decl.deriv(p, t), g.numpy(), rtol=1e-12, atol=1e-15)
    hess = torch.autograd.functional.hessian(
        lambda x: decl.torch_reference(x, tt, **decl.params), torch.tensor(p)).numpy()
    hess = hess.reshape(p.size, p.size)
    np.testing.assert_allclose(decl.second(p, t), np.diag(hess).reshape(p.shape), rtol=1e-11,
                               atol=1e-14)
    if name in SLICES:
        v = np.random.default_rng(3).normal(size=p.shape)
        np.testing.assert_allclose(decl.hvp(p, t, v), (hess @ v.ravel()).reshape(p.shape),
                                   rtol=1e-11, atol=1e-14)


def test_cosine_second_order_below_the_floor() -> None:
    # a row below the floor has a constant gradient (Hessian 0); the other rows are the
    # autograd Hessian of the clamped formula
    p, t = _inputs("cosine_distance", seed=4)
    p[1] *= 0.05
    cd = _loss("cosine_distance")
    tt = torch.tensor(t)
    hess = torch.autograd.functional.hessian(
        lambda x: cd.torch_reference(x, tt, 0.5), torch.tensor(p)).numpy()
    hess = hess.reshape(p.size, p.size)
    v = np.random.default_rng(5).normal(size=p.shape)
    np.testing.assert_allclose(cd.hvp(p, t, v, epsilon=0.5), (hess @ v.ravel()).reshape(p.shape),
                               rtol=1e-11, atol=1e-14)
    np.testing.assert_array_equal(cd.second(p, t, epsilon=0.5)[1], np.zeros(4))


def test_large_logits_keep_their_accuracy() -> None:
    # z = (40, 0), one-hot on class 0: p_0 rounds to 1 in floats, yet 1 - p_0 =
    # q = e**-40 / (1 + e**-40) keeps every digit (formed as the other classes' mass)
    z, t = np.array([40.0, 0.0]), np.array([1.0, 0.0])
    q = math.exp(-40) / (1 + math.exp(-40))
    poly = _loss("poly_loss_cross_entropy")
    # value: log1p(e**-40) + 2 q; derivative (class 0): -q (cross-entropy) - 2 (1 - q) q
    assert poly.value(z, t) == pytest.approx(math.log1p(math.exp(-40)) + 2 * q, rel=1e-15)
    assert poly.deriv(z, t)[0] == pytest.approx(-q - 2 * (1 - q) * q, rel=1e-15)
    assert np.all(np.isfinite(poly.deriv(np.array([1e300, -1e300]), t)))


# --------------------------------------------------------------------------------------------
# NaN and bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_nan_in_gives_nan_out(name: str) -> None:
    p, t = _inputs(name)
    p[0, 0] = np.nan
    decl = _loss(name)
    assert math.isnan(decl.value(p, t))
    g = decl.deriv(p, t)
    assert math.isnan(g[0, 0])
    assert not np.any(np.isnan(g[1:]))


def test_bad_input_raises_the_package_errors() -> None:
    p, t = _inputs("kl_divergence")
    t[0, 0] = -0.1
    with pytest.raises(DomainError, match="`targets`"):
        _loss("kl_divergence").value(p, t)
    # unchecked, a negative target has no log: NaN
    assert math.isnan(_loss("kl_divergence").value(p, t, check_domain=False))
    z, y = _inputs("safe_softmax_cross_entropy")
    y[1, 2] = 1.5
    for name in ("safe_softmax_cross_entropy", "poly_loss_cross_entropy"):
        with pytest.raises(DomainError, match="`labels`"):
            _loss(name).deriv(z, y)
    with pytest.raises(ShapeError, match="`logits`"):
        _loss("safe_softmax_cross_entropy").value(np.float64(1.0), np.float64(1.0))
    with pytest.raises(ShapeError):
        _loss("cosine_distance").value(np.ones((2, 3)), np.ones((2, 4)))
    for bad in (-1e-3, math.nan, math.inf, "1"):
        with pytest.raises(ParameterError, match="`epsilon`"):
            _loss("cosine_distance").value(np.ones(3), np.ones(3), epsilon=bad)
    for bad in (math.nan, -math.inf, None):
        with pytest.raises(ParameterError, match="`epsilon`"):
            _loss("poly_loss_cross_entropy").value(z, np.abs(z) / 10, epsilon=bad)
    with pytest.raises(ParameterError, match="`delta`"):
        _loss("kl_divergence").value(p, np.abs(t), delta=1.0)


def test_inputs_are_not_modified() -> None:
    for name in NAMES:
        p, t = _inputs(name)
        p0, t0 = p.copy(), t.copy()
        decl = _loss(name)
        decl.value(p, t), decl.deriv(p, t), decl.second(p, t)
        np.testing.assert_array_equal(p, p0)
        np.testing.assert_array_equal(t, t0)
