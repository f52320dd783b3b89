"""Where to look, derived from a loss's declaration: zones, seam points, shapes, float edge cases.

Nothing here is written per loss. A :class:`Plan` reads the declaration
(:class:`~torchlean.spec.core.declaration.LossDeclaration`): its branch regions
(``region_zones()``), its seams (kinks, clamp bounds, changes of evaluation form, as data), its
kind and its domain. Every value and derivative the certifier looks at comes from the
declaration's terms themselves, run over the different semantics; so the same plan serves the
package's losses and users' losses.

A seam point is built at 50 digits with the oracle's own ``const`` (``seam.at(oracle,
params)``), so that ``p = 1 - eps`` lies exactly on the seam of the semantics that evaluates
it: on each seam's coordinate (residual ``p - t``, predicted ``p``, margin ``t p``, norm
``||p||``) every element but one sits exactly on the seam, the other is ordinary (a point of a
zone); a second point puts every element on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from torchlean.spec.core.declaration import Domain, LossDeclaration, Seam, Zone

__all__ = ["SHAPES", "EdgeCase", "KinkPoint", "Plan", "Zone", "plan_for"]

Shape = tuple[int, ...]
Params = Mapping[str, Any]

#: shapes of the symbolic and kink checks, by kind (small: sympy's cost grows fast); the last
#: is the shape of the interval, float and PyTorch checks
SHAPES: dict[str, tuple[Shape, ...]] = {
    "elementwise": ((1,), (3,), (2, 2)),
    "slice": ((3,), (1, 2), (2, 3)),
    "whole": ((2,), (3,), (2, 2)),
}

#: the shape of the float edge cases, by kind
EDGE_SHAPE: dict[str, Shape] = {"elementwise": (4,), "slice": (2, 3), "whole": (4,)}

#: coordinate values of the magnitude edge cases (repeated to the edge shape's size); the
#: largest is 1e150, whose square is still finite: a term may square its input
MAGNITUDES: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("large (1e3..1e30)", (1e3, -4e8, 1e17, 1e30)),
    ("huge (1e100..1e150)", (1e100, -3e120, 1e150, 2.0)),
    ("tiny (2**-60..1e-300)", (2.0**-60, -1e-16, 1e-300, 0.0)),
    ("subnormal", (1e-310, -5e-320, 0.0, 1e-320)),
)

#: exact (power-of-two) targets for points on a margin seam ``t p = m``: ``p = m / t`` is exact
_MARGIN_TARGETS = (1.0, -1.0, 0.5, -2.0)


@dataclass(frozen=True)
class KinkPoint:
    """A point of the kink check: object arrays of 50-digit mpmath numbers.

    ``kink``: the value may have a kink here, and the derivative must lie between the one-sided
    derivatives; otherwise (a C1 seam, a change of evaluation form, an ordinary point) both
    one-sided derivatives must equal it.
    """

    label: str
    predicted: np.ndarray
    target: np.ndarray
    kink: bool = True


@dataclass(frozen=True)
class EdgeCase:
    """A float64 input pair of the accuracy suite."""

    label: str
    predicted: np.ndarray
    target: np.ndarray


@dataclass(frozen=True)
class Plan:
    """Everything the certifier samples for one loss, read from its declaration."""

    decl: LossDeclaration
    zones: tuple[Zone, ...]

    @classmethod
    def of(cls, decl: LossDeclaration) -> Plan:
        return cls(decl, decl.region_zones())

    # -- what the declaration says ----------------------------------------------------------
    @property
    def per_element(self) -> bool:
        """Zones may be chosen element by element (the loss is a reduction of per-element
        terms)."""
        return self.decl.kind == "elementwise"

    @property
    def shapes(self) -> tuple[Shape, ...]:
        return SHAPES[self.decl.kind]

    @property
    def kink_text(self) -> str:
        """What the kink check looks at, for the report."""
        if not self.decl.seams:
            return "smooth: one-sided quotients at ordinary points"
        return "; ".join(s.label + ("" if s.kink else " (seam)") for s in self.decl.seams)

    # -- sampling -----------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, shape: Shape, params: Params,
               zones: tuple[Zone, ...] | None = None) -> tuple[np.ndarray, np.ndarray, str]:
        """A point drawn from one zone, or element by element from several (mixed)."""
        zones = zones or self.zones
        if not self.per_element or len(zones) == 1:
            z = zones[int(rng.integers(len(zones)))]
            p, t = z.sample(rng, shape, params)
            return np.asarray(p, dtype=np.float64), np.asarray(t, dtype=np.float64), z.name
        pick = rng.integers(len(zones), size=shape)
        p, t = np.empty(shape), np.empty(shape)
        for i, z in enumerate(zones):
            zp, zt = z.sample(rng, shape, params)
            p, t = np.where(pick == i, zp, p), np.where(pick == i, zt, t)
        names = sorted({zones[i].name for i in np.unique(pick)})
        return p, t, " + ".join(names)

    def region_points(self, rng: np.random.Generator, shape: Shape, params: Params,
                      per_zone: int) -> list[tuple[np.ndarray, np.ndarray, str]]:
        """``per_zone`` points in each zone, plus as many with zones mixed per element."""
        out = []
        for z in self.zones:
            out += [(*(np.asarray(a, dtype=np.float64) for a in z.sample(rng, shape, params)),
                     z.name) for _ in range(per_zone)]
        if self.per_element and len(self.zones) > 1 and int(np.prod(shape)) > 1:
            out += [self.sample(rng, shape, params) for _ in range(per_zone)]
        return out

    # -- 50-digit points on the seams -----------------------------------------------------------
    def kinks(self, rng: np.random.Generator, shape: Shape, params: Params, mp: Any,
              ordinary: int = 1) -> list[KinkPoint]:
        """Points exactly on every seam (``mp``: the 50-digit
        :class:`~torchlean.certify.oracle.Oracle`, inside its ``digits()``), and ``ordinary``
        points of the zones (where both one-sided derivatives must agree)."""
        out = []
        for _ in range(ordinary):
            p, t, zone = self.sample(rng, shape, params)
            out.append(KinkPoint(f"ordinary point ({zone})", _mp_array(p, mp), _mp_array(t, mp),
                                 kink=False))
        for seam in self.decl.seams:
            out += _seam_points(self, seam, rng, shape, params, mp)
        return out

    # -- float edge cases ------------------------------------------------------------------------
    def edge_cases(self, params: Params, seed: int = 0,
                   deriv: Callable[[np.ndarray, np.ndarray], Any] | None = None
                   ) -> list[EdgeCase]:
        """Float64 inputs where accuracy is most likely to break: a point of every zone, points
        on and next to every seam, large, huge, tiny and subnormal magnitudes, a NaN, and (given
        ``deriv(p, t)``, an elementwise loss) the points where the derivative vanishes, where
        a derivative that is a difference of terms cancels. Targets stay in the declared domain
        (labels, checked bounds)."""
        rng = np.random.default_rng(seed)
        shape = EDGE_SHAPE[self.decl.kind]
        dom = self.decl.domain
        out = []
        for z in self.zones:
            p, t = z.sample(rng, shape, params)
            out.append(EdgeCase(f"ordinary ({z.name})", np.asarray(p, dtype=np.float64),
                                dom.fit_targets(np.asarray(t, dtype=np.float64))))
        for seam in _distinct(self.decl.seams, params):
            out += _seam_edges(self, seam, rng, shape, params)
        ordinary_t = dom.sample_targets(rng, shape)
        zero_t = dom.fit_targets(np.zeros(shape))
        magnitudes = list(MAGNITUDES)
        if dom.largest > 1e150:
            big = dom.largest
            magnitudes.append((f"extreme (up to {big:g})", (1e200, -big / 3, big, 2.0)))
        for label, values in magnitudes:
            v = np.resize(np.asarray(values), shape)
            out.append(EdgeCase(f"{label} predicted", v, ordinary_t))
            if not np.array_equal(zero_t, ordinary_t):
                out.append(EdgeCase(f"{label} predicted, target {_fmt_t(zero_t)}", v, zero_t))
            if not (dom.labels or dom.checked):
                out.append(EdgeCase(f"{label} target", _ordinary_p(self, rng, shape, params),
                                    v.copy()))
        out.append(EdgeCase("predicted equal to the target", ordinary_t.copy(), ordinary_t))
        out.append(EdgeCase("predicted one ulp from the target",
                            np.nextafter(ordinary_t, np.where(rng.random(shape) < 0.5, -np.inf,
                                                              np.inf)), ordinary_t))
        p = _ordinary_p(self, rng, shape, params)
        p.flat[0] = np.nan
        out.append(EdgeCase("a NaN predicted", p, ordinary_t))
        if deriv is not None and self.per_element:
            root = _stationary(deriv, dom, ordinary_t)
            if root is not None:
                out.append(EdgeCase("where the derivative vanishes", root, ordinary_t))
        return out


def plan_for(loss: str | LossDeclaration) -> Plan:
    """The plan of a declaration, or of the registered loss of that name."""
    if isinstance(loss, LossDeclaration):
        return Plan.of(loss)
    from torchlean.registry import get_loss

    return Plan.of(get_loss(loss))


# ------------------------------------------------------------------------------------------
# seam points at 50 digits
# ------------------------------------------------------------------------------------------


def _mp_array(values: Any, mp: Any) -> np.ndarray:
    a = np.empty(np.shape(values), dtype=object)
    for idx, v in np.ndenumerate(np.asarray(values, dtype=object)):
        a[idx] = mp.mpf(v)
    return a


def _seam_points(plan: Plan, seam: Seam, rng: np.random.Generator, shape: Shape,
                 params: Params, mp: Any) -> list[KinkPoint]:
    at = seam.at(mp, params)
    size = int(np.prod(shape))
    out = []
    if seam.coordinate == "norm":
        # the whole tensor on the seam, with the targets of every zone (the zones of a norm seam
        # say which side the target's own norm lies on)
        for z in plan.zones:
            p, t = z.sample(rng, shape, params)
            direction = _mp_array(p, mp)
            norm = mp.sqrt(mp.fsum(x * x for x in direction.flat))
            if norm == 0:
                continue
            out.append(KinkPoint(f"{seam.label} ({z.name})", direction / norm * at,
                                 _mp_array(t, mp), seam.kink))
        return out
    # every element on the seam but one ordinary one; then (with several elements) all on it
    patterns = [(int(rng.integers(size)) if size > 1 else -1, "")]
    if size > 1:
        patterns.append((-1, ", every element"))
    for odd, suffix in patterns:
        p0, t0, _ = plan.sample(rng, shape, params)
        p, t = _mp_array(p0, mp), _mp_array(t0, mp)
        for k, idx in enumerate(np.ndindex(*shape)):
            if k != odd:
                p[idx], t[idx] = _on_seam(seam.coordinate, at, t[idx], plan.decl.domain, rng, mp)
        out.append(KinkPoint(seam.label + suffix, p, t, seam.kink))
    return out


def _on_seam(coord: str, at: Any, t: Any, dom: Domain, rng: np.random.Generator,
             mp: Any) -> tuple[Any, Any]:
    """``(p, t)`` of one element whose ``coord`` is exactly ``at``."""
    if coord == "residual":
        return t + at, t
    if coord == "predicted":
        return at, t
    choices = tuple(v for v in dom.labels if v != 0) + _MARGIN_TARGETS
    t = mp.mpf(choices[int(rng.integers(len(choices)))])
    return at / t, t


def _distinct(seams: tuple[Seam, ...], params: Params) -> list[Seam]:
    """One seam per (coordinate, place)."""
    seen: set[tuple[str, float]] = set()
    out = []
    for s in seams:
        key = (s.coordinate, s.location(params))
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


# ------------------------------------------------------------------------------------------
# float edge cases
# ------------------------------------------------------------------------------------------


def _ordinary_p(plan: Plan, rng: np.random.Generator, shape: Shape,
                params: Params) -> np.ndarray:
    return plan.sample(rng, shape, params)[0].copy()


def _seam_edges(plan: Plan, seam: Seam, rng: np.random.Generator, shape: Shape,
                params: Params) -> list[EdgeCase]:
    """Float points on a seam (as near as floats get) and next to it on both sides."""
    loc = seam.location(params)
    near = (loc, float(np.nextafter(loc, -np.inf)), float(np.nextafter(loc, np.inf)))
    dom = plan.decl.domain
    if seam.coordinate == "norm":
        # p along a coordinate axis: its norm is exactly |value|
        out = []
        for v, where in zip(near, ("on", "below", "above"), strict=True):
            p = np.zeros(shape)
            p.flat[0] = v
            t = plan.zones[0].sample(rng, shape, params)[1]
            out.append(EdgeCase(f"{seam.label}: {where}", p, np.asarray(t, dtype=np.float64)))
        return out
    v = np.resize(np.asarray([*near, loc]), shape)
    t = dom.sample_targets(rng, shape)
    if seam.coordinate == "residual":
        zero = dom.fit_targets(np.zeros(shape))
        t = zero if not np.any(zero) else t  # d = p - 0 is exact
        p = t + v
    elif seam.coordinate == "predicted":
        p = v
    else:
        choices = np.asarray([x for x in dom.labels if x != 0] or [1.0, -1.0])
        t = np.resize(choices, shape).astype(np.float64)
        p = v / t
    return [EdgeCase(f"on and next to {seam.label}", p, t)]


def _stationary(deriv: Callable[[np.ndarray, np.ndarray], Any], dom: Domain,
                t: np.ndarray) -> np.ndarray | None:
    """Per element, the ``p`` where the (elementwise) derivative changes sign from - to +
    within the sampling range, by bisection on the float64 derivative; None when no element
    has one (elements without one keep the range's middle)."""
    lo = np.full(t.shape, float(dom.predicted[0]))
    hi = np.full(t.shape, float(dom.predicted[1]))

    def g(p: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(deriv(p, t), dtype=np.float64)

    ok = (g(lo) < 0) & (g(hi) > 0)
    if not ok.any():
        return None
    for _ in range(80):
        mid = lo + (hi - lo) / 2
        neg = g(mid) < 0
        lo, hi = np.where(neg, mid, lo), np.where(neg, hi, mid)
    return np.where(ok, lo, (dom.predicted[0] + dom.predicted[1]) / 2)


def _fmt_t(t: np.ndarray) -> str:
    vals = sorted({float(x) for x in t.flat})
    return "0" if vals == [0.0] else ", ".join(f"{x:g}" for x in vals)
