"""The Array API semantics: NumPy, PyTorch, Dask, CuPy, JAX and array-api-strict arrays.

One implementation of the Context protocol through ``array_api_compat``, so it only makes calls
of the Array API standard (the test suite runs it on array-api-strict to keep it honest).

Precision: inputs of a narrower floating dtype (float16, bfloat16, float32) are evaluated in
float64 and rounded once to the input's dtype at the end, so cancellations inside a formula
(``exp(x) - y``, ``softmax * mass - t``) cost nothing in the result. Where the library or device
has no float64 (JAX without x64, PyTorch on MPS) the input's own dtype is used. Wider inputs
(NumPy's ``longdouble``) are evaluated in float64 as well: the result has their dtype, with float64
accuracy. Results come back in the library, dtype and device of ``predicted``.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import array_api_compat as aac
import numpy as np

from torchlean.contexts.domain_errors import raise_domain_error
from torchlean.contexts.torch_support import fixed_order_sum, has_data
from torchlean.errors import BackendError, DTypeError, ShapeError

__all__ = ["CONTEXT", "ArrayContext"]


def _is_array(x: Any) -> bool:
    return bool(aac.is_array_api_obj(x)) and not isinstance(x, np.generic)


def _as_array(x: Any, like: Any, name: str) -> Any:
    """Arrays pass through; Python numbers and (nested) sequences become arrays of ``like``'s
    library (NumPy when ``like`` is not an array); anything else is refused."""
    if isinstance(x, np.ma.MaskedArray | np.matrix):
        # NumPy's sum skips masked elements while the mean's denominator counts them all, and
        # `*` of two matrices is a matrix product: either would give a silently wrong loss.
        kind = "a masked array" if isinstance(x, np.ma.MaskedArray) else "an np.matrix"
        hint = ("pass the elements that count, e.g. `x.compressed()` for an elementwise loss, "
                "or `x.filled(value)`" if isinstance(x, np.ma.MaskedArray)
                else "pass `np.asarray(x)`")
        raise BackendError(f"`{name}` must be a plain array; got {kind} ({hint})")
    if _is_array(x):
        if aac.is_dask_array(x) and any(s != s for s in x.shape):
            # An unknown chunk size would make the shape check and the mean's n meaningless.
            raise ShapeError(
                f"`{name}` must have known chunk sizes; got shape {_fmt_lazy(x.shape)} (call "
                f"`{name}.compute_chunk_sizes()` first)"
            )
        return x
    if isinstance(x, np.generic):
        return np.asarray(x)
    if isinstance(x, int | float | bool | list | tuple):
        try:
            if _is_array(like):
                xp = aac.array_namespace(like)
                # Through NumPy, so Python floats stay float64: the library's default float may
                # be float32 (PyTorch), which would round the values before any check sees them.
                return xp.asarray(np.asarray(x), device=aac.device(like))
            return np.asarray(x)
        except (ValueError, TypeError, RuntimeError, OverflowError, NotImplementedError) as exc:
            # (PyTorch raises RuntimeError for elements it cannot convert, such as None.)
            raise ShapeError(f"`{name}` must be a rectangular sequence of numbers; got {x!r}"
                             ) from exc
    raise BackendError(
        f"`{name}` must be an array (NumPy, PyTorch, Dask, ... or a torchlean context tensor) "
        f"or a sequence of numbers; got {type(x).__name__}"
    )


def _fmt_lazy(shape: tuple[Any, ...]) -> str:
    return "(" + ", ".join("?" if s != s else str(s) for s in shape) + ("," if len(shape) == 1
                                                                      else "") + ")"


def _dtype_name(x: Any) -> str:
    return str(getattr(x, "dtype", type(x).__name__)).removeprefix("torch.")


class ArrayContext:
    """Context over any Array API namespace; one bound instance per call."""

    name = "arrays"

    def __init__(self, xp: Any = None, work_dtype: Any = None, out_dtype: Any = None,
                 device: Any = None) -> None:
        self.xp = xp
        self.work_dtype = work_dtype
        self.out_dtype = out_dtype
        self.device = device

    # -- entry and exit -------------------------------------------------------------------------
    def bind(self, predicted: Any, target: Any,
             names: tuple[str, str] = ("predicted", "target")) -> tuple[ArrayContext, Any, Any]:
        p = _as_array(predicted, target, names[0])
        t = _as_array(target, p, names[1])
        try:
            xp = aac.array_namespace(p, t)
        except TypeError as exc:
            raise BackendError(
                f"`{names[0]}` and `{names[1]}` must come from one array library; got "
                f"{type(p).__module__}.{type(p).__name__} and "
                f"{type(t).__module__}.{type(t).__name__}"
            ) from exc
        if not _isdtype(xp, p, "real floating"):
            raise DTypeError(
                f"`{names[0]}` must have a real floating-point dtype; got {_dtype_name(p)}"
            )
        if not (_isdtype(xp, t, "real floating") or _isdtype(xp, t, "integral")
                or _isdtype(xp, t, "bool")):
            raise DTypeError(
                f"`{names[1]}` must have a real floating-point, integer or bool dtype (promoted "
                f"to the dtype of `{names[0]}`); got {_dtype_name(t)}"
            )
        dev_p, dev_t = aac.device(p), aac.device(t)
        if _is_jax_tracer(p) or _is_jax_tracer(t):
            # A JAX tracer has no device of its own (under grad or a custom rule one argument
            # may be traced and the other concrete): the computation is placed by JAX.
            dev_p = dev_t if dev_p is None else dev_p
        elif dev_p != dev_t:
            raise BackendError(
                f"`{names[1]}` must be on the device of `{names[0]}` ({dev_p}); got {dev_t}"
            )
        if (aac.is_dask_array(p) and aac.is_dask_array(t) and p.shape == t.shape
                and p.chunks != t.chunks):
            # Results keep the chunks of `predicted` (dask would otherwise mix both chunkings).
            t = t.rechunk(p.chunks)
        work = _work_dtype(xp, p)
        ctx = ArrayContext(xp, work, p.dtype, dev_p)
        return ctx, xp.astype(p, work, copy=False), xp.astype(t, work, copy=False)

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        # IEEE specials (inf, nan) are values here, not events: branches that `where` discards
        # may overflow or divide by zero, and NumPy must not warn about them.
        # (array-api-strict and Dask run NumPy underneath; the state costs nothing elsewhere.)
        return np.errstate(all="ignore")

    def finish_value(self, value: Any) -> Any:
        out = self.xp.astype(value, self.out_dtype, copy=False)
        if type(out) is np.ndarray and out.ndim == 0:
            # A loss value on NumPy is a NumPy scalar (immutable, np.isscalar), whichever
            # operation formed it: np.sum gives one, np.where a 0-d array.
            return out[()]
        return out

    def finish_deriv(self, deriv: Any) -> Any:
        return self.xp.astype(deriv, self.out_dtype, copy=False)

    # -- numbers and shapes ---------------------------------------------------------------------
    def const(self, value: float) -> float:
        return float(value)

    def shape(self, x: Any) -> tuple[int, ...]:
        return tuple(x.shape)

    def _arr(self, v: Any) -> Any:
        if _is_array(v):
            return v
        return self.xp.asarray(v, dtype=self.work_dtype, device=self.device)

    # -- branches -------------------------------------------------------------------------------
    def lt(self, a: Any, b: Any) -> Any:
        return self._arr(a) < b

    def le(self, a: Any, b: Any) -> Any:
        return self._arr(a) <= b

    def logical_and(self, a: Any, b: Any) -> Any:
        return self.xp.logical_and(a, b)

    def isnan(self, x: Any) -> Any:
        return self.xp.isnan(x)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return self.xp.where(cond, self._arr(a), self._arr(b))

    def maximum(self, a: Any, b: Any) -> Any:
        return self.xp.maximum(self._arr(a), self._arr(b))

    def minimum(self, a: Any, b: Any) -> Any:
        return self.xp.minimum(self._arr(a), self._arr(b))

    # -- functions ------------------------------------------------------------------------------
    def abs(self, x: Any) -> Any:
        return self.xp.abs(x)

    def sign(self, x: Any) -> Any:
        return self.xp.sign(x)

    def exp(self, x: Any) -> Any:
        return self.xp.exp(x)

    def expm1(self, x: Any) -> Any:
        return self.xp.expm1(x)

    def log(self, x: Any) -> Any:
        return self.xp.log(x)

    def log1p(self, x: Any) -> Any:
        return self.xp.log1p(x)

    def sqrt(self, x: Any) -> Any:
        return self.xp.sqrt(x)

    def tanh(self, x: Any) -> Any:
        return self.xp.tanh(x)

    # -- reductions -----------------------------------------------------------------------------
    def sum(self, x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
        if aac.is_torch_array(x) and x.device.type == "cpu":
            # torch.sum's order follows its thread count: same inputs, other bits
            return fixed_order_sum(x, axis, keepdims)
        return self.xp.sum(x, axis=axis, keepdims=keepdims)

    def norm(self, x: Any) -> Any:
        xp = self.xp
        if _size(x) == 0:
            return xp.asarray(0.0, dtype=self.work_dtype, device=self.device)
        # Scale by the largest magnitude so squares cannot overflow or underflow.
        s = xp.max(xp.abs(x))
        ok = xp.logical_and(s > 0, xp.isfinite(s))
        s_safe = xp.where(ok, s, self._arr(1.0))
        scaled = x / s_safe
        # 0, inf and nan maxima are their own norms.
        return xp.where(ok, s_safe * xp.sqrt(self.sum(scaled * scaled)), s)

    def sum_exp_m1(self, x: Any, axis: int) -> Any:
        xp = self.xp
        e = xp.exp(x)
        neg = x < 0
        zero = self._arr(0.0)
        # After the max shift the entries >= 0 are exact zeros, each contributing exactly 1:
        # summing them apart keeps the small terms from being absorbed into 1 and cancelled.
        below = self.sum(xp.where(neg, e, zero), axis=axis, keepdims=True)
        rest = self.sum(xp.where(neg, zero, e), axis=axis, keepdims=True)
        return below + (rest - 1)

    def exp_shift(self, x: Any, axis: int) -> Any:
        xp = self.xp
        if x.shape[axis] == 0:
            # Empty slices have no maximum (xp.max raises); any constant does.
            shape = list(x.shape)
            shape[axis] = 1
            return xp.zeros(tuple(shape), dtype=self.work_dtype, device=self.device)
        m = xp.max(x, axis=axis, keepdims=True)
        # An infinite slice maximum would turn finite entries into nan; any finite shift keeps
        # the value, so fall back to 0 there.
        return xp.where(xp.isfinite(m), m, self._arr(0.0))

    # -- domain checks --------------------------------------------------------------------------
    def check_range(self, x: Any, *, name: str, lo: float | None, hi: float | None,
                    what: str) -> Any:
        if aac.is_dask_array(x):
            # Stay lazy: each chunk is checked when it is computed.
            return x.map_blocks(_check_block, name=False, dtype=x.dtype,
                                **{"_arg": name, "_lo": lo, "_hi": hi, "_what": what})
        if aac.is_torch_array(x) and not has_data(x):
            return x  # a meta or fake tensor: shapes only, no values to check
        if aac.is_jax_array(x) and not _is_jax_tracer(x):
            # Concrete values, checked on the host: inside a jit trace (a concrete array
            # closed over) even the comparisons would be traced.
            _check_block(np.asarray(x), name, lo, hi, what)
            return x
        xp = self.xp
        bad = xp.zeros(x.shape, dtype=xp.bool, device=self.device)
        if lo is not None:
            bad = xp.logical_or(bad, x < lo)
        if hi is not None:
            bad = xp.logical_or(bad, x > hi)
        if _is_jax_tracer(x):
            # Under jit, vmap or grad the values are unknown until run and nothing can raise:
            # an element outside the domain becomes NaN, which every term carries to its
            # result (NaN in gives NaN out) rather than a finite value of a meaningless input.
            return xp.where(bad, xp.asarray(float("nan"), dtype=x.dtype), x)
        if _size(x) and bool(xp.any(bad)):
            raise_domain_error(_on_host(x), name, lo, hi, what)
        return x


def _on_host(x: Any) -> np.ndarray | None:
    """A NumPy copy of ``x`` for an error message, where one is cheap to get."""
    if aac.is_numpy_array(x):
        return np.asarray(x, dtype=np.float64)
    if aac.is_torch_array(x):
        return x.detach().cpu().double().numpy()
    return None


def _is_jax_tracer(x: Any) -> bool:
    """Whether ``x`` is a JAX tracer (an abstract value under jit, vmap, grad, ...)."""
    jax = sys.modules.get("jax")
    return jax is not None and isinstance(x, jax.core.Tracer)


def _size(x: Any) -> int:
    n = 1
    for s in x.shape:
        n *= int(s)
    return n


def _check_block(block: np.ndarray, _arg: str, _lo: float | None, _hi: float | None,
                 _what: str, block_info: Any = None) -> np.ndarray:
    bad = np.zeros(block.shape, dtype=bool)
    if _lo is not None:
        bad |= block < _lo
    if _hi is not None:
        bad |= block > _hi
    if bad.any():
        # Where the chunk starts, so the message names the index in the whole array.
        start = tuple(a for a, _ in block_info[0]["array-location"]) if block_info else None
        raise_domain_error(np.asarray(block, dtype=np.float64), _arg, _lo, _hi, _what, start)
    return block


def _isdtype(xp: Any, x: Any, kind: str) -> bool:
    try:
        return bool(xp.isdtype(x.dtype, kind))
    except (TypeError, ValueError):
        return False


def _work_dtype(xp: Any, p: Any) -> Any:
    f64 = getattr(xp, "float64", None)
    if f64 is None:
        return p.dtype
    if aac.is_jax_array(p):
        import jax

        if not jax.config.read("jax_enable_x64"):
            return p.dtype
    if aac.is_torch_array(p) and p.device.type == "mps":
        return p.dtype
    return f64


CONTEXT = ArrayContext()
