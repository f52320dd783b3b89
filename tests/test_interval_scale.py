"""Interval soundness at scale: random boxes against sampled 50-digit point values.

For every loss, boxes of 1 to 4 elements (widths from 0 to 1e3, placed across the kinks, the
clamp edges ``eps`` and ``1 - eps``, the Huber and log-cosh branch switch, the hinge margin, the
zero vector and ``||p|| = eps`` of cosine similarity) are evaluated by
:mod:`torchlean.contexts.interval`; the float64 bounds of the value and of every derivative
element (``interval.bounds``, rounded outward) must contain the value and derivative that
:mod:`torchlean.contexts.precise` computes at 50 digits at points of the box: both ends, a
random interior point and, where the box holds one, the kink itself (as an exact real, so
``1 - eps``, which is no float, is sampled too). Targets are points or boxes inside the loss's
domain.

The ``slow`` test checks 60,000 boxes shared among the losses (at least 2,000 per loss; about
two minutes on two cores whatever their number); the default run checks 150 per loss. Losses
without hand-made boxes (``MAKERS``) get boxes from their declaration: centres from their zones
and on their seams, targets inside the checked domain.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np
import pytest

import torchlean
from torchlean.spec.layers.loss import EPSILON

interval = pytest.importorskip("torchlean.contexts.interval")
precise = pytest.importorskip("torchlean.contexts.precise")

NAMES = [n for n, d in torchlean.LOSSES.items() if d.origin == "torchlean"]
DPS = 50

Box = tuple[np.ndarray, np.ndarray]


# --------------------------------------------------------------------------------------------
# Boxes
# --------------------------------------------------------------------------------------------


def _width(rng: np.random.Generator, center: np.ndarray) -> np.ndarray:
    """Point boxes, one-ulp boxes and widths from 1e-12 to 1e3, per element."""
    kind = rng.integers(0, 8, center.shape)
    w = 10.0 ** rng.uniform(-12, 3, center.shape)
    w = np.where(kind == 0, 0.0, w)
    w = np.where(kind == 1, np.spacing(np.abs(center)) + 5e-324, w)
    return np.where(kind == 2, 10.0 ** rng.uniform(-3, 0, center.shape), w)


def _around(rng: np.random.Generator, center: np.ndarray, w: np.ndarray | None = None) -> Box:
    """A box of width ``w`` holding ``center`` at a random place (so it straddles it)."""
    w = _width(rng, center) if w is None else w
    a = rng.uniform(0, 1, center.shape)
    lo, hi = center - a * w, center + (1 - a) * w
    return np.minimum(lo, center), np.maximum(hi, center)


def _maybe_box(rng: np.random.Generator, t: np.ndarray, lo: float | None = None,
               hi: float | None = None) -> Box:
    """The target as a point (mostly) or a small box, kept inside ``[lo, hi]``."""
    if rng.uniform() < 0.6:
        return t, t.copy()
    a, b = _around(rng, t, 10.0 ** rng.uniform(-9, -1, t.shape))
    if lo is not None:
        a, b = np.maximum(a, lo), np.maximum(b, lo)
    if hi is not None:
        a, b = np.minimum(a, hi), np.minimum(b, hi)
    return a, b


def _shape(rng: np.random.Generator) -> tuple[int, ...]:
    return [(1,), (2,), (3,), (4,), (2, 2), ()][int(rng.integers(0, 6))]


def _regression(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Box, Box]:
    t = np.round(rng.normal(0, 2, shape), 3)
    offsets = np.array([0.0, 1.0, -1.0, 0.5, -3.0, 30.0, -1e-9])
    p = t + offsets[rng.integers(0, len(offsets), shape)]
    return _around(rng, p), _maybe_box(rng, t)


def _probabilities(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Box, Box]:
    centers = np.array([0.0, EPSILON, 0.5, 1 - EPSILON, 1.0, 0.2, 0.9, 2 * EPSILON])
    p = centers[rng.integers(0, len(centers), shape)]
    t = np.round(rng.uniform(0, 1, shape), 2)
    t = np.where(rng.uniform(0, 1, shape) < 0.4, np.round(t), t)
    return _around(rng, p), _maybe_box(rng, t, 0.0, 1.0)


def _hinge(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Box, Box]:
    labels = np.array([1.0, -1.0, 0.5, 2.0, -0.25])
    t = labels[rng.integers(0, len(labels), shape)]
    offsets = np.array([0.0, 0.0, 1.0, -2.0, 0.01])
    return _around(rng, 1 / t + offsets[rng.integers(0, len(offsets), shape)]), \
        _maybe_box(rng, t)


def _poisson(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Box, Box]:
    x = rng.uniform(-20, 20, shape)
    counts = np.array([0.0, 1.0, 3.0, 10.5, 1e3])
    t = counts[rng.integers(0, len(counts), shape)]
    lo, hi = _around(rng, x)
    # keep exp(hi) within reach of a float bound; the enclosure is still checked
    return (np.minimum(lo, 600.0), np.minimum(hi, 600.0)), _maybe_box(rng, t, 0.0)


def _logits(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Box, Box]:
    shape = [(1, 2), (1, 3), (2, 2), (1, 4), (3,)][int(rng.integers(0, 5))]
    z = rng.normal(0, 3, shape) * (50 if rng.uniform() < 0.1 else 1)
    if rng.uniform() < 0.5:
        t = np.zeros(shape)
        t[..., int(rng.integers(0, shape[-1]))] = 1.0
    else:
        t = np.round(rng.uniform(0, 1, shape), 2)
    return _around(rng, z), _maybe_box(rng, t)


def _cosine(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Box, Box]:
    n = int(rng.integers(1, 5))
    kind = int(rng.integers(0, 4))
    if kind == 0:
        p = np.zeros(n)
    elif kind == 1:
        d = rng.normal(0, 1, n)
        p = d / np.linalg.norm(d) * EPSILON * rng.choice([0.5, 1.0, 1.0 + 1e-9, 2.0])
    else:
        p = rng.normal(0, 1, n)
    t = rng.normal(0, 1, n) if rng.uniform() < 0.9 else np.zeros(n)
    if kind <= 1:
        w = np.where(rng.uniform(0, 1, n) < 0.5, EPSILON * 10.0 ** rng.uniform(-3, 1, n),
                     _width(rng, p))
        return _around(rng, p, w), _maybe_box(rng, t)
    return _around(rng, p), _maybe_box(rng, t)


def _declared(name: str) -> Callable[[np.random.Generator, tuple[int, ...]], tuple[Box, Box]]:
    """Boxes of a loss without hand-made ones, from its declaration: centres drawn from its
    zones or put on its seams (a box around a seam straddles it), targets inside the checked
    domain."""
    decl = torchlean.LOSSES[name]
    prm = dict(decl.params)
    regions = decl.region_zones()

    def make(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Box, Box]:
        if decl.kind == "slice" and shape == ():
            shape = (2,)
        zone = regions[int(rng.integers(len(regions)))]
        p, t = (np.asarray(a, dtype=np.float64) for a in zone.sample(rng, shape, prm))
        if decl.seams and rng.uniform() < 0.3:
            s = decl.seams[int(rng.integers(len(decl.seams)))]
            at = s.location(prm)
            if s.coordinate == "residual":
                p = t + at
            elif s.coordinate == "predicted":
                p = np.full(shape, at)
            elif s.coordinate == "margin":
                p = np.where(t != 0, at / np.where(t != 0, t, 1.0), p)
        dom = decl.domain
        return _around(rng, p), _maybe_box(rng, t, dom.target_lo, dom.target_hi)

    return make


#: hand-made boxes for the losses listed; any other loss gets :func:`_declared`
MAKERS: dict[str, Callable[[np.random.Generator, tuple[int, ...]], tuple[Box, Box]]] = {
    "mse": _regression, "mae": _regression, "huber": _regression, "log_cosh": _regression,
    "cross_entropy": _probabilities, "binary_cross_entropy": _probabilities,
    "cross_entropy_logits": _logits, "hinge": _hinge, "poisson": _poisson,
    "cosine_similarity": _cosine,
}


# --------------------------------------------------------------------------------------------
# Sample points (exact reals of the box) and the check
# --------------------------------------------------------------------------------------------


class _Reals:
    """The number system of a seam's exact place: mpmath reals."""

    @staticmethod
    def const(value: Any) -> Any:
        return mpmath.mpf(value)


#: evaluation seams the declarations do not list (the logs switch form at p = 1/2)
EXTRA_SEAMS = {"cross_entropy": [mpmath.mpf(0.5)], "binary_cross_entropy": [mpmath.mpf(0.5)]}


def _kinks(name: str, t: Any) -> list[Any]:
    """Exact places of the declared seams of one predicted element given its target (mpf)."""
    decl = torchlean.LOSSES[name]
    prm = dict(decl.params)
    out = list(EXTRA_SEAMS.get(name, []))
    for s in decl.seams:
        at = s.at(_Reals, prm)
        if s.coordinate == "residual":
            out.append(t + at)
        elif s.coordinate == "predicted":
            out.append(at)
        elif s.coordinate == "margin" and t != 0:
            out.append(at / t)
    return out


def _points(rng: np.random.Generator, name: str, p: Box, t: Box) -> list[tuple[Any, Any]]:
    """Both ends, a random interior point, and kinks inside the box; as mpf object arrays."""
    plo, phi = p
    tlo, thi = t
    out = []
    with mpmath.workdps(DPS):
        def at(lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
            a = np.empty(lo.shape, dtype=object)
            for i in np.ndindex(lo.shape):
                a[i] = mpmath.mpf(float(lo[i])) + mpmath.mpf(float(u[i])) * (
                    mpmath.mpf(float(hi[i])) - mpmath.mpf(float(lo[i])))
            return a

        zeros, ones = np.zeros(plo.shape), np.ones(plo.shape)
        tu = rng.uniform(0, 1, plo.shape)
        out.append((at(plo, phi, zeros), at(tlo, thi, tu)))
        out.append((at(plo, phi, ones), at(tlo, thi, 1 - tu)))
        mid_p, mid_t = at(plo, phi, rng.uniform(0, 1, plo.shape)), at(tlo, thi, tu)
        out.append((mid_p, mid_t))
        if name == "cosine_similarity":
            return out
        kinked = mid_p.copy()
        hit = False
        for i in np.ndindex(plo.shape):
            for k in _kinks(name, mid_t[i]):
                if mpmath.mpf(float(plo[i])) <= k <= mpmath.mpf(float(phi[i])):
                    kinked[i], hit = k, True
                    break
        if hit:
            out.append((kinked, mid_t))
    return out


@dataclass
class Tally:
    """What the sweep saw, for the report."""

    boxes: int = 0
    points: int = 0
    kink_points: int = 0
    nan_bounds: int = 0
    failures: list[str] = field(default_factory=list)


def _inside(x: Any, lo: float, hi: float) -> bool:
    if math.isnan(lo) or math.isnan(hi):
        return True  # no information claimed
    if mpmath.isnan(x):
        return False
    slack = mpmath.mpf(10) ** -30 * max(abs(x), mpmath.mpf(10) ** -300)
    return mpmath.mpf(lo) - slack <= x <= mpmath.mpf(hi) + slack


def sweep(name: str, boxes: int, seed: int) -> Tally:
    """``boxes`` random boxes of the loss ``name``: every sampled value inside its enclosure."""
    entry = torchlean.LOSSES[name]
    rng = np.random.default_rng(seed)
    tally = Tally()
    for _ in range(boxes):
        shape = _shape(rng)
        if name == "cross_entropy_logits" and shape == ():
            shape = (2,)
        p, t = MAKERS.get(name, _declared(name))(rng, shape)
        pb, tb = interval.box(*p), interval.box(*t)
        v_lo, v_hi = interval.bounds(entry.value(pb, tb))
        g_lo, g_hi = interval.bounds(entry.deriv(pb, tb))
        g_lo, g_hi = np.asarray(g_lo), np.asarray(g_hi)
        tally.boxes += 1
        tally.nan_bounds += int(math.isnan(v_lo)) + int(np.isnan(g_lo).sum())
        pts = _points(rng, name, p, t)
        tally.kink_points += max(len(pts) - 3, 0)
        for pp, tp in pts:
            with mpmath.workdps(DPS):
                a, b = precise.tensor(pp, dps=DPS), precise.tensor(tp, dps=DPS)
                v = entry.value(a, b)
                g = np.asarray(entry.deriv(a, b), dtype=object)
            tally.points += 1
            v = v.reshape(()).item() if isinstance(v, np.ndarray) else v
            bad = [] if _inside(v, v_lo, v_hi) else [f"value {v} not in [{v_lo}, {v_hi}]"]
            bad += [f"deriv{list(i)} {g[i]} not in [{g_lo[i]}, {g_hi[i]}]"
                    for i in np.ndindex(g.shape) if not _inside(g[i], g_lo[i], g_hi[i])]
            if bad:
                tally.failures.append(f"p in [{p[0].tolist()}, {p[1].tolist()}], t in "
                                      f"[{t[0].tolist()}, {t[1].tolist()}]: {bad[0]}")
    return tally


def _check(name: str, boxes: int, seed: int) -> Tally:
    tally = sweep(name, boxes, seed)
    assert not tally.failures, f"{len(tally.failures)} unsound boxes, first: {tally.failures[:3]}"
    assert tally.boxes == boxes and tally.points >= 3 * boxes
    return tally


@pytest.mark.parametrize("name", NAMES)
def test_interval_enclosures_hold_sampled_points(name: str) -> None:
    _check(name, 150, seed=NAMES.index(name))


#: The slow sweep's boxes: a fixed total shared by the losses (so the tier's time does not
#: grow with their number), at least 2,000 per loss.
TOTAL_BOXES = 60_000
SLOW_BOXES = max(2_000, TOTAL_BOXES // len(NAMES))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_interval_enclosures_hold_sampled_points_at_scale(name: str) -> None:
    tally = _check(name, SLOW_BOXES, seed=1000 + NAMES.index(name))
    if any(s.coordinate != "norm" for s in torchlean.LOSSES[name].seams):
        assert tally.kink_points > 50  # the seams themselves were sampled


if __name__ == "__main__":  # the figures of docs/reliability.md
    import time

    for loss in NAMES:
        start = time.perf_counter()
        tl = sweep(loss, SLOW_BOXES, seed=1000 + NAMES.index(loss))
        print(f"{loss}: {tl.boxes} boxes, {tl.points} points ({tl.kink_points} on kinks), "
              f"{tl.nan_bounds} nan bounds, {len(tl.failures)} failures, "
              f"{time.perf_counter() - start:.1f} s")
