"""The PyTorch fast path: validation, then the declared kernel on zero-copy NumPy views (CPU,
with numba) or its fused torch op (:mod:`.torch_fused`: other devices, or no numba).

Inputs the fast path does not take (mismatched shapes, devices or layouts, non-floating
``predicted``, complex targets, ...) return None, so the spec runs and raises its own error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from torchlean.errors import BackendError
from torchlean.kernels import numpy_path, torch_fused

__all__ = ["check_dense", "value_and_deriv"]

_NUMPY_OK = (torch.float32, torch.float64)


def check_dense(arg: str, x: torch.Tensor) -> None:
    """Refuse a sparse, nested or otherwise non-strided tensor before any op sees it: torch's
    own errors there name neither the argument nor what was expected."""
    if x.is_nested:
        kind = "nested"
    elif x.layout is not torch.strided:
        kind = str(x.layout).removeprefix("torch.").lstrip("_")
    else:
        return
    raise BackendError(f"`{arg}` must be a strided (dense) tensor; got a {kind} tensor")


def _as_numpy(x: torch.Tensor) -> np.ndarray | None:
    if x.is_conj() or x.is_neg():
        return None
    try:
        return x.detach().numpy()
    except (TypeError, RuntimeError):
        return None  # a dtype NumPy lacks (bfloat16, ...)


def value_and_deriv(decl: Any, kern: Any, p: torch.Tensor, t: torch.Tensor,
                    kwargs: dict[str, Any],
                    numba_ok: bool) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(value, derivative)`` tensors in ``p``'s dtype and device through the declaration's
    kernel ``kern``, or None."""
    if (p.layout is not torch.strided or t.layout is not torch.strided
            or not p.dtype.is_floating_point or t.dtype.is_complex
            or p.device != t.device or p.shape != t.shape):
        return None
    if numba_ok and p.device.type == "cpu" and p.dtype in _NUMPY_OK:
        pn, tn = _as_numpy(p), _as_numpy(t)
        if pn is not None and tn is not None:
            out = numpy_path.value_and_deriv(decl, kern, pn, tn, kwargs)
            if out is not None:
                v, g = out
                return torch.from_numpy(np.asarray(v)), torch.from_numpy(np.asarray(g))
    # also where the kernels defer (a domain error, a norm out of range): the fused ops defer
    # to the spec in turn exactly where it raises
    return torch_fused.run(decl, kern, p, t, kwargs)
