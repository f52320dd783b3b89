"""Second derivatives as first derivatives: the *second-order declaration* of a loss.

A loss that declares its second derivative (``decl.has_second``) is certified by running the
first-order checks on another declaration, built here from its terms:

- elementwise: the value term is the DERIVATIVE term (per element, unreduced: a term that
  takes the mean's ``n`` gets ``n=1``), the derivative term is the declared ``second_term``,
  reduction ``"sum"``. The derivative of ``sum_i g_i(p, t)`` w.r.t. ``p_i`` is ``g_i'(p_i)``
  (``g_i`` reads only its own element), so every identity the first-order checks hold for a
  value and its derivative, they now hold for the derivative and the second derivative;
- slice: the value term is ``g(p, t) * t`` (the derivative term times the target, summed): its
  gradient w.r.t. ``p`` is ``H t`` (``H``, each slice's Hessian, is symmetric), so the
  derivative term is ``hvp_term(c, p, t, t)``. The Hessian for other vectors and its diagonal
  (``second_term``) are held to the derivative term by :func:`~torchlean.certify.hessian.
  check_hessian`.

Seams keep their place; a seam is a kink of the second-order declaration exactly when it states
a ``second_choice`` (a kink of the derivative: Huber's ``|d| = delta``, a clamp bound, ``|d|``'s
0); otherwise the second derivative must be continuous across it. Zones, domain and parameters
are the loss's own. The PyTorch reference, where the loss has one, is differentiated twice by
autograd (:func:`double_backward`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from torchlean.certify.common import Loss, declaration
from torchlean.spec.core.declaration import LossDeclaration, _takes_n

__all__ = ["SUFFIX", "double_backward", "row_name", "second_order"]

#: appended to a loss's name to name its second-order declaration (an identifier)
SUFFIX = "_second_order"


def row_name(name: str) -> str:
    """The report's label of a loss's second-order row."""
    return f"{name} (2nd)"


def second_order(loss: Loss) -> LossDeclaration:
    """The second-order declaration of ``loss`` (a declaration or a registered name); raises
    :class:`~torchlean.errors.UnsupportedOperationError` when it declares no second
    derivative."""
    decl = declaration(loss)
    if not decl.has_second:
        from torchlean.errors import UnsupportedOperationError

        raise UnsupportedOperationError(f"the {decl.name} loss declares no second derivative "
                                        f"to certify")
    deriv = decl.deriv_term
    if _takes_n(deriv):
        def first(c: Any, p: Any, t: Any, **prm: Any) -> Any:
            return deriv(c, p, t, n=1, **prm)
    else:
        first = deriv
    if decl.kind == "slice":
        hvp = decl.hvp_term

        def value(c: Any, p: Any, t: Any, **prm: Any) -> Any:
            return first(c, p, t, **prm) * t

        def second(c: Any, p: Any, t: Any, **prm: Any) -> Any:
            return hvp(c, p, t, t, **prm)  # type: ignore[misc]
    else:
        value, second = first, decl.second_term  # type: ignore[assignment]
    seams = tuple(replace(s, kink=bool(s.second_choice), choice=s.second_choice)
                  for s in decl.seams)
    ref = decl.torch_reference
    return decl.with_changes(
        name=decl.name + SUFFIX, value_term=value, deriv_term=second, reduction="sum",
        seams=seams, second_term=None, hvp_term=None, kernel=None, grad_hess_kernel=None,
        torch_reference=None if ref is None else double_backward(ref, decl),
        torch_text=f"autograd twice of {decl.torch_text}" if decl.torch_text else "",
        formula=decl.derivative_text, derivative_text=decl.second_text,
        hessian_sign="any", second_text="")


def double_backward(reference: Callable[..., Any], decl: LossDeclaration) -> Callable[..., Any]:
    """The PyTorch side of the second-order declaration: ``reference`` is the loss's own
    (reduced) PyTorch value; this returns ``scale * sum(grad(reference) * w)`` with the graph
    kept, whose autograd gradient is ``scale * H w``: ``w = 1`` for an elementwise loss (``H`` is
    diagonal, so that is its diagonal), ``w = t`` for a slice loss (``H t``); ``scale`` undoes a
    mean (``n``, the element count)."""
    slice_kind = decl.kind == "slice"
    mean = decl.reduction == "mean"

    def reference2(p: Any, t: Any, **params: Any) -> Any:
        import torch

        leaf = p if p.requires_grad else p.detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(reference(leaf, t, **params), leaf, create_graph=True)
        scale = max(p.numel(), 1) if mean else 1
        out = scale * ((g * t).sum() if slice_kind else g.sum())
        # a gradient constant in p (a piecewise linear loss) keeps no graph: its derivative is 0
        return out if out.requires_grad else out + (leaf * 0).sum()

    return reference2
