"""Check (e): agreement with PyTorch autograd where the semantics agree.

The PyTorch side is the registry's ``torch_equivalent`` expression of each loss (the "PyTorch
equivalent" column of the docs), evaluated as written on float64 tensors, with the gradient from
``torch.autograd``; so the column itself is what gets checked. Points come from the plan's zones
where PyTorch agrees (strictly inside or strictly outside a clamp, away from the hinge margin,
both cosine norms above ``eps``); at kinks PyTorch makes other choices (see
docs/semantics.md). Value and gradient must agree to ``RTOL`` relative to the largest
magnitude involved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from torchlean.certify.common import subject
from torchlean.certify.result import CheckResult, Collector, skipped

__all__ = ["RTOL", "check_frameworks", "torch_reference"]

#: relative tolerance (float64 on both sides; the formulas differ in rounding only)
RTOL = 1e-10


def torch_reference(expression: str, p: Any, t: Any, params: dict[str, Any]) -> tuple[Any, Any]:
    """``(value, gradient w.r.t. p)`` of a registry ``torch_equivalent`` expression.

    The expression may name the prediction ``p``, ``x`` or ``z``, the target ``t``, the
    parameters ``eps`` and ``delta``, ``torch`` and ``F`` (``torch.nn.functional``).
    """
    import torch
    import torch.nn.functional as F

    leaf = p.detach().clone().requires_grad_(True)
    names = {"torch": torch, "F": F, "p": leaf, "x": leaf, "z": leaf, "t": t,
             "eps": params.get("epsilon"), "delta": params.get("delta")}
    # The registry's own text, evaluated as written (torch may import lazily inside, so the
    # usual builtins stay available).
    value = eval(expression, {}, names)
    (grad,) = torch.autograd.grad(value, leaf)
    return value.detach(), grad


def check_frameworks(name: str, value_fn: Callable[..., Any] | None = None,
                     deriv_fn: Callable[..., Any] | None = None, *,
                     params: dict[str, Any] | None = None, points: int = 8,
                     seed: int = 0) -> CheckResult:
    """Check (e) for the loss ``name`` (or the pair ``value_fn``, ``deriv_fn``).

    ``points``: points per zone where PyTorch agrees. SKIP when torch is not installed or the
    loss has no PyTorch equivalent.
    """
    try:
        import torch
    except ImportError:
        return skipped("frameworks", "torch is not installed (pip install torch)")
    s = subject(name, value_fn, deriv_fn, params)
    if not s.torch_equivalent:
        return skipped("frameworks", "no PyTorch equivalent in the registry")
    zones = tuple(z for z in s.plan.zones if z.torch_agrees)
    rng = np.random.default_rng(seed)
    shape = s.plan.shapes[-1]
    col = Collector()
    n = 0
    worst = 0.0
    for zone in zones:
        for _ in range(points):
            n += 1
            p_np, t_np = zone.sample(rng, shape, s.params)
            p, t = torch.from_numpy(p_np), torch.from_numpy(t_np)
            v_ref, g_ref = torch_reference(s.torch_equivalent, p, t, dict(s.params))
            v = s.value(p, t, **s.call_params)
            g = s.deriv(p, t, **s.call_params)
            for part, a, b in (("value", v, v_ref), ("derivative", g, g_ref)):
                a, b = a.detach().numpy(), b.numpy()
                scale = max(float(np.max(np.abs(a), initial=0)),
                            float(np.max(np.abs(b), initial=0)), 1e-300)
                err = float(np.max(np.abs(a - b), initial=0)) / scale
                worst = max(worst, err)
                if not err <= RTOL:
                    col.fail(f"{part}: {zone.name}", relative_error=err, spec=a.ravel().tolist(),
                             torch=b.ravel().tolist(), predicted=p_np.ravel().tolist(),
                             target=t_np.ravel().tolist())
    summary = f"{n} pts, rel err {worst:.0e}"
    return col.result("frameworks", summary, {"points": n, "zones": [z.name for z in zones],
                                              "max_relative_error": worst, "rtol": RTOL,
                                              "torch": torch.__version__,
                                              "expression": s.torch_equivalent},
                      examined=n, unit="points")
