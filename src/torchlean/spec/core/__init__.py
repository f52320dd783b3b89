"""The core of the spec layer: the Context protocol and tensor helpers."""

from torchlean.spec.core.context import Context, resolve_context
from torchlean.spec.core.tensor import (
    check_delta,
    check_epsilon,
    check_same_shape,
    mean_denominator,
    mean_over,
    to_scalar_spec,
)

__all__ = [
    "Context",
    "check_delta",
    "check_epsilon",
    "check_same_shape",
    "mean_denominator",
    "mean_over",
    "resolve_context",
    "to_scalar_spec",
]
