"""The shared base of the scalar-object semantics: ``exact``, ``rational``, ``precise``,
``interval``.

A tensor of these semantics is a NumPy object array whose elements are scalars of one number
type (sympy expressions, ``Fraction``, ``mpf``, arb balls). NumPy applies the Python operators
``+ - * /`` elementwise to object arrays, so the specs' arithmetic needs nothing from here; every
other method of the :class:`~torchlean.spec.core.context.Context` protocol is written once below
in terms of a few per-scalar hooks (``_lt1``, ``_exp1``, ``_sum1``, ...) that each semantics
defines. Nothing here, nor in any subclass, knows about a particular loss.

Scalars move between 0-d arrays and bare objects: NumPy returns a bare object from arithmetic
on 0-d object arrays, so every method accepts both, and also plain Python numbers (``0``, ``1``)
on either side of a comparison or branch.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import numpy as np

from torchlean.errors import BackendError, DomainError, DTypeError, ShapeError

__all__ = ["ObjectContext", "box0", "shortest_decimal"]


def box0(v: Any) -> np.ndarray:
    """A 0-d object array holding ``v`` (``np.asarray`` would look inside some objects)."""
    out = np.empty((), dtype=object)
    out[()] = v
    return out


def shortest_decimal(v: float | np.floating) -> Fraction:
    """The shortest decimal that reads back as ``v`` in its own precision, as a Fraction.

    ``0.1`` -> 1/10, ``1e-6`` -> 1/1000000; a NumPy float32 uses its own shortest digits, so
    ``np.float32(0.1)`` also reads as 1/10. ``v`` must be finite.
    """
    if isinstance(v, np.floating) and not isinstance(v, np.float64):
        text = np.format_float_scientific(v, unique=True)
    else:
        text = repr(float(v))
    return Fraction(text)


def _is_number_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) and x.dtype != object


class ObjectContext:
    """Context over NumPy object arrays of scalars; subclasses supply the per-scalar hooks.

    Hooks (one scalar, or a list of scalars, at a time): ``_from_int``, ``_from_float``,
    ``_from_fraction``, ``_from_other`` (input conversion); ``_lt1``, ``_le1``, ``_and1``,
    ``_isnan1``, ``_where1``, ``_max1``, ``_min1``; ``_abs1``, ``_sign1``, ``_exp1``,
    ``_expm1_1``, ``_log1``, ``_log1p1``, ``_sqrt1``, ``_tanh1``; ``_sum1``, ``_norm1``,
    ``_shift1``; ``_outside1`` (certain violation of a range).
    """

    name = "object"
    #: how the scalars are described in error messages
    kind = "scalars"
    #: the Python type of this semantics' scalars
    scalar_type: type | tuple[type, ...] = object

    # -- hooks: input conversion ----------------------------------------------------------------
    def _from_int(self, v: int) -> Any:
        raise NotImplementedError

    def _from_float(self, v: float | np.floating) -> Any:
        raise NotImplementedError

    def _from_fraction(self, v: Fraction) -> Any:
        raise NotImplementedError

    def _from_other(self, v: Any) -> Any:
        """Convert a scalar of another semantics, or return None when it is not one."""
        return None

    def _is_own(self, v: Any) -> bool:
        return isinstance(v, self.scalar_type)

    # -- hooks: per-scalar operations ----------------------------------------------------------
    def _lt1(self, a: Any, b: Any) -> Any:
        raise NotImplementedError

    def _le1(self, a: Any, b: Any) -> Any:
        raise NotImplementedError

    def _and1(self, a: Any, b: Any) -> Any:
        return bool(a) and bool(b)

    def _isnan1(self, x: Any) -> Any:
        raise NotImplementedError

    def _where1(self, c: Any, a: Any, b: Any) -> Any:
        return a if c else b

    def _max1(self, a: Any, b: Any) -> Any:
        raise NotImplementedError

    def _min1(self, a: Any, b: Any) -> Any:
        raise NotImplementedError

    def _abs1(self, x: Any) -> Any:
        return abs(x)

    def _sign1(self, x: Any) -> Any:
        raise NotImplementedError

    def _exp1(self, x: Any) -> Any:
        raise NotImplementedError

    def _expm1_1(self, x: Any) -> Any:
        raise NotImplementedError

    def _log1(self, x: Any) -> Any:
        raise NotImplementedError

    def _log1p1(self, x: Any) -> Any:
        raise NotImplementedError

    def _sqrt1(self, x: Any) -> Any:
        raise NotImplementedError

    def _tanh1(self, x: Any) -> Any:
        raise NotImplementedError

    def _sum1(self, xs: list[Any]) -> Any:
        total = self._from_int(0)
        for x in xs:
            total = total + x
        return total

    def _norm1(self, xs: list[Any]) -> Any:
        """``sqrt(sum(x * x))``."""
        return self._sqrt1(self._sum1([x * x for x in xs]))

    def _shift1(self, xs: list[Any]) -> Any:
        """The constant subtracted from one slice before ``exp`` (default 0)."""
        return self._from_int(0)

    def _outside1(self, x: Any, lo: Any, hi: Any) -> bool:
        """True only when ``x`` lies certainly outside ``[lo, hi]`` (None: unbounded)."""
        raise NotImplementedError

    # -- conversion -----------------------------------------------------------------------------
    def _scalar(self, v: Any, name: str = "value", index: tuple[int, ...] = ()) -> Any:
        """One input element as a scalar of this semantics, or a DTypeError naming it."""
        if self._is_own(v):
            return v
        try:
            return self._convert_scalar(v, name, index)
        except DomainError as exc:
            where = f" at index {index}" if index else ""
            raise DomainError(f"`{name}`{where}: {exc}") from None

    def _convert_scalar(self, v: Any, name: str, index: tuple[int, ...]) -> Any:
        if isinstance(v, bool | np.bool_):
            return self._from_int(int(v))
        if isinstance(v, int | np.integer):
            return self._from_int(int(v))
        if isinstance(v, float | np.floating):
            return self._from_float(v)
        if isinstance(v, Fraction):
            return self._from_fraction(v)
        other = self._from_other(v)
        if other is not None:
            return other
        where = f" at index {index}" if index else ""
        raise DTypeError(
            f"`{name}` must hold real numbers or {self.kind} for the {self.name} semantics; "
            f"got {type(v).__name__} {v!r}{where}"
        )

    def _convert(self, values: Any, name: str = "values") -> np.ndarray:
        """Any accepted input as an object array of this semantics' scalars (a new array)."""
        arr = _to_array(values, name)
        if arr.dtype != object and arr.dtype.kind not in "biuf":
            raise DTypeError(
                f"`{name}` must hold real numbers for the {self.name} semantics; got an array of "
                f"dtype {arr.dtype}"
            )
        out = np.empty(arr.shape, dtype=object)
        for idx in np.ndindex(arr.shape):
            out[idx] = self._scalar(arr[idx], name, idx)
        return out

    def _bound(self, predicted: Any, target: Any) -> ObjectContext:
        """The context that evaluates one call (self, unless the inputs carry settings)."""
        return self

    def _arr(self, x: Any) -> np.ndarray:
        """A bound tensor, bare scalar or Python number as an object array (no copy)."""
        if isinstance(x, np.ndarray) and x.dtype == object:
            return x
        if _is_number_array(x):
            return self._convert(x)
        if isinstance(x, bool | int | float | Fraction | np.number | np.bool_):
            return box0(self._scalar(x))
        return box0(x)

    def _cond(self, c: Any) -> np.ndarray:
        """A condition as an object array; booleans stay booleans."""
        if isinstance(c, np.ndarray):
            return c if c.dtype == object else c.astype(object)
        return box0(c)

    def _map(self, fn: Callable[..., Any], *args: np.ndarray) -> np.ndarray:
        """Apply a per-scalar hook elementwise, with broadcasting; always an object array."""
        out = np.frompyfunc(fn, len(args), 1)(*args)
        if isinstance(out, np.ndarray):
            return out if out.dtype == object else out.astype(object)
        return box0(out)

    def _final(self, v: Any) -> Any:
        """A result element as a scalar of this semantics (branches may carry Python ints)."""
        return v if self._is_own(v) else self._scalar(v)

    # -- entry and exit -------------------------------------------------------------------------
    def bind(self, predicted: Any, target: Any,
             names: tuple[str, str] = ("predicted", "target")) -> tuple[ObjectContext, Any, Any]:
        ctx = self._bound(predicted, target)
        with ctx._converting():
            return ctx, ctx._convert(predicted, names[0]), ctx._convert(target, names[1])

    def _converting(self) -> contextlib.AbstractContextManager[Any]:
        """Settings in force while inputs are converted (precision, for rounded semantics)."""
        return contextlib.nullcontext()

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def finish_value(self, value: Any) -> Any:
        arr = self._arr(value)
        if arr.size != 1:
            raise ShapeError(f"a loss value must be a single scalar; got shape {arr.shape}")
        return self._final(arr.reshape(-1)[0])

    def finish_deriv(self, deriv: Any) -> Any:
        return self._map(self._final, self._arr(deriv))

    # -- numbers and shapes ---------------------------------------------------------------------
    def const(self, value: float) -> Any:
        return self._scalar(value)

    def shape(self, x: Any) -> tuple[int, ...]:
        return tuple(x.shape) if isinstance(x, np.ndarray) else ()

    # -- branches -------------------------------------------------------------------------------
    def lt(self, a: Any, b: Any) -> np.ndarray:
        return self._map(self._lt1, self._arr(a), self._arr(b))

    def le(self, a: Any, b: Any) -> np.ndarray:
        return self._map(self._le1, self._arr(a), self._arr(b))

    def logical_and(self, a: Any, b: Any) -> np.ndarray:
        return self._map(self._and1, self._cond(a), self._cond(b))

    def isnan(self, x: Any) -> np.ndarray:
        return self._map(self._isnan1, self._arr(x))

    def where(self, cond: Any, a: Any, b: Any) -> np.ndarray:
        return self._map(self._where1, self._cond(cond), self._arr(a), self._arr(b))

    def maximum(self, a: Any, b: Any) -> np.ndarray:
        return self._map(self._max1, self._arr(a), self._arr(b))

    def minimum(self, a: Any, b: Any) -> np.ndarray:
        return self._map(self._min1, self._arr(a), self._arr(b))

    # -- functions ------------------------------------------------------------------------------
    def abs(self, x: Any) -> np.ndarray:
        return self._map(self._abs1, self._arr(x))

    def sign(self, x: Any) -> np.ndarray:
        return self._map(self._sign1, self._arr(x))

    def exp(self, x: Any) -> np.ndarray:
        return self._map(self._exp1, self._arr(x))

    def expm1(self, x: Any) -> np.ndarray:
        return self._map(self._expm1_1, self._arr(x))

    def log(self, x: Any) -> np.ndarray:
        return self._map(self._log1, self._arr(x))

    def log1p(self, x: Any) -> np.ndarray:
        return self._map(self._log1p1, self._arr(x))

    def sqrt(self, x: Any) -> np.ndarray:
        return self._map(self._sqrt1, self._arr(x))

    def tanh(self, x: Any) -> np.ndarray:
        return self._map(self._tanh1, self._arr(x))

    # -- reductions -----------------------------------------------------------------------------
    def sum(self, x: Any, axis: int | None = None, keepdims: bool = False) -> np.ndarray:
        return self._reduce(self._sum1, self._arr(x), axis, keepdims)

    def norm(self, x: Any) -> np.ndarray:
        return box0(self._norm1(list(self._arr(x).flat)))

    def sum_exp_m1(self, x: Any, axis: int) -> np.ndarray:
        return self.sum(self.exp(x), axis=axis, keepdims=True) - 1

    def exp_shift(self, x: Any, axis: int) -> np.ndarray:
        return self._reduce(self._shift1, self._arr(x), axis, True)

    def _reduce(self, fn: Callable[[list[Any]], Any], x: np.ndarray, axis: int | None,
                keepdims: bool) -> np.ndarray:
        """Apply ``fn`` to each slice along ``axis`` (all elements when None)."""
        if axis is None:
            out = box0(fn(list(x.flat)))
            return out.reshape((1,) * x.ndim) if keepdims else out
        if not -x.ndim <= axis < x.ndim:
            raise ShapeError(f"`axis` must lie in [{-x.ndim}, {x.ndim}) for shape {x.shape}; "
                             f"got {axis}")
        ax = axis % x.ndim
        moved = np.moveaxis(x, ax, -1)
        rows = moved.reshape(math.prod(moved.shape[:-1]), moved.shape[-1])
        out = np.empty(rows.shape[0], dtype=object)
        for i in range(rows.shape[0]):
            out[i] = fn(list(rows[i]))
        out = out.reshape(moved.shape[:-1])
        return np.expand_dims(out, ax) if keepdims else out

    # -- domain checks --------------------------------------------------------------------------
    def check_range(self, x: Any, *, name: str, lo: float | None, hi: float | None,
                    what: str) -> Any:
        arr = self._arr(x)
        lo_s = None if lo is None else self._scalar(lo)
        hi_s = None if hi is None else self._scalar(hi)
        for idx, v in _enumerate(arr):
            if self._outside1(v, lo_s, hi_s):
                rng = f"[{-math.inf if lo is None else lo:g}, {math.inf if hi is None else hi:g}]"
                raise DomainError(
                    f"`{name}` must lie in {rng} for {what}; got {v!r} at index {idx} "
                    "(pass check_domain=False to skip this check)"
                )
        return x


def _enumerate(arr: np.ndarray) -> Iterator[tuple[tuple[int, ...], Any]]:
    for idx in np.ndindex(arr.shape):
        yield idx, arr[idx]


def _to_array(values: Any, name: str) -> np.ndarray:
    """An input as a NumPy array, object or numeric; numeric arrays keep their element types."""
    if isinstance(values, np.ndarray):
        return values
    if isinstance(values, list | tuple):
        try:
            arr = np.asarray(values, dtype=object)
        except ValueError as exc:
            raise ShapeError(f"`{name}` must be a rectangular sequence of numbers; got {values!r}"
                             ) from exc
        # A nested sequence may hold 0-d arrays or ragged rows that NumPy left as objects.
        for idx in np.ndindex(arr.shape):
            el = arr[idx]
            if isinstance(el, np.ndarray) and el.ndim == 0:
                arr[idx] = el[()]
            elif isinstance(el, list | tuple | np.ndarray):
                raise ShapeError(f"`{name}` must be a rectangular sequence of numbers; got "
                                 f"{values!r}")
        return arr
    if hasattr(values, "__array__") and not isinstance(values, np.generic):
        try:
            return np.asarray(values)
        except Exception as exc:
            raise BackendError(
                f"`{name}` could not be read as a NumPy array ({type(values).__name__}: {exc})"
            ) from exc
    return box0(values)
