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
- **Double backward** (``create_graph=True``): the gradient is the derivative of the forward
  with a backward of its own, the vector-Jacobian product of the derivative spec evaluated on
  the spec's torch ops, so it is differentiable. The second derivative is
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
  raises :class:`~torchlean.errors.BackendError`. Tensors without data (the meta device, fake
  tensors) skip the domain check of poisson and binary_cross_entropy, which reads values.
- **Layouts**: sparse, nested and other non-strided tensors raise
  :class:`~torchlean.errors.BackendError`.
- **torch.func**: ``grad``, ``vjp``, ``jacrev`` and ``vmap`` compose with the criteria and with
  each other (``grad`` of ``grad``, ``vmap`` of ``grad``, nested ``vmap``). ``vmap`` evaluates
  the loss one sample at a time (the fused paths read values, which a batched tensor cannot
  give). Forward mode (``jvp``, ``jacfwd``, ``torch.func.hessian``) is not supported: use
  ``jacrev(jacrev(f))`` or ``torch.autograd.functional.hessian``.
- :func:`torchlean.value_and_deriv` on tensors that autograd or ``torch.func`` tracks runs
  through the same function, so its value has this backward too.
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
from torchlean.kernels.torch_path import check_dense
from torchlean.registry import compute_value_and_deriv, get_loss
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
    """Outputs ``(value, derivative)``; backward is ``grad_value * derivative spec`` for
    ``predicted``. The derivative is an output (marked non-differentiable) so that the
    ``setup_context`` form, which ``torch.func`` needs, can save it for backward."""

    @staticmethod
    def forward(predicted: torch.Tensor, target: torch.Tensor, name: str,
                params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return compute_value_and_deriv(name, predicted.detach(), target.detach(), params)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...],
                      output: tuple[torch.Tensor, torch.Tensor]) -> None:
        predicted, target, name, params = inputs
        deriv = output[1]
        ctx.mark_non_differentiable(deriv)
        ctx.save_for_backward(predicted, target, deriv)
        ctx.loss_name, ctx.params = name, params

    @staticmethod
    def backward(ctx: Any, grad_value: torch.Tensor,
                 grad_deriv: torch.Tensor | None) -> tuple[torch.Tensor | None, None, None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        predicted, target, deriv = ctx.saved_tensors
        if torch.is_grad_enabled():
            # create_graph=True (and every torch.func.grad): the same derivative, now with a
            # backward of its own, so that the gradient is differentiable in turn
            deriv = _DerivFunction.apply(predicted, target, deriv, ctx.loss_name, ctx.params)
        return grad_value * deriv, None, None, None

    @staticmethod
    def vmap(info: Any, in_dims: tuple[int | None, ...], predicted: torch.Tensor,
             target: torch.Tensor, name: str,
             params: dict[str, Any]) -> tuple[tuple[torch.Tensor, torch.Tensor],
                                              tuple[int, int]]:
        # One loss per sample. The fused paths read values (a domain check, a norm), which a
        # batched tensor cannot give, so vmap's own rule would not do; applying the function
        # per slice keeps every outer transform (grad, an outer vmap) in the loop.
        p_dim, t_dim = in_dims[0], in_dims[1]
        values, derivs = [], []
        for i in range(info.batch_size):
            p = predicted if p_dim is None else predicted.select(p_dim, i)
            t = target if t_dim is None else target.select(t_dim, i)
            v, g = _SpecFunction.apply(p, t, name, params)
            values.append(v)
            derivs.append(g)
        if not values:
            shape = predicted.shape if p_dim is None else \
                predicted.shape[:p_dim] + predicted.shape[p_dim + 1:]
            empty = predicted.new_empty((0,))
            return (empty, predicted.new_empty((0, *shape))), (0, 0)
        return (torch.stack(values), torch.stack(derivs)), (0, 0)


def _deriv_spec(name: str, params: dict[str, Any], target: torch.Tensor) -> Any:
    """The derivative spec of ``name`` as a function of ``predicted`` alone."""
    entry = get_loss(name)
    if entry.has_domain_check:
        # the forward has checked the domain; the check reads values, which a tensor batched
        # by vmap cannot hand to Python
        params = {**params, "check_domain": False}
    return lambda p: entry.deriv(p, target, **params)


class _DerivFunction(torch.autograd.Function):
    """The derivative already computed by the forward, as a function of ``predicted``: its
    backward is the vector-Jacobian product of the derivative spec, which autograd evaluates on
    the spec's own torch ops. First derivatives thus never re-run the spec; second ones (and
    higher, the product being differentiable again) do."""

    generate_vmap_rule = True

    @staticmethod
    def forward(predicted: torch.Tensor, target: torch.Tensor, deriv: torch.Tensor, name: str,
                params: dict[str, Any]) -> torch.Tensor:
        return deriv.clone()

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        predicted, target, _, name, params = inputs
        ctx.save_for_backward(predicted, target)
        ctx.loss_name, ctx.params = name, params

    @staticmethod
    def backward(ctx: Any, grad_deriv: torch.Tensor) -> tuple[torch.Tensor | None, None, None,
                                                              None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        predicted, target = ctx.saved_tensors
        _, vjp = torch.func.vjp(_deriv_spec(ctx.loss_name, ctx.params, target), predicted)
        return vjp(grad_deriv)[0], None, None, None, None


def _bind(name: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The registry name and checked keyword parameters of a criterion."""
    entry = get_loss(name)
    if "ctx" in params:
        raise ParameterError(
            "`ctx` is not a parameter of a torch criterion: it always evaluates the arrays "
            "semantics on the given tensors"
        )
    return entry.name, entry.bind_params(params)


def _check_inputs(name: str, predicted: Any, target: Any) -> None:
    for arg, x in (("predicted", predicted), ("target", target)):
        if not isinstance(x, torch.Tensor):
            raise BackendError(f"`{arg}` must be a torch.Tensor; got {type(x).__name__}")
        check_dense(arg, x)
    if target.requires_grad and torch.is_grad_enabled():
        raise UnsupportedOperationError(
            f"`target` must not require grad: the {name} criterion differentiates only with "
            "respect to `predicted` (its derivative spec); got a target with requires_grad=True "
            "(pass target.detach() to treat it as a constant)"
        )


def _apply(name: str, params: dict[str, Any], predicted: Any, target: Any) -> torch.Tensor:
    _check_inputs(name, predicted, target)
    return _SpecFunction.apply(predicted, target, name, params)[0]


def tracked_value_and_deriv(name: str, params: dict[str, Any], predicted: Any,
                            target: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`torchlean.value_and_deriv` for tensors that autograd or a ``torch.func``
    transform tracks: the value's backward is the derivative spec, as for the criteria; the
    derivative is returned without a graph."""
    params = {k: v for k, v in params.items() if k != "ctx"}
    _check_inputs(name, predicted, target)
    value, deriv = _SpecFunction.apply(predicted, target, name, params)
    return value, deriv


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
