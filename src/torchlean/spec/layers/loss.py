"""Loss functions and their derivatives: THE one definition (TorchLean's ``NN.Spec.Layers.Loss``).

Every loss is declared once below with :func:`~torchlean.spec.core.declaration.define_loss`,
the API users declare their own losses with: its value and derivative terms written against the
:class:`~torchlean.spec.core.context.Context` (the context decides what numbers, branches and
sums mean: floats of any Array API library, sympy expressions, rationals, 50-digit mpmath, arb
intervals, binary32), its parameters and their validators, its kinks and clamp bounds, its
domain and its PyTorch reference. The seed's functions (``mse_spec``, ``mse_deriv_spec``, ...)
delegate to the declarations. Nothing else in the package restates these formulas, except fast
kernels that the test suite holds equal to them.

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

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from torchlean.errors import ParameterError, ShapeError, fmt_shape
from torchlean.spec.core.context import Context, resolve_context
from torchlean.spec.core.declaration import (
    REGISTRY,
    Domain,
    LossDeclaration,
    Param,
    Seam,
    Zone,
    define_loss,
)
from torchlean.spec.core.tensor import (
    check_delta,
    check_epsilon,
    check_same_shape,
    is_real_number,
    mean_denominator,
    mean_over,
    to_scalar_spec,
)
from torchlean.spec.layers.activation import shifted

__all__ = [
    "BINARY_CROSS_ENTROPY",
    "COSINE_SIMILARITY",
    "CROSS_ENTROPY",
    "CROSS_ENTROPY_LOGITS",
    "EPSILON",
    "HINGE",
    "HUBER",
    "LOG_COSH",
    "MAE",
    "MSE",
    "POISSON",
    "PSEUDO_HUBER",
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

#: every package loss is evaluated without overflow where its value is finite: certify feeds
#: it magnitudes up to here
_LARGEST = 1e300

_DELTA = Param("delta", 1.0, check_delta, "threshold between the quadratic and linear parts")
_EPS = Param("epsilon", EPSILON, check_epsilon,
             "probability clamp, 0 < epsilon < 0.5: p is read as clamp(p, eps, 1 - eps)")


def _check_norm_floor(epsilon: Any) -> float:
    """Cosine similarity's ``epsilon``, the floor of both norms (not a probability): any finite
    real number > 0, PyTorch's own examples use 0.5. The number given is checked, and so is its
    float64 rounding, which every semantics uses: one that rounds to 0 or beyond the float64
    range is refused rather than silently changed."""
    expected = "a finite number > 0 (the floor of both norms)"
    text = repr(epsilon)
    if len(text) > 60:  # a huge exact number, abridged
        text = f"{text[:28]}...{text[-28:]}"
    if not is_real_number(epsilon) or not epsilon > 0 or epsilon == math.inf:
        raise ParameterError(f"`epsilon` must be {expected}; got {text}")
    try:
        value = float(epsilon)
    except OverflowError:
        value = math.inf
    if not 0 < value < math.inf:
        raise ParameterError(
            f"`epsilon` must be {expected} after rounding to float64; got {text}, which rounds "
            f"to {value!r}"
        )
    return value


_NORM_EPS = Param("epsilon", EPSILON, _check_norm_floor,
                  "floor of both norms, any finite number > 0")


def _keep_nan(c: Context, out: Any, *inputs: Any) -> Any:
    """NaN wherever an input is NaN: a branch that selects a constant must not hide it."""
    for x in inputs:
        out = c.where(c.isnan(x), x, out)
    return out


def _F() -> Any:
    import torch.nn.functional as F

    return F


def _torch() -> Any:
    import torch

    return torch


# --------------------------------------------------------------------------------------------
# MSE
# --------------------------------------------------------------------------------------------


def _mse(c: Context, p: Any, t: Any) -> Any:
    d = p - t
    return d * d


def _mse_deriv(c: Context, p: Any, t: Any, *, n: int) -> Any:
    # 2 (d / n) rounds as 2 d / n does, and 2 d cannot overflow first.
    return 2 * ((p - t) / n)


def _mse_second(c: Context, p: Any, t: Any) -> Any:
    d = p - t
    return c.where(c.isnan(d), d, 2)


MSE: LossDeclaration = define_loss(
    "mse", formula="sum(d**2) / n", derivative_text="2 d / n",
    second=_mse_second, second_text="2 / n", hessian_sign="positive",
    domain=Domain(largest=_LARGEST),
    kernel="torchlean.kernels.terms:mse",
    torch_reference=lambda p, t: _F().mse_loss(p, t), torch_text="F.mse_loss(p, t)",
    deriv=_mse_deriv)(_mse)


def mse_spec(predicted: Any, target: Any, /, *, ctx: Context | Any = None) -> Any:
    """Mean squared error.

    value: ``sum(d**2) / n``; derivative: :func:`mse_deriv_spec`, ``2 d / n``; smooth, no kink.

    PyTorch: ``F.mse_loss(predicted, target)`` (which broadcasts mismatched shapes with a
    warning and returns nan on empty input; this raises, and returns 0).
    """
    return MSE.evaluate(True, predicted, target, ctx=ctx)


def mse_deriv_spec(predicted: Any, target: Any, /, *, ctx: Context | Any = None) -> Any:
    """Derivative of :func:`mse_spec` w.r.t. ``predicted``: ``2 d / n``.

    PyTorch: the gradient of ``F.mse_loss``.
    """
    return MSE.evaluate(False, predicted, target, ctx=ctx)


# --------------------------------------------------------------------------------------------
# MAE
# --------------------------------------------------------------------------------------------


def _mae(c: Context, p: Any, t: Any) -> Any:
    return c.abs(p - t)


def _mae_deriv(c: Context, p: Any, t: Any) -> Any:
    return c.sign(p - t)


def _zero_second(c: Context, p: Any, t: Any, **_: Any) -> Any:
    # a piecewise-linear value: no curvature anywhere it is differentiable
    d = p - t
    return c.where(c.isnan(d), d, 0)


MAE: LossDeclaration = define_loss(
    "mae", formula="sum(|d|) / n", derivative_text="sign(d) / n, sign(0) = 0",
    second=_zero_second, second_text="0 (at d = 0 too)", hessian_sign="zero",
    domain=Domain(largest=_LARGEST),
    kernel="torchlean.kernels.terms:mae",
    seams=[Seam("residual", lambda k, prm: k.const(0), "d = 0", choice="derivative 0",
                second_choice="second derivative 0")],
    torch_reference=lambda p, t: _F().l1_loss(p, t), torch_text="F.l1_loss(p, t)",
    deriv=_mae_deriv)(_mae)


def mae_spec(predicted: Any, target: Any, /, *, ctx: Context | Any = None) -> Any:
    """Mean absolute error.

    value: ``sum(|d|) / n``; derivative: :func:`mae_deriv_spec`, ``sign(d) / n``.
    Kink at ``d = 0``: the derivative there is 0 (between the one-sided -1/n and 1/n).

    PyTorch: ``F.l1_loss(predicted, target)`` (its gradient at ``d = 0`` is 0 too).
    """
    return MAE.evaluate(True, predicted, target, ctx=ctx)


def mae_deriv_spec(predicted: Any, target: Any, /, *, ctx: Context | Any = None) -> Any:
    """Derivative of :func:`mae_spec` w.r.t. ``predicted``: ``sign(d) / n``, ``sign(0) = 0``.

    PyTorch: the gradient of ``F.l1_loss``.
    """
    return MAE.evaluate(False, predicted, target, ctx=ctx)


# --------------------------------------------------------------------------------------------
# Huber / SmoothL1
# --------------------------------------------------------------------------------------------


def _huber(c: Context, p: Any, t: Any, *, delta: float) -> Any:
    a = c.abs(p - t)
    if delta == 0:
        return a
    dl = c.const(delta)
    # min(|d|, delta) keeps the discarded quadratic branch from overflowing.
    m = c.minimum(a, dl)
    return c.where(c.lt(a, dl), m * m / (2 * dl), a - dl / 2)


def _huber_deriv(c: Context, p: Any, t: Any, *, delta: float) -> Any:
    d = p - t
    if delta == 0:
        return c.sign(d)
    dl = c.const(delta)
    return c.where(c.lt(c.abs(d), dl), d / dl, c.sign(d))


def _huber_second(c: Context, p: Any, t: Any, *, delta: float) -> Any:
    d = p - t
    if delta == 0:
        return c.where(c.isnan(d), d, 0)
    return _keep_nan(c, c.where(c.lt(c.abs(d), c.const(delta)), 1 / c.const(delta), 0), d)


HUBER: LossDeclaration = define_loss(
    "huber", params=[_DELTA],
    second=_huber_second, hessian_sign="nonnegative",
    second_text="(1 / delta if |d| < delta else 0) / n",
    kernel="torchlean.kernels.terms:huber",
    formula="sum(h(d)) / n, h(d) = d**2 / (2 delta) if |d| < delta else |d| - delta / 2",
    derivative_text="(d / delta if |d| < delta else sign(d)) / n",
    kink_text="none for delta > 0 (C1); delta = 0 is mae",
    seams=[Seam("residual", lambda k, prm: -k.const(prm["delta"]), "d = -delta", kink=False,
                second_choice="second derivative 0 (the linear side)"),
           Seam("residual", lambda k, prm: k.const(prm["delta"]), "d = delta", kink=False,
                second_choice="second derivative 0 (the linear side)")],
    domain=Domain(largest=_LARGEST, text="predicted, target: real; delta >= 0"),
    torch_reference=lambda p, t, delta: _F().smooth_l1_loss(p, t, beta=delta),
    torch_text="F.smooth_l1_loss(p, t, beta=delta)",
    deriv=_huber_deriv)(_huber)


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
    return HUBER.evaluate(True, predicted, target, ctx=ctx, delta=delta)


def huber_deriv_spec(predicted: Any, target: Any, /, *, delta: float = 1.0,
                     ctx: Context | Any = None) -> Any:
    """Derivative of :func:`huber_spec` w.r.t. ``predicted``:
    ``(d / delta if |d| < delta else sign(d)) / n`` (``sign(d) / n`` when ``delta = 0``).

    PyTorch: the gradient of ``F.smooth_l1_loss(beta=delta)``.
    """
    return HUBER.evaluate(False, predicted, target, ctx=ctx, delta=delta)


# --------------------------------------------------------------------------------------------
# Pseudo-Huber
# --------------------------------------------------------------------------------------------


def _check_positive_delta(delta: Any) -> float:
    """Pseudo-Huber's ``delta``: a finite number > 0 (0 would divide by zero)."""
    value = check_delta(delta)
    if value == 0:
        raise ParameterError(f"`delta` must be a finite number > 0; got {delta!r}")
    return value


def _pseudo_huber(c: Context, p: Any, t: Any, *, delta: float) -> Any:
    dl = c.const(delta)
    ad = c.abs(p - t)
    a = ad / dl
    # each equals its quotient on the branch that reads it: m = |r| below 1, q = 1 / |r| above
    m, q = c.minimum(a, 1), dl / c.maximum(ad, dl)
    # delta**2 (sqrt(1 + r**2) - 1), r = d / delta, without cancellation: below |r| = 1 as
    # |d| (|d| / (sqrt(1 + r**2) + 1)); above as delta (|d| sqrt(1 + 1/r**2) - delta) (at
    # least 0.41 delta**2: nothing cancels). No step forms delta**2, r**2 or |r| above 1, any of
    # which may overflow where the loss does not.
    small = ad * (ad / (c.sqrt(1 + m * m) + 1))
    large = dl * (ad * c.sqrt(1 + q * q) - dl)
    return c.where(c.lt(a, 1), small, large)


def _pseudo_huber_deriv(c: Context, p: Any, t: Any, *, delta: float) -> Any:
    dl = c.const(delta)
    d = p - t
    ad = c.abs(d)
    a = ad / dl
    m, q = c.minimum(a, 1), dl / c.maximum(ad, dl)
    # d / sqrt(1 + r**2), as sign(d) delta / sqrt(1 + 1/r**2) from |d| = delta on
    return c.where(c.lt(a, 1), d / c.sqrt(1 + m * m), c.sign(d) * dl / c.sqrt(1 + q * q))


def _pseudo_huber_second(c: Context, p: Any, t: Any, *, delta: float) -> Any:
    dl = c.const(delta)
    ad = c.abs(p - t)
    a = ad / dl
    m, q = c.minimum(a, 1), dl / c.maximum(ad, dl)
    # (1 + r**2)**(-3/2); from |d| = delta on as (q / sqrt(1 + q**2))**3, q = 1 / |r|, so that
    # r**2 is never formed (it overflows where the result is merely small)
    sm = 1 / c.sqrt(1 + m * m)
    sq = q / c.sqrt(1 + q * q)
    return c.where(c.lt(a, 1), sm * sm * sm, sq * sq * sq)


PSEUDO_HUBER: LossDeclaration = define_loss(
    "pseudo_huber",
    second=_pseudo_huber_second, hessian_sign="positive",
    grad_hess_kernel="torchlean.kernels.grad_hess_terms:pseudo_huber",
    second_text="(1 + (d / delta)**2)**(-3/2) / n",
    kernel="torchlean.kernels.terms:pseudo_huber",
    params=[Param("delta", 1.0, _check_positive_delta, "scale of the quadratic region")],
    formula="sum(delta**2 (sqrt(1 + (d / delta)**2) - 1)) / n",
    derivative_text="d / sqrt(1 + (d / delta)**2) / n",
    # smooth everywhere; the evaluation form changes at |d| = delta
    seams=[Seam("residual", lambda k, prm: -k.const(prm["delta"]), "d = -delta", kink=False),
           Seam("residual", lambda k, prm: k.const(prm["delta"]), "d = delta", kink=False)],
    domain=Domain(largest=_LARGEST, text="predicted, target: real; delta > 0"),
    torch_reference=lambda p, t, delta: (
        delta**2 * (_torch().sqrt(1 + ((p - t) / delta) ** 2) - 1)).mean(),
    torch_text="(delta**2 * (torch.sqrt(1 + ((p - t) / delta)**2) - 1)).mean()",
    deriv=_pseudo_huber_deriv)(_pseudo_huber)


# --------------------------------------------------------------------------------------------
# Probability clamps (cross-entropy and BCE)
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


_CLAMP_SEAMS = [
    Seam("predicted", lambda k, prm: k.const(prm["epsilon"]), "p = eps", choice="derivative 0",
         second_choice="second derivative 0"),
    # the logs switch evaluation form here (through q below 1/2, through 1 - p above)
    Seam("predicted", lambda k, prm: k.const(0.5), "p = 1/2", kink=False),
    Seam("predicted", lambda k, prm: 1 - k.const(prm["epsilon"]), "p = 1 - eps",
         choice="derivative 0", second_choice="second derivative 0"),
]


# --------------------------------------------------------------------------------------------
# Cross-entropy on probabilities
# --------------------------------------------------------------------------------------------


def _torch_cross_entropy(p: Any, t: Any, epsilon: float) -> Any:
    return -(t * p.clamp(epsilon, 1 - epsilon).log()).mean()


def _cross_entropy(c: Context, p: Any, t: Any, *, epsilon: float) -> Any:
    log_q, _ = _log_clipped(c, p, epsilon)
    return -(t * log_q)


def _cross_entropy_deriv(c: Context, p: Any, t: Any, *, epsilon: float) -> Any:
    inside = _strictly_inside(c, p, epsilon)
    # The clamped q equals p where the branch is taken; elsewhere it keeps the discarded
    # branch finite (no division by zero, no NaN gradients through `where`).
    q, _, _ = _clip_probability(c, p, epsilon)
    return _keep_nan(c, c.where(inside, -t / q, 0), p, t)


def _cross_entropy_second(c: Context, p: Any, t: Any, *, epsilon: float) -> Any:
    inside = _strictly_inside(c, p, epsilon)
    q, _, _ = _clip_probability(c, p, epsilon)
    # (t / q) / q: q * q would underflow for a tiny eps
    return _keep_nan(c, c.where(inside, t / q / q, 0), p, t)


CROSS_ENTROPY: LossDeclaration = define_loss(
    "cross_entropy", params=[_EPS], seams=_CLAMP_SEAMS,
    second=_cross_entropy_second, hessian_sign="any",
    second_text="t / p**2 / n where eps < p < 1 - eps, else 0",
    kernel="torchlean.kernels.terms:cross_entropy",
    formula="-sum(t log(clamp(p, eps, 1 - eps))) / n, n over ALL elements",
    derivative_text="-t / p / n where eps < p < 1 - eps, else 0",
    domain=Domain(largest=_LARGEST, predicted=(-0.2, 1.2), target=(0.0, 1.0),
                  text="predicted: probabilities (clamped to [eps, 1-eps]); target: weights"),
    torch_reference=_torch_cross_entropy,
    torch_text="-(t * p.clamp(eps, 1 - eps).log()).mean()",
    # the name says it takes probabilities, unlike torch.nn.CrossEntropyLoss (logits)
    criterion_name="ProbabilityCrossEntropyLoss",
    deriv=_cross_entropy_deriv)(_cross_entropy)


def cross_entropy_spec(predicted: Any, target: Any, /, *, epsilon: float = EPSILON,
                       ctx: Context | Any = None) -> Any:
    """Cross-entropy between a target distribution and predicted probabilities.

    value: ``-sum(t * log(q)) / n``, ``q = clamp(predicted, eps, 1 - eps)``, ``n`` over ALL
    elements (not per row); derivative: :func:`cross_entropy_deriv_spec`.

    PyTorch: no single function; ``-(t * q.clamp(eps, 1 - eps).log()).mean()``.
    """
    return CROSS_ENTROPY.evaluate(True, predicted, target, ctx=ctx, epsilon=epsilon)


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
    return CROSS_ENTROPY.evaluate(False, predicted, target, ctx=ctx, epsilon=epsilon)


# --------------------------------------------------------------------------------------------
# Cross-entropy on logits
# --------------------------------------------------------------------------------------------


def _torch_logits(p: Any, t: Any) -> Any:
    # PyTorch's class axis is 1 (or 0 for one row): move the last axis there
    z, y = (p, t) if p.ndim == 1 else (p.movedim(-1, 1), t.movedim(-1, 1))
    return _F().cross_entropy(z, y, reduction="sum") / p.numel()


def _cross_entropy_logits(c: Context, z: Any, t: Any) -> Any:
    s, r = shifted(c, z)
    return -(t * (s - c.log1p(r)))


def _cross_entropy_logits_deriv(c: Context, z: Any, t: Any) -> Any:
    mass = c.sum(t, axis=-1, keepdims=True)
    s, r = shifted(c, z)
    sm = c.exp(s) / (1 + r)
    # Where softmax > 1/2 it is formed as 1 + (expm1(s) - r) / (1 + r), the same real
    # number, so softmax * mass - t = mass * (softmax - 1) + (mass - t) cancels nothing.
    near_one = mass * ((c.expm1(s) - r) / (1 + r)) + (mass - t)
    return c.where(c.lt(1, 2 * sm), near_one, sm * mass - t)


def _softmax_parts(c: Context, z: Any) -> tuple[Any, Any]:
    """``(softmax, 1 - softmax)`` over the last axis; ``1 - softmax`` where softmax > 1/2 as
    ``(r - expm1(s)) / (1 + r)`` (the same real: the other classes' mass), which cancels
    nothing."""
    s, r = shifted(c, z)
    sm = c.exp(s) / (1 + r)
    rest = c.where(c.lt(1, 2 * sm), (r - c.expm1(s)) / (1 + r), 1 - sm)
    return sm, rest


def _cross_entropy_logits_second(c: Context, z: Any, t: Any) -> Any:
    # the diagonal of sum_last(t) (diag(softmax) - softmax softmax^T)
    mass = c.sum(t, axis=-1, keepdims=True)
    sm, rest = _softmax_parts(c, z)
    return mass * (sm * rest)


def _cross_entropy_logits_hvp(c: Context, z: Any, t: Any, v: Any) -> Any:
    # sum_last(t) (softmax v - softmax (softmax . v)), per slice
    mass = c.sum(t, axis=-1, keepdims=True)
    sm, _ = _softmax_parts(c, z)
    return mass * (sm * (v - c.sum(sm * v, axis=-1, keepdims=True)))


CROSS_ENTROPY_LOGITS: LossDeclaration = define_loss(
    "cross_entropy_logits", kind="slice", arg_names=("logits", "target"),
    second=_cross_entropy_logits_second, hvp=_cross_entropy_logits_hvp,
    second_text="diagonal: sum_last(t) softmax(z) (1 - softmax(z)) / n; Hessian times v: "
                "sum_last(t) softmax (v - softmax . v) / n",
    kernel="torchlean.kernels.terms:cross_entropy_logits",
    jax_kernel="torchlean.kernels.jax_terms:softmax_cross_entropy",
    formula="-sum(t log_softmax(z)) / n, softmax over the LAST axis, n over ALL elements",
    derivative_text="(softmax(z) sum_last(t) - t) / n",
    domain=Domain(largest=_LARGEST, target=(0.0, 2.0),
                  text="predicted: logits, rank >= 1, softmax over the last axis; "
                       "target: class weights (need not sum to 1)"),
    torch_reference=_torch_logits,
    torch_text="F.cross_entropy(z.movedim(-1, 1), t.movedim(-1, 1), reduction='sum') / "
               "z.numel()",
    deriv=_cross_entropy_logits_deriv)(_cross_entropy_logits)


def cross_entropy_logits_spec(logits: Any, target: Any, /, *, ctx: Context | Any = None) -> Any:
    """Cross-entropy on logits, softmax over the LAST axis, stable log-softmax form.

    value: ``-sum(t * log_softmax(z)) / n``, ``n`` over ALL elements (every class of every row);
    derivative: :func:`cross_entropy_logits_deriv_spec`. Smooth. Targets need not be
    normalised.

    PyTorch: ``F.cross_entropy(z.movedim(-1, 1), t.movedim(-1, 1), reduction="sum") / z.numel()``
    (PyTorch's own mean divides by the number of rows instead).
    """
    return CROSS_ENTROPY_LOGITS.evaluate(True, logits, target, ctx=ctx)


def cross_entropy_logits_deriv_spec(logits: Any, target: Any, /, *,
                                    ctx: Context | Any = None) -> Any:
    """Derivative of :func:`cross_entropy_logits_spec` w.r.t. ``logits``:
    ``(softmax(z) * sum_last(t) - t) / n``.

    This equals ``(softmax(z) - t) / n`` only when every target slice sums to 1 (the seed's
    docstring assumes that; this formula does not need it).

    PyTorch: the gradient of the expression in :func:`cross_entropy_logits_spec`.
    """
    return CROSS_ENTROPY_LOGITS.evaluate(False, logits, target, ctx=ctx)


# --------------------------------------------------------------------------------------------
# Hinge
# --------------------------------------------------------------------------------------------


def _hinge(c: Context, x: Any, t: Any) -> Any:
    return c.maximum(1 - t * x, 0)


def _hinge_deriv(c: Context, x: Any, t: Any) -> Any:
    return _keep_nan(c, c.where(c.lt(0, 1 - t * x), -t, 0), x, t)


HINGE: LossDeclaration = define_loss(
    "hinge", formula="sum(max(0, 1 - t x)) / n",
    second=_zero_second, second_text="0 (at the margin too)", hessian_sign="zero",
    kernel="torchlean.kernels.terms:hinge", jax_kernel="torchlean.kernels.jax_terms:hinge",
    derivative_text="-t / n where 1 - t x > 0, else 0",
    seams=[Seam("margin", lambda k, prm: k.const(1), "t x = 1", choice="derivative 0",
                second_choice="second derivative 0")],
    domain=Domain(largest=_LARGEST, predicted=(-2.0, 3.0), labels=(-1.0, 1.0),
                  text="predicted: scores; target: labels, usually -1 or 1"),
    torch_reference=lambda p, t: _torch().relu(1 - t * p).mean(),
    torch_text="torch.relu(1 - t * x).mean()",
    deriv=_hinge_deriv)(_hinge)


def hinge_spec(predicted: Any, target: Any, /, *, ctx: Context | Any = None) -> Any:
    """Hinge (SVM margin) loss, targets usually -1 or 1 (any real target is accepted).

    value: ``sum(max(0, 1 - t * x)) / n``; derivative: :func:`hinge_deriv_spec`.

    PyTorch: ``torch.relu(1 - t * x).mean()``.
    """
    return HINGE.evaluate(True, predicted, target, ctx=ctx)


def hinge_deriv_spec(predicted: Any, target: Any, /, *, ctx: Context | Any = None) -> Any:
    """Derivative of :func:`hinge_spec` w.r.t. ``predicted``: ``-t / n`` where
    ``1 - t * x > 0``, else 0.

    Kink at the margin ``t * x = 1``: the derivative there is 0 (between the one-sided 0 and
    ``-t / n``), as ``relu(1 - t * x)`` gives in PyTorch; ``clamp(min=0)`` gives ``-t / n``
    there and ``torch.maximum(., 0)`` gives ``-t / (2 n)``.
    """
    return HINGE.evaluate(False, predicted, target, ctx=ctx)


# --------------------------------------------------------------------------------------------
# Poisson
# --------------------------------------------------------------------------------------------


def _poisson(c: Context, x: Any, t: Any) -> Any:
    return c.exp(x) - t * x


def _poisson_deriv(c: Context, x: Any, t: Any) -> Any:
    near_one = c.logical_and(c.le(1, 2 * t), c.le(t, 2))
    return c.where(near_one, c.expm1(x) - (t - 1), c.exp(x) - t)


def _poisson_second(c: Context, x: Any, t: Any) -> Any:
    return _keep_nan(c, c.exp(x), t)


POISSON: LossDeclaration = define_loss(
    "poisson", formula="sum(exp(x) - t x) / n", derivative_text="(exp(x) - t) / n",
    second=_poisson_second, second_text="exp(x) / n", hessian_sign="positive",
    kernel="torchlean.kernels.terms:poisson",
    domain=Domain(largest=_LARGEST, target=(0.0, 5.0), target_lo=0.0, what="counts",
                  text="predicted: log-rates; target: counts >= 0 (checked)"),
    torch_reference=lambda p, t: _F().poisson_nll_loss(p, t, log_input=True, full=False),
    torch_text="F.poisson_nll_loss(x, t, log_input=True, full=False)",
    deriv=_poisson_deriv)(_poisson)


def poisson_spec(predicted: Any, target: Any, /, *, check_domain: bool = True,
                 ctx: Context | Any = None) -> Any:
    """Poisson negative log-likelihood, ``predicted`` = log-rate, ``target`` = count >= 0.

    value: ``sum(exp(x) - t * x) / n`` (the constant ``log(t!)`` is dropped); derivative:
    :func:`poisson_deriv_spec`. Smooth. Negative targets raise
    :class:`~torchlean.errors.DomainError` unless ``check_domain=False``.

    PyTorch: ``F.poisson_nll_loss(x, t, log_input=True, full=False)``.
    """
    return POISSON.evaluate(True, predicted, target, ctx=ctx, check_domain=check_domain,
                            caller="poisson_spec")


def poisson_deriv_spec(predicted: Any, target: Any, /, *, check_domain: bool = True,
                       ctx: Context | Any = None) -> Any:
    """Derivative of :func:`poisson_spec` w.r.t. ``predicted``: ``(exp(x) - t) / n``.

    For ``1/2 <= t <= 2`` it is formed as ``expm1(x) - (t - 1)``, the same real number: ``t - 1``
    is then exact in floats, so a log-rate near 0 with a count of 1 loses nothing to the
    rounding of ``exp(x)`` near 1. Elsewhere ``exp(x) - t`` may still cancel when
    ``exp(x)`` is close to ``t``; the error then stays within an ulp of the larger term.

    PyTorch: the gradient of ``F.poisson_nll_loss(log_input=True, full=False)``.
    """
    return POISSON.evaluate(False, predicted, target, ctx=ctx, check_domain=check_domain,
                            caller="poisson_deriv_spec")


# --------------------------------------------------------------------------------------------
# Cosine similarity
# --------------------------------------------------------------------------------------------


def _norm_scale(shape: tuple[int, ...]) -> float:
    """``2**-k`` with ``4**k >= n``: ``||s x|| <= max|x|``, so the norm of ``s x`` is finite
    wherever ``x`` is, and scaling by a power of 2 is exact (short of the subnormals, far below
    anything a norm clamped at ``eps`` can see)."""
    k = ((mean_denominator(shape) - 1).bit_length() + 1) // 2
    return 2.0**-k


def _unit_vectors(c: Context, p: Any, t: Any, epsilon: float) -> tuple[Any, ...]:
    """``(u, v, sP, sT, s eps, s)``: ``u = p / max(P, eps)``, ``v = t / max(T, eps)`` computed
    from ``s p`` and ``s t`` (the same reals), so neither norm overflows where the cosine is
    finite; ``P = ||p||``, ``T = ||t||``."""
    s = c.const(_norm_scale(tuple(c.shape(p))))
    es = c.const(epsilon) * s
    ps, ts = p * s, t * s
    pn, tn = c.norm(ps), c.norm(ts)
    return ps / c.maximum(pn, es), ts / c.maximum(tn, es), pn, tn, es, s


def _vectors(p_norm: tuple[float, float] | None,
             t_norm: tuple[float, float] | None) -> Any:
    """Random directions; each norm uniform in the given range times ``eps`` (None: standard
    normal coordinates)."""

    def draw(rng: np.random.Generator, shape: tuple[int, ...],
             norm: tuple[float, float] | None, eps: float) -> np.ndarray:
        x = rng.standard_normal(shape)
        if norm is None:
            return x
        return x / np.linalg.norm(x) * rng.uniform(*norm) * eps

    def sample(rng: np.random.Generator, shape: tuple[int, ...],
               params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        eps = params["epsilon"]
        return draw(rng, shape, p_norm, eps), draw(rng, shape, t_norm, eps)

    return sample


def _norms(p_above: bool, t_above: bool) -> Any:
    """Zone membership of the cosine regions: each norm strictly above (or below) ``epsilon``,
    more than ``margin`` (relative) away from it."""

    def contains(p: np.ndarray, t: np.ndarray, params: Mapping[str, Any],
                 margin: float) -> bool:
        eps = params["epsilon"]
        ok = True
        for x, above in ((p, p_above), (t, t_above)):
            norm = float(np.linalg.norm(x.ravel()))
            ok = ok and (norm > eps * (1 + margin) if above else norm < eps * (1 - margin))
        return ok

    return contains


def _torch_cosine(p: Any, t: Any, epsilon: float) -> Any:
    return 1 - _F().cosine_similarity(p.flatten(), t.flatten(), dim=0, eps=epsilon)


def _cosine_similarity(c: Context, p: Any, t: Any, *, epsilon: float) -> Any:
    # Normalise before the dot product: p.t itself may overflow when the cosine does not.
    u, v, pn, tn, es, _ = _unit_vectors(c, p, t, epsilon)
    # Unit u and v: 1 - u.v = |u - v|**2 / 2, without the cancellation of 1 - u.v.
    w = u - v
    unit = c.logical_and(c.lt(es, pn), c.lt(es, tn))
    return c.where(unit, c.sum(w * w) / 2, 1 - c.sum(u * v))


def _cosine_similarity_deriv(c: Context, p: Any, t: Any, *, epsilon: float) -> Any:
    # In unit-free form, u = p / P, v = t / T: ((u.v) u - v) / P where P > eps, else
    # -v / eps (= -v / P there); nothing of the size of p.t is ever formed.
    u, v, pn, tn, es, s = _unit_vectors(c, p, t, epsilon)
    cos = c.sum(u * v)
    g = c.where(c.lt(es, pn), cos * u - v, -v) / c.maximum(pn, es) * s
    return _keep_nan(c, g, pn, tn, cos)


COSINE_SIMILARITY: LossDeclaration = define_loss(
    "cosine_similarity", kind="whole", params=[_NORM_EPS],
    kernel="torchlean.kernels.terms:cosine_similarity",
    formula="1 - (p . t) / (max(||p||, eps) max(||t||, eps)), the whole tensor one vector",
    derivative_text="||p|| > eps: (p . t) / (||p||**3 T) p - t / (||p|| T); else "
                    "-t / (eps T); T = max(||t||, eps)",
    seams=[Seam("norm", lambda k, prm: k.const(prm["epsilon"]), "||p|| = eps",
                choice="derivative -t / (eps * max(||t||, eps))")],
    zones=[Zone("||p|| > eps, ||t|| > eps", _vectors(None, None),
                contains=_norms(True, True)),
           Zone("||p|| < eps, ||t|| > eps", _vectors((0.05, 0.9), None), torch_agrees=False,
                contains=_norms(False, True)),
           Zone("||p|| > eps, ||t|| < eps", _vectors(None, (0.05, 0.9)), torch_agrees=False,
                contains=_norms(True, False)),
           Zone("||p|| < eps, ||t|| < eps", _vectors((0.05, 0.9), (0.05, 0.9)),
                torch_agrees=False, contains=_norms(False, False))],
    domain=Domain(largest=_LARGEST,
                  text="predicted, target: real vectors (the whole tensor is one vector)"),
    torch_reference=_torch_cosine,
    torch_text="1 - F.cosine_similarity(p.flatten(), t.flatten(), dim=0, eps=eps)",
    deriv=_cosine_similarity_deriv)(_cosine_similarity)


def cosine_similarity_spec(predicted: Any, target: Any, /, *, epsilon: float = EPSILON,
                           ctx: Context | Any = None) -> Any:
    """Cosine-similarity loss over the WHOLE tensor (one vector; no mean).

    value: ``1 - (p . t) / (max(||p||, eps) * max(||t||, eps))``, evaluated as
    ``1 - sum(u * v)`` with ``u = p / max(||p||, eps)``, ``v = t / max(||t||, eps)`` (norms
    taken of ``p`` and ``t`` scaled by a power of 2 ``<= 1 / sqrt(n)``) so nothing overflows,
    not even a norm above the largest float, and as ``sum((u - v)**2) / 2`` (the same real
    number) where both norms exceed ``eps``, so nearly parallel vectors do not cancel
    ``1 - u . v`` away;
    derivative: :func:`cosine_similarity_deriv_spec`. An empty tensor gives 1. ``epsilon`` is
    the floor of both norms, any finite number > 0 (not a probability: 0.5 or 2 are fine).

    PyTorch: ``1 - F.cosine_similarity(p.flatten(), t.flatten(), dim=0, eps=eps)``.
    """
    return COSINE_SIMILARITY.evaluate(True, predicted, target, ctx=ctx, epsilon=epsilon)


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
    return COSINE_SIMILARITY.evaluate(False, predicted, target, ctx=ctx, epsilon=epsilon)


# --------------------------------------------------------------------------------------------
# Log-cosh
# --------------------------------------------------------------------------------------------


def _log_cosh(c: Context, p: Any, t: Any) -> Any:
    a = c.abs(p - t)
    # b = min(a, 1) equals a where the small branch is taken and keeps expm1 finite.
    b = c.minimum(a, 1)
    small = c.log1p(c.expm1(b) * -c.expm1(-b) / 2)
    large = a + c.log1p(c.expm1(-2 * a) / 2)
    return c.where(c.lt(a, 1), small, large)


def _log_cosh_deriv(c: Context, p: Any, t: Any) -> Any:
    return c.tanh(p - t)


def _log_cosh_second(c: Context, p: Any, t: Any) -> Any:
    # sech(d)**2 = 1 - tanh(d)**2 = 4 e / (1 + e)**2, e = exp(-2 |d|): no cancellation, no
    # overflow (1 - tanh**2 loses every digit once tanh rounds to 1)
    e = c.exp(-2 * c.abs(p - t))
    return 4 * e / ((1 + e) * (1 + e))


LOG_COSH: LossDeclaration = define_loss(
    "log_cosh", formula="sum(log(cosh(d))) / n", derivative_text="tanh(d) / n",
    second=_log_cosh_second, second_text="sech(d)**2 / n", hessian_sign="positive",
    domain=Domain(largest=_LARGEST),
    kernel="torchlean.kernels.terms:log_cosh",
    kink_text="none",
    seams=[Seam("residual", lambda k, prm: k.const(-1), "d = -1", kink=False),
           Seam("residual", lambda k, prm: k.const(1), "d = 1", kink=False)],
    torch_reference=lambda p, t: _torch().log(_torch().cosh(p - t)).mean(),
    torch_text="torch.log(torch.cosh(p - t)).mean()",
    deriv=_log_cosh_deriv)(_log_cosh)


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
    return LOG_COSH.evaluate(True, predicted, target, ctx=ctx)


def log_cosh_deriv_spec(predicted: Any, target: Any, /, *, ctx: Context | Any = None) -> Any:
    """Derivative of :func:`log_cosh_spec` w.r.t. ``predicted``: ``tanh(d) / n``.

    PyTorch: the gradient of ``torch.log(torch.cosh(d)).mean()`` where that does not overflow.
    """
    return LOG_COSH.evaluate(False, predicted, target, ctx=ctx)


# --------------------------------------------------------------------------------------------
# Binary cross-entropy on probabilities
# --------------------------------------------------------------------------------------------


def _bce(c: Context, p: Any, t: Any, *, epsilon: float) -> Any:
    log_q, log_1mq = _log_clipped(c, p, epsilon)
    return -(t * log_q + (1 - t) * log_1mq)


def _bce_deriv(c: Context, p: Any, t: Any, *, epsilon: float) -> Any:
    q, _, _ = _clip_probability(c, p, epsilon)
    inside = _strictly_inside(c, p, epsilon)
    # q equals p on the branch taken; it keeps the discarded branch finite.
    return _keep_nan(c, c.where(inside, (q - t) / (q * (1 - q)), 0), p, t)


def _bce_second(c: Context, p: Any, t: Any, *, epsilon: float) -> Any:
    q, _, _ = _clip_probability(c, p, epsilon)
    inside = _strictly_inside(c, p, epsilon)
    r = 1 - q
    # each quotient divided twice: a square of a tiny q or 1 - q would underflow
    return _keep_nan(c, c.where(inside, t / q / q + (1 - t) / r / r, 0), p, t)


BINARY_CROSS_ENTROPY: LossDeclaration = define_loss(
    "binary_cross_entropy", params=[_EPS], seams=_CLAMP_SEAMS,
    second=_bce_second, hessian_sign="nonnegative",
    second_text="(t / p**2 + (1 - t) / (1 - p)**2) / n where eps < p < 1 - eps, else 0",
    kernel="torchlean.kernels.terms:binary_cross_entropy",
    formula="mean of -(t log q + (1 - t) log(1 - q)), q = clamp(p, eps, 1 - eps)",
    derivative_text="(p - t) / (p (1 - p)) / n where eps < p < 1 - eps, else 0",
    domain=Domain(largest=_LARGEST, predicted=(-0.2, 1.2), target=(0.0, 1.0), target_lo=0.0,
                  target_hi=1.0, text="predicted: probabilities (clamped to [eps, 1-eps]); "
                       "target: in [0, 1] (checked)"),
    torch_reference=lambda p, t, epsilon: _F().binary_cross_entropy(p, t),
    torch_text="F.binary_cross_entropy(p, t)",
    criterion_name="BCELoss",
    # torch does not clip p: it agrees strictly inside the clamp only
    torch_region=lambda zone: " < p < " in zone,
    deriv=_bce_deriv)(_bce)


def _require_scalar(c: Context, p: Any, t: Any) -> None:
    for name, x in zip(("predicted", "target"), (p, t), strict=True):
        if tuple(c.shape(x)) != ():
            raise ShapeError(
                f"`{name}` must be a scalar (shape ()) for binary_cross_entropy_spec; got shape "
                f"{fmt_shape(tuple(c.shape(x)))} (use binary_cross_entropy_tensor_spec)"
            )


def _scalar_bce(want_value: bool, predicted: Any, target: Any, epsilon: float,
                check_domain: bool, ctx: Any, caller: str) -> Any:
    """The scalar BCE: the declaration's terms at one element, no reduction."""
    epsilon = check_epsilon(epsilon)
    c, p, t = resolve_context(ctx, predicted, target)
    check_same_shape(c, p, t)
    _require_scalar(c, p, t)
    if check_domain:
        t = c.check_range(t, name="target", lo=0, hi=1, what=caller)
    decl = BINARY_CROSS_ENTROPY
    with c.scope():
        if want_value:
            out = c.finish_value(decl.value_term(c, p, t, epsilon=epsilon))
        else:
            out = c.finish_deriv(decl.deriv_term(c, p, t, epsilon=epsilon))
    if all(isinstance(v, int | float) for v in (predicted, target)):
        return float(out)
    return out


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
    return _scalar_bce(True, predicted, target, epsilon, check_domain, ctx,
                       "binary_cross_entropy_spec")


def binary_cross_entropy_deriv_spec(predicted: Any, target: Any, /, *,
                                    epsilon: float = EPSILON, check_domain: bool = True,
                                    ctx: Context | Any = None) -> Any:
    """Derivative of :func:`binary_cross_entropy_spec` w.r.t. ``p``:
    ``(p - y) / (p (1 - p))`` where ``eps < p < 1 - eps``, else 0 (the clamp is constant).

    Kinks at ``p = eps`` and ``p = 1 - eps``: 0 there, between the one-sided derivatives.

    PyTorch: ``F.binary_cross_entropy``'s gradient ``(p - y) / max(p (1 - p), 1e-12)`` agrees
    strictly inside the clamp.
    """
    return _scalar_bce(False, predicted, target, epsilon, check_domain, ctx,
                       "binary_cross_entropy_deriv_spec")


def binary_cross_entropy_tensor_spec(predicted: Any, target: Any, /, *,
                                     epsilon: float = EPSILON, check_domain: bool = True,
                                     ctx: Context | Any = None) -> Any:
    """Binary cross-entropy of tensors: the mean of :func:`binary_cross_entropy_spec`.

    value: ``sum(bce(p_i, y_i)) / n``; derivative:
    :func:`binary_cross_entropy_tensor_deriv_spec`.

    PyTorch: ``F.binary_cross_entropy(p, y)`` for ``eps <= p <= 1 - eps``.
    """
    return BINARY_CROSS_ENTROPY.evaluate(True, predicted, target, ctx=ctx, epsilon=epsilon,
                                         check_domain=check_domain,
                                         caller="binary_cross_entropy_tensor_spec")


def binary_cross_entropy_tensor_deriv_spec(predicted: Any, target: Any, /, *,
                                           epsilon: float = EPSILON, check_domain: bool = True,
                                           ctx: Context | Any = None) -> Any:
    """Derivative of :func:`binary_cross_entropy_tensor_spec`: the elementwise derivative of
    :func:`binary_cross_entropy_deriv_spec` divided by ``n`` (0 where the clamp is active).

    PyTorch: the gradient of ``F.binary_cross_entropy`` strictly inside ``(eps, 1 - eps)``.
    """
    return BINARY_CROSS_ENTROPY.evaluate(False, predicted, target, ctx=ctx, epsilon=epsilon,
                                         check_domain=check_domain,
                                         caller="binary_cross_entropy_tensor_deriv_spec")


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

    ``loss_type`` is a :class:`LossType` (the seed's eight families) or the name of any
    registered loss (``torchlean.LOSSES``, users' losses included). ``delta`` is used by Huber,
    ``epsilon`` by cross-entropy and cosine similarity; both are checked at construction.
    Parameters of other losses go in ``options`` (name, value) pairs; :meth:`of` builds a
    configuration from keywords. TorchLean's phantom type parameters have no runtime meaning.
    """

    loss_type: LossType | str
    delta: float = 1.0
    epsilon: float = EPSILON
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.loss_type, LossType):
            check_delta(self.delta)
            # cosine similarity's epsilon floors the norms; the others' clamps a probability
            (_check_norm_floor if self.loss_type is LossType.COSINE_SIMILARITY
             else check_epsilon)(self.epsilon)
            if self.options:
                raise ParameterError(
                    f"`options` must be empty for {self.loss_type}; got {self.options!r}"
                )
            return
        if not isinstance(self.loss_type, str) or self.loss_type not in REGISTRY:
            got = (repr(self.loss_type) if isinstance(self.loss_type, str)
                   else type(self.loss_type).__name__)
            raise ParameterError(
                f"`loss_type` must be a LossType or the name of a registered loss "
                f"({', '.join(REGISTRY)}); got {got}"
            )
        decl = REGISTRY[self.loss_type]
        given = dict(self.options)
        # a delta or epsilon set on a loss that has no such parameter is a mistake, not a no-op
        for field_name, default in (("delta", 1.0), ("epsilon", EPSILON)):
            if getattr(self, field_name) != default and field_name not in decl.parameters:
                given.setdefault(field_name, getattr(self, field_name))
        unknown = sorted(set(given) - set(decl.parameters))
        if unknown:
            raise ParameterError(
                f"`{unknown[0]}` is not a parameter of the {decl.name} loss; expected one of "
                f"{sorted(decl.parameters)}"
            )
        decl.checked_params(self._named_params(decl))

    @classmethod
    def of(cls, name: str, /, **params: Any) -> Loss:
        """The configuration of the registered loss ``name`` with keyword ``params``."""
        decl = REGISTRY.get(name) if isinstance(name, str) else None
        declared = set(decl.parameters) if decl is not None else set()
        # a delta or epsilon the loss declares is one of its options (with its own default);
        # given to a loss without it, it goes to the field, which refuses it by name
        delta = 1.0 if "delta" in declared else params.pop("delta", 1.0)
        epsilon = EPSILON if "epsilon" in declared else params.pop("epsilon", EPSILON)
        return cls(name, delta=delta, epsilon=epsilon, options=tuple(sorted(params.items())))

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
    def name(self) -> str:
        """The registry name of the loss."""
        return self.loss_type.value if isinstance(self.loss_type, LossType) else self.loss_type

    @property
    def declaration(self) -> LossDeclaration:
        """The loss's declaration (``torchlean.LOSSES[self.name]``)."""
        return REGISTRY[self.name]

    def _named_params(self, decl: LossDeclaration) -> dict[str, Any]:
        # a parameter comes from `options`, else from the field of its name, else its default
        given = dict(self.options)
        # a field counts where it was set: left at its default it must not replace the loss's
        # own default (poly_loss_cross_entropy's epsilon is 2, not the field's 1e-6)
        fields = {k: v for k, v, default in (("delta", self.delta, 1.0),
                                             ("epsilon", self.epsilon, EPSILON))
                  if v != default}
        return {k: given[k] if k in given else fields.get(k, p.default)
                for k, p in decl.parameters.items()}

    @property
    def params(self) -> dict[str, Any]:
        """The keyword parameters this family's spec takes."""
        if self.loss_type is LossType.HUBER:
            return {"delta": self.delta}
        if self.loss_type in (LossType.CROSS_ENTROPY, LossType.COSINE_SIMILARITY):
            return {"epsilon": self.epsilon}
        if isinstance(self.loss_type, LossType):
            return {}
        return self._named_params(self.declaration)

    def value(self, predicted: Any, target: Any, /, *, ctx: Context | Any = None) -> Any:
        """The loss value (the family's ``*_spec``)."""
        return self.declaration.value(predicted, target, ctx=ctx, **self.params)

    def deriv(self, predicted: Any, target: Any, /, *, ctx: Context | Any = None) -> Any:
        """The derivative w.r.t. ``predicted`` (the family's ``*_deriv_spec``)."""
        return self.declaration.deriv(predicted, target, ctx=ctx, **self.params)

    def value_and_deriv(self, predicted: Any, target: Any, /, *,
                        ctx: Context | Any = None) -> tuple[Any, Any]:
        """``(value, deriv)`` together (one fused pass where a fast kernel exists)."""
        return self.declaration.value_and_deriv(predicted, target, ctx=ctx, **self.params)
