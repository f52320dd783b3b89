"""torchlean: loss functions and their derivatives, defined once and run over many semantics.

The definitions live in :mod:`torchlean.spec.layers.loss`; :data:`LOSSES` lists them with their
parameters, and :func:`value_and_deriv` evaluates one by name.
"""

from __future__ import annotations

from torchlean.errors import (
    BackendError,
    DomainError,
    DTypeError,
    ParameterError,
    ShapeError,
    TorchleanError,
    UnsupportedOperationError,
)
from torchlean.registry import LOSSES, LossEntry, get_loss, value_and_deriv

__version__ = "0.1.0"

__all__ = [
    "LOSSES",
    "BackendError",
    "DTypeError",
    "DomainError",
    "LossEntry",
    "ParameterError",
    "ShapeError",
    "TorchleanError",
    "UnsupportedOperationError",
    "__version__",
    "get_loss",
    "value_and_deriv",
]
