"""The registry: one declarative row per loss, which the tests, the certifier, the command line
and the benchmarks all loop over."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from torchlean.errors import ParameterError
from torchlean.spec.layers import loss as L

__all__ = ["LOSSES", "LossEntry", "get_loss", "value_and_deriv"]


@dataclass(frozen=True)
class LossEntry:
    """One loss: its spec functions, parameters, domain, kinks and PyTorch counterpart."""

    name: str
    value: Callable[..., Any]
    deriv: Callable[..., Any]
    #: keyword parameters and their defaults (``check_domain`` is not listed: it is a switch).
    params: Mapping[str, float] = field(default_factory=dict)
    #: ``"elementwise"`` (mean of a per-element term), ``"last_axis"`` (softmax over the last
    #: axis) or ``"whole"`` (one scalar of the whole tensor, no mean).
    reduction: str = "elementwise"
    #: what ``predicted`` and ``target`` mean, and the checked domain
    domain: str = "predicted, target: real"
    #: where the value is not differentiable, and the derivative chosen there
    kinks: str = "none"
    #: the PyTorch expression with the same value
    torch_equivalent: str = ""
    #: True when ``value``/``deriv`` take ``check_domain``
    has_domain_check: bool = False

    def call_value(self, predicted: Any, target: Any, /, **params: Any) -> Any:
        return self.value(predicted, target, **self.bind_params(params))

    def call_deriv(self, predicted: Any, target: Any, /, **params: Any) -> Any:
        return self.deriv(predicted, target, **self.bind_params(params))

    def bind_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check keyword names against this loss's parameters (``ctx`` always passes)."""
        allowed = set(self.params) | {"ctx"} | ({"check_domain"} if self.has_domain_check
                                              else set())
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ParameterError(
                f"`{unknown[0]}` is not a parameter of the {self.name} loss; expected one of "
                f"{sorted(allowed)}"
            )
        return dict(params)


def _rows() -> dict[str, LossEntry]:
    eps = {"epsilon": L.EPSILON}
    rows = [
        LossEntry("mse", L.mse_spec, L.mse_deriv_spec,
                  torch_equivalent="F.mse_loss(p, t)"),
        LossEntry("mae", L.mae_spec, L.mae_deriv_spec,
                  kinks="d = 0: derivative 0",
                  torch_equivalent="F.l1_loss(p, t)"),
        LossEntry("huber", L.huber_spec, L.huber_deriv_spec, params={"delta": 1.0},
                  domain="predicted, target: real; delta >= 0",
                  kinks="none for delta > 0 (C1); delta = 0 is mae",
                  torch_equivalent="F.smooth_l1_loss(p, t, beta=delta)"),
        LossEntry("cross_entropy", L.cross_entropy_spec, L.cross_entropy_deriv_spec,
                  params=eps,
                  domain="predicted: probabilities (clamped to [eps, 1-eps]); target: weights",
                  kinks="p = eps and p = 1 - eps: derivative 0",
                  torch_equivalent="-(t * p.clamp(eps, 1 - eps).log()).mean()"),
        LossEntry("cross_entropy_logits", L.cross_entropy_logits_spec,
                  L.cross_entropy_logits_deriv_spec, reduction="last_axis",
                  domain="predicted: logits, rank >= 1, softmax over the last axis; "
                         "target: class weights (need not sum to 1)",
                  torch_equivalent="F.cross_entropy(z.movedim(-1, 1), t.movedim(-1, 1), "
                                   "reduction='sum') / z.numel()"),
        LossEntry("hinge", L.hinge_spec, L.hinge_deriv_spec,
                  domain="predicted: scores; target: labels, usually -1 or 1",
                  kinks="t * x = 1: derivative 0",
                  torch_equivalent="torch.clamp(1 - t * x, min=0).mean()"),
        LossEntry("poisson", L.poisson_spec, L.poisson_deriv_spec, has_domain_check=True,
                  domain="predicted: log-rates; target: counts >= 0 (checked)",
                  torch_equivalent="F.poisson_nll_loss(x, t, log_input=True, full=False)"),
        LossEntry("cosine_similarity", L.cosine_similarity_spec, L.cosine_similarity_deriv_spec,
                  params=eps, reduction="whole",
                  domain="predicted, target: real vectors (the whole tensor is one vector)",
                  kinks="||p|| = eps: derivative -t / (eps * max(||t||, eps))",
                  torch_equivalent="1 - F.cosine_similarity(p.flatten(), t.flatten(), dim=0, "
                                   "eps=eps)"),
        LossEntry("log_cosh", L.log_cosh_spec, L.log_cosh_deriv_spec,
                  torch_equivalent="torch.log(torch.cosh(p - t)).mean()"),
        LossEntry("binary_cross_entropy", L.binary_cross_entropy_tensor_spec,
                  L.binary_cross_entropy_tensor_deriv_spec, params=eps, has_domain_check=True,
                  domain="predicted: probabilities (clamped to [eps, 1-eps]); "
                         "target: in [0, 1] (checked)",
                  kinks="p = eps and p = 1 - eps: derivative 0",
                  torch_equivalent="F.binary_cross_entropy(p, t)"),
    ]
    return {r.name: r for r in rows}


#: Every loss by name, with its parameters and defaults.
LOSSES: Mapping[str, LossEntry] = MappingProxyType(_rows())


def get_loss(name: str) -> LossEntry:
    """The registry row of ``name``; an unknown name raises ParameterError listing the names."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ParameterError(
            f"`name` must be one of {', '.join(LOSSES)}; got {name!r}"
        ) from None


def value_and_deriv(name: str, predicted: Any, target: Any, /, **params: Any) -> tuple[Any, Any]:
    """``(value, derivative)`` of the loss ``name`` at ``(predicted, target)``.

    ``params`` are the loss's keyword parameters (``delta``, ``epsilon``, ``check_domain``,
    ``ctx``). Runs a fused kernel where one exists for the inputs, else the spec twice.

    PyTorch tensors (without ``ctx``): when ``predicted`` requires grad and grad mode is on, or
    under a ``torch.func`` transform, the value is differentiable with respect to ``predicted``
    and its backward is the derivative spec, as for the criteria of
    :mod:`torchlean.interop.torch`, whether the fused kernels are on or off. The derivative is
    returned as a constant (no graph; differentiate the value with ``create_graph=True`` for
    second derivatives). A ``target`` that requires grad raises
    :class:`~torchlean.errors.UnsupportedOperationError` there. Sparse and nested tensors raise
    :class:`~torchlean.errors.BackendError`. Tensors without data (the meta device, fake
    tensors) skip the domain check, which needs the values.
    """
    entry = get_loss(name)
    kwargs = entry.bind_params(params)
    torch = _torch_of(predicted, target)
    if torch is not None:
        from torchlean.kernels.torch_path import check_dense

        for arg, x in (("predicted", predicted), ("target", target)):
            if isinstance(x, torch.Tensor):
                check_dense(arg, x)
        if kwargs.get("ctx") is None and _tracked(torch, predicted, target):
            from torchlean.interop.torch import tracked_value_and_deriv

            return tracked_value_and_deriv(entry.name, kwargs, predicted, target)
    return compute_value_and_deriv(entry.name, predicted, target, kwargs)


def compute_value_and_deriv(name: str, predicted: Any, target: Any,
                            kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """:func:`value_and_deriv` for a registry ``name`` and bound ``kwargs``, with no autograd
    bookkeeping: the fast path where one applies, else the spec twice."""
    entry = LOSSES[name]
    torch = _torch_of(predicted, target)
    if (torch is not None and entry.has_domain_check and kwargs.get("check_domain", True)
            and not _all_have_data(torch, predicted, target)):
        # the check reads the values, which a meta or fake tensor does not have
        kwargs = {**kwargs, "check_domain": False}
    from torchlean.kernels import fast_value_and_deriv

    fast = fast_value_and_deriv(entry.name, predicted, target, kwargs)
    if fast is not None:
        return fast
    return entry.value(predicted, target, **kwargs), entry.deriv(predicted, target, **kwargs)


def _torch_of(*xs: Any) -> Any:
    """The torch module when one of ``xs`` is a tensor (torch already imported), else None."""
    torch = sys.modules.get("torch")
    if torch is None or not any(isinstance(x, torch.Tensor) for x in xs):
        return None
    return torch


def _all_have_data(torch: Any, *xs: Any) -> bool:
    from torchlean.contexts.torch_support import has_data

    return all(has_data(x) for x in xs if isinstance(x, torch.Tensor))


def _tracked(torch: Any, predicted: Any, target: Any) -> bool:
    """Whether autograd or a ``torch.func`` transform sees these inputs."""
    wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    for x in (predicted, target):
        if not isinstance(x, torch.Tensor):
            continue
        if (x.requires_grad and torch.is_grad_enabled()) or (wrapped is not None and wrapped(x)):
            return True
    return False
