"""Every derivative spec is the derivative of its value spec: central differences in float64
away from the kinks, one-sided differences bracketing the chosen value at the kinks, and PyTorch
autograd (values too) wherever PyTorch computes the same function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from loss_inputs import draw, smooth_case
from spec_functions import NAMES, SPECS

import torchlean
from torchlean.errors import ParameterError
from torchlean.spec.layers import loss as L

# --------------------------------------------------------------------------------------------
# Central differences
# --------------------------------------------------------------------------------------------

REL_STEP = 1e-6


def central_differences(f: Callable[[np.ndarray], float], p: np.ndarray,
                        rel_step: float = REL_STEP) -> np.ndarray:
    """``(f(p + h e_i) - f(p - h e_i)) / (2 h)`` for every element, ``h = rel_step * max(|p_i|,
    1)``; the divisor is the step actually taken after rounding ``p_i +- h``."""
    out = np.empty(p.shape)
    for i in np.ndindex(p.shape):
        h = rel_step * max(abs(p[i]), 1.0)
        up, down = p.copy(), p.copy()
        up[i] += h
        down[i] -= h
        out[i] = (float(f(up)) - float(f(down))) / (up[i] - down[i])
    return out


def assert_matches_differences(value_fn: Any, deriv_fn: Any, p: np.ndarray, t: np.ndarray,
                               params: dict[str, Any]) -> None:
    g = deriv_fn(p, t, **params)
    fd = central_differences(lambda x: value_fn(x, t, **params), p)
    # truncation h^2 f'''/6 ~ 1e-12 and rounding ~ 1e-16 |f| / h ~ 1e-10 for these inputs
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", NAMES)
def test_derivative_matches_central_differences(name: str, seed: int) -> None:
    value_fn, deriv_fn, _ = SPECS[name]
    p, t, params = smooth_case(name, (2, 3), seed)
    assert_matches_differences(value_fn, deriv_fn, p, t, params)


@pytest.mark.parametrize("shape", [(5,), (2, 2, 3)], ids=["1d", "3d"])
@pytest.mark.parametrize("name", [n for n in NAMES if SPECS[n][2] != "elementwise"])
def test_derivative_matches_central_differences_other_ranks(name: str,
                                                            shape: tuple[int, ...]) -> None:
    value_fn, deriv_fn, _ = SPECS[name]
    p, t, params = smooth_case(name, shape, seed=7)
    assert_matches_differences(value_fn, deriv_fn, p, t, params)


def _other_parameters(name: str) -> list[dict[str, Any]]:
    """The declared defaults scaled by 1/3 and by 3, where the validators accept them."""
    decl = torchlean.LOSSES[name]
    out = []
    for factor in (1 / 3, 3.0):
        prm = {k: v * factor for k, v in decl.params.items()}
        try:
            out.append(decl.checked_params(prm))
        except ParameterError:
            continue
    return out


@pytest.mark.parametrize(("name", "params"), [
    pytest.param(n, prm, id=f"{n}-{prm}") for n in NAMES for prm in _other_parameters(n)])
def test_derivative_with_other_parameters_in_every_region(name: str,
                                                         params: dict[str, Any]) -> None:
    # the zones are drawn for these parameters (a seam at delta moves with delta)
    value_fn, deriv_fn, _ = SPECS[name]
    p, t = draw(torchlean.LOSSES[name], (3, 4), np.random.default_rng(5), params)
    assert_matches_differences(value_fn, deriv_fn, p, t, params)


def _param_cases() -> list[Any]:
    rng = np.random.default_rng(11)
    t = rng.normal(size=8)
    out = []
    for delta in (0.3, 3.0):
        # |d| in 0.5 delta .. 1.5 delta, never within 5% of delta
        d = delta * np.array([0.5, -0.7, 0.9, -0.2, 1.2, -1.5, 1.1, -3.0])
        out.append(pytest.param(L.huber_spec, L.huber_deriv_spec, t + d, t, {"delta": delta},
                                id=f"huber-delta{delta}"))
    # probabilities on both sides of a wide clamp (derivative 0 outside, also numerically)
    p = np.array([0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99, 1.3])
    w = rng.uniform(0.0, 1.0, size=8)
    for eps in (0.1, 1e-3):
        out.append(pytest.param(L.cross_entropy_spec, L.cross_entropy_deriv_spec, p, w,
                                {"epsilon": eps}, id=f"cross_entropy-eps{eps}"))
        out.append(pytest.param(L.binary_cross_entropy_tensor_spec,
                                L.binary_cross_entropy_tensor_deriv_spec, p, w, {"epsilon": eps},
                                id=f"bce-eps{eps}"))
    # ||p|| = 0.29 < eps = 0.4: the clamped branch, linear in p
    out.append(pytest.param(L.cosine_similarity_spec, L.cosine_similarity_deriv_spec,
                            np.array([0.1, -0.2, 0.15, 0.1]), rng.normal(size=4),
                            {"epsilon": 0.4}, id="cosine-below-eps"))
    # a target below eps: T = eps, with ||p|| above it
    out.append(pytest.param(L.cosine_similarity_spec, L.cosine_similarity_deriv_spec,
                            np.array([1.0, -2.0, 0.5]), np.array([0.01, 0.02, -0.01]),
                            {"epsilon": 0.1}, id="cosine-target-below-eps"))
    return out


@pytest.mark.parametrize(("value_fn", "deriv_fn", "p", "t", "params"), _param_cases())
def test_derivative_with_parameters_matches_central_differences(
        value_fn: Any, deriv_fn: Any, p: np.ndarray, t: np.ndarray,
        params: dict[str, Any]) -> None:
    assert_matches_differences(value_fn, deriv_fn, p, t, params)


@pytest.mark.parametrize(("p", "y", "eps"), [(0.3, 1.0, L.EPSILON), (0.6, 0.25, L.EPSILON),
                                             (0.02, 0.0, L.EPSILON), (0.5, 0.9, 0.2),
                                             (0.1, 0.9, 0.2)])
def test_scalar_bce_derivative_matches_central_differences(p: float, y: float,
                                                           eps: float) -> None:
    h = REL_STEP * max(abs(p), 1.0)
    fd = (L.binary_cross_entropy_spec(p + h, y, epsilon=eps)
          - L.binary_cross_entropy_spec(p - h, y, epsilon=eps)) / ((p + h) - (p - h))
    np.testing.assert_allclose(L.binary_cross_entropy_deriv_spec(p, y, epsilon=eps), fd,
                               rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------------------------
# At the kinks: the chosen derivative lies between the one-sided differences
# --------------------------------------------------------------------------------------------

KINKS = [
    # d = 0 (mae; huber with delta = 0): one-sided -1/n and 1/n, chosen 0
    pytest.param(L.mae_spec, L.mae_deriv_spec, [0.0, 1.0], [0.0, 0.0], {}, id="mae-d0"),
    pytest.param(L.huber_spec, L.huber_deriv_spec, [2.0, 1.0], [2.0, 0.0], {"delta": 0.0},
                 id="huber-delta0-d0"),
    # margin t x = 1: one-sided -t/n and 0, chosen 0
    pytest.param(L.hinge_spec, L.hinge_deriv_spec, [1.0, 3.0], [1.0, 1.0], {}, id="hinge+1"),
    pytest.param(L.hinge_spec, L.hinge_deriv_spec, [-0.5, 3.0], [-2.0, 1.0], {}, id="hinge-2"),
    # clamp bounds: one-sided 0 and -t/p/n, chosen 0
    pytest.param(L.cross_entropy_spec, L.cross_entropy_deriv_spec, [0.25, 0.5], [1.0, 1.0],
                 {"epsilon": 0.25}, id="cross_entropy-lo"),
    pytest.param(L.cross_entropy_spec, L.cross_entropy_deriv_spec, [0.75, 0.5], [1.0, 1.0],
                 {"epsilon": 0.25}, id="cross_entropy-hi"),
    pytest.param(L.binary_cross_entropy_tensor_spec, L.binary_cross_entropy_tensor_deriv_spec,
                 [0.25, 0.5], [0.9, 1.0], {"epsilon": 0.25}, id="bce-lo"),
    pytest.param(L.binary_cross_entropy_tensor_spec, L.binary_cross_entropy_tensor_deriv_spec,
                 [0.75, 0.5], [0.1, 1.0], {"epsilon": 0.25}, id="bce-hi"),
    # ||p|| = eps: the clamped side -t/(eps T) is chosen
    pytest.param(L.cosine_similarity_spec, L.cosine_similarity_deriv_spec, [0.25, 0.0],
                 [1.0, 1.0], {"epsilon": 0.25}, id="cosine-norm-eps"),
]


def _declared_kinks() -> list[Any]:
    """Every declared kink of an elementwise loss on ``d``, ``p`` or ``t p``: element 0 exactly
    on it (target 0 for a residual, a label or the domain's middle otherwise), element 1 inside
    a zone, at the default parameters."""
    out = []
    for name in NAMES:
        decl = torchlean.LOSSES[name]
        prm = dict(decl.params)
        for seam in decl.seams:
            if not seam.kink or seam.coordinate not in ("residual", "predicted", "margin"):
                continue
            at = seam.location(prm)
            t0 = (decl.domain.labels[-1] if decl.domain.labels
                  else 0.0 if seam.coordinate == "residual" else float(np.mean(decl.domain.target)))
            p0 = {"residual": t0 + at, "predicted": at, "margin": at / t0 if t0 else at}
            p1, t1, _ = smooth_case(name, (1,), seed=3)
            out.append(pytest.param(SPECS[name][0], SPECS[name][1],
                                    [p0[seam.coordinate], p1[0]], [t0, t1[0]], prm,
                                    id=f"{name}-{seam.label}"))
    return out


@pytest.mark.parametrize(("value_fn", "deriv_fn", "p", "t", "params"), KINKS)
def test_kink_choice_lies_between_one_sided_differences(value_fn: Any, deriv_fn: Any, p: Any,
                                                        t: Any, params: dict[str, Any]) -> None:
    p, t = np.array(p), np.array(t)
    h = 1e-7
    base = float(value_fn(p, t, **params))
    up, down = p.copy(), p.copy()
    up[0] += h
    down[0] -= h
    right = (float(value_fn(up, t, **params)) - base) / (up[0] - p[0])
    left = (base - float(value_fn(down, t, **params))) / (p[0] - down[0])
    chosen = float(deriv_fn(p, t, **params)[0])
    assert abs(right - left) > 1e-3  # it is a kink indeed
    tol = 1e-5 * max(abs(right), abs(left))  # one-sided differences err by O(h)
    assert min(left, right) - tol <= chosen <= max(left, right) + tol


@pytest.mark.parametrize(("value_fn", "deriv_fn", "p", "t", "params"), _declared_kinks())
def test_declared_kink_choice_lies_between_the_one_sided_limits(
        value_fn: Any, deriv_fn: Any, p: Any, t: Any, params: dict[str, Any]) -> None:
    # The limits from either side, as the derivative a relative 1e-9 away (the derivative
    # there is held to the differences above); a clamp bound like 1 - eps is a float only to
    # half an ulp, so the chosen value may be the inner limit, up to the derivative's change
    # over that distance.
    p, t = np.array(p), np.array(t)
    delta = 1e-9 * max(abs(p[0]), 1.0)
    chosen = float(deriv_fn(p, t, **params)[0])
    sides = []
    for step in (-delta, delta):
        q = p.copy()
        q[0] += step
        sides.append(float(deriv_fn(q, t, **params)[0]))
    tol = 1e-2 * abs(sides[0] - sides[1]) + 1e-12
    assert min(sides) - tol <= chosen <= max(sides) + tol, (sides, chosen)


# --------------------------------------------------------------------------------------------
# PyTorch autograd
# --------------------------------------------------------------------------------------------


@pytest.fixture
def torch() -> Any:
    return pytest.importorskip("torch")


def assert_matches_autograd(torch: Any, name: str, p: np.ndarray, t: np.ndarray,
                            params: dict[str, Any]) -> None:
    value_fn, deriv_fn, _ = SPECS[name]
    decl = torchlean.LOSSES[name]
    pt = torch.tensor(p, dtype=torch.float64, requires_grad=True)
    tt = torch.tensor(t, dtype=torch.float64)
    out = decl.torch_reference(pt, tt, **{**decl.params, **params})
    out.backward()
    np.testing.assert_allclose(float(value_fn(p, t, **params)), out.item(), rtol=1e-13,
                               atol=1e-15)
    np.testing.assert_allclose(deriv_fn(p, t, **params), pt.grad.numpy(), rtol=1e-12,
                               atol=1e-15)


TORCH_NAMES = [n for n in NAMES if torchlean.LOSSES[n].torch_reference is not None]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", TORCH_NAMES)
def test_matches_torch_autograd(torch: Any, name: str, seed: int) -> None:
    # the regions where the declaration says its PyTorch reference agrees
    p, t, params = smooth_case(name, (3, 4), seed, torch_only=True)
    assert_matches_autograd(torch, name, p, t, params)


def _torch_special_cases() -> list[Any]:
    rng = np.random.default_rng(21)
    t = rng.normal(size=6)
    return [
        # PyTorch's l1 gradient is 0 at d = 0 as well
        pytest.param("mae", t + np.array([0.0, 1.0, -1.0, 0.0, 2.0, -0.5]), t, {},
                     id="mae-with-zero-residuals"),
        # smooth_l1 at d = -beta, 0, beta, 2 beta (its backward: d/beta inside, sign outside)
        pytest.param("huber", np.array([-2.0, 0.0, 2.0, 4.0]), np.zeros(4), {"delta": 2.0},
                     id="huber-at-thresholds"),
        pytest.param("huber", t + 0.7 * rng.normal(size=6), t, {"delta": 0.5}, id="huber-0.5"),
        pytest.param("huber", t + 3.0 * rng.normal(size=6), t, {"delta": 2.0}, id="huber-2"),
        # beta = 0 dispatches to l1 in PyTorch; delta = 0 is the MAE here
        pytest.param("huber", t + rng.normal(size=6), t, {"delta": 0.0}, id="huber-0"),
        # relu(1 - t x) has gradient 0 at the margin, like the spec
        pytest.param("hinge", np.array([1.0, -1.0, 0.5, 2.0, -3.0]),
                     np.array([1.0, -1.0, 1.0, -1.0, 1.0]), {}, id="hinge-with-margins"),
        # strictly inside AND strictly outside the clamp (autograd differs only at the bounds)
        pytest.param("cross_entropy", np.array([1e-9, 0.3, 1.0 - 1e-9, 0.7, 1.5, -0.1]),
                     rng.uniform(0, 1, size=6), {}, id="cross_entropy-outside-clamp"),
        pytest.param("cross_entropy", np.array([0.05, 0.3, 0.95, 0.7]),
                     rng.uniform(0, 1, size=4), {"epsilon": 0.1}, id="cross_entropy-eps0.1"),
        # unnormalised targets, class axis last (moved to dim 1 for PyTorch)
        pytest.param("cross_entropy_logits", rng.normal(size=(2, 3, 4)),
                     rng.uniform(0, 3, size=(2, 3, 4)), {}, id="logits-3d-unnormalised"),
        pytest.param("cross_entropy_logits", np.array([[1000.0, 0.0, -1000.0]]),
                     np.array([[0.0, 0.0, 1.0]]), {}, id="logits-huge"),
        pytest.param("cosine_similarity", rng.normal(size=6), rng.normal(size=6),
                     {"epsilon": 0.01}, id="cosine-eps0.01"),
        pytest.param("log_cosh", np.array([-700.0, -30.0, 1e-8, 0.0, 30.0, 700.0]), np.zeros(6),
                     {}, id="log_cosh-large-without-overflow"),
        pytest.param("poisson", np.array([-5.0, 0.0, 5.0, 20.0]), np.array([0.0, 1.0, 7.0, 3.0]),
                     {}, id="poisson-wide"),
        # inside [eps, 1 - eps] PyTorch's BCE agrees (it clamps the logs, not p)
        pytest.param("binary_cross_entropy", np.array([2e-6, 0.3, 0.5, 1 - 2e-6]),
                     np.array([1.0, 0.0, 0.4, 0.0]), {}, id="bce-near-bounds"),
    ]


@pytest.mark.parametrize(("name", "p", "t", "params"), _torch_special_cases())
def test_matches_torch_autograd_special(torch: Any, name: str, p: np.ndarray, t: np.ndarray,
                                        params: dict[str, Any]) -> None:
    assert_matches_autograd(torch, name, p, t, params)


@pytest.mark.parametrize(("p", "y"), [(0.3, 1.0), (0.8, 0.25), (1e-5, 0.0)])
def test_scalar_bce_matches_torch(torch: Any, p: float, y: float) -> None:
    pt = torch.tensor(p, dtype=torch.float64, requires_grad=True)
    out = torch.nn.functional.binary_cross_entropy(pt, torch.tensor(y, dtype=torch.float64))
    out.backward()
    np.testing.assert_allclose(L.binary_cross_entropy_spec(p, y), out.item(), rtol=1e-14)
    np.testing.assert_allclose(L.binary_cross_entropy_deriv_spec(p, y), pt.grad.item(),
                               rtol=1e-13)
