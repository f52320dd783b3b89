"""Fused ``value_and_deriv`` fast paths, each tested equal to the spec.

:func:`torchlean.value_and_deriv` asks :func:`fast_value_and_deriv` first; ``None`` means "no
fast path for these inputs" and the spec runs (and raises the spec's errors). Fast paths:

- NumPy float32/float64 arrays, with numba installed: :mod:`.numba_kernels` through
  :mod:`.numpy_path` (one parallel pass; cross-entropy on logits and cosine read twice).
- PyTorch CPU tensors, with numba installed: the same kernels on zero-copy NumPy views.
- Other PyTorch tensors (CUDA, ...), or CPU without numba: :mod:`.torch_fused`, fused tensor ops
  under ``torch.no_grad()``.

Results never carry an autograd graph (use ``torchlean.interop.torch`` for a differentiable
loss). The fast paths run only when no ``ctx`` is passed.

Switch: set the environment variable ``TORCHLEAN_KERNELS=0`` (read at import) or call
:func:`set_enabled` (``False`` makes every call run the spec; :func:`disabled` does so for a
``with`` block). ``TORCHLEAN_KERNELS=torch`` uses :mod:`.torch_fused` for CPU tensors too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["available", "disabled", "enabled", "fast_value_and_deriv", "set_enabled"]

_MODE = os.environ.get("TORCHLEAN_KERNELS", "1").strip().lower()
_ENABLED = _MODE not in ("0", "off", "false", "no")
_numba: Any = None  # the kernels module once imported; False when numba is missing


def set_enabled(flag: bool) -> None:
    """Turn every fast path on or off for this process."""
    global _ENABLED
    _ENABLED = bool(flag)


def enabled() -> bool:
    """Whether fast paths are on (they still need numba or torch to apply)."""
    return _ENABLED


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run the spec for every call inside the block."""
    before = _ENABLED
    set_enabled(False)
    try:
        yield
    finally:
        set_enabled(before)


def _kernels() -> Any:
    """The numba kernels module, imported on first use (numba's import costs ~0.2 s)."""
    global _numba
    if _numba is None:
        try:
            from torchlean.kernels import numba_kernels
        except ImportError:
            _numba = False
        else:
            _numba = numba_kernels
    return _numba


def available() -> bool:
    """Whether the numba kernels can run here."""
    return bool(_kernels())


def fast_value_and_deriv(name: str, predicted: Any, target: Any,
                         kwargs: dict[str, Any]) -> tuple[Any, Any] | None:
    """``(value, derivative)`` through a fast path, or None when none applies."""
    if not _ENABLED or kwargs.get("ctx") is not None:
        return None
    if type(predicted) is np.ndarray:
        if type(target) is not np.ndarray:
            return None
        k = _kernels()
        if not k:
            return None
        from torchlean.kernels.numpy_path import value_and_deriv

        return value_and_deriv(k, name, predicted, target, kwargs)
    if type(predicted).__module__ == "torch" and type(target) is type(predicted):
        from torchlean.kernels.torch_path import value_and_deriv as torch_value_and_deriv

        return torch_value_and_deriv(name, predicted, target, kwargs,
                                     _kernels() if _MODE != "torch" else False)
    return None
