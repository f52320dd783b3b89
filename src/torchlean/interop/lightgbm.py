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

from torchlean.interop.boosting import (
    AUTO_FLOOR,
    Constant,
    Exact,
    Floor,
    NativeObjective,
    Scaled,
    SklearnObjective,
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


class LightGBMObjective(NativeObjective):
    """``f(preds, train_data) -> (grad, hess)`` for ``params["objective"]``."""

    LIBRARY = "LightGBM"
    SCORES = "preds"


class LightGBMSklearnObjective(SklearnObjective):
    """``objective(y_true, y_pred, sample_weight=None) -> (grad, hess)`` for the
    scikit-learn estimators."""

    LIBRARY = "LightGBM"


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
