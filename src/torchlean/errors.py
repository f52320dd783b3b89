"""The package's own exceptions.

Every error names the argument, what was expected and what came. Each class derives from the
built-in exception a caller would catch for that kind of mistake, so ``except ValueError`` still
works.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "DTypeError",
    "DomainError",
    "ParameterError",
    "ShapeError",
    "TorchleanError",
    "UnsupportedOperationError",
]


class TorchleanError(Exception):
    """Base class of every exception raised by torchlean."""


class ShapeError(TorchleanError, ValueError):
    """Two tensors that must have one shape do not, or a tensor has the wrong rank."""


class ParameterError(TorchleanError, ValueError):
    """A hyper-parameter (``delta``, ``epsilon``, ...) is outside its documented range."""


class DomainError(TorchleanError, ValueError):
    """Input data outside the loss's documented domain (BCE targets outside [0, 1], ...)."""


class DTypeError(TorchleanError, TypeError):
    """An array of a dtype the loss does not accept (integer predictions, complex, ...)."""


class BackendError(TorchleanError, TypeError):
    """Inputs from different array libraries or devices, or an object no context accepts."""


class UnsupportedOperationError(TorchleanError, TypeError):
    """A semantics cannot compute a function (``exp`` over exact rationals, ...)."""


def fmt_shape(shape: tuple[int, ...]) -> str:
    """Render a shape the way NumPy prints it: ``(2, 3)``, ``(4,)``, ``()``."""
    return str(tuple(shape))
