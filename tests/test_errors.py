"""Every error path: the package's own exception class (a ValueError or TypeError as documented,
and a TorchleanError), with a message naming the argument, what was expected and what came."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from spec_functions import NAMES, SPECS

import torchlean
from torchlean.errors import (
    BackendError,
    DomainError,
    DTypeError,
    ParameterError,
    ShapeError,
    TorchleanError,
)
from torchlean.spec.layers import loss as L
from torchlean.spec.layers.activation import log_softmax_spec, softmax_spec

#: the built-in base every class documents
BASE = {ShapeError: ValueError, ParameterError: ValueError, DomainError: ValueError,
        DTypeError: TypeError, BackendError: TypeError}


def check_raises(exc: type[TorchleanError], call: Callable[[], Any], *fragments: str) -> str:
    """``call()`` raises exactly ``exc`` (a TorchleanError and its documented built-in base),
    and the message holds every fragment."""
    with pytest.raises(exc) as info:
        call()
    err = info.value
    assert type(err) is exc
    assert isinstance(err, TorchleanError) and isinstance(err, BASE[exc])
    msg = str(err)
    for fragment in fragments:
        assert fragment in msg, (fragment, msg)
    return msg


def _first_name(name: str) -> str:
    return f"`{torchlean.LOSSES[name].arg_names[0]}`"


def _second_name(name: str) -> str:
    return f"`{torchlean.LOSSES[name].arg_names[1]}`"


def _valid(shape: tuple[int, ...]) -> np.ndarray:
    """Values inside every loss's domain (probabilities and counts alike)."""
    return np.full(shape, 0.5)


# --------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------

SHAPE_MISMATCHES = [
    pytest.param((3,), (4,), id="length"),
    pytest.param((3,), (1, 3), id="rank-would-broadcast"),
    pytest.param((2, 3), (3,), id="rank-lower"),
    pytest.param((2, 3), (1, 3), id="would-broadcast-rows"),
    pytest.param((2, 1), (2, 3), id="would-broadcast-cols"),
    pytest.param((2, 3), (3, 2), id="transposed"),
    pytest.param((0,), (1,), id="empty-vs-one"),
]


@pytest.mark.parametrize(("p_shape", "t_shape"), SHAPE_MISMATCHES)
@pytest.mark.parametrize("which", ["value", "deriv", "value_and_deriv"])
@pytest.mark.parametrize("name", NAMES)
def test_shape_mismatch(name: str, which: str, p_shape: tuple[int, ...],
                        t_shape: tuple[int, ...]) -> None:
    p, t = _valid(p_shape), _valid(t_shape)
    fn: Callable[[], Any] = {
        "value": lambda: SPECS[name][0](p, t),
        "deriv": lambda: SPECS[name][1](p, t),
        "value_and_deriv": lambda: torchlean.value_and_deriv(name, p, t),
    }[which]
    # names both arguments and quotes both shapes
    check_raises(ShapeError, fn, _second_name(name), _first_name(name), str(p_shape), str(t_shape),
                 "no broadcasting")


@pytest.mark.parametrize("fn", [L.cross_entropy_logits_spec, L.cross_entropy_logits_deriv_spec])
def test_cross_entropy_logits_of_a_0d_input(fn: Any) -> None:
    check_raises(ShapeError, lambda: fn(np.array(1.0), np.array(1.0)), "`logits`",
                 "at least one axis", "()")


@pytest.mark.parametrize("fn", [softmax_spec, log_softmax_spec])
def test_softmax_of_a_0d_input(fn: Any) -> None:
    check_raises(ShapeError, lambda: fn(np.array(1.0)), "`x`", "at least one axis", "()")


@pytest.mark.parametrize("fn", [L.binary_cross_entropy_spec, L.binary_cross_entropy_deriv_spec])
@pytest.mark.parametrize(("p", "t", "arg", "shape"), [
    pytest.param(np.full(3, 0.5), np.ones(3), "`predicted`", "(3,)", id="vectors"),
    pytest.param(np.full((1, 1), 0.5), np.ones((1, 1)), "`predicted`", "(1, 1)", id="1x1"),
    pytest.param(np.full((0,), 0.5), np.ones((0,)), "`predicted`", "(0,)", id="empty"),
])
def test_scalar_bce_refuses_non_scalars(fn: Any, p: Any, t: Any, arg: str, shape: str) -> None:
    check_raises(ShapeError, lambda: fn(p, t), arg, "scalar", shape,
                 "binary_cross_entropy_tensor_spec")


def test_scalar_bce_refuses_a_vector_target() -> None:
    # shapes are compared first: a scalar against a vector is a shape mismatch
    check_raises(ShapeError, lambda: L.binary_cross_entropy_spec(0.5, np.ones(2)), "`target`",
                 "()", "(2,)")


def test_ragged_sequence() -> None:
    check_raises(ShapeError, lambda: L.mse_spec([[1.0, 2.0], [3.0]], [[1.0, 2.0], [3.0]]),
                 "`predicted`", "rectangular")


# --------------------------------------------------------------------------------------------
# Hyper-parameters
# --------------------------------------------------------------------------------------------

BAD_DELTAS = [-1.0, -1e-300, -math.inf, math.nan, math.inf, "1", None, True, 1 + 0j, [1.0]]


@pytest.mark.parametrize("delta", BAD_DELTAS, ids=repr)
@pytest.mark.parametrize("call", [
    pytest.param(lambda d: L.huber_spec(np.zeros(2), np.zeros(2), delta=d), id="huber_spec"),
    pytest.param(lambda d: L.huber_deriv_spec(np.zeros(2), np.zeros(2), delta=d),
                 id="huber_deriv_spec"),
    pytest.param(lambda d: torchlean.value_and_deriv("huber", np.zeros(2), np.zeros(2), delta=d),
                 id="value_and_deriv"),
    pytest.param(lambda d: L.Loss.huber(d), id="Loss.huber"),
    pytest.param(lambda d: L.Loss(L.LossType.HUBER, delta=d), id="Loss"),
])
def test_bad_delta(call: Any, delta: Any) -> None:
    check_raises(ParameterError, lambda: call(delta), "`delta`", ">= 0", repr(delta))


# Exact numbers whose float64 rounding would change the loss: checked as given AND as rounded.
EXACT_BAD = [
    pytest.param("delta", 10**400, "beyond the float64 range", id="delta-10**400"),
    pytest.param("delta", Fraction(-1, 10**400), "got Fraction(-1", id="delta-tiny-negative"),
    pytest.param("epsilon", Fraction(1, 10**400), "rounds to 0.0", id="epsilon-rounds-to-0"),
    pytest.param("epsilon", Fraction(1, 2) - Fraction(1, 10**30), "rounds to 0.5",
                 id="epsilon-rounds-to-0.5"),
]


@pytest.mark.parametrize(("arg", "value", "why"), EXACT_BAD)
def test_exact_parameters_checked_after_rounding(arg: str, value: Any, why: str) -> None:
    name = "huber" if arg == "delta" else "cross_entropy"
    p, t = np.full(2, 0.5), np.ones(2)
    check_raises(ParameterError, lambda: torchlean.value_and_deriv(name, p, t, **{arg: value}),
                 f"`{arg}`", why)
    with torchlean.kernels.disabled():
        check_raises(ParameterError, lambda: SPECS[name][0](p, t, **{arg: value}), f"`{arg}`",
                     why)


def test_exact_parameters_that_round_harmlessly() -> None:
    # Fraction(3, 2) is a float exactly; 1/3 rounds inside (0, 0.5): both are accepted as floats.
    p, t = np.array([0.25, 3.0]), np.zeros(2)
    assert L.huber_spec(p, t, delta=Fraction(3, 2)) == L.huber_spec(p, t, delta=1.5)
    q = np.full(2, 0.5)
    assert (L.cross_entropy_spec(q, np.ones(2), epsilon=Fraction(1, 3))
            == L.cross_entropy_spec(q, np.ones(2), epsilon=1 / 3))


BAD_EPSILONS = [0.0, -1e-6, 0.5, 0.7, 1.0, math.nan, math.inf, "1e-6", None, True, 1e-6 + 0j]

#: every spec function taking a probability clamp `epsilon`, with valid data for it
_EPS_CALLS = [
    *((fn, (np.full(2, 0.5), np.ones(2)))
      for name in ("cross_entropy", "binary_cross_entropy")
      for fn in SPECS[name][:2]),
    (L.binary_cross_entropy_spec, (0.5, 1.0)),
    (L.binary_cross_entropy_deriv_spec, (0.5, 1.0)),
]


@pytest.mark.parametrize("epsilon", BAD_EPSILONS, ids=repr)
@pytest.mark.parametrize(("fn", "args"),
                         [pytest.param(fn, args, id=fn.__name__) for fn, args in _EPS_CALLS])
def test_bad_epsilon(fn: Any, args: tuple[Any, Any], epsilon: Any) -> None:
    check_raises(ParameterError, lambda: fn(*args, epsilon=epsilon), "`epsilon`", "(0, 0.5)",
                 repr(epsilon))


#: cosine similarity's epsilon is a norm floor: any finite number > 0
BAD_NORM_FLOORS = [0.0, -1e-6, math.nan, math.inf, "1e-6", None, True, 1e-6 + 0j]


@pytest.mark.parametrize("epsilon", BAD_NORM_FLOORS, ids=repr)
@pytest.mark.parametrize("fn", [L.cosine_similarity_spec, L.cosine_similarity_deriv_spec],
                         ids=lambda f: f.__name__)
def test_bad_norm_floor(fn: Any, epsilon: Any) -> None:
    check_raises(ParameterError, lambda: fn(np.full(2, 0.5), np.ones(2), epsilon=epsilon),
                 "`epsilon`", "> 0", repr(epsilon))


@pytest.mark.parametrize("epsilon", [0.5, 0.7, 2.0, 1e100])
def test_any_positive_norm_floor(epsilon: float) -> None:
    # hand: ||p|| = ||t|| = 0.1 sqrt 2 lies below every floor here, so the loss is
    # 1 - (p . t) / eps**2 = 1 - 0.02 / eps**2
    p = t = np.full(2, 0.1)
    assert math.isclose(float(L.cosine_similarity_spec(p, t, epsilon=epsilon)),
                        1 - 0.02 / epsilon**2, rel_tol=1e-15)


@pytest.mark.parametrize("epsilon", [0.0, 0.5, math.nan, "x"], ids=repr)
@pytest.mark.parametrize("make", [
    pytest.param(L.Loss.cross_entropy, id="Loss.cross_entropy"),
    pytest.param(lambda e: L.Loss(L.LossType.MSE, epsilon=e), id="Loss-mse"),
    pytest.param(lambda e: torchlean.value_and_deriv("cross_entropy", np.full(2, 0.5),
                                                     np.ones(2), epsilon=e),
                 id="value_and_deriv"),
])
def test_bad_epsilon_in_a_loss_configuration(make: Any, epsilon: Any) -> None:
    check_raises(ParameterError, lambda: make(epsilon), "`epsilon`", repr(epsilon))


@pytest.mark.parametrize(("bad", "came"), [("msee", "'msee'"), ("", "''"), (3, "int"),
                                           (None, "NoneType"), (L.LossType, "EnumType")],
                         ids=["unknown-name", "empty", "int", "None", "the-enum-class"])
def test_loss_type_must_be_a_loss_type_or_a_registered_name(bad: Any, came: str) -> None:
    check_raises(ParameterError, lambda: L.Loss(bad), "`loss_type`", "LossType",
                 "registered loss", came)


def test_loss_type_may_name_a_registered_loss() -> None:
    assert L.Loss("mse").name == "mse" and L.Loss("pseudo_huber").name == "pseudo_huber"


# --------------------------------------------------------------------------------------------
# Dtypes
# --------------------------------------------------------------------------------------------

BAD_PREDICTED = [
    pytest.param("int64", id="int64"), pytest.param("int32", id="int32"),
    pytest.param("uint8", id="uint8"), pytest.param("bool", id="bool"),
    pytest.param("complex128", id="complex128"), pytest.param("complex64", id="complex64"),
]


@pytest.mark.parametrize("dtype", BAD_PREDICTED)
@pytest.mark.parametrize("name", NAMES)
def test_non_floating_predicted(name: str, dtype: str) -> None:
    p, t = np.ones((2, 2), dtype=dtype), np.ones((2, 2))
    for fn in (lambda: SPECS[name][0](p, t), lambda: SPECS[name][1](p, t),
               lambda: torchlean.value_and_deriv(name, p, t)):
        check_raises(DTypeError, fn, _first_name(name), "real floating-point", dtype)


@pytest.mark.parametrize("dtype", ["int64", "bool", "complex64"])
def test_non_floating_predicted_torch(dtype: str) -> None:
    torch = pytest.importorskip("torch")
    p = torch.ones(3, dtype=getattr(torch, dtype))
    t = torch.ones(3, dtype=torch.float64)
    check_raises(DTypeError, lambda: L.mse_spec(p, t), "`predicted`", dtype)
    check_raises(DTypeError, lambda: torchlean.value_and_deriv("mse", p, t), "`predicted`", dtype)


def test_non_floating_helpers() -> None:
    check_raises(DTypeError, lambda: softmax_spec(np.arange(3)), "`x`", "int64")
    check_raises(DTypeError, lambda: L.to_scalar_spec(np.ones(3, dtype=bool)), "`x`", "bool")


@pytest.mark.parametrize(("target", "exc", "came"), [
    pytest.param(np.ones(2, dtype=np.complex128), DTypeError, "complex128", id="complex-array"),
    pytest.param(np.array(["a", "b"]), DTypeError, "<U1", id="str-array"),
    pytest.param(np.array([None, None]), DTypeError, "object", id="object-array"),
    pytest.param("ab", BackendError, "str", id="python-str"),
    pytest.param(1 + 2j, BackendError, "complex", id="python-complex"),
    pytest.param({"a": 1}, BackendError, "dict", id="dict"),
])
@pytest.mark.parametrize("name", NAMES)
def test_bad_target(name: str, target: Any, exc: type[TorchleanError], came: str) -> None:
    p = np.full(2, 0.5)
    for fn in (lambda: SPECS[name][0](p, target), lambda: SPECS[name][1](p, target),
               lambda: torchlean.value_and_deriv(name, p, target)):
        check_raises(exc, fn, _second_name(name), came)


def test_complex_target_torch() -> None:
    torch = pytest.importorskip("torch")
    p = torch.ones(3, dtype=torch.float64)
    check_raises(DTypeError, lambda: L.mae_spec(p, torch.ones(3, dtype=torch.complex64)),
                 "`target`", "complex64")


# --------------------------------------------------------------------------------------------
# Libraries
# --------------------------------------------------------------------------------------------


def _mixed_pairs() -> list[Any]:
    torch = pytest.importorskip("torch")
    out = [
        pytest.param(np.ones(3), torch.ones(3, dtype=torch.float64), "numpy.ndarray",
                     "torch.Tensor", id="numpy-torch"),
        pytest.param(torch.ones(3, dtype=torch.float64), np.ones(3), "torch.Tensor",
                     "numpy.ndarray", id="torch-numpy"),
    ]
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover - dask is a test dependency
        return out
    out.append(pytest.param(da.ones(3), np.ones(3), "dask", "numpy.ndarray", id="dask-numpy"))
    return out


@pytest.mark.parametrize(("p", "t", "lib_p", "lib_t"), _mixed_pairs())
@pytest.mark.parametrize("name", NAMES)
def test_mixed_libraries(name: str, p: Any, t: Any, lib_p: str, lib_t: str) -> None:
    for fn in (lambda: SPECS[name][0](p, t), lambda: SPECS[name][1](p, t),
               lambda: torchlean.value_and_deriv(name, p, t)):
        check_raises(BackendError, fn, _first_name(name), _second_name(name), "one array library",
                     lib_p, lib_t)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("which", ["predicted", "target"])
def test_masked_arrays_and_matrices_are_refused(name: str, which: str) -> None:
    # A masked mse of [1, --, 3] against 0 summed 10 over 3 elements (3.33; the masked mean is
    # 5); np.matrix's `*` is a matrix product.
    plain = np.full((2, 2), 0.5)
    masked = np.ma.masked_array(plain, mask=[[False, True], [False, False]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # np.matrix's own notice
        matrix = np.asmatrix(plain)
    arg = _first_name(name) if which == "predicted" else _second_name(name)
    for odd, came in ((masked, "a masked array"), (matrix, "an np.matrix")):
        args = {"predicted": plain, "target": plain, which: odd}
        check_raises(BackendError,
                     lambda a=args: torchlean.value_and_deriv(name, a["predicted"], a["target"]),
                     arg, "must be a plain array", came)


def test_bad_ctx() -> None:
    check_raises(BackendError, lambda: L.mse_spec(np.ones(2), np.ones(2), ctx=3), "`ctx`", "int")


def test_unsupported_predicted_object() -> None:
    check_raises(BackendError, lambda: L.mse_spec({"a": 1.0}, np.ones(1)), "`predicted`", "dict")


# --------------------------------------------------------------------------------------------
# Domains: BCE targets in [0, 1], Poisson targets >= 0 (check_domain=False skips the check)
# --------------------------------------------------------------------------------------------

_BCE_FNS = [L.binary_cross_entropy_tensor_spec, L.binary_cross_entropy_tensor_deriv_spec]


@pytest.mark.parametrize("bad", [1.5, -0.5, 1.0 + 1e-12, -1e-300], ids=repr)
@pytest.mark.parametrize("fn", [*_BCE_FNS, L.binary_cross_entropy_spec,
                                L.binary_cross_entropy_deriv_spec], ids=lambda f: f.__name__)
def test_bce_target_outside_0_1(fn: Any, bad: float) -> None:
    scalar = "tensor" not in fn.__name__
    p, t = (0.5, bad) if scalar else (np.full(3, 0.5), np.array([0.0, bad, 1.0]))
    msg = check_raises(DomainError, lambda: fn(p, t), "`target`", "[0, 1]", repr(bad),
                       "check_domain=False")
    assert ("index ()" if scalar else "index (1,)") in msg
    # the switch skips the check: the formula runs on the given target
    out = fn(p, t, check_domain=False)
    assert np.all(np.isfinite(out))


def test_bce_target_domain_through_the_registry() -> None:
    p, t = np.full(3, 0.5), np.array([0.0, 2.0, 1.0])
    check_raises(DomainError, lambda: torchlean.value_and_deriv("binary_cross_entropy", p, t),
                 "`target`", "2.0")
    v, g = torchlean.value_and_deriv("binary_cross_entropy", p, t, check_domain=False)
    # -(y log q + (1 - y) log(1 - q)) at q = 1/2 is log 2 for every y: mean log 2
    np.testing.assert_allclose(v, math.log(2.0), rtol=1e-15)
    # (p - y) / (p (1 - p)) / 3 = (0.5 - y) * 4 / 3
    np.testing.assert_allclose(g, (0.5 - t) * 4 / 3, rtol=1e-15)


@pytest.mark.parametrize("fn", [L.poisson_spec, L.poisson_deriv_spec], ids=lambda f: f.__name__)
def test_negative_poisson_targets(fn: Any) -> None:
    x, t = np.zeros(3), np.array([1.0, -1.0, 2.0])
    check_raises(DomainError, lambda: fn(x, t), "`target`", "[0, inf]", "-1.0", "index (1,)",
                 "check_domain=False")
    # skipped: exp(0) - t * 0 = 1 per element; derivative (1 - t) / 3
    out = fn(x, t, check_domain=False)
    expected = 1.0 if fn is L.poisson_spec else (1.0 - t) / 3
    np.testing.assert_allclose(out, expected, rtol=1e-15)


def test_negative_poisson_targets_through_the_registry() -> None:
    x, t = np.zeros(2), np.array([-3.0, 1.0])
    check_raises(DomainError, lambda: torchlean.value_and_deriv("poisson", x, t), "`target`",
                 "-3.0")
    v, _ = torchlean.value_and_deriv("poisson", x, t, check_domain=False)
    assert v == 1.0  # exp(0) - t * 0 = 1 per element


def test_domain_errors_on_torch() -> None:
    torch = pytest.importorskip("torch")
    p = torch.full((3,), 0.5, dtype=torch.float64)
    check_raises(DomainError, lambda: L.binary_cross_entropy_tensor_spec(
        p, torch.tensor([0.0, 1.5, 1.0], dtype=torch.float64)), "`target`", "1.5")
    check_raises(DomainError, lambda: torchlean.value_and_deriv(
        "poisson", p, torch.tensor([1.0, -2.0, 0.0], dtype=torch.float64)), "`target`", "-2.0")


def test_domain_errors_on_dask_are_raised_when_computed() -> None:
    da = pytest.importorskip("dask.array")
    p = da.from_array(np.full(4, 0.5), chunks=2)
    t = da.from_array(np.array([0.0, 1.0, 0.5, 3.0]), chunks=2)
    v = L.binary_cross_entropy_tensor_spec(p, t)  # lazy: nothing is checked yet
    assert isinstance(v, da.Array)
    check_raises(DomainError, v.compute, "`target`", "[0, 1]", "3.0")
    counts = da.from_array(np.array([1.0, -1.0, 0.0, 2.0]), chunks=2)
    check_raises(DomainError, L.poisson_deriv_spec(p, counts).compute, "`target`", "-1.0")
    assert np.isfinite(L.poisson_spec(p, counts, check_domain=False).compute())


@pytest.mark.parametrize("name", [n for n in NAMES if torchlean.LOSSES[n].has_domain_check])
def test_nan_target_passes_the_domain_check(name: str) -> None:
    # NaN is not outside the domain; it propagates instead
    v = SPECS[name][0](np.full(2, 0.5), np.array([np.nan, 1.0]))
    assert math.isnan(float(v))


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["msee", "MSE", "", "binary_cross_entropy_tensor", 3, None],
                         ids=repr)
def test_unknown_loss_name(bad: Any) -> None:
    for fn in (lambda: torchlean.value_and_deriv(bad, np.ones(2), np.ones(2)),
               lambda: torchlean.get_loss(bad)):
        check_raises(ParameterError, fn, "`name`", "mse", "log_cosh", repr(bad))


@pytest.mark.parametrize(("name", "param"), [
    ("mse", "delta"), ("mae", "epsilon"), ("huber", "epsilon"), ("huber", "check_domain"),
    ("cross_entropy", "delta"), ("cosine_similarity", "check_domain"), ("poisson", "epsilon"),
    ("cross_entropy_logits", "epsilon"), ("log_cosh", "beta"), ("binary_cross_entropy", "delta"),
])
def test_unknown_parameter(name: str, param: str) -> None:
    p, t = np.full(2, 0.5), np.ones(2)
    check_raises(ParameterError, lambda: torchlean.value_and_deriv(name, p, t, **{param: 1.0}),
                 f"`{param}`", name, "expected one of", "ctx")


@pytest.mark.parametrize("name", NAMES)
def test_a_parameter_the_declaration_lacks(name: str) -> None:
    decl = torchlean.LOSSES[name]
    param = "not_a_parameter" if decl.has_domain_check else "check_domain"
    p, t = np.full(2, 0.5), np.ones(2)
    check_raises(ParameterError, lambda: torchlean.value_and_deriv(name, p, t, **{param: 1.0}),
                 f"`{param}`", name, "expected one of", "ctx")


# --------------------------------------------------------------------------------------------
# Malformed declarations are refused when declared
# --------------------------------------------------------------------------------------------


def _value_term(c: Any, p: Any, t: Any) -> Any:
    d = p - t
    return d * d


def _deriv_term(c: Any, p: Any, t: Any) -> Any:
    return 2 * (p - t)


def test_a_loss_without_a_derivative_is_not_registered() -> None:
    pending = torchlean.define_loss("errors_test_no_derivative")(_value_term)
    assert "errors_test_no_derivative" not in torchlean.LOSSES
    p, t = np.ones(2), np.zeros(2)
    check_raises(ParameterError, lambda: pending.value(p, t), "errors_test_no_derivative",
                 "no derivative", "@errors_test_no_derivative.deriv")
    check_raises(ParameterError, lambda: pending(p, t), "errors_test_no_derivative",
                 "no derivative")
    check_raises(ParameterError,
                 lambda: torchlean.value_and_deriv("errors_test_no_derivative", p, t), "`name`")


def test_a_declaration_without_a_derivative_term() -> None:
    check_raises(ParameterError,
                 lambda: torchlean.LossDeclaration("errors_test_none", _value_term, None),
                 "errors_test_none", "no derivative")


DECLARATIONS = [
    pytest.param({"reduction": "median"}, ("`reduction`", "mean", "'median'"),
                 id="unknown-reduction"),
    pytest.param({"reduction": "none"}, ("`reduction`", "elementwise", "'none'"),
                 id="no-reduction-of-elements"),
    pytest.param({"kind": "whole", "reduction": "mean"}, ("`reduction`", "whole", "'mean'"),
                 id="reduced-whole-loss"),
    pytest.param({"kind": "rowwise"}, ("`kind`", "elementwise", "slice", "whole", "'rowwise'"),
                 id="unknown-kind"),
    pytest.param({"params": {"delta": "1.0"}}, ("`delta`", "validator", "'1.0'"),
                 id="parameter-without-validator"),
    pytest.param({"params": {"flag": True}}, ("`flag`", "validator", "True"),
                 id="bool-default-without-validator"),
    pytest.param({"params": {"ctx": 1.0}}, ("`ctx`", "reserved"), id="reserved-ctx"),
    pytest.param({"params": {"check_domain": 1.0}}, ("`check_domain`", "reserved"),
                 id="reserved-check_domain"),
    pytest.param({"seams": [torchlean.Seam("logit", lambda k, prm: k.const(0), "z = 0")]},
                 ("seam", "residual", "'logit'"), id="seam-on-an-unknown-coordinate"),
]


@pytest.mark.parametrize(("keywords", "fragments"), DECLARATIONS)
def test_malformed_declaration(keywords: dict[str, Any], fragments: tuple[str, ...]) -> None:
    name = "errors_test_malformed"

    def declare() -> Any:
        return torchlean.define_loss(name, **keywords)(_value_term).deriv(_deriv_term)

    check_raises(ParameterError, declare, *fragments)
    assert name not in torchlean.LOSSES


def test_a_parameter_whose_validator_is_not_callable() -> None:
    bad = torchlean.Param("delta", 1.0, None)  # type: ignore[arg-type]
    check_raises(ParameterError,
                 lambda: torchlean.define_loss("errors_test_param", params=[bad])(_value_term)
                 .deriv(_deriv_term), "`delta`", "validator")


@pytest.mark.parametrize("name", ["my loss", "", "2x"], ids=repr)
def test_a_name_that_is_not_an_identifier(name: str) -> None:
    check_raises(ParameterError,
                 lambda: torchlean.define_loss(name)(_value_term).deriv(_deriv_term), "`name`",
                 repr(name))


@pytest.mark.parametrize("name", ["mse", "pseudo_huber"])
def test_a_name_taken_by_a_package_loss(name: str) -> None:
    package = torchlean.LOSSES[name]
    for declare in (lambda: torchlean.define_loss(name)(_value_term).deriv(_deriv_term),
                    lambda: torchlean.define_loss(name, deriv=_deriv_term)(_value_term)):
        check_raises(ParameterError, declare, "`name`", repr(name), "package")
    assert torchlean.LOSSES[name] is package
