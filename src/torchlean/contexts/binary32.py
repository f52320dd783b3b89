"""The IEEE 754 binary32 semantics: every loss evaluated literally in single precision, with the
same bits on every machine.

Tensors are :class:`Binary32Array` (made by :func:`tensor`), or plain NumPy arrays passed with
``ctx=torchlean.contexts.binary32``. Every operation of the spec is one IEEE binary32 operation
rounded to nearest, ties to even, with no hidden extra precision:

- ``+ - * /`` and ``sqrt``: NumPy float32 arithmetic, correctly rounded by IEEE 754. Python
  ints (``2 * x``, ``1 - t * x``, ``x / n``) mix in as weak scalars (NEP 50): converted to
  binary32, then one binary32 operation. A binary64 value never enters (a check enforces it).
- ``exp, expm1, log, log1p, tanh``: correctly rounded (:mod:`.binary32_rounding`): the binary64
  library value, rounded once, with an mpmath fallback where it lies too close to a rounding
  boundary to be sure.
- ``sum``: the left fold ``(((x0 + x1) + x2) + ...)`` in binary32 along the axis (never pairwise,
  never BLAS); an empty sum is +0. ``norm``: ``sqrt`` of the left-fold sum of squares, literally,
  so it overflows to inf once the sum of squares passes ``3.4e38`` (``||x||`` above about
  ``1.8e19``), and squares of components below about ``1e-19`` are subnormal (below about
  ``2.6e-23``: zero).
- ``sum_exp_m1``: literally ``sum(exp(x)) - 1`` (left fold, then one subtraction).
- ``exp_shift``: the slice maximum (0 where it is infinite or NaN, or the slice is empty, as in
  the arrays semantics); ``where``, comparisons, ``maximum``/``minimum`` (NaN-propagating),
  ``abs``, ``sign``, ``isnan``: NumPy float32, exact.
- Constants (``epsilon``, ``delta``): the binary64 Python float rounded once to binary32.

Inputs: ``predicted`` must be floating (any width: it is rounded once to binary32, ties to
even); ``target`` may also be integer or bool. Results: a value is a NumPy ``float32`` scalar, a
derivative a :class:`Binary32Array`. Needs NumPy >= 2 (NEP 50 promotion) and mpmath for the
rare fallback; assumes the FPU's default IEEE mode (no flush-to-zero, no denormals-are-zero).
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from torchlean.contexts.binary32_rounding import correctly_rounded
from torchlean.contexts.domain_errors import raise_domain_error
from torchlean.errors import BackendError, DTypeError, ShapeError

__all__ = ["CONTEXT", "Binary32Array", "Binary32Context", "tensor"]

_F32 = np.dtype(np.float32)
_NUMPY_MAJOR = int(np.__version__.split(".")[0])


class Binary32Array(np.ndarray):
    """A float32 NumPy array that the loss functions evaluate in the binary32 semantics.

    Arithmetic on it is ordinary NumPy float32 arithmetic and keeps the class; a result of
    another dtype (a comparison, ``astype``, ``view(np.uint32)``) comes back as a plain ndarray.
    NumPy's own methods stay NumPy's (``x.sum()`` sums pairwise); the binary32 semantics is what
    the loss functions run.
    """

    __torchlean_context__ = "binary32"

    def __array_wrap__(self, obj: np.ndarray, context: Any = None,
                       return_scalar: bool = False) -> Any:
        if return_scalar and obj.ndim == 0:
            return obj[()]
        if obj.dtype != _F32:
            return obj.view(np.ndarray)
        return super().__array_wrap__(obj, context, return_scalar)

    def view(self, *args: Any, **kwargs: Any) -> Any:
        out = super().view(*args, **kwargs)
        if isinstance(out, Binary32Array) and out.dtype != _F32:
            return out.view(np.ndarray)
        return out

    def astype(self, *args: Any, **kwargs: Any) -> Any:
        out = super().astype(*args, **kwargs)
        if isinstance(out, Binary32Array) and out.dtype != _F32:
            return out.view(np.ndarray)
        return out


def tensor(values: Any) -> Binary32Array:
    """A new :class:`Binary32Array` of ``values`` (numbers, nested sequences or arrays).

    Each value is rounded once to binary32, to nearest, ties to even (Python floats are
    binary64 numbers, so a decimal literal is first rounded to binary64 by Python).
    """
    a = _numeric(values, "values", allow_int=True)
    with np.errstate(over="ignore"):  # beyond the binary32 range rounds to +-inf, by IEEE
        return np.array(a, dtype=np.float32, copy=True).view(Binary32Array)


def _numeric(x: Any, name: str, *, allow_int: bool) -> np.ndarray:
    """``x`` as a NumPy array of real numbers (floating, or also integer/bool if allowed)."""
    if isinstance(x, np.ndarray):
        a = x.view(np.ndarray)
    elif isinstance(x, np.generic | bool | int | float | list | tuple):
        try:
            a = np.asarray(x)
        except (ValueError, TypeError) as exc:
            raise ShapeError(f"`{name}` must be a rectangular sequence of numbers; got {x!r}"
                             ) from exc
    else:
        raise BackendError(
            f"`{name}` must be a NumPy array, a binary32 tensor or a sequence of numbers for the "
            f"binary32 semantics; got {type(x).__module__}.{type(x).__name__}"
        )
    kinds = "fiub" if allow_int else "f"
    if a.dtype.kind not in kinds:
        expected = ("a real floating-point, integer or bool dtype" if allow_int
                    else "a real floating-point dtype")
        raise DTypeError(f"`{name}` must have {expected}; got {a.dtype}")
    return a


def _check_f32(x: Any, what: str) -> Any:
    """Refuse an operand that is not binary32: it would widen the evaluation silently."""
    dtype = getattr(x, "dtype", None)
    if dtype is not None and dtype != _F32:
        raise DTypeError(
            f"binary32 semantics: `{what}` must be float32; got {dtype} (a wider operand would "
            "add precision the semantics does not have)"
        )
    return x


def _f32(v: Any) -> Any:
    """Python numbers become binary32 scalars; float32 arrays and scalars pass unchanged."""
    # np.float64 is a subclass of float: it must meet the dtype check, not be rounded quietly.
    if isinstance(v, bool | int | float) and not isinstance(v, np.generic):
        return np.float32(v)
    return _check_f32(v, "operand")


def _fold(x: np.ndarray, axis: int) -> np.ndarray:
    """The left fold ``(((x0 + x1) + x2) + ...)`` along ``axis`` (keepdims), in binary32.

    ``np.add.accumulate`` adds one element at a time (a running sum cannot be reordered),
    unlike ``np.add.reduce``, which sums pairwise.
    """
    if x.shape[axis] == 0:
        shape = list(x.shape)
        shape[axis] = 1
        return np.zeros(shape, dtype=np.float32)
    run = np.add.accumulate(x, axis=axis, dtype=np.float32)
    return np.take(run, [-1], axis=axis)


class Binary32Context:
    """Context of the binary32 semantics (stateless: ``bind`` returns the instance itself)."""

    name = "binary32"

    # -- entry and exit -------------------------------------------------------------------------
    def bind(self, predicted: Any, target: Any,
             names: tuple[str, str] = ("predicted", "target")) -> tuple[Binary32Context,
                                                                        np.ndarray, np.ndarray]:
        if _NUMPY_MAJOR < 2:
            raise BackendError(
                f"the binary32 semantics needs NumPy >= 2 (NEP 50: a Python number mixes into "
                f"float32 arithmetic without widening it); got NumPy {np.__version__}"
            )
        p = _numeric(predicted, names[0], allow_int=False)
        t = _numeric(target, names[1], allow_int=True)
        # astype rounds to nearest, ties to even (overflowing to +-inf); float32 inputs are used
        # as they are (read only: nothing here writes into an input).
        with np.errstate(over="ignore"):
            return self, p.astype(np.float32, copy=False), t.astype(np.float32, copy=False)

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        # inf and nan are values of the semantics, not events to warn about.
        return np.errstate(all="ignore")

    def finish_value(self, value: Any) -> np.float32:
        """The value as a NumPy ``float32`` scalar."""
        _check_f32(value, "value")
        return np.float32(np.asarray(value).reshape(()))

    def finish_deriv(self, deriv: Any) -> Binary32Array:
        """The derivative as a new :class:`Binary32Array`."""
        _check_f32(deriv, "derivative")
        return np.array(deriv, dtype=np.float32, copy=True).view(Binary32Array)

    # -- numbers and shapes ---------------------------------------------------------------------
    def const(self, value: float) -> np.float32:
        return np.float32(value)

    def shape(self, x: Any) -> tuple[int, ...]:
        return tuple(np.shape(x))

    # -- branches -------------------------------------------------------------------------------
    def lt(self, a: Any, b: Any) -> Any:
        return np.less(_f32(a), _f32(b))

    def le(self, a: Any, b: Any) -> Any:
        return np.less_equal(_f32(a), _f32(b))

    def logical_and(self, a: Any, b: Any) -> Any:
        return np.logical_and(a, b)

    def isnan(self, x: Any) -> Any:
        return np.isnan(_f32(x))

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return np.where(cond, _f32(a), _f32(b))

    def maximum(self, a: Any, b: Any) -> Any:
        return np.maximum(_f32(a), _f32(b))

    def minimum(self, a: Any, b: Any) -> Any:
        return np.minimum(_f32(a), _f32(b))

    # -- functions ------------------------------------------------------------------------------
    def abs(self, x: Any) -> Any:
        return np.abs(_f32(x))

    def sign(self, x: Any) -> Any:
        return np.sign(_f32(x))

    def sqrt(self, x: Any) -> Any:
        return np.sqrt(_f32(x))

    def _elementary(self, name: str, x: Any) -> Any:
        a = np.asarray(_f32(x))
        out = correctly_rounded(name, a)
        return out[()] if out.ndim == 0 else out

    def exp(self, x: Any) -> Any:
        return self._elementary("exp", x)

    def expm1(self, x: Any) -> Any:
        return self._elementary("expm1", x)

    def log(self, x: Any) -> Any:
        return self._elementary("log", x)

    def log1p(self, x: Any) -> Any:
        return self._elementary("log1p", x)

    def tanh(self, x: Any) -> Any:
        return self._elementary("tanh", x)

    # -- reductions -----------------------------------------------------------------------------
    def sum(self, x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
        a = np.asarray(_f32(x))
        if axis is None:
            total = _fold(a.reshape(-1), 0).reshape((1,) * a.ndim if keepdims else ())
            return total if keepdims else total[()]
        folded = _fold(a, axis)
        return folded if keepdims else np.squeeze(folded, axis=axis)

    def norm(self, x: Any) -> Any:
        a = np.asarray(_f32(x))
        return np.sqrt(self.sum(a * a))

    def sum_exp_m1(self, x: Any, axis: int) -> Any:
        # The literal IEEE evaluation: left-fold sum of the rounded exps, then one subtraction.
        return self.sum(self.exp(x), axis=axis, keepdims=True) - 1

    def exp_shift(self, x: Any, axis: int) -> Any:
        a = np.asarray(_f32(x))
        if a.shape[axis] == 0:
            shape = list(a.shape)
            shape[axis] = 1
            return np.zeros(shape, dtype=np.float32)
        m = np.max(a, axis=axis, keepdims=True)
        # An infinite (or NaN) maximum would turn finite entries into NaN; any finite shift
        # gives the same real value, so 0 stands in, as in the arrays semantics.
        return np.where(np.isfinite(m), m, np.float32(0))

    # -- domain checks --------------------------------------------------------------------------
    def check_range(self, x: Any, *, name: str, lo: float | None, hi: float | None,
                    what: str) -> Any:
        a = np.asarray(_f32(x))
        bad = np.zeros(a.shape, dtype=bool)
        if lo is not None:
            bad |= a < lo
        if hi is not None:
            bad |= a > hi
        if bad.any():
            raise_domain_error(a.astype(np.float64), name, lo, hi, what)
        return x


#: The context instance (``ctx=torchlean.contexts.binary32`` resolves to it).
CONTEXT = Binary32Context()
