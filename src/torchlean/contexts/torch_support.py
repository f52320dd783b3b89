"""What the array semantics needs to know about PyTorch beyond the Array API.

:func:`has_data`: whether a tensor holds values (a meta or fake tensor does not).

:func:`fixed_order_sum`: sums of CPU tensors whose bits do not depend on PyTorch's thread count.

``torch.sum`` of a whole tensor (or along an axis into a single output) splits the elements
among the intra-op threads and adds the partial sums, so the bits change with
``torch.set_num_threads`` and with whatever else holds the pool. A reduction into many outputs is
computed one output per thread, each by the same loop, so :func:`fixed_order_sum` cuts the axis
into blocks of :data:`BLOCK` elements, sums each block into its own output, and repeats on the
block sums until at most :data:`BLOCK` remain, which one thread adds (PyTorch does not split
fewer than 32768 elements). The error stays that of a blocked pairwise sum.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BLOCK", "fixed_order_sum", "has_data"]

#: elements per block: one output of a reduction; fewer than PyTorch's 32768-element grain
BLOCK = 1024


def has_data(x: Any) -> bool:
    """False for tensors that carry shape and dtype but no values (the meta device, fake
    tensors of ``torch._subclasses``): nothing that reads values can run on them."""
    if x.is_meta:
        return False
    try:
        from torch._subclasses.fake_tensor import is_fake
    except ImportError:  # pragma: no cover - a torch without fake tensors
        return True
    return not is_fake(x)


def fixed_order_sum(x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
    """``torch.sum(x, axis, keepdims)`` in an order fixed by the shape alone."""
    import torch

    if axis is None:
        s = _last_axis_sum(x.reshape(1, -1))[0]
        return s.reshape((1,) * x.ndim) if keepdims else s
    ax = axis % x.ndim
    s = _last_axis_sum(torch.movedim(x, ax, -1))
    return s.unsqueeze(ax) if keepdims else s


def _last_axis_sum(x: Any) -> Any:
    import torch

    lead = tuple(x.shape[:-1])
    n = x.shape[-1]
    while n > BLOCK:
        k = n - n % BLOCK
        sums = x[..., :k].reshape(*lead, k // BLOCK, BLOCK).sum(-1)
        if k < n:
            sums = torch.cat([sums, x[..., k:].sum(-1, keepdim=True)], dim=-1)
        x, n = sums, sums.shape[-1]
    return x.sum(-1)
