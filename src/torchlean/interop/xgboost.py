"""XGBoost objectives from the loss declarations.

``xgboost.train(params, dtrain, num_boost_round, obj=objective("logistic"))``: XGBoost calls
``obj(predt, dtrain)`` once per round with the raw margins ``predt`` (``(n,)``, or ``(n, k)``
with ``num_class = k``) and takes ``(grad, hess)`` per sample, for minimisation, in the same
shape. The labels and weights are the DMatrix's (``get_label()``, ``get_weight()``); the
weights are applied here, as XGBoost leaves them to a custom objective.

``sklearn_objective(name)`` is the form of ``XGBRegressor(objective=...)`` /
``XGBClassifier(objective=...)``: ``f(y_true, y_pred, sample_weight=None)``.

The derivatives are :func:`torchlean.grad_hess` of the declaration; ``hessian=`` is the policy
of :mod:`torchlean.interop.boosting` (``"auto"`` by default). XGBoost's own ``multi:softprob``
Hessian is ``2 p (1 - p)``: ``hessian=Scaled(2.0)`` reproduces it. A custom objective starts
from ``base_score`` 0.5 as a raw margin unless ``base_score`` (or the DMatrix's
``base_margin``) is set: see ``docs/gradient-boosting.md``.
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
    "Scaled",
    "XGBoostObjective",
    "XGBoostSklearnObjective",
    "objective",
    "resolve_hessian",
    "sklearn_objective",
]


class XGBoostObjective(NativeObjective):
    """``obj(predt, dtrain) -> (grad, hess)`` for ``xgboost.train(..., obj=...)``."""

    LIBRARY = "XGBoost"
    SCORES = "predt"


class XGBoostSklearnObjective(SklearnObjective):
    """``objective(y_true, y_pred, sample_weight=None) -> (grad, hess)`` for the
    scikit-learn estimators (XGBoost passes the weights to a parameter named
    ``sample_weight``)."""

    LIBRARY = "XGBoost"


def objective(name: str | LossDeclaration, *, hessian: Any = "auto", **params: Any
              ) -> XGBoostObjective:
    """The native objective of the loss ``name`` (with its ``params``) for
    ``xgboost.train(..., obj=...)``. ``hessian``: the Hessian policy (``"auto"``, ``"exact"``,
    a positive constant, ``Floor(f)``, ``Scaled(factor)``). The parameters are checked here;
    labels, weights and the scores' shape at every call (the first comes before any tree)."""
    return XGBoostObjective(name, hessian, params)


def sklearn_objective(name: str | LossDeclaration, *, hessian: Any = "auto", **params: Any
                      ) -> XGBoostSklearnObjective:
    """The objective of the loss ``name`` for ``XGBRegressor(objective=...)`` and
    ``XGBClassifier(objective=...)``."""
    return XGBoostSklearnObjective(name, hessian, params)
