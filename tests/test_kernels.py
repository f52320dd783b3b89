"""The fused ``value_and_deriv`` fast paths against the spec, within the bounds of
docs/performance.md, for every declaration that names a kernel.

The reference is always the spec itself (``torchlean.kernels.disabled()``); bounds are in ulps of
the output dtype. Inputs come from each declaration's zones. The float64 derivative bound and,
where a derivative cancels (poisson ``exp(x) - t``, ``softmax * mass - t``, the cosine's two
terms), the magnitude its ulps are taken of are the kernel's own data (``deriv_ulps``,
``scales``): the two computations round their (equally accurate) terms differently.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tracemalloc
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import torchlean
from torchlean import kernels
from torchlean.errors import DomainError, DTypeError, ParameterError, ShapeError
from torchlean.kernels import numpy_path
from torchlean.kernels.kernel import resolve
from torchlean.spec.core.declaration import Domain

numba = pytest.importorskip("numba")

#: every loss whose declaration names a fused kernel (float32 outputs are rounded once from
#: float64 and stay within 1 ulp for every loss; float64 bounds are the kernel's)
NAMES = [name for name, decl in torchlean.LOSSES.items() if decl.kernel is not None]
DTYPES = ("float32", "float64")
EPS = 1e-6

#: value bound for float64 outputs, in ulps (of 1, times the mean |term|): the kernels add a
#: block of 1024 terms in order (or in vector lanes) and the block sums pairwise, so the
#: rounding error is at most (1024 + log2(blocks) + 2) half-ulps; random data stays near 1 ulp
V_ULPS_F64 = 520


def spec(name: str, p: Any, t: Any, **kw: Any) -> tuple[Any, Any]:
    with kernels.disabled():
        return torchlean.value_and_deriv(name, p, t, **kw)


def domain_inputs(name: str, rng: np.random.Generator, shape: tuple[int, ...],
                  dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Random inputs from the declaration's zones: each element from a zone drawn at random
    (a whole-tensor loss: one zone per call). Every package kernel's value terms keep one sign
    there, so the value's rounding scale is the value itself."""
    decl = torchlean.LOSSES[name]
    zones = decl.region_zones()
    if decl.kind == "whole":
        p, t = zones[int(rng.integers(len(zones)))].sample(rng, shape, decl.params)
    else:
        draws = [z.sample(rng, shape, decl.params) for z in zones]
        pick = rng.integers(len(zones), size=shape)
        p = np.choose(pick, [d[0] for d in draws]) if shape else draws[int(pick)][0]
        t = np.choose(pick, [d[1] for d in draws]) if shape else draws[int(pick)][1]
    return np.asarray(p).astype(dtype), np.asarray(t).astype(dtype)


def _scalable(name: str) -> bool:
    """Whether scaling ``predicted`` keeps it in the loss's domain (real-valued predictions with
    no label targets and no checked target domain)."""
    dom = torchlean.LOSSES[name].domain
    return dom.predicted == Domain().predicted and not dom.labels and not dom.checked


def _scales(name: str, p: np.ndarray, t: np.ndarray, g_ref: np.ndarray,
            v_ref: Any) -> tuple[np.ndarray, float]:
    """(per-element derivative scale, value scale), in float64: the result's own magnitude
    unless the kernel declares the scale its bound is relative to."""
    decl = torchlean.LOSSES[name]
    gs = np.abs(np.asarray(g_ref, dtype=np.float64))
    vs = abs(float(v_ref))
    kern = resolve(decl)
    if kern is not None and kern.scales is not None:
        with np.errstate(all="ignore"):
            g_own, v_own = kern.scales(p.astype(np.float64), t.astype(np.float64), decl.params)
        gs = gs if g_own is None else np.broadcast_to(g_own, gs.shape)
        vs = vs if v_own is None else v_own
    return np.nan_to_num(gs, nan=0.0, posinf=0.0), vs


def assert_close(name: str, p: np.ndarray, t: np.ndarray, got: tuple[Any, Any],
                 ref: tuple[Any, Any]) -> None:
    v, g = got
    v_ref, g_ref = ref
    dtype = np.dtype(p.dtype)
    assert np.asarray(v).dtype == dtype and np.asarray(v).shape == ()
    g_arr, gr_arr = np.asarray(g), np.asarray(g_ref)
    assert g_arr.dtype == dtype and g_arr.shape == gr_arr.shape == p.shape
    # NaN exactly where the spec has NaN; infinities equal
    np.testing.assert_array_equal(np.isnan(g_arr), np.isnan(gr_arr))
    assert math.isnan(float(v)) == math.isnan(float(v_ref))
    if math.isinf(float(v_ref)):
        assert float(v) == float(v_ref)
    gs, vs = _scales(name, p, t, gr_arr, v_ref)
    one = np.finfo(dtype).eps  # ulp of 1
    fin = np.isfinite(gr_arr)
    np.testing.assert_array_equal(g_arr[~fin & ~np.isnan(gr_arr)], gr_arr[~fin & ~np.isnan(gr_arr)])
    if dtype == np.float32:
        # 1 ulp of the output dtype: both round a float64 result once.
        ulp_g = np.spacing(np.maximum(np.abs(gr_arr[fin]), np.abs(g_arr[fin])).astype(dtype))
        diff = np.abs(g_arr[fin].astype(np.float64) - gr_arr[fin])
        assert np.all(diff <= ulp_g), f"{name}: derivative off by {np.max(diff / ulp_g)} ulp"
        if np.isfinite(float(v_ref)):
            ulp_v = np.spacing(np.float32(max(abs(float(v_ref)), abs(float(v)))))
            assert abs(float(v) - float(v_ref)) <= ulp_v, f"{name}: value {v} vs {v_ref}"
        return
    k = resolve(torchlean.LOSSES[name]).deriv_ulps
    tol = k * one * np.maximum(gs[fin] if np.ndim(gs) else gs, np.finfo(dtype).tiny)
    diff = np.abs(g_arr[fin] - gr_arr[fin])
    assert np.all(diff <= tol), f"{name}: derivative off by {np.max(diff / tol) * k} ulp"
    if np.isfinite(float(v_ref)):
        tol_v = V_ULPS_F64 * one * max(vs, np.finfo(dtype).tiny)
        assert abs(float(v) - float(v_ref)) <= tol_v, f"{name}: value {v!r} vs {v_ref!r}"
    elif not math.isnan(float(v_ref)):
        assert float(v) == float(v_ref)


# ------------------------------------------------------------------------------------------
# Random inputs: every loss, both dtypes, every layout
# ------------------------------------------------------------------------------------------

LAYOUTS = {
    "c": lambda x: x,
    "fortran": np.asfortranarray,
    "strided": lambda x: np.repeat(x, 2, axis=-1)[..., ::2],
    "transposed": lambda x: np.ascontiguousarray(x.T).T,
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_random_inputs_match_the_spec(name: str, dtype: str, layout: str) -> None:
    rng = np.random.default_rng(abs(hash((name, dtype, layout))) % 2**32)
    p, t = domain_inputs(name, rng, (6, 4, 35), dtype)
    p, t = LAYOUTS[layout](p), LAYOUTS[layout](t)
    got = torchlean.value_and_deriv(name, p, t)
    assert_close(name, p, t, got, spec(name, p, t))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_large_inputs_run_parallel_and_blocked(name: str, dtype: str) -> None:
    # Above SERIAL_BELOW (threads) and, strided, above BLOCK (block copies).
    rng = np.random.default_rng(7)
    p, t = domain_inputs(name, rng, (3 * numpy_path.BLOCK // 64, 64), dtype)
    for pp, tt in ((p, t), (p[:, ::2], t[:, ::2])):
        assert_close(name, pp, tt, torchlean.value_and_deriv(name, pp, tt), spec(name, pp, tt))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), dtype=st.sampled_from(DTYPES),
       shape=st.lists(st.integers(1, 9), min_size=1, max_size=3).map(tuple),
       seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([1e-3, 1.0, 30.0]))
def test_property_fast_path_equals_spec(name: str, dtype: str, shape: tuple[int, ...],
                                        seed: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    p, t = domain_inputs(name, rng, shape, dtype)
    if _scalable(name):
        p = (p * scale).astype(dtype)
    assert_close(name, p, t, torchlean.value_and_deriv(name, p, t), spec(name, p, t))


# ------------------------------------------------------------------------------------------
# Edge inputs: NaN, infinities, empty, 0-d, kinks
# ------------------------------------------------------------------------------------------

_INF = math.inf
EDGES: dict[str, tuple[list[float], list[float]]] = {
    "nan_predicted": ([math.nan, 0.5, 0.2], [0.0, 1.0, 0.5]),
    "nan_target": ([0.3, 0.5, 0.2], [math.nan, 1.0, 0.5]),
    "plus_inf": ([_INF, 0.5, 0.2], [0.0, 1.0, 0.5]),
    "minus_inf": ([-_INF, 0.5, 0.2], [1.0, 1.0, 0.5]),
    "inf_both": ([_INF, -_INF, 0.2], [_INF, 1.0, -_INF]),
    "zeros": ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
    "kinks": ([0.25, EPS, 1 - EPS], [0.25, 1.0, 1.0]),  # d = 0, clamp bounds, margin t x = 1
    "huge": ([700.0, -700.0, 1e30], [-700.0, 700.0, 0.0]),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(EDGES))
@pytest.mark.parametrize("name", NAMES)
def test_edge_inputs_match_the_spec(name: str, case: str, dtype: str) -> None:
    p = np.array(EDGES[case][0], dtype=dtype)
    t = np.array(EDGES[case][1], dtype=dtype)
    dom = torchlean.LOSSES[name].domain
    if dom.checked:  # into the checked target domain (NaN passes the check)
        lo = -math.inf if dom.target_lo is None else dom.target_lo
        hi = math.inf if dom.target_hi is None else dom.target_hi
        t = np.where(np.isnan(t), t, np.clip(np.abs(t), max(lo, 0), min(hi, 1))).astype(dtype)
    with np.errstate(all="ignore"):
        ref = spec(name, p, t)
    assert_close(name, p, t, torchlean.value_and_deriv(name, p, t), ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_empty_and_zero_dimensional(name: str, dtype: str) -> None:
    for shape in ((0,), (2, 0)):
        p, t = np.zeros(shape, dtype), np.zeros(shape, dtype)
        assert_close(name, p, t, torchlean.value_and_deriv(name, p, t), spec(name, p, t))
    p, t = np.array(0.3, dtype), np.array(0.7, dtype)
    if name == "cross_entropy_logits":
        with pytest.raises(ShapeError, match="logits"):
            torchlean.value_and_deriv(name, p, t)
        return
    v, g = torchlean.value_and_deriv(name, p, t)
    assert np.ndim(g) == 0
    assert_close(name, p, t, (v, g), spec(name, p, t))


def test_the_kink_choices_are_the_specs() -> None:
    # Hand derivation: mae'(0) = 0; hinge' = 0 at t x = 1; CE and BCE' = 0 at the clamp bounds.
    z = np.zeros(2)
    assert np.all(torchlean.value_and_deriv("mae", z, z)[1] == 0)
    assert np.all(torchlean.value_and_deriv("hinge", np.array([1.0, -0.5]),
                                            np.array([1.0, -2.0]))[1] == 0)
    # (epsilon = 2**-20 so that both bounds, eps and 1 - eps, are exact floats)
    e = 2.0**-20
    b = np.array([e, 1 - e])
    for name in ("cross_entropy", "binary_cross_entropy"):
        g = torchlean.value_and_deriv(name, b, np.array([0.5, 0.5]), epsilon=e)[1]
        assert np.all(g == 0)


def test_log_cosh_against_mpmath_values() -> None:
    # 50-digit mpmath: log(cosh(d)) and tanh(d) for d = 1e-8, 0.5, 3, 800 (mean over 4).
    d = np.array([1e-8, 0.5, 3.0, 800.0])
    v, g = torchlean.value_and_deriv("log_cosh", d, np.zeros(4))
    terms = [5.0e-17, 0.12011450695827752, 2.309328504577785, 799.3068528194401]
    tanh = [1.0e-8, 0.46211715726000974, 0.9950547536867305, 1.0]
    assert v == pytest.approx(sum(terms) / 4, rel=1e-15)
    np.testing.assert_allclose(g, np.array(tanh) / 4, rtol=4e-16)


# ------------------------------------------------------------------------------------------
# Errors and domain checks still happen
# ------------------------------------------------------------------------------------------


def test_errors_of_the_spec_still_raise() -> None:
    a = np.ones(3)
    with pytest.raises(ShapeError, match="target"):
        torchlean.value_and_deriv("mse", a, np.ones(4))
    with pytest.raises(ParameterError, match="delta"):
        torchlean.value_and_deriv("huber", a, a, delta=-1.0)
    with pytest.raises(ParameterError, match="epsilon"):
        torchlean.value_and_deriv("cross_entropy", a, a, epsilon=0.7)
    with pytest.raises(ParameterError, match="epsilon"):
        torchlean.value_and_deriv("cosine_similarity", a, a, epsilon=0.0)
    with pytest.raises(ParameterError, match="bogus"):
        torchlean.value_and_deriv("mse", a, a, bogus=1)
    with pytest.raises(DTypeError, match="predicted"):
        torchlean.value_and_deriv("mse", np.ones(3, dtype=int), a)


CHECKED = [n for n in NAMES if torchlean.LOSSES[n].domain.checked]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CHECKED)
def test_domain_checks_still_happen(name: str, dtype: str) -> None:
    # the kernel counts targets outside the declared domain and hands the call to the spec
    dom = torchlean.LOSSES[name].domain
    p = np.full(5000, 0.5, dtype=dtype)
    for bad_value in ([dom.target_lo - 2.0] if dom.target_lo is not None else []) + \
            ([dom.target_hi + 0.5] if dom.target_hi is not None else []):
        bad = np.full(5000, 0.5, dtype=dtype)
        bad[4321] = bad_value
        with pytest.raises(DomainError, match="target"):
            torchlean.value_and_deriv(name, p, bad)
        # check_domain=False skips the check; the result is still the spec's
        got = torchlean.value_and_deriv(name, p, bad, check_domain=False)
        assert_close(name, p, bad, got, spec(name, p, bad, check_domain=False))
    # a NaN target passes the check (NaN in gives NaN out)
    nan_t = np.full(5000, 0.5, dtype=dtype)
    nan_t[7] = math.nan
    v, g = torchlean.value_and_deriv(name, p, nan_t)
    assert math.isnan(float(v)) and math.isnan(g[7]) and not np.isnan(g[8])


def test_the_domain_error_messages_are_the_specs() -> None:
    # the spec's message, with the range it checks
    p = np.full(5000, 0.5)
    bad = np.full(5000, 0.5)
    bad[4321] = 1.5
    with pytest.raises(DomainError, match=r"target.*\[0, 1\]"):
        torchlean.value_and_deriv("binary_cross_entropy", p, bad)


def test_epsilon_and_delta_are_honoured() -> None:
    rng = np.random.default_rng(3)
    p, t = domain_inputs("huber", rng, (50,), "float64")
    for delta in (0.0, 0.3, 5.0):
        assert_close("huber", p, t, torchlean.value_and_deriv("huber", p, t, delta=delta),
                     spec("huber", p, t, delta=delta))
    q, y = domain_inputs("binary_cross_entropy", rng, (50,), "float64")
    for name in ("cross_entropy", "binary_cross_entropy", "cosine_similarity"):
        assert_close(name, q, y, torchlean.value_and_deriv(name, q, y, epsilon=0.1),
                     spec(name, q, y, epsilon=0.1))


def test_promoted_targets() -> None:
    # bool and small-int targets are converted exactly; int64 with float32 goes to the spec.
    p = np.linspace(-2, 2, 40, dtype=np.float32)
    for t in (np.arange(40) % 2 == 0, (np.arange(40) % 3).astype(np.int8),
              (np.arange(40) % 3).astype(np.int64), np.ones(40)):
        for name in ("mse", "hinge", "poisson"):
            got = torchlean.value_and_deriv(name, p, t)
            assert_close(name, p, t.astype(np.float32), got, spec(name, p, t))


def test_cosine_of_extreme_float64_norms_uses_the_scaled_spec() -> None:
    p = np.array([1e-200, 2e-200, 0.0])
    t = np.array([3e200, -1e200, 5e199])
    decl = torchlean.LOSSES["cosine_similarity"]
    assert numpy_path.value_and_deriv(decl, resolve(decl), p, t, {}) is None
    assert_close("cosine_similarity", p, t, torchlean.value_and_deriv("cosine_similarity", p, t),
                 spec("cosine_similarity", p, t))


# ------------------------------------------------------------------------------------------
# Dispatch and the switch
# ------------------------------------------------------------------------------------------


def test_fast_path_is_taken_only_where_it_applies() -> None:
    a32, a64 = np.ones(4, np.float32), np.ones(4)
    f = kernels.fast_value_and_deriv
    assert f("mse", a32, a32, {}) is not None and f("mse", a64, a64, {}) is not None
    assert f("mse", a64, a64, {"ctx": torchlean.contexts.arrays.CONTEXT}) is None
    assert f("mse", [1.0, 2.0], [1.0, 2.0], {}) is None
    assert f("mse", a64.astype(np.float16), a64.astype(np.float16), {}) is None
    assert f("mse", a32, a64, {}) is None  # float64 target is not exact in float32
    with kernels.disabled():
        assert not kernels.enabled() and f("mse", a64, a64, {}) is None
    assert kernels.enabled() and kernels.available()


def test_the_environment_switch_turns_the_kernels_off() -> None:
    code = "import torchlean.kernels as k, numpy as np; print(k.enabled())"
    env = {**os.environ, "TORCHLEAN_KERNELS": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_the_numpy_path_allocates_only_the_derivative() -> None:
    rng = np.random.default_rng(5)
    for name in NAMES:
        p, t = domain_inputs(name, rng, (2000, 100), "float64")
        for pp, tt in ((p, t), (p[:, ::2], t[:, ::2])):
            # compile outside the measurement (each size may run its own twin, pool or not)
            torchlean.value_and_deriv(name, pp, tt)
        # beyond g: the block partial sums, and each thread's scratch of a bounded size (the
        # row kernels' float64 block buffers, about 34 KiB a thread); the strided layout adds
        # its contiguous block copies
        for pp, tt, extra in ((p, t, 128 * 1024),
                              (p[:, ::2], t[:, ::2], 3 * numpy_path.BLOCK * 8 + 128 * 1024)):
            tracemalloc.start()
            _, g = torchlean.value_and_deriv(name, pp, tt)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert peak - g.nbytes < extra, f"{name}: {peak - g.nbytes} bytes beyond g"


# ------------------------------------------------------------------------------------------
# PyTorch: CPU tensors through the kernels, and the fused torch ops
# ------------------------------------------------------------------------------------------


def _torch_case(name: str, dtype: str, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p, t = domain_inputs(name, rng, (5, 37), dtype)
    p[0, 0] = math.nan
    if not torchlean.LOSSES[name].domain.checked:
        t[1, 1] = math.inf
    return p, t


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_torch_tensors_match_the_spec_with_a_constant_derivative(name: str, dtype: str) -> None:
    torch = pytest.importorskip("torch")
    p, t = _torch_case(name, dtype)
    tp = torch.from_numpy(p).requires_grad_(True)
    v, g = torchlean.value_and_deriv(name, tp, torch.from_numpy(t))
    assert isinstance(v, torch.Tensor) and isinstance(g, torch.Tensor)
    # the value is differentiable (its backward is the derivative spec); the derivative is not
    assert v.requires_grad and g.grad_fn is None and not g.requires_grad
    with np.errstate(all="ignore"):
        ref = spec(name, p, t)
    assert_close(name, p, t, (v.detach().numpy(), g.numpy()), ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_torch_fused_ops_match_the_spec(name: str, dtype: str) -> None:
    torch = pytest.importorskip("torch")
    from torchlean.kernels import torch_fused

    for seed in (11, 12):
        p, t = _torch_case(name, dtype, seed)
        out = torch_fused.value_and_deriv(name, torch.from_numpy(p), torch.from_numpy(t), {})
        assert out is not None and out[1].dtype == getattr(torch, dtype)
        with np.errstate(all="ignore"):
            ref = spec(name, p, t)
        assert_close(name, p, t, (out[0].numpy(), out[1].numpy()), ref)
    # edge layouts and empties
    p, t = domain_inputs(name, np.random.default_rng(1), (4, 6), dtype)
    out = torch_fused.value_and_deriv(name, torch.from_numpy(p).T, torch.from_numpy(t).T, {})
    assert out is not None
    assert_close(name, p.T, t.T, (out[0].numpy(), out[1].numpy()), spec(name, p.T, t.T))


def test_losses_without_a_kernel_run_the_spec() -> None:
    decl = torchlean.LOSSES["mse"].with_changes(kernel=None)
    assert resolve(decl) is None
    a = np.ones(4)
    assert kernels.fast_value_and_deriv("no_such_loss", a, a, {}) is None


def test_torch_fused_defers_to_the_spec_where_it_must() -> None:
    torch = pytest.importorskip("torch")
    from torchlean.kernels import torch_fused

    a = torch.full((4,), 0.5)
    assert torch_fused.value_and_deriv("poisson", a, -a, {}) is None
    assert torch_fused.value_and_deriv("binary_cross_entropy", a, a + 1, {}) is None
    assert torch_fused.value_and_deriv("cross_entropy_logits", a[0], a[0], {}) is None
    with pytest.raises(DomainError):
        torchlean.value_and_deriv("poisson", a, -a)
    with pytest.raises(ShapeError):
        torchlean.value_and_deriv("mse", a, torch.ones(5))


def test_recycled_derivative_buffers_are_never_shared() -> None:
    # Derivatives of >= POOL_MIN_BYTES reuse the last buffer only once nothing refers to it.
    n = numpy_path.POOL_MIN_BYTES // 8 + 10
    p, t = np.linspace(-1, 1, n), np.zeros(n)
    _, g1 = torchlean.value_and_deriv("mse", p, t)
    _, g2 = torchlean.value_and_deriv("mse", p, t)
    assert not np.shares_memory(g1, g2)
    view = g2[::3]
    del g2
    _, g3 = torchlean.value_and_deriv("mae", p, t)
    assert not np.shares_memory(view, g3) and not np.shares_memory(g1, g3)
    np.testing.assert_array_equal(view, (2 * p / n)[::3])  # untouched by the later call
    address = g3.__array_interface__["data"][0]
    del g3
    _, g4 = torchlean.value_and_deriv("mse", p, t)
    assert g4.__array_interface__["data"][0] == address  # recycled once released
    np.testing.assert_array_equal(g4, 2 * p / n)
    numpy_path.release_pool()


# ------------------------------------------------------------------------------------------
# The vectorisable float64 functions the kernels use
# ------------------------------------------------------------------------------------------

_VMATH_POINTS = {
    "exp": lambda r: np.concatenate([r.uniform(-745, 709.7, 60000), r.uniform(-1, 1, 20000),
                                     r.uniform(-745.1, -700, 5000)]),
    "expm1": lambda r: np.concatenate([r.uniform(-60, 709, 60000), r.uniform(-1, 1, 20000),
                                       r.normal(0, 1e-6, 5000)]),
    "log": lambda r: np.concatenate([np.exp(r.uniform(-744, 709, 60000)), r.uniform(0.5, 2, 20000),
                                     np.array([5e-324, 1e-310, 1.0, 2.0])]),
    "log1p": lambda r: np.concatenate([r.uniform(-1, 10, 60000), r.normal(0, 1e-8, 20000),
                                       -r.uniform(1e-6, 1 - 1e-6, 20000)]),
}
_SPECIALS = np.array([0.0, -0.0, math.inf, -math.inf, math.nan, 1e-320, -1e-320, 710.0, -746.0,
                      709.78, -745.0, 1e300, -1e300, -1.0, -2.0, 40.5, -60.5])


def _vmath_loop(name: str) -> Any:
    from torchlean.kernels import vmath

    fn = getattr(vmath, name)

    @numba.njit(error_model="numpy", fastmath={"reassoc"})
    def run(x: np.ndarray, out: np.ndarray) -> None:
        for i in range(x.size):
            out[i] = fn(x[i])

    return run


@pytest.mark.parametrize("name", list(_VMATH_POINTS))
def test_vectorisable_math_is_within_two_ulps(name: str) -> None:
    # Reference: NumPy (itself within 1 ulp of 50-digit mpmath on these points); specials must
    # match exactly (inf, -inf, nan, 0, overflow and underflow thresholds).
    run = _vmath_loop(name)
    x = _VMATH_POINTS[name](np.random.default_rng(2))
    out = np.empty_like(x)
    run(x, out)
    ref = getattr(np, name)(x)
    ok = np.isfinite(ref)
    ulps = np.abs(out[ok] - ref[ok]) / np.spacing(np.abs(ref[ok]))
    assert ulps.max() <= 2, f"{name}: {ulps.max()} ulp at {x[ok][np.argmax(ulps)]!r}"
    out = np.empty_like(_SPECIALS)
    run(_SPECIALS, out)
    with np.errstate(all="ignore"):
        ref = getattr(np, name)(_SPECIALS)
    same = (out == ref) | (np.isnan(out) & np.isnan(ref))
    with np.errstate(all="ignore"):
        close = np.abs(out - ref) <= 2 * np.spacing(np.abs(np.where(np.isfinite(ref), ref, 0)))
    assert np.all(same | (np.isfinite(ref) & close)), list(zip(_SPECIALS, out, ref, strict=True))


def test_without_numba_numpy_runs_the_spec_and_torch_the_fused_ops(
        monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    from torchlean.kernels import torch_fused

    monkeypatch.setattr(kernels, "_numba", False)  # as if `import numba` had failed
    assert not kernels.available()
    p, t = domain_inputs("log_cosh", np.random.default_rng(4), (3, 50), "float32")
    assert kernels.fast_value_and_deriv("log_cosh", p, t, {}) is None
    v, g = torchlean.value_and_deriv("log_cosh", p, t)
    v_ref, g_ref = spec("log_cosh", p, t)
    assert v == v_ref and np.array_equal(g, g_ref)
    tp, tt = torch.from_numpy(p), torch.from_numpy(t)
    v, g = torchlean.value_and_deriv("log_cosh", tp, tt)
    v_f, g_f = torch_fused.value_and_deriv("log_cosh", tp, tt, {})
    assert torch.equal(v, v_f) and torch.equal(g, g_f)
    assert_close("log_cosh", p, t, (v.numpy(), g.numpy()), (v_ref, g_ref))
