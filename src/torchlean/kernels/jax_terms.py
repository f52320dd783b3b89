"""Fused JAX forms of losses, which their declarations name
(``jax_kernel="torchlean.kernels.jax_terms:softmax_cross_entropy"``).

:mod:`torchlean.interop.jax` runs a declaration's terms through the Array API context, which
on JAX means XLA compiles the declaration's cancellation-free forms as written. For a slice
loss those forms (the masked row sums of ``sum_exp_m1``, ``expm1`` where the softmax exceeds
1/2, the select between them) cost XLA's CPU code about seven times a plain softmax; a JAX
kernel restates the per-example value and the unreduced derivative in the plain forms
(``log_softmax = s - log(sum(exp(s)))``, ``softmax * mass - t``), whose rounding errors are
bounded by the terms' magnitudes rather than by the result's. ``tests/test_jax_kernels.py``
holds each to its declaration within the bounds stated here (ulps of the working dtype,
relative to the magnitudes ``scales`` gives: those that may cancel). The second derivative
stays the declaration's.

A slice loss's kernel may also give the forms for integer class ids (``value_ids``,
``grad_ids``: ``log(sum(exp(s))) - s[id]`` and ``softmax - onehot(id)``), which gather the
labelled logit instead of multiplying a one-hot row through; an elementwise loss's kernel (hinge,
the KL divergence of log-targets) is its terms with the NaN selects folded into fewer passes
than the Array API context's generic ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

__all__ = ["JaxKernel", "hinge", "kl_divergence_log_targets", "poly_loss_cross_entropy",
           "safe_softmax_cross_entropy", "softmax_cross_entropy"]

#: ``scales(p, t, params) -> (value scale, gradient scale)`` in float64 NumPy: per example and
#: per element, the magnitudes a plain evaluation rounds against
Scales = Callable[[np.ndarray, np.ndarray, Mapping[str, Any]], tuple[np.ndarray, np.ndarray]]


def _softmax_scales(p: np.ndarray, t: np.ndarray,
                    params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per example ``sum |t log_softmax|`` plus the row's ``|t| (1 + |lse|)``; per element
    ``softmax |mass| + |t|``, times ``1 + |epsilon|`` for Poly-1's extra term."""
    s = p - p.max(axis=-1, keepdims=True)
    lse = np.log(np.exp(s).sum(axis=-1, keepdims=True))
    sm = np.exp(s - lse)
    mass = np.abs(t).sum(axis=-1, keepdims=True)
    value = np.sum(np.abs(t * (s - lse)), axis=-1) + mass[:, 0] * (1 + np.abs(lse[:, 0]))
    return value, (sm * mass + np.abs(t)) * (1 + abs(params.get("epsilon", 0.0)))


@dataclass(frozen=True)
class JaxKernel:
    """``value(p, t, **params)``: the per-example terms (per element for an elementwise loss,
    per slice summed over the last axis for a slice loss); ``grad(p, t, **params)``: the
    unreduced derivative, per element; ``ulps``: the bound the tests hold both to, in ulps of
    the dtype relative to the magnitudes ``scales`` gives. A slice loss's kernel may add
    ``value_ids(p, ids, **params)`` and ``grad_ids(p, ids, **params)``, the same for integer
    class ids of the batch shape (ids inside ``[0, k)``: the caller makes the rest NaN).
    ``checks_rows``: a slice kernel's ``value`` and ``grad`` take ``bounds=(lo, hi)`` (either
    None), the target domain, and make a row NaN where one of its targets lies outside, so
    that the caller may pass traced targets unchecked."""

    value: Callable[..., Any]
    grad: Callable[..., Any]
    scales: Scales
    ulps: float = 8.0
    value_ids: Callable[..., Any] | None = None
    grad_ids: Callable[..., Any] | None = None
    checks_rows: bool = False


def _shifted(z: Any, t: Any = None,
             bounds: tuple[float | None, float | None] | None = None) -> tuple[Any, Any, Any]:
    """``(s, exp(s), sum_last(exp(s)))``, ``s = z - max`` (0 where the max is not finite, as
    the declaration's ``exp_shift``); with ``bounds``, NaN for a row whose target ``t`` has an
    element outside them, which makes every result of the row NaN as a NaN target would (each
    reads the row's mass) at the cost of one pass over ``t``, with no checked copy of it."""
    m = jnp.max(z, axis=-1, keepdims=True)
    m = jnp.where(jnp.isfinite(m), m, 0)
    if bounds is not None:
        lo, hi = bounds
        bad = jnp.zeros(t.shape, dtype=bool)
        if lo is not None:
            bad = bad | (t < lo)
        if hi is not None:
            bad = bad | (t > hi)
        m = jnp.where(jnp.any(bad, axis=-1, keepdims=True), jnp.asarray(jnp.nan, m.dtype), m)
    s = z - m
    e = jnp.exp(s)
    return s, e, jnp.sum(e, axis=-1, keepdims=True)


def _log_softmax_terms(z: Any, t: Any, safe: bool,
                       bounds: tuple[float | None, float | None] | None) -> tuple[Any, Any, Any]:
    """``(-t log_softmax, exp(s), sum(exp(s)))``; ``safe``: the terms are 0 where ``t = 0``,
    even at a ``-inf`` logit, except in a row whose log-softmax has a NaN (a NaN or ``+inf``
    logit, every logit ``-inf``), where they are ``0 log(sum)``: NaN, as ``sum`` is then NaN,
    infinite or 0 (and finite and at least 1 otherwise), so the row's value is NaN as the
    declaration's."""
    s, e, se = _shifted(z, t, bounds)
    lse = jnp.log(se)
    terms = -(t * (s - lse))
    if safe:
        terms = jnp.where(t == 0, 0 * lse, terms)
    return terms, e, se


def _ce_grad(z: Any, t: Any, bounds: tuple[float | None, float | None] | None = None) -> Any:
    _, e, se = _shifted(z, t, bounds)
    return e * (jnp.sum(t, axis=-1, keepdims=True) / se) - t


def _ce_value_ids(z: Any, ids: Any) -> Any:
    s, _, se = _shifted(z)
    return jnp.log(se[..., 0]) - jnp.take_along_axis(s, ids[..., None], axis=-1)[..., 0]


def _ce_grad_ids(z: Any, ids: Any) -> Any:
    _, e, se = _shifted(z)
    return e / se - (jnp.arange(z.shape[-1]) == ids[..., None]).astype(z.dtype)


def _ce_value(z: Any, t: Any, safe: bool,
              bounds: tuple[float | None, float | None] | None) -> Any:
    return jnp.sum(_log_softmax_terms(z, t, safe, bounds)[0], axis=-1)


softmax_cross_entropy = JaxKernel(
    value=lambda z, t, bounds=None: _ce_value(z, t, False, bounds),
    grad=_ce_grad, scales=_softmax_scales, value_ids=_ce_value_ids, grad_ids=_ce_grad_ids,
    checks_rows=True)

safe_softmax_cross_entropy = JaxKernel(
    value=lambda z, t, bounds=None: _ce_value(z, t, True, bounds),
    grad=_ce_grad, scales=_softmax_scales, checks_rows=True)


def _poly_value(z: Any, t: Any, epsilon: float,
                bounds: tuple[float | None, float | None] | None = None) -> Any:
    terms, e, se = _log_softmax_terms(z, t, True, bounds)
    return jnp.sum(terms + epsilon * (t * (1 - e / se)), axis=-1)


def _poly_grad(z: Any, t: Any, epsilon: float,
               bounds: tuple[float | None, float | None] | None = None) -> Any:
    _, e, se = _shifted(z, t, bounds)
    p = e / se
    gap = jnp.sum(t * p, axis=-1, keepdims=True) - t
    return p * jnp.sum(t, axis=-1, keepdims=True) - t + epsilon * (p * gap)


poly_loss_cross_entropy = JaxKernel(value=_poly_value, grad=_poly_grad, scales=_softmax_scales,
                                    checks_rows=True)


# --------------------------------------------------------------------------------------------
# Elementwise
# --------------------------------------------------------------------------------------------


def _nan_of(x: Any) -> Any:
    """0 where ``x`` is a number (infinities included), NaN where it is NaN: added to a
    result, NaN in gives NaN out without a select (the KL divergence's gradient runs about
    1.2 times faster so on XLA's CPU code)."""
    return 0 * jnp.minimum(jnp.abs(x), 1)


def _hinge_grad(x: Any, t: Any) -> Any:
    # -t inside the margin, 0 outside and at it; NaN for a NaN input, selected on the inputs
    # (here the select is the faster form): 1 - t x is NaN also for t = 0 at an infinite x,
    # where the declaration's derivative is 0
    g = jnp.where(1 - t * x > 0, -t, jnp.zeros((), x.dtype))
    return jnp.where(jnp.isnan(x) | jnp.isnan(t), jnp.asarray(jnp.nan, x.dtype), g)


def _hinge_scales(x: np.ndarray, t: np.ndarray,
                  params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    return 1 + np.abs(t * x), np.abs(t)


hinge = JaxKernel(value=lambda x, t: jnp.maximum(1 - t * x, 0), grad=_hinge_grad,
                  scales=_hinge_scales, ulps=2.0)


def _kl_log_value(lp: Any, lt: Any) -> Any:
    w = jnp.exp(lt)
    # 0 where exp(lt) = 0 (lt = -inf), whatever lt - lp is; a NaN lp still gives NaN (a NaN
    # lt makes w NaN)
    v = jnp.where(w == 0, jnp.zeros((), w.dtype), w * (lt - lp))
    return jnp.where(jnp.isnan(lp), lp, v)


def _kl_log_grad(lp: Any, lt: Any) -> Any:
    return -jnp.exp(lt) - _nan_of(lp)


def _kl_log_scales(lp: np.ndarray, lt: np.ndarray,
                   params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    w = np.exp(lt)
    # exp rounds within an ulp or two of w: relative to the larger of the two terms
    return w * (np.abs(lt) + np.abs(lp) + 1), w


kl_divergence_log_targets = JaxKernel(value=_kl_log_value, grad=_kl_log_grad,
                                      scales=_kl_log_scales, ulps=4.0)
