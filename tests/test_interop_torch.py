"""torch.nn criteria whose backward is the derivative spec (``torchlean.interop.torch``)."""

from __future__ import annotations

import math
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
from torchlean.spec.layers.loss import EPSILON  # noqa: E402

F64 = torch.float64

# --------------------------------------------------------------------------------------------
# Inputs in each loss's domain, away from its kinks (so finite differences see one branch).
# --------------------------------------------------------------------------------------------

Pair = tuple["torch.Tensor", "torch.Tensor"]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _normal(shape: tuple[int, ...], seed: int, dtype: torch.dtype = F64) -> torch.Tensor:
    return torch.randn(shape, generator=_gen(seed), dtype=dtype)


def _uniform(shape: tuple[int, ...], seed: int, lo: float, hi: float,
             dtype: torch.dtype = F64) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=_gen(seed), dtype=dtype)


def _real(shape: tuple[int, ...], dtype: torch.dtype) -> Pair:
    return _normal(shape, 1, dtype), _normal(shape, 2, dtype)


def _probabilities(shape: tuple[int, ...], dtype: torch.dtype) -> Pair:
    # strictly inside the clamp [eps, 1 - eps]
    return _uniform(shape, 1, 0.1, 0.9, dtype), _uniform(shape, 2, 0.0, 1.0, dtype)


def _labels(shape: tuple[int, ...], dtype: torch.dtype) -> Pair:
    return _normal(shape, 1, dtype), torch.where(_normal(shape, 2) > 0, 1.0, -1.0).to(dtype)


def _counts(shape: tuple[int, ...], dtype: torch.dtype) -> Pair:
    x = 0.5 * _normal(shape, 1, dtype)
    return x, torch.poisson(torch.full(shape, 2.0, dtype=dtype), generator=_gen(2))


def _logits(shape: tuple[int, ...], dtype: torch.dtype) -> Pair:
    return _normal(shape, 1, dtype), torch.softmax(_normal(shape, 2, dtype), dim=-1)


INPUTS: dict[str, Callable[[tuple[int, ...], torch.dtype], Pair]] = {
    "mse": _real,
    "mae": _real,
    "huber": _real,
    "cross_entropy": _probabilities,
    "cross_entropy_logits": _logits,
    "hinge": _labels,
    "poisson": _counts,
    "cosine_similarity": _real,
    "log_cosh": _real,
    "binary_cross_entropy": _probabilities,
}

NAMED: dict[str, type] = {
    "mse": tlt.MSELoss,
    "mae": tlt.MAELoss,
    "huber": tlt.HuberLoss,
    "cross_entropy": tlt.CrossEntropyLoss,
    "cross_entropy_logits": tlt.CrossEntropyLogitsLoss,
    "hinge": tlt.HingeLoss,
    "poisson": tlt.PoissonLoss,
    "cosine_similarity": tlt.CosineSimilarityLoss,
    "log_cosh": tlt.LogCoshLoss,
    "binary_cross_entropy": tlt.BCELoss,
}

ALL = list(LOSSES)
SMOOTH_SECOND = ["mse", "huber", "log_cosh", "poisson", "cross_entropy_logits",
                 "cosine_similarity"]


def _inputs(name: str, dtype: torch.dtype = F64, shape: tuple[int, ...] = (4, 3)) -> Pair:
    return INPUTS[name](shape, dtype)


def _ulps(dtype: torch.dtype, k: int = 2) -> float:
    return k * torch.finfo(dtype).eps


def test_every_registered_loss_has_inputs_and_a_named_criterion() -> None:
    assert set(INPUTS) == set(LOSSES)
    assert set(NAMED) == set(LOSSES)
    for name, cls in NAMED.items():
        assert cls().loss_name == name


# --------------------------------------------------------------------------------------------
# Value and gradient are the spec's
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", ALL)
def test_value_and_gradient_are_the_spec(name: str, dtype: torch.dtype) -> None:
    p, t = _inputs(name, dtype)
    p.requires_grad_(True)
    loss = tlt.SpecLoss(name)(p, t)
    loss.backward()
    # origin: the spec itself, evaluated by the registry on plain tensors
    entry = LOSSES[name]
    want_v, want_g = entry.value(p.detach(), t), entry.deriv(p.detach(), t)
    assert loss.dtype == dtype and p.grad.dtype == dtype
    assert loss.shape == () and p.grad.shape == p.shape
    # a few ulps: the forward may run a fused kernel (tested equal to the spec) that sums in
    # another order; atol scales with the largest element for elements that cancel to ~0
    tol = _ulps(dtype, 4)
    torch.testing.assert_close(loss.detach(), want_v, rtol=tol, atol=0)
    torch.testing.assert_close(p.grad, want_g, rtol=tol, atol=tol * want_g.abs().max().item())


@pytest.mark.parametrize("name", ALL)
def test_named_criterion_equals_spec_loss(name: str) -> None:
    p, t = _inputs(name)
    assert NAMED[name]()(p, t).item() == tlt.SpecLoss(name)(p, t).item()
    assert tlt.spec_loss(name, p, t).item() == tlt.SpecLoss(name)(p, t).item()


@pytest.mark.parametrize("name", ALL)
def test_backward_scales_by_grad_output(name: str) -> None:
    p, t = _inputs(name)
    p.requires_grad_(True)
    (-2.5 * tlt.SpecLoss(name)(p, t)).backward()
    torch.testing.assert_close(p.grad, -2.5 * LOSSES[name].deriv(p.detach(), t),
                               rtol=1e-15, atol=0)


def test_gradient_accumulates_through_a_graph() -> None:
    # loss(2 * w) w.r.t. w: chain rule gives 2 * mse' = 2 * 2 (2w - t) / n (hand derivation)
    w = torch.tensor([1.0, -2.0, 0.5], dtype=F64, requires_grad=True)
    t = torch.tensor([0.0, 1.0, 1.0], dtype=F64)
    tlt.MSELoss()(2 * w, t).backward()
    torch.testing.assert_close(w.grad, torch.tensor([8 / 3, -20 / 3, 0.0], dtype=F64))


# --------------------------------------------------------------------------------------------
# Agreement with torch.nn where the semantics agree (origin: PyTorch 2.13)
# --------------------------------------------------------------------------------------------


def _xent_logits_torch(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return nn.CrossEntropyLoss(reduction="sum")(z.movedim(-1, 1), t.movedim(-1, 1)) / z.numel()


TORCH_COUNTERPARTS: dict[str, tuple[Callable[[], nn.Module], Callable[..., torch.Tensor]]] = {
    "mse": (tlt.MSELoss, nn.MSELoss()),
    "mae": (tlt.MAELoss, nn.L1Loss()),
    "huber_beta_1": (lambda: tlt.HuberLoss(1.0), nn.SmoothL1Loss(beta=1.0)),
    "huber_beta_0.3": (lambda: tlt.HuberLoss(0.3), nn.SmoothL1Loss(beta=0.3)),
    "huber_as_HuberLoss": (lambda: tlt.HuberLoss(2.0),
                           lambda p, t: nn.HuberLoss(delta=2.0)(p, t) / 2.0),
    "cross_entropy": (tlt.CrossEntropyLoss,
                      lambda p, t: -(t * p.clamp(EPSILON, 1 - EPSILON).log()).mean()),
    "cross_entropy_logits": (tlt.CrossEntropyLogitsLoss, _xent_logits_torch),
    "hinge": (tlt.HingeLoss, lambda x, t: torch.relu(1 - t * x).mean()),
    "poisson": (tlt.PoissonLoss, nn.PoissonNLLLoss(log_input=True, full=False)),
    "cosine_similarity": (tlt.CosineSimilarityLoss,
                          lambda p, t: 1 - F.cosine_similarity(p.flatten(), t.flatten(), dim=0,
                                                               eps=EPSILON)),
    "log_cosh": (tlt.LogCoshLoss, lambda p, t: torch.log(torch.cosh(p - t)).mean()),
    "binary_cross_entropy": (tlt.BCELoss, nn.BCELoss()),
}


@pytest.mark.parametrize("case", list(TORCH_COUNTERPARTS))
def test_matches_torch_nn_counterpart(case: str) -> None:
    ours, theirs = TORCH_COUNTERPARTS[case]
    name = case.split("_beta")[0].split("_as_")[0]
    p, t = _inputs(name, shape=(2, 3, 4))
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
    tlt.CrossEntropyLoss()(p, t).backward()
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


@pytest.mark.parametrize("name", ALL)
def test_gradcheck(name: str) -> None:
    p, t = _inputs(name, shape=(3, 4))
    crit = tlt.SpecLoss(name)
    assert torch.autograd.gradcheck(lambda x: crit(x, t), (p.requires_grad_(True),))


@pytest.mark.parametrize("name", ALL)
def test_gradgradcheck(name: str) -> None:
    # the six smooth losses have a true second derivative; the others pass too away from their
    # kinks (their derivative is smooth, or piecewise constant, on each piece)
    p, t = _inputs(name, shape=(3, 4))
    crit = tlt.SpecLoss(name)
    assert torch.autograd.gradgradcheck(lambda x: crit(x, t), (p.requires_grad_(True),))


def _hessian(crit: nn.Module, p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return torch.autograd.functional.hessian(lambda x: crit(x, t), p)


@pytest.mark.parametrize("name", SMOOTH_SECOND)
def test_hessian_matches_autograd_of_a_torch_expression(name: str) -> None:
    # origin: PyTorch autograd's Hessian of the torch counterpart (same semantics here)
    key = "huber_beta_1" if name == "huber" else name
    ours, theirs = TORCH_COUNTERPARTS[key]
    p, t = _inputs(name, shape=(2, 3))
    torch.testing.assert_close(_hessian(ours(), p, t), _hessian(theirs, p, t),
                               rtol=1e-10, atol=1e-12)


def test_second_derivative_is_the_almost_everywhere_one() -> None:
    p = torch.tensor([0.3, 1e-9, 0.7], dtype=F64)
    t = torch.tensor([1.0, 1.0, 0.5], dtype=F64)
    # cross-entropy: d/dp (-t / p / n) = t / (p**2 n) inside the clamp, 0 where it is active
    # (hand derivation; n = 3)
    want = torch.diag(torch.tensor([1 / (0.09 * 3), 0.0, 0.5 / (0.49 * 3)], dtype=F64))
    torch.testing.assert_close(_hessian(tlt.CrossEntropyLoss(), p, t), want)
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
@pytest.mark.parametrize("name", ["mse", "huber", "log_cosh", "cross_entropy_logits"])
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

    assert set(tlt.__all__) == interop._TORCH_NAMES
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


class _Softmax(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.inner(x), dim=-1)


def _task(name: str) -> Task:
    """``(model, inputs, targets, floor)``: the loss should fall towards ``floor``."""
    if name in ("mse", "mae", "huber", "log_cosh"):
        return _regression()
    if name in ("cross_entropy", "cross_entropy_logits"):
        x, y = _classes()
        if name == "cross_entropy":  # softmax regression on probabilities
            return _Softmax(nn.Linear(4, 3)), x, y, 0.0
        return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3)), x, y, 0.0
    if name in ("hinge", "binary_cross_entropy"):
        x, y = _classes(2)
        y = y[:, :1]
        if name == "hinge":  # linear SVM, labels -1 / 1
            return nn.Linear(4, 1), x, 2 * y - 1, 0.0
        return nn.Sequential(nn.Linear(4, 1), nn.Sigmoid()), x, y, 0.0  # logistic regression
    if name == "poisson":
        g = _gen(0)
        x = torch.randn(256, 4, generator=g)
        log_rate = x @ torch.tensor([[0.5], [-0.3], [0.2], [0.4]]) + 1.0
        counts = torch.poisson(torch.exp(log_rate), generator=g)
        # the Poisson loss can be negative: measure its excess over the generating rates'
        return nn.Linear(4, 1), x, counts, tlt.PoissonLoss()(log_rate, counts).item()
    if name == "cosine_similarity":
        g = _gen(0)
        x = torch.randn(64, 4, generator=g)
        return nn.Linear(4, 3), x, x @ torch.randn(4, 3, generator=g), 0.0
    raise AssertionError(name)


def _zero_last_layer(model: nn.Module) -> None:
    """Start every model from a zero output layer, so the first loss is the uninformed one
    (hinge 1, BCE log 2, ...) rather than whatever a lucky initialisation gives."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()


#: the loss (its excess over the task's floor) must fall below its start / FACTOR
FACTOR = 20.0


@pytest.mark.parametrize("name", ALL)
def test_training_reduces_the_loss(name: str) -> None:
    torch.manual_seed(0)
    model, x, y, floor = _task(name)
    if name != "cosine_similarity":  # (zero output: ||p|| = 0, the clamped corner)
        _zero_last_layer(model)
    crit = tlt.SpecLoss(name)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    start = loss = crit(model(x), y).item() - floor
    steps = 0
    while loss >= start / FACTOR and steps < 400:
        opt.zero_grad()
        out = crit(model(x), y)
        out.backward()
        opt.step()
        loss, steps = out.item() - floor, steps + 1
    assert loss < start / FACTOR, f"{name}: {start:.4g} -> {loss:.4g} in {steps} steps"
