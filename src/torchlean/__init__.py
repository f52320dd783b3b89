"""torchlean: loss functions and their derivatives, defined once and run over many semantics.

The package's losses are declared in :mod:`torchlean.spec.layers.loss`; users declare theirs the
same way, with :func:`define_loss` (docs/custom-losses.md). :data:`LOSSES` lists every declared
loss by name, and :func:`value_and_deriv` evaluates one by name.
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
from torchlean.per_sample import grad_hess
from torchlean.registry import LOSSES, LossEntry, get_loss, value_and_deriv
from torchlean.spec.core.declaration import (
    Domain,
    LossDeclaration,
    Param,
    Seam,
    Zone,
    define_loss,
)

__version__ = "0.1.0"

__all__ = [
    "LOSSES",
    "BackendError",
    "DTypeError",
    "Domain",
    "DomainError",
    "LossDeclaration",
    "LossEntry",
    "Param",
    "ParameterError",
    "Seam",
    "ShapeError",
    "TorchleanError",
    "UnsupportedOperationError",
    "Zone",
    "__version__",
    "define_loss",
    "get_loss",
    "grad_hess",
    "value_and_deriv",
]
