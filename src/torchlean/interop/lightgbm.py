"""LightGBM objectives from the loss declarations.

``lightgbm.train({"objective": objective("logistic"), ...}, train_set)``: LightGBM (4.0 and
later) calls ``f(preds, train_data)`` once per round with the raw scores ``preds`` (``(n,)``,
or ``(n, k)`` with ``num_class = k``) and takes ``(grad, hess)`` in the same shape. The labels
and weights are the Dataset's (``get_label()``, ``get_weight()``), applied here.

``sklearn_objective(name)`` is the form of ``LGBMRegressor(objective=...)`` /
``LGBMClassifier(objective=...)``: ``f(y_true, y_pred, sample_weight=None)`` (LightGBM passes
the weights to a three-parameter function).

The derivatives are :func:`torchlean.grad_hess` of the declaration; ``hessian=`` is the policy
of :mod:`torchlean.interop.boosting`. LightGBM's own ``multiclass`` Hessian is
``k / (k - 1) p (1 - p)``: ``hessian=Scaled("k/(k-1)")`` reproduces it. A callable objective
starts from raw score 0 (set ``boost_from_average=False`` on a built-in one to compare).
"""

from __future__ import annotations

from typing import Any

import numpy as np

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
    "Constant",
    "Exact",
    "Floor",
    "LightGBMObjective",
    "LightGBMSklearnObjective",
    "Scaled",
    "objective",
    "resolve_hessian",
    "sklearn_objective",
]


class LightGBMObjective(Objective):
    """``f(preds, train_data) -> (grad, hess)`` for ``params["objective"]``."""

    def __init__(self, name: str | LossDeclaration, hessian: Any, params: dict[str, Any]
                 ) -> None:
        super().__init__(name, hessian, params, library="LightGBM",
                         names={"scores": "preds", "target": "label", "weight": "weight"})

    def __call__(self, preds: np.ndarray, train_data: Any) -> tuple[np.ndarray, np.ndarray]:
        g, h = self.compute(preds, train_data.get_label(), train_data.get_weight())
        shape = np.shape(preds)
        return g.reshape(shape), h.reshape(shape)


class LightGBMSklearnObjective(Objective):
    """``objective(y_true, y_pred, sample_weight=None) -> (grad, hess)`` for the
    scikit-learn estimators."""

    def __init__(self, name: str | LossDeclaration, hessian: Any, params: dict[str, Any]
                 ) -> None:
        super().__init__(name, hessian, params, library="LightGBM",
                         names={"scores": "y_pred", "target": "y_true",
                                "weight": "sample_weight"})

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        g, h = self.compute(y_pred, y_true, sample_weight)
        shape = np.shape(y_pred)
        return g.reshape(shape), h.reshape(shape)


def objective(name: str | LossDeclaration, *, hessian: Any = "auto", **params: Any
              ) -> LightGBMObjective:
    """The objective of the loss ``name`` (with its ``params``) for
    ``lightgbm.train({"objective": ...})``. ``hessian``: the Hessian policy. The parameters
    are checked here; labels, weights and the scores' shape at every call (the first comes
    before any tree)."""
    return LightGBMObjective(name, hessian, params)


def sklearn_objective(name: str | LossDeclaration, *, hessian: Any = "auto", **params: Any
                      ) -> LightGBMSklearnObjective:
    """The objective of the loss ``name`` for ``LGBMRegressor(objective=...)`` and
    ``LGBMClassifier(objective=...)``."""
    return LightGBMSklearnObjective(name, hessian, params)
