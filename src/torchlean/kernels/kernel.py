"""What a declaration's ``kernel`` field names, and how the fast paths find it.

A declaration holds its fused kernel as a lazy reference, the string ``"module:attribute"``
(``"torchlean.kernels.terms:mse"``), so that declaring a loss imports neither numba nor torch;
:func:`resolve` imports the module on the first fast call. The attribute (or an object given
directly) is one of:

- :class:`Elementwise`, made by the :func:`elementwise` decorator from a scalar **term**
  ``term(p, t, n, *params) -> (value_term, derivative_element)``: ``p`` and ``t`` are one
  element each as float64, ``n`` the reduction's denominator (``max(size, 1)`` for a mean, 1
  for a sum), ``params`` the loss's parameters in declaration order (checked by their
  validators). The term returns the element's value term (the kernel sums them and divides by
  ``n`` once) and its derivative element already divided by ``n`` (so a term can keep a form
  that must divide first: ``d / (0.5 * n)``). One generic loop skeleton
  (:mod:`torchlean.kernels.skeleton`) is compiled from the term: writing the term is all a new
  elementwise kernel takes. The term is compiled by numba (``inline="always"``) inside the
  skeleton, so it may call only what numba compiles (:mod:`torchlean.kernels.vmath`,
  :mod:`torchlean.kernels.scalar`, ``math``).
  A kernel may add a **single** term of the same signature, compiled into its own copy of the
  skeleton and run instead of ``term`` when ``predicted`` and ``target`` are float32: a cheaper
  float64 form (fewer divisions and transcendental calls, exact shortcuts that hold for
  float32 operands) whose results round to float32 as the spec's do; the tests hold it to the
  same 1-ulp bound.
- :class:`Special`, a slice or whole loss's own kernel (``run`` lays out the arrays and calls
  its compiled functions).

Either may carry ``torch``, the fused PyTorch op (``"module:attribute"`` or a function
``op(p, t, n, *params) -> (value, derivative) | None`` on float64 tensors), used for tensors the
numba kernels cannot read (CUDA, ...), and the accuracy the tests hold the kernel to against the
spec (``deriv_ulps``, ``scales``; see ``docs/performance.md``).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from torchlean.errors import ParameterError

__all__ = ["Elementwise", "Special", "elementwise", "resolve", "torch_op"]

#: ``scales(p, t, params) -> (derivative scale | None, value scale | None)`` in float64: the
#: magnitudes the tested bounds are relative to where the result cancels (None: the result's)
Scales = Callable[[np.ndarray, np.ndarray, Mapping[str, Any]],
                  tuple[np.ndarray | None, float | None]]
Result = tuple[Any, Any] | None


@dataclass(frozen=True, eq=False)
class Elementwise:
    """An elementwise loss's fused kernel, built from its scalar term (see the module
    docstring). ``heavy``: the term calls transcendental functions, so the thread pool pays off
    on smaller inputs."""

    term: Callable[..., tuple[float, float]]
    heavy: bool = False
    torch: str | Callable[..., Result] | None = None
    #: float64 derivative bound, in ulps of the element (or of ``scales``'s magnitude)
    deriv_ulps: int = 2
    scales: Scales | None = None
    #: the all-float32 term (see the module docstring), or None: ``term`` serves float32 too
    single: Callable[..., tuple[float, float]] | None = None
    #: the float64 copy may contract multiply-adds (see :mod:`.skeleton`): ``term`` decides
    #: nothing on a rounded product, so a fused one changes its results by ulps only
    contract: bool = False

    def run(self, decl: Any, p: np.ndarray, t: np.ndarray, params: tuple[float, ...],
            check: bool, parallel: bool) -> Result:
        """``(value, derivative)`` in float64 / ``p``'s dtype, or None (the spec decides)."""
        from torchlean.kernels import numpy_path

        return numpy_path.elementwise(self, decl, p, t, params, check, parallel)


@dataclass(frozen=True, eq=False)
class Special:
    """A slice or whole loss's own kernel: ``numpy(p, t, params, check, parallel)`` (or its
    ``"module:attribute"``) returns ``(value, derivative)`` or None."""

    numpy: str | Callable[..., Result]
    heavy: bool = False
    torch: str | Callable[..., Result] | None = None
    deriv_ulps: int = 2
    scales: Scales | None = None

    def run(self, decl: Any, p: np.ndarray, t: np.ndarray, params: tuple[float, ...],
            check: bool, parallel: bool) -> Result:
        return _load(self.numpy)(p, t, params, check, parallel)


Kernel = Elementwise | Special


def elementwise(*, heavy: bool = False, torch: str | Callable[..., Result] | None = None,
                deriv_ulps: int = 2, scales: Scales | None = None,
                single: Callable[..., Any] | None = None, contract: bool = False,
                ) -> Callable[[Callable[..., Any]], Elementwise]:
    """Decorate a scalar term: the result is the :class:`Elementwise` kernel a declaration
    names (``kernel="mymodule:my_term"``); ``single``, the optional all-float32 term;
    ``contract``, fused multiply-adds in the float64 copy too."""

    def wrap(term: Callable[..., Any]) -> Elementwise:
        return Elementwise(term, heavy=heavy, torch=torch, deriv_ulps=deriv_ulps, scales=scales,
                           single=single, contract=contract)

    return wrap


_LOADED: dict[str, Any] = {}
_LOCK = threading.Lock()


def _load(ref: Any, field: str = "kernel") -> Any:
    """The object a ``"module:attribute"`` reference names (imported once); anything else as
    it is. ``field`` names the declaration's field in the error for a malformed reference."""
    if not isinstance(ref, str):
        return ref
    obj = _LOADED.get(ref)
    if obj is None:
        module, sep, attr = ref.partition(":")
        if not sep or not module or not attr:
            raise ParameterError(
                f"`{field}` must be a 'module:attribute' reference; got {ref!r}")
        obj = getattr(importlib.import_module(module), attr)
        with _LOCK:
            _LOADED[ref] = obj
    return obj


def resolve(decl: Any) -> Kernel | None:
    """The fused kernel of a declaration, or None when it declares none (the spec runs)."""
    if decl is None or decl.kernel is None:
        return None
    kern = _load(decl.kernel)
    if not isinstance(kern, Elementwise | Special):
        raise ParameterError(
            f"the kernel of the {decl.name} loss must be an Elementwise or Special kernel of "
            f"torchlean.kernels.kernel; got {type(kern).__name__}"
        )
    return kern


def torch_op(kern: Kernel | None) -> Callable[..., Result] | None:
    """The kernel's fused PyTorch op, or None."""
    return None if kern is None or kern.torch is None else _load(kern.torch)
