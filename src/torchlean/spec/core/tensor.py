"""Shape checks, the mean denominator and the two reductions of the seed (``to_scalar_spec``,
``mean_over``), plus the checks of the losses' hyper-parameters."""

from __future__ import annotations

import math
import numbers
import reprlib
from typing import Any

import numpy as np

from torchlean.errors import ParameterError, ShapeError, fmt_shape
from torchlean.spec.core.context import Context, resolve_context

__all__ = [
    "check_delta",
    "check_epsilon",
    "check_same_shape",
    "mean_denominator",
    "mean_over",
    "to_scalar_spec",
]


def check_same_shape(ctx: Context, predicted: Any, target: Any,
                     names: tuple[str, str] = ("predicted", "target")) -> tuple[int, ...]:
    """Require equal shapes (no broadcasting, as TorchLean's ``map2Spec``); return the shape."""
    ps, ts = tuple(ctx.shape(predicted)), tuple(ctx.shape(target))
    if ps != ts:
        raise ShapeError(
            f"`{names[1]}` must have the shape of `{names[0]}` {fmt_shape(ps)} "
            f"(no broadcasting); got {fmt_shape(ts)}"
        )
    return ps


def mean_denominator(shape: tuple[int, ...]) -> int:
    """``max(size, 1)``, the totalized mean denominator: an empty tensor averages to 0."""
    return max(math.prod(shape), 1)


def mean_over(x: Any, shape: tuple[int, ...], /) -> Any:
    """Mean of a scalar that came from summing a tensor of ``shape``: ``x / max(size, 1)``."""
    return x / mean_denominator(tuple(shape))


def to_scalar_spec(x: Any, /, *, ctx: Context | Any = None) -> Any:
    """Sum of all elements, as a 0-d result of the input's library and dtype (0 when empty)."""
    c, t, _ = resolve_context(ctx, x, x, ("x", "x"))
    with c.scope():
        return c.finish_value(c.sum(t))


def is_real_number(v: Any) -> bool:
    """A real number of Python or NumPy (``bool`` excluded)."""
    # numbers.Real admits NumPy scalars (np.float32(1.0)); bool is refused on purpose.
    return isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_)


_SHORT = reprlib.Repr()  # huge exact numbers print abridged in messages
_SHORT.maxlong, _SHORT.maxother = 40, 60


def _as_float(v: Any, name: str, expected: str) -> float:
    """``v`` as the float64 every semantics computes with; a value beyond the float64 range is
    refused rather than rounded to inf (or raising Python's own OverflowError)."""
    try:
        return float(v)
    except OverflowError:
        raise ParameterError(
            f"`{name}` must be {expected}; got {_SHORT.repr(v)}, beyond the float64 range"
        ) from None


def check_delta(delta: Any) -> float:
    """Huber's ``delta`` must be a finite real number >= 0 (0 gives the MAE).

    The number given is checked, and so is its float64 rounding, which every semantics uses:
    an exact ``delta`` too large for a float is refused, never rounded to inf.
    """
    expected = "a finite number >= 0"
    if not is_real_number(delta) or delta != delta or delta < 0:
        raise ParameterError(f"`delta` must be {expected}; got {_SHORT.repr(delta)}")
    value = _as_float(delta, "delta", expected)
    if not math.isfinite(value):
        raise ParameterError(f"`delta` must be {expected}; got {_SHORT.repr(delta)}")
    return value


def check_epsilon(epsilon: Any) -> float:
    """``epsilon`` must be a real number in the open interval (0, 0.5).

    The number given is checked, and so is its float64 rounding, which every semantics uses: an
    exact ``epsilon`` that rounds to 0 or to 0.5 (``Fraction(1, 10**400)``,
    ``Fraction(1, 2) - Fraction(1, 10**30)``) is refused rather than silently changed.
    """
    expected = "a number in (0, 0.5)"
    if not is_real_number(epsilon) or not (0 < epsilon < 0.5):
        raise ParameterError(f"`epsilon` must be {expected}; got {_SHORT.repr(epsilon)}")
    value = _as_float(epsilon, "epsilon", expected)
    if not 0 < value < 0.5:
        raise ParameterError(
            f"`epsilon` must be {expected} after rounding to float64; got {_SHORT.repr(epsilon)}, "
            f"which rounds to {value!r}"
        )
    return value
