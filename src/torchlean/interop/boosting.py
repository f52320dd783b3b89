"""What the XGBoost, LightGBM and CatBoost objectives share: the Hessian policy, the checks of
the arrays a library hands an objective, and the call to :func:`torchlean.grad_hess`.

Every objective computes its gradient and Hessian through :func:`torchlean.grad_hess` on the
loss's declaration; nothing here restates a loss. The modules :mod:`torchlean.interop.xgboost`,
:mod:`torchlean.interop.lightgbm` and :mod:`torchlean.interop.catboost` only translate between
this and each library's calling convention (see ``docs/gradient-boosting.md``).

The Hessian policy (``hessian=`` of every adapter) says what the library receives as the
second derivative:

- ``"auto"`` (the default): :class:`Exact` where the declaration's ``hessian_sign`` is
  ``"positive"``; ``Constant(1.0)`` where it is ``"zero"`` (mae, hinge, quantile: the exact
  Hessian is 0 everywhere, and a zero Hessian gives the libraries nothing to split on or
  divides by zero in a leaf); ``Floor(AUTO_FLOOR)`` where it is ``"nonnegative"`` (0 only on
  some samples: Huber's linear part, a degenerate target) or ``"any"`` (binary focal's Hessian
  turns negative far on the wrong side; the libraries clip or diverge on it).
- ``"exact"`` or :class:`Exact`: the declared second derivative, unchanged.
- a positive number ``c`` or ``Constant(c)``: ``c`` times the sample weight.
- ``Floor(f)``: ``max(exact, f)`` times the sample weight.
- ``Scaled(factor)``: ``factor`` times the exact Hessian; ``Scaled("k/(k-1)")`` for ``k``
  classes. XGBoost's own ``multi:softprob`` takes ``Scaled(2.0)``; LightGBM's ``multiclass``
  takes ``Scaled("k/(k-1)")``.

NaN scores give NaN gradients and Hessians under every policy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from torchlean.errors import (
    DomainError,
    ParameterError,
    ShapeError,
    TorchleanError,
    UnsupportedOperationError,
    fmt_shape,
)
from torchlean.spec.core.declaration import LossDeclaration

__all__ = [
    "AUTO_FLOOR",
    "Constant",
    "Exact",
    "Floor",
    "HessianPolicy",
    "NativeObjective",
    "Objective",
    "Scaled",
    "SklearnObjective",
    "resolve_hessian",
]

#: the floor ``hessian="auto"`` puts under a Hessian that may be negative (``hessian_sign``
#: "any"): small enough to leave every sample whose exact Hessian is above it untouched
AUTO_FLOOR = 1e-6

_CLASS_RATIO = "k/(k-1)"


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ParameterError(f"`{name}` must be a positive finite number; got {value!r}")
    out = float(value)
    if not (math.isfinite(out) and out > 0):
        raise ParameterError(f"`{name}` must be a positive finite number; got {value!r}")
    return out


@dataclass(frozen=True)
class Exact:
    """The declared second derivative, unchanged (times the sample weight)."""

    def apply(self, hess: np.ndarray, weight: np.ndarray | None, k: int | None) -> np.ndarray:
        return hess


@dataclass(frozen=True)
class Constant:
    """A constant Hessian ``value`` times the sample weight (NaN where the exact one is)."""

    value: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _positive("hessian", self.value))

    def apply(self, hess: np.ndarray, weight: np.ndarray | None, k: int | None) -> np.ndarray:
        c = np.full(hess.shape, self.value) if weight is None else self.value * weight
        return np.where(np.isnan(hess), hess, c)


@dataclass(frozen=True)
class Floor:
    """``max(exact, value)`` times the sample weight: the exact Hessian where it is above
    ``value``, ``value`` where it is smaller, zero or negative."""

    value: float = AUTO_FLOOR

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _positive("hessian", self.value))

    def apply(self, hess: np.ndarray, weight: np.ndarray | None, k: int | None) -> np.ndarray:
        floor = self.value if weight is None else self.value * weight
        return np.maximum(hess, floor)  # NaN stays NaN


@dataclass(frozen=True)
class Scaled:
    """``factor`` times the exact Hessian; ``factor="k/(k-1)"`` is ``k / (k - 1)`` for the
    ``k`` classes of a multi-class loss (LightGBM's own multi-class Hessian)."""

    factor: float | str = 2.0

    def __post_init__(self) -> None:
        if self.factor != _CLASS_RATIO:
            if isinstance(self.factor, str):
                raise ParameterError(
                    f"`factor` must be a positive number or {_CLASS_RATIO!r}; got {self.factor!r}")
            object.__setattr__(self, "factor", _positive("factor", self.factor))

    def scale(self, k: int | None) -> float:
        if self.factor != _CLASS_RATIO:
            return float(self.factor)
        if k is None or k < 2:
            raise ParameterError(
                f"`hessian`: Scaled({_CLASS_RATIO!r}) needs a multi-class loss (k >= 2 classes); "
                f"got {'a single score per sample' if k is None else f'k = {k}'}"
            )
        return k / (k - 1)

    def apply(self, hess: np.ndarray, weight: np.ndarray | None, k: int | None) -> np.ndarray:
        return self.scale(k) * hess


HessianPolicy = Exact | Constant | Floor | Scaled


def resolve_hessian(spec: Any, decl: LossDeclaration) -> HessianPolicy:
    """The policy that ``hessian=spec`` means for the loss ``decl`` (see the module
    docstring)."""
    if isinstance(spec, Exact | Constant | Floor | Scaled):
        return spec
    if isinstance(spec, str):
        if spec == "exact":
            return Exact()
        if spec == "auto":
            sign = decl.hessian_sign
            if sign == "positive":
                return Exact()
            if sign == "zero":
                return Constant(1.0)
            return Floor(AUTO_FLOOR)
        raise ParameterError(
            f"`hessian` must be 'auto', 'exact', a positive number, or Exact(), Constant(c), "
            f"Floor(f), Scaled(factor); got {spec!r}"
        )
    if isinstance(spec, int | float | np.floating | np.integer) and not isinstance(spec, bool):
        return Constant(_positive("hessian", spec))
    raise ParameterError(
        f"`hessian` must be 'auto', 'exact', a positive number, or Exact(), Constant(c), "
        f"Floor(f), Scaled(factor); got {spec!r}"
    )


class Objective:
    """One loss, its parameters (checked here, once) and its Hessian policy; :meth:`compute`
    turns a library's arrays into ``(grad, hess)``.

    ``library`` names the library in messages; ``names`` maps the roles ``"scores"``,
    ``"target"`` and ``"weight"`` to what the library calls them (``predt``, the DMatrix's
    label, ...).
    """

    def __init__(self, name: str | LossDeclaration, hessian: Any, params: dict[str, Any], *,
                 library: str, names: dict[str, str]) -> None:
        from torchlean.registry import get_loss

        decl = name if isinstance(name, LossDeclaration) else get_loss(name)
        if not decl.has_second:
            from torchlean.registry import LOSSES

            have = [n for n, d in LOSSES.items() if d.has_second]
            raise UnsupportedOperationError(
                f"`name`: the {decl.name} loss declares no second derivative, so it has no "
                f"{library} objective; losses that do: {', '.join(have)}"
            )
        unknown = sorted(set(params) - set(decl.parameters))
        if unknown:
            raise ParameterError(
                f"`{unknown[0]}` is not a parameter of the {decl.name} loss; expected one of "
                f"{sorted(decl.parameters)}"
            )
        self.declaration = decl
        self.params = decl.checked_params(params)
        self.policy = resolve_hessian(hessian, decl)
        if isinstance(self.policy, Scaled) and self.policy.factor == _CLASS_RATIO:
            self.policy.scale(None if decl.kind != "slice" else 2)  # refuses a single score
        self.library = library
        self.names = names

    # the libraries copy their parameters (LightGBM deep-copies ``params``, scikit-learn's
    # ``clone`` the estimator's): an objective holds nothing mutable, so a copy is itself; a
    # pickle names the registered loss
    def __copy__(self) -> Objective:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Objective:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.declaration.name, self.policy, dict(self.params)))

    @property
    def multiclass(self) -> bool:
        return self.declaration.kind == "slice"

    def __repr__(self) -> str:
        prm = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return (f"<torchlean {self.library} objective {self.declaration.name!r}{prm}, "
                f"hessian={self.policy!r}>")

    # -- the arrays a library gives ------------------------------------------------------------
    def scores(self, raw: Any, arg: str) -> np.ndarray:
        """The raw scores as float64: ``(n,)`` (``(n, 1)`` accepted) or, for a multi-class
        loss, ``(n, k)`` with ``k >= 2``."""
        p = np.asarray(raw, dtype=np.float64)
        if self.multiclass:
            if p.ndim != 2 or p.shape[1] < 2:
                raise ShapeError(
                    f"`{arg}` must hold (n, k) raw scores, k >= 2 classes, for the "
                    f"{self.declaration.name} loss (tell {self.library} the number of classes); "
                    f"got shape {fmt_shape(p.shape)}"
                )
            return p
        if p.ndim == 2 and p.shape[1] == 1:
            return p[:, 0]
        if p.ndim != 1:
            raise ShapeError(
                f"`{arg}` must hold one raw score per sample, shape (n,), for the "
                f"{self.declaration.name} loss; got shape {fmt_shape(p.shape)} (a multi-class "
                f"or multi-output model gives one column per class)"
            )
        return p

    def target(self, raw: Any, n: int, arg: str) -> np.ndarray:
        t = np.asarray(raw, dtype=np.float64)
        if t.ndim == 2 and t.shape[1] == 1 and not self.multiclass:
            t = t[:, 0]
        if t.shape[:1] != (n,) or (t.ndim != 1 and not self.multiclass):
            raise ShapeError(
                f"`{arg}` must hold one label per sample, {n} of them; got "
                f"shape {fmt_shape(t.shape)}"
            )
        return t

    def weight(self, raw: Any, n: int, arg: str) -> np.ndarray | None:
        if raw is None:
            return None
        w = np.asarray(raw, dtype=np.float64)
        if w.size == 0 and n != 0:
            return None  # XGBoost's DMatrix without weights
        if w.shape != (n,):
            raise ShapeError(
                f"`{arg}` must hold one weight per sample, shape ({n},); got "
                f"shape {fmt_shape(w.shape)}"
            )
        if np.any(w < 0) or np.any(np.isnan(w)):
            i = int(np.argwhere(~(w >= 0))[0, 0])
            raise DomainError(
                f"`{arg}` must hold weights >= 0; got {float(w[i])!r} at index {i}"
            )
        return w

    # -- the derivatives ----------------------------------------------------------------------
    def compute(self, scores: Any, target: Any, weight: Any = None,
                names: dict[str, str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(grad, hess)`` of each sample's loss w.r.t. its raw score, float64 arrays of the
        scores' shape (``(n,)`` or ``(n, k)``), weighted, the Hessian under the policy.
        ``names``: what messages call the three arrays (default: the library's names)."""
        from torchlean.per_sample import grad_hess

        names = names or self.names
        p = self.scores(scores, names["scores"])
        n = p.shape[0]
        t = self.target(target, n, names["target"])
        w = self.weight(weight, n, names["weight"])
        try:
            g, h = grad_hess(self.declaration, p, t, sample_weight=w, **self.params)
        except TorchleanError as exc:
            raise type(exc)(f"{self.library} objective ({self.declaration.name}): {exc}"
                            ) from exc
        g, h = np.asarray(g, dtype=np.float64), np.asarray(h, dtype=np.float64)
        ws = None if w is None else (w[:, None] if self.multiclass else w)
        k = p.shape[1] if self.multiclass else None
        if ws is not None:
            ws = np.broadcast_to(ws, h.shape)
        return g, self.policy.apply(h, ws, k)

    def check(self, target: Any, sample_weight: Any = None, *,
              num_class: int | None = None) -> None:
        """Check labels and weights before training (every call of the objective checks them
        again): the loss's label domain, class ids in ``[0, num_class)`` for a multi-class
        loss (``num_class`` defaults to the largest id + 1), one non-negative weight per
        sample. Raises the package's errors; returns None."""
        t = np.asarray(target, dtype=np.float64)
        n = t.shape[0] if t.ndim else 0
        if self.multiclass:
            if num_class is None:
                top = np.nanmax(t) if t.size else 0.0
                num_class = max(2, int(top) + 1 if np.isfinite(top) and top >= 0 else 2)
            scores = np.zeros((n, int(num_class)))
        else:
            scores = np.zeros(n)
        self.compute(scores, t, sample_weight,
                     {"scores": "scores", "target": "target", "weight": "sample_weight"})


class NativeObjective(Objective):
    """``obj(scores, data) -> (grad, hess)``, ``data`` holding the labels and weights
    (``get_label()``, ``get_weight()``: XGBoost's DMatrix, LightGBM's Dataset); the results in
    the scores' shape. A library's class names itself (``LIBRARY``) and its two arguments
    (``SCORES``)."""

    LIBRARY = ""
    SCORES = "scores"

    def __init__(self, name: str | LossDeclaration, hessian: Any, params: dict[str, Any]
                 ) -> None:
        super().__init__(name, hessian, params, library=self.LIBRARY,
                         names={"scores": self.SCORES, "target": "label", "weight": "weight"})

    def __call__(self, scores: np.ndarray, data: Any) -> tuple[np.ndarray, np.ndarray]:
        g, h = self.compute(scores, data.get_label(), data.get_weight())
        shape = np.shape(scores)
        return g.reshape(shape), h.reshape(shape)


class SklearnObjective(Objective):
    """``objective(y_true, y_pred, sample_weight=None) -> (grad, hess)``, the form both
    libraries' scikit-learn estimators call (each passes weights only to a parameter named
    ``sample_weight``)."""

    LIBRARY = ""

    def __init__(self, name: str | LossDeclaration, hessian: Any, params: dict[str, Any]
                 ) -> None:
        super().__init__(name, hessian, params, library=self.LIBRARY,
                         names={"scores": "y_pred", "target": "y_true",
                                "weight": "sample_weight"})

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        g, h = self.compute(y_pred, y_true, sample_weight)
        shape = np.shape(y_pred)
        return g.reshape(shape), h.reshape(shape)
