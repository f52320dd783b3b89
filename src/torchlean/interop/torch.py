"""PyTorch criteria whose backward is the derivative spec.

``loss = crit(predicted, target); loss.backward()`` works as with any ``torch.nn`` criterion,
but the forward value is the loss's declared value (:mod:`torchlean.spec.layers.loss`, or a
user's :func:`torchlean.define_loss`) and the gradient is its declared derivative, not
autograd's differentiation of some PyTorch expression. The two differ
exactly where it matters: at kinks (the spec's stated subgradient), where a clamp is active
(the derivative of the clamped value is 0), and in accuracy (float32 inputs are evaluated in
float64 and rounded once).

``criterion(name, **params)`` gives the criterion of any loss of :data:`torchlean.LOSSES`, the
package's or a user's (:func:`torchlean.define_loss`); ``SpecLoss(name, **params)`` is the class
behind it. Each loss of the package also has a class generated from its declaration, named by
the rule of :mod:`torchlean.interop.criterion_names` (``MSELoss``, ``HuberLoss(delta=1.0)``,
``ProbabilityCrossEntropyLoss(epsilon=1e-6)``, ...); its constructor takes the declaration's
parameters, positionally in declaration order or by keyword. There is no ``CrossEntropyLoss``
here: the package's ``cross_entropy`` takes probabilities, unlike ``torch.nn.CrossEntropyLoss``.

Every criterion reduces as its declaration says (a mean over all elements, or one value of the
whole tensor for cosine similarity); there is no ``reduction=`` argument.

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

import inspect
from typing import Any

try:
    import torch
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "torchlean.interop.torch needs PyTorch; install it with "
        "`pip install 'torchlean[torch]'` (pin a CPU build with torch==2.13.0 if you like)"
    ) from exc

from torchlean.errors import BackendError, ParameterError, UnsupportedOperationError
from torchlean.interop.criterion_names import FIXED_NAMES, criterion_class_name
from torchlean.kernels.torch_path import check_dense
from torchlean.registry import compute_value_and_deriv, get_loss, package_losses
from torchlean.spec.core.declaration import LossDeclaration


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
    allowed = [*entry.parameters, *(["check_domain"] if entry.has_domain_check else [])]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        expected = f"one of {sorted(allowed)}" if allowed else "none (it takes no parameters)"
        raise ParameterError(
            f"`{unknown[0]}` is not a parameter of the {entry.name} loss; expected {expected}"
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


class SpecLoss(nn.Module):
    """Criterion for any loss of :data:`torchlean.LOSSES`: ``SpecLoss("huber", delta=0.5)``.

    ``forward(predicted, target)`` returns the spec value; ``backward`` applies the derivative
    spec. Unknown names or parameters, and parameter values their validators refuse, raise
    :class:`~torchlean.errors.ParameterError` here, not at the first call.
    """

    def __init__(self, name: str, /, **params: Any) -> None:
        super().__init__()
        self.loss_name, self.params = _bind(name, params)
        # the declaration's validators, now rather than at the first call
        decl = get_loss(self.loss_name)
        decl.checked_params({k: v for k, v in self.params.items() if k in decl.parameters})

    def forward(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return _apply(self.loss_name, self.params, predicted, target)

    def extra_repr(self) -> str:
        items = [f"{k}={v!r}" for k, v in self.params.items()]
        if type(self) is SpecLoss:
            items.insert(0, repr(self.loss_name))
        return ", ".join(items)


def criterion(name: str, /, **params: Any) -> SpecLoss:
    """The criterion of the loss ``name`` of :data:`torchlean.LOSSES`, the package's or one a
    user declared with :func:`torchlean.define_loss`: forward is the declaration's value,
    backward its derivative. ``params`` are the loss's keyword parameters (and
    ``check_domain`` where it checks a domain).

    A loss of the package gives an instance of its generated class (``criterion("huber",
    delta=0.5)`` is ``HuberLoss(delta=0.5)``); any other loss a :class:`SpecLoss`.
    """
    decl = get_loss(name)
    cls = _GENERATED.get(decl.name)
    return SpecLoss(decl.name, **params) if cls is None else cls(**params)


# --------------------------------------------------------------------------------------------
# One class per loss of the package, generated from its declaration
# --------------------------------------------------------------------------------------------

_KEYWORD = inspect.Parameter.POSITIONAL_OR_KEYWORD


def _class_doc(decl: LossDeclaration) -> str:
    lines = [f"The {decl.name} loss as a criterion, generated from its declaration "
             f"(``torchlean.LOSSES[{decl.name!r}]``).", ""]
    if decl.formula:
        lines.append(f"value: ``{decl.formula}``; gradient: ``{decl.derivative_text}``.")
    lines.append(f"Kinks: {decl.kink_text}. Inputs: {decl.domain.text}.")
    for key, p in decl.parameters.items():
        lines.append(f"``{key}`` (default {p.default!r}): {p.doc or 'a parameter'}.")
    if decl.has_domain_check:
        lines.append("``check_domain`` (default True): ``False`` skips the target's domain "
                     "check.")
    if decl.torch_text:
        lines.append(f"PyTorch: ``{decl.torch_text}`` (docs/ecosystem.md lists where they "
                     "differ).")
    return "\n".join(lines)


def _criterion_class(decl: LossDeclaration) -> type[SpecLoss]:
    """A :class:`SpecLoss` subclass for ``decl`` whose constructor takes the declaration's
    parameters (positionally in declaration order, or by keyword) with their defaults."""
    loss_name, cls_name = decl.name, criterion_class_name(decl)
    defaults = {k: p.default for k, p in decl.parameters.items()}
    if decl.has_domain_check:
        defaults["check_domain"] = True
    order = list(defaults)

    def __init__(self: SpecLoss, *args: Any, **params: Any) -> None:
        if len(args) > len(order):
            raise ParameterError(
                f"{cls_name} takes at most {len(order)} positional parameters "
                f"({', '.join(order) or 'none'}); got {len(args)}"
            )
        for key, value in zip(order, args, strict=False):
            if key in params:
                raise ParameterError(f"`{key}` of {cls_name} is given twice: by position "
                                     "and by keyword")
            params[key] = value
        SpecLoss.__init__(self, loss_name, **{**defaults, **params})

    __init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("self", _KEYWORD)]
        + [inspect.Parameter(k, _KEYWORD, default=v) for k, v in defaults.items()])
    __init__.__qualname__ = f"{cls_name}.__init__"
    cls = type(cls_name, (SpecLoss,), {
        "__init__": __init__, "__doc__": _class_doc(decl), "__module__": __name__,
        "__qualname__": cls_name, "loss_name": loss_name,
    })
    return cls


#: the generated classes, by loss name
_GENERATED: dict[str, type[SpecLoss]] = {d.name: _criterion_class(d) for d in package_losses()}
globals().update({cls.__name__: cls for cls in _GENERATED.values()})

__all__ = sorted([*FIXED_NAMES, *(c.__name__ for c in _GENERATED.values())])
