"""Fuzzing every public function with hostile inputs.

The contract each call is held to: it either returns what the docs promise for that input (NaN
in gives NaN out; finite in-domain input gives a finite result of the prediction's library, dtype
and shape) or raises one of the package's own errors (:class:`torchlean.TorchleanError`, with
the offending argument named in backticks). No other exception, no warning, and no input is ever
modified.

The default settings keep this file to a few seconds; the ``slow`` variant runs many more
examples of the same properties.
"""

from __future__ import annotations

import copy
import inspect
import math
import pickle
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_functions import NAMES, SEED_FUNCTIONS, seed_pair

import torchlean
from torchlean.errors import DomainError, TorchleanError
from torchlean.spec.layers import activation as A
from torchlean.spec.layers import loss as L

torch = pytest.importorskip("torch")

FAST = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(FAST, max_examples=400)

# --------------------------------------------------------------------------------------------
# The functions under test
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """One public callable and what its result must look like."""

    name: str
    fn: Callable[..., Any]
    #: "pair" (predicted, target), "single" (x) or "both" (value_and_deriv, a pair of results)
    arity: str
    #: "value" (0-d), "deriv" (shape of the first input) or "both"
    result: str
    #: how far a NaN reaches in the derivative: the declaration's kind ("elementwise",
    #: "slice", "whole"), or "sum" / "softmax" for the helpers
    kind: str
    params: tuple[str, ...] = ()
    #: the declaration of the loss, for its checked target domain
    loss: str | None = None
    #: the seed's scalar BCE: Python numbers in give a Python float out
    scalar: bool = False


def _loss_of(fn_name: str) -> str:
    """The registered loss behind a seed function (``<name>[_tensor][_deriv]_spec``)."""
    return fn_name.removesuffix("_spec").removesuffix("_deriv").removesuffix("_tensor")


def _targets() -> list[Target]:
    out: list[Target] = []
    tensor_forms = {f for n in NAMES if (pair := seed_pair(n)) for f in pair}
    for name in SEED_FUNCTIONS:
        fn = getattr(L, name)
        loss = _loss_of(name)
        params = tuple(p for p in inspect.signature(fn).parameters
                       if p in (*torchlean.LOSSES[loss].parameters, "check_domain"))
        out.append(Target(name, fn, "pair", "deriv" if "_deriv_" in name else "value",
                          torchlean.LOSSES[loss].kind, params, loss,
                          scalar=fn not in tensor_forms))
    out.append(Target("to_scalar_spec", L.to_scalar_spec, "single", "value", "sum"))
    out.append(Target("softmax_spec", A.softmax_spec, "single", "deriv", "softmax"))
    out.append(Target("log_softmax_spec", A.log_softmax_spec, "single", "deriv", "softmax"))
    for name in NAMES:
        entry = torchlean.LOSSES[name]
        params = (*entry.params, *(("check_domain",) if entry.has_domain_check else ()))
        out.append(Target(f"value_and_deriv[{name}]",
                          lambda p, t, /, _n=name, **kw: torchlean.value_and_deriv(_n, p, t, **kw),
                          "pair", "both", entry.kind, params, name))
    for lt in L.LossType:
        prm = tuple(L.Loss(lt).params)
        for method in ("value", "deriv", "value_and_deriv"):
            out.append(Target(f"Loss.{lt.value}.{method}", _loss_method(lt, method), "pair",
                              {"value": "value", "deriv": "deriv"}.get(method, "both"),
                              torchlean.LOSSES[lt.value].kind, prm, lt.value))
    return out


def _loss_method(lt: L.LossType, method: str) -> Callable[..., Any]:
    def call(p: Any, t: Any, /, **kw: Any) -> Any:
        kw.pop("check_domain", None)
        cfg = L.Loss(lt, **kw)
        return getattr(cfg, method)(p, t)

    return call


TARGETS = _targets()
PUBLIC_SPECS = [n for n in L.__all__ if n.endswith("_spec")]
# the seed functions' rule (tests/spec_functions.py) finds them all
assert len(SEED_FUNCTIONS) == 22
assert all(_loss_of(n) in torchlean.LOSSES for n in SEED_FUNCTIONS)


def test_every_public_function_is_fuzzed() -> None:
    names = {t.name for t in TARGETS}
    # The 22 loss specs and derivatives, to_scalar, the two softmaxes, the registry, Loss.
    assert len([n for n in PUBLIC_SPECS if n != "to_scalar_spec"]) == 22
    assert set(PUBLIC_SPECS) <= names
    assert {f"value_and_deriv[{n}]" for n in NAMES} <= names
    assert len([n for n in names if n.startswith("Loss.")]) == 3 * len(L.LossType)


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

#: Floats that break naive code: signed zeros, subnormals, the overflow edge, clamp edges.
SPECIAL = [math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, -5e-324, 1e-310,
           2.2250738585072014e-308, 1e308, -1e308, 1.7976931348623157e308, 1e-6, 1 - 1e-6,
           1.0, -1.0, 0.5, 2.0, 1e4, -1e4, 710.0, -745.0, 89.5, 1e-300,
           # the largest float32 and float16 (their squares overflow the narrow dtype)
           3.4028234663852886e38, -3.4028234663852886e38, 65504.0, -65504.0]

_floats = st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=True, allow_infinity=True),
                    st.floats(-3, 3))
_FLOAT_DTYPES = ("float64", "float32", "float16")
_OTHER_DTYPES = ("int64", "int8", "uint8", "bool", "complex128", "object", "str")
_LAYOUTS = ("plain", "readonly", "strided", "fortran", "list", "scalar", "torch",
            "torch_strided")
_shapes = st.lists(st.integers(0, 3), min_size=0, max_size=3).map(tuple)


def _build(values: list[Any], shape: tuple[int, ...], dtype: str) -> np.ndarray:
    size = math.prod(shape)
    vals = (values * (size // max(len(values), 1) + 1))[:size] if values else [0.0] * size
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dtype in _FLOAT_DTYPES:
            a = np.asarray(vals, dtype=np.float64).astype(dtype)
        elif dtype == "bool":
            a = np.asarray([v != 0 and v == v for v in vals], dtype=bool)
        elif dtype in ("int64", "int8", "uint8"):
            a = np.asarray([int(v) % 7 - (3 if dtype != "uint8" else 0) if math.isfinite(v)
                            else 0 for v in vals]).astype(dtype)
        elif dtype == "complex128":
            a = np.asarray(vals, dtype=np.float64) * (1 + 1j)
        elif dtype == "str":
            a = np.asarray([repr(v) for v in vals])
        else:
            a = np.empty(size, dtype=object)
            a[:] = [float(v) for v in vals]
    return a.reshape(shape)


def _layout(a: np.ndarray, layout: str) -> Any:
    """The same values in another container or memory layout."""
    if layout == "readonly":
        a = a.copy()
        a.flags.writeable = False
        return a
    if layout == "strided" and a.ndim:
        big = np.repeat(a, 2, axis=-1)
        return big[..., ::2]
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "list" and a.dtype != object and a.dtype.kind != "U":
        return a.tolist()
    if layout == "scalar" and a.ndim == 0:
        return a[()] if a.dtype.kind in "fc" else a.item()
    if layout.startswith("torch") and a.dtype.kind in "fiubc" and a.dtype != np.uint16:
        tt = torch.from_numpy(a.copy())
        if layout == "torch_strided" and a.ndim:
            tt = torch.repeat_interleave(tt, 2, dim=-1)[..., ::2]
        return tt
    return a


@st.composite
def arrays(draw: st.DrawFn, shape: tuple[int, ...] | None = None) -> Any:
    shape = draw(_shapes) if shape is None else shape
    dtype = draw(st.sampled_from(_FLOAT_DTYPES) if draw(st.integers(0, 3))
                 else st.sampled_from(_OTHER_DTYPES))
    values = draw(st.lists(_floats, min_size=1, max_size=6))
    return _layout(_build(values, shape, dtype), draw(st.sampled_from(_LAYOUTS)))


_junk = st.sampled_from([None, "abc", b"xy", object(), {}, {1: 2.0}, [None], ["a"],
                         [[1.0], [1.0, 2.0]], [1.0, [2.0]], 10**400, [10**400], 1j, True, 3,
                         2.5, [], ()])


@st.composite
def pairs(draw: st.DrawFn) -> tuple[Any, Any]:
    """Mostly same-shape pairs (so calls get past the checks), some mismatched or junk."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.one_of(_junk, arrays())), draw(st.one_of(_junk, arrays()))
    if kind == 1:
        return draw(arrays()), draw(arrays())  # shapes, ranks and libraries may all differ
    shape = draw(_shapes)
    return draw(arrays(shape)), draw(arrays(shape))


_param_values = {
    "delta": st.one_of(st.sampled_from([1.0, 0.0, 0.5, 1e300, 5e-324]),
                       st.sampled_from([-1.0, math.nan, math.inf, "1", None, True, 1j])),
    "epsilon": st.one_of(st.sampled_from([1e-6, 0.25, 1e-300, 0.4999]),
                         st.sampled_from([0.0, 0.5, -1e-6, math.nan, "x", None, False])),
    "check_domain": st.sampled_from([True, False]),
}


#: any other parameter: numbers around the usual scales, the edges, and non-numbers (its
#: validator decides; a call either refuses with a ParameterError or honours the contract)
_any_param = st.sampled_from([1.0, 0.5, 2.0, 0.0, -1.0, 1e300, 5e-324, math.nan, math.inf, "1",
                              None, True])


@st.composite
def params(draw: st.DrawFn, names: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        if draw(st.integers(0, 2)):
            out[name] = draw(_param_values.get(name, _any_param))
    return out


# --------------------------------------------------------------------------------------------
# The contract
# --------------------------------------------------------------------------------------------


def _snapshot(x: Any) -> Any:
    """Bytes, dtype, layout and writeability: anything a careless call could change."""
    if isinstance(x, np.ndarray):
        if x.dtype == object:
            return ("obj", x.shape, x.strides, pickle.dumps(x.tolist()))
        return ("np", x.dtype.str, x.shape, x.strides, x.flags.writeable, x.tobytes())
    if torch.is_tensor(x):
        return ("torch", str(x.dtype), tuple(x.shape), x.stride(),
                x.detach().contiguous().numpy().tobytes(), x.requires_grad)
    try:
        return ("py", pickle.dumps(x))
    except (TypeError, pickle.PicklingError):
        return ("id", id(x), copy.copy(x) is x)


def _as_numpy(x: Any) -> np.ndarray | None:
    """The numeric values of an input, or None when it is not a real numeric array."""
    if torch.is_tensor(x):
        x = x.numpy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = np.asarray(x)
    except (ValueError, TypeError, OverflowError):
        return None
    if a.dtype.kind not in "fiub":
        return None
    return a.astype(np.float64)


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray | np.generic) or torch.is_tensor(x)


def _library(x: Any) -> str:
    return "torch" if torch.is_tensor(x) else "numpy"


def _dtype(x: Any) -> str:
    if torch.is_tensor(x):
        return str(x.dtype).removeprefix("torch.")
    return str(np.asarray(x).dtype)


def _check_result(target: Target, out: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
    p = args[0]
    t = args[-1]
    pa, ta = _as_numpy(p), _as_numpy(t)
    assert pa is not None and ta is not None, "a call on non-numeric input returned"
    # Results follow `predicted`; a list or Python number takes the library of the other input.
    lib = _library(p if _is_array(p) or not _is_array(t) else t)
    dtype = _dtype(p) if _is_array(p) else None
    if target.arity == "pair" and target.scalar and all(
        isinstance(v, int | float) for v in (p, t)
    ):
        assert type(out) is float, type(out)
        results = [("value", np.asarray(out))]
    elif target.result == "both":
        assert isinstance(out, tuple) and len(out) == 2
        results = [("value", out[0]), ("deriv", out[1])]
    else:
        results = [(target.result, out)]
    for kind, r in results:
        if not isinstance(r, float):
            assert _library(r) == lib, (type(r), lib)
            if dtype is not None:
                assert _dtype(r) == dtype, (_dtype(r), dtype)
        r_np = np.asarray(r.numpy() if torch.is_tensor(r) else r, dtype=np.float64)
        expect_shape = () if kind == "value" else pa.shape
        assert r_np.shape == expect_shape, (r_np.shape, expect_shape)
        _check_nan(target, kind, r_np, pa, ta)
        if _in_domain(target, pa, ta, p, kw) and r_np.size:
            assert np.all(np.isfinite(r_np)), f"finite in-domain input gave {r_np!r}"


def _check_nan(target: Target, kind: str, r: np.ndarray, pa: np.ndarray,
               ta: np.ndarray) -> None:
    """NaN in gives NaN out: the value, and every derivative element the NaN reaches."""
    nan_in = np.isnan(pa) | np.isnan(ta)
    if not nan_in.any():
        return
    if kind == "value":
        assert np.isnan(r), f"NaN input gave the value {r!r}"
        return
    if target.kind == "elementwise":
        reach = nan_in
    elif target.kind in ("slice", "softmax"):
        reach = np.broadcast_to(nan_in.any(axis=-1, keepdims=True), nan_in.shape)
    else:  # cosine similarity: the norms and the dot product mix every element
        reach = np.ones_like(nan_in)
    assert np.all(np.isnan(r[reach])), f"NaN input gave the derivative {r!r}"


def _in_domain(target: Target, pa: np.ndarray, ta: np.ndarray, p: Any,
               kw: dict[str, Any]) -> bool:
    """Finite, moderate inputs of float32/float64 predictions: the result must be finite."""
    if _dtype(p) not in ("float32", "float64") and not isinstance(p, float | list):
        return False
    with np.errstate(all="ignore"):
        if not (np.all(np.abs(pa) <= 30) and np.all(np.abs(ta) <= 30)):
            return False
    if _dtype(p) == "float32" and kw.get("epsilon", 1.0) < 1e-30:
        # derivatives reach |t| / epsilon (cosine below the clamp, cross-entropy at p = eps):
        # beyond float32's range, where inf is the correct rounding
        return False
    if _zero_vector_without_floor(target, pa, ta, kw):
        return False
    return not _outside_domain(target, ta)


def _zero_vector_without_floor(target: Target, pa: np.ndarray, ta: np.ndarray,
                               kw: dict[str, Any]) -> bool:
    """A slice of zeros under a norm floor ``epsilon`` of 0: it has no direction, and
    cosine_distance documents NaN there (as optax's own)."""
    if target.loss is None or target.kind != "slice" or not pa.ndim:
        return False
    decl = torchlean.LOSSES[target.loss]
    if "epsilon" not in decl.parameters or kw.get("epsilon", decl.params["epsilon"]) != 0:
        return False
    return bool(np.any(np.all(pa == 0, axis=-1)) or np.any(np.all(ta == 0, axis=-1)))


def _outside_domain(target: Target, ta: np.ndarray) -> bool:
    """Whether a target element lies outside the loss's checked domain (NaN lies inside)."""
    if target.loss is None:
        return False
    dom = torchlean.LOSSES[target.loss].domain
    with np.errstate(all="ignore"):
        low = ta < dom.target_lo if dom.target_lo is not None else np.zeros(ta.shape, bool)
        high = ta > dom.target_hi if dom.target_hi is not None else np.zeros(ta.shape, bool)
    return bool(np.any(low | high))


def _violates_domain(target: Target, ta: np.ndarray | None, kw: dict[str, Any]) -> bool:
    if ta is None or not kw.get("check_domain", True):
        return False
    return _outside_domain(target, ta)


def _call(target: Target, p: Any, t: Any, kw: dict[str, Any]) -> None:
    args = (p,) if target.arity == "single" else (p, t)
    before = [_snapshot(a) for a in args]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            out = target.fn(*args, **kw)
        except TorchleanError as exc:
            assert "`" in str(exc), f"error names no argument: {exc}"
            err: TorchleanError | None = exc
        else:
            err = None
            _check_result(target, out, args, kw)
    after = [_snapshot(a) for a in args]
    assert before == after, "an input was modified"
    if err is None and target.arity == "pair":
        # A target outside the checked domain must never come back as a number.
        assert not _violates_domain(target, _as_numpy(t), kw), "domain check skipped"
    if isinstance(err, DomainError):
        assert _violates_domain(target, _as_numpy(t), kw), f"spurious DomainError: {err}"


def _fuzz(target: Target, data: st.DataObject) -> None:
    p, t = data.draw(pairs(), label="inputs")
    kw = data.draw(params(target.params), label="params")
    _call(target, p, t, kw)


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
@FAST
@given(data=st.data())
def test_fuzz(target: Target, data: st.DataObject) -> None:
    _fuzz(target, data)


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
@SLOW
@given(data=st.data())
def test_fuzz_many(target: Target, data: st.DataObject) -> None:
    _fuzz(target, data)


# --------------------------------------------------------------------------------------------
# The registry and Loss reject bad names and configurations with their own errors
# --------------------------------------------------------------------------------------------


@FAST
@given(name=st.one_of(st.text(max_size=8), st.none(), st.integers(), st.sampled_from(
    [*torchlean.LOSSES, "MSE", "mse ", "huber_loss"])), kw=st.dictionaries(
    st.sampled_from(["delta", "epsilon", "check_domain", "beta", "reduction"]),
    st.sampled_from([1.0, 0.1, -1.0, None, "x"]), max_size=2))
def test_registry_names_and_params(name: Any, kw: dict[str, Any]) -> None:
    p = np.array([0.25, 0.5])
    t = np.array([0.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            v, g = torchlean.value_and_deriv(name, p, t, **kw)
        except TorchleanError as exc:
            assert "`" in str(exc)
            return
    assert name in torchlean.LOSSES
    assert v.shape == () and g.shape == (2,)


@FAST
@given(loss_type=st.one_of(st.sampled_from(list(L.LossType)),
                           st.sampled_from(["mse", "pseudo_huber", "nope", None, 3, L.LossType])),
       delta=st.sampled_from([1.0, 0.0, -1.0, math.nan, math.inf, "1", None]),
       epsilon=st.sampled_from([1e-6, 0.0, 0.5, 0.3, math.nan, None, True]))
def test_loss_configuration(loss_type: Any, delta: Any, epsilon: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            cfg = L.Loss(loss_type, delta=delta, epsilon=epsilon)
        except TorchleanError as exc:
            assert "`" in str(exc)
            return
    # a LossType, or the name of a registered loss, whose parameters pass its validators
    assert isinstance(cfg.loss_type, L.LossType) or cfg.loss_type in torchlean.LOSSES
    cfg.declaration.checked_params(cfg.params)


# --------------------------------------------------------------------------------------------
# Failures the fuzzer found, kept as named regression cases
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [A.softmax_spec, A.log_softmax_spec], ids=["softmax",
                                                                          "log_softmax"])
@pytest.mark.parametrize("shape", [(0,), (2, 0), (3, 1, 0)], ids=["0", "2x0", "3x1x0"])
def test_softmax_of_empty_slices(fn: Callable[..., Any], shape: tuple[int, ...]) -> None:
    # Found: xp.max over an empty last axis raised NumPy's ValueError. An empty slice has no
    # elements to normalise, so the result is the empty input itself.
    out = fn(np.zeros(shape))
    assert out.shape == shape and out.dtype == np.float64


@pytest.mark.parametrize("fn", [L.poisson_spec, L.poisson_deriv_spec],
                         ids=["value", "deriv"])
def test_poisson_domain_error_message(fn: Callable[..., Any]) -> None:
    # Found: the message of a negative count formatted the open upper end ('inf' as a string)
    # with `:g`, which raised ValueError instead of the DomainError.
    with pytest.raises(DomainError, match=r"`target` must lie in \[0, inf\].*-2"):
        fn(np.array([1.0, 0.5]), np.array([1.0, -2.0]))


@pytest.mark.parametrize("bad", [[None], [[1.0], [2.0, 3.0]], ["a"]], ids=["none", "ragged", "str"])
def test_sequence_beside_a_tensor(bad: list[Any]) -> None:
    # Found: torch.asarray raises RuntimeError (not TypeError) for [None]; it now surfaces as the
    # package's ShapeError naming the argument.
    with pytest.raises(torchlean.ShapeError, match="`target`"):
        L.mse_spec(torch.zeros(1, dtype=torch.float64), bad)


@pytest.mark.parametrize("fn", [L.binary_cross_entropy_spec, L.binary_cross_entropy_deriv_spec],
                         ids=["value", "deriv"])
def test_python_target_keeps_float64_beside_a_tensor(fn: Callable[..., Any]) -> None:
    # Found: a Python float beside a torch tensor was converted at torch's default float32, so
    # the target -1e-100 became -0.0 and slipped through the [0, 1] domain check.
    with pytest.raises(DomainError, match="`target`"):
        fn(torch.tensor(0.5, dtype=torch.float64), -1e-100)
    # The same rounding changed results: d = 0 - 1e-100 must not become 0 (hand derivation:
    # the MSE derivative of one element is 2 d = -2e-100).
    g = L.mse_deriv_spec(torch.zeros(1, dtype=torch.float64), [1e-100])
    assert g.dtype == torch.float64 and g.item() == -2e-100


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("name", ["mse", "poisson", "hinge"])
def test_fused_value_overflowing_a_narrow_dtype(name: str, dtype: str) -> None:
    # Found: the fused kernel's float64 -> float32 cast of a value beyond float32's range (here
    # d**2 = 4 * 3.4e38**2) raised NumPy's overflow RuntimeWarning; the result is inf, silently,
    # as the spec gives.
    big = float(np.finfo(dtype).max)
    p = np.array([big], dtype=dtype)
    t = np.array([0.0 if name == "poisson" else -big], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v, _ = torchlean.value_and_deriv(name, p, t)
    assert v.dtype == np.dtype(dtype) and np.isposinf(v)
    assert np.isposinf(torchlean.LOSSES[name].value(p, t))


@pytest.mark.parametrize(("p", "t"), [([1e-200], [1e-200]), ([1e-200, 3.0], [1e-200, 1e-300])],
                         ids=["both-tiny", "tiny-target"])
def test_fused_cosine_with_a_tiny_epsilon(p: list[float], t: list[float]) -> None:
    # Found: with epsilon = 1e-300 the product of the clamped norms underflows to 0 and the
    # fused kernel's Python division raised ZeroDivisionError; it now defers to the spec.
    pa, ta = np.array(p), np.array(t)
    v, g = torchlean.value_and_deriv("cosine_similarity", pa, ta, epsilon=1e-300)
    entry = torchlean.LOSSES["cosine_similarity"]
    assert float(v) == float(entry.value(pa, ta, epsilon=1e-300))
    np.testing.assert_array_equal(g, entry.deriv(pa, ta, epsilon=1e-300))


@pytest.mark.parametrize(("p", "t"), [([1e-200], [1e-200]), ([1e-200, 3.0], [1e-200, 1e-300])],
                         ids=["both-tiny", "tiny-target"])
def test_fused_torch_cosine_with_a_tiny_epsilon(p: list[float], t: list[float]) -> None:
    # Found: the same ZeroDivisionError in the fused PyTorch path.
    pa, ta = torch.tensor(p, dtype=torch.float64), torch.tensor(t, dtype=torch.float64)
    v, g = torchlean.value_and_deriv("cosine_similarity", pa, ta, epsilon=1e-300)
    entry = torchlean.LOSSES["cosine_similarity"]
    assert float(v) == float(entry.value(pa, ta, epsilon=1e-300))
    assert torch.equal(g, entry.deriv(pa, ta, epsilon=1e-300))
