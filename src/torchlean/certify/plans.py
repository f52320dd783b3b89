"""Where to look, per loss: branch regions, kinks, interval boxes, float edge cases.

This module knows each loss's *domain and kinks* (the registry's ``domain`` and ``kinks`` text,
turned into point generators by hand) and nothing of its formula: every value and derivative the
certifier looks at comes from the spec functions themselves.

A *zone* draws points strictly inside one branch region (away from every kink by a margin).
Elementwise losses may mix zones element by element; ``last_axis`` and ``whole`` losses draw
whole tensors. A *kink* generator returns points exactly on a kink or seam, as 50-digit mpmath
numbers built with the oracle's own ``const``, so that ``p = eps`` lies exactly on the kink of
the semantics that evaluates it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PLANS", "EdgeCase", "KinkPoint", "Plan", "Zone", "plan_for"]

Shape = tuple[int, ...]
Params = Mapping[str, Any]
Sampler = Callable[[np.random.Generator, Shape, Params], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Zone:
    """One branch region: ``sample(rng, shape, params) -> (predicted, target)`` float64 arrays."""

    name: str
    sample: Sampler
    #: PyTorch's equivalent agrees with the spec here (value and gradient)
    torch_agrees: bool = True


@dataclass(frozen=True)
class KinkPoint:
    """A point on a kink: object arrays of 50-digit mpmath numbers."""

    label: str
    predicted: np.ndarray
    target: np.ndarray


@dataclass(frozen=True)
class EdgeCase:
    """A float64 input pair of the accuracy suite."""

    label: str
    predicted: np.ndarray
    target: np.ndarray


@dataclass(frozen=True)
class Plan:
    """Everything the certifier samples for one loss."""

    zones: tuple[Zone, ...]
    #: zones may be chosen element by element (the loss is a mean of per-element terms)
    per_element: bool
    #: shapes of the symbolic check (small: sympy's cost grows fast)
    shapes: tuple[Shape, ...]
    #: ``kinks(rng, shape, params, mp) -> [KinkPoint]``; ``mp`` is the 50-digit
    #: :class:`~torchlean.certify.oracle.Oracle` (``mpf``, ``sqrt``, ``fsum``, ``const``)
    kinks: Callable[[np.random.Generator, Shape, Params, Any], list[KinkPoint]]
    #: ``edge_cases(params) -> [EdgeCase]`` (float64 inputs; float32 runs use their rounding)
    edge_cases: Callable[[Params], list[EdgeCase]]
    #: what the kink check looks at, for the report
    kink_text: str = "smooth: one-sided quotients at ordinary points"

    def sample(self, rng: np.random.Generator, shape: Shape, params: Params,
               zones: tuple[Zone, ...] | None = None) -> tuple[np.ndarray, np.ndarray, str]:
        """A point drawn from one zone, or element by element from several (mixed)."""
        zones = zones or self.zones
        if not self.per_element or len(zones) == 1:
            z = zones[int(rng.integers(len(zones)))]
            p, t = z.sample(rng, shape, params)
            return p, t, z.name
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
            out += [(*z.sample(rng, shape, params), z.name) for _ in range(per_zone)]
        if self.per_element and len(self.zones) > 1 and int(np.prod(shape)) > 1:
            out += [self.sample(rng, shape, params) for _ in range(per_zone)]
        return out


# ------------------------------------------------------------------------------------------
# zone builders
# ------------------------------------------------------------------------------------------


def _residual(lo: float | str, hi: float | str, *, signed: bool = False,
              t_range: tuple[float, float] = (-2.0, 2.0)) -> Sampler:
    """``t`` uniform in ``t_range``, ``p = t + d`` with ``d`` uniform in ``[lo, hi]`` (times a
    random sign when ``signed``); a bound may be ``"delta"`` or ``"k*delta"``."""

    def bound(b: float | str, params: Params) -> float:
        if isinstance(b, str):
            k, _, _ = b.partition("*")
            return float(k) * params["delta"] if "*" in b else params["delta"]
        return b

    def sample(rng: np.random.Generator, shape: Shape, params: Params) -> tuple[np.ndarray,
                                                                                np.ndarray]:
        t = rng.uniform(*t_range, size=shape)
        d = rng.uniform(bound(lo, params), bound(hi, params), size=shape)
        if signed:
            d = d * rng.choice([-1.0, 1.0], size=shape)
        return t + d, t

    return sample


def _probability(lo: float | str, hi: float | str,
                 t_range: tuple[float, float] = (0.0, 1.0)) -> Sampler:
    """``p`` uniform in ``[lo, hi]``, where a bound may be ``"k*eps"`` or ``"1-k*eps"``."""

    def bound(b: float | str, eps: float) -> float:
        if isinstance(b, float):
            return b
        one, _, rest = b.rpartition("-")
        k = float(rest.split("*")[0])
        return 1 - k * eps if one == "1" else k * eps

    def sample(rng: np.random.Generator, shape: Shape, params: Params) -> tuple[np.ndarray,
                                                                                np.ndarray]:
        eps = params["epsilon"]
        p = rng.uniform(bound(lo, eps), bound(hi, eps), size=shape)
        return p, rng.uniform(*t_range, size=shape)

    return sample


def _hinge(lo: float, hi: float) -> Sampler:
    """Margin ``m = t * x`` uniform in ``[lo, hi]``; ``t`` is +-1 or a real label."""

    def sample(rng: np.random.Generator, shape: Shape, params: Params) -> tuple[np.ndarray,
                                                                                np.ndarray]:
        sign = rng.choice([-1.0, 1.0], size=shape)
        mag = np.where(rng.random(shape) < 0.5, 1.0, rng.uniform(0.5, 2.0, size=shape))
        t = sign * mag
        return rng.uniform(lo, hi, size=shape) / t, t

    return sample


def _uniform(p_range: tuple[float, float], t_range: tuple[float, float]) -> Sampler:
    def sample(rng: np.random.Generator, shape: Shape, params: Params) -> tuple[np.ndarray,
                                                                                np.ndarray]:
        return rng.uniform(*p_range, size=shape), rng.uniform(*t_range, size=shape)

    return sample


def _vector(p_norm: tuple[float, float] | None, t_norm: tuple[float, float] | None) -> Sampler:
    """Random directions; each norm uniform in the given range times ``eps`` (None: the
    vector's coordinates are standard normal)."""

    def draw(rng: np.random.Generator, shape: Shape, norm: tuple[float, float] | None,
             eps: float) -> np.ndarray:
        x = rng.standard_normal(shape)
        if norm is None:
            return x
        return x / np.linalg.norm(x) * rng.uniform(*norm) * eps

    def sample(rng: np.random.Generator, shape: Shape, params: Params) -> tuple[np.ndarray,
                                                                                np.ndarray]:
        eps = params["epsilon"]
        return draw(rng, shape, p_norm, eps), draw(rng, shape, t_norm, eps)

    return sample


# ------------------------------------------------------------------------------------------
# kink generators (50-digit points)
# ------------------------------------------------------------------------------------------


def _mp_array(values: Any, mp: Any) -> np.ndarray:
    a = np.empty(np.shape(values), dtype=object)
    for idx, v in np.ndenumerate(np.asarray(values, dtype=object)):
        a[idx] = mp.mpf(v)
    return a


def _smooth(zones: tuple[Zone, ...], count: int = 3) -> Callable[..., list[KinkPoint]]:
    """No kink: ordinary points, where both one-sided quotients must match the derivative."""

    def kinks(rng: np.random.Generator, shape: Shape, params: Params, mp: Any) -> list[KinkPoint]:
        plan_like = Plan(zones, True, (), _no_kinks, _no_edges)
        out = []
        for _ in range(count):
            p, t, zone = plan_like.sample(rng, shape, params)
            out.append(KinkPoint(f"ordinary point ({zone})", _mp_array(p, mp), _mp_array(t, mp)))
        return out

    return kinks


def _no_kinks(*_: Any) -> list[KinkPoint]:
    return []


def _no_edges(_: Params) -> list[EdgeCase]:
    return []


def _mix_on(rng: np.random.Generator, shape: Shape, on: Callable[[], tuple[Any, Any]],
            off: Callable[[], tuple[Any, Any]], mp: Any) -> tuple[np.ndarray, np.ndarray]:
    """Every element on the kink except, when there are several, one ordinary element."""
    p = np.empty(shape, dtype=object)
    t = np.empty(shape, dtype=object)
    size = int(np.prod(shape))
    odd = int(rng.integers(size)) if size > 1 else -1
    for k, idx in enumerate(np.ndindex(*shape)):
        p[idx], t[idx] = off() if k == odd else on()
    return p, t


def _mae_kinks(rng: np.random.Generator, shape: Shape, params: Params,
               mp: Any) -> list[KinkPoint]:
    def on() -> tuple[Any, Any]:
        t = mp.mpf(float(rng.uniform(-2, 2)))
        return t, t

    def off() -> tuple[Any, Any]:
        t = mp.mpf(float(rng.uniform(-2, 2)))
        return t + mp.mpf(float(rng.uniform(0.1, 1))), t

    return [KinkPoint("d = 0", *_mix_on(rng, shape, on, off, mp)),
            KinkPoint("d = 0 (all zero)", _mp_array(np.zeros(shape), mp),
                      _mp_array(np.zeros(shape), mp))]


def _huber_kinks(rng: np.random.Generator, shape: Shape, params: Params,
                 mp: Any) -> list[KinkPoint]:
    delta = mp.const(params["delta"])
    out = []
    for sign in (1, -1):
        def on(sign: int = sign) -> tuple[Any, Any]:
            t = mp.mpf(float(rng.uniform(-2, 2)))
            return t + sign * delta, t

        def off() -> tuple[Any, Any]:
            t = mp.mpf(float(rng.uniform(-2, 2)))
            return t + delta / 2, t

        out.append(KinkPoint(f"d = {'+' if sign > 0 else '-'}delta (C1 seam)",
                             *_mix_on(rng, shape, on, off, mp)))
    return out


def _clamp_kinks(rng: np.random.Generator, shape: Shape, params: Params,
                 mp: Any) -> list[KinkPoint]:
    eps = mp.const(params["epsilon"])
    out = []
    for label, edge in (("p = eps", eps), ("p = 1 - eps", 1 - eps)):
        def on(edge: Any = edge) -> tuple[Any, Any]:
            return edge, mp.mpf(float(rng.uniform(0, 1)))

        def off() -> tuple[Any, Any]:
            return mp.mpf(float(rng.uniform(0.2, 0.8))), mp.mpf(float(rng.uniform(0, 1)))

        out.append(KinkPoint(label, *_mix_on(rng, shape, on, off, mp)))
    return out


def _hinge_kinks(rng: np.random.Generator, shape: Shape, params: Params,
                 mp: Any) -> list[KinkPoint]:
    out = []
    for labels in ((1.0, -1.0), (0.5, -2.0)):
        def on(labels: tuple[float, float] = labels) -> tuple[Any, Any]:
            t = mp.mpf(labels[int(rng.integers(2))])
            return 1 / t, t

        def off() -> tuple[Any, Any]:
            return mp.mpf(float(rng.uniform(-1, 0.5))), mp.mpf(1)

        out.append(KinkPoint(f"t * x = 1, t in {labels}", *_mix_on(rng, shape, on, off, mp)))
    return out


def _cosine_kinks(rng: np.random.Generator, shape: Shape, params: Params,
                  mp: Any) -> list[KinkPoint]:
    eps = mp.const(params["epsilon"])
    out = []
    for label, t_scale in (("||p|| = eps", None), ("||p|| = eps, ||t|| < eps", 0.5)):
        direction = _mp_array(rng.standard_normal(shape), mp)
        norm = mp.sqrt(mp.fsum(x * x for x in direction.flat))
        p = direction / norm * eps
        t = rng.standard_normal(shape)
        if t_scale is not None:
            t = t / np.linalg.norm(t) * t_scale * float(params["epsilon"])
        out.append(KinkPoint(label, p, _mp_array(t, mp)))
    return out


def _log_cosh_kinks(rng: np.random.Generator, shape: Shape, params: Params,
                    mp: Any) -> list[KinkPoint]:
    def on() -> tuple[Any, Any]:
        t = mp.mpf(float(rng.uniform(-2, 2)))
        return t + rng.choice([-1, 1]), t

    def off() -> tuple[Any, Any]:
        t = mp.mpf(float(rng.uniform(-2, 2)))
        return t + mp.mpf(float(rng.uniform(-3, 3))), t

    return [KinkPoint("|d| = 1 (seam of the two evaluation forms)",
                      *_mix_on(rng, shape, on, off, mp))]


# ------------------------------------------------------------------------------------------
# float edge cases
# ------------------------------------------------------------------------------------------


def _pairs(*cases: tuple[str, Any, Any]) -> list[EdgeCase]:
    return [EdgeCase(label, np.asarray(p, dtype=np.float64), np.asarray(t, dtype=np.float64))
            for label, p, t in cases]


_T4 = [1.0, -2.0, 0.5, 3.0]


def _residual_edges(params: Params) -> list[EdgeCase]:
    """Residuals of every magnitude (shared by the losses of ``d = p - t``)."""
    delta = float(params.get("delta", 1.0))
    near = np.nextafter(delta, 0)
    return _pairs(
        ("moderate residuals", [0.3, -1.7, 2.5, 0.01], _T4),
        ("tiny residuals (1e-16)", [1.0 + 2.0**-52, -2.0 - 2.0**-51, 0.5, 3.0 - 2.0**-51], _T4),
        ("subnormal residuals", [1e-310, -5e-320, 1e-300, 0.0], [0.0, 0.0, 0.0, 0.0]),
        ("zero residuals", _T4, _T4),
        ("residuals at and next to +-delta", [delta, -delta, near, -near], [0.0, 0.0, 0.0, 0.0]),
        ("large residuals (1e3..1e30)", [1e3, -4e8, 1e17, 1e30], [0.0, 1.0, -1e16, 0.0]),
        ("huge residuals (1e150..1e300)", [1e150, -3e200, 1e300, 2.0], [0.0, 0.0, 0.0, 1.0]),
        ("a NaN residual", [np.nan, 0.5, 1.0, 2.0], [0.0, 0.0, 0.0, 0.0]),
    )


def _probability_edges(params: Params) -> list[EdgeCase]:
    eps = float(params["epsilon"])
    t = [1.0, 0.25, 0.5, 0.0]
    return _pairs(
        ("probabilities near 0", [1e-300, 1e-12, 1e-7, 0.0], t),
        ("p = eps and its neighbours", [eps, np.nextafter(eps, 0), np.nextafter(eps, 1), 2 * eps],
         t),
        ("p = 1 - eps and its neighbours", [1 - eps, np.nextafter(1 - eps, 0),
                                            np.nextafter(1 - eps, 2), 1 - 2 * eps], t),
        ("p near and at 1", [1.0, 1 - 2.0**-53, 1 - 1e-9, 0.999], t),
        ("ordinary probabilities", [0.3, 0.9, 0.01, 0.5], [0.2, 1.0, 0.7, 0.5]),
        ("one-hot target", [0.7, 0.2, 0.1, 1e-5], [1.0, 0.0, 0.0, 0.0]),
        ("a NaN probability", [np.nan, 0.5, 0.2, 0.3], t),
    )


def _logit_edges(params: Params) -> list[EdgeCase]:
    one_hot = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    return _pairs(
        ("ordinary logits", [[0.5, -1.0, 2.0], [0.0, 0.3, -0.2]], [[0.2, 0.5, 0.3], [1, 0, 0]]),
        ("large logits (+-1000)", [[1000.0, 0.0, -1000.0], [-1000.0, 1000.0, 0.0]], one_hot),
        ("huge logits (1e300)", [[1e300, 0.0, -1e300], [3.0, 1e300, 1e300]], one_hot),
        ("confident logits (margin 30)", [[30.0, 0.0, -5.0], [0.0, 30.0, 0.0]], one_hot),
        ("confident logits (margin 10)", [[10.0, 0.0, 0.0], [-2.0, 10.0, 1.0]], one_hot),
        ("equal logits", [[2.0, 2.0, 2.0], [0.0, 0.0, 0.0]], [[0.1, 0.2, 0.7], [1, 0, 0]]),
        ("unnormalised targets", [[0.5, -1.0, 2.0], [0.0, 0.3, -0.2]],
         [[2.0, 0.5, 0.0], [0.0, 0.0, 0.0]]),
        ("tiny logit differences", [[1.0, 1.0 + 2.0**-52, 1.0 - 2.0**-52], [0, 1e-300, -1e-300]],
         one_hot),
        ("a NaN logit", [[np.nan, 0.0, 1.0], [0.0, 1.0, 2.0]], one_hot),
    )


def _hinge_edges(params: Params) -> list[EdgeCase]:
    t = [1.0, -1.0, 1.0, -1.0]
    return _pairs(
        ("ordinary scores", [0.3, 0.2, -2.0, -3.0], t),
        ("on the margin", [1.0, -1.0, 1.0, -1.0], t),
        ("next to the margin", [np.nextafter(1, 0), np.nextafter(-1, 0), np.nextafter(1, 2),
                                np.nextafter(-1, -2)], t),
        ("real labels", [2.0, 0.1, -4.0, 1e-8], [0.5, -3.0, 0.25, 1e8]),
        ("huge scores", [1e300, -1e300, -1e300, 1e300], t),
        ("a NaN score", [np.nan, 0.0, 0.5, 2.0], t),
    )


def _poisson_edges(params: Params) -> list[EdgeCase]:
    t = [0.0, 1.0, 3.0, 10.0]
    return _pairs(
        ("ordinary log-rates", [0.5, -1.0, 1.2, 2.0], t),
        ("tiny log-rates", [1e-300, -1e-16, 2.0**-60, 0.0], t),
        ("large log-rates (exp near overflow)", [80.0, 88.0, 700.0, 709.0], t),
        ("very negative log-rates", [-50.0, -700.0, -745.0, -1e5], t),
        ("log-rate at log(count) (cancellation)", [-1.0, 0.0, float(np.log(3.0)),
                                                  float(np.log(10.0))], [0.5, 1.0, 3.0, 10.0]),
        ("a NaN log-rate", [np.nan, 0.0, 1.0, 2.0], t),
    )


def _cosine_edges(params: Params) -> list[EdgeCase]:
    eps = float(params["epsilon"])
    t = [1.0, -2.0, 0.5, 3.0]
    return _pairs(
        ("ordinary vectors", [0.3, -1.0, 2.0, 0.1], t),
        ("near-zero predicted (||p|| < eps)", [1e-8, -3e-8, 2e-9, 0.0], t),
        ("||p|| next to eps", [eps * 0.6, eps * 0.8, 0.0, 0.0], t),
        ("zero predicted", [0.0, 0.0, 0.0, 0.0], t),
        ("near-zero target", [0.3, -1.0, 2.0, 0.1], [1e-9, 0.0, 3e-9, -1e-9]),
        ("huge vectors (1e200)", [1e200, -3e200, 2e199, 1e150], [3e250, 1e250, -1e250, 0.0]),
        ("tiny vectors (1e-200)", [1e-200, -3e-200, 2e-199, 1e-250], t),
        ("opposite vectors", [-1.0, 2.0, -0.5, -3.0], t),
        ("a NaN coordinate", [np.nan, 0.0, 1.0, 2.0], t),
    )


# ------------------------------------------------------------------------------------------
# the plans
# ------------------------------------------------------------------------------------------

_ANY = (Zone("any d", _residual(-3.0, 3.0)),)
_MAE = (Zone("d > 0", _residual(0.01, 3.0)), Zone("d < 0", _residual(-3.0, -0.01)))
_HUBER = (Zone("|d| < delta", _residual("-0.9*delta", "0.9*delta")),
          Zone("d > delta", _residual("1.1*delta", "3*delta")),
          Zone("d < -delta", _residual("-3*delta", "-1.1*delta")))
_CLAMPED = (Zone("p < eps", _probability(-0.2, "0.9*eps")),
            Zone("eps < p < 1 - eps", _probability(0.002, 0.998)),
            Zone("p > 1 - eps", _probability("1-0.9*eps", 1.2)))
_BCE = tuple(Zone(z.name, z.sample, torch_agrees=z.name.startswith("eps")) for z in _CLAMPED)
_HINGE = (Zone("t x < 1", _hinge(-2.0, 0.9)), Zone("t x > 1", _hinge(1.1, 3.0)))
_POISSON = (Zone("any", _uniform((-3.0, 3.0), (0.0, 5.0))),)
_LOGITS = (Zone("any (unnormalised targets)", _uniform((-3.0, 3.0), (0.0, 2.0))),)
_COSINE = (Zone("||p|| > eps, ||t|| > eps", _vector(None, None)),
           Zone("||p|| < eps, ||t|| > eps", _vector((0.05, 0.9), None), torch_agrees=False),
           Zone("||p|| > eps, ||t|| < eps", _vector(None, (0.05, 0.9)), torch_agrees=False),
           Zone("||p|| < eps, ||t|| < eps", _vector((0.05, 0.9), (0.05, 0.9)),
                torch_agrees=False))
_LOG_COSH = (Zone("|d| < 1", _residual(0.0, 0.95, signed=True)),
             Zone("|d| > 1", _residual(1.05, 4.0, signed=True)))

_ELEMENT_SHAPES: tuple[Shape, ...] = ((1,), (3,), (2, 2))

PLANS: dict[str, Plan] = {
    "mse": Plan(_ANY, True, _ELEMENT_SHAPES, _smooth(_ANY), _residual_edges),
    "mae": Plan(_MAE, True, _ELEMENT_SHAPES, _mae_kinks, _residual_edges, "d = 0"),
    "huber": Plan(_HUBER, True, _ELEMENT_SHAPES, _huber_kinks, _residual_edges,
                  "|d| = delta (C1 seam)"),
    "cross_entropy": Plan(_CLAMPED, True, _ELEMENT_SHAPES, _clamp_kinks, _probability_edges,
                          "p = eps, p = 1 - eps"),
    "cross_entropy_logits": Plan(_LOGITS, False, ((3,), (1, 2), (2, 3)), _smooth(_LOGITS),
                                 _logit_edges),
    "hinge": Plan(_HINGE, True, _ELEMENT_SHAPES, _hinge_kinks, _hinge_edges, "t x = 1"),
    "poisson": Plan(_POISSON, True, _ELEMENT_SHAPES, _smooth(_POISSON), _poisson_edges),
    "cosine_similarity": Plan(_COSINE, False, ((2,), (3,), (2, 2)), _cosine_kinks,
                              _cosine_edges, "||p|| = eps"),
    "log_cosh": Plan(_LOG_COSH, True, _ELEMENT_SHAPES, _log_cosh_kinks, _residual_edges,
                     "|d| = 1 (seam of the evaluation forms)"),
    "binary_cross_entropy": Plan(_BCE, True, _ELEMENT_SHAPES, _clamp_kinks, _probability_edges,
                                 "p = eps, p = 1 - eps"),
}


def plan_for(name: str) -> Plan:
    """The plan of a registered loss; a loss without one cannot be certified."""
    from torchlean.errors import ParameterError

    try:
        return PLANS[name]
    except KeyError:
        raise ParameterError(
            f"`loss` {name!r} has no certification plan in torchlean.certify.plans; expected "
            f"one of {', '.join(PLANS)}"
        ) from None
