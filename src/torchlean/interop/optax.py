"""optax-compatible losses: optax's names, positional order, keywords, defaults and per-example
results, whose JAX derivative is the certified one.

Each function is a thin wrapper over :func:`torchlean.interop.jax.per_example` (the unreduced
terms of a registered loss, a ``jax.custom_jvp`` function): it checks its inputs at trace time,
moves ``axis`` to the last axis, applies ``where`` as optax does, and scales where optax's
definition is a multiple of the declaration's (``huber_loss``: ``delta`` times ``huber``;
``sigmoid_focal_loss`` with ``alpha=None``: twice ``binary_focal`` at ``alpha=0.5``). No loss
formula is restated here. The declaration behind each function, the measured distance from
optax's values and every documented difference are in ``docs/jax.md``.

Parameters (``delta``, ``epsilon``, ``alpha``, ``gamma``) and ``axis`` are static: Python
numbers and ints, not traced arrays. optax has no Poisson negative log-likelihood, so there is
none here (``torchlean.interop.jax.per_example("poisson_log")`` is the declaration's).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from torchlean.errors import DomainError, DTypeError, ParameterError, ShapeError

__all__ = [
    "cosine_distance",
    "cosine_similarity",
    "hinge_loss",
    "huber_loss",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "l2_loss",
    "log_cosh",
    "poly_loss_cross_entropy",
    "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "squared_error",
]

Axis = int | tuple[int, ...] | None


def _declared(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Record on a function the declaration it evaluates (``fn.declaration``: the docs and the
    tests read it)."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.declaration = name  # type: ignore[attr-defined]
        return fn

    return mark


def _terms(name: str, **params: Any) -> Callable[[Any, Any], Any]:
    """The declaration's unreduced terms as a JAX function (imported on use: it needs JAX)."""
    from torchlean.interop.jax import per_example

    return per_example(name, **params)


# --------------------------------------------------------------------------------------------
# Trace-time checks (shapes and dtypes are known while tracing)
# --------------------------------------------------------------------------------------------


def _array(x: Any, name: str) -> jax.Array:
    try:
        return jnp.asarray(x)
    except TypeError as exc:
        raise DTypeError(f"`{name}` must be an array or a number; got {type(x).__name__}") from exc


def _floating(x: Any, name: str) -> jax.Array:
    a = _array(x, name)
    if not jnp.issubdtype(a.dtype, jnp.floating):
        raise DTypeError(f"`{name}` must have a floating-point dtype; got {a.dtype}")
    return a


def _like(x: Any, ref: jax.Array, name: str) -> jax.Array:
    """``x`` as a real array in ``ref``'s dtype (optax casts labels so; a complex value would
    lose its imaginary part silently)."""
    a = _array(x, name)
    if not (jnp.issubdtype(a.dtype, jnp.floating) or jnp.issubdtype(a.dtype, jnp.integer)
            or a.dtype == jnp.bool_):
        raise DTypeError(f"`{name}` must have a real dtype; got {a.dtype}")
    return a.astype(ref.dtype)


def _broadcast(a: jax.Array, b: jax.Array, names: tuple[str, str]) -> tuple[jax.Array, jax.Array]:
    try:
        shape = jnp.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(
            f"`{names[1]}` must have a shape broadcastable with `{names[0]}` {a.shape}; "
            f"got {b.shape}"
        ) from None
    return jnp.broadcast_to(a, shape), jnp.broadcast_to(b, shape)


def _to(shape: tuple[int, ...], b: jax.Array, names: tuple[str, str]) -> jax.Array:
    """``b`` broadcast to ``shape`` (that of ``names[0]``)."""
    try:
        return jnp.broadcast_to(b, shape)
    except ValueError:
        raise ShapeError(
            f"`{names[1]}` must have a shape broadcastable to that of `{names[0]}` {shape}; "
            f"got {b.shape}"
        ) from None


def _static(value: Any, name: str) -> Any:
    """A parameter must be a concrete number: the declarations' validators take Python reals."""
    if isinstance(value, jax.core.Tracer):
        raise ParameterError(
            f"`{name}` must be a static Python number; got a traced value (pass it as a "
            "Python float, or mark it static in jax.jit)"
        )
    if isinstance(value, jax.Array) and value.ndim == 0:
        return value.item()
    return value


def _axes(axis: Any, ndim: int, *, allow_none: bool) -> tuple[int, ...]:
    """``axis`` as a tuple of distinct non-negative axes of an ``ndim``-array."""
    if axis is None and allow_none:
        return tuple(range(ndim))
    raw = axis if isinstance(axis, tuple) else (axis,)
    out = []
    for a in raw:
        if isinstance(a, bool | jax.core.Tracer | jax.Array):
            raise ParameterError(
                f"`axis` must be static: a Python int or a tuple of ints; got {axis!r}"
            )
        try:
            i = operator.index(a)
        except TypeError:
            expected = "an int, a tuple of ints" + (" or None" if allow_none else "")
            raise ParameterError(f"`axis` must be {expected}; got {axis!r}") from None
        if not -ndim <= i < ndim:
            raise ParameterError(
                f"`axis` must be in [-{ndim}, {ndim}) for an array of {ndim} dimensions; "
                f"got {axis!r}"
            )
        out.append(i % ndim)
    if len(set(out)) != len(out) or not out:
        raise ParameterError(f"`axis` must name distinct axes; got {axis!r}")
    return tuple(out)


def _last(x: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    """``x`` with ``axes`` moved to the end (in their order) and flattened into one."""
    k = len(axes)
    x = jnp.moveaxis(x, axes, tuple(range(-k, 0)))
    return x if k == 1 else x.reshape((*x.shape[: x.ndim - k], -1))


def _mask(where: Any, shape: tuple[int, ...], axes: tuple[int, ...] | None) -> jax.Array | None:
    """optax's ``where`` as a boolean array of ``shape``: one of the batch shape gets the
    reduced ``axes`` back (it masks whole examples); one of the full rank broadcasts."""
    if where is None:
        return None
    m = _array(where, "where")
    if axes is not None and m.ndim != len(shape):
        m = jnp.expand_dims(m, axes)
    m = _to(shape, m, ("logits", "where") if axes is not None else ("predictions", "where"))
    return m if m.dtype == jnp.bool_ else m != 0


def _per_slice(terms: Callable[[Any, Any], Any], p: jax.Array, t: jax.Array, axes: tuple[int, ...],
               mask: jax.Array | None, *, masked: float, empty: float, empty_value: float
               ) -> jax.Array:
    """A slice loss over ``axes`` with optax's ``where``: a masked entry becomes ``masked`` with
    target 0 (out of the normaliser and the sums); an example with no entry left gets the input
    ``empty`` everywhere, target 0 as well, and the result ``empty_value`` (optax's sum over
    nothing). Masked inputs never reach the terms, so their garbage never reaches a gradient."""
    p, t = _last(p, axes), _last(t, axes)
    if mask is None:
        return terms(p, t)
    m = _last(mask, axes)
    some = jnp.any(m, axis=-1, keepdims=True)
    p = jnp.where(m, p, jnp.where(some, jnp.asarray(masked, p.dtype), jnp.asarray(empty, p.dtype)))
    t = jnp.where(m, t, jnp.where(some, jnp.zeros((), t.dtype), jnp.asarray(empty, t.dtype)))
    return jnp.where(some[..., 0], terms(p, t), jnp.asarray(empty_value, p.dtype))


def _summed(terms: Callable[[Any, Any], Any], p: jax.Array, t: jax.Array, axis: Any,
            where: Any, fill: tuple[float, float]) -> jax.Array:
    """An elementwise loss summed over ``axis`` (optax's ``jnp.sum(loss, axis, where=where)``);
    masked entries are replaced by ``fill`` (a point where the term and its derivative are
    finite) before the terms see them."""
    axes = _axes(axis, p.ndim, allow_none=True)
    mask = _mask(where, p.shape, None)
    if mask is not None:
        p = jnp.where(mask, p, jnp.asarray(fill[0], p.dtype))
        t = jnp.where(mask, t, jnp.asarray(fill[1], t.dtype))
    return jnp.sum(terms(p, t), axis=axes, where=mask)


def _optional_targets(p: jax.Array, targets: Any, *, equal: bool) -> jax.Array:
    if targets is None:
        return jnp.zeros_like(p)
    t = _like(targets, p, "targets")
    if equal and t.shape != p.shape:
        raise ShapeError(f"`targets` must have the shape of `predictions` {p.shape}; got {t.shape}")
    return t


# --------------------------------------------------------------------------------------------
# Regression
# --------------------------------------------------------------------------------------------


@_declared('squared_error')
def l2_loss(predictions: Any, targets: Any = None) -> jax.Array:
    """Half the squared error per element (optax's ``l2_loss``; declaration ``squared_error``).

    ``targets``: the shape of ``predictions`` (as optax), or None for zeros."""
    p = _floating(predictions, "predictions")
    return _terms("squared_error")(p, _optional_targets(p, targets, equal=True))


@_declared('mse')
def squared_error(predictions: Any, targets: Any = None) -> jax.Array:
    """The squared error per element (optax's ``squared_error``; declaration ``mse``'s term).

    ``targets``: the shape of ``predictions`` (as optax), or None for zeros."""
    p = _floating(predictions, "predictions")
    return _terms("mse")(p, _optional_targets(p, targets, equal=True))


@_declared('huber')
def huber_loss(predictions: Any, targets: Any = None, *, delta: float = 1.0) -> jax.Array:
    """optax's ``huber_loss``: ``delta`` times the ``huber`` declaration's term per element.

    ``targets`` broadcasts with ``predictions`` (None: zeros); ``delta >= 0``, static."""
    delta = _static(delta, "delta")
    p = _floating(predictions, "predictions")
    p, t = _broadcast(p, _optional_targets(p, targets, equal=False), ("predictions", "targets"))
    return delta * _terms("huber", delta=delta)(p, t)


@_declared('log_cosh')
def log_cosh(predictions: Any, targets: Any = None) -> jax.Array:
    """log(cosh(predictions - targets)) per element (declaration ``log_cosh``)."""
    p = _floating(predictions, "predictions")
    p, t = _broadcast(p, _optional_targets(p, targets, equal=False), ("predictions", "targets"))
    return _terms("log_cosh")(p, t)


@_declared('cosine_distance')
def cosine_similarity(predictions: Any, targets: Any, *, epsilon: float = 0.0, axis: Axis = -1,
                      where: Any = None) -> jax.Array:
    """optax's ``cosine_similarity``: one minus the ``cosine_distance`` declaration's per-vector
    term (``epsilon`` bounds each squared norm from below, as optax)."""
    return 1 - cosine_distance(predictions, targets, epsilon=epsilon, axis=axis, where=where)


@_declared('cosine_distance')
def cosine_distance(predictions: Any, targets: Any, *, epsilon: float = 0.0, axis: Axis = -1,
                    where: Any = None) -> jax.Array:
    """optax's ``cosine_distance``, 1 - cos, per vector along ``axis`` (declaration
    ``cosine_distance``). A vector whose entries ``where`` masks all has distance 1 (optax's
    similarity is then a sum over nothing, 0)."""
    epsilon = _static(epsilon, "epsilon")
    p = _floating(predictions, "predictions")
    t = _floating(targets, "targets").astype(p.dtype)
    p, t = _broadcast(p, t, ("predictions", "targets"))
    axes = _axes(axis, p.ndim, allow_none=True)
    return _per_slice(_terms("cosine_distance", epsilon=epsilon), p, t, axes,
                      _mask(where, p.shape, axes), masked=0.0, empty=1.0, empty_value=1.0)


# --------------------------------------------------------------------------------------------
# Binary classification
# --------------------------------------------------------------------------------------------


@_declared('hinge')
def hinge_loss(predictor_outputs: Any, targets: Any) -> jax.Array:
    """max(0, 1 - predictor_outputs targets) per element, targets in {-1, 1} (declaration
    ``hinge``)."""
    p = _floating(predictor_outputs, "predictor_outputs")
    p, t = _broadcast(p, _like(targets, p, "targets"), ("predictor_outputs", "targets"))
    return _terms("hinge")(p, t)


@_declared('logistic')
def sigmoid_binary_cross_entropy(logits: Any, labels: Any) -> jax.Array:
    """The sigmoid cross entropy per element, labels in [0, 1] cast to the logits' dtype
    (declaration ``logistic``)."""
    s = _floating(logits, "logits")
    s, y = _broadcast(s, _like(labels, s, "labels"), ("logits", "labels"))
    return _terms("logistic")(s, y)


@_declared('binary_focal')
def sigmoid_focal_loss(logits: Any, labels: Any, *, alpha: float | None = None,
                       gamma: float = 2.0) -> jax.Array:
    """optax's ``sigmoid_focal_loss`` per element, labels 0 or 1 (declaration ``binary_focal``;
    ``alpha=None``, no weighting, is twice ``binary_focal`` at ``alpha=0.5``)."""
    gamma = _static(gamma, "gamma")
    s = _floating(logits, "logits")
    s, y = _broadcast(s, _like(labels, s, "labels"), ("logits", "labels"))
    y = _labels(y, "binary_focal")
    if alpha is None:
        return 2 * _terms("binary_focal", gamma=gamma, alpha=0.5)(s, y)
    return _terms("binary_focal", gamma=gamma, alpha=_static(alpha, "alpha"))(s, y)


def _labels(y: jax.Array, name: str) -> jax.Array:
    """``y`` restricted to the labels of the declaration ``name`` (its domain's ``labels``, for
    one whose value is defined on labels only): another value, known now, raises
    :class:`~torchlean.errors.DomainError`; traced, it becomes NaN."""
    from torchlean.registry import get_loss

    labels = get_loss(name).domain.labels
    ok = jnp.zeros(y.shape, bool)
    for label in labels:
        ok = ok | (y == label)
    if not isinstance(y, jax.core.Tracer) and not bool(jnp.all(ok | jnp.isnan(y))):
        i = tuple(int(j) for j in np.argwhere(~np.asarray(ok | jnp.isnan(y)))[0])
        raise DomainError(
            f"`labels` must be {' or '.join(f'{v:g}' for v in labels)} for the {name} loss "
            f"(soft labels have another focal weight in optax); got {float(y[i])!r} at index {i}"
        )
    return jnp.where(ok, y, jnp.asarray(jnp.nan, y.dtype))


# --------------------------------------------------------------------------------------------
# Softmax classification
# --------------------------------------------------------------------------------------------


def _logits_labels(logits: Any, labels: Any) -> tuple[jax.Array, jax.Array]:
    s = _floating(logits, "logits")
    y = _floating(labels, "labels").astype(s.dtype)
    return s, _to(s.shape, y, ("logits", "labels"))


@_declared('softmax')
def softmax_cross_entropy(logits: Any, labels: Any, axis: Axis = -1,
                          where: Any = None) -> jax.Array:
    """-sum(labels log_softmax(logits)) per example along ``axis`` (declaration ``softmax``).

    ``labels``: class probabilities broadcastable to the logits. ``where``: the entries to
    include, of the logits' shape or the batch shape (whole examples); masked entries leave
    the normaliser (as ``-inf`` logits with label 0, through ``safe_softmax_cross_entropy``'s
    declaration, which takes 0 log 0 = 0); an example with none left gives 0."""
    s, y = _logits_labels(logits, labels)
    axes = _axes(axis, s.ndim, allow_none=True)
    mask = _mask(where, s.shape, axes)
    name = "softmax" if mask is None else "safe_softmax_cross_entropy"
    return _per_slice(_terms(name), s, y, axes, mask, masked=-jnp.inf, empty=0.0,
                      empty_value=0.0)


@_declared('softmax')
def softmax_cross_entropy_with_integer_labels(logits: Any, labels: Any, axis: int | tuple[int, ...]
                                              = -1, where: Any = None) -> jax.Array:
    """The softmax cross entropy of integer class ids (declaration ``softmax``; ids through
    :func:`torchlean.interop.jax.per_example`'s integer labels).

    ``labels``: integers of the batch shape (the logits' shape without ``axis``); with a tuple
    ``axis`` a label is a flat index into those axes, as optax. An id outside ``[0, C)`` gives
    NaN under ``jit`` and raises outside it (``docs/jax.md``; optax wraps -1 to the last
    class). ``where`` as :func:`softmax_cross_entropy`."""
    s = _floating(logits, "logits")
    y = _array(labels, "labels")
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise DTypeError(
            f"`labels` must have an integer dtype (class ids); got {y.dtype} (for class "
            "probabilities use softmax_cross_entropy)"
        )
    axes = _axes(axis, s.ndim, allow_none=False)
    batch = tuple(n for i, n in enumerate(s.shape) if i not in axes)
    if y.shape != batch:
        raise ShapeError(
            f"`labels` must have the batch shape of `logits` {batch} (its shape without "
            f"axis {axis!r}); got {y.shape}"
        )
    mask = _mask(where, s.shape, axes)
    s = _last(s, axes)
    if mask is not None:
        m = _last(mask, axes)
        some = jnp.any(m, axis=-1)
        s = jnp.where(m, s, jnp.where(some[..., None], -jnp.inf, jnp.zeros((), s.dtype)))
        y = jnp.where(some, y, jnp.zeros((), y.dtype))
    from torchlean.interop.jax import _check_ids, _one_hot

    _check_ids(y, s.shape[-1], "labels")  # concrete ids; traced ones give NaN examples
    if mask is None:
        return _terms("softmax")(s, y)  # class ids: the kernel gathers the labelled logit
    t = _one_hot(y, s.shape[-1], s.dtype)
    return jnp.where(some, _terms("safe_softmax_cross_entropy")(s, t), jnp.zeros((), s.dtype))


@_declared('safe_softmax_cross_entropy')
def safe_softmax_cross_entropy(logits: Any, labels: Any) -> jax.Array:
    """The softmax cross entropy over the last axis with 0 log 0 = 0: a ``-inf`` logit with
    label 0 adds nothing (declaration ``safe_softmax_cross_entropy``)."""
    s, y = _logits_labels(logits, labels)
    return _terms("safe_softmax_cross_entropy")(s, y)


@_declared('poly_loss_cross_entropy')
def poly_loss_cross_entropy(logits: Any, labels: Any, *, epsilon: float = 2.0, axis: Axis = -1,
                            where: Any = None) -> jax.Array:
    """PolyLoss-1 per example along ``axis``: cross entropy + epsilon sum(labels (1 - softmax))
    (declaration ``poly_loss_cross_entropy``); ``where`` as :func:`softmax_cross_entropy`."""
    epsilon = _static(epsilon, "epsilon")
    s, y = _logits_labels(logits, labels)
    axes = _axes(axis, s.ndim, allow_none=True)
    return _per_slice(_terms("poly_loss_cross_entropy", epsilon=epsilon), s, y, axes,
                      _mask(where, s.shape, axes), masked=-jnp.inf, empty=0.0, empty_value=0.0)


# --------------------------------------------------------------------------------------------
# Divergences
# --------------------------------------------------------------------------------------------


@_declared('kl_divergence')
def kl_divergence(log_predictions: Any, targets: Any, axis: Axis = -1,
                  where: Any = None) -> jax.Array:
    """sum(targets (log targets - log_predictions)) along ``axis``, 0 log 0 = 0 (declaration
    ``kl_divergence``); masked entries are left out of the sum."""
    lp = _floating(log_predictions, "log_predictions")
    t = _floating(targets, "targets").astype(lp.dtype)
    lp, t = _broadcast(lp, t, ("log_predictions", "targets"))
    return _summed(_terms("kl_divergence"), lp, t, axis, where, (0.0, 0.0))


@_declared('kl_divergence_log_targets')
def kl_divergence_with_log_targets(log_predictions: Any, log_targets: Any, axis: Axis = -1,
                                   where: Any = None) -> jax.Array:
    """sum(exp(log_targets) (log_targets - log_predictions)) along ``axis`` (declaration
    ``kl_divergence_log_targets``); masked entries are left out of the sum."""
    lp = _floating(log_predictions, "log_predictions")
    lt = _floating(log_targets, "log_targets").astype(lp.dtype)
    lp, lt = _broadcast(lp, lt, ("log_predictions", "log_targets"))
    return _summed(_terms("kl_divergence_log_targets"), lp, lt, axis, where, (0.0, 0.0))
