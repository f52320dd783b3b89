"""What a declaration's ``grad_hess_kernel`` field names: the fused per-sample kernel of
:func:`torchlean.grad_hess`.

Like ``kernel``, the field is a lazy ``"module:attribute"`` reference
(``"torchlean.kernels.grad_hess_terms:logistic"``), resolved on the first fast call, so that
declaring a loss imports no numba. The attribute is one of:

- :class:`PerSample`, made by :func:`per_sample` from a scalar **term**
  ``term(p, t, *params) -> (gradient, hessian)`` of one sample (``p``, ``t`` one element each
  as float64, ``params`` the loss's parameters in declaration order, already checked by their
  validators): the unreduced, unweighted derivative and second derivative of that sample's
  loss. One loop (:mod:`torchlean.kernels.grad_hess_skeleton`) is compiled around it; it
  multiplies both by the sample's weight, stores them, and counts targets outside the checked
  domain and negative weights. The term is inlined by numba, so it may call only what numba
  compiles (:mod:`torchlean.kernels.vmath`, :mod:`torchlean.kernels.scalar`, ``math``).
  A kernel may add a **single** term of the same signature, run instead of ``term`` when
  predicted, target and weights are all float32: a cheaper form whose float64 result is as
  close to the true one wherever the float32 rounding of it (times a float32 weight) can tell
  (a narrower exponent range, say); the tests hold it to the same bound.
- :class:`PerRow`, a slice loss's kernel: a **row term** ``row(z, t, w, g, h)`` that fills
  the gradients ``g`` and Hessian diagonals ``h`` of a block of samples (2-D, rows of the
  output dtype: it computes each element in float64, multiplies by its row's weight ``w[r]``
  and rounds once) from their scores ``z`` and targets ``t`` (rows of the input dtypes); one
  loop over blocks is compiled around it the same way.

Both carry the accuracy the tests hold them to against the declaration's terms: ulps of the
output dtype in float64 (float32 results round a float64 result once: 1 ulp), relative to the
result itself or, where a result cancels, to the magnitude ``scales`` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from torchlean.errors import ParameterError

__all__ = ["PerRow", "PerSample", "per_sample", "resolve"]

#: ``scales(p, t, params) -> (gradient scale | None, hessian scale | None)`` in float64: the
#: magnitudes the float64 bounds are relative to where a result cancels (None: the result's)
Scales = Callable[[np.ndarray, np.ndarray, Mapping[str, Any]],
                  tuple[np.ndarray | None, np.ndarray | None]]


@dataclass(frozen=True, eq=False)
class PerSample:
    """An elementwise loss's per-sample kernel (see the module docstring). ``heavy``: the term
    calls transcendental functions, so the thread pool pays off on smaller inputs."""

    term: Callable[..., tuple[float, float]]
    heavy: bool = False
    grad_ulps: int = 2
    hess_ulps: int = 2
    scales: Scales | None = None
    single: Callable[..., tuple[float, float]] | None = None


@dataclass(frozen=True, eq=False)
class PerRow:
    """A slice loss's per-sample kernel: ``row(z, t, w, g, h)`` fills a block of rows (see the
    module docstring)."""

    row: Callable[..., None]
    heavy: bool = True
    grad_ulps: int = 2
    hess_ulps: int = 2
    scales: Scales | None = None


GradHessKernel = PerSample | PerRow


def per_sample(*, heavy: bool = False, grad_ulps: int = 2, hess_ulps: int = 2,
               scales: Scales | None = None, single: Callable[..., Any] | None = None,
               ) -> Callable[[Callable[..., Any]], PerSample]:
    """Decorate a scalar term ``term(p, t, *params) -> (gradient, hessian)``: the result is the
    :class:`PerSample` kernel a declaration names (``grad_hess_kernel="mymodule:my_term"``);
    ``single``, the optional all-float32 term."""

    def wrap(term: Callable[..., Any]) -> PerSample:
        return PerSample(term, heavy=heavy, grad_ulps=grad_ulps, hess_ulps=hess_ulps,
                         scales=scales, single=single)

    return wrap


def resolve(decl: Any) -> GradHessKernel | None:
    """The per-sample kernel a declaration names, or None when it names none."""
    ref = getattr(decl, "grad_hess_kernel", None)
    if ref is None:
        return None
    from torchlean.kernels.kernel import _load

    kern = _load(ref, "grad_hess_kernel")
    if not isinstance(kern, PerSample | PerRow):
        raise ParameterError(
            f"the grad_hess_kernel of the {decl.name} loss must be a PerSample or PerRow kernel "
            f"of torchlean.kernels.grad_hess_kernel; got {type(kern).__name__}"
        )
    return kern
