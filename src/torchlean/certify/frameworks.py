"""Check (e): agreement with PyTorch autograd where the semantics agree.

The PyTorch side is the declaration's ``torch_reference(p, t, **params)``, a callable written
with PyTorch ops, run on float64 tensors with the gradient from ``torch.autograd``. Points come
from the declaration's zones where PyTorch agrees (``Zone.torch_agrees``: strictly inside or
strictly outside a clamp, away from the hinge margin, both cosine norms above ``eps``); at kinks
PyTorch makes other choices (see docs/semantics.md). Value and gradient must agree to ``RTOL``
relative to the largest magnitude involved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from torchlean.certify.common import Loss, subject
from torchlean.certify.result import CheckResult, Collector, skipped

__all__ = ["RTOL", "check_frameworks", "torch_reference"]

#: relative tolerance (float64 on both sides; the formulas differ in rounding only)
RTOL = 1e-10


def torch_reference(reference: Callable[..., Any], p: Any, t: Any,
                    params: Mapping[str, Any]) -> tuple[Any, Any]:
    """``(value, gradient w.r.t. p)`` of a declaration's ``torch_reference`` at ``(p, t)``."""
    import torch

    leaf = p.detach().clone().requires_grad_(True)
    value = reference(leaf, t, **params)
    (grad,) = torch.autograd.grad(value, leaf)
    return value.detach(), grad


def check_frameworks(loss: Loss, value_fn: Callable[..., Any] | None = None,
                     deriv_fn: Callable[..., Any] | None = None, *,
                     params: dict[str, Any] | None = None, points: int = 8,
                     seed: int = 0, value: bool = True) -> CheckResult:
    """Check (e) for ``loss`` (a declaration or a registered name; or the pair ``value_fn``,
    ``deriv_fn``).

    ``points``: points per zone where PyTorch agrees. SKIP when torch is not installed or the
    declaration has no PyTorch reference. ``value=False`` compares the gradient alone (a
    second-order row: its value, a sum of first derivatives, may cancel).
    """
    try:
        import torch
    except ImportError:
        return skipped("frameworks", "torch is not installed (pip install torch)")
    s = subject(loss, value_fn, deriv_fn, params)
    reference = s.decl.torch_reference
    if reference is None:
        return skipped("frameworks", "no PyTorch reference in the declaration")
    zones = tuple(z for z in s.plan.zones if z.torch_agrees)
    rng = np.random.default_rng(seed)
    shape = s.plan.shapes[-1]
    col = Collector()
    n = 0
    worst = 0.0
    for zone in zones:
        for _ in range(points):
            n += 1
            p_np, t_np = (np.asarray(a, dtype=np.float64)
                          for a in zone.sample(rng, shape, s.params))
            p, t = torch.from_numpy(p_np), torch.from_numpy(t_np)
            v_ref, g_ref = torch_reference(reference, p, t, s.params)
            g = s.deriv(p, t, **s.call_params)
            parts = [("derivative", g, g_ref)]
            if value:
                parts.insert(0, ("value", s.value(p, t, **s.call_params), v_ref))
            for part, a, b in parts:
                a, b = np.asarray(a.detach().numpy()), np.asarray(b.numpy(force=True))
                scale = max(float(np.max(np.abs(a), initial=0)),
                            float(np.max(np.abs(b), initial=0)), 1e-300)
                diff = float(np.max(np.abs(a - b), initial=0))
                err = diff / scale
                worst = max(worst, err)
                if not err <= RTOL:
                    col.fail(f"{part} differs from PyTorch's: {zone.name}", relative_error=err,
                             difference=diff, spec=a.ravel().tolist(), torch=b.ravel().tolist(),
                             predicted=p_np.ravel().tolist(), target=t_np.ravel().tolist())
    summary = f"{n} pts, rel err {worst:.0e}"
    return col.result("frameworks", summary, {"points": n, "zones": [z.name for z in zones],
                                              "max_relative_error": worst, "rtol": RTOL,
                                              "torch": torch.__version__,
                                              "reference": s.decl.torch_text
                                              or getattr(reference, "__qualname__", "")},
                      examined=n, unit="points")
