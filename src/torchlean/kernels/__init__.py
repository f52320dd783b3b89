"""Fused ``value_and_deriv`` fast paths, each tested equal to the spec.

:func:`torchlean.value_and_deriv` asks :func:`fast_value_and_deriv` first; ``None`` means "no
fast path for these inputs" and the spec runs (and raises the spec's errors). Fast paths:

- NumPy float32/float64 arrays, with numba installed: the loss's declared kernel (its
  ``kernel`` field, see :mod:`.kernel`) through :mod:`.numpy_path`: for an elementwise loss the
  one loop skeleton of :mod:`.skeleton` compiled around its term (one parallel pass), for
  cross-entropy on logits and cosine their own kernels in :mod:`.numba_kernels` (two passes).
- PyTorch CPU tensors, with numba installed: the same kernels on zero-copy NumPy views.
- Other PyTorch tensors (CUDA, ...), or CPU without numba: the kernel's fused torch op
  (:mod:`.torch_fused`: tensor ops under ``torch.no_grad()``).

A loss whose declaration names no kernel (users' losses, unless they declare one) runs the spec.

The fast paths compute without an autograd graph; :func:`torchlean.value_and_deriv` makes the
value differentiable (its backward is the derivative spec) when ``predicted`` requires grad or
under ``torch.func``, with the kernels on or off, and returns the derivative as a constant. The
fast paths run only when no ``ctx`` is passed.

Switch: set the environment variable ``TORCHLEAN_KERNELS=0`` (read at import) or call
:func:`set_enabled` (``False`` makes every call of the process run the spec); :func:`disabled`
runs the spec inside a ``with`` block, for the current thread (or asyncio task) only: the block
sets a :mod:`contextvars` variable, so blocks in other threads neither see it nor undo it.
``TORCHLEAN_KERNELS=torch`` uses :mod:`.torch_fused` for CPU tensors too.

Processes: the kernels' thread pool may be numba's GNU OpenMP layer, which a ``fork()``ed
child cannot enter once its parent has. So once a parallel kernel has run, a forked child (a
``multiprocessing`` worker under Linux's default start method, say) runs every kernel on its
calling thread: the same code compiled without the thread pool, with bit-identical results.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["available", "disabled", "enabled", "fast_value_and_deriv", "kernel_set",
           "set_enabled"]

_MODE = os.environ.get("TORCHLEAN_KERNELS", "1").strip().lower()
_ENABLED = _MODE not in ("0", "off", "false", "no")  # the process-wide default
# A `disabled()` block's override: per thread and per asyncio task, never process-wide.
_OVERRIDE: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    "torchlean_kernels", default=None)
_numba: Any = None  # the kernels module once imported; False when numba is missing
# Whether this process (or the parent it was forked from) has entered the kernels' thread pool,
# and whether it is a forked child of such a process, which must keep out of the pool.
_POOL_USED = False
_SERIAL_ONLY = False


def set_enabled(flag: bool) -> None:
    """Turn every fast path on or off for this process (a :func:`disabled` block still wins
    inside it)."""
    global _ENABLED
    _ENABLED = bool(flag)


def enabled() -> bool:
    """Whether fast paths are on here (they still need numba or torch to apply)."""
    override = _OVERRIDE.get()
    return _ENABLED if override is None else override


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run the spec for every call inside the block, in this thread (or task) only."""
    token = _OVERRIDE.set(False)
    try:
        yield
    finally:
        _OVERRIDE.reset(token)


def _after_fork_in_child() -> None:
    global _SERIAL_ONLY
    _SERIAL_ONLY = _SERIAL_ONLY or _POOL_USED


os.register_at_fork(after_in_child=_after_fork_in_child)


def kernel_set(k: Any, parallel: bool) -> Any:
    """Of ``k`` (the kernels module, or a kernel built from a term: anything with ``PARALLEL``
    and ``SERIAL``), the thread-pool kernels when ``parallel`` and this process may enter the
    pool, else their single-threaded twins (the same code, the same bits)."""
    global _POOL_USED
    if parallel and not _SERIAL_ONLY:
        _POOL_USED = True
        return k.PARALLEL
    return k.SERIAL


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
    """``(value, derivative)`` through a fast path, or None when none applies: the loss's
    declaration names no kernel, or the inputs are not for one."""
    if not enabled() or kwargs.get("ctx") is not None:
        return None
    is_numpy = type(predicted) is np.ndarray
    is_torch = type(predicted).__module__ == "torch" and type(target) is type(predicted)
    if not (is_numpy or is_torch):
        return None
    from torchlean.kernels.kernel import resolve
    from torchlean.spec.core.declaration import registered

    decl = registered(name)
    kern = resolve(decl)
    if kern is None:
        return None
    if is_numpy:
        if type(target) is not np.ndarray or not _kernels():
            return None
        from torchlean.kernels.numpy_path import value_and_deriv

        return value_and_deriv(decl, kern, predicted, target, kwargs)
    from torchlean.kernels.torch_path import value_and_deriv as torch_value_and_deriv

    return torch_value_and_deriv(decl, kern, predicted, target, kwargs,
                                 bool(_kernels()) and _MODE != "torch")


def fast_grad_hess(decl: Any, predicted: Any, target: Any, sample_weight: Any,
                   params: dict[str, Any], check_domain: bool) -> tuple[Any, Any] | None:
    """``(grad, hess)`` of :func:`torchlean.grad_hess` through a fast path, or None when none
    applies (the spec then runs).

    It applies to NumPy float32/float64 ``predicted`` (NumPy targets and weights) of a
    declaration naming a ``grad_hess_kernel`` (:mod:`.grad_hess_kernel`), with numba installed:
    one compiled pass (:mod:`.grad_hess_path`) that also checks the target's domain (when
    ``check_domain``) and the weights' signs, and hands anything the spec would refuse back to
    the spec, which raises its own error."""
    if not enabled() or getattr(decl, "grad_hess_kernel", None) is None:
        return None
    if type(predicted) is not np.ndarray or type(target) is not np.ndarray:
        return None
    if sample_weight is not None and type(sample_weight) is not np.ndarray:
        return None
    if not _kernels():
        return None
    from torchlean.kernels.grad_hess_kernel import resolve as resolve_grad_hess
    from torchlean.kernels.grad_hess_path import grad_hess

    kern = resolve_grad_hess(decl)
    if kern is None:
        return None
    return grad_hess(kern, decl, predicted, target, sample_weight, params, check_domain)
