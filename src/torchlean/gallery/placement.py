"""Where a loss's figure looks, read from its declaration: the fixed target, the coordinate of
``predicted`` that varies, the range it sweeps, and where the seams fall on that range."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from torchlean.spec.core.declaration import LossDeclaration, Seam

__all__ = ["ROW", "Marker", "Placement", "place"]

#: a slice or whole-tensor loss is shown on one row: its first element varies, the rest stay
#: at these values (float32 numbers, so every semantics reads the same inputs)
ROW = (0.5, -0.5)
#: how far the range reaches past the outermost seams, relative to its width
_PAD = 0.1


@dataclass(frozen=True)
class Marker:
    """A seam of the declaration placed on the swept coordinate.

    ``kind`` is ``"kink"`` (the value is not differentiable there: a clamp bound, ``|d|``),
    ``"corner"`` (the value is smooth, its derivative is not: Huber's ``|d| = delta``) or
    ``"form"`` (a smooth function switches evaluation form); ``choice`` is what the
    declaration takes there, in its own words.
    """

    x: float
    label: str
    kind: str
    choice: str = ""


@dataclass(frozen=True)
class Placement:
    """The inputs of one figure: ``row(x)`` is the ``predicted`` of one sample as ``x``
    varies; ``target`` its fixed target (the same shape)."""

    lo: float
    hi: float
    target: np.ndarray
    rest: tuple[float, ...]
    markers: tuple[Marker, ...]
    #: what varies and what is fixed, in words
    text: str

    def rows(self, x: np.ndarray) -> np.ndarray:
        """``predicted`` of every sample: ``(len(x), 1)`` for an elementwise loss, else
        ``(len(x), 1 + len(rest))`` with ``x`` first."""
        x = np.asarray(x, dtype=np.float64)
        rest = np.broadcast_to(np.asarray(self.rest, dtype=np.float64), (x.size, len(self.rest)))
        return np.concatenate([x[:, None], rest], axis=1)

    def targets(self, n: int) -> np.ndarray:
        """The target of every sample, ``n`` copies of :attr:`target`."""
        return np.broadcast_to(self.target, (n, self.target.size)).copy()


def place(decl: LossDeclaration, params: Mapping[str, Any]) -> Placement:
    """The target, range and markers of ``decl``'s figure with parameters ``params``."""
    elementwise = decl.kind == "elementwise"
    rest = () if elementwise else ROW
    t0 = representative_target(decl)
    target = np.array([t0] if elementwise else _target_row(decl, t0, 1 + len(rest)))
    lo, hi = (float(v) for v in decl.domain.predicted)
    found = [m for s in decl.seams for m in _markers(s, params, float(target[0]), rest)]
    if found:
        width = hi - lo
        lo = min(lo, min(m.x for m in found) - _PAD * width)
        hi = max(hi, max(m.x for m in found) + _PAD * width)
    if elementwise:
        text = f"target t = {_num(t0)}"
    else:
        name = decl.arg_names[0]
        fixed = ", ".join(_num(v) for v in rest)
        text = (f"{name} = (x, {fixed}), target = ({', '.join(_num(v) for v in target)}); "
                f"x = {name}[0] varies")
    return Placement(lo, hi, target, rest, tuple(sorted(found, key=lambda m: m.x)), text)


def representative_target(decl: LossDeclaration) -> float:
    """A target the loss is commonly used with: its largest label (the positive class), else
    the middle of its sampling range rounded to a half, inside the checked domain."""
    dom = decl.domain
    if dom.labels:
        return float(max(dom.labels))
    mid = round(sum(dom.target))  # twice the middle, rounded: halves
    return float(dom.fit_targets(np.asarray(mid / 2.0)))


def _target_row(decl: LossDeclaration, t0: float, k: int) -> list[float]:
    """A slice or whole-tensor target row: one-hot on the varied element where 0 and 1 are
    both valid targets (class weights, a unit vector), else ``t0`` everywhere."""
    dom = decl.domain
    lo, hi = dom.target
    lo_ok = dom.target_lo is None or dom.target_lo <= 0
    hi_ok = dom.target_hi is None or dom.target_hi >= 1
    if lo <= 0 <= 1 <= hi and lo_ok and hi_ok:
        return [1.0] + [0.0] * (k - 1)
    return [t0] * k


def _markers(seam: Seam, params: Mapping[str, Any], t0: float,
             rest: tuple[float, ...]) -> list[Marker]:
    """The places on the swept coordinate where ``seam`` lies (none, one or two)."""
    at = seam.location(params)
    xs: list[float] = []
    if seam.coordinate == "residual":
        xs = [t0 + at]
    elif seam.coordinate == "predicted":
        xs = [at]
    elif seam.coordinate == "margin" and t0 != 0:
        xs = [at / t0]
    elif seam.coordinate == "norm":
        left = at * at - sum(v * v for v in rest)
        xs = [] if left < 0 else sorted({-math.sqrt(left), math.sqrt(left)})
    kind = "kink" if seam.kink else "corner" if seam.second_choice else "form"
    choice = seam.choice if seam.kink else seam.second_choice
    return [Marker(float(np.float32(x)), seam.label, kind, choice) for x in xs
            if math.isfinite(x)]


def _num(v: float) -> str:
    return f"{float(v):g}"
