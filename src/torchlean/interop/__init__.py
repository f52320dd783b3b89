"""Bridges from the loss specs to other frameworks.

- :mod:`torchlean.interop.torch`: ``torch.nn`` criteria whose backward is the derivative spec:
  ``criterion(name, **params)`` for any loss of :data:`torchlean.LOSSES` (``SpecLoss``), and one
  class per loss of the package, generated from its declaration (``MSELoss``, ``HuberLoss``, ...;
  the naming rule is in :mod:`torchlean.interop.criterion_names`). Needs PyTorch
  (``pip install 'torchlean[torch]'``).
- :mod:`torchlean.interop.xgboost`, :mod:`~torchlean.interop.lightgbm`,
  :mod:`~torchlean.interop.catboost`: gradient-boosting objectives from the declarations, per
  sample through :func:`torchlean.grad_hess`, in each library's convention
  (``docs/gradient-boosting.md``; ``pip install 'torchlean[boosting]'``).

Importing this package loads nothing heavy; the names of :mod:`torchlean.interop.torch` are
also reachable here (``from torchlean.interop import MSELoss``), which imports PyTorch on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from torchlean.interop.criterion_names import FIXED_NAMES, criterion_names


def torch_names() -> frozenset[str]:
    """The public names of :mod:`torchlean.interop.torch` (its ``__all__``), without importing
    PyTorch."""
    return frozenset(FIXED_NAMES) | frozenset(criterion_names())


def __getattr__(name: str) -> Any:
    if name in torch_names():
        return getattr(importlib.import_module("torchlean.interop.torch"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | torch_names())
