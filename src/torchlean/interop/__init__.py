"""Bridges from the loss specs to other frameworks.

- :mod:`torchlean.interop.torch`: ``torch.nn`` criteria whose backward is the derivative spec
  (``SpecLoss`` and one module per loss family). Needs PyTorch (``pip install 'torchlean[torch]'``).

Importing this package loads nothing heavy; the names of :mod:`torchlean.interop.torch` are
also reachable here (``from torchlean.interop import MSELoss``), which imports PyTorch on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_TORCH_NAMES = frozenset({
    "BCELoss",
    "CosineSimilarityLoss",
    "CrossEntropyLogitsLoss",
    "CrossEntropyLoss",
    "HingeLoss",
    "HuberLoss",
    "LogCoshLoss",
    "MAELoss",
    "MSELoss",
    "PoissonLoss",
    "SpecLoss",
    "spec_loss",
})


def __getattr__(name: str) -> Any:
    if name in _TORCH_NAMES:
        return getattr(importlib.import_module("torchlean.interop.torch"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _TORCH_NAMES)
