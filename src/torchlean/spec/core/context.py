"""The Context protocol: the scalar interface every loss is written against.

This is the Python counterpart of TorchLean's ``Context α``. A loss in
:mod:`torchlean.spec.layers.loss` only ever uses the Python arithmetic operators (``+ - * /`` on
the context's tensors and on Python numbers) and the methods below. Each semantics (NumPy and any
Array API library, exact sympy expressions, rationals, mpmath, arb intervals, binary32) implements
them once, with no loss-specific code, and so decides what a branch, a clamp or a sum means.

Tensors of a context are whatever its ``bind`` returns: arrays of the user's library for
:class:`~torchlean.contexts.arrays.ArrayContext`, NumPy object arrays of context scalars for the
others. A *condition* is what the comparison methods return; only ``where`` and ``logical_and``
consume it, so a semantics may make it three-valued (intervals) or symbolic (sympy).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

__all__ = ["Context", "resolve_context"]

Tensor = Any
Cond = Any


@runtime_checkable
class Context(Protocol):
    """What a semantics provides. Every method is elementwise unless it says otherwise."""

    name: str

    # -- entry and exit -------------------------------------------------------------------------
    def bind(self, predicted: Any, target: Any, names: tuple[str, str]) -> tuple[Context, Tensor,
                                                                                 Tensor]:
        """Validate and convert the two inputs; return the context to compute with and them.

        Raises the package's own errors for a non-floating ``predicted``, mixed libraries or
        devices. Shape equality is checked by the caller (:func:`~.tensor.check_same_shape`).
        """
        ...

    def scope(self) -> AbstractContextManager[Any]:
        """A context manager around one evaluation (NumPy: IEEE specials without warnings)."""
        ...

    def finish_value(self, value: Tensor) -> Any:
        """Return a 0-d result in the caller's library, dtype and device."""
        ...

    def finish_deriv(self, deriv: Tensor) -> Any:
        """Return a tensor result in the caller's library, dtype and device."""
        ...

    # -- numbers and shapes ---------------------------------------------------------------------
    def const(self, value: float) -> Any:
        """A Python number as a scalar of this semantics (exact where the semantics is exact)."""
        ...

    def shape(self, x: Tensor) -> tuple[int, ...]: ...

    # -- branches -------------------------------------------------------------------------------
    def lt(self, a: Any, b: Any) -> Cond: ...

    def le(self, a: Any, b: Any) -> Cond: ...

    def logical_and(self, a: Cond, b: Cond) -> Cond: ...

    def isnan(self, x: Tensor) -> Cond: ...

    def where(self, cond: Cond, a: Any, b: Any) -> Tensor:
        """``a`` where ``cond`` holds, else ``b`` (broadcast against each other)."""
        ...

    def maximum(self, a: Any, b: Any) -> Tensor:
        """Elementwise maximum; NaN if either is NaN."""
        ...

    def minimum(self, a: Any, b: Any) -> Tensor:
        """Elementwise minimum; NaN if either is NaN."""
        ...

    # -- functions ------------------------------------------------------------------------------
    def abs(self, x: Tensor) -> Tensor: ...

    def sign(self, x: Tensor) -> Tensor:
        """-1, 0 or 1 (sign(0) = 0; NaN stays NaN)."""
        ...

    def exp(self, x: Tensor) -> Tensor: ...

    def expm1(self, x: Tensor) -> Tensor: ...

    def log(self, x: Tensor) -> Tensor: ...

    def log1p(self, x: Tensor) -> Tensor: ...

    def sqrt(self, x: Tensor) -> Tensor: ...

    def tanh(self, x: Tensor) -> Tensor: ...

    # -- reductions -----------------------------------------------------------------------------
    def sum(self, x: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Sum over one axis, or over all elements (a 0-d tensor) when ``axis`` is None."""
        ...

    def norm(self, x: Tensor) -> Tensor:
        """Euclidean norm of all elements, as a 0-d tensor (overflow-safe where it matters)."""
        ...

    def sum_exp_m1(self, x: Tensor, axis: int) -> Tensor:
        """``sum(exp(x)) - 1`` along ``axis`` (keepdims).

        Floats form it without cancellation when the largest entry is 0 (as after
        :meth:`exp_shift`), so ``log1p`` of it gives an accurate log-sum-exp even when one term
        dominates; other semantics may compute it literally.
        """
        ...

    def exp_shift(self, x: Tensor, axis: int) -> Tensor:
        """A per-slice constant ``c`` (keepdims) to subtract before ``exp``.

        Used where the real value does not depend on ``c`` (log-softmax): floats use the slice
        maximum so ``exp`` cannot overflow; exact semantics may return 0.
        """
        ...

    # -- domain checks --------------------------------------------------------------------------
    def check_range(self, x: Tensor, *, name: str, lo: float | None, hi: float | None,
                    what: str) -> Tensor:
        """Raise :class:`~torchlean.errors.DomainError` where ``x`` lies certainly outside
        ``[lo, hi]``; NaN passes (NaN in gives NaN out). Returns ``x`` (lazy libraries may
        return a tensor that checks when it is computed)."""
        ...


def resolve_context(ctx: Any, predicted: Any, target: Any,
                    names: tuple[str, str] = ("predicted", "target")) -> tuple[Context, Tensor,
                                                                                Tensor]:
    """Pick the semantics for one call and bind the inputs to it.

    ``ctx`` may be a :class:`Context`, a context module (anything with a ``CONTEXT`` attribute),
    or None to infer it from the inputs.
    """
    from torchlean.contexts import infer_context

    if ctx is None:
        ctx = infer_context(predicted, target)
    elif not isinstance(ctx, Context) and hasattr(ctx, "CONTEXT"):
        ctx = ctx.CONTEXT
    if not isinstance(ctx, Context):
        from torchlean.errors import BackendError

        raise BackendError(f"`ctx` must be a torchlean Context or None; got {type(ctx).__name__}")
    return ctx.bind(predicted, target, names)
