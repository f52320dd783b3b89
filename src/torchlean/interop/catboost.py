"""CatBoost objectives from the loss declarations.

``CatBoostRegressor(loss_function=objective("squared_error"), eval_metric="RMSE")``: CatBoost
calls ``calc_ders_range(approxes, targets, weights)`` with the raw scores of a batch of samples
and takes, per sample, the NEGATED first and second derivatives (it maximises): the result is
an ``(n, 2)`` array of ``(-grad, -hess)``, weighted here. For a multi-class loss (``softmax``)
the object has ``calc_ders_multi(approxes, target, weight)`` instead, called once per sample
with its ``k`` raw scores; it returns ``(-grad, -Hessian)`` with the Hessian a ``k x k`` matrix
(CatBoost reads its upper triangle). CatBoost needs an ``eval_metric`` with a custom objective.

Under ``hessian="exact"`` (and ``Scaled``) the multi-class Hessian is the whole matrix, each
column the declared Hessian-vector product with a unit vector, as CatBoost's own
``MultiClass`` takes it; ``Constant`` and ``Floor`` give a diagonal matrix. The objects set
``no_jit = True``: CatBoost would otherwise try to compile the methods with numba.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from torchlean.errors import TorchleanError
from torchlean.interop.boosting import (
    AUTO_FLOOR,
    Constant,
    Exact,
    Floor,
    Objective,
    Scaled,
    resolve_hessian,
)
from torchlean.spec.core.declaration import LossDeclaration

__all__ = [
    "AUTO_FLOOR",
    "CatBoostMultiObjective",
    "CatBoostObjective",
    "Constant",
    "Exact",
    "Floor",
    "Scaled",
    "objective",
    "resolve_hessian",
]

_NAMES = {"scores": "approxes", "target": "targets", "weight": "weights"}


class CatBoostObjective(Objective):
    """``calc_ders_range(approxes, targets, weights)`` for a loss with one score per sample."""

    no_jit = True

    def __init__(self, name: str | LossDeclaration, hessian: Any, params: dict[str, Any]
                 ) -> None:
        super().__init__(name, hessian, params, library="CatBoost", names=dict(_NAMES))

    def calc_ders_range(self, approxes: Any, targets: Any, weights: Any) -> np.ndarray:
        g, h = self.compute(approxes, targets, weights)
        return np.column_stack((-g, -h))


class CatBoostMultiObjective(Objective):
    """``calc_ders_multi(approxes, target, weight)`` for a multi-class loss."""

    no_jit = True

    def __init__(self, name: str | LossDeclaration, hessian: Any, params: dict[str, Any]
                 ) -> None:
        super().__init__(name, hessian, params, library="CatBoost",
                         names={"scores": "approxes", "target": "target", "weight": "weight"})

    def calc_ders_multi(self, approxes: Any, target: Any, weight: Any
                        ) -> tuple[list[float], list[list[float]]]:
        p = np.asarray(approxes, dtype=np.float64)[None, :]
        w = None if weight is None else [weight]
        g, h = self.compute(p, [target], w)
        if isinstance(self.policy, Exact | Scaled):
            scale = 1.0 if weight is None else float(weight)
            if isinstance(self.policy, Scaled):
                scale *= self.policy.scale(p.shape[1])
            hess = scale * self._matrix(p[0], target)
        else:
            hess = np.diag(h[0])
        return (-g[0]).tolist(), (-hess).tolist()

    def _matrix(self, p: np.ndarray, target: Any) -> np.ndarray:
        """The whole Hessian of one sample's loss: column j is the declared Hessian-vector
        product with the j-th unit vector."""
        from torchlean.per_sample import per_sample_target
        from torchlean.spec.core.tensor import mean_denominator

        decl = self.declaration
        k = p.shape[0]
        rows = np.broadcast_to(p, (k, k)).copy()
        t = per_sample_target(decl, rows, np.full(k, float(target)))
        try:
            hv = np.asarray(decl.hvp(rows, t, np.eye(k), **self.params), dtype=np.float64)
        except TorchleanError as exc:
            raise type(exc)(f"{self.library} objective ({decl.name}): {exc}") from exc
        if decl.reduction == "mean":
            hv = hv * mean_denominator((k, k))
        return (hv + hv.T) / 2  # row j is H e_j; H is symmetric


def objective(name: str | LossDeclaration, *, hessian: Any = "auto", **params: Any
              ) -> CatBoostObjective | CatBoostMultiObjective:
    """The objective of the loss ``name`` (with its ``params``) for CatBoost's
    ``loss_function=``: a :class:`CatBoostMultiObjective` for a multi-class loss, else a
    :class:`CatBoostObjective`. ``hessian``: the Hessian policy. The parameters are checked
    here; labels, weights and scores at every call (the first comes before any tree)."""
    from torchlean.registry import get_loss

    decl = name if isinstance(name, LossDeclaration) else get_loss(name)
    if decl.kind == "slice":
        return CatBoostMultiObjective(decl, hessian, params)
    return CatBoostObjective(decl, hessian, params)
