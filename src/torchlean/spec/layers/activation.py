"""Softmax and log-softmax over the last axis (TorchLean's ``NN.Spec.Layers.Activation``).

Both subtract a per-slice shift before ``exp`` (the slice maximum for floats, so nothing
overflows: logits ``[1000, 0, -1000]`` give log-softmax ``[0, -1000, -2000]`` exactly). The real
value does not depend on the shift, so exact semantics may skip it.
"""

from __future__ import annotations

from typing import Any

from torchlean.spec.core.context import Context, resolve_context
from torchlean.spec.core.declaration import require_axis

__all__ = ["log_softmax", "log_softmax_spec", "softmax", "softmax_spec"]


def shifted(ctx: Context, x: Any) -> tuple[Any, Any]:
    """``(s, r)`` with ``s = x - shift`` and ``r = sum_last(exp(s)) - 1`` (keepdims).

    ``log_softmax = s - log1p(r)`` and ``softmax = exp(s) / (1 + r)``; forming ``r`` apart keeps
    a log-softmax near 0 (a confident prediction) accurate to the last bit.
    """
    s = x - ctx.exp_shift(x, -1)
    return s, ctx.sum_exp_m1(s, -1)


def log_softmax(ctx: Context, x: Any) -> Any:
    """``s - log(sum(exp(s)))`` over the last axis, ``s = x - shift``; on bound tensors."""
    s, r = shifted(ctx, x)
    return s - ctx.log1p(r)


def softmax(ctx: Context, x: Any) -> Any:
    """``exp(s) / sum(exp(s))`` over the last axis, ``s = x - shift``; on bound tensors."""
    s, r = shifted(ctx, x)
    return ctx.exp(s) / (1 + r)


def softmax_spec(x: Any, /, *, ctx: Context | Any = None) -> Any:
    """Softmax over the last axis: ``exp(x_i - m) / sum_j exp(x_j - m)``, ``m`` the slice max.

    PyTorch: ``torch.softmax(x, dim=-1)``.
    """
    c, z, _ = resolve_context(ctx, x, x, ("x", "x"))
    require_axis(c, z, "x")
    with c.scope():
        return c.finish_deriv(softmax(c, z))


def log_softmax_spec(x: Any, /, *, ctx: Context | Any = None) -> Any:
    """Log-softmax over the last axis: ``(x_i - m) - log(sum_j exp(x_j - m))``.

    PyTorch: ``torch.log_softmax(x, dim=-1)``.
    """
    c, z, _ = resolve_context(ctx, x, x, ("x", "x"))
    require_axis(c, z, "x")
    with c.scope():
        return c.finish_deriv(log_softmax(c, z))
