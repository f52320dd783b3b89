"""Every loss of :data:`torchlean.LOSSES` as a JAX function whose derivative is the declared one.

- :func:`loss` ``(name, **params) -> f(predicted, target) -> scalar``: the loss with the
  package's reduction (mean or sum over all elements; a whole-tensor loss as declared).
- :func:`per_example` ``(name, **params) -> f(predicted, target) -> array``: the unreduced
  terms, the form optax's losses have: per element for an elementwise loss, per slice (summed
  over the last axis) for a slice loss.

A slice loss takes, besides targets of the shape of ``predicted``, integer class ids of the
batch shape ``predicted.shape[:-1]`` (one-hot rows for the declaration; the kernel's forms for
ids where it has them). An id outside ``[0, k)`` is a
:class:`~torchlean.errors.DomainError` when the ids are concrete, a NaN example when traced.

Both are :func:`jax.custom_jvp` functions: the tangent along ``predicted`` is the declaration's
derivative term (``decl.deriv``, the one ``torchlean certify`` certifies), never JAX's
autodiff of the value term, so ``jax.grad`` returns the certified derivative, kinks included
(hinge's 0 at the margin, where autodiff of ``max`` takes half of each side). The derivative is
itself a ``custom_jvp`` function whose tangent is the declared second derivative
(``decl.second`` times the tangent for an elementwise loss, ``decl.hvp`` for a slice loss), so
``jax.hessian`` reads the declaration too; a loss that declares none (a whole-tensor loss) has
its derivative term differentiated by JAX. Along ``target`` the tangent is JAX's own derivative
of the declared value: only the derivative w.r.t. ``predicted`` is certified.

Out-of-range targets (a loss with a checked target domain): concrete inputs are checked as
everywhere in the package (:class:`~torchlean.errors.DomainError` naming the argument); under a
transformation (``jit``, ``vmap``, ...) the values are unknown when the function is traced, so
each target outside the domain becomes NaN, and the value and the derivatives with it. With
``checkify=True`` the function also makes a :func:`jax.experimental.checkify.check`, so that a
function wrapped in :func:`jax.experimental.checkify.checkify` reports the first bad element.
Shapes and dtypes are checked when the function is traced. ``docs/jax.md`` says it all with
examples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import array_api_compat as aac
import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from jax.experimental import checkify as _checkify

from torchlean.contexts.arrays import CONTEXT, ArrayContext
from torchlean.errors import (
    BackendError,
    DomainError,
    DTypeError,
    ParameterError,
    UnsupportedOperationError,
)
from torchlean.registry import get_loss
from torchlean.spec.core.declaration import LossDeclaration, _takes_n, require_axis
from torchlean.spec.core.tensor import check_same_shape

__all__ = ["loss", "per_example"]

Fn = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class _Bound:
    """A declaration with its parameters checked once, and the options of the JAX function."""

    decl: LossDeclaration
    prm: dict[str, Any]
    check_domain: bool
    checkify: bool

    @property
    def names(self) -> tuple[str, str]:
        return self.decl.arg_names


def _bind(name: Any, params: dict[str, Any], checkify: Any) -> _Bound:
    decl = _declaration(name)
    # `ctx` is not offered: a JAX function always runs the Array API context on JAX arrays
    allowed = set(decl.parameters) | ({"check_domain"} if decl.has_domain_check else set())
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ParameterError(
            f"`{unknown[0]}` is not a parameter of the {decl.name} loss; expected one of "
            f"{[*sorted(allowed), 'checkify']}"
        )
    kwargs = dict(params)
    check = kwargs.pop("check_domain", True)
    if not isinstance(check, bool | np.bool_):
        raise ParameterError(f"`check_domain` must be True or False; got {check!r}")
    if not isinstance(checkify, bool | np.bool_):
        raise ParameterError(f"`checkify` must be True or False; got {checkify!r}")
    return _Bound(decl, decl.checked_params(kwargs), bool(check) and decl.has_domain_check,
                  bool(checkify))


def _declaration(name: Any) -> LossDeclaration:
    if isinstance(name, LossDeclaration):
        return name
    if isinstance(name, str):
        return get_loss(name)
    if hasattr(type(name), "declaration"):  # what define_loss returns
        decl = name.declaration
        if isinstance(decl, LossDeclaration):
            return decl
    raise ParameterError(f"`name` must be the name of a loss of torchlean.LOSSES or a "
                         f"LossDeclaration; got {type(name).__name__}")


# --------------------------------------------------------------------------------------------
# The public functions
# --------------------------------------------------------------------------------------------


def loss(name: str | LossDeclaration, /, *, checkify: bool = False, **params: Any) -> Fn:
    """The loss ``name`` (a name of :data:`torchlean.LOSSES` or a declaration) as
    ``f(predicted, target) -> scalar``, reduced as declared, a :func:`jax.custom_jvp` function
    whose derivative w.r.t. ``predicted`` is the declared one (see the module docstring).

    ``params``: the loss's parameters (checked now, once) and ``check_domain``; ``checkify``:
    also make a :func:`jax.experimental.checkify.check` of the target domain. The result has the
    dtype of ``predicted``.
    """
    b = _bind(name, params, checkify)
    core = _reduced(b)
    return _entry(b, core, "loss")


def per_example(name: str | LossDeclaration, /, *, checkify: bool = False,
                **params: Any) -> Fn:
    """The unreduced terms of the loss ``name`` as ``f(predicted, target) -> array``: the shape
    of ``predicted`` for an elementwise loss, ``predicted.shape[:-1]`` for a slice loss (each
    slice's terms summed over the last axis). A :func:`jax.custom_jvp` function like
    :func:`loss`; a whole-tensor loss has no per-example form
    (:class:`~torchlean.errors.UnsupportedOperationError`)."""
    b = _bind(name, params, checkify)
    if b.decl.kind == "whole":
        raise UnsupportedOperationError(
            f"the {b.decl.name} loss is a whole-tensor loss: it has no per-example terms (use "
            f"`loss({b.decl.name!r})`)"
        )
    core = _unreduced(b)
    return _entry(b, core, "per_example")


def _entry(b: _Bound, core: Fn, what: str) -> Fn:
    def f(predicted: Any, target: Any) -> Any:
        p, t = _inputs(b, predicted, target)
        return core(p, t)

    f.__name__ = f.__qualname__ = f"{b.decl.name}_{what}"
    f.__doc__ = f"torchlean.interop.jax.{what}({b.decl.name!r}): " + (b.decl.formula or "")
    return f


# --------------------------------------------------------------------------------------------
# Inputs: converted, checked when traced, the domain check as concrete or traced values allow
# --------------------------------------------------------------------------------------------


def _as_jax(x: Any, name: str) -> Any:
    if isinstance(x, jax.Array):
        return x
    if aac.is_array_api_obj(x) and not isinstance(x, np.ndarray | np.generic):
        raise BackendError(f"`{name}` must be a JAX array, a NumPy array or a sequence of "
                           f"numbers; got {type(x).__module__}.{type(x).__name__}")
    from torchlean.contexts.arrays import _as_array

    return jnp.asarray(_as_array(x, None, name))


def _inputs(b: _Bound, predicted: Any, target: Any) -> tuple[Any, Any]:
    names = b.names
    p, t = _as_jax(predicted, names[0]), _as_jax(target, names[1])
    if not jnp.issubdtype(p.dtype, jnp.floating) or jnp.issubdtype(p.dtype, jnp.complexfloating):
        raise DTypeError(f"`{names[0]}` must have a real floating-point dtype; got {p.dtype}")
    if not (jnp.issubdtype(t.dtype, jnp.floating) or jnp.issubdtype(t.dtype, jnp.integer)
            or t.dtype == jnp.bool_):
        raise DTypeError(
            f"`{names[1]}` must have a real floating-point, integer or bool dtype (promoted to "
            f"the dtype of `{names[0]}`); got {t.dtype}"
        )
    if b.decl.kind == "slice" and _is_ids(p, t):
        require_axis(CONTEXT, p, names[0])
        _check_ids(t, p.shape[-1], names[1])
        return p, t
    check_same_shape(CONTEXT, p, t, names)
    if b.decl.kind == "slice":
        require_axis(CONTEXT, p, names[0])
    if b.check_domain and not (isinstance(t, jax.core.Tracer) and _rows_checked(b)):
        t = _checked_target(b, p, t)
    elif b.check_domain and b.checkify:
        dom = b.decl.domain
        _domain_check(t, names[1], dom.target_lo, dom.target_hi, _what(b))
    return p, t


def _rows_checked(b: _Bound) -> bool:
    """Traced targets go to the kernel unchecked: it makes a row with one outside the domain
    NaN (``JaxKernel.checks_rows``), where replacing them by NaN here would cost XLA's CPU code
    a pass that writes the targets out again."""
    kern = _kernel(b)
    return b.check_domain and kern is not None and kern.checks_rows


def _bounds(b: _Bound, p: Any, t: Any) -> dict[str, Any]:
    """The ``bounds`` keyword of a row-checking kernel's call (none for class ids)."""
    if not _rows_checked(b) or _is_ids(p, t):
        return {}
    return {"bounds": (b.decl.domain.target_lo, b.decl.domain.target_hi)}


def _what(b: _Bound) -> str:
    dom = b.decl.domain
    return f"the {b.decl.name} loss" + (f" ({dom.what})" if dom.what else "")


def _is_ids(p: Any, t: Any) -> bool:
    """Class ids: integers of the batch shape of a slice loss's ``p``."""
    return (p.ndim >= 1 and tuple(t.shape) == tuple(p.shape[:-1])
            and jnp.issubdtype(t.dtype, jnp.integer))


def _check_ids(ids: Any, k: int, name: str) -> None:
    """Concrete ids outside ``[0, k)``: a DomainError (traced ones give NaN examples)."""
    if isinstance(ids, jax.core.Tracer):
        return
    host = np.asarray(ids)
    bad = (host < 0) | (host >= k)
    if bad.any():
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        raise DomainError(
            f"`{name}` holds class ids, which must be integers in [0, {k}) for {k} classes; "
            f"got {int(host[i])} at index {i if len(i) != 1 else i[0]}"
        )


def _one_hot(ids: Any, k: int, dtype: Any) -> Any:
    """Class ids as one-hot rows; a row of NaN for an id outside ``[0, k)`` (traced ids:
    ``jit`` cannot raise on a value)."""
    return _nan_outside(jax.nn.one_hot(ids, k, dtype=dtype), ids, k, row=True)


def _nan_outside(out: Any, ids: Any, k: int, *, row: bool) -> Any:
    inside = (ids >= 0) & (ids < k)
    return jnp.where(inside[..., None] if row else inside, out, jnp.asarray(jnp.nan, out.dtype))


def _declared_target(b: _Bound, p: Any, t: Any) -> Any:
    """The target as the declaration's terms take it: ids one-hot, and checked here where
    :func:`_inputs` left the check to a row-checking kernel."""
    t = _dense(p, t)
    return _checked_target(b, p, t) if _rows_checked(b) and isinstance(t, jax.core.Tracer) else t


def _dense(p: Any, t: Any) -> Any:
    """The target as the declaration takes it: ids as one-hot rows in ``p``'s dtype."""
    return _one_hot(t, p.shape[-1], p.dtype) if _is_ids(p, t) else t


def _checked_target(b: _Bound, p: Any, t: Any) -> Any:
    dom, names, what = b.decl.domain, b.names, _what(b)
    traced = isinstance(t, jax.core.Tracer)
    if traced and not jnp.issubdtype(t.dtype, jnp.floating):
        # room for the NaN: the dtype the context would compute in anyway
        t = t.astype(jnp.promote_types(p.dtype, jax.dtypes.canonicalize_dtype(jnp.float64)))
    if traced and b.checkify and not _rows_checked(b):
        _domain_check(t, names[1], dom.target_lo, dom.target_hi, what)
    # concrete: DomainError as everywhere; traced: NaN wherever the target is outside
    return ArrayContext(aac.array_namespace(t)).check_range(
        t, name=names[1], lo=dom.target_lo, hi=dom.target_hi, what=what)


def _domain_check(t: Any, name: str, lo: float | None, hi: float | None, what: str) -> None:
    bad = jnp.zeros(t.shape, dtype=bool)
    if lo is not None:
        bad = bad | (t < lo)
    if hi is not None:
        bad = bad | (t > hi)
    flat = jnp.ravel(bad)
    first = jnp.argmax(flat) if flat.size else jnp.asarray(0)
    rng = f"[{-np.inf if lo is None else lo:g}, {np.inf if hi is None else hi:g}]"
    value = jnp.ravel(t)[first] if flat.size else jnp.asarray(0.0)
    _checkify.check(~jnp.any(bad), f"`{name}` must lie in {rng} for {what}; got {{}} at flat "
                                   f"index {{}}", value, first)


# --------------------------------------------------------------------------------------------
# custom_jvp functions
# --------------------------------------------------------------------------------------------


def _with_tangent(primal: Fn, along_p: Callable[[Any, Any, Any], Any]) -> Fn:
    """``primal`` as a custom_jvp function: along ``p`` the tangent is ``along_p(p, t, p_dot)``,
    along ``t`` JAX's own derivative of ``primal``."""
    f = jax.custom_jvp(primal)

    def rule(primals: tuple[Any, Any], tangents: tuple[Any, Any]) -> tuple[Any, Any]:
        p, t = primals
        p_dot, t_dot = tangents
        out = f(p, t)
        tangent = None
        if not isinstance(p_dot, SymbolicZero):
            tangent = along_p(p, t, p_dot)
        if not isinstance(t_dot, SymbolicZero) and jnp.issubdtype(t.dtype, jnp.inexact):
            _, along_t = jax.jvp(lambda tt: primal(p, tt), (t,), (t_dot,))
            tangent = along_t if tangent is None else tangent + along_t
        if tangent is None:
            tangent = jnp.zeros_like(out)
        return out, tangent

    f.defjvp(rule, symbolic_zeros=True)
    return f


def _flat(b: _Bound, *xs: Any) -> list[Any]:
    """An elementwise loss's inputs as 1-D arrays: the same terms, and XLA's CPU code for
    them is several times faster on one long axis than on many short rows (``log_cosh`` on
    10^5 x 10: 32 ms, on 10^6: 5 ms)."""
    if b.decl.kind != "elementwise":
        return list(xs)
    return [jnp.reshape(x, (-1,)) for x in xs]


def _kernel(b: _Bound) -> Any:
    """The declaration's fused JAX forms (:mod:`torchlean.kernels.jax_terms`), or None."""
    if b.decl.jax_kernel is None:
        return None
    from torchlean.kernels.kernel import _load

    return _load(b.decl.jax_kernel)


def _kernel_applies(p: Any) -> bool:
    # an empty array has no row maximum: the declaration's terms handle it
    return 0 not in tuple(p.shape)


def _run_kernel(fn: Callable[..., Any], p: Any, t: Any, prm: dict[str, Any]) -> Any:
    """``fn`` in the dtype the Array API context would work in (float64 where JAX has it:
    a float32 input is computed in float64 and rounded once), the result in ``p``'s dtype;
    class ids stay integers."""
    work = jnp.promote_types(p.dtype, jax.dtypes.canonicalize_dtype(jnp.float64))
    tw = t if jnp.issubdtype(t.dtype, jnp.integer) else t.astype(work)
    return fn(p.astype(work), tw, **prm).astype(p.dtype)


def _kernel_value(b: _Bound, kern: Any, p: Any, t: Any,
                  post: Callable[[Any], Any] = lambda v: v) -> Any:
    """The kernel's per-example values, then ``post`` (a reduction), in the working dtype; its
    id forms for class ids where it has them."""
    return _kernel_run(kern.value, kern.value_ids, p, t, {**b.prm, **_bounds(b, p, t)}, post,
                       row=False)


def _kernel_grad(b: _Bound, kern: Any, p: Any, t: Any,
                 post: Callable[[Any], Any] = lambda g: g) -> Any:
    """The kernel's unreduced derivative, as :func:`_kernel_value`."""
    return _kernel_run(kern.grad, kern.grad_ids, p, t, {**b.prm, **_bounds(b, p, t)}, post,
                       row=True)


def _kernel_run(dense: Callable[..., Any], by_id: Callable[..., Any] | None, p: Any, t: Any,
                prm: dict[str, Any], post: Callable[[Any], Any], *, row: bool) -> Any:
    if _is_ids(p, t) and by_id is not None:
        k = p.shape[-1]

        def fn(pw: Any, ids: Any, **kw: Any) -> Any:
            # an id outside [0, k) reads a clipped one, and its example is then NaN
            out = by_id(pw, jnp.clip(ids, 0, k - 1), **kw)
            return post(_nan_outside(out, ids, k, row=row))

        return _run_kernel(fn, p, t, prm)
    return _run_kernel(lambda pw, tw, **kw: post(dense(pw, tw, **kw)), p, _dense(p, t), prm)


def _reduced(b: _Bound) -> Fn:
    decl, prm = b.decl, b.prm
    kern = _kernel(b)

    def value(p: Any, t: Any) -> Any:
        if kern is not None and _kernel_applies(p):
            n = max(int(np.prod(p.shape)), 1) if decl.reduction == "mean" else 1
            return _kernel_value(b, kern, p, t, lambda v: jnp.sum(v) / n)
        return decl.value(*_flat(b, p, _declared_target(b, p, t)), check_domain=False, **prm)

    def deriv(p: Any, t: Any) -> Any:
        if kern is not None and _kernel_applies(p):
            n = max(int(np.prod(p.shape)), 1) if decl.reduction == "mean" else 1
            return _kernel_grad(b, kern, p, t, lambda g: g / n)
        tt = _declared_target(b, p, t)
        return jnp.reshape(decl.deriv(*_flat(b, p, tt), check_domain=False, **prm), p.shape)

    def hvp(p: Any, t: Any, v: Any) -> Any:
        tt = _declared_target(b, p, t)
        return jnp.reshape(decl.hvp(*_flat(b, p, tt, v), check_domain=False, **prm), p.shape)

    if decl.has_second:
        deriv = _with_tangent(deriv, hvp)
    return _with_tangent(value, lambda p, t, v: jnp.sum(deriv(p, t) * v))


def _unreduced(b: _Bound) -> Fn:
    decl = b.decl
    sliced = decl.kind == "slice"
    kern = _kernel(b)

    def value(p: Any, t: Any) -> Any:
        if kern is not None and _kernel_applies(p):
            return _kernel_value(b, kern, p, t)
        return _terms(b, "value", p, _declared_target(b, p, t))

    def deriv(p: Any, t: Any) -> Any:
        if kern is not None and _kernel_applies(p):
            return _kernel_grad(b, kern, p, t)
        return _terms(b, "deriv", p, _declared_target(b, p, t))

    if decl.has_second:
        deriv = _with_tangent(
            deriv, lambda p, t, v: _terms(b, "hvp", p, _declared_target(b, p, t), v))

    def along_p(p: Any, t: Any, v: Any) -> Any:
        g = deriv(p, t) * v
        return jnp.sum(g, axis=-1) if sliced else g

    return _with_tangent(value, along_p)


def _terms(b: _Bound, which: str, p: Any, t: Any, v: Any = None) -> Any:
    """The declared terms, unreduced: the value (per element, or per slice summed over the
    last axis), the derivative, or the second derivative times ``v`` (a slice loss: its
    Hessian-vector product), per element."""
    decl, prm = b.decl, b.prm
    shape = tuple(p.shape)
    p, t, v = _flat(b, p, t, v) if v is not None else (*_flat(b, p, t), None)
    c, pp, tt = CONTEXT.bind(p, t, decl.arg_names)
    sliced = decl.kind == "slice"
    out_shape = shape[:-1] if sliced and which == "value" else shape
    if 0 in shape:
        # no elements, or empty slices (whose terms sum to 0)
        return jnp.zeros(out_shape, dtype=p.dtype)
    with c.scope():
        if which == "value":
            out = decl.value_term(c, pp, tt, **prm)
            if sliced:
                out = c.sum(out, axis=-1)
        elif which == "deriv":
            n = {"n": 1} if _takes_n(decl.deriv_term) else {}
            out = decl.deriv_term(c, pp, tt, **n, **prm)
        else:
            _, _, vv = c.bind(p, v, (decl.arg_names[0], "vector"))
            if sliced:
                out = decl.hvp_term(c, pp, tt, vv, **prm)  # type: ignore[misc]
            else:
                out = decl.second_term(c, pp, tt, **prm) * vv  # type: ignore[misc]
        out = c.finish_deriv(out)
        return jnp.broadcast_to(out, out_shape) if sliced else jnp.reshape(out, out_shape)
