"""The semantics a loss can run over, one module each.

- :mod:`~torchlean.contexts.arrays`: NumPy, PyTorch, Dask, JAX, CuPy, array-api-strict arrays.
- ``exact`` (sympy), ``rational`` (fractions), ``precise`` (mpmath), ``interval`` (arb balls),
  ``binary32`` (bit-reproducible IEEE single precision): tensors made by each module's
  ``tensor(...)``.

:func:`infer_context` picks the semantics from the inputs; the heavy modules are imported only
when their kind of input appears.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from torchlean.errors import BackendError

__all__ = ["infer_context"]

# Type module prefix of an element -> the context module that owns it.
_ELEMENT_OWNERS = (
    ("sympy", "exact"),
    ("fractions", "rational"),
    ("mpmath", "precise"),
    ("flint", "interval"),
)


def _owner(x: Any) -> str | None:
    marker = getattr(type(x), "__torchlean_context__", None)
    if isinstance(marker, str):
        return marker
    if isinstance(x, np.ndarray):
        if x.dtype != object:
            return None
        if x.size == 0:
            return "?"
        x = x.flat[0]
    if isinstance(x, bool | int | float | np.generic):
        return None
    module = type(x).__module__ or ""
    for prefix, owner in _ELEMENT_OWNERS:
        if module == prefix or module.startswith(prefix + "."):
            return owner
    return None


def infer_context(predicted: Any, target: Any) -> Any:
    """The context for a pair of inputs: the first context tensor's own, else the arrays one."""
    owners = [_owner(predicted), _owner(target)]
    known = [o for o in owners if o not in (None, "?")]
    if known:
        return importlib.import_module(f"torchlean.contexts.{known[0]}").CONTEXT
    if "?" in owners:
        raise BackendError(
            "cannot infer the semantics of an empty object array; pass `ctx=` "
            "(for example ctx=torchlean.contexts.exact)"
        )
    from torchlean.contexts.arrays import CONTEXT

    return CONTEXT
