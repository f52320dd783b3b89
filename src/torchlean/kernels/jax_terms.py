"""Fused JAX forms of the softmax losses, which their declarations name
(``jax_kernel="torchlean.kernels.jax_terms:softmax_cross_entropy"``).

:mod:`torchlean.interop.jax` runs a declaration's terms through the Array API context, which
on JAX means XLA compiles the declaration's cancellation-free forms as written. For a slice
loss those forms (the masked row sums of ``sum_exp_m1``, ``expm1`` where the softmax exceeds
1/2, the select between them) cost XLA's CPU code about seven times a plain softmax; a JAX
kernel restates the per-example value and the unreduced derivative in the plain forms
(``log_softmax = s - log(sum(exp(s)))``, ``softmax * mass - t``), whose rounding errors are
bounded by the terms' magnitudes rather than by the result's. ``tests/test_jax_kernels.py``
holds each to its declaration within the bounds stated here (ulps of the working dtype,
relative to the magnitudes that may cancel). The second derivative stays the declaration's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp

__all__ = ["JaxKernel", "poly_loss_cross_entropy", "safe_softmax_cross_entropy",
           "softmax_cross_entropy"]


@dataclass(frozen=True)
class JaxKernel:
    """``value(p, t, **params)``: the per-example terms (per element for an elementwise loss,
    per slice summed over the last axis for a slice loss); ``grad(p, t, **params)``: the
    unreduced derivative, per element; ``ulps``: the bound the tests hold both to, in ulps of
    the dtype relative to the magnitude of the terms."""

    value: Callable[..., Any]
    grad: Callable[..., Any]
    ulps: float = 8.0


def _shifted(z: Any) -> tuple[Any, Any, Any]:
    """``(s, exp(s), sum_last(exp(s)))``, ``s = z - max`` (0 where the max is not finite, as
    the declaration's ``exp_shift``)."""
    m = jnp.max(z, axis=-1, keepdims=True)
    s = z - jnp.where(jnp.isfinite(m), m, 0)
    e = jnp.exp(s)
    return s, e, jnp.sum(e, axis=-1, keepdims=True)


def _log_softmax_terms(z: Any, t: Any, safe: bool) -> tuple[Any, Any, Any]:
    s, e, se = _shifted(z)
    lsm = s - jnp.log(se)
    terms = t * lsm
    if safe:
        # 0 where t = 0, even at a -inf logit; a NaN logit still gives NaN
        terms = jnp.where((t == 0) & ~jnp.isnan(lsm), 0, terms)
    return -terms, e, se


def _ce_grad(z: Any, t: Any) -> Any:
    _, e, se = _shifted(z)
    return e * (jnp.sum(t, axis=-1, keepdims=True) / se) - t


softmax_cross_entropy = JaxKernel(
    value=lambda z, t: jnp.sum(_log_softmax_terms(z, t, False)[0], axis=-1),
    grad=_ce_grad)

safe_softmax_cross_entropy = JaxKernel(
    value=lambda z, t: jnp.sum(_log_softmax_terms(z, t, True)[0], axis=-1),
    grad=_ce_grad)


def _poly_value(z: Any, t: Any, epsilon: float) -> Any:
    terms, e, se = _log_softmax_terms(z, t, True)
    return jnp.sum(terms + epsilon * (t * (1 - e / se)), axis=-1)


def _poly_grad(z: Any, t: Any, epsilon: float) -> Any:
    _, e, se = _shifted(z)
    p = e / se
    gap = jnp.sum(t * p, axis=-1, keepdims=True) - t
    return p * jnp.sum(t, axis=-1, keepdims=True) - t + epsilon * (p * gap)


poly_loss_cross_entropy = JaxKernel(value=_poly_value, grad=_poly_grad)
