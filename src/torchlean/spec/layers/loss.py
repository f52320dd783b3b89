"""Loss functions and their derivatives: THE one definition (TorchLean's ``NN.Spec.Layers.Loss``).

Every loss and every derivative below is written once against the
:class:`~torchlean.spec.core.context.Context`; the context decides what numbers, branches and sums
mean (floats of any Array API library, sympy expressions, rationals, 50-digit mpmath, arb
intervals, binary32). Nothing else in the package restates these formulas, except fast kernels
that the test suite holds equal to them.

Conventions shared by all functions:

- ``d = predicted - target``; shapes must be equal (no broadcasting); ``n = max(size, 1)``, so an
  empty tensor gives a mean of 0 (TorchLean's totalized mean).
- Derivatives are with respect to ``predicted`` and are the true derivatives of the values;
  at a kink the chosen element of the subdifferential is stated and lies between the one-sided
  derivatives (``torchlean certify`` checks this).
- NaN in any input gives NaN out (the value, and the derivative elements it reaches).
- Results come back in the library, dtype and device of ``predicted``; integer or bool targets
  are promoted to that dtype. Inputs are never modified.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from torchlean.errors import ShapeError, fmt_shape
from torchlean.spec.core.context import Context, resolve_context
from torchlean.spec.core.tensor import (
    check_delta,
    check_epsilon,
    check_same_shape,
    mean_denominator,
    mean_over,
    to_scalar_spec,
)
from torchlean.spec.layers.activation import _require_axis, shifted

__all__ = [
    "EPSILON",
    "Loss",
    "LossType",
    "binary_cross_entropy_deriv_spec",
    "binary_cross_entropy_spec",
    "binary_cross_entropy_tensor_deriv_spec",
    "binary_cross_entropy_tensor_spec",
    "cosine_similarity_deriv_spec",
    "cosine_similarity_spec",
    "cross_entropy_deriv_spec",
    "cross_entropy_logits_deriv_spec",
    "cross_entropy_logits_spec",
    "cross_entropy_spec",
    "hinge_deriv_spec",
    "hinge_spec",
    "huber_deriv_spec",
    "huber_spec",
    "log_cosh_deriv_spec",
    "log_cosh_spec",
    "mae_deriv_spec",
    "mae_spec",
    "mean_over",
    "mse_deriv_spec",
    "mse_spec",
    "poisson_deriv_spec",
    "poisson_spec",
    "to_scalar_spec",
]

#: TorchLean's ``Numbers.epsilon``. Exact semantics read it as the decimal 1/10**6.
EPSILON = 1e-6

_PT = ("predicted", "target")


def _begin(ctx: Any, predicted: Any, target: Any,
           names: tuple[str, str] = _PT) -> tuple[Context, Any, Any, tuple[int, ...]]:
    c, p, t = resolve_context(ctx, predicted, target, names)
    return c, p, t, check_same_shape(c, p, t, names)


def _keep_nan(c: Context, out: Any, *inputs: Any) -> Any:
    """NaN wherever an input is NaN: a branch that selects a constant must not hide it."""
    for x in inputs:
        out = c.where(c.isnan(x), x, out)
    return out


# --------------------------------------------------------------------------------------------
# MSE
# --------------------------------------------------------------------------------------------


def mse_spec(predicted: Any, target: Any, /, *, ctx: Context | Any = None) -> Any:
    """Mean squared error.

    value: ``sum(d**2) / n``; derivative: :func:`mse_deriv_spec`, ``2 d / n``; smooth, no kink.

    PyTorch: ``F.mse_loss(predicted, target)`` (which broadcasts mismatched shapes with a
    warning and returns nan on empty input; this raises, and returns 0).
    """
    c, p, t, shape = _begin(ctx, predicted, target)
    with c.scope():
        d = p - t
        return c.finish_value(mean_over(c.sum(d * d), shape))


def mse_deriv_spec(predicted: Any, target: Any, /, *, ctx: Context | Any = None) -> Any:
    """Derivative of :func:`mse_spec` w.r.t. ``predicted``: ``2 d / n``.

    PyTorch: the gradient of ``F.mse_loss``.
    """
    c, p, t, shape = _begin(ctx, predicted, target)
    with c.scope():
        # 2 (d / n) rounds as 2 d / n does, and 2 d cannot overflow first.
        return c.finish_deriv(2 * mean_over(p - t, shape))


# --------------------------------------------------------------------------------------------
# MAE
# --------------------------------------------------------------------------------------------


def mae_spec(predicted: Any, target: Any, /, *, ctx: Context | Any = None) -> Any:
    """Mean absolute error.

    value: ``sum(|d|) / n``; derivative: :func:`mae_deriv_spec`, ``sign(d) / n``.
    Kink at ``d = 0``: the derivative there is 0 (between the one-sided -1/n and 1/n).

    PyTorch: ``F.l1_loss(predicted, target)`` (its gradient at ``d = 0`` is 0 too).
    """
    c, p, t, shape = _begin(ctx, predicted, target)
    with c.scope():
        return c.finish_value(mean_over(c.sum(c.abs(p - t)), shape))


def mae_deriv_spec(predicted: Any, target: Any, /, *, ctx: Context | Any = None) -> Any:
    """Derivative of :func:`mae_spec` w.r.t. ``predicted``: ``sign(d) / n``, ``sign(0) = 0``.

    PyTorch: the gradient of ``F.l1_loss``.
    """
    c, p, t, shape = _begin(ctx, predicted, target)
    with c.scope():
        return c.finish_deriv(mean_over(c.sign(p - t), shape))


# --------------------------------------------------------------------------------------------
# Huber / SmoothL1
# --------------------------------------------------------------------------------------------


def huber_spec(predicted: Any, target: Any, /, *, delta: float = 1.0,
               ctx: Context | Any = None) -> Any:
    """Huber / SmoothL1 loss with threshold ``delta >= 0``.

    value: ``sum(h(d)) / n`` with ``h(d) = d**2 / (2 delta)`` if ``|d| < delta`` else
    ``|d| - delta / 2``; derivative: :func:`huber_deriv_spec`, ``(d / delta`` if ``|d| < delta``
    else ``sign(d)) / n``. Continuously differentiable for ``delta > 0``; ``delta = 0`` is the
    MAE (kink at ``d = 0``, derivative 0 there).

    PyTorch: ``F.smooth_l1_loss(predicted, target, beta=delta)``, which equals
    ``F.huber_loss(predicted, target, delta=delta) / delta``.
    """
    delta = check_delta(delta)
    if delta == 0:
        return mae_spec(predicted, target, ctx=ctx)
    c, p, t, shape = _begin(ctx, predicted, target)
    with c.scope():
        dl = c.const(delta)
        a = c.abs(p - t)
        # min(|d|, delta) keeps the discarded quadratic branch from overflowing.
        m = c.minimum(a, dl)
        h = c.where(c.lt(a, dl), m * m / (2 * dl), a - dl / 2)
        return c.finish_value(mean_over(c.sum(h), shape))


def huber_deriv_spec(predicted: Any, target: Any, /, *, delta: float = 1.0,
                     ctx: Context | Any = None) -> Any:
    """Derivative of :func:`huber_spec` w.r.t. ``predicted``:
    ``(d / delta if |d| < delta else sign(d)) / n`` (``sign(d) / n`` when ``delta = 0``).

    PyTorch: the gradient of ``F.smooth_l1_loss(beta=delta)``.
    """
    delta = check_delta(delta)
    if delta == 0:
        return mae_deriv_spec(predicted, target, ctx=ctx)
    c, p, t, shape = _begin(ctx, predicted, target)
    with c.scope():
        dl = c.const(delta)
        d = p - t
        g = c.where(c.lt(c.abs(d), dl), d / dl, c.sign(d))
        return c.finish_deriv(mean_over(g, shape))


# --------------------------------------------------------------------------------------------
# Cross-entropy on probabilities
# --------------------------------------------------------------------------------------------


def _clip_probability(c: Context, p: Any, epsilon: float) -> tuple[Any, Any, Any]:
    """``(clamp(p, eps, 1 - eps), eps, 1 - eps)`` as scalars of the context."""
    eps = c.const(epsilon)
    hi = 1 - eps
    return c.minimum(c.maximum(p, eps), hi), eps, hi


def _log_clipped(c: Context, p: Any, epsilon: float) -> tuple[Any, Any]:
    """``(log(q), log(1 - q))`` for ``q = clamp(p, eps, 1 - eps)``, each to the last bit.

    ``1 - q = clamp(1 - p, eps, 1 - eps)``, and in binary floats ``1 - p`` is exact for
    ``p >= 1/2``; so below 1/2 the logs are ``log(q)``, ``log1p(-q)`` and from 1/2 on
    ``log1p(-(1 - q))``, ``log(1 - q)``: the same reals, but a clamped value is ``log1p(-eps)``
    (not the log of ``1 - eps`` rounded, 1e-11 off) and ``log(1 - q)`` stays finite where
    ``1 - eps`` rounds to 1 (``eps < 2**-53``).
    """
    q, eps, hi = _clip_probability(c, p, epsilon)
    r = c.minimum(c.maximum(1 - p, eps), hi)
    low = c.lt(2 * p, 1)
    return c.where(low, c.log(q), c.log1p(-r)), c.where(low, c.log1p(-q), c.log(r))


def _strictly_inside(c: Context, p: Any, epsilon: float) -> Any:
    """``eps < p < 1 - eps``, the upper test as ``eps < 1 - p``: exact in floats (``1 - p``
    is), so the kink sits at the real ``1 - eps``, not at its rounding."""
    eps = c.const(epsilon)
    return c.logical_and(c.lt(eps, p), c.lt(eps, 1 - p))


def cross_entropy_spec(predicted: Any, target: Any, /, *, epsilon: float = EPSILON,
                       ctx: Context | Any = None) -> Any:
    """Cross-entropy between a target distribution and predicted probabilities.

    value: ``-sum(t * log(q)) / n``, ``q = clamp(predicted, eps, 1 - eps)``, ``n`` over ALL
    elements (not per row); derivative: :func:`cross_entropy_deriv_spec`.

    PyTorch: no single function; ``-(t * q.clamp(eps, 1 - eps).log()).mean()``.
    """
    epsilon = check_epsilon(epsilon)
    c, p, t, shape = _begin(ctx, predicted, target)
    with c.scope():
        log_q, _ = _log_clipped(c, p, epsilon)
        return c.finish_value(mean_over(-c.sum(t * log_q), shape))


def cross_entropy_deriv_spec(predicted: Any, target: Any, /, *, epsilon: float = EPSILON,
                             ctx: Context | Any = None) -> Any:
    """Derivative of :func:`cross_entropy_spec` w.r.t. ``predicted``:
    ``-t / p / n`` where ``eps < p < 1 - eps``, else 0 (the clamp is constant there).

    Kinks at ``p = eps`` and ``p = 1 - eps``: the derivative there is 0, which lies between the
    one-sided derivatives. (Early TorchLean code returned ``-t / clamp(p)`` everywhere, which is
    not the derivative of the clamped value.)

    PyTorch: autograd of ``-(t * p.clamp(eps, 1 - eps).log()).mean()`` agrees strictly inside
    and strictly outside the clamp; at the bounds autograd passes the gradient through.
    """
    epsilon = check_epsilon(epsilon)
    c, p, t, shape = _begin(ctx, predicted, target)
    with c.scope():
        inside = _strictly_inside(c, p, epsilon)
        # The clamped q equals p where the branch is taken; elsewhere it keeps the discarded
        # branch finite (no division by zero, no NaN gradients through `where`).
        q, _, _ = _clip_probability(c, p, epsilon)
        g = c.where(inside, -t / q, 0)
        return c.finish_deriv(mean_over(_keep_nan(c, g, p, t), shape))


# --------------------------------------------------------------------------------------------
# Cross-entropy on logits
# --------------------------------------------------------------------------------------------

_LT = ("logits", "target")


def cross_entropy_logits_spec(logits: Any, target: Any, /, *, ctx: Context | Any = None) -> Any:
    """Cross-entropy on logits, softmax over the LAST axis, stable log-softmax form.

    value: ``-sum(t * log_softmax(z)) / n``, ``n`` over ALL elements (every class of every row);
    derivative: :func:`cross_entropy_logits_deriv_spec`. Smooth. Targets need not be
    normalised.

    PyTorch: ``F.cross_entropy(z.movedim(-1, 1), t.movedim(-1, 1), reduction="sum") / z.numel()``
    (PyTorch's own mean divides by the number of rows instead).
    """
    c, z, t, shape = _begin(ctx, logits, target, _LT)
    _require_axis(c, z, "logits")
    with c.scope():
        if 0 in shape:
            return c.finish_value(c.sum(z))
        s, r = shifted(c, z)
        return c.finish_value(mean_over(-c.sum(t * (s - c.log1p(r))), shape))


def cross_entropy_logits_deriv_spec(logits: Any, target: Any, /, *,
                                    ctx: Context | Any = None) -> Any:
    """Derivative of :func:`cross_entropy_logits_spec` w.r.t. ``logits``:
    ``(softmax(z) * sum_last(t) - t) / n``.

    This equals ``(softmax(z) - t) / n`` only when every target slice sums to 1 (the seed's
    docstring assumes that; this formula does not need it).

    PyTorch: the gradient of the expression in :func:`cross_entropy_logits_spec`.
    """
    c, z, t, shape = _begin(ctx, logits, target, _LT)
    _require_axis(c, z, "logits")
    with c.scope():
        if 0 in shape:
            return c.finish_deriv(z - t)
        mass = c.sum(t, axis=-1, keepdims=True)
        s, r = shifted(c, z)
        sm = c.exp(s) / (1 + r)
        # Where softmax > 1/2 it is formed as 1 + (expm1(s) - r) / (1 + r), the same real
        # number, so softmax * mass - t = mass * (softmax - 1) + (mass - t) cancels nothing.
        near_one = mass * ((c.expm1(s) - r) / (1 + r)) + (mass - t)
        return c.finish_deriv(mean_over(c.where(c.lt(1, 2 * sm), near_one, sm * mass - t),
                                        shape))


# --------------------------------------------------------------------------------------------
# Hinge
# --------------------------------------------------------------------------------------------


def hinge_spec(predicted: Any, target: Any, /, *, ctx: Context | Any = None) -> Any:
    """Hinge (SVM margin) loss, targets usually -1 or 1 (any real target is accepted).

    value: ``sum(max(0, 1 - t * x)) / n``; derivative: :func:`hinge_deriv_spec`.

    PyTorch: ``torch.clamp(1 - t * x, min=0).mean()``.
    """
    c, x, t, shape = _begin(ctx, predicted, target)
    with c.scope():
        return c.finish_value(mean_over(c.sum(c.maximum(1 - t * x, 0)), shape))


def hinge_deriv_spec(predicted: Any, target: Any, /, *, ctx: Context | Any = None) -> Any:
    """Derivative of :func:`hinge_spec` w.r.t. ``predicted``: ``-t / n`` where
    ``1 - t * x > 0``, else 0.

    Kink at the margin ``t * x = 1``: the derivative there is 0 (between the one-sided 0 and
    ``-t / n``), as ``relu(1 - t * x)`` gives in PyTorch; ``clamp(min=0)`` gives ``-t / n``
    there and ``torch.maximum(., 0)`` gives ``-t / (2 n)``.
    """
    c, x, t, shape = _begin(ctx, predicted, target)
    with c.scope():
        g = c.where(c.lt(0, 1 - t * x), -t, 0)
        return c.finish_deriv(mean_over(_keep_nan(c, g, x, t), shape))


# --------------------------------------------------------------------------------------------
# Poisson
# --------------------------------------------------------------------------------------------


def _check_counts(c: Context, t: Any, check_domain: bool, what: str) -> Any:
    if not check_domain:
        return t
    return c.check_range(t, name="target", lo=0, hi=None, what=what)


def poisson_spec(predicted: Any, target: Any, /, *, check_domain: bool = True,
                 ctx: Context | Any = None) -> Any:
    """Poisson negative log-likelihood, ``predicted`` = log-rate, ``target`` = count >= 0.

    value: ``sum(exp(x) - t * x) / n`` (the constant ``log(t!)`` is dropped); derivative:
    :func:`poisson_deriv_spec`. Smooth. Negative targets raise
    :class:`~torchlean.errors.DomainError` unless ``check_domain=False``.

    PyTorch: ``F.poisson_nll_loss(x, t, log_input=True, full=False)``.
    """
    c, x, t, shape = _begin(ctx, predicted, target)
    t = _check_counts(c, t, check_domain, "poisson_spec (counts)")
    with c.scope():
        return c.finish_value(mean_over(c.sum(c.exp(x) - t * x), shape))


def poisson_deriv_spec(predicted: Any, target: Any, /, *, check_domain: bool = True,
                       ctx: Context | Any = None) -> Any:
    """Derivative of :func:`poisson_spec` w.r.t. ``predicted``: ``(exp(x) - t) / n``.

    For ``1/2 <= t <= 2`` it is formed as ``expm1(x) - (t - 1)``, the same real number: ``t - 1``
    is then exact in floats, so a log-rate near 0 with a count of 1 loses nothing to the
    rounding of ``exp(x)`` near 1. Elsewhere ``exp(x) - t`` may still cancel when
    ``exp(x)`` is close to ``t``; the error then stays within an ulp of the larger term.

    PyTorch: the gradient of ``F.poisson_nll_loss(log_input=True, full=False)``.
    """
    c, x, t, shape = _begin(ctx, predicted, target)
    t = _check_counts(c, t, check_domain, "poisson_deriv_spec (counts)")
    with c.scope():
        near_one = c.logical_and(c.le(1, 2 * t), c.le(t, 2))
        g = c.where(near_one, c.expm1(x) - (t - 1), c.exp(x) - t)
        return c.finish_deriv(mean_over(g, shape))


# --------------------------------------------------------------------------------------------
# Cosine similarity
# --------------------------------------------------------------------------------------------


def _norm_scale(shape: tuple[int, ...]) -> float:
    """``2**-k`` with ``4**k >= n``: ``||s x|| <= max|x|``, so the norm of ``s x`` is finite
    wherever ``x`` is, and scaling by a power of 2 is exact (short of the subnormals, far below
    anything a norm clamped at ``eps`` can see)."""
    k = ((mean_denominator(shape) - 1).bit_length() + 1) // 2
    return 2.0**-k


def _unit_vectors(c: Context, p: Any, t: Any, epsilon: float,
                  shape: tuple[int, ...]) -> tuple[Any, Any, Any, Any, Any, Any]:
    """``(u, v, sP, sT, s eps, s)``: ``u = p / max(P, eps)``, ``v = t / max(T, eps)`` computed
    from ``s p`` and ``s t`` (the same reals), so neither norm overflows where the cosine is
    finite; ``P = ||p||``, ``T = ||t||``."""
    s = c.const(_norm_scale(shape))
    es = c.const(epsilon) * s
    ps, ts = p * s, t * s
    pn, tn = c.norm(ps), c.norm(ts)
    return ps / c.maximum(pn, es), ts / c.maximum(tn, es), pn, tn, es, s


def cosine_similarity_spec(predicted: Any, target: Any, /, *, epsilon: float = EPSILON,
                           ctx: Context | Any = None) -> Any:
    """Cosine-similarity loss over the WHOLE tensor (one vector; no mean).

    value: ``1 - (p . t) / (max(||p||, eps) * max(||t||, eps))``, evaluated as
    ``1 - sum(u * v)`` with ``u = p / max(||p||, eps)``, ``v = t / max(||t||, eps)`` (norms
    taken of ``p`` and ``t`` scaled by a power of 2 ``<= 1 / sqrt(n)``) so nothing overflows,
    not even a norm above the largest float, and as ``sum((u - v)**2) / 2`` (the same real
    number) where both norms exceed ``eps``, so nearly parallel vectors do not cancel
    ``1 - u . v`` away;
    derivative: :func:`cosine_similarity_deriv_spec`. An empty tensor gives 1.

    PyTorch: ``1 - F.cosine_similarity(p.flatten(), t.flatten(), dim=0, eps=eps)``.
    """
    epsilon = check_epsilon(epsilon)
    c, p, t, shape = _begin(ctx, predicted, target)
    with c.scope():
        # Normalise before the dot product: p.t itself may overflow when the cosine does not.
        u, v, pn, tn, es, _ = _unit_vectors(c, p, t, epsilon, shape)
        # Unit u and v: 1 - u.v = |u - v|**2 / 2, without the cancellation of 1 - u.v.
        w = u - v
        unit = c.logical_and(c.lt(es, pn), c.lt(es, tn))
        return c.finish_value(c.where(unit, c.sum(w * w) / 2, 1 - c.sum(u * v)))


def cosine_similarity_deriv_spec(predicted: Any, target: Any, /, *, epsilon: float = EPSILON,
                                 ctx: Context | Any = None) -> Any:
    """Derivative of :func:`cosine_similarity_spec` w.r.t. ``predicted``.

    With ``P = ||p||``, ``T = max(||t||, eps)``: where ``P > eps``,
    ``((p . t) / P**2 * p - t) / (P * T)``, i.e. ``(p . t) / (P**3 T) p - t / (P T)``;
    where ``P <= eps`` the norm is clamped, so the radial term vanishes: ``-t / (eps * T)``.
    Kink at ``P = eps``: the clamped-side derivative is chosen. Evaluated in unit-free form,
    ``u = p / max(P, eps)``, ``v = t / T``: ``((u . v) u - v) / P`` or ``-v / eps``, so no
    intermediate overflows (the norms are taken of ``s p`` and ``s t``, ``s`` a power of 2
    ``<= 1 / sqrt(n)``, and ``/ P`` is ``/ (s P) * s``).

    The seed's docstring shows ``||p||**2`` in the first coefficient; the derivative of the value
    has ``||p||**3`` (with ``||p||**2`` the result is not even orthogonal to ``p`` when the
    loss is scale-invariant).

    PyTorch: the gradient of ``1 - F.cosine_similarity(...)`` agrees where ``P > eps`` (and
    ``||t|| > eps``); below ``eps`` PyTorch ignores the clamp in its gradient.
    """
    epsilon = check_epsilon(epsilon)
    c, p, t, shape = _begin(ctx, predicted, target)
    with c.scope():
        # In unit-free form, u = p / P, v = t / T: ((u.v) u - v) / P where P > eps, else
        # -v / eps (= -v / P there); nothing of the size of p.t is ever formed.
        u, v, pn, tn, es, s = _unit_vectors(c, p, t, epsilon, shape)
        cos = c.sum(u * v)
        g = c.where(c.lt(es, pn), cos * u - v, -v) / c.maximum(pn, es) * s
        return c.finish_deriv(_keep_nan(c, g, pn, tn, cos))


# --------------------------------------------------------------------------------------------
# Log-cosh
# --------------------------------------------------------------------------------------------


def log_cosh_spec(predicted: Any, target: Any, /, *, ctx: Context | Any = None) -> Any:
    """Log-cosh loss.

    value: ``sum(log(cosh(d))) / n``, evaluated without overflow and without cancellation:
    with ``a = |d|``, ``log1p(expm1(a) * -expm1(-a) / 2)`` for ``a < 1`` (that is
    ``log1p(cosh(a) - 1)``) and ``a + log1p(expm1(-2a) / 2)`` otherwise (that is
    ``a + log((1 + exp(-2a)) / 2)``); both are ``log(cosh(d))`` exactly in the reals.
    Derivative: :func:`log_cosh_deriv_spec`. Smooth.

    PyTorch: no function; ``torch.log(torch.cosh(d)).mean()`` overflows for ``|d| > 710.5``
    (float64) and ``89.4`` (float32).
    """
    c, p, t, shape = _begin(ctx, predicted, target)
    with c.scope():
        a = c.abs(p - t)
        # b = min(a, 1) equals a where the small branch is taken and keeps expm1 finite.
        b = c.minimum(a, 1)
        small = c.log1p(c.expm1(b) * -c.expm1(-b) / 2)
        large = a + c.log1p(c.expm1(-2 * a) / 2)
        return c.finish_value(mean_over(c.sum(c.where(c.lt(a, 1), small, large)), shape))


def log_cosh_deriv_spec(predicted: Any, target: Any, /, *, ctx: Context | Any = None) -> Any:
    """Derivative of :func:`log_cosh_spec` w.r.t. ``predicted``: ``tanh(d) / n``.

    PyTorch: the gradient of ``torch.log(torch.cosh(d)).mean()`` where that does not overflow.
    """
    c, p, t, shape = _begin(ctx, predicted, target)
    with c.scope():
        return c.finish_deriv(mean_over(c.tanh(p - t), shape))


# --------------------------------------------------------------------------------------------
# Binary cross-entropy on probabilities
# --------------------------------------------------------------------------------------------


def _bce(c: Context, p: Any, t: Any, epsilon: float) -> Any:
    log_q, log_1mq = _log_clipped(c, p, epsilon)
    return -(t * log_q + (1 - t) * log_1mq)


def _bce_deriv(c: Context, p: Any, t: Any, epsilon: float) -> Any:
    q, _, _ = _clip_probability(c, p, epsilon)
    inside = _strictly_inside(c, p, epsilon)
    # q equals p on the branch taken; it keeps the discarded branch finite.
    return _keep_nan(c, c.where(inside, (q - t) / (q * (1 - q)), 0), p, t)


def _check_probabilities(c: Context, t: Any, check_domain: bool, what: str) -> Any:
    if not check_domain:
        return t
    return c.check_range(t, name="target", lo=0, hi=1, what=what)


def _require_scalar(c: Context, p: Any, t: Any) -> None:
    for name, x in zip(_PT, (p, t), strict=True):
        if tuple(c.shape(x)) != ():
            raise ShapeError(
                f"`{name}` must be a scalar (shape ()) for binary_cross_entropy_spec; got shape "
                f"{fmt_shape(tuple(c.shape(x)))} (use binary_cross_entropy_tensor_spec)"
            )


def _scalar_result(predicted: Any, target: Any, value: Any) -> Any:
    if all(isinstance(v, int | float) for v in (predicted, target)):
        return float(value)
    return value


def binary_cross_entropy_spec(predicted: Any, target: Any, /, *, epsilon: float = EPSILON,
                              check_domain: bool = True, ctx: Context | Any = None) -> Any:
    """Binary cross-entropy of one probability ``p`` against one target ``y`` in [0, 1].

    value: ``-(y log q + (1 - y) log(1 - q))``, ``q = clamp(p, eps, 1 - eps)`` (``log(1 - q)``
    through ``log1p``); the target is not clipped, and a target outside [0, 1] raises
    :class:`~torchlean.errors.DomainError` unless ``check_domain=False``. Derivative:
    :func:`binary_cross_entropy_deriv_spec`. Python numbers in give a Python float out.

    PyTorch: ``F.binary_cross_entropy`` agrees for ``eps <= p <= 1 - eps``; outside it PyTorch
    does not clip ``p`` but clamps each log at -100.
    """
    epsilon = check_epsilon(epsilon)
    c, p, t, _ = _begin(ctx, predicted, target)
    _require_scalar(c, p, t)
    t = _check_probabilities(c, t, check_domain, "binary_cross_entropy_spec")
    with c.scope():
        return _scalar_result(predicted, target, c.finish_value(_bce(c, p, t, epsilon)))


def binary_cross_entropy_deriv_spec(predicted: Any, target: Any, /, *,
                                    epsilon: float = EPSILON, check_domain: bool = True,
                                    ctx: Context | Any = None) -> Any:
    """Derivative of :func:`binary_cross_entropy_spec` w.r.t. ``p``:
    ``(p - y) / (p (1 - p))`` where ``eps < p < 1 - eps``, else 0 (the clamp is constant).

    Kinks at ``p = eps`` and ``p = 1 - eps``: 0 there, between the one-sided derivatives.

    PyTorch: ``F.binary_cross_entropy``'s gradient ``(p - y) / max(p (1 - p), 1e-12)`` agrees
    strictly inside the clamp.
    """
    epsilon = check_epsilon(epsilon)
    c, p, t, _ = _begin(ctx, predicted, target)
    _require_scalar(c, p, t)
    t = _check_probabilities(c, t, check_domain, "binary_cross_entropy_deriv_spec")
    with c.scope():
        return _scalar_result(predicted, target, c.finish_value(_bce_deriv(c, p, t, epsilon)))


def binary_cross_entropy_tensor_spec(predicted: Any, target: Any, /, *,
                                     epsilon: float = EPSILON, check_domain: bool = True,
                                     ctx: Context | Any = None) -> Any:
    """Binary cross-entropy of tensors: the mean of :func:`binary_cross_entropy_spec`.

    value: ``sum(bce(p_i, y_i)) / n``; derivative:
    :func:`binary_cross_entropy_tensor_deriv_spec`.

    PyTorch: ``F.binary_cross_entropy(p, y)`` for ``eps <= p <= 1 - eps``.
    """
    epsilon = check_epsilon(epsilon)
    c, p, t, shape = _begin(ctx, predicted, target)
    t = _check_probabilities(c, t, check_domain, "binary_cross_entropy_tensor_spec")
    with c.scope():
        return c.finish_value(mean_over(c.sum(_bce(c, p, t, epsilon)), shape))


def binary_cross_entropy_tensor_deriv_spec(predicted: Any, target: Any, /, *,
                                           epsilon: float = EPSILON, check_domain: bool = True,
                                           ctx: Context | Any = None) -> Any:
    """Derivative of :func:`binary_cross_entropy_tensor_spec`: the elementwise derivative of
    :func:`binary_cross_entropy_deriv_spec` divided by ``n`` (0 where the clamp is active).

    PyTorch: the gradient of ``F.binary_cross_entropy`` strictly inside ``(eps, 1 - eps)``.
    """
    epsilon = check_epsilon(epsilon)
    c, p, t, shape = _begin(ctx, predicted, target)
    t = _check_probabilities(c, t, check_domain, "binary_cross_entropy_tensor_deriv_spec")
    with c.scope():
        return c.finish_deriv(mean_over(_bce_deriv(c, p, t, epsilon), shape))


# --------------------------------------------------------------------------------------------
# Configuration: LossType and Loss
# --------------------------------------------------------------------------------------------


class LossType(Enum):
    """The eight loss families of TorchLean's ``Spec.LossType``."""

    MSE = "mse"
    MAE = "mae"
    HUBER = "huber"
    CROSS_ENTROPY = "cross_entropy"
    HINGE = "hinge"
    POISSON = "poisson"
    COSINE_SIMILARITY = "cosine_similarity"
    LOG_COSH = "log_cosh"


@dataclass(frozen=True)
class Loss:
    """A loss configuration: the family and its parameters (TorchLean's ``Spec.Loss``).

    ``delta`` is used by Huber, ``epsilon`` by cross-entropy and cosine similarity; both are
    checked at construction. TorchLean's phantom type parameters have no runtime meaning.
    """

    loss_type: LossType
    delta: float = 1.0
    epsilon: float = EPSILON

    def __post_init__(self) -> None:
        if not isinstance(self.loss_type, LossType):
            from torchlean.errors import ParameterError

            raise ParameterError(
                f"`loss_type` must be a LossType; got {type(self.loss_type).__name__}"
            )
        check_delta(self.delta)
        check_epsilon(self.epsilon)

    @classmethod
    def mse(cls) -> Loss:
        """MSE: :func:`mse_spec`."""
        return cls(LossType.MSE)

    @classmethod
    def mae(cls) -> Loss:
        """MAE: :func:`mae_spec`."""
        return cls(LossType.MAE)

    @classmethod
    def huber(cls, delta: float = 1.0) -> Loss:
        """Huber / SmoothL1: :func:`huber_spec`."""
        return cls(LossType.HUBER, delta=delta)

    @classmethod
    def cross_entropy(cls, epsilon: float = EPSILON) -> Loss:
        """Cross-entropy on probabilities: :func:`cross_entropy_spec`."""
        return cls(LossType.CROSS_ENTROPY, epsilon=epsilon)

    @classmethod
    def hinge(cls) -> Loss:
        """Hinge: :func:`hinge_spec`."""
        return cls(LossType.HINGE)

    @classmethod
    def poisson(cls) -> Loss:
        """Poisson NLL on log-rates: :func:`poisson_spec`."""
        return cls(LossType.POISSON)

    @classmethod
    def cosine_similarity(cls, epsilon: float = EPSILON) -> Loss:
        """Cosine-similarity loss: :func:`cosine_similarity_spec`."""
        return cls(LossType.COSINE_SIMILARITY, epsilon=epsilon)

    @classmethod
    def log_cosh(cls) -> Loss:
        """Log-cosh: :func:`log_cosh_spec`."""
        return cls(LossType.LOG_COSH)

    @property
    def params(self) -> dict[str, float]:
        """The keyword parameters this family's spec takes."""
        if self.loss_type is LossType.HUBER:
            return {"delta": self.delta}
        if self.loss_type in (LossType.CROSS_ENTROPY, LossType.COSINE_SIMILARITY):
            return {"epsilon": self.epsilon}
        return {}

    def value(self, predicted: Any, target: Any, /, *, ctx: Context | Any = None) -> Any:
        """The loss value (the family's ``*_spec``)."""
        from torchlean.registry import get_loss

        return get_loss(self.loss_type.value).value(predicted, target, ctx=ctx, **self.params)

    def deriv(self, predicted: Any, target: Any, /, *, ctx: Context | Any = None) -> Any:
        """The derivative w.r.t. ``predicted`` (the family's ``*_deriv_spec``)."""
        from torchlean.registry import get_loss

        return get_loss(self.loss_type.value).deriv(predicted, target, ctx=ctx, **self.params)

    def value_and_deriv(self, predicted: Any, target: Any, /, *,
                        ctx: Context | Any = None) -> tuple[Any, Any]:
        """``(value, deriv)`` together (one fused pass where a fast kernel exists)."""
        from torchlean.registry import value_and_deriv

        return value_and_deriv(self.loss_type.value, predicted, target, ctx=ctx, **self.params)
