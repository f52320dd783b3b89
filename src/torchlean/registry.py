"""The registry: every declared loss by name (:mod:`torchlean.spec.core.declaration`), which the
tests, the certifier, the command line and the benchmarks all loop over, and
:func:`value_and_deriv`, the fused entry point."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from torchlean.errors import ParameterError
from torchlean.spec.core.declaration import REGISTRY, LossDeclaration, set_value_and_deriv
from torchlean.spec.layers import boosting as _boosting_losses  # noqa: F401  (declares them)
from torchlean.spec.layers import divergences as _divergences  # noqa: F401  (declares them)
from torchlean.spec.layers import loss as _package_losses  # noqa: F401  (declares them)

__all__ = ["LOSSES", "LossEntry", "get_loss", "package_losses", "value_and_deriv"]


#: The row type of :data:`LOSSES` (every loss is a declaration).
LossEntry = LossDeclaration

#: Every loss by name: the package's and those users declared (a read-only view that follows
#: each new declaration).
LOSSES: Mapping[str, LossDeclaration] = REGISTRY


def package_losses() -> list[LossDeclaration]:
    """The package's own declarations (not users'), in the order they are declared."""
    return [d for d in LOSSES.values() if d.origin == "torchlean"]


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
    if type(predicted) is np.ndarray and type(target) is np.ndarray:
        plan = _plan(name, params)
        if plan is not None:
            out = plan(predicted, target)
            if out is not None:
                return out
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


#: per (loss, keyword parameters): the fast NumPy plan (kernels.numpy_path.Plan) of the first
#: call, with the declaration it was made for, or None where no fast path applies
_PLANS: dict[tuple[Any, ...], tuple[Any, Any]] = {}


def _plan(name: str, params: dict[str, Any]) -> Any:
    """The cached plan of ``value_and_deriv(name, ..., **params)`` on NumPy arrays, made on
    first use (the parameters are checked then, once); None where none applies (unhashable
    or context parameters, no kernel, no numba), and the ordinary path decides."""
    try:
        # the types too: True == 1 == 1.0 as keys, but a validator may refuse one of them
        key = (name, *((k, type(v), v) for k, v in sorted(params.items()))) if params else name
        hit = _PLANS.get(key)
    except TypeError:
        return None
    entry = LOSSES.get(name) if isinstance(name, str) else None
    if hit is not None and hit[0] is entry:
        return hit[1]
    if entry is None or params.get("ctx") is not None:
        return None
    from torchlean.kernels import _kernels, enabled

    if not enabled() or not _kernels():
        return None  # decided again on a later call: kernels may come back on
    from torchlean.kernels.kernel import resolve
    from torchlean.kernels.numpy_path import Plan

    kwargs = entry.bind_params(params)
    kern = resolve(entry)
    plan = None if kern is None else Plan(entry, kern, kwargs)
    _PLANS[key] = (entry, plan)
    return plan


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


def _declared_value_and_deriv(decl: LossDeclaration, predicted: Any, target: Any,
                              params: dict[str, Any]) -> tuple[Any, Any]:
    return value_and_deriv(decl.name, predicted, target, **params)


set_value_and_deriv(_declared_value_and_deriv)
