"""torch.nn criteria whose backward is the derivative spec (``torchlean.interop.torch``)."""

from __future__ import annotations

import inspect
import math
import pickle
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import torchlean  # noqa: E402
from torchlean import (  # noqa: E402
    LOSSES,
    BackendError,
    DomainError,
    DTypeError,
    ParameterError,
    ShapeError,
    UnsupportedOperationError,
)
from torchlean.interop import torch as tlt  # noqa: E402
from torchlean.interop.criterion_names import criterion_class_name  # noqa: E402
from torchlean.spec.layers.loss import EPSILON  # noqa: E402

F64 = torch.float64

# --------------------------------------------------------------------------------------------
# Rows: every loss of the package (and one declared here, as a user would), with inputs drawn
# from each branch region of its declaration (a margin from every kink and clamp bound, so
# finite differences see one branch).
# --------------------------------------------------------------------------------------------

Pair = tuple["torch.Tensor", "torch.Tensor"]


@torchlean.define_loss("interop_test_pseudo_huber", params={"delta": 1.0})
def _user_loss(c, p, t, *, delta):  # type: ignore[no-untyped-def]
    d = p - t
    return delta * delta * (c.sqrt(1 + (d / delta) * (d / delta)) - 1)


@_user_loss.deriv
def _(c, p, t, *, delta):  # type: ignore[no-untyped-def]
    d = p - t
    return d / c.sqrt(1 + (d / delta) * (d / delta))


USER = "interop_test_pseudo_huber"
#: the package's losses (other test modules may declare losses of their own, some wrong on
#: purpose) and the one above
DECLS = [d for d in LOSSES.values() if d.origin == "torchlean"] + [LOSSES[USER]]
ALL = [d.name for d in DECLS]
PACKAGE = [d.name for d in DECLS if d.origin == "torchlean"]


def _id(name: str, zone: str) -> str:
    return f"{name}[{zone}]".replace(" ", "")


#: (loss, zone) for every branch region of every row
ZONES = [pytest.param(d.name, i, id=_id(d.name, z.name))
         for d in DECLS for i, z in enumerate(d.region_zones())]
#: the regions where the PyTorch reference has the same value and gradient
TORCH_ZONES = [pytest.param(d.name, i, id=_id(d.name, z.name))
               for d in DECLS if d.torch_reference is not None
               for i, z in enumerate(d.region_zones()) if z.torch_agrees]


def _inputs(name: str, dtype: torch.dtype = F64, shape: tuple[int, ...] = (4, 3),
            zone: int = 0, seed: int = 0) -> Pair:
    """``(predicted, target)`` inside the ``zone``-th branch region of ``name``, with the
    declared default parameters."""
    decl = LOSSES[name]
    z = decl.region_zones()[zone]
    p, t = z.sample(np.random.default_rng(seed), shape, decl.params)
    return torch.tensor(p, dtype=dtype), torch.tensor(t, dtype=dtype)


def _rtol(dtype: torch.dtype, k: int = 2) -> float:
    """A relative tolerance of k units in the last place of ``dtype``."""
    return k * torch.finfo(dtype).eps


def test_every_package_loss_has_a_generated_criterion_class() -> None:
    for decl in DECLS[:-1]:
        cls = getattr(tlt, criterion_class_name(decl))
        assert cls.loss_name == decl.name and cls().loss_name == decl.name
        assert isinstance(tlt.criterion(decl.name), cls)
        assert issubclass(cls, tlt.SpecLoss) and cls.__module__ == "torchlean.interop.torch"
        # the constructor takes the declared parameters, with their defaults
        sig = inspect.signature(cls)
        want = dict(decl.params) | ({"check_domain": True} if decl.has_domain_check else {})
        assert {k: p.default for k, p in sig.parameters.items()} == want
    assert {criterion_class_name(d) for d in DECLS[:-1]} <= set(tlt.__all__)


def test_class_names_follow_the_rule() -> None:
    # the rule of torchlean.interop.criterion_names, and the names the criteria had before
    # they were generated
    want = {"mse": "MSELoss", "mae": "MAELoss", "huber": "HuberLoss",
            "pseudo_huber": "PseudoHuberLoss", "cross_entropy": "ProbabilityCrossEntropyLoss",
            "cross_entropy_logits": "CrossEntropyLogitsLoss", "hinge": "HingeLoss",
            "poisson": "PoissonLoss", "cosine_similarity": "CosineSimilarityLoss",
            "log_cosh": "LogCoshLoss", "binary_cross_entropy": "BCELoss"}
    for name, cls_name in want.items():
        assert criterion_class_name(LOSSES[name]) == cls_name


def test_no_cross_entropy_loss_that_takes_probabilities() -> None:
    # torch.nn.CrossEntropyLoss takes logits (or class indices); the probability one says so
    assert not hasattr(tlt, "CrossEntropyLoss") and "CrossEntropyLoss" not in tlt.__all__
    import torchlean.interop as interop

    with pytest.raises(AttributeError):
        interop.CrossEntropyLoss  # noqa: B018
    assert tlt.ProbabilityCrossEntropyLoss().loss_name == "cross_entropy"


# --------------------------------------------------------------------------------------------
# Value and gradient are the declaration's
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize(("name", "zone"), ZONES)
def test_value_and_gradient_are_the_spec(name: str, zone: int, dtype: torch.dtype) -> None:
    p, t = _inputs(name, dtype, zone=zone)
    p.requires_grad_(True)
    loss = tlt.criterion(name)(p, t)
    loss.backward()
    # origin: the declaration itself, evaluated on plain tensors
    entry = LOSSES[name]
    want_v, want_g = entry.value(p.detach(), t), entry.deriv(p.detach(), t)
    assert loss.dtype == dtype and p.grad.dtype == dtype
    assert loss.shape == () and p.grad.shape == p.shape
    # a few ulps: the forward may run a fused kernel (tested equal to the spec) that sums in
    # another order; atol scales with the largest element for elements that cancel to ~0
    tol = _rtol(dtype, 4)
    torch.testing.assert_close(loss.detach(), want_v, rtol=tol, atol=tol * abs(want_v.item()))
    torch.testing.assert_close(p.grad, want_g, rtol=tol, atol=tol * want_g.abs().max().item())


@pytest.mark.parametrize("name", ALL)
def test_named_criterion_equals_spec_loss(name: str) -> None:
    p, t = _inputs(name)
    want = tlt.SpecLoss(name)(p, t).item()
    assert tlt.criterion(name)(p, t).item() == want
    assert tlt.spec_loss(name, p, t).item() == want


@pytest.mark.parametrize("name", ALL)
def test_backward_scales_by_grad_output(name: str) -> None:
    p, t = _inputs(name)
    p.requires_grad_(True)
    (-2.5 * tlt.criterion(name)(p, t)).backward()
    # origin: the derivative the forward computes (a fused kernel where one applies)
    _, deriv = torchlean.value_and_deriv(name, p.detach(), t)
    torch.testing.assert_close(p.grad, -2.5 * deriv, rtol=0, atol=0)


def test_gradient_accumulates_through_a_graph() -> None:
    # loss(2 * w) w.r.t. w: chain rule gives 2 * mse' = 2 * 2 (2w - t) / n (hand derivation)
    w = torch.tensor([1.0, -2.0, 0.5], dtype=F64, requires_grad=True)
    t = torch.tensor([0.0, 1.0, 1.0], dtype=F64)
    tlt.MSELoss()(2 * w, t).backward()
    torch.testing.assert_close(w.grad, torch.tensor([8 / 3, -20 / 3, 0.0], dtype=F64))


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


def test_parameters_by_position_and_by_keyword() -> None:
    assert repr(tlt.HuberLoss(0.5)) == repr(tlt.HuberLoss(delta=0.5)) == "HuberLoss(delta=0.5)"
    assert repr(tlt.BCELoss(0.1, False)) == "BCELoss(epsilon=0.1, check_domain=False)"
    assert repr(tlt.criterion("huber", delta=0.5)) == "HuberLoss(delta=0.5)"
    with pytest.raises(ParameterError, match=r"HuberLoss takes at most 1 positional"):
        tlt.HuberLoss(1.0, 2.0)
    with pytest.raises(ParameterError, match="`delta` of HuberLoss is given twice"):
        tlt.HuberLoss(1.0, delta=2.0)


def test_criterion_and_its_class_pickle() -> None:
    # generated classes live in the module under their own names, so criteria pickle (as
    # multiprocessing data loaders and torch.save need)
    for crit in (tlt.HuberLoss(0.25), tlt.criterion("pseudo_huber", delta=2.0),
                 tlt.criterion(USER, delta=0.5)):
        back = pickle.loads(pickle.dumps(crit))
        assert type(back) is type(crit) and repr(back) == repr(crit)
        p, t = _inputs(crit.loss_name)
        assert back(p, t).item() == crit(p, t).item()


# --------------------------------------------------------------------------------------------
# Agreement with torch.nn where the semantics agree (origin: PyTorch 2.13)
# --------------------------------------------------------------------------------------------


def _reference(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The declaration's PyTorch reference at the default parameters."""
    decl = LOSSES[name]
    return lambda p, t: decl.torch_reference(p, t, **decl.params)


@pytest.mark.parametrize(("name", "zone"), TORCH_ZONES)
def test_matches_the_torch_reference(name: str, zone: int) -> None:
    # origin: PyTorch autograd of the declaration's torch_reference, where the declaration
    # says that it agrees
    p, t = _inputs(name, shape=(2, 3, 4), zone=zone)
    p1 = p.clone().requires_grad_(True)
    p2 = p.clone().requires_grad_(True)
    v1, v2 = tlt.criterion(name)(p1, t), _reference(name)(p2, t)
    v1.backward()
    v2.backward()
    torch.testing.assert_close(v1, v2, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-12, atol=1e-15)


def _xent_logits_torch(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return nn.CrossEntropyLoss(reduction="sum")(z.movedim(-1, 1), t.movedim(-1, 1)) / z.numel()


#: the criteria against torch.nn modules (origin: PyTorch 2.13), as docs/ecosystem.md states
NN_MODULES: dict[str, tuple[str, Callable[[], nn.Module], Callable[..., torch.Tensor]]] = {
    "MSELoss": ("mse", tlt.MSELoss, nn.MSELoss()),
    "L1Loss": ("mae", tlt.MAELoss, nn.L1Loss()),
    "SmoothL1Loss_beta_1": ("huber", lambda: tlt.HuberLoss(1.0), nn.SmoothL1Loss(beta=1.0)),
    "SmoothL1Loss_beta_0.3": ("huber", lambda: tlt.HuberLoss(0.3), nn.SmoothL1Loss(beta=0.3)),
    "HuberLoss_over_delta": ("huber", lambda: tlt.HuberLoss(2.0),
                             lambda p, t: nn.HuberLoss(delta=2.0)(p, t) / 2.0),
    "CrossEntropyLoss_sum_over_numel": ("cross_entropy_logits", tlt.CrossEntropyLogitsLoss,
                                        _xent_logits_torch),
    "PoissonNLLLoss": ("poisson", tlt.PoissonLoss,
                       nn.PoissonNLLLoss(log_input=True, full=False)),
    "BCELoss": ("binary_cross_entropy", tlt.BCELoss, nn.BCELoss()),
}


@pytest.mark.parametrize("case", list(NN_MODULES))
def test_matches_torch_nn_module(case: str) -> None:
    name, ours, theirs = NN_MODULES[case]
    zone = next(i for i, z in enumerate(LOSSES[name].region_zones()) if z.torch_agrees)
    p, t = _inputs(name, shape=(2, 3, 4), zone=zone)
    p1 = p.clone().requires_grad_(True)
    p2 = p.clone().requires_grad_(True)
    v1, v2 = ours()(p1, t), theirs(p2, t)
    v1.backward()
    v2.backward()
    torch.testing.assert_close(v1, v2, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-12, atol=1e-15)


def test_mae_gradient_at_zero_residual_matches_l1loss() -> None:
    # both choose 0 at d = 0 (hand derivation: sign(d) / n with sign(0) = 0)
    p = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64, requires_grad=True)
    t = torch.tensor([1.0, 0.0, 3.0, 5.0], dtype=F64)
    tlt.MAELoss()(p, t).backward()
    torch.testing.assert_close(p.grad, torch.tensor([0.0, 0.25, 0.0, -0.25], dtype=F64))
    q = p.detach().clone().requires_grad_(True)
    nn.L1Loss()(q, t).backward()
    torch.testing.assert_close(p.grad, q.grad)


def test_huber_gradient_at_the_threshold_matches_smoothl1() -> None:
    # d = -beta, 0, beta, 2 beta with n = 4 gives [-1/4, 0, 1/4, 1/4] (PyTorch 2.13, measured)
    t = torch.zeros(4, dtype=F64)
    p = torch.tensor([-0.5, 0.0, 0.5, 1.0], dtype=F64, requires_grad=True)
    tlt.HuberLoss(0.5)(p, t).backward()
    torch.testing.assert_close(p.grad, torch.tensor([-0.25, 0.0, 0.25, 0.25], dtype=F64))


# --------------------------------------------------------------------------------------------
# Where the criteria differ from torch.nn, on purpose (each documented in docs/ecosystem.md)
# --------------------------------------------------------------------------------------------


def test_cross_entropy_gradient_is_zero_where_the_clamp_is_active() -> None:
    # p = eps (a bound), 1e-9 (below), 0.5 (inside): -t / p / n only inside (hand derivation);
    # autograd of clamp passes the gradient through at the bound (PyTorch 2.13).
    p = torch.tensor([EPSILON, 1e-9, 0.5], dtype=F64, requires_grad=True)
    t = torch.tensor([1.0, 1.0, 1.0], dtype=F64)
    tlt.ProbabilityCrossEntropyLoss()(p, t).backward()
    torch.testing.assert_close(p.grad, torch.tensor([0.0, 0.0, -2 / 3], dtype=F64))
    q = p.detach().clone().requires_grad_(True)
    (-(t * q.clamp(EPSILON, 1 - EPSILON).log()).mean()).backward()
    assert q.grad[0] == pytest.approx(-1 / (3 * EPSILON))


def test_bce_clamps_the_probability_where_bceloss_clamps_the_log() -> None:
    # p = 1e-8, y = 1: ours -log(1e-6) = 13.8155..., gradient 0 (clamp active); nn.BCELoss
    # gives -log(1e-8) = 18.4207... (PyTorch 2.13; it clamps each log at -100 instead).
    p = torch.tensor([1e-8], dtype=F64, requires_grad=True)
    t = torch.tensor([1.0], dtype=F64)
    v = tlt.BCELoss()(p, t)
    v.backward()
    assert v.item() == pytest.approx(6 * math.log(10), rel=1e-15)
    assert p.grad.item() == 0.0
    assert nn.BCELoss()(p.detach(), t).item() == pytest.approx(8 * math.log(10), rel=1e-12)


def test_cosine_gradient_below_epsilon_is_the_clamped_derivative() -> None:
    # p = [.1, .2], t = [1, 1], eps = .4: ||p|| < eps so the derivative is -t / (eps ||t||)
    # = -1 / (0.4 sqrt(2)) each (hand derivation); PyTorch's gradient ignores the clamp and
    # gives [-1.1748, -0.5819] (PyTorch 2.13, measured).
    p = torch.tensor([0.1, 0.2], dtype=F64, requires_grad=True)
    t = torch.tensor([1.0, 1.0], dtype=F64)
    tlt.CosineSimilarityLoss(epsilon=0.4)(p, t).backward()
    torch.testing.assert_close(p.grad, torch.full((2,), -1 / (0.4 * math.sqrt(2)), dtype=F64))
    q = p.detach().clone().requires_grad_(True)
    (1 - F.cosine_similarity(q, t, dim=0, eps=0.4)).backward()
    torch.testing.assert_close(q.grad, torch.tensor([-1.1748, -0.5819], dtype=F64),
                               rtol=0, atol=1e-4)


@pytest.mark.parametrize("epsilon", [0.5, 2.0, 1e3])
def test_cosine_epsilon_is_a_norm_floor_not_a_probability(epsilon: float, path: str) -> None:
    # any finite epsilon > 0 (PyTorch's own example uses 0.5): origin, PyTorch's value and
    # gradient where both norms exceed eps, and the clamped derivative below
    big = torch.tensor([3.0 * epsilon, -4.0 * epsilon], dtype=F64)
    t = torch.tensor([2.0, 1.0], dtype=F64) * epsilon
    p1, p2 = big.clone().requires_grad_(True), big.clone().requires_grad_(True)
    v1 = tlt.CosineSimilarityLoss(epsilon=epsilon)(p1, t)
    v2 = 1 - F.cosine_similarity(p2, t, dim=0, eps=epsilon)
    v1.backward()
    v2.backward()
    torch.testing.assert_close(v1, v2, rtol=1e-14, atol=0)
    torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-14, atol=0)
    # ||p|| < eps: -t / (eps * max(||t||, eps)) (hand derivation)
    small = (big / 10).requires_grad_(True)
    tlt.criterion("cosine_similarity", epsilon=epsilon)(small, t).backward()
    torch.testing.assert_close(small.grad, -t / (epsilon * max(t.norm().item(), epsilon)),
                               rtol=1e-14, atol=0)


@pytest.mark.parametrize("epsilon", [0.0, -0.5, math.inf, math.nan])
def test_cosine_epsilon_must_be_finite_and_positive(epsilon: float) -> None:
    with pytest.raises(ParameterError, match=r"`epsilon` must be a finite number > 0"):
        tlt.CosineSimilarityLoss(epsilon=epsilon)


@pytest.mark.parametrize("epsilon", [0.5, 0.7])
def test_probability_epsilon_stays_below_one_half(epsilon: float) -> None:
    # the probability clamps keep (0, 0.5): [eps, 1 - eps] must not be empty
    for make in (tlt.ProbabilityCrossEntropyLoss, tlt.BCELoss):
        with pytest.raises(ParameterError, match=r"`epsilon` must be a number in \(0, 0.5\)"):
            make(epsilon=epsilon)


def test_hinge_gradient_at_the_margin_is_zero() -> None:
    # t * x = 1 for the first element: 0 there, -t / n elsewhere inside (hand derivation);
    # clamp(min=0) would give -t / n at the margin (PyTorch 2.13).
    x = torch.tensor([1.0, 0.5, 2.0], dtype=F64, requires_grad=True)
    t = torch.tensor([1.0, 1.0, 1.0], dtype=F64)
    tlt.HingeLoss()(x, t).backward()
    torch.testing.assert_close(x.grad, torch.tensor([0.0, -1 / 3, 0.0], dtype=F64))


def test_logits_mean_divides_by_all_elements_not_rows() -> None:
    # nn.CrossEntropyLoss's mean divides by the 5 rows, ours by the 5 * 3 elements (spec)
    z, t = _inputs("cross_entropy_logits", shape=(5, 3))
    ours = tlt.CrossEntropyLogitsLoss()(z, t)
    torch.testing.assert_close(ours * 3, nn.CrossEntropyLoss()(z, t), rtol=1e-13, atol=0)


def test_empty_input_gives_zero_not_nan() -> None:
    # spec: n = max(size, 1), so an empty mean is 0; torch.nn gives nan (PyTorch 2.13)
    p = torch.empty(0, dtype=F64, requires_grad=True)
    v = tlt.MSELoss()(p, torch.empty(0, dtype=F64))
    v.backward()
    assert v.item() == 0.0
    assert p.grad.shape == (0,)
    assert math.isnan(nn.MSELoss()(p.detach(), torch.empty(0, dtype=F64)).item())


def test_log_cosh_has_no_overflow_where_torch_expression_does() -> None:
    # d = 800: log(cosh(800)) = 800 - log 2 (hand derivation), gradient tanh(800) / 1 = 1
    p = torch.tensor([800.0], dtype=F64, requires_grad=True)
    v = tlt.LogCoshLoss()(p, torch.zeros(1, dtype=F64))
    v.backward()
    assert v.item() == pytest.approx(800 - math.log(2), rel=1e-15)
    assert p.grad.item() == 1.0
    assert math.isinf(torch.log(torch.cosh(p.detach())).item())


# --------------------------------------------------------------------------------------------
# gradcheck, double backward
# --------------------------------------------------------------------------------------------


def _step(p: torch.Tensor) -> float:
    """A finite-difference step well inside the branch region of ``p``: the regions of a whole
    tensor loss (cosine's norms below ``eps``) may be far narrower than 1e-6."""
    return 1e-6 * min(1.0, p.abs().max().item())


@pytest.mark.parametrize(("name", "zone"), ZONES)
def test_gradcheck(name: str, zone: int) -> None:
    p, t = _inputs(name, shape=(3, 4), zone=zone)
    crit = tlt.criterion(name)
    assert torch.autograd.gradcheck(lambda x: crit(x, t), (p.requires_grad_(True),),
                                    eps=_step(p))


@pytest.mark.parametrize(("name", "zone"), ZONES)
def test_gradgradcheck(name: str, zone: int) -> None:
    # smooth losses have a true second derivative; the others pass too away from their kinks
    # (their derivative is smooth, or piecewise constant, on each piece)
    p, t = _inputs(name, shape=(3, 4), zone=zone)
    crit = tlt.criterion(name)
    assert torch.autograd.gradgradcheck(lambda x: crit(x, t), (p.requires_grad_(True),),
                                        eps=_step(p))


def _hessian(crit: Callable[..., torch.Tensor], p: torch.Tensor,
             t: torch.Tensor) -> torch.Tensor:
    return torch.autograd.functional.hessian(lambda x: crit(x, t), p)


@pytest.mark.parametrize(("name", "zone"), TORCH_ZONES)
def test_hessian_matches_autograd_of_the_torch_reference(name: str, zone: int) -> None:
    # origin: PyTorch autograd's Hessian of the declaration's torch reference, where it agrees
    # (the almost-everywhere one for mae, hinge and the clamps: 0)
    p, t = _inputs(name, shape=(2, 3), zone=zone)
    torch.testing.assert_close(_hessian(tlt.criterion(name), p, t),
                               _hessian(_reference(name), p, t), rtol=1e-10, atol=1e-12)


def test_second_derivative_is_the_almost_everywhere_one() -> None:
    p = torch.tensor([0.3, 1e-9, 0.7], dtype=F64)
    t = torch.tensor([1.0, 1.0, 0.5], dtype=F64)
    # cross-entropy: d/dp (-t / p / n) = t / (p**2 n) inside the clamp, 0 where it is active
    # (hand derivation; n = 3)
    want = torch.diag(torch.tensor([1 / (0.09 * 3), 0.0, 0.5 / (0.49 * 3)], dtype=F64))
    torch.testing.assert_close(_hessian(tlt.ProbabilityCrossEntropyLoss(), p, t), want)
    # mae and hinge: piecewise-constant derivatives, so 0 away from (and at) the kinks
    zeros = torch.zeros(3, 3, dtype=F64)
    torch.testing.assert_close(_hessian(tlt.MAELoss(), p, t), zeros)
    torch.testing.assert_close(_hessian(tlt.HingeLoss(), p, t), zeros)


def test_double_backward_without_create_graph_is_not_tracked() -> None:
    p, t = _inputs("mse")
    p.requires_grad_(True)
    (g,) = torch.autograd.grad(tlt.MSELoss()(p, t), p)
    assert not g.requires_grad
    (g,) = torch.autograd.grad(tlt.MSELoss()(p, t), p, create_graph=True)
    assert g.requires_grad


# --------------------------------------------------------------------------------------------
# dtypes and devices
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("name", ALL)
def test_half_precision_is_float64_rounded_once(name: str, dtype: torch.dtype) -> None:
    p, t = (x.to(dtype) for x in _inputs(name))
    p.requires_grad_(True)
    v = tlt.SpecLoss(name)(p, t)
    v.backward()
    # origin: the float64 spec on the same (exactly widened) inputs, rounded once
    wv, wg = torchlean.value_and_deriv(name, p.detach().double(), t.double())
    assert v.dtype == dtype and p.grad.dtype == dtype
    assert v.item() == wv.to(dtype).item()
    assert torch.equal(p.grad, wg.to(dtype))


@pytest.mark.parametrize("name", ALL)
def test_integer_target_is_promoted(name: str) -> None:
    p = torch.tensor([[0.25, 0.75], [0.5, 0.5]], dtype=torch.float32)
    t = torch.tensor([[1, 0], [0, 1]])
    v_int = tlt.SpecLoss(name)(p, t)
    v_flt = tlt.SpecLoss(name)(p, t.to(torch.float32))
    assert v_int.dtype == torch.float32
    assert v_int.item() == v_flt.item()


DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="no CUDA device on this machine")),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ALL)
def test_results_stay_on_the_input_device(name: str, device: str) -> None:
    p, t = (x.to(device) for x in _inputs(name, torch.float32))
    p.requires_grad_(True)
    v = tlt.SpecLoss(name)(p, t)
    v.backward()
    assert v.device == p.device and p.grad.device == p.device
    assert v.dtype == torch.float32 and p.grad.dtype == torch.float32


@pytest.mark.parametrize("name", ALL)
def test_meta_device_stays_meta(name: str) -> None:
    # the meta device stands in for an accelerator on a CPU-only machine; it has no data, so
    # the default domain check (poisson, binary_cross_entropy) is skipped there, not an error
    p = torch.empty(3, 4, device="meta", requires_grad=True)
    v = tlt.SpecLoss(name)(p, torch.empty(3, 4, device="meta"))
    v.backward()
    assert v.device.type == "meta" and p.grad.device.type == "meta"


@pytest.mark.parametrize("where", ["target_on_meta", "predicted_on_meta"])
def test_device_mismatch_raises_backend_error(where: str) -> None:
    p, t = _inputs("mse")
    if where == "target_on_meta":
        t = t.to("meta")
    else:
        p = p.to("meta")
    with pytest.raises(BackendError, match="`target` must be on the device of `predicted`"):
        tlt.MSELoss()(p.requires_grad_(True), t)


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_target_requiring_grad_raises() -> None:
    p, t = _inputs("mse")
    p.requires_grad_(True)
    t.requires_grad_(True)
    with pytest.raises(UnsupportedOperationError, match=r"`target` must not require grad.*"
                                                          r"target\.detach\(\)"):
        tlt.MSELoss()(p, t)
    # a detached target, or no grad mode, is fine
    assert tlt.MSELoss()(p, t.detach()).requires_grad
    with torch.no_grad():
        assert not tlt.MSELoss()(p, t).requires_grad


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        pytest.param(lambda: tlt.SpecLoss("msee"), ParameterError, "`name` must be one of",
                     id="unknown_name"),
        pytest.param(lambda: tlt.SpecLoss("mse", delta=1.0), ParameterError,
                     "`delta` is not a parameter of the mse loss", id="unknown_parameter"),
        pytest.param(lambda: tlt.HuberLoss(-1.0), ParameterError, "`delta` must be",
                     id="negative_delta"),
        pytest.param(lambda: tlt.BCELoss(epsilon=0.7), ParameterError, "`epsilon` must be",
                     id="epsilon_out_of_range"),
        pytest.param(lambda: tlt.SpecLoss("mse", ctx=None), ParameterError,
                     "`ctx` is not a parameter", id="ctx_passed"),
    ],
)
def test_construction_errors(make: Callable[[], object], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize(
    ("predicted", "target", "error", "match"),
    [
        pytest.param(np.zeros(3), torch.zeros(3), BackendError,
                     "`predicted` must be a torch.Tensor; got ndarray", id="numpy_predicted"),
        pytest.param(torch.zeros(3), [0.0, 0.0, 0.0], BackendError,
                     "`target` must be a torch.Tensor; got list", id="list_target"),
        pytest.param(torch.zeros(3), torch.zeros(4), ShapeError, r"\(3,\).*got \(4,\)",
                     id="shape_mismatch"),
        pytest.param(torch.zeros(3, dtype=torch.int64), torch.zeros(3), DTypeError,
                     "real floating-point dtype; got int64", id="integer_predicted"),
        pytest.param(torch.zeros(3).to_sparse(), torch.zeros(3), BackendError,
                     r"`predicted` must be a strided \(dense\) tensor; got a sparse_coo tensor",
                     id="sparse_predicted"),
    ],
)
def test_call_errors(predicted: object, target: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        tlt.MSELoss()(predicted, target)


def test_domain_error_reaches_the_caller() -> None:
    p = torch.zeros(2, dtype=F64, requires_grad=True)
    with pytest.raises(DomainError, match="`target` must lie in"):
        tlt.PoissonLoss()(p, torch.tensor([1.0, -1.0], dtype=F64))
    # the documented switch: exp(0) - t * 0 = 1 per element (hand derivation)
    v = tlt.PoissonLoss(check_domain=False)(p, torch.tensor([1.0, -1.0], dtype=F64))
    assert v.item() == 1.0


def test_repr_names_the_parameters() -> None:
    assert repr(tlt.MSELoss()) == "MSELoss()"
    assert repr(tlt.HuberLoss(0.5)) == "HuberLoss(delta=0.5)"
    assert repr(tlt.SpecLoss("huber", delta=2.0)) == "SpecLoss('huber', delta=2.0)"


def test_package_exposes_every_name_of_the_torch_module() -> None:
    import torchlean.interop as interop

    assert set(tlt.__all__) == interop.torch_names()
    for name in tlt.__all__:
        assert getattr(interop, name) is getattr(tlt, name)


def test_module_imports_without_torch() -> None:
    # torch hidden from the import system: torchlean and torchlean.interop still import, the
    # torch bridge fails with an install hint
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import torchlean, torchlean.interop\n"
        "try:\n"
        "    torchlean.interop.MSELoss\n"
        "except ImportError as e:\n"
        "    print('ImportError:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert "ImportError: torchlean.interop.torch needs PyTorch" in out.stdout
    assert "pip install 'torchlean[torch]'" in out.stdout


# --------------------------------------------------------------------------------------------
# Training: each criterion drives a small model down (fixed seeds, full batch, Adam)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "zone"), ZONES)
def test_training_a_tensor_lowers_every_loss(name: str, zone: int) -> None:
    # Adam on the predicted tensor itself, from inside each branch region: wherever the
    # derivative is not zero, the loss falls (the derivative is a descent direction)
    p, t = _inputs(name, shape=(8, 3), zone=zone)
    crit = tlt.criterion(name)
    if not LOSSES[name].deriv(p, t).abs().max() > 0:
        pytest.skip("the derivative is 0 here (a clamp is active): nothing to train")
    w = nn.Parameter(p.clone())
    opt = torch.optim.Adam([w], lr=0.01)
    start = crit(w, t).item()
    for _ in range(30):
        opt.zero_grad()
        crit(w, t).backward()
        opt.step()
    end = crit(w, t).item()
    assert end < start - 1e-3 * max(1.0, abs(start)), f"{start:.6g} -> {end:.6g}"


Task = tuple[nn.Module, torch.Tensor, torch.Tensor, float]


def _regression() -> Task:
    g = _gen(0)
    x = torch.randn(128, 4, generator=g)
    y = x @ torch.tensor([[1.5], [-2.0], [0.5], [1.0]]) + 0.05 * torch.randn(128, 1, generator=g)
    return nn.Linear(4, 1), x, y, 0.0


def _classes(n_classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = _gen(0)
    centres = 3.0 * torch.randn(n_classes, 4, generator=g)
    label = torch.randint(0, n_classes, (120,), generator=g)
    x = centres[label] + 0.5 * torch.randn(120, 4, generator=g)
    return x, F.one_hot(label, n_classes).float()


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _softmax_regression() -> Task:
    x, y = _classes()
    return nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=-1)), x, y, 0.0


def _mlp_on_logits() -> Task:
    x, y = _classes()
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3)), x, y, 0.0


def _linear_svm() -> Task:
    x, y = _classes(2)
    return nn.Linear(4, 1), x, 2 * y[:, :1] - 1, 0.0


def _logistic_regression() -> Task:
    x, y = _classes(2)
    return nn.Sequential(nn.Linear(4, 1), nn.Sigmoid()), x, y[:, :1], 0.0


def _log_linear_counts() -> Task:
    g = _gen(0)
    x = torch.randn(256, 4, generator=g)
    log_rate = x @ torch.tensor([[0.5], [-0.3], [0.2], [0.4]]) + 1.0
    counts = torch.poisson(torch.exp(log_rate), generator=g)
    # the Poisson loss can be negative: measure its excess over the generating rates'
    return nn.Linear(4, 1), x, counts, tlt.PoissonLoss()(log_rate, counts).item()


#: models as each loss is used in practice: (criterion, task)
MODELS: dict[str, tuple[Callable[[], nn.Module], Callable[[], Task]]] = {
    "linear_regression_mse": (tlt.MSELoss, _regression),
    "linear_regression_mae": (tlt.MAELoss, _regression),
    "linear_regression_huber": (tlt.HuberLoss, _regression),
    "linear_regression_pseudo_huber": (tlt.PseudoHuberLoss, _regression),
    "linear_regression_user_loss": (lambda: tlt.criterion(USER, delta=0.5), _regression),
    "softmax_regression_probability_cross_entropy": (tlt.ProbabilityCrossEntropyLoss,
                                                     _softmax_regression),
    "mlp_cross_entropy_logits": (tlt.CrossEntropyLogitsLoss, _mlp_on_logits),
    "linear_svm_hinge": (tlt.HingeLoss, _linear_svm),
    "logistic_regression_bce": (tlt.BCELoss, _logistic_regression),
    "log_linear_poisson": (tlt.PoissonLoss, _log_linear_counts),
}


def _zero_last_layer(model: nn.Module) -> None:
    """Start every model from a zero output layer, so the first loss is the uninformed one
    (hinge 1, BCE log 2, ...) rather than whatever a lucky initialisation gives."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()


#: the loss (its excess over the task's floor) must fall below its start / FACTOR
FACTOR = 20.0


@pytest.mark.parametrize("case", list(MODELS))
def test_training_a_model_reduces_the_loss(case: str) -> None:
    torch.manual_seed(0)
    make, task = MODELS[case]
    model, x, y, floor = task()
    _zero_last_layer(model)
    crit = make()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    start = loss = crit(model(x), y).item() - floor
    steps = 0
    while loss >= start / FACTOR and steps < 400:
        opt.zero_grad()
        out = crit(model(x), y)
        out.backward()
        opt.step()
        loss, steps = out.item() - floor, steps + 1
    assert loss < start / FACTOR, f"{case}: {start:.4g} -> {loss:.4g} in {steps} steps"


def test_cosine_similarity_trains_a_linear_map() -> None:
    # (a zero output would sit in the clamped corner ||p|| = 0, so the default initialisation)
    torch.manual_seed(0)
    g = _gen(0)
    x = torch.randn(64, 4, generator=g)
    y = x @ torch.randn(4, 3, generator=g)
    model, crit = nn.Linear(4, 3), tlt.CosineSimilarityLoss()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    start = loss = crit(model(x), y).item()
    steps = 0
    while loss >= start / FACTOR and steps < 400:
        opt.zero_grad()
        out = crit(model(x), y)
        out.backward()
        opt.step()
        loss, steps = out.item(), steps + 1
    assert loss < start / FACTOR, f"{start:.4g} -> {loss:.4g} in {steps} steps"


# --------------------------------------------------------------------------------------------
# A loss declared by a user
# --------------------------------------------------------------------------------------------


def test_user_loss_criterion_is_its_declaration() -> None:
    crit = tlt.criterion(USER, delta=2.0)
    assert type(crit) is tlt.SpecLoss
    assert repr(crit) == "SpecLoss('interop_test_pseudo_huber', delta=2.0)"
    # hand derivation: d = 3, delta = 2: 4 (sqrt(1 + 9/4) - 1) = 2 sqrt(13) - 4, and the
    # derivative 3 / sqrt(13 / 4) = 6 / sqrt(13); d = 0 gives 0 (n = 2)
    p = torch.tensor([3.0, 1.0], dtype=F64, requires_grad=True)
    t = torch.tensor([0.0, 1.0], dtype=F64)
    v = crit(p, t)
    v.backward()
    assert v.item() == pytest.approx((2 * math.sqrt(13) - 4) / 2, rel=1e-15)
    torch.testing.assert_close(p.grad, torch.tensor([3 / math.sqrt(13), 0.0], dtype=F64),
                               rtol=1e-15, atol=0)
    with pytest.raises(ParameterError, match="`epsilon` is not a parameter of the "
                                             "interop_test_pseudo_huber loss"):
        tlt.criterion(USER, epsilon=0.1)
    with pytest.raises(ParameterError, match="`delta` must be a finite real number"):
        tlt.criterion(USER, delta=math.inf)


def test_user_loss_gradcheck_and_gradgradcheck() -> None:
    p, t = _inputs(USER, shape=(3, 4))
    crit = tlt.criterion(USER, delta=0.7)
    assert torch.autograd.gradcheck(lambda x: crit(x, t), (p.requires_grad_(True),))
    assert torch.autograd.gradgradcheck(lambda x: crit(x, t), (p,))


def test_user_loss_trains_a_tensor_to_its_target() -> None:
    # its minimum is 0, at predicted = target
    g = _gen(3)
    t = torch.randn(16, dtype=F64, generator=g)
    w = nn.Parameter(torch.zeros(16, dtype=F64))
    crit = tlt.criterion(USER)
    opt = torch.optim.Adam([w], lr=0.1)
    start = crit(w, t).item()
    for _ in range(200):
        opt.zero_grad()
        crit(w, t).backward()
        opt.step()
    assert crit(w, t).item() < start / 1000
