"""Per-sample first and second derivatives of the UNREDUCED loss: :func:`grad_hess`, the form
gradient boosting takes (XGBoost, LightGBM and CatBoost objectives; see
``docs/gradient-boosting.md``).

For an elementwise loss the per-sample terms are the declaration's value terms; their gradient
is its derivative term and their Hessian its second-derivative term, element by element, with
no mean taken. For a slice loss (softmax cross-entropy) each row is one sample: the gradient is
per class and the Hessian is the diagonal of each row's Hessian, as the boosting libraries take
for multi-class objectives.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from torchlean.errors import DomainError, ShapeError, UnsupportedOperationError, fmt_shape
from torchlean.spec.core.context import resolve_context
from torchlean.spec.core.declaration import LossDeclaration, _takes_n, require_axis
from torchlean.spec.core.tensor import check_same_shape

__all__ = ["grad_hess", "per_sample_target"]


def grad_hess(name: str | LossDeclaration, predicted: Any, target: Any, /, *,
              sample_weight: Any = None, **params: Any) -> tuple[Any, Any]:
    """``(grad, hess)``: the derivative and the second derivative of each sample's loss
    w.r.t. its raw score ``predicted``, unreduced, times ``sample_weight``.

    ``name``: a registered loss (or a declaration) that declares its second derivative.
    ``predicted``: raw scores; for a slice loss such as ``softmax`` an ``(n, k)`` array whose
    rows are samples. ``target``: the same shape as ``predicted``, or, for a slice loss,
    integer class ids of shape ``predicted.shape[:-1]`` (one-hot encoded here; an id outside
    ``[0, k)`` raises :class:`~torchlean.errors.DomainError`). A loss whose domain declares
    ``only_labels`` (``logistic``, ``binary_focal``) refuses any other target value.
    ``sample_weight``: None, or non-negative weights, one per sample (the shape of
    ``predicted``, or ``predicted.shape[:-1]`` for a slice loss); both results are multiplied
    by them. ``params``: the loss's parameters, ``check_domain`` and ``ctx``, as for
    :func:`torchlean.value_and_deriv`.

    Results: arrays of ``predicted``'s shape, library and dtype. NaN in gives NaN out. The
    float64 NumPy inputs of a loss with a fused kernel take one compiled pass.
    """
    from torchlean.registry import get_loss

    decl = name if isinstance(name, LossDeclaration) else get_loss(name)
    if not decl.has_second:
        raise UnsupportedOperationError(
            f"`name`: the {decl.name} loss declares no second derivative, so it has no "
            f"per-sample Hessian; losses that do: {', '.join(_with_second())}"
        )
    kw = decl.bind_params(params)
    ctx = kw.pop("ctx", None)
    check_domain = kw.pop("check_domain", True)
    prm = decl.checked_params(kw)
    target = per_sample_target(decl, predicted, target)
    if check_domain:
        _check_labels(decl, target)
    fast = _fast(decl, predicted, target, sample_weight, prm, check_domain, ctx)
    if fast is not None:
        return fast
    c, p, t = resolve_context(ctx, predicted, target, decl.arg_names)
    shape = check_same_shape(c, p, t, decl.arg_names)
    if decl.kind == "slice":
        require_axis(c, p, decl.arg_names[0])
    w = None
    if sample_weight is not None:
        c2, _, w = c.bind(predicted, _spread_weights(decl, predicted, sample_weight),
                          (decl.arg_names[0], "sample_weight"))
        w = c2.check_range(w, name="sample_weight", lo=0, hi=None,
                           what="grad_hess (sample weights are >= 0)")
    t = decl._checked_target(c, t, check_domain, f"grad_hess of the {decl.name} loss")
    with c.scope():
        if 0 in shape:
            z = p - t
            return c.finish_deriv(z), c.finish_deriv(z)
        if _takes_n(decl.deriv_term):
            g = decl.deriv_term(c, p, t, n=1, **prm)
        else:
            g = decl.deriv_term(c, p, t, **prm)
        h = decl.second_term(c, p, t, **prm)  # type: ignore[misc]
        if w is not None:
            g, h = g * w, h * w
        return c.finish_deriv(g), c.finish_deriv(h)


def per_sample_target(decl: LossDeclaration, predicted: Any, target: Any) -> Any:
    """``target`` in the declaration's form: a slice loss's integer class ids (one axis fewer
    than ``predicted``) become one-hot rows in ``predicted``'s library and dtype; anything else
    is returned as it is."""
    if decl.kind != "slice":
        return target
    p_shape, t_shape = tuple(np.shape(predicted)), tuple(np.shape(target))
    if len(p_shape) == 0 or t_shape != p_shape[:-1]:
        return target
    k = p_shape[-1]
    ids = _as_numpy(target)
    if ids.dtype == object or not (np.issubdtype(ids.dtype, np.integer)
                                   or np.issubdtype(ids.dtype, np.floating)
                                   or ids.dtype == bool):
        raise DomainError(
            f"`{decl.arg_names[1]}` of shape {fmt_shape(t_shape)} holds class ids, which must be "
            f"integers in [0, {k}); got dtype {ids.dtype}"
        )
    bad = ~((ids == np.floor(ids)) & (ids >= 0) & (ids < k)) if ids.size else np.zeros(0, bool)
    if np.any(bad):
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        raise DomainError(
            f"`{decl.arg_names[1]}` holds class ids, which must be integers in [0, {k}) for "
            f"{k} classes; got {_number(ids[i])} at index {i if len(i) != 1 else i[0]}"
        )
    onehot = (np.arange(k) == ids.astype(np.int64)[..., None])
    return _like(predicted, onehot)


def _check_labels(decl: LossDeclaration, target: Any) -> None:
    dom = decl.domain
    if not dom.only_labels or not dom.labels:
        return
    t = _as_numpy(target)
    if t.dtype == object:
        t = t.astype(np.float64)
    ok = np.isnan(t) if np.issubdtype(t.dtype, np.floating) else np.zeros(t.shape, bool)
    for label in dom.labels:
        ok |= t == label
    if not np.all(ok):
        i = tuple(int(j) for j in np.argwhere(~ok)[0])
        labels = " or ".join(f"{x:g}" for x in dom.labels)
        raise DomainError(
            f"`{decl.arg_names[1]}` must hold labels {labels} for the {decl.name} loss; got "
            f"{_number(t[i])} at index {i if len(i) != 1 else i[0]}"
        )


def _spread_weights(decl: LossDeclaration, predicted: Any, w: Any) -> Any:
    """The weights, one per sample, repeated along a slice loss's class axis."""
    p_shape = tuple(np.shape(predicted))
    want = p_shape[:-1] if decl.kind == "slice" else p_shape
    got = tuple(np.shape(w))
    if got != want:
        raise ShapeError(
            f"`sample_weight` must have one weight per sample, shape {fmt_shape(want)}; got "
            f"shape {fmt_shape(got)}"
        )
    if decl.kind != "slice":
        return w
    import array_api_compat

    try:
        xp = array_api_compat.array_namespace(w)
    except TypeError:
        w = np.asarray(w)
        xp = array_api_compat.array_namespace(w)
    return xp.broadcast_to(w[..., None], p_shape)


def _fast(decl: LossDeclaration, predicted: Any, target: Any, w: Any, prm: dict[str, Any],
          check_domain: bool, ctx: Any) -> tuple[Any, Any] | None:
    """The compiled pass, where the kernels have one for these inputs; else None."""
    if ctx is not None:
        return None
    try:
        from torchlean.kernels import fast_grad_hess
    except ImportError:
        return None
    return fast_grad_hess(decl, predicted, target, w, prm, check_domain)


def _number(x: Any) -> str:
    """One element for a message: ``4``, ``1.5``, ``nan``."""
    x = x.item() if hasattr(x, "item") else x
    if isinstance(x, float) and x.is_integer():
        return str(int(x)) if abs(x) < 2**53 else repr(x)
    return repr(x)


def _as_numpy(x: Any) -> np.ndarray:
    """Host values of ``x`` (for the checks that read them)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
    if hasattr(x, "compute") and not isinstance(x, np.ndarray):
        x = x.compute()
    return np.asarray(x)


def _like(predicted: Any, onehot: np.ndarray) -> Any:
    """A NumPy bool array in ``predicted``'s library and dtype (ints for object arrays)."""
    if isinstance(predicted, np.ndarray):
        if predicted.dtype == object:
            return onehot.astype(np.int64).astype(object)
        return onehot.astype(predicted.dtype)
    import array_api_compat

    try:
        xp = array_api_compat.array_namespace(predicted)
    except TypeError:
        return onehot.astype(np.float64)
    dev = array_api_compat.device(predicted)
    if hasattr(predicted, "dask") or type(predicted).__module__.startswith("dask"):
        import dask.array as da

        chunks = predicted.chunks
        return da.from_array(onehot.astype(predicted.dtype), chunks=chunks)
    return xp.asarray(onehot, dtype=predicted.dtype, device=dev)


def _with_second() -> list[str]:
    from torchlean.registry import LOSSES

    return [n for n, d in LOSSES.items() if d.has_second]
