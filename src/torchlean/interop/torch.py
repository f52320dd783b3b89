"""PyTorch criteria whose backward is the derivative spec.

``loss = crit(predicted, target); loss.backward()`` works as with any ``torch.nn`` criterion,
but the forward value is the loss spec of :mod:`torchlean.spec.layers.loss` and the gradient is
its derivative spec, not autograd's differentiation of some PyTorch expression. The two differ
exactly where it matters: at kinks (the spec's stated subgradient), where a clamp is active
(the derivative of the clamped value is 0), and in accuracy (float32 inputs are evaluated in
float64 and rounded once).

Every criterion computes ``mean`` (or, for cosine similarity, one value of the whole tensor) as
the spec defines it; there is no ``reduction=`` argument.

Behaviour, decided once for every criterion:

- **Forward**: ``torchlean.value_and_deriv(name, predicted, target, **params)`` on detached
  tensors gives the value and the derivative together; the derivative is kept for backward.
- **Backward**: ``grad_output * derivative``, in the dtype and on the device of ``predicted``.
- **Target**: no gradient flows to ``target``. A ``target`` that requires grad while grad mode
  is on raises :class:`~torchlean.errors.UnsupportedOperationError` (silently dropping a
  gradient PyTorch's own criteria would give is worse than an error); pass ``target.detach()``
  to treat it as a constant.
- **Double backward** (``create_graph=True``): the backward recomputes the derivative spec on
  the tensors with autograd tracking, so it is differentiable. The second derivative is
  autograd's derivative of the derivative spec: the true one where the derivative is smooth
  (mse, huber off ``|d| = delta``, log_cosh, poisson, cross_entropy_logits, cosine_similarity,
  and cross_entropy / binary_cross_entropy inside the clamp) and the almost-everywhere one
  elsewhere: ``sign`` and branch selection count as constant, so mae and hinge give 0, and
  cross_entropy / binary_cross_entropy give 0 where the clamp is active. At the exact points
  where an unselected branch of the derivative is infinite (a probability of exactly 0 or 1,
  a zero ``predicted`` in cosine_similarity) that second derivative may be NaN.
- **Dtypes**: float32 and float64 as they are; float16 and bfloat16 are evaluated in float64 by
  the arrays context and rounded once to the input's dtype (the backward product
  ``grad_output * derivative`` is then one more rounding in that dtype, exact when
  ``grad_output`` is 1). Integer ``predicted`` raises :class:`~torchlean.errors.DTypeError`;
  integer or bool targets are promoted.
- **Devices**: results stay on the device of ``predicted``; a ``target`` on another device
  raises :class:`~torchlean.errors.BackendError`.
"""

from __future__ import annotations

from typing import Any

try:
    import torch
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "torchlean.interop.torch needs PyTorch; install it with "
        "`pip install 'torchlean[torch]'` (pin a CPU build with torch==2.13.0 if you like)"
    ) from exc

import numpy as np

from torchlean.errors import BackendError, ParameterError, UnsupportedOperationError
from torchlean.registry import get_loss, value_and_deriv
from torchlean.spec.layers.loss import EPSILON

__all__ = [
    "BCELoss",
    "CosineSimilarityLoss",
    "CrossEntropyLogitsLoss",
    "CrossEntropyLoss",
    "HingeLoss",
    "HuberLoss",
    "LogCoshLoss",
    "MAELoss",
    "MSELoss",
    "PoissonLoss",
    "SpecLoss",
    "spec_loss",
]


class _SpecFunction(torch.autograd.Function):
    """Forward: the spec value. Backward: ``grad_output * derivative spec`` for ``predicted``."""

    @staticmethod
    def forward(ctx: Any, predicted: torch.Tensor, target: torch.Tensor, name: str,
                params: dict[str, Any]) -> torch.Tensor:
        value, deriv = value_and_deriv(name, predicted.detach(), target.detach(), **params)
        ctx.save_for_backward(predicted, target, deriv)
        ctx.loss_name, ctx.params = name, params
        return value

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, None, None,
                                                                None]:
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        predicted, target, deriv = ctx.saved_tensors
        if torch.is_grad_enabled():
            # create_graph=True: the saved derivative carries no graph, so evaluate the
            # derivative spec again on the tracked tensor; its torch ops are differentiable.
            deriv = get_loss(ctx.loss_name).call_deriv(predicted, target, **ctx.params)
        return grad_output * deriv, None, None, None


def _bind(name: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The registry name and checked keyword parameters of a criterion."""
    entry = get_loss(name)
    if "ctx" in params:
        raise ParameterError(
            "`ctx` is not a parameter of a torch criterion: it always evaluates the arrays "
            "semantics on the given tensors"
        )
    return entry.name, entry.bind_params(params)


def _apply(name: str, params: dict[str, Any], predicted: Any, target: Any) -> torch.Tensor:
    for arg, x in (("predicted", predicted), ("target", target)):
        if not isinstance(x, torch.Tensor):
            raise BackendError(f"`{arg}` must be a torch.Tensor; got {type(x).__name__}")
    if target.requires_grad and torch.is_grad_enabled():
        raise UnsupportedOperationError(
            f"`target` must not require grad: the {name} criterion differentiates only with "
            "respect to `predicted` (its derivative spec); got a target with requires_grad=True "
            "(pass target.detach() to treat it as a constant)"
        )
    return _SpecFunction.apply(predicted, target, name, params)


def spec_loss(name: str, predicted: torch.Tensor, target: torch.Tensor, /,
              **params: Any) -> torch.Tensor:
    """The loss ``name`` of :data:`torchlean.LOSSES` as a differentiable torch function.

    Returns the spec value (0-d, dtype and device of ``predicted``); its backward is
    ``grad_output * derivative spec`` (see the module docstring for target gradients, double
    backward, dtypes and devices). ``params`` are the loss's keyword parameters (``delta``,
    ``epsilon``, ``check_domain``).
    """
    name, params = _bind(name, params)
    return _apply(name, params, predicted, target)


# One element in every loss's domain: evaluating it checks parameter values with the spec's own
# checks when a criterion is built, rather than at its first call.
_PROBE = np.full((1,), 0.5)


class SpecLoss(nn.Module):
    """Criterion for any loss of :data:`torchlean.LOSSES`: ``SpecLoss("huber", delta=0.5)``.

    ``forward(predicted, target)`` returns the spec value; ``backward`` applies the derivative
    spec. Unknown names or parameters, and parameter values outside their range, raise
    :class:`~torchlean.errors.ParameterError` here, not at the first call.
    """

    def __init__(self, name: str, /, **params: Any) -> None:
        super().__init__()
        self.loss_name, self.params = _bind(name, params)
        get_loss(self.loss_name).call_value(_PROBE, _PROBE, **self.params)

    def forward(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return _apply(self.loss_name, self.params, predicted, target)

    def extra_repr(self) -> str:
        items = [f"{k}={v!r}" for k, v in self.params.items()]
        if type(self) is SpecLoss:
            items.insert(0, repr(self.loss_name))
        return ", ".join(items)


class MSELoss(SpecLoss):
    """Mean squared error, ``sum(d**2) / n``; gradient ``2 d / n``. ``nn.MSELoss`` agrees."""

    def __init__(self) -> None:
        super().__init__("mse")


class MAELoss(SpecLoss):
    """Mean absolute error, ``sum(|d|) / n``; gradient ``sign(d) / n`` (0 at ``d = 0``).
    ``nn.L1Loss`` agrees."""

    def __init__(self) -> None:
        super().__init__("mae")


class HuberLoss(SpecLoss):
    """Huber / SmoothL1 with threshold ``delta``: ``nn.SmoothL1Loss(beta=delta)``
    (``nn.HuberLoss(delta=delta)`` is ``delta`` times this)."""

    def __init__(self, delta: float = 1.0) -> None:
        super().__init__("huber", delta=delta)


class CrossEntropyLoss(SpecLoss):
    """Cross-entropy on PROBABILITIES (not logits, unlike ``nn.CrossEntropyLoss``):
    ``-sum(t * log(clamp(p, eps, 1 - eps))) / n`` over all elements; gradient 0 where the
    clamp is active."""

    def __init__(self, epsilon: float = EPSILON) -> None:
        super().__init__("cross_entropy", epsilon=epsilon)


class CrossEntropyLogitsLoss(SpecLoss):
    """Cross-entropy on logits, softmax over the LAST axis, divided by ALL elements:
    ``nn.CrossEntropyLoss(reduction="sum")`` on ``movedim(-1, 1)`` inputs, over ``numel``."""

    def __init__(self) -> None:
        super().__init__("cross_entropy_logits")


class HingeLoss(SpecLoss):
    """Hinge, ``sum(max(0, 1 - t * x)) / n``; gradient ``-t / n`` inside the margin, 0 at it."""

    def __init__(self) -> None:
        super().__init__("hinge")


class PoissonLoss(SpecLoss):
    """Poisson NLL on log-rates, ``sum(exp(x) - t * x) / n``:
    ``nn.PoissonNLLLoss(log_input=True, full=False)``. Negative counts raise unless
    ``check_domain=False``."""

    def __init__(self, check_domain: bool = True) -> None:
        super().__init__("poisson", check_domain=check_domain)


class CosineSimilarityLoss(SpecLoss):
    """``1 - cos(p, t)`` with the WHOLE tensor as one vector and each norm clamped at
    ``epsilon``; the gradient is the derivative of the clamped value."""

    def __init__(self, epsilon: float = EPSILON) -> None:
        super().__init__("cosine_similarity", epsilon=epsilon)


class LogCoshLoss(SpecLoss):
    """Log-cosh, ``sum(log(cosh(d))) / n`` without overflow; gradient ``tanh(d) / n``."""

    def __init__(self) -> None:
        super().__init__("log_cosh")


class BCELoss(SpecLoss):
    """Binary cross-entropy on probabilities clamped to ``[epsilon, 1 - epsilon]``; gradient
    0 where the clamp is active. ``nn.BCELoss`` agrees inside the clamp. Targets outside [0, 1]
    raise unless ``check_domain=False``."""

    def __init__(self, epsilon: float = EPSILON, check_domain: bool = True) -> None:
        super().__init__("binary_cross_entropy", epsilon=epsilon, check_domain=check_domain)
