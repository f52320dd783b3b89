"""Divergences and similarity losses of the optax family, declared once like every loss.

Each sums its per-example terms (``reduction="sum"``), so that a per-example API (optax's,
unreduced) reads them off the declaration: an elementwise loss's term per element, a slice
loss's terms summed over the last axis.

- ``kl_divergence``: ``t (log t - lp)`` per element, on log-predictions ``lp``, 0 where
  ``t = 0`` (``0 log 0 = 0``);
- ``kl_divergence_log_targets``: ``exp(lt) (lt - lp)``, 0 where ``exp(lt) = 0``;
- ``poly_loss_cross_entropy``: the Poly-1 loss ``-sum(t log_softmax(z)) + eps sum(t (1 -
  softmax(z)))`` per slice;
- ``safe_softmax_cross_entropy``: ``-sum(t log_softmax(z))`` with ``t log_softmax = 0`` where
  ``t = 0`` (a ``-inf`` logit with label 0 costs nothing);
- ``cosine_distance``: ``1 - <p, t> / (sqrt(max(|p|**2, eps)) sqrt(max(|t|**2, eps)))`` per
  slice: ``eps`` floors the SQUARED norms, as optax's does.
"""

from __future__ import annotations

import math
from typing import Any

from torchlean.errors import ParameterError
from torchlean.spec.core.context import Context
from torchlean.spec.core.declaration import (
    Domain,
    LossDeclaration,
    Param,
    define_loss,
    real_number,
)
from torchlean.spec.core.tensor import is_real_number
from torchlean.spec.layers.activation import shifted
from torchlean.spec.layers.loss import (
    _LARGEST,
    _cross_entropy_logits_deriv,
    _cross_entropy_logits_hvp,
    _cross_entropy_logits_second,
    _keep_nan,
    _softmax_parts,
    _zero_second,
)

__all__ = [
    "COSINE_DISTANCE",
    "KL_DIVERGENCE",
    "KL_DIVERGENCE_LOG_TARGETS",
    "POLY_LOSS_CROSS_ENTROPY",
    "SAFE_SOFTMAX_CROSS_ENTROPY",
]


def _F() -> Any:
    import torch.nn.functional as F

    return F


def _torch() -> Any:
    import torch

    return torch


def _is_zero(c: Context, x: Any) -> Any:
    return c.logical_and(c.le(x, 0), c.le(0, x))


# --------------------------------------------------------------------------------------------
# Kullback-Leibler divergence on log-predictions
# --------------------------------------------------------------------------------------------


def _kl(c: Context, lp: Any, t: Any) -> Any:
    zero = _is_zero(c, t)
    # log of 1 where t = 0: the branch is discarded, and no -inf reaches 0 * inf
    safe_t = c.where(zero, 1, t)
    return _keep_nan(c, c.where(zero, 0, t * (c.log(safe_t) - lp)), lp)


def _kl_deriv(c: Context, lp: Any, t: Any) -> Any:
    return _keep_nan(c, -t, lp)


KL_DIVERGENCE: LossDeclaration = define_loss(
    "kl_divergence", reduction="sum", arg_names=("log_predictions", "targets"),
    formula="sum(t (log t - lp)), lp the log-predictions; 0 where t = 0 (0 log 0 = 0)",
    derivative_text="-t", second=_zero_second, hessian_sign="zero",
    second_text="0 (the value is linear in lp)",
    domain=Domain(predicted=(-5.0, 0.5), target=(0.0, 1.0), target_lo=0.0,
                  what="probabilities",
                  text="predicted: log-probabilities; target: probabilities >= 0 (checked)"),
    torch_reference=lambda lp, t: _F().kl_div(lp, t, reduction="sum"),
    torch_text="F.kl_div(lp, t, reduction='sum')",
    deriv=_kl_deriv)(_kl)


def _kl_log(c: Context, lp: Any, lt: Any) -> Any:
    w = c.exp(lt)
    # exp(lt) = 0 (lt = -inf): a target of probability 0 costs nothing, whatever lt - lp is
    return _keep_nan(c, c.where(_is_zero(c, w), 0, w * (lt - lp)), lp, lt)


def _kl_log_deriv(c: Context, lp: Any, lt: Any) -> Any:
    return _keep_nan(c, -c.exp(lt), lp)


def _kl_log_second(c: Context, lp: Any, lt: Any) -> Any:
    return _keep_nan(c, c.where(c.isnan(lp), lp, 0), lt)


KL_DIVERGENCE_LOG_TARGETS: LossDeclaration = define_loss(
    "kl_divergence_log_targets", reduction="sum",
    arg_names=("log_predictions", "log_targets"),
    formula="sum(exp(lt) (lt - lp)), lp and lt log-probabilities; 0 where exp(lt) = 0",
    derivative_text="-exp(lt)", second=_kl_log_second, hessian_sign="zero",
    second_text="0 (the value is linear in lp)",
    domain=Domain(predicted=(-5.0, 0.5), target=(-5.0, 0.5),
                  text="predicted, target: log-probabilities"),
    torch_reference=lambda lp, lt: _F().kl_div(lp, lt, reduction="sum", log_target=True),
    torch_text="F.kl_div(lp, lt, reduction='sum', log_target=True)",
    jax_kernel="torchlean.kernels.jax_terms:kl_divergence_log_targets",
    deriv=_kl_log_deriv)(_kl_log)


# --------------------------------------------------------------------------------------------
# Softmax cross-entropy, safe at -inf logits, and the Poly-1 loss
# --------------------------------------------------------------------------------------------


def _safe_cross_entropy(c: Context, z: Any, t: Any) -> Any:
    s, r = shifted(c, z)
    lsm = s - c.log1p(r)
    # t log_softmax is 0 where t = 0, even at a -inf logit (where 0 * -inf would be NaN); a
    # NaN logit still gives NaN
    return _keep_nan(c, c.where(_is_zero(c, t), 0, -(t * lsm)), lsm)


def _label_gap(c: Context, x: Any, sm: Any, rest: Any) -> Any:
    """``x - sum_last(x softmax)`` per element, without cancellation where the softmax
    concentrates: for the class whose softmax exceeds 1/2 (at most one) as
    ``x rest - sum of x softmax over the other classes``, ``rest = 1 - softmax`` (the same real,
    and no term of it is near 1)."""
    big = c.lt(1, 2 * sm)
    xs = x * sm
    others = c.sum(c.where(big, 0, xs), axis=-1, keepdims=True)
    total = others + c.sum(c.where(big, xs, 0), axis=-1, keepdims=True)
    return c.where(big, x * rest - others, x - total)


#: Poly-1's ``epsilon``: any finite real number (negative values are allowed)
_check_poly_epsilon = real_number("epsilon")


def _poly(c: Context, z: Any, t: Any, *, epsilon: float) -> Any:
    _, rest = _softmax_parts(c, z)
    return _safe_cross_entropy(c, z, t) + c.const(epsilon) * (t * rest)


def _poly_deriv(c: Context, z: Any, t: Any, *, epsilon: float) -> Any:
    sm, rest = _softmax_parts(c, z)
    # d/dz_k sum_j t_j (1 - p_j) = p_k (S - t_k), S = sum_j t_j p_j
    return _cross_entropy_logits_deriv(c, z, t) - c.const(epsilon) * (
        sm * _label_gap(c, t, sm, rest))


def _poly_second(c: Context, z: Any, t: Any, *, epsilon: float) -> Any:
    sm, rest = _softmax_parts(c, z)
    # the poly term's diagonal: p_k (S - t_k)(1 - 2 p_k), 1 - 2 p_k = rest - p_k
    poly = -(sm * _label_gap(c, t, sm, rest)) * (rest - sm)
    return _cross_entropy_logits_second(c, z, t) + c.const(epsilon) * poly


def _poly_hvp(c: Context, z: Any, t: Any, v: Any, *, epsilon: float) -> Any:
    sm, rest = _softmax_parts(c, z)
    gap, v_gap = _label_gap(c, t, sm, rest), _label_gap(c, v, sm, rest)
    mass = c.sum(t, axis=-1, keepdims=True)
    # the cross-entropy part sum_last(t) p (v - p . v); the poly part from
    # H_km = p_k (delta_km - p_m)(S - t_k) + p_k p_m (t_m - S), with D = t - S:
    # (H v)_k = p_k (sum_m p_m v_m D_m - D_k (v_k - p . v)); v - p . v, like D, formed without
    # cancellation where the softmax concentrates, and sum_m p_m v_m D_m as
    # sum_m p_m (v_m - p . v) D_m (the same real: sum_m p_m D_m = 0), a sum of squares for v = t
    pvd = c.sum(sm * (v_gap * gap), axis=-1, keepdims=True)
    return mass * (sm * v_gap) + c.const(epsilon) * (sm * (pvd - gap * v_gap))


def _torch_softmax_ce(z: Any, t: Any) -> Any:
    a, b = (z, t) if z.ndim == 1 else (z.movedim(-1, 1), t.movedim(-1, 1))
    return _F().cross_entropy(a, b, reduction="sum")


def _torch_poly(z: Any, t: Any, epsilon: float) -> Any:
    return _torch_softmax_ce(z, t) + epsilon * (t * (1 - _torch().softmax(z, dim=-1))).sum()


_PROBABILITIES = Domain(largest=_LARGEST, target=(0.0, 1.0), target_lo=0.0, target_hi=1.0,
                        what="class probabilities",
                        text="predicted: logits, softmax over the last axis (-inf allowed where "
                             "the label is 0); target: class probabilities in [0, 1] (checked)")

POLY_LOSS_CROSS_ENTROPY: LossDeclaration = define_loss(
    "poly_loss_cross_entropy", kind="slice", reduction="sum", arg_names=("logits", "labels"),
    params=[Param("epsilon", 2.0, _check_poly_epsilon,
                  "the weight of the first polynomial term (1 - p_t), any finite real")],
    formula="per slice -sum(t log_softmax(z)) + eps sum(t (1 - softmax(z))); "
            "t log_softmax = 0 where t = 0",
    derivative_text="softmax sum_last(t) - t + eps softmax (S - t), S = sum_last(t softmax)",
    second=_poly_second, hvp=_poly_hvp, hessian_sign="any",
    second_text="diagonal: sum_last(t) p (1 - p) + eps p (S - t)(1 - 2p); Hessian times v: "
                "sum_last(t) p (v - p . v) + eps p (sum(p v (t - S)) - (t - S)(v - p . v))",
    domain=_PROBABILITIES,
    jax_kernel="torchlean.kernels.jax_terms:poly_loss_cross_entropy",
    torch_reference=_torch_poly,
    torch_text="F.cross_entropy(z.movedim(-1, 1), t.movedim(-1, 1), reduction='sum') + "
               "eps * (t * (1 - z.softmax(-1))).sum()",
    deriv=_poly_deriv)(_poly)


SAFE_SOFTMAX_CROSS_ENTROPY: LossDeclaration = define_loss(
    "safe_softmax_cross_entropy", kind="slice", reduction="sum",
    arg_names=("logits", "labels"),
    formula="per slice -sum(t log_softmax(z)), t log_softmax = 0 where t = 0 (a -inf logit "
            "with label 0 costs nothing)",
    derivative_text="softmax(z) sum_last(t) - t (softmax = 0 at a -inf logit)",
    second=_cross_entropy_logits_second, hvp=_cross_entropy_logits_hvp,
    hessian_sign="nonnegative",
    second_text="diagonal: sum_last(t) softmax (1 - softmax); Hessian times v: "
                "sum_last(t) softmax (v - softmax . v)",
    domain=_PROBABILITIES,
    jax_kernel="torchlean.kernels.jax_terms:safe_softmax_cross_entropy",
    torch_reference=_torch_softmax_ce,
    torch_text="F.cross_entropy(z.movedim(-1, 1), t.movedim(-1, 1), reduction='sum')",
    deriv=_cross_entropy_logits_deriv)(_safe_cross_entropy)


# --------------------------------------------------------------------------------------------
# Cosine distance per slice
# --------------------------------------------------------------------------------------------


def _check_squared_floor(value: Any) -> float:
    """Cosine distance's ``epsilon``: the floor of the SQUARED norms, a finite real >= 0."""
    expected = "a finite real number >= 0 (the floor of the squared norms)"
    if not is_real_number(value) or value != value:
        raise ParameterError(f"`epsilon` must be {expected}; got {value!r}")
    try:
        out = float(value)
    except OverflowError:
        out = math.inf
    if not 0 <= out < math.inf:
        raise ParameterError(f"`epsilon` must be {expected}; got {value!r}")
    return out


def _unit(c: Context, x: Any, epsilon: float) -> tuple[Any, Any, Any]:
    """``(x / sqrt(max(|x|**2, eps)), |x| or 1, above)`` per slice (keepdims), ``above``:
    ``|x|**2 >= eps``; the norm is 1 where it is floored, so that dividing by it is safe.

    The norm is taken of ``x / m``, ``m`` the slice's largest magnitude (floats; exact
    semantics may use 1), so no square overflows or underflows where the quotient is finite;
    above the floor the unit vector is ``(x / m) / |x / m|``, free of ``m``. With ``eps = 0`` a
    zero vector has no direction: NaN, as 0 / 0 gives in floats (the exact semantics would
    raise instead)."""
    m = c.exp_shift(c.abs(x), -1)
    m = c.where(c.lt(0, m), m, 1)
    a = x / m
    na = c.sqrt(c.sum(a * a, axis=-1, keepdims=True))
    norm = na * m
    if epsilon == 0:
        zero = _is_zero(c, na)
        unit = c.where(zero, c.const(math.nan), a / c.where(zero, 1, na))
        return unit, c.where(zero, 1, norm), c.le(0, norm)
    # below the floor |x|**2 < eps is finite, and sqrt(max(|x|**2, eps)) is sqrt(eps)
    squared = norm * norm
    above = c.le(c.const(epsilon), squared)
    floor = c.sqrt(c.maximum(squared, c.const(epsilon)))
    unit = c.where(above, a / c.where(above, na, 1), x / c.where(above, 1, floor))
    return unit, c.where(above, norm, floor), above


def _cosine_distance(c: Context, p: Any, t: Any, *, epsilon: float) -> Any:
    u, _, p_above = _unit(c, p, epsilon)
    v, _, t_above = _unit(c, t, epsilon)
    # one term per slice (shape [..., 1]); with both vectors of unit length 1 - u . v is
    # |u - v|**2 / 2, which does not cancel for nearly parallel vectors
    w = u - v
    both = c.logical_and(p_above, t_above)
    return c.where(both, c.sum(w * w, axis=-1, keepdims=True) / 2,
                   1 - c.sum(u * v, axis=-1, keepdims=True))


def _cosine_distance_deriv(c: Context, p: Any, t: Any, *, epsilon: float) -> Any:
    # |p|**2 >= eps: (cos u - v) / |p|; below the floor u = p / sqrt(eps), a gradient of
    # -v / sqrt(eps) (the norm returned there is sqrt(eps))
    u, pn, p_above = _unit(c, p, epsilon)
    v, _, _ = _unit(c, t, epsilon)
    cos = c.sum(u * v, axis=-1, keepdims=True)
    g = c.where(p_above, cos * u - v, -v) / pn
    return _keep_nan(c, g, cos)


def _cosine_distance_second(c: Context, p: Any, t: Any, *, epsilon: float) -> Any:
    u, pn, p_above = _unit(c, p, epsilon)
    v, _, _ = _unit(c, t, epsilon)
    cos = c.sum(u * v, axis=-1, keepdims=True)
    # H_ij = (cos delta_ij - 3 cos u_i u_j + u_i v_j + v_i u_j) / |p|**2 above the floor, 0
    # below (the gradient is constant there); divided twice: |p|**2 may overflow
    h = (cos * (1 - 3 * (u * u)) + 2 * (u * v)) / pn / pn
    return _keep_nan(c, c.where(p_above, h, 0), cos)


def _cosine_distance_hvp(c: Context, p: Any, t: Any, w: Any, *, epsilon: float) -> Any:
    u, pn, p_above = _unit(c, p, epsilon)
    v, _, _ = _unit(c, t, epsilon)
    cos = c.sum(u * v, axis=-1, keepdims=True)
    uw = c.sum(u * w, axis=-1, keepdims=True)
    vw = c.sum(v * w, axis=-1, keepdims=True)
    h = (cos * (w - 3 * (u * uw)) + u * vw + v * uw) / pn / pn
    return _keep_nan(c, c.where(p_above, h, 0), cos, w)


def _torch_cosine_distance(p: Any, t: Any, epsilon: float) -> Any:
    torch = _torch()
    pn = torch.sqrt((p * p).sum(-1, keepdim=True).clamp(min=epsilon))
    tn = torch.sqrt((t * t).sum(-1, keepdim=True).clamp(min=epsilon))
    return (1 - (p / pn * (t / tn)).sum(-1)).sum()


COSINE_DISTANCE: LossDeclaration = define_loss(
    "cosine_distance", kind="slice", reduction="sum", arg_names=("predictions", "targets"),
    params=[Param("epsilon", 0.0, _check_squared_floor,
                  "the floor of both SQUARED norms, >= 0 (0: a zero vector gives NaN)")],
    formula="per slice 1 - (p . t) / (sqrt(max(|p|**2, eps)) sqrt(max(|t|**2, eps)))",
    derivative_text="(cos u - v) / |p| where |p|**2 >= eps, else -v / sqrt(eps); "
                    "u = p / |p|, v = t / sqrt(max(|t|**2, eps))",
    second=_cosine_distance_second, hvp=_cosine_distance_hvp, hessian_sign="any",
    second_text="(cos (I - 3 u u^T) + u v^T + v u^T) / |p|**2 where |p|**2 >= eps, else 0",
    domain=Domain(largest=_LARGEST,
                  text="predicted, target: real vectors along the last axis; eps >= 0 floors "
                       "the squared norms (eps = 0: NaN for a zero vector)"),
    torch_reference=_torch_cosine_distance,
    torch_text="(1 - (p / sqrt(clamp(|p|**2, eps)) * t / sqrt(clamp(|t|**2, eps))).sum(-1))"
               ".sum()",
    deriv=_cosine_distance_deriv)(_cosine_distance)
