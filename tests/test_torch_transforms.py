"""PyTorch autograd and ``torch.func`` on ``torchlean.value_and_deriv`` and the criteria of
``torchlean.interop.torch``; tensors without data (meta) and without a strided layout."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.func import grad, jacrev, vmap  # noqa: E402

import torchlean  # noqa: E402
from torchlean import LOSSES, BackendError, UnsupportedOperationError  # noqa: E402
from torchlean.interop import torch as tlt  # noqa: E402
from torchlean.kernels import disabled  # noqa: E402

F64 = torch.float64
#: the package's losses (other test modules may declare losses of their own, some wrong on
#: purpose)
DECLS = [d for d in LOSSES.values() if d.origin == "torchlean"]
ALL = [d.name for d in DECLS]
Pair = tuple["torch.Tensor", "torch.Tensor"]


def _inputs(name: str, shape: tuple[int, ...] = (3, 4), zone: int = 0) -> Pair:
    """Inputs inside the ``zone``-th branch region of ``name``'s declaration (default
    parameters), away from its kinks."""
    decl = LOSSES[name]
    p, t = decl.region_zones()[zone].sample(np.random.default_rng(0), shape, decl.params)
    return torch.tensor(p, dtype=F64), torch.tensor(t, dtype=F64)


def _id(name: str, zone: str) -> str:
    return f"{name}[{zone}]".replace(" ", "")


#: the branch regions where the declaration's PyTorch reference agrees (value and gradient)
TORCH_ZONES = [pytest.param(d.name, i, id=_id(d.name, z.name))
               for d in DECLS if d.torch_reference is not None
               for i, z in enumerate(d.region_zones()) if z.torch_agrees]


# --------------------------------------------------------------------------------------------
# value_and_deriv on tensors that require grad
# --------------------------------------------------------------------------------------------


def test_value_and_deriv_value_has_the_log_cosh_gradient(path: str) -> None:
    d = torch.tensor([0.3, -1.2, 2.0, 40.0], dtype=F64)
    p = d.clone().requires_grad_(True)
    value, deriv = torchlean.value_and_deriv("log_cosh", p, torch.zeros(4, dtype=F64))
    value.backward()
    # hand derivation: d/dp mean(log(cosh(p - t))) = tanh(p - t) / n
    want = torch.tanh(d) / 4
    torch.testing.assert_close(p.grad, want, rtol=1e-15, atol=0)
    # the derivative is returned as a constant; the value carries the graph
    assert value.requires_grad and not deriv.requires_grad and deriv.grad_fn is None
    torch.testing.assert_close(deriv, want, rtol=1e-15, atol=0)


@pytest.mark.parametrize("name", ALL)
def test_value_and_deriv_gradient_is_the_same_with_kernels_on_and_off(name: str) -> None:
    p, t = _inputs(name)
    grads, derivs = [], []
    for ctx in (disabled, contextlib.nullcontext):
        with ctx():
            x = p.clone().requires_grad_(True)
            value, deriv = torchlean.value_and_deriv(name, x, t)
            (g,) = torch.autograd.grad(value, x)
        grads.append(g)
        derivs.append(deriv)
    # origin: the spec's derivative (the kernels are held to it to a few ulps)
    torch.testing.assert_close(grads[0], derivs[0], rtol=0, atol=0)
    torch.testing.assert_close(grads[1], derivs[1], rtol=0, atol=0)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-14, atol=1e-300)


def test_value_and_deriv_target_requiring_grad_raises(path: str) -> None:
    p, t = _inputs("mse")
    t.requires_grad_(True)
    with pytest.raises(UnsupportedOperationError, match="`target` must not require grad"):
        torchlean.value_and_deriv("mse", p.requires_grad_(True), t)
    with torch.no_grad():  # no gradient is asked for: a constant, as in the criteria
        value, _ = torchlean.value_and_deriv("mse", p, t)
    assert not value.requires_grad


def test_value_and_deriv_double_backward_is_the_hessian(path: str) -> None:
    p, t = _inputs("mse", (3,))
    x = p.clone().requires_grad_(True)
    value, _ = torchlean.value_and_deriv("mse", x, t)
    (g,) = torch.autograd.grad(value, x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    # hand derivation: the Hessian of mean((p - t)**2) is 2 I / n, its row sums 2 / n
    torch.testing.assert_close(h, torch.full((3,), 2 / 3, dtype=F64), rtol=1e-15, atol=0)


# --------------------------------------------------------------------------------------------
# torch.func over the criteria
# --------------------------------------------------------------------------------------------


def _crit(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    return tlt.SpecLoss(name)


@pytest.mark.parametrize("name", ALL)
def test_func_grad_and_jacrev_are_the_derivative_spec(name: str, path: str) -> None:
    p, t = _inputs(name)
    crit = _crit(name)
    _, want = torchlean.value_and_deriv(name, p, t)  # origin: the derivative spec
    torch.testing.assert_close(grad(crit)(p, t), want, rtol=1e-15, atol=0)
    torch.testing.assert_close(jacrev(crit)(p, t), want, rtol=1e-15, atol=0)
    # value_and_deriv's value under torch.func.grad too
    got = grad(lambda x: torchlean.value_and_deriv(name, x, t)[0])(p)
    torch.testing.assert_close(got, want, rtol=1e-15, atol=0)


def test_func_grad_of_mse_is_two_d_over_n(path: str) -> None:
    p, t = _inputs("mse")
    # hand derivation: d/dp mean((p - t)**2) = 2 (p - t) / n
    torch.testing.assert_close(grad(tlt.MSELoss())(p, t), 2 * (p - t) / p.numel(),
                               rtol=1e-15, atol=0)


@pytest.mark.parametrize(("name", "zone"), TORCH_ZONES)
def test_func_grad_of_grad_and_jacrev_of_grad_are_the_hessian(name: str, zone: int) -> None:
    # origin: autograd's Hessian of the declaration's PyTorch reference, where it agrees
    decl = LOSSES[name]
    p, t = _inputs(name, zone=zone)
    crit = _crit(name)
    want = torch.autograd.functional.hessian(
        lambda x: decl.torch_reference(x, t, **decl.params), p)
    gg = grad(lambda x: grad(crit)(x, t).sum())(p)
    torch.testing.assert_close(gg, want.sum(dim=(0, 1)), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(jacrev(grad(crit))(p, t), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_func_vmap_is_the_loss_of_each_sample(name: str, path: str) -> None:
    p, t = _inputs(name)
    ps, ts = torch.stack([p, p.flip(0)]), torch.stack([t, t.flip(0)])
    crit = _crit(name)
    # origin: the criterion applied to each sample in turn
    want = torch.stack([crit(ps[0], ts[0]), crit(ps[1], ts[1])])
    torch.testing.assert_close(vmap(crit)(ps, ts), want, rtol=0, atol=0)
    torch.testing.assert_close(vmap(crit, in_dims=(0, None))(ps, t),
                               torch.stack([crit(ps[0], t), crit(ps[1], t)]), rtol=0, atol=0)
    # per-sample gradients, and a gradient through vmap
    _, g0 = torchlean.value_and_deriv(name, ps[0], ts[0])
    _, g1 = torchlean.value_and_deriv(name, ps[1], ts[1])
    torch.testing.assert_close(vmap(grad(crit))(ps, ts), torch.stack([g0, g1]), rtol=1e-15,
                               atol=0)
    torch.testing.assert_close(grad(lambda x: vmap(crit)(x, ts).sum())(ps),
                               torch.stack([g0, g1]), rtol=1e-15, atol=0)
    # nested vmap, and value_and_deriv under vmap
    torch.testing.assert_close(vmap(vmap(crit))(ps[:, None], ts[:, None])[:, 0], want,
                               rtol=0, atol=0)
    v, g = vmap(lambda a, b: torchlean.value_and_deriv(name, a, b))(ps, ts)
    torch.testing.assert_close(v, want, rtol=0, atol=0)
    torch.testing.assert_close(g, torch.stack([g0, g1]), rtol=0, atol=0)


def test_func_vmap_still_checks_the_domain() -> None:
    p, t = _inputs("poisson")
    ts = torch.stack([t, -t - 1])
    with pytest.raises(torchlean.DomainError, match="`target` must lie in"):
        vmap(tlt.PoissonLoss())(torch.stack([p, p]), ts)


# --------------------------------------------------------------------------------------------
# The meta device: no data, so no domain check
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["poisson", "binary_cross_entropy"])
def test_meta_skips_the_domain_check(name: str, path: str) -> None:
    p = torch.empty(3, 4, device="meta", requires_grad=True)
    t = torch.empty(3, 4, device="meta")
    v = tlt.SpecLoss(name)(p, t)  # default check_domain=True
    v.backward()
    assert v.device.type == "meta" and v.shape == () and p.grad.device.type == "meta"
    value, deriv = torchlean.value_and_deriv(name, p.detach(), t)
    assert value.device.type == "meta" and deriv.shape == (3, 4)


@pytest.mark.parametrize("name", ["poisson", "binary_cross_entropy"])
def test_meta_skips_the_domain_check_in_the_spec_functions(name: str) -> None:
    # Called directly (not through value_and_deriv), the spec's own check read the values.
    entry = LOSSES[name]
    p, t = torch.empty(3, 4, device="meta"), torch.empty(3, 4, device="meta")
    value, deriv = entry.value(p, t), entry.deriv(p, t)
    assert value.device.type == "meta" and value.shape == ()
    assert deriv.device.type == "meta" and deriv.shape == (3, 4)


# --------------------------------------------------------------------------------------------
# Sparse and nested tensors are refused with the package's error
# --------------------------------------------------------------------------------------------


def _quietly(make: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
    def made() -> torch.Tensor:
        with warnings.catch_warnings():  # torch warns that these layouts are beta / prototype
            warnings.simplefilter("ignore", UserWarning)
            return make()
    return made


NOT_DENSE: dict[str, tuple[Callable[[], torch.Tensor], str]] = {
    "sparse_coo": (lambda: torch.zeros(2, 3, dtype=F64).to_sparse(), "a sparse_coo tensor"),
    "sparse_csr": (_quietly(lambda: torch.zeros(2, 3, dtype=F64).to_sparse_csr()),
                   "a sparse_csr tensor"),
    "nested": (_quietly(lambda: torch.nested.nested_tensor(
        [torch.zeros(2, dtype=F64), torch.zeros(3, dtype=F64)])), "a nested tensor"),
}


@pytest.mark.parametrize("arg", ["predicted", "target"])
@pytest.mark.parametrize("kind", list(NOT_DENSE))
@pytest.mark.parametrize("call", ["value_and_deriv", "criterion"])
def test_sparse_and_nested_are_refused(call: str, kind: str, arg: str) -> None:
    make, got = NOT_DENSE[kind]
    bad = make()
    dense = torch.zeros(2, 3, dtype=F64)
    p, t = (bad, dense) if arg == "predicted" else (dense, bad)
    match = f"`{arg}` must be a strided \\(dense\\) tensor; got {got}"
    with pytest.raises(BackendError, match=match):
        if call == "value_and_deriv":
            torchlean.value_and_deriv("mse", p, t)
        else:
            tlt.MSELoss()(p, t)


def test_log_cosh_gradient_is_finite_far_out(path: str) -> None:
    # d = 800: tanh(800) = 1 in float64 (hand derivation), where cosh overflows
    p = torch.tensor([800.0], dtype=F64, requires_grad=True)
    value, _ = torchlean.value_and_deriv("log_cosh", p, torch.zeros(1, dtype=F64))
    value.backward()
    assert p.grad.item() == 1.0 and value.item() == pytest.approx(800 - math.log(2), rel=1e-15)
