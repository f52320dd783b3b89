"""The fused per-sample kernels of ``torchlean.grad_hess`` against the declarations' terms.

The reference is always the spec: ``torchlean.grad_hess`` inside ``torchlean.kernels.disabled()``
evaluates the declaration's ``deriv_term`` and ``second_term`` through the arrays context. Every
declaration naming a ``grad_hess_kernel`` is tested, on inputs from its zones and its domain.
Bounds: float32 results within 1 ulp (both paths round one float64 result); float64 results
within the kernel's stated ``grad_ulps`` / ``hess_ulps`` of the result, or of the magnitude the
kernel's ``scales`` gives where a result cancels (``exp(s) - y``, ``softmax * mass - t``), times
the weight.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import torchlean
from torchlean import kernels
from torchlean.errors import DomainError, ShapeError
from torchlean.kernels.grad_hess_kernel import PerRow, resolve

pytest.importorskip("numba")

NAMES = [n for n, d in torchlean.LOSSES.items() if d.grad_hess_kernel is not None]
DTYPES = ("float32", "float64")


def spec(name: str, p: Any, t: Any, **kw: Any) -> tuple[Any, Any]:
    with kernels.disabled():
        return torchlean.grad_hess(name, p, t, **kw)


def is_row(name: str) -> bool:
    return isinstance(resolve(torchlean.LOSSES[name]), PerRow)


def zone_inputs(name: str, rng: np.random.Generator, n: int,
                dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples, each from a zone of the declaration drawn at random (a row loss: ``n``
    rows of 5 classes); label targets where the per-sample API takes only labels."""
    decl = torchlean.LOSSES[name]
    dom = decl.domain
    shape = (n, 5) if is_row(name) else (n,)
    draws = [z.sample(rng, shape, decl.params) for z in decl.region_zones()]
    if is_row(name):
        pick = rng.integers(len(draws), size=(n, 1))
        p = np.where(pick == 0, draws[0][0], draws[-1][0])
        t = np.where(pick == 0, draws[0][1], draws[-1][1])
    else:
        pick = rng.integers(len(draws), size=shape)
        p = np.choose(pick, [np.asarray(d[0], dtype=np.float64) for d in draws])
        t = np.choose(pick, [np.asarray(d[1], dtype=np.float64) for d in draws])
    if dom.only_labels:
        t = rng.choice(np.asarray(dom.labels, dtype=np.float64), size=shape)
    return p.astype(dtype), t.astype(dtype)


def assert_close(name: str, p: np.ndarray, t: np.ndarray, got: tuple[Any, Any],
                 ref: tuple[Any, Any], w: np.ndarray | None = None) -> None:
    kern = resolve(torchlean.LOSSES[name])
    dtype = p.dtype
    scales: tuple[Any, Any] = (None, None)
    if kern.scales is not None:
        tt = t if t.shape == p.shape else (np.arange(p.shape[-1]) == t[..., None])
        with np.errstate(all="ignore"):
            scales = kern.scales(p.astype(np.float64), np.asarray(tt, dtype=np.float64),
                                 torchlean.LOSSES[name].params)
    ww = 1.0 if w is None else np.abs(np.asarray(w, dtype=np.float64))
    if w is not None and is_row(name):
        ww = ww[..., None]
    for what, a, b, ulps, scale in (("gradient", got[0], ref[0], kern.grad_ulps, scales[0]),
                                    ("Hessian", got[1], ref[1], kern.hess_ulps, scales[1])):
        assert type(a) is type(b) is np.ndarray
        assert a.dtype == b.dtype == dtype and a.shape == b.shape == p.shape
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{name} {what} NaN")
        fin = np.isfinite(b)
        np.testing.assert_array_equal(a[~fin], b[~fin], err_msg=f"{name} {what} infinities")
        a64, b64 = a[fin].astype(np.float64), b[fin].astype(np.float64)
        mag = np.abs(b64)
        if scale is not None:
            with np.errstate(all="ignore"):
                s = np.nan_to_num(np.broadcast_to(scale * ww, p.shape)[fin], nan=0.0,
                                  posinf=0.0)
            mag = np.maximum(mag, s)
        tol = ulps * np.finfo(np.float64).eps * mag
        if dtype == np.float32:
            tol = tol + np.spacing(np.abs(b[fin]).astype(np.float32)).astype(np.float64)
        err = np.abs(a64 - b64)
        assert np.all(err <= tol), (
            f"{name} {what}: off by {np.max(err / np.maximum(tol, 1e-300)):.3g} of the bound at "
            f"p={p.reshape(-1)[np.argmax(err - tol)]}")


def fast_taken(name: str, p: np.ndarray, t: np.ndarray, **kw: Any) -> bool:
    decl = torchlean.LOSSES[name]
    prm = decl.checked_params(kw)
    from torchlean.per_sample import per_sample_target

    return kernels.fast_grad_hess(decl, p, per_sample_target(decl, p, t), None, prm,
                                  True) is not None


# ------------------------------------------------------------------------------------------
# Values: zones, weights, layouts, edges
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_zone_inputs_match_the_declaration(name: str, dtype: str) -> None:
    # a seed fixed per case (str hashes change from one process to the next)
    rng = np.random.default_rng(zlib.crc32(f"{name}-{dtype}".encode()))
    p, t = zone_inputs(name, rng, 3000, dtype)  # more than one block of the loop
    assert fast_taken(name, p, t)
    assert_close(name, p, t, torchlean.grad_hess(name, p, t), spec(name, p, t))
    w = rng.uniform(0.0, 3.0, size=p.shape[:-1] if is_row(name) else p.shape)
    w[::7] = 0.0
    got = torchlean.grad_hess(name, p, t, sample_weight=w)
    assert_close(name, p, t, got, spec(name, p, t, sample_weight=w), w)


@pytest.mark.parametrize("name", NAMES)
def test_parameters_are_honoured(name: str) -> None:
    decl = torchlean.LOSSES[name]
    if not decl.parameters:
        pytest.skip("no parameters")
    rng = np.random.default_rng(3)
    p, t = zone_inputs(name, rng, 500, "float64")
    # values away from the defaults, inside each validator's range
    choices = {"alpha": 0.8, "power": 1.2, "gamma": 0.5, "delta": 3.0}
    kw = {k: choices[k] for k in decl.parameters if k in choices}
    assert_close(name, p, t, torchlean.grad_hess(name, p, t, **kw), spec(name, p, t, **kw))


LAYOUTS = {
    "fortran": lambda x: np.asfortranarray(x.reshape(x.shape[0] // 10, 10, *x.shape[1:])),
    "strided": lambda x: np.repeat(x, 2, axis=0)[::2],
    "reversed": lambda x: x[::-1],
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("name", NAMES)
def test_non_contiguous_inputs(name: str, layout: str) -> None:
    rng = np.random.default_rng(11)
    p, t = zone_inputs(name, rng, 200, "float64")
    w = rng.uniform(0.0, 2.0, size=p.shape[:-1] if is_row(name) else p.shape)
    p, t, w = (LAYOUTS[layout](x) for x in (p, t, w))
    got = torchlean.grad_hess(name, p, t, sample_weight=w)
    ref = spec(name, p, t, sample_weight=w)
    assert got[0].flags.c_contiguous or got[0].flags.f_contiguous
    assert_close(name, p, t, got, ref, w)


_INF = math.inf
_P_EDGES = [math.nan, -_INF, _INF, 0.0, -0.0, 1e-300, -1e-300, 0.5, -30.0, 30.0, -700.0,
            700.0, -1e300, 1e300, 3.0]


def _edge_targets(name: str, m: int) -> np.ndarray:
    dom = torchlean.LOSSES[name].domain
    if dom.labels:
        return np.resize(np.asarray(dom.labels, dtype=np.float64), m)
    t = np.resize(np.array([0.0, 1.0, 0.5, 2.0, 1e-3, 7.0, 1e300, -1.0, -_INF, _INF]), m)
    return dom.fit_targets(t)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_edge_inputs_nan_in_nan_out(name: str, dtype: str) -> None:
    m = len(_P_EDGES)
    p = np.array(_P_EDGES * m)  # every predicted edge with every target edge
    t = np.repeat(_edge_targets(name, m), m)
    t[::17] = math.nan  # NaN targets pass the domain check, and give NaN out
    if is_row(name):
        p = p[: (p.size // 5) * 5].reshape(-1, 5)
        t = t[: p.size].reshape(-1, 5)
    with np.errstate(over="ignore"):  # 1e300 is inf in float32
        p, t = p.astype(dtype), t.astype(dtype)
    with np.errstate(all="ignore"):
        ref = spec(name, p, t)
    got = torchlean.grad_hess(name, p, t)
    assert_close(name, p, t, got, ref)
    nan_in = np.isnan(p) | np.isnan(t)
    if is_row(name):
        nan_in = np.any(nan_in, axis=-1, keepdims=True) & np.ones(p.shape, bool)
    assert np.all(np.isnan(got[0][nan_in])) and np.all(np.isnan(got[1][nan_in]))
    w = np.resize(np.array([1.0, math.nan, 0.5]), p.shape[:-1] if is_row(name) else p.shape)
    with np.errstate(all="ignore"):
        ref = spec(name, p, t, sample_weight=w)
    assert_close(name, p, t, torchlean.grad_hess(name, p, t, sample_weight=w), ref, w)


@settings(max_examples=25)
@given(name=st.sampled_from(NAMES), dtype=st.sampled_from(DTYPES),
       n=st.integers(1, 40), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([1e-6, 1.0, 20.0]))
def test_property_kernel_equals_declaration(name: str, dtype: str, n: int, seed: int,
                                            scale: float) -> None:
    rng = np.random.default_rng(seed)
    p, t = zone_inputs(name, rng, n, dtype)
    p = (p * scale).astype(dtype)
    with np.errstate(all="ignore"):
        ref = spec(name, p, t)
    assert_close(name, p, t, torchlean.grad_hess(name, p, t), ref)


# ------------------------------------------------------------------------------------------
# Shapes, dtypes and libraries
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_empty_and_zero_dimensional(name: str) -> None:
    for shape in ((0,), (0, 5), (3, 0)):
        p, t = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
        got, ref = torchlean.grad_hess(name, p, t), spec(name, p, t)
        for a, b in zip(got, ref, strict=True):
            assert a.shape == b.shape == shape and a.dtype == b.dtype == np.float32
    if is_row(name):
        return
    # 0-d: the spec's results, of the spec's types
    p = np.array(0.3)
    t = np.array(torchlean.LOSSES[name].domain.fit_targets(np.array(0.7)))
    assert not fast_taken(name, p, t)
    got, ref = torchlean.grad_hess(name, p, t), spec(name, p, t)
    for a, b in zip(got, ref, strict=True):
        assert type(a) is type(b) and np.shape(a) == () and a == b


def test_softmax_class_ids_and_mixed_dtypes() -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(size=(400, 4)).astype(np.float32)
    ids = rng.integers(0, 4, size=400)
    assert_close("softmax", z, ids, torchlean.grad_hess("softmax", z, ids),
                 spec("softmax", z, ids))
    # float32 raw scores with float64 labels and integer weights: each read as the spec reads it
    p = rng.normal(size=300).astype(np.float32)
    y = rng.integers(0, 2, size=300).astype(np.float64)
    w = rng.integers(0, 4, size=300)
    got = torchlean.grad_hess("logistic", p, y, sample_weight=w)
    assert_close("logistic", p, y, got, spec("logistic", p, y, sample_weight=w), w)


def test_parallel_and_serial_loops_give_the_same_bits() -> None:
    from torchlean.kernels.grad_hess_path import grad_hess

    rng = np.random.default_rng(4)
    for name in ("logistic", "softmax"):
        decl = torchlean.LOSSES[name]
        kern = resolve(decl)
        p, t = zone_inputs(name, rng, 20000, "float32")
        w = rng.uniform(size=p.shape[:-1] if is_row(name) else p.shape)
        a = grad_hess(kern, decl, p, t, w, dict(decl.params), True, parallel=True)
        b = grad_hess(kern, decl, p, t, w, dict(decl.params), True, parallel=False)
        assert a is not None and b is not None
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
        assert_close(name, p, t, a, spec(name, p, t, sample_weight=w), w)


def test_fast_path_is_taken_only_where_it_applies() -> None:
    a32, a64 = np.ones(4, np.float32), np.ones(4)
    decl = torchlean.LOSSES["logistic"]
    f = kernels.fast_grad_hess
    assert f(decl, a32, a32, None, {}, True) is not None
    assert f(decl, a64, a32, a64, {}, True) is not None
    assert f(decl, [1.0, 0.0], [1.0, 0.0], None, {}, True) is None
    assert f(decl, a64.astype(np.float16), a64, None, {}, True) is None
    assert f(decl, a64, a64, [1.0] * 4, {}, True) is None
    assert f(decl, a64, a64[:3], None, {}, True) is None
    assert f(torchlean.LOSSES["mae"], a64, a64, None, {}, True) is None  # no kernel named
    with kernels.disabled():
        assert f(decl, a64, a64, None, {}, True) is None
    torch = pytest.importorskip("torch")
    tt = torch.ones(4, dtype=torch.float64)
    assert f(decl, tt, tt, None, {}, True) is None  # the spec serves tensors
    g, _ = torchlean.grad_hess("logistic", tt, tt)
    assert isinstance(g, torch.Tensor) and g.dtype == torch.float64


# ------------------------------------------------------------------------------------------
# Bad input: the spec's own errors
# ------------------------------------------------------------------------------------------


def _raised(fn: Any) -> str:
    with pytest.raises((DomainError, ShapeError)) as info:
        fn()
    return f"{type(info.value).__name__}: {info.value}"


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_raises_the_specs_errors(name: str) -> None:
    rng = np.random.default_rng(9)
    p, t = zone_inputs(name, rng, 50, "float64")
    want = p.shape[:-1] if is_row(name) else p.shape
    cases = [dict(sample_weight=-np.ones(want)),
             dict(sample_weight=np.ones(want[0] + 1))]
    dom = torchlean.LOSSES[name].domain
    targets = [t]
    if dom.checked:
        bad = t.copy()
        bad.reshape(-1)[7] = (dom.target_lo - 1.0) if dom.target_lo is not None else (
            dom.target_hi + 1.0)
        targets.append(bad)
        cases.append({})
    for tt in targets:
        for kw in cases:
            if tt is t and not kw:
                continue
            got = _raised(lambda tt=tt, kw=kw: torchlean.grad_hess(name, p, tt, **kw))
            ref = _raised(lambda tt=tt, kw=kw: spec(name, p, tt, **kw))
            assert got == ref
    if dom.checked and not dom.only_labels:
        # check_domain=False: the kernel computes where the spec computes
        bad = targets[-1]
        assert_close(name, p, bad, torchlean.grad_hess(name, p, bad, check_domain=False),
                     spec(name, p, bad, check_domain=False))
