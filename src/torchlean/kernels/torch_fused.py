"""Fused PyTorch evaluation of ``(value, derivative)``: tensor ops under ``torch.no_grad()``.

Each loss computes its elementwise terms once and reuses them for the value and the derivative
(``d = p - t`` for mse / mae / huber, ``exp(x)`` for poisson, ``expm1(-|d|)`` for log-cosh, the
shifted ``exp`` for cross-entropy on logits), in place where a temporary is not needed again.

Precision is the spec's: inputs are evaluated in float64 and rounded once to ``predicted``'s
dtype (a device without float64 is left to the spec). The formulas restate those of
:mod:`torchlean.spec.layers.loss` (log-cosh as in :func:`.numba_kernels._log_cosh_term`);
``tests/test_kernels.py`` holds them equal to the spec.

Each function takes float64 tensors ``p``, ``t`` of one shape and returns float64 ``(value,
derivative)``, or None when the spec must run (a target outside the checked domain, an empty or
0-d input to cross-entropy on logits).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from torchlean.contexts.torch_support import fixed_order_sum
from torchlean.spec.core.tensor import check_delta, check_epsilon
from torchlean.spec.layers.loss import EPSILON

__all__ = ["FUSED", "value_and_deriv"]

Tensor = torch.Tensor
Result = tuple[Tensor, Tensor] | None


def _keep_nan(g: Tensor, *xs: Tensor) -> Tensor:
    for x in xs:
        g = torch.where(torch.isnan(x), x, g)
    return g


def _sum(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    # on the CPU in an order fixed by the shape: torch.sum's follows its thread count
    if x.device.type == "cpu":
        return fixed_order_sum(x, dim, keepdim)
    return torch.sum(x) if dim is None else torch.sum(x, dim=dim, keepdim=keepdim)


def _sign(d: Tensor) -> Tensor:
    # torch.sign(nan) is 0; the spec's sign keeps NaN
    return _keep_nan(torch.sign(d), d)


def _mse(p: Tensor, t: Tensor, n: int, kw: dict[str, Any]) -> Result:
    d = p - t
    v = _sum(d * d)
    return v / n, d.div_(n).mul_(2)  # 2 (d / n): 2 d alone may overflow


def _mae(p: Tensor, t: Tensor, n: int, kw: dict[str, Any]) -> Result:
    d = p - t
    v = _sum(torch.abs(d))
    return v / n, _sign(d).div_(n)


def _huber(p: Tensor, t: Tensor, n: int, kw: dict[str, Any]) -> Result:
    dl = float(check_delta(kw.get("delta", 1.0)))
    if dl == 0:
        return _mae(p, t, n, kw)
    d = p - t
    a = torch.abs(d)
    inside = a < dl
    v = _sum(torch.where(inside, d * d / (2 * dl), a - dl / 2))
    return v / n, torch.where(inside, d / dl, _sign(d)).div_(n)


def _clip(p: Tensor, kw: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(q, log(q), log(1 - q), inside)`` as the spec forms them: ``q = clamp(p, eps, 1 - eps)``
    (NaN-propagating), the logs through ``1 - p`` (exact) from ``p = 1/2`` on, and the strict
    interior tested as ``eps < p`` and ``eps < 1 - p``."""
    eps = float(check_epsilon(kw.get("epsilon", EPSILON)))
    hi = 1 - eps
    q = torch.clamp(p, eps, hi)
    r = torch.clamp(1 - p, eps, hi)
    low = 2 * p < 1
    la = torch.log(torch.where(low, q, r))
    lb = torch.log1p(-torch.where(low, q, r))
    inside = (p > eps) & ((1 - p) > eps)
    return q, torch.where(low, la, lb), torch.where(low, lb, la), inside


def _cross_entropy(p: Tensor, t: Tensor, n: int, kw: dict[str, Any]) -> Result:
    q, log_q, _, inside = _clip(p, kw)
    v = -_sum(t * log_q)
    g = _keep_nan(torch.where(inside, -t / q, 0.0), p, t)
    return v / n, g.div_(n)


def _hinge(p: Tensor, t: Tensor, n: int, kw: dict[str, Any]) -> Result:
    m = 1 - t * p
    v = _sum(torch.clamp(m, min=0))  # clamp keeps NaN, as the spec's maximum
    g = _keep_nan(torch.where(m > 0, -t, 0.0), p, t)
    return v / n, g.div_(n)


def _poisson(p: Tensor, t: Tensor, n: int, kw: dict[str, Any]) -> Result:
    if kw.get("check_domain", True) and bool(torch.any(t < 0)):
        return None
    e = torch.exp(p)
    v = _sum(e - t * p)
    # the spec's form for counts near 1: expm1(x) - (t - 1), exact in t - 1
    near_one = (2 * t >= 1) & (t <= 2)
    g = torch.where(near_one, torch.expm1(p) - (t - 1), e.sub_(t))
    return v / n, g.div_(n)


def _log_cosh(p: Tensor, t: Tensor, n: int, kw: dict[str, Any]) -> Result:
    d = p - t
    a = torch.abs(d)
    w = torch.expm1(-a)
    u = w * (2 + w)
    small = torch.log1p(w * w / (2 * (1 + w)))
    large = a + torch.log1p(u / 2)
    v = _sum(torch.where(a < 1, small, large))
    th = torch.div(u, 2 + u).neg_()
    return v / n, torch.copysign(th, d).div_(n)


def _binary_cross_entropy(p: Tensor, t: Tensor, n: int, kw: dict[str, Any]) -> Result:
    if kw.get("check_domain", True) and bool(torch.any((t < 0) | (t > 1))):
        return None
    q, log_q, log_1mq, inside = _clip(p, kw)
    v = -_sum(t * log_q + (1 - t) * log_1mq)
    g = _keep_nan(torch.where(inside, (q - t) / (q * (1 - q)), 0.0), p, t)
    return v / n, g.div_(n)


def _cross_entropy_logits(z: Tensor, t: Tensor, n: int, kw: dict[str, Any]) -> Result:
    if z.ndim == 0 or z.numel() == 0:
        return None
    m = torch.amax(z, dim=-1, keepdim=True)  # NaN-propagating
    s = z - torch.where(torch.isfinite(m), m, 0.0)
    e = torch.exp(s)
    # sum(e) - 1 as the spec's sum_exp_m1: the terms below the max apart from the rest
    neg = s < 0
    below = _sum(torch.where(neg, e, 0.0), -1, True)
    rest = _sum(torch.where(neg, 0.0, e), -1, True)
    r = below + (rest - 1)
    v = -_sum(t * (s - torch.log1p(r)))
    mass = _sum(t, -1, True)
    sm = e.div_(1 + r)
    g = sm * mass - t
    near = 2 * sm > 1  # at most one entry per row: the spec's cancellation-free form there
    if z.is_meta or bool(torch.any(near)):
        alt = mass * ((torch.expm1(s) - r) / (1 + r)) + (mass - t)
        g = torch.where(near, alt, g)
    return v / n, g.div_(n)


def _norm(x: Tensor) -> float:
    """The spec's overflow-safe norm: ``s * sqrt(sum((x / s)**2))``, ``s = max|x|``."""
    if x.numel() == 0:
        return 0.0
    s = float(torch.max(torch.abs(x)))
    if s > 0 and math.isfinite(s):
        y = x / s
        return s * math.sqrt(float(_sum(y * y)))
    return math.sqrt(float(_sum(x * x)))


def _cosine_similarity(p: Tensor, t: Tensor, n: int, kw: dict[str, Any]) -> Result:
    eps = float(check_epsilon(kw.get("epsilon", EPSILON)))
    if eps < 2.0**-400:
        return None  # the clamped norms' product may underflow to 0: the spec decides
    if p.is_meta:
        return None  # the branch on the norm needs data; the spec keeps meta tensors lazy
    pn, tn = _norm(p), _norm(t)
    dot = float(_sum(p * t))
    big_t = tn if (tn > eps or tn != tn) else eps
    big_p = pn if (pn > eps or pn != pn) else eps
    if eps < pn and eps < tn and math.isfinite(pn) and math.isfinite(tn):
        # Unit vectors: the spec's |u - v|**2 / 2, free of the cancellation of 1 - u . v.
        w = p / big_p - t / big_t
        value = _sum(w * w).div_(2).to(p.dtype)
    else:
        value = torch.tensor(1 - dot / (big_p * big_t), dtype=p.dtype, device=p.device)
    if math.isnan(pn) or math.isnan(tn) or math.isnan(dot):
        return value, torch.full_like(p, math.nan)
    if eps < pn:
        return value, (p * (dot / (pn * pn))).sub_(t).div_(pn * big_t)
    return value, t.neg().div_(eps * big_t)


FUSED: dict[str, Callable[[Tensor, Tensor, int, dict[str, Any]], Result]] = {
    "mse": _mse,
    "mae": _mae,
    "huber": _huber,
    "cross_entropy": _cross_entropy,
    "cross_entropy_logits": _cross_entropy_logits,
    "hinge": _hinge,
    "poisson": _poisson,
    "cosine_similarity": _cosine_similarity,
    "log_cosh": _log_cosh,
    "binary_cross_entropy": _binary_cross_entropy,
}


def value_and_deriv(name: str, p: Tensor, t: Tensor,
                    kwargs: dict[str, Any]) -> tuple[Tensor, Tensor] | None:
    """``(value, derivative)`` of ``name`` for validated tensors ``p``, ``t`` (same shape and
    device, ``p`` floating), in ``p``'s dtype; None where the spec must run."""
    fn = FUSED.get(name)
    if fn is None or p.device.type == "mps":
        return None
    out_dtype = p.dtype
    with torch.no_grad():
        pw = p.detach().to(torch.float64)
        tw = t.detach().to(torch.float64)
        res = fn(pw, tw, max(p.numel(), 1), kwargs)
        if res is None:
            return None
        v, g = res
        return v.to(out_dtype), g.to(out_dtype)
