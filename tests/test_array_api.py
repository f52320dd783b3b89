"""Array API conformance: every loss value and derivative on every backend of the ``xp`` fixture
(NumPy, PyTorch, Dask, array-api-strict) and on JAX when it is installed; dtypes and devices are
kept; array-api-strict catches any call outside the standard."""

from __future__ import annotations

import functools
from typing import Any

import array_api_compat as aac
import numpy as np
import oracle
import pytest

import torchlean
from torchlean import LOSSES, BackendError, kernels

P = [[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]]
T = [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
T_HINGE = [[-1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]]  # 2 T - 1: labels -1 / 1

#: Hand-kept values for the losses listed (a new loss needs no row: it is checked against the
#: oracle directly). Origin: the tests' 50-digit oracle (``tests/oracle.py``), the value at 50
#: digits and the derivative by mpmath's numerical differentiation of it, on the exact binary64
#: inputs, rounded to float64; ``test_reference_table_is_the_mpmath_oracle`` re-evaluates it.
REFERENCE: dict[str, tuple[float, list[float]]] = {
    "mse": (0.07333333333333333,
            [0.06666666666666667, -0.16666666666666666, 0.09999999999999999,
             0.03333333333333333, 0.03333333333333333, -0.06666666666666665]),
    "mae": (0.23333333333333334,
            [0.16666666666666666, -0.16666666666666666, 0.16666666666666666,
             0.16666666666666666, 0.16666666666666666, -0.16666666666666666]),
    "huber": (0.03666666666666667,
              [0.03333333333333333, -0.08333333333333333, 0.049999999999999996,
               0.016666666666666666, 0.016666666666666666, -0.033333333333333326]),
    "cross_entropy": (0.15271512197902584,
                      [0.0, -0.3333333333333333, 0.0, 0.0, 0.0, -0.20833333333333331]),
    "cross_entropy_logits": (0.2715929503024461,
                             [0.048238851732377436, -0.10155102778836406, 0.053312176055986614,
                              0.04152390015370487, 0.04152390015370487, -0.08304780030740974]),
    "hinge": (0.9,
              [0.16666666666666666, -0.16666666666666666, 0.16666666666666666,
               0.16666666666666666, 0.16666666666666666, -0.16666666666666666]),
    "poisson": (1.2259776001800107,
                [0.2035671263600283, 0.1081202117833547, 0.22497646792933385,
                 0.18419515301260794, 0.18419515301260794, 0.2042568214154113]),
    "cosine_similarity": (0.09861218113400268,
                          [0.1733438113203841, -0.2600157169805762, 0.26001571698057613,
                           0.08667190566019205, 0.08667190566019205, 1.480386850032071e-17]),
    "log_cosh": (0.035695799701254256,
                 [0.03289588670415067, -0.07701952621000163, 0.04855210207526515,
                  0.01661133243749264, 0.01661133243749264, -0.03289588670415066]),
    "binary_cross_entropy": (0.28447170974045827,
                             [0.20833333333333334, -0.3333333333333333, 0.23809523809523808,
                              0.18518518518518517, 0.18518518518518517, -0.20833333333333331]),
}

ALL = [n for n, d in LOSSES.items() if d.origin == "torchlean"]


@pytest.fixture(params=["fused", "spec"])
def path(request: pytest.FixtureRequest) -> Any:
    """``value_and_deriv`` as users get it (a fused kernel where one applies), then with the
    kernels off, so the Array API context itself runs on every backend."""
    if request.param == "fused":
        yield request.param
    else:
        with kernels.disabled():
            yield request.param


def _target(name: str) -> list[list[float]]:
    """``T`` moved into the loss's checked domain, or for a loss of labels its 0 / 1 mapped to
    the first and last label (hinge's -1 and 1)."""
    dom = LOSSES[name].domain
    labels = dom.labels
    if not labels:
        return dom.fit_targets(np.array(T)).tolist()
    return [[labels[-1] if x else labels[0] for x in row] for row in T]


@functools.cache
def _oracle(name: str) -> tuple[float, list[float]]:
    """The value and derivative at ``(P, _target(name))`` from the 50-digit oracle."""
    p, t = np.array(P), np.array(_target(name))
    return float(oracle.value(name, p, t)), [float(x) for x in oracle.deriv(name, p, t)]


def _check_reference(name: str, v: np.ndarray, g: np.ndarray, rtol: float = 1e-14,
                     atol: float = 1e-15) -> None:
    # atol: a few ulps of the largest element, for elements that cancel to ~0 (cosine's last)
    want_v, want_g = REFERENCE.get(name) or _oracle(name)
    assert v.shape == () and g.shape == (2, 3)
    np.testing.assert_allclose(v, want_v, rtol=rtol, atol=atol)
    np.testing.assert_allclose(g.reshape(-1), want_g, rtol=rtol, atol=atol)


def test_reference_table_is_the_mpmath_oracle() -> None:
    assert set(REFERENCE) <= set(LOSSES)
    assert {name: _oracle(name) for name in REFERENCE} == REFERENCE


# --------------------------------------------------------------------------------------------
# Every loss on every backend
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_value_and_derivative_on_every_backend(name: str, xp: Any, path: str) -> None:
    p, t = xp.asarray(P), xp.asarray(_target(name))
    v, g = torchlean.value_and_deriv(name, p, t)
    for r in (v, g):
        assert aac.array_namespace(r) is aac.array_namespace(p)  # the input's library
        assert xp.dtype_name(r) == "float64"
    entry = LOSSES[name]
    assert xp.to_numpy(entry.value(p, t)).shape == ()
    _check_reference(name, xp.to_numpy(v), xp.to_numpy(g))
    # the separate value / derivative specs agree with value_and_deriv
    _check_reference(name, xp.to_numpy(entry.value(p, t)), xp.to_numpy(entry.deriv(p, t)))


@pytest.mark.parametrize("api_version", ["2023.12", "2024.12", "2025.12"])
def test_strict_standard_without_data_dependent_shapes(api_version: str) -> None:
    # the strictest settings: an older standard, no boolean indexing, no data-dependent shapes
    # (what lazy and compiled libraries such as JAX need)
    xs = pytest.importorskip("array_api_strict")
    with xs.ArrayAPIStrictFlags(api_version=api_version, boolean_indexing=False,
                                data_dependent_shapes=False):
        for name in ALL:
            v, g = torchlean.value_and_deriv(name, xs.asarray(P), xs.asarray(_target(name)))
            _check_reference(name, np.from_dlpack(v), np.from_dlpack(g))


def test_jax() -> None:
    jax = pytest.importorskip("jax", reason="JAX is not installed (optional, not in the test "
                                            "extra)")
    jnp = jax.numpy
    x64 = bool(jax.config.read("jax_enable_x64"))
    for name in ALL:
        p, t = jnp.asarray(P), jnp.asarray(_target(name))
        v, g = torchlean.value_and_deriv(name, p, t)
        assert aac.is_jax_array(v) and aac.is_jax_array(g)
        assert v.dtype == p.dtype and g.dtype == p.dtype
        # without x64 JAX has float32 only, and the context evaluates in it
        tol = 1e-14 if x64 else 1e-5
        _check_reference(name, np.asarray(v), np.asarray(g), rtol=tol, atol=tol)


# --------------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target_dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ALL)
def test_float32_stays_float32(name: str, xp: Any, target_dtype: str, path: str) -> None:
    p = xp.asarray(P, dtype="float32")
    t = xp.asarray(_target(name), dtype=target_dtype)
    v, g = torchlean.value_and_deriv(name, p, t)
    assert xp.dtype_name(v) == "float32" and xp.dtype_name(g) == "float32"
    # origin: the float64 spec on the same (exactly widened) float32 inputs, rounded once;
    # a chunked or reordered sum may move the float64 result across a float32 tie
    p64 = np.asarray(P, dtype=np.float32).astype(np.float64)
    t64 = np.asarray(_target(name), dtype=target_dtype).astype(np.float64)
    want_v, want_g = torchlean.value_and_deriv(name, p64, t64)
    np.testing.assert_allclose(xp.to_numpy(v), np.float32(want_v), rtol=2**-23, atol=1e-45)
    np.testing.assert_allclose(xp.to_numpy(g), want_g.astype(np.float32), rtol=2**-23,
                               atol=1e-45)


@pytest.mark.parametrize("target_dtype", ["int64", "int32", "bool"])
@pytest.mark.parametrize("name", ["mse", "cross_entropy", "poisson", "binary_cross_entropy"])
def test_integer_and_bool_targets_are_promoted(name: str, xp: Any, target_dtype: str,
                                               path: str) -> None:
    p = xp.asarray(P, dtype="float32")
    v, g = torchlean.value_and_deriv(name, p, xp.asarray(T, dtype=target_dtype))
    w, h = torchlean.value_and_deriv(name, p, xp.asarray(T, dtype="float32"))
    assert xp.dtype_name(v) == "float32" and xp.dtype_name(g) == "float32"
    np.testing.assert_array_equal(xp.to_numpy(v), xp.to_numpy(w))
    np.testing.assert_array_equal(xp.to_numpy(g), xp.to_numpy(h))


# --------------------------------------------------------------------------------------------
# devices
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_array_api_strict_results_stay_on_the_input_device(name: str) -> None:
    # array-api-strict simulates devices: a result on the wrong one is an error in its own ops
    xs = pytest.importorskip("array_api_strict")
    dev = xs.Device("device1")
    p, t = xs.asarray(P, device=dev), xs.asarray(_target(name), device=dev)
    v, g = torchlean.value_and_deriv(name, p, t)
    assert v.device == dev and g.device == dev
    _check_reference(name, np.asarray(xs.asarray(v, device=xs.Device())),
                     np.asarray(xs.asarray(g, device=xs.Device())))


@pytest.mark.parametrize("device", ["cpu", "cuda", "meta"])
@pytest.mark.parametrize("name", ALL)
def test_torch_results_stay_on_the_input_device(name: str, device: str, path: str) -> None:
    torch = pytest.importorskip("torch")
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    # meta tensors carry no data, so the data-dependent domain checks are switched off there
    params = ({"check_domain": False}
              if device == "meta" and LOSSES[name].has_domain_check else {})
    p = torch.tensor(P, dtype=torch.float32, device=device)
    t = torch.tensor(_target(name), dtype=torch.float32, device=device)
    v, g = torchlean.value_and_deriv(name, p, t, **params)
    assert v.device == p.device and g.device == p.device
    assert v.dtype == torch.float32 and g.dtype == torch.float32
    if device != "meta":
        # float32 inputs differ from the reference's by up to 2**-24 relative
        _check_reference(name, v.double().cpu().numpy(), g.double().cpu().numpy(), rtol=1e-6,
                         atol=1e-7)


@pytest.mark.parametrize("library", ["array_api_strict", "torch"])
@pytest.mark.parametrize("which", ["target_elsewhere", "predicted_elsewhere"])
def test_device_mismatch_raises_backend_error(library: str, which: str) -> None:
    if library == "torch":
        torch = pytest.importorskip("torch")
        home, away = torch.tensor(P), torch.tensor(T, device="meta")
        if which == "predicted_elsewhere":
            home, away = torch.tensor(P, device="meta"), torch.tensor(T)
    else:
        xs = pytest.importorskip("array_api_strict")
        home, away = xs.asarray(P), xs.asarray(T, device=xs.Device("device1"))
        if which == "predicted_elsewhere":
            home, away = xs.asarray(P, device=xs.Device("device1")), xs.asarray(T)
    with pytest.raises(BackendError, match=r"`target` must be on the device of `predicted` "
                                           r"\(.+\); got .+"):
        torchlean.value_and_deriv("mse", home, away)


def test_mixed_libraries_raise_backend_error() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(BackendError, match="must come from one array library"):
        torchlean.value_and_deriv("mse", np.asarray(P), torch.tensor(T))
