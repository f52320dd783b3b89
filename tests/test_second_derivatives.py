"""Second derivatives and the per-sample API: every declaration that states a second
derivative, against finite differences of its own derivative, PyTorch's double backward and
hand-derived values; ``torchlean.grad_hess`` on every backend, with weights, class ids and the
checks of its arguments."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import torchlean
from torchlean import (
    LOSSES,
    DomainError,
    ParameterError,
    ShapeError,
    UnsupportedOperationError,
    grad_hess,
)

SECOND = [n for n, d in LOSSES.items() if d.origin == "torchlean" and d.has_second]
ELEMENTWISE = [n for n in SECOND if LOSSES[n].kind == "elementwise"]
SLICES = [n for n in SECOND if LOSSES[n].kind == "slice"]


def _zone_points(name: str, shape: tuple[int, ...] = (2, 3), seed: int = 3):
    decl = LOSSES[name]
    rng = np.random.default_rng(seed)
    for z in decl.region_zones():
        p, t = z.sample(rng, shape, decl.params)
        yield z.name, np.asarray(p, dtype=np.float64), np.asarray(t, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# The declared second derivative is the derivative of the declared derivative
# --------------------------------------------------------------------------------------------


def test_which_losses_declare_a_second_derivative() -> None:
    # every elementwise and slice loss of the package; the whole-tensor cosine has none
    package = [d for d in LOSSES.values() if d.origin == "torchlean"]
    assert {d.name for d in package if not d.has_second} == {"cosine_similarity"}
    assert "softmax" in SLICES and "cross_entropy_logits" in SLICES


@pytest.mark.parametrize("name", SECOND)
def test_second_is_the_finite_difference_of_the_derivative(name: str) -> None:
    # central differences of the declared derivative, step 1e-6: O(1e-12) truncation and
    # O(1e-10) rounding error relative to the results' scale
    decl = LOSSES[name]
    rng = np.random.default_rng(11)
    for zone, p, t in _zone_points(name):
        v = rng.standard_normal(p.shape)
        h = 1e-6
        fd = (decl.deriv(p + h * v, t) - decl.deriv(p - h * v, t)) / (2 * h)
        got = decl.hvp(p, t, v) if decl.kind == "slice" else decl.second(p, t) * v
        scale = max(1.0, float(np.max(np.abs(got))))
        assert np.max(np.abs(fd - got)) <= 1e-6 * scale, (zone, fd, got)


@pytest.mark.parametrize("name", SLICES)
def test_slice_diagonal_is_the_hvp_with_unit_vectors(name: str) -> None:
    decl = LOSSES[name]
    for _, p, t in _zone_points(name):
        diag = np.empty_like(p)
        for i in np.ndindex(p.shape):
            e = np.zeros_like(p)
            e[i] = 1.0
            diag[i] = decl.hvp(p, t, e)[i]
        np.testing.assert_allclose(decl.second(p, t), diag, rtol=1e-14, atol=1e-17)


@pytest.mark.parametrize("name", [n for n in SECOND if LOSSES[n].torch_reference is not None])
def test_second_against_torch_double_backward(name: str) -> None:
    torch = pytest.importorskip("torch")
    decl = LOSSES[name]
    rng = np.random.default_rng(5)
    for zone, p, t in _zone_points(name):
        z = next(z for z in decl.region_zones() if z.name == zone)
        if not z.torch_agrees:
            continue
        v = rng.standard_normal(p.shape)
        x = torch.tensor(p, requires_grad=True)
        (g,) = torch.autograd.grad(decl.torch_reference(x, torch.tensor(t), **decl.params), x,
                                   create_graph=True)
        if g.requires_grad:
            (hv,) = torch.autograd.grad((g * torch.tensor(v)).sum(), x)
            hv = (torch.zeros_like(x) + hv).detach().numpy()  # a ZeroTensor, materialised
        else:  # a piecewise-linear reference: its gradient is constant
            hv = np.zeros(p.shape)
        want = decl.hvp(p, t, v) if decl.kind == "slice" else decl.second(p, t) * v
        # PyTorch's BCE backward divides by max(p (1 - p), 1e-12), and its double backward
        # agrees with the derivative of that to about 1e-11 only
        rtol = 1e-9 if name == "binary_cross_entropy" else 1e-12
        np.testing.assert_allclose(hv, want, rtol=rtol, atol=1e-14, err_msg=zone)


@pytest.mark.parametrize("name", [n for n in SECOND if LOSSES[n].hessian_sign != "any"])
@given(data=st.data())
def test_declared_hessian_sign_holds(name: str, data: st.DataObject) -> None:
    decl = LOSSES[name]
    seed = data.draw(st.integers(0, 2**32 - 1))
    for _, p, t in _zone_points(name, (4,) if decl.kind == "elementwise" else (2, 3), seed):
        h = decl.second(p, t)
        assert np.all(h >= 0), h
        if decl.hessian_sign == "positive" and decl.kind == "elementwise":
            # moderate inputs: nothing underflows
            assert np.all(h > 0), h


def test_focal_hessian_is_negative_far_on_the_wrong_side() -> None:
    # hand: m = -10, gamma = 2: gamma L (gamma r - q) + 3 q ~ 2 * 10 * (-1) + 3 < 0
    h = LOSSES["binary_focal"].second(np.array([-10.0]), np.array([1.0]))
    assert h[0] < 0


# --------------------------------------------------------------------------------------------
# Hand-derived values of the boosting objectives
# --------------------------------------------------------------------------------------------

LOG2 = math.log(2.0)
#: (loss, params, s, y) -> (per-sample value, gradient, Hessian), derived by hand
HAND: list[tuple[str, dict[str, float], float, float, tuple[float, float, float]]] = [
    # log(1 + e^0) - 1 * 0; sigmoid(0) - 1; sigmoid(0)**2
    ("logistic", {}, 0.0, 1.0, (LOG2, -0.5, 0.25)),
    # softplus(2) - 0 = 2 + log1p(e^-2); sigmoid(2); e^-2 / (1 + e^-2)**2
    ("logistic", {}, 2.0, 0.0, (2 + math.log1p(math.exp(-2)), 1 / (1 + math.exp(-2)),
                                math.exp(-2) / (1 + math.exp(-2)) ** 2)),
    ("squared_error", {}, 3.0, 1.0, (2.0, 2.0, 1.0)),
    # y - p = 2 > 0: alpha * 2; -alpha; 0
    ("quantile", {"alpha": 0.9}, 1.0, 3.0, (1.8, -0.9, 0.0)),
    # y - p = -2 < 0: (alpha - 1)(-2); 1 - alpha (of the float alpha: 1 - 0.9 is exact)
    ("quantile", {"alpha": 0.9}, 3.0, 1.0, (2 * (1 - 0.9), 1 - 0.9, 0.0)),
    # e^0 - 2 * 0; 1 - 2; e^0
    ("poisson_log", {}, 0.0, 2.0, (1.0, -1.0, 1.0)),
    # 2 e^0 + 0; 1 - 2; 2
    ("gamma_log", {}, 0.0, 2.0, (2.0, -1.0, 2.0)),
    # rho = 3/2: y e^0 / (1/2) + e^0 / (1/2) = 4; 1 - 1 = 0; (1/2) 1 + (1/2) 1 = 1
    ("tweedie_log", {"power": 1.5}, 0.0, 1.0, (4.0, 0.0, 1.0)),
    # m = 0: q = r = 1/2, L = log 2, a_t = alpha = 1/4, gamma = 2:
    # value a_t q**2 L; grad -a_t q**2 (2 r L + q); hess a_t q**2 r (2 L (2 r - q) + 5 q)
    ("binary_focal", {"gamma": 2.0, "alpha": 0.25}, 0.0, 1.0,
     (LOG2 / 16, -(LOG2 + 0.5) / 16, (LOG2 + 2.5) / 32)),
]


@pytest.mark.parametrize(("name", "params", "s", "y", "want"), HAND,
                         ids=[f"{h[0]}-{h[2]}-{h[3]}" for h in HAND])
def test_hand_values(name: str, params: dict[str, float], s: float, y: float,
                     want: tuple[float, float, float]) -> None:
    decl = LOSSES[name]
    p, t = np.array([s]), np.array([y])
    g, h = grad_hess(name, p, t, **params)
    np.testing.assert_allclose([float(decl.value(p, t, **params)), g[0], h[0]], want,
                               rtol=2e-16, atol=1e-300)


def test_softmax_hand_values_with_class_ids() -> None:
    # scores (0, 0, ln 2): softmax (1/4, 1/4, 1/2); label 2: grad (1/4, 1/4, -1/2),
    # Hessian diagonal p (1 - p) = (3/16, 3/16, 1/4); value -log(1/2)
    s = np.array([[0.0, 0.0, math.log(2.0)]])
    g, h = grad_hess("softmax", s, np.array([2]))
    np.testing.assert_allclose(g, [[0.25, 0.25, -0.5]], rtol=1e-15)
    np.testing.assert_allclose(h, [[3 / 16, 3 / 16, 0.25]], rtol=1e-15)
    assert LOSSES["softmax"].value(s, np.array([[0.0, 0.0, 1.0]])) == pytest.approx(LOG2,
                                                                                   rel=1e-15)


def test_exact_second_derivatives() -> None:
    # the exact semantics: sympy's own numbers, no rounding
    import sympy

    from torchlean.contexts import exact, rational

    h = LOSSES["logistic"].second(np.array([0.0]), np.array([1.0]), ctx=exact)
    assert sympy.nsimplify(h[0]) == sympy.Rational(1, 4)
    h = LOSSES["huber"].second(np.array([Fraction(1, 2), Fraction(3)]),
                               np.array([Fraction(0), Fraction(0)]), ctx=rational)
    assert list(h) == [Fraction(1, 2), Fraction(0)]  # (1/delta) / n inside, 0 outside


def test_interval_second_derivative_encloses_the_point() -> None:
    pytest.importorskip("flint")
    from torchlean.contexts import interval

    h = LOSSES["log_cosh"].second(np.array([0.5]), np.array([0.0]), ctx=interval)
    want = 1 / math.cosh(0.5) ** 2
    lo, hi = (float(x) for x in (h[0].lower(), h[0].upper())) if hasattr(h[0], "lower") else (
        float(h[0].mid() - h[0].rad()), float(h[0].mid() + h[0].rad()))
    assert lo <= want <= hi and hi - lo < 1e-12


# --------------------------------------------------------------------------------------------
# grad_hess: per sample, unreduced, weighted, in the input's library
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_grad_hess_is_the_unreduced_derivative(name: str) -> None:
    decl = LOSSES[name]
    for _, p, t in _zone_points(name):
        g, h = grad_hess(name, p, t)
        n = p.size if decl.reduction == "mean" else 1
        np.testing.assert_allclose(g, decl.deriv(p, t) * n, rtol=1e-15, atol=1e-300)
        np.testing.assert_allclose(h, decl.second(p, t) * n, rtol=1e-15, atol=1e-300)


def test_grad_hess_weights_multiply_both() -> None:
    p, y = np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.0, 1.0])
    w = np.array([2.0, 0.0, 0.5])
    g, h = grad_hess("logistic", p, y)
    gw, hw = grad_hess("logistic", p, y, sample_weight=w)
    np.testing.assert_array_equal(gw, g * w)
    np.testing.assert_array_equal(hw, h * w)
    # softmax: one weight per row, spread over its classes
    s = np.array([[0.1, 0.2, 0.3], [1.0, -1.0, 0.0]])
    g, h = grad_hess("softmax", s, np.array([0, 2]), sample_weight=np.array([3.0, 0.5]))
    g1, h1 = grad_hess("softmax", s, np.array([0, 2]))
    np.testing.assert_array_equal(g, g1 * np.array([[3.0], [0.5]]))
    np.testing.assert_array_equal(h, h1 * np.array([[3.0], [0.5]]))


def test_grad_hess_on_every_backend(xp: Any) -> None:
    p, y = xp.asarray([[0.5, -1.0], [2.0, 0.0]]), xp.asarray([[1.0, 0.0], [1.0, 1.0]])
    g, h = grad_hess("logistic", p, y)
    assert type(g) is type(p) and xp.dtype_name(g) == "float64"
    g_np, h_np = grad_hess("logistic", xp.to_numpy(p), xp.to_numpy(y))
    np.testing.assert_allclose(xp.to_numpy(g), g_np, rtol=1e-15)
    np.testing.assert_allclose(xp.to_numpy(h), h_np, rtol=1e-15)


def test_grad_hess_keeps_float32() -> None:
    p, y = np.array([0.5, 3.0], np.float32), np.array([1.0, 0.0], np.float32)
    g, h = grad_hess("poisson_log", p, y)
    assert g.dtype == h.dtype == np.float32
    torch = pytest.importorskip("torch")
    g, h = grad_hess("softmax", torch.zeros(2, 3, dtype=torch.float32), torch.tensor([0, 2]))
    assert g.dtype == h.dtype == torch.float32
    np.testing.assert_allclose(h.numpy(), np.full((2, 3), 2 / 9), rtol=1e-7)


def test_grad_hess_nan_in_nan_out() -> None:
    for name in ELEMENTWISE:
        decl = LOSSES[name]
        _, p, t = next(_zone_points(name, (3,)))
        p[1] = np.nan
        g, h = grad_hess(name, p, t, **decl.params)
        assert np.isnan(g[1]) and np.isnan(h[1]), name
        assert np.all(np.isfinite(g[[0, 2]])), name


def test_grad_hess_does_not_modify_inputs() -> None:
    p, y, w = np.array([0.5, -1.0]), np.array([1.0, 0.0]), np.array([1.0, 2.0])
    before = [a.copy() for a in (p, y, w)]
    grad_hess("binary_focal", p, y, sample_weight=w)
    for a, b in zip((p, y, w), before, strict=True):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------------------------
# Bad input: the package's own errors, naming the argument
# --------------------------------------------------------------------------------------------


def test_a_loss_without_second_derivative_is_refused() -> None:
    with pytest.raises(UnsupportedOperationError, match=r"`name`: the cosine_similarity loss"):
        grad_hess("cosine_similarity", np.ones(3), np.ones(3))
    with pytest.raises(UnsupportedOperationError, match="declares no second derivative"):
        LOSSES["cosine_similarity"].second(np.ones(3), np.ones(3))


def test_labels_outside_zero_one_are_refused() -> None:
    with pytest.raises(DomainError, match=r"`target` must hold labels 0 or 1 for the logistic "
                                          r"loss; got 0.5 at index 1"):
        grad_hess("logistic", np.zeros(3), np.array([0.0, 0.5, 1.0]))
    with pytest.raises(DomainError, match="labels 0 or 1"):
        grad_hess("binary_focal", np.zeros(2), np.array([2.0, 1.0]))


def test_class_ids_are_checked() -> None:
    s = np.zeros((3, 4))
    with pytest.raises(DomainError, match=r"integers in \[0, 4\) for 4 classes; got 4 at "
                                          r"index 2"):
        grad_hess("softmax", s, np.array([0, 1, 4]))
    with pytest.raises(DomainError, match="got -1"):
        grad_hess("softmax", s, np.array([0, -1, 1]))
    with pytest.raises(DomainError, match=r"got 1\.5"):
        grad_hess("softmax", s, np.array([0.0, 1.5, 1.0]))


def test_targets_outside_the_domain_are_refused() -> None:
    with pytest.raises(DomainError, match=r"`target` must lie in \[0, inf\].*counts"):
        grad_hess("poisson_log", np.zeros(2), np.array([1.0, -1.0]))
    with pytest.raises(DomainError, match="gamma_log"):
        grad_hess("gamma_log", np.zeros(2), np.array([1.0, -2.0]))


def test_weights_are_checked() -> None:
    p, y = np.zeros(3), np.ones(3)
    with pytest.raises(ShapeError, match=r"`sample_weight` must have one weight per sample, "
                                         r"shape \(3,\); got shape \(2,\)"):
        grad_hess("squared_error", p, y, sample_weight=np.ones(2))
    with pytest.raises(DomainError, match=r"`sample_weight` must lie in \[0, inf\]"):
        grad_hess("squared_error", p, y, sample_weight=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ShapeError, match=r"shape \(2,\); got shape \(2, 3\)"):
        grad_hess("softmax", np.zeros((2, 3)), np.array([0, 1]), sample_weight=np.ones((2, 3)))


def test_parameters_are_checked() -> None:
    with pytest.raises(ParameterError, match=r"`power` must be a real number in \(1, 2\); "
                                             r"got 2.5"):
        grad_hess("tweedie_log", np.zeros(2), np.ones(2), power=2.5)
    with pytest.raises(ParameterError, match=r"`alpha` must be a real number in \(0, 1\)"):
        grad_hess("quantile", np.zeros(2), np.ones(2), alpha=1.0)
    with pytest.raises(ParameterError, match=r"`gamma` must be a finite real number >= 0"):
        grad_hess("binary_focal", np.zeros(2), np.ones(2), gamma=-1.0)
    with pytest.raises(ParameterError, match="`delta` is not a parameter of the logistic"):
        grad_hess("logistic", np.zeros(2), np.ones(2), delta=1.0)


def test_shapes_are_checked() -> None:
    with pytest.raises(ShapeError):
        grad_hess("squared_error", np.zeros(3), np.zeros(2))
    with pytest.raises(ShapeError):
        LOSSES["cross_entropy_logits"].hvp(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros(3))


def test_user_loss_second_derivative_declared_by_decorator() -> None:
    @torchlean.define_loss("quartic_probe", reduction="sum", hessian_sign="nonnegative")
    def quartic(c, p, t):  # type: ignore[no-untyped-def]
        d = p - t
        return d * d * d * d

    @quartic.deriv
    def _(c, p, t):  # type: ignore[no-untyped-def]
        d = p - t
        return 4 * (d * d * d)

    try:
        assert not LOSSES["quartic_probe"].has_second

        @quartic.second
        def _(c, p, t):  # type: ignore[no-untyped-def]
            d = p - t
            return 12 * (d * d)

        assert LOSSES["quartic_probe"].has_second
        g, h = grad_hess("quartic_probe", np.array([2.0]), np.array([1.0]))
        assert (g[0], h[0]) == (4.0, 12.0)
        with pytest.raises(ParameterError, match="already declares `second_term`"):
            quartic.second(lambda c, p, t: p)
    finally:
        torchlean.spec.core.declaration.unregister("quartic_probe")


def test_malformed_second_order_declarations() -> None:
    def sq(c, p, t):  # type: ignore[no-untyped-def]
        return (p - t) * (p - t)

    with pytest.raises(ParameterError, match="`hessian_sign` must be one of"):
        torchlean.define_loss("bad_probe", hessian_sign="convex")(sq)
    with pytest.raises(ParameterError, match="elementwise: its Hessian is diagonal"):
        torchlean.define_loss("bad_probe", hvp=sq)(sq)
    with pytest.raises(ParameterError, match="whole-tensor loss"):
        torchlean.define_loss("bad_probe", kind="whole", second=sq)(sq)
