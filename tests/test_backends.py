"""Every array backend (the ``xp`` fixture: numpy, torch, dask, array_api_strict) gives the NumPy
float64 result, in the input's library and dtype, without touching the inputs, for every
declared loss (inputs drawn from its zones)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from loss_inputs import smooth_case
from spec_functions import NAMES, SPECS

import torchlean
from conftest import Backend
from torchlean.spec.core.tensor import to_scalar_spec
from torchlean.spec.layers import loss as L
from torchlean.spec.layers.activation import log_softmax_spec, softmax_spec

SHAPE = (4, 3)  # dask splits it into chunks ((2, 2), (2, 1))


def assert_library_and_dtype(xp: Backend, out: Any, like: Any, dtype: str) -> None:
    """``out`` is an array of ``like``'s library (NumPy may return a scalar) of ``dtype``."""
    if xp.name == "numpy":
        assert isinstance(out, np.ndarray | np.generic), type(out)
    else:
        assert type(out) is type(like), (type(out), type(like))
    assert xp.dtype_name(out) == dtype


def assert_as_numpy_float64(xp: Backend, out: Any, ref: Any, dtype: str) -> None:
    """float64: the NumPy result up to summation order (dask sums chunk by chunk);
    float32: within one float32 ulp of the float64 result (float64 inside, one rounding)."""
    got = np.asarray(xp.to_numpy(out), dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape
    if dtype == "float64":
        np.testing.assert_allclose(got, ref, rtol=1e-14, atol=1e-15)
    else:
        ulp = np.spacing(np.abs(ref.astype(np.float32))).astype(np.float64)
        assert np.all(np.abs(got - ref) <= ulp), (got, ref)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", NAMES)
def test_value_and_derivative_equal_numpy_float64(xp: Backend, name: str, dtype: str) -> None:
    value_fn, deriv_fn, _ = SPECS[name]
    p, t, params = smooth_case(name, SHAPE, seed=3)
    # the reference sees exactly the values the backend sees (rounded to dtype first)
    p_ref, t_ref = p.astype(dtype).astype(np.float64), t.astype(dtype).astype(np.float64)
    P, T = xp.asarray(p, dtype), xp.asarray(t, dtype)
    v, g = value_fn(P, T, **params), deriv_fn(P, T, **params)
    assert_library_and_dtype(xp, v, P, dtype)
    assert_library_and_dtype(xp, g, P, dtype)
    assert tuple(v.shape) == () and tuple(g.shape) == SHAPE
    assert_as_numpy_float64(xp, v, value_fn(p_ref, t_ref, **params), dtype)
    assert_as_numpy_float64(xp, g, deriv_fn(p_ref, t_ref, **params), dtype)
    # the registry's value_and_deriv (and any fast path behind it) gives the same
    v2, g2 = torchlean.value_and_deriv(name, P, T, **params)
    assert_library_and_dtype(xp, g2, P, dtype)
    assert_as_numpy_float64(xp, v2, value_fn(p_ref, t_ref, **params), dtype)
    assert_as_numpy_float64(xp, g2, deriv_fn(p_ref, t_ref, **params), dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_helpers_on_every_backend(xp: Backend, dtype: str) -> None:
    z = np.array([[0.5, -1.0, 2.0], [1000.0, 0.0, -1000.0]])
    Z = xp.asarray(z, dtype)
    z_ref = z.astype(dtype).astype(np.float64)
    for fn in (softmax_spec, log_softmax_spec, to_scalar_spec):
        out = fn(Z)
        assert_library_and_dtype(xp, out, Z, dtype)
        assert_as_numpy_float64(xp, out, fn(z_ref), dtype)


@pytest.mark.parametrize(("p", "y"), [(0.3, 1.0), (0.8, 0.25), (0.0, 1.0)])
def test_scalar_bce_on_0d_arrays(xp: Backend, p: float, y: float) -> None:
    P, Y = xp.asarray(p), xp.asarray(y)
    for fn in (L.binary_cross_entropy_spec, L.binary_cross_entropy_deriv_spec):
        out = fn(P, Y)
        assert_library_and_dtype(xp, out, P, "float64")
        assert_as_numpy_float64(xp, out, fn(p, y), "float64")


def test_empty_inputs_on_every_backend(xp: Backend) -> None:
    P = xp.asarray(np.zeros((0, 3)))
    for name in NAMES:
        value_fn, deriv_fn, _ = SPECS[name]
        # the same value as NumPy's (the totalized mean: 0; cosine: 1 - 0), derivative of the
        # same (empty) shape
        assert float(xp.to_numpy(value_fn(P, P))) == float(value_fn(np.zeros((0, 3)),
                                                                     np.zeros((0, 3))))
        assert tuple(deriv_fn(P, P).shape) == (0, 3)


# --------------------------------------------------------------------------------------------
# Dask: lazy in, lazy out, chunks kept
# --------------------------------------------------------------------------------------------


@pytest.fixture
def dask_backend() -> Backend:
    return Backend("dask")


@pytest.mark.parametrize("name", NAMES)
def test_dask_stays_lazy_and_keeps_chunks(dask_backend: Backend, name: str) -> None:
    da = dask_backend.mod
    p, t, params = smooth_case(name, (6, 4), seed=4)
    P = da.from_array(p, chunks=(2, 3))
    value_fn, deriv_fn, _ = SPECS[name]
    for T in (da.from_array(t, chunks=(2, 3)), da.from_array(t, chunks=(3, 2))):
        v, g = value_fn(P, T, **params), deriv_fn(P, T, **params)
        assert isinstance(v, da.Array) and isinstance(g, da.Array)
        assert g.chunks == P.chunks, (g.chunks, P.chunks)
        np.testing.assert_allclose(v.compute(), value_fn(p, t, **params), rtol=1e-14)
        np.testing.assert_allclose(g.compute(), deriv_fn(p, t, **params), rtol=1e-14,
                                   atol=1e-15)


# --------------------------------------------------------------------------------------------
# Integer and bool targets are promoted to the dtype of `predicted`
# --------------------------------------------------------------------------------------------

_INT_TARGET_CASES = [
    pytest.param("mse", [0.5, -1.0, 2.0, 3.5], [1, 0, 2, -3], "int64", id="mse-int64"),
    pytest.param("mae", [0.5, -1.0, 2.0, 3.5], [1, 0, 2, -3], "int32", id="mae-int32"),
    pytest.param("hinge", [0.5, -1.0, 2.0, 0.2], [1, -1, -1, 1], "int8", id="hinge-int8"),
    pytest.param("poisson", [0.5, -1.0, 2.0, 0.0], [0, 3, 1, 2], "int64", id="poisson-int64"),
    pytest.param("cross_entropy_logits", [0.5, -1.0, 2.0, 0.0], [0, 0, 1, 0], "int64",
                 id="logits-int64"),
    pytest.param("cross_entropy", [0.2, 0.3, 0.4, 0.1], [0, 0, 1, 0], "bool", id="ce-bool"),
    pytest.param("binary_cross_entropy", [0.2, 0.7, 0.4, 0.9], [0, 1, 1, 0], "bool",
                 id="bce-bool"),
    pytest.param("mse", [0.5, -1.0, 2.0, 3.5], [1, 0, 1, 1], "bool", id="mse-bool"),
]


@pytest.mark.parametrize("p_dtype", ["float64", "float32"])
@pytest.mark.parametrize(("name", "p", "t", "t_dtype"), _INT_TARGET_CASES)
def test_integer_and_bool_targets_are_promoted(xp: Backend, name: str, p: list[float],
                                               t: list[int], t_dtype: str, p_dtype: str) -> None:
    value_fn, deriv_fn, _ = SPECS[name]
    P = xp.asarray(p, p_dtype)
    T = xp.asarray(np.asarray(t).astype(t_dtype), t_dtype)
    # the same computation with the target already in float64
    p_ref, t_ref = np.asarray(p, p_dtype).astype(np.float64), np.asarray(t, dtype=np.float64)
    for fn in (value_fn, deriv_fn):
        out = fn(P, T)
        assert_library_and_dtype(xp, out, P, p_dtype)
        assert_as_numpy_float64(xp, out, fn(p_ref, t_ref), p_dtype)


def test_python_sequences_and_numbers_are_accepted() -> None:
    # nested lists become NumPy float64 arrays; an int list target is promoted
    np.testing.assert_allclose(L.mse_spec([[1.0, 2.0]], [[0, 0]]), 2.5)  # (1 + 4) / 2
    # a Python-number pair gives a Python float for the scalar BCE
    out = L.binary_cross_entropy_spec(0.5, 1)
    assert type(out) is float and out == pytest.approx(np.log(2.0), rel=1e-15)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_float16_stays_float16(backend: str) -> None:
    xp = Backend(backend)
    p, t, _ = smooth_case("mse", SHAPE, seed=1)
    P, T = xp.asarray(p, "float16"), xp.asarray(t, "float16")
    for fn in (L.mse_spec, L.mse_deriv_spec, L.log_cosh_deriv_spec):
        out = fn(P, T)
        assert xp.dtype_name(out) == "float16"
        ref = fn(p.astype(np.float16).astype(np.float64), t.astype(np.float16).astype(np.float64))
        ulp = np.spacing(np.abs(np.asarray(ref).astype(np.float16))).astype(np.float64)
        assert np.all(np.abs(xp.to_numpy(out).astype(np.float64) - ref) <= ulp)


# --------------------------------------------------------------------------------------------
# Inputs are never modified
# --------------------------------------------------------------------------------------------


def _run_everything(name: str, P: Any, T: Any, params: dict[str, Any]) -> None:
    value_fn, deriv_fn, _ = SPECS[name]
    for out in (value_fn(P, T, **params), deriv_fn(P, T, **params),
                *torchlean.value_and_deriv(name, P, T, **params)):
        if hasattr(out, "compute"):
            out.compute()


@pytest.mark.parametrize("name", NAMES)
def test_inputs_are_not_modified(xp: Backend, name: str) -> None:
    p, t, params = smooth_case(name, SHAPE, seed=6)
    for dtype in ("float64", "float32"):
        P, T = xp.asarray(p, dtype), xp.asarray(t, dtype)
        before = (xp.to_numpy(P).copy(), xp.to_numpy(T).copy())
        versions = (P._version, T._version) if xp.name == "torch" else None
        _run_everything(name, P, T, params)
        np.testing.assert_array_equal(xp.to_numpy(P), before[0])
        np.testing.assert_array_equal(xp.to_numpy(T), before[1])
        if versions is not None:  # no in-place operation touched them at all
            assert (P._version, T._version) == versions


@pytest.mark.parametrize("name", NAMES)
def test_read_only_numpy_inputs(name: str) -> None:
    p, t, params = smooth_case(name, SHAPE, seed=8)
    expected = (SPECS[name][0](p, t, **params), SPECS[name][1](p, t, **params))
    p_ro, t_ro = p.copy(), t.copy()
    p_ro.flags.writeable = False
    t_ro.flags.writeable = False
    np.testing.assert_array_equal(SPECS[name][0](p_ro, t_ro, **params), expected[0])
    np.testing.assert_array_equal(SPECS[name][1](p_ro, t_ro, **params), expected[1])
    _run_everything(name, p_ro, t_ro, params)
    np.testing.assert_array_equal(p_ro, p)
    np.testing.assert_array_equal(t_ro, t)


def _views(backend: str, p: np.ndarray, t: np.ndarray) -> tuple[Any, Any]:
    """Non-contiguous views holding ``p`` and ``t``: strided columns of wider arrays, the
    target also transposed twice (reversed strides)."""
    wide_p = np.zeros((p.shape[0], 2 * p.shape[1]))
    wide_p[:, ::2] = p
    wide_t = np.zeros((2 * t.shape[1], t.shape[0]))
    wide_t[::2, :] = t.T
    if backend == "torch":
        torch = pytest.importorskip("torch")
        return torch.from_numpy(wide_p)[:, ::2], torch.from_numpy(wide_t)[::2, :].T
    return wide_p[:, ::2], wide_t[::2, :].T


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("name", NAMES)
def test_non_contiguous_views(backend: str, name: str) -> None:
    p, t, params = smooth_case(name, SHAPE, seed=9)
    P, T = _views(backend, p, t)
    xp = Backend(backend)
    assert not (P.flags.c_contiguous if backend == "numpy" else P.is_contiguous())
    value_fn, deriv_fn, _ = SPECS[name]
    # equal up to summation order (PyTorch and NumPy sum in different orders)
    np.testing.assert_allclose(xp.to_numpy(value_fn(P, T, **params)), value_fn(p, t, **params),
                               rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(xp.to_numpy(deriv_fn(P, T, **params)), deriv_fn(p, t, **params),
                               rtol=1e-14, atol=1e-16)
    _run_everything(name, P, T, params)
    np.testing.assert_array_equal(xp.to_numpy(P), p)
    np.testing.assert_array_equal(xp.to_numpy(T), t)
