"""The elementwise kernels' all-float32 terms (``Elementwise.single``) against the spec.

The reference is the spec itself (``torchlean.kernels.disabled()``), and the bound is the one
``tests/test_kernels.py`` holds every float32 result to: 1 ulp of the output dtype for the
value and for each derivative element. Inputs where a shortcut of the single terms could show:
many random elements of each zone, the float32 neighbours of every declared seam, predicted
values over the whole float32 magnitude range, and targets next to the zero of the derivative
(found by bisection on the spec), where it cancels.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import torchlean
from torchlean.kernels import numpy_path
from torchlean.kernels.kernel import Elementwise, resolve

numba = pytest.importorskip("numba")

from test_kernels import assert_close, domain_inputs, spec  # noqa: E402

#: the losses whose kernel declares an all-float32 term
SINGLE = [name for name, decl in torchlean.LOSSES.items()
          if isinstance(resolve(decl), Elementwise) and resolve(decl).single is not None]
F32 = np.float32


def _target_range(name: str) -> tuple[float, float]:
    dom = torchlean.LOSSES[name].domain
    lo, hi = dom.target
    lo = lo if dom.target_lo is None else max(lo, dom.target_lo)
    hi = hi if dom.target_hi is None else min(hi, dom.target_hi)
    return lo, hi


def _check(name: str, p: np.ndarray, t: np.ndarray, **kw: float) -> None:
    p, t = p.astype(F32), t.astype(F32)
    with np.errstate(all="ignore"):
        ref = spec(name, p, t, **kw)
    assert_close(name, p, t, torchlean.value_and_deriv(name, p, t, **kw), ref)


def test_some_losses_have_a_single_term() -> None:
    assert SINGLE


@pytest.mark.parametrize("name", SINGLE)
def test_float32_operands_run_the_single_term(name: str) -> None:
    from torchlean.kernels.skeleton import build

    decl = torchlean.LOSSES[name]
    kern = resolve(decl)
    plan = numpy_path.Plan(decl, kern, {})
    dom = decl.domain
    assert plan.loops32 is build(kern, len(decl.params), dom.target_lo, dom.target_hi, True)
    assert plan.loops32 is not plan.loops


@pytest.mark.parametrize("name", SINGLE)
def test_many_random_elements_of_each_zone(name: str) -> None:
    rng = np.random.default_rng(15)
    for _ in range(3):
        p, t = domain_inputs(name, rng, (1 << 15,), "float32")
        _check(name, p, t)


def _around(x: float, steps: int = 6) -> np.ndarray:
    """``x`` rounded to float32 and its ``steps`` float32 neighbours on each side."""
    out = [F32(x)]
    for direction in (math.inf, -math.inf):
        y = F32(x)
        for _ in range(steps):
            y = np.nextafter(y, F32(direction))
            out.append(y)
    return np.array(out, dtype=F32)


def _params(name: str) -> list[dict[str, float]]:
    """The declared parameters, and for a probability clamp a few more (bounds that are exact
    floats, and one far below float32's smallest normal)."""
    decl = torchlean.LOSSES[name]
    out: list[dict[str, float]] = [{}]
    if "epsilon" in decl.params:
        out += [{"epsilon": 2.0**-20}, {"epsilon": 1e-3}, {"epsilon": 1e-40}]
    return out


@pytest.mark.parametrize("name", SINGLE)
def test_float32_neighbours_of_each_seam(name: str) -> None:
    decl = torchlean.LOSSES[name]
    lo, hi = _target_range(name)
    targets = np.linspace(lo, hi, 9, dtype=F32)
    for kw in _params(name):
        params = decl.bind_params(kw) if kw else decl.params
        for seam in decl.seams:
            x = _around(seam.location(params))
            xx, tt = np.meshgrid(x, targets)
            if seam.coordinate == "residual":  # predicted = target + d
                xx = (tt.astype(np.float64) + xx).astype(F32)
            _check(name, xx.ravel(), tt.ravel(), **kw)


@pytest.mark.parametrize("name", SINGLE)
def test_predicted_over_the_float32_range(name: str) -> None:
    lo, hi = _target_range(name)
    mags = np.concatenate([[0.0, 1e-45, 1.17e-38, 2.0**-30, 2.0**-29, 0.5, 1.0, 88.7, 89.0],
                           10.0 ** np.arange(-44, 39, 1.5), [3.4e38, math.inf]])
    p = np.concatenate([mags, -mags, 1.0 - 10.0 ** np.arange(-7, 0, 0.5)])
    t = np.array([lo, (lo + hi) / 2, hi, min(hi, lo + 1.0)])
    pp, tt = np.meshgrid(p, t)
    for kw in _params(name):
        _check(name, pp.ravel(), tt.ravel(), **kw)


def _derivative_zeros(name: str, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each float32 ``p`` whose spec derivative changes sign over the target range, the
    target where it does (bisection in float64 on the spec); the rows that have one."""
    lo, hi = _target_range(name)
    p64 = p.astype(np.float64)
    a, b = np.full(p.shape, float(lo)), np.full(p.shape, float(hi))
    sa = np.sign(spec(name, p64, a)[1])
    keep = sa * np.sign(spec(name, p64, b)[1]) < 0
    p64, a, b, sa = p64[keep], a[keep], b[keep], sa[keep]
    for _ in range(60):
        m = (a + b) / 2
        left = np.sign(spec(name, p64, m)[1]) == sa
        a, b = np.where(left, m, a), np.where(left, b, m)
    return p[keep], (a + b) / 2


@pytest.mark.parametrize("name", SINGLE)
def test_targets_where_the_derivative_cancels(name: str) -> None:
    # Reference: the declaration's derivative term at 50 digits (tests/oracle.py). Where it
    # cancels, the spec's float64 result is itself off by many float32 ulps of the result, so
    # the bound is the kernel's declared float64 one (``deriv_ulps`` of its ``scales``) plus
    # the rounding to float32.
    from oracle import exact

    lo, hi = _target_range(name)
    decl = torchlean.LOSSES[name]
    rng = np.random.default_rng(3)
    p = rng.uniform(*decl.domain.predicted, 300).astype(F32)
    p, t0 = _derivative_zeros(name, p)
    if not p.size:
        pytest.skip("the derivative keeps its sign over the target range")
    rows_p, rows_t = [], []
    for k in range(-2, 3):  # the float32 target nearest the zero and its neighbours
        t = t0.astype(F32)
        for _ in range(abs(k)):
            t = np.nextafter(t, F32(math.copysign(math.inf, k)))
        rows_p.append(p)
        rows_t.append(np.clip(t, F32(lo), F32(hi)))
    p, t = np.concatenate(rows_p), np.concatenate(rows_t)
    g = torchlean.value_and_deriv(name, p, t)[1].astype(np.float64)
    ref = np.array([float(x) for x in exact(decl.deriv, p, t).ravel()])
    kern = resolve(decl)
    scale = np.abs(ref)
    if kern.scales is not None:
        own = kern.scales(p.astype(np.float64), t.astype(np.float64), decl.params)[0]
        scale = scale if own is None else np.maximum(scale, own)
    bound = np.spacing(np.abs(ref).astype(F32)) + kern.deriv_ulps * 2.0**-52 * scale
    assert np.all(np.abs(g - ref) <= bound), f"{name}: {np.max(np.abs(g - ref) / bound)}"


def test_atanh2_small_is_within_two_ulps() -> None:
    # Reference: 2 * np.arctanh (within 1 ulp of the true value) on |s| <= 0.112.
    from torchlean.kernels import vmath

    @numba.njit(error_model="numpy")
    def run(x: np.ndarray, out: np.ndarray) -> None:
        for i in range(x.size):
            out[i] = vmath.atanh2_small(x[i])

    x = np.concatenate([np.random.default_rng(5).uniform(-0.112, 0.112, 200_000),
                        [0.0, -0.0, 1e-300, -1e-300, 5e-324, 0.112, -0.112]])
    out = np.empty_like(x)
    run(x, out)
    ref = 2.0 * np.arctanh(x)
    nz = ref != 0
    ulps = np.abs(out[nz] - ref[nz]) / np.spacing(np.abs(ref[nz]))
    assert ulps.max() <= 2, f"{ulps.max()} ulp at {x[nz][np.argmax(ulps)]!r}"
    assert out[-7] == 0 and not np.signbit(out[-7]) and out[-6] == 0 and np.signbit(out[-6])
