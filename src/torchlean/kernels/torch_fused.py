"""Fused PyTorch evaluation of ``(value, derivative)``: tensor ops under ``torch.no_grad()``.

Each loss computes its elementwise terms once and reuses them for the value and the derivative
(``d = p - t`` for mse / mae / huber, ``exp(x)`` for poisson, ``expm1(-|d|)`` for log-cosh, the
shifted ``exp`` for cross-entropy on logits), in place where a temporary is not needed again.

Precision is the spec's: inputs are evaluated in float64 and rounded once to ``predicted``'s
dtype (a device without float64 is left to the spec). The formulas restate those of
:mod:`torchlean.spec.layers.loss` (log-cosh as in :func:`.numba_kernels._log_cosh_term`);
``tests/test_kernels.py`` holds them equal to the spec.

Each op takes float64 tensors ``p``, ``t`` of one shape, the reduction's denominator ``n`` and
the loss's parameters in declaration order (checked by their validators), and returns float64
``(value, derivative)``, or None when the spec must run (an empty or 0-d input to cross-entropy
on logits, ...). A declaration's kernel names its op (``torch=`` of
:mod:`torchlean.kernels.kernel`); :func:`run` checks the declared target domain before it.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from torchlean.contexts.torch_support import fixed_order_sum

__all__ = ["run", "value_and_deriv"]

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


def mse(p: Tensor, t: Tensor, n: int) -> Result:
    d = p - t
    v = _sum(d * d)
    return v / n, d.div_(n).mul_(2)  # 2 (d / n): 2 d alone may overflow


def mae(p: Tensor, t: Tensor, n: int) -> Result:
    d = p - t
    v = _sum(torch.abs(d))
    return v / n, _sign(d).div_(n)


def huber(p: Tensor, t: Tensor, n: int, dl: float) -> Result:
    if dl == 0:
        return mae(p, t, n)
    d = p - t
    a = torch.abs(d)
    inside = a < dl
    v = _sum(torch.where(inside, d * d / (2 * dl), a - dl / 2))
    return v / n, torch.where(inside, d / dl, _sign(d)).div_(n)


def pseudo_huber(p: Tensor, t: Tensor, n: int, dl: float) -> Result:
    # the declaration's forms on either side of |d| = delta (see its kernel term)
    d = p - t
    ad = torch.abs(d)
    a = ad / dl
    small = a < 1
    m = torch.where(small, a, 1.0)
    q = dl / torch.where(small, dl, ad)  # NaN takes this branch and keeps it
    sm = torch.sqrt(1 + m * m)
    sq = torch.sqrt(1 + q * q)
    v = _sum(torch.where(small, ad * (ad / (sm + 1)), dl * (ad * sq - dl)))
    g = torch.where(small, d / sm, _sign(d) * dl / sq)
    return v / n, g.div_(n)


def _clip(p: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(q, log(q), log(1 - q), inside)`` as the spec forms them: ``q = clamp(p, eps, 1 - eps)``
    (NaN-propagating), the logs through ``1 - p`` (exact) from ``p = 1/2`` on, and the strict
    interior tested as ``eps < p`` and ``eps < 1 - p``."""
    hi = 1 - eps
    q = torch.clamp(p, eps, hi)
    r = torch.clamp(1 - p, eps, hi)
    low = 2 * p < 1
    la = torch.log(torch.where(low, q, r))
    lb = torch.log1p(-torch.where(low, q, r))
    inside = (p > eps) & ((1 - p) > eps)
    return q, torch.where(low, la, lb), torch.where(low, lb, la), inside


def cross_entropy(p: Tensor, t: Tensor, n: int, eps: float) -> Result:
    q, log_q, _, inside = _clip(p, eps)
    v = -_sum(t * log_q)
    g = _keep_nan(torch.where(inside, -t / q, 0.0), p, t)
    return v / n, g.div_(n)


def hinge(p: Tensor, t: Tensor, n: int) -> Result:
    m = 1 - t * p
    v = _sum(torch.clamp(m, min=0))  # clamp keeps NaN, as the spec's maximum
    g = _keep_nan(torch.where(m > 0, -t, 0.0), p, t)
    return v / n, g.div_(n)


def poisson(p: Tensor, t: Tensor, n: int) -> Result:
    e = torch.exp(p)
    v = _sum(e - t * p)
    # the spec's form for counts near 1: expm1(x) - (t - 1), exact in t - 1
    near_one = (2 * t >= 1) & (t <= 2)
    g = torch.where(near_one, torch.expm1(p) - (t - 1), e.sub_(t))
    return v / n, g.div_(n)


def log_cosh(p: Tensor, t: Tensor, n: int) -> Result:
    d = p - t
    a = torch.abs(d)
    w = torch.expm1(-a)
    u = w * (2 + w)
    small = torch.log1p(w * w / (2 * (1 + w)))
    large = a + torch.log1p(u / 2)
    v = _sum(torch.where(a < 1, small, large))
    th = torch.div(u, 2 + u).neg_()
    return v / n, torch.copysign(th, d).div_(n)


def binary_cross_entropy(p: Tensor, t: Tensor, n: int, eps: float) -> Result:
    q, log_q, log_1mq, inside = _clip(p, eps)
    v = -_sum(t * log_q + (1 - t) * log_1mq)
    g = _keep_nan(torch.where(inside, (q - t) / (q * (1 - q)), 0.0), p, t)
    return v / n, g.div_(n)


def cross_entropy_logits(z: Tensor, t: Tensor, n: int) -> Result:
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


def cosine_similarity(p: Tensor, t: Tensor, n: int, eps: float) -> Result:
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


def run(decl: Any, kern: Any, p: Tensor, t: Tensor,
        kwargs: dict[str, Any]) -> tuple[Tensor, Tensor] | None:
    """``(value, derivative)`` of the declaration ``decl`` through its kernel's fused op, for
    validated tensors ``p``, ``t`` (same shape and device, ``p`` floating), in ``p``'s dtype;
    None where the kernel has no torch op or the spec must run."""
    from torchlean.kernels.kernel import torch_op

    op = torch_op(kern)
    if op is None or p.device.type == "mps":
        return None
    out_dtype = p.dtype
    with torch.no_grad():
        pw = p.detach().to(torch.float64)
        tw = t.detach().to(torch.float64)
        dom = decl.domain
        if dom.checked and kwargs.get("check_domain", True):
            lo = -math.inf if dom.target_lo is None else dom.target_lo
            hi = math.inf if dom.target_hi is None else dom.target_hi
            if bool(torch.any((tw < lo) | (tw > hi))):
                return None  # the spec raises the DomainError with its message
        params = tuple(decl.checked_params(kwargs).values())
        n = max(p.numel(), 1) if decl.reduction == "mean" else 1
        res = op(pw, tw, n, *params)
        if res is None:
            return None
        v, g = res
        return v.to(out_dtype), g.to(out_dtype)


def value_and_deriv(name: str, p: Tensor, t: Tensor,
                    kwargs: dict[str, Any]) -> tuple[Tensor, Tensor] | None:
    """:func:`run` for the registered loss ``name`` (None when it declares no kernel)."""
    from torchlean.kernels.kernel import resolve
    from torchlean.spec.core.declaration import registered

    decl = registered(name)
    kern = resolve(decl)
    return None if kern is None else run(decl, kern, p, t, kwargs)
