"""``LossType``, the frozen ``Loss`` configuration and the registry rows agree with the specs."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import numpy as np
import pytest
from loss_inputs import smooth_case
from spec_functions import NAMES, SEED_FUNCTIONS, SPECS, seed_pair

import torchlean
from torchlean.contexts import arrays
from torchlean.spec.layers import loss as L
from torchlean.spec.layers.loss import EPSILON, Loss, LossType

FAMILIES = ["mse", "mae", "huber", "cross_entropy", "hinge", "poisson", "cosine_similarity",
            "log_cosh"]


def test_loss_type_has_the_eight_families() -> None:
    assert [m.value for m in LossType] == FAMILIES
    assert [m.name for m in LossType] == [
        "MSE", "MAE", "HUBER", "CROSS_ENTROPY", "HINGE", "POISSON", "COSINE_SIMILARITY",
        "LOG_COSH"]
    assert LossType("huber") is LossType.HUBER
    # every family names a registry row
    assert all(m.value in torchlean.LOSSES for m in LossType)


CONSTRUCTORS = [
    pytest.param(Loss.mse, (), LossType.MSE, {}, id="mse"),
    pytest.param(Loss.mae, (), LossType.MAE, {}, id="mae"),
    pytest.param(Loss.huber, (), LossType.HUBER, {"delta": 1.0}, id="huber"),
    pytest.param(Loss.huber, (0.5,), LossType.HUBER, {"delta": 0.5}, id="huber-0.5"),
    pytest.param(Loss.huber, (0.0,), LossType.HUBER, {"delta": 0.0}, id="huber-0"),
    pytest.param(Loss.cross_entropy, (), LossType.CROSS_ENTROPY, {"epsilon": EPSILON},
                 id="cross_entropy"),
    pytest.param(Loss.cross_entropy, (0.1,), LossType.CROSS_ENTROPY, {"epsilon": 0.1},
                 id="cross_entropy-0.1"),
    pytest.param(Loss.hinge, (), LossType.HINGE, {}, id="hinge"),
    pytest.param(Loss.poisson, (), LossType.POISSON, {}, id="poisson"),
    pytest.param(Loss.cosine_similarity, (), LossType.COSINE_SIMILARITY, {"epsilon": EPSILON},
                 id="cosine_similarity"),
    pytest.param(Loss.cosine_similarity, (0.3,), LossType.COSINE_SIMILARITY, {"epsilon": 0.3},
                 id="cosine_similarity-0.3"),
    pytest.param(Loss.log_cosh, (), LossType.LOG_COSH, {}, id="log_cosh"),
]


@pytest.mark.parametrize(("make", "args", "kind", "params"), CONSTRUCTORS)
def test_constructor(make: Any, args: tuple[float, ...], kind: LossType,
                     params: dict[str, float]) -> None:
    loss = make(*args)
    assert loss.loss_type is kind
    assert loss.params == params
    # the family's parameters are stored; the other parameter keeps its default
    assert loss.delta == params.get("delta", 1.0)
    assert loss.epsilon == params.get("epsilon", EPSILON)
    assert loss == Loss(kind, **params)


@pytest.mark.parametrize(("make", "args", "kind", "params"), CONSTRUCTORS)
def test_value_deriv_and_value_and_deriv_agree_with_the_specs(
        make: Any, args: tuple[float, ...], kind: LossType, params: dict[str, float]) -> None:
    loss = make(*args)
    value_fn, deriv_fn, _ = SPECS[kind.value]
    p, t, _ = smooth_case(kind.value, (3, 4), seed=2)
    v_ref, g_ref = value_fn(p, t, **params), deriv_fn(p, t, **params)
    # value and deriv call the spec itself: bit for bit
    assert loss.value(p, t) == v_ref
    np.testing.assert_array_equal(loss.deriv(p, t), g_ref)
    # value_and_deriv may take a fused fast path: equal up to summation order
    v, g = loss.value_and_deriv(p, t)
    np.testing.assert_allclose(v, v_ref, rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(g, g_ref, rtol=1e-14, atol=1e-16)
    # an explicit context gives the same
    assert loss.value(p, t, ctx=arrays) == v_ref
    np.testing.assert_array_equal(loss.deriv(p, t, ctx=arrays.CONTEXT), g_ref)


@pytest.mark.parametrize(("make", "args", "kind", "params"), CONSTRUCTORS)
def test_loss_on_torch_agrees_with_the_specs(make: Any, args: tuple[float, ...],
                                             kind: LossType, params: dict[str, float]) -> None:
    torch = pytest.importorskip("torch")
    loss = make(*args)
    value_fn, deriv_fn, _ = SPECS[kind.value]
    p, t, _ = smooth_case(kind.value, (3, 4), seed=2)
    v, g = loss.value_and_deriv(torch.from_numpy(p), torch.from_numpy(t))
    assert isinstance(v, torch.Tensor) and v.dtype == torch.float64
    np.testing.assert_allclose(v.item(), value_fn(p, t, **params), rtol=1e-14)
    np.testing.assert_allclose(g.numpy(), deriv_fn(p, t, **params), rtol=1e-14, atol=1e-16)


def test_loss_is_frozen_and_hashable() -> None:
    loss = Loss.huber(2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        loss.delta = 3.0  # type: ignore[misc]
    assert dataclasses.is_dataclass(loss)
    assert loss == Loss.huber(2.0) and loss != Loss.huber(1.0) and loss != Loss.mae()
    assert len({Loss.mse(), Loss.mse(), Loss.huber(), Loss.huber(1.0)}) == 2


def test_defaults() -> None:
    loss = Loss(LossType.MSE)
    assert (loss.delta, loss.epsilon) == (1.0, EPSILON)
    assert Loss.huber() == Loss(LossType.HUBER, delta=1.0)
    assert Loss.cross_entropy().epsilon == EPSILON == 1e-6


def test_cross_entropy_family_is_on_probabilities() -> None:
    # Loss.cross_entropy is the probability form (clamped), not the logits form
    p, t = np.array([0.0, 0.5]), np.array([1.0, 1.0])
    # -(log(eps) + log(1/2)) / 2
    np.testing.assert_allclose(Loss.cross_entropy().value(p, t),
                               -(np.log(EPSILON) + np.log(0.5)) / 2, rtol=1e-15)


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------


def test_registry_rows_are_the_seed_functions() -> None:
    # the package's losses come first, in declaration order
    assert tuple(torchlean.LOSSES)[:len(NAMES)] == NAMES
    reached = set()
    for name in NAMES:
        entry = torchlean.LOSSES[name]
        assert entry.name == name and entry.origin == "torchlean"
        assert torchlean.get_loss(name) is entry
        assert entry.has_domain_check == entry.domain.checked
        assert entry.torch_equivalent == entry.torch_text
        assert (entry.torch_reference is None) == (not entry.torch_text)
        pair = seed_pair(name)
        if pair is None:
            continue
        reached |= {f.__name__ for f in pair}
        # the seed functions delegate to the declaration: the same numbers
        p, t, params = smooth_case(name, (3, 4), seed=4)
        assert pair[0](p, t, **params) == entry.value(p, t, **params)
        np.testing.assert_array_equal(pair[1](p, t, **params), entry.deriv(p, t, **params))
    # the rule reaches every tensor function of the seed; the rest is the scalar BCE
    assert set(SEED_FUNCTIONS) - reached == {"binary_cross_entropy_spec",
                                             "binary_cross_entropy_deriv_spec"}


def test_registry_parameters_and_defaults() -> None:
    for name in NAMES:
        entry = torchlean.LOSSES[name]
        assert dict(entry.params) == {k: p.default for k, p in entry.parameters.items()}
        # every default passes its own validator unchanged
        assert entry.checked_params({}) == dict(entry.params)
        # and is the default of the seed functions' keyword of the same name
        for fn in seed_pair(name) or ():
            sig = inspect.signature(fn).parameters
            assert {k: sig[k].default for k in entry.params} == dict(entry.params)


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        torchlean.LOSSES["mine"] = torchlean.LOSSES["mse"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        torchlean.LOSSES["mse"].name = "other"  # type: ignore[misc]


@pytest.mark.parametrize("name", NAMES)
def test_value_and_deriv_by_name(name: str) -> None:
    p, t, params = smooth_case(name, (3, 4), seed=12)
    value_fn, deriv_fn, _ = SPECS[name]
    entry = torchlean.LOSSES[name]
    assert entry.value(p, t, **params) == value_fn(p, t, **params)
    np.testing.assert_array_equal(entry.deriv(p, t, **params), deriv_fn(p, t, **params))
    v, g = torchlean.value_and_deriv(name, p, t, **params)
    np.testing.assert_allclose(v, value_fn(p, t, **params), rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(g, deriv_fn(p, t, **params), rtol=1e-14, atol=1e-16)


def test_public_names_of_the_loss_module() -> None:
    for fn_name in ("mse_spec", "mse_deriv_spec", "mae_spec", "mae_deriv_spec", "huber_spec",
                    "huber_deriv_spec", "cross_entropy_spec", "cross_entropy_deriv_spec",
                    "cross_entropy_logits_spec", "cross_entropy_logits_deriv_spec",
                    "hinge_spec", "hinge_deriv_spec", "poisson_spec", "poisson_deriv_spec",
                    "cosine_similarity_spec", "cosine_similarity_deriv_spec", "log_cosh_spec",
                    "log_cosh_deriv_spec", "binary_cross_entropy_spec",
                    "binary_cross_entropy_deriv_spec", "binary_cross_entropy_tensor_spec",
                    "binary_cross_entropy_tensor_deriv_spec", "to_scalar_spec", "mean_over",
                    "EPSILON", "LossType", "Loss"):
        assert fn_name in L.__all__
        assert hasattr(L, fn_name)


# --------------------------------------------------------------------------------------------
# Loss configures every registered loss
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_loss_of_every_registered_loss(name: str) -> None:
    entry = torchlean.LOSSES[name]
    cfg = Loss.of(name)
    assert cfg.name == name and cfg.declaration is entry
    assert cfg.params == dict(entry.params)
    p, t, _ = smooth_case(name, (3, 4), seed=13)
    assert cfg.value(p, t) == entry.value(p, t)
    np.testing.assert_array_equal(cfg.deriv(p, t), entry.deriv(p, t))
    v, g = cfg.value_and_deriv(p, t)
    np.testing.assert_allclose(v, entry.value(p, t), rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(g, entry.deriv(p, t), rtol=1e-14, atol=1e-16)
    # the string form of a seed family configures the same loss as its LossType
    if name in FAMILIES:
        assert Loss.of(name).params == Loss(LossType(name)).params


@pytest.mark.parametrize("name", [n for n in NAMES if torchlean.LOSSES[n].parameters])
def test_loss_of_passes_each_parameter(name: str) -> None:
    entry = torchlean.LOSSES[name]
    # each parameter at a third of its default, or a tenth above it where its validator
    # refuses the third (tweedie's power lives in (1, 2))
    params = {}
    for k, v in entry.params.items():
        try:
            params[k] = entry.parameters[k].check(v / 3)
        except torchlean.ParameterError:
            params[k] = entry.parameters[k].check(v * 1.1)
    cfg = Loss.of(name, **params)
    assert cfg.params == params
    p, t, _ = smooth_case(name, (2, 3), seed=14)
    assert cfg.value(p, t) == entry.value(p, t, **params)
    np.testing.assert_array_equal(cfg.deriv(p, t), entry.deriv(p, t, **params))


def test_pseudo_huber_through_options_and_of() -> None:
    # hand: delta = 2, d = (2, -4, 0): 4 (sqrt 2 - 1 + sqrt 5 - 1) / 3
    p, t = np.array([3.0, -3.0, 1.0]), np.array([1.0, 1.0, 1.0])
    want = 4 * (np.sqrt(2.0) + np.sqrt(5.0) - 2) / 3
    by_options = Loss("pseudo_huber", options=(("delta", 2.0),))
    by_keywords = Loss.of("pseudo_huber", delta=2.0)
    assert by_options.params == by_keywords.params == {"delta": 2.0}
    for cfg in (by_options, by_keywords):
        np.testing.assert_allclose(cfg.value(p, t), want, rtol=4e-16)
    assert Loss.of("pseudo_huber").params == {"delta": 1.0}


def test_loss_of_refuses_bad_names_and_parameters() -> None:
    with pytest.raises(torchlean.ParameterError, match=r"`loss_type`.*'nope'"):
        Loss.of("nope")
    with pytest.raises(torchlean.ParameterError, match=r"`beta`.*pseudo_huber"):
        Loss.of("pseudo_huber", beta=1.0)
    with pytest.raises(torchlean.ParameterError, match="`delta`"):
        Loss.of("pseudo_huber", delta=-1.0)
    with pytest.raises(torchlean.ParameterError, match="`delta`"):
        Loss("pseudo_huber", options=(("delta", float("nan")),))
    with pytest.raises(torchlean.ParameterError, match="`options`"):
        Loss(LossType.MSE, options=(("delta", 2.0),))


def test_loss_type_keeps_the_seeds_eight_members() -> None:
    # registered losses beyond the seed's families are configured by name, not by LossType
    assert len(LossType) == 8
    assert {m.value for m in LossType} < set(NAMES)
    assert Loss("pseudo_huber").loss_type == "pseudo_huber"


def test_torch_comparable_reads_the_regions_and_their_seams() -> None:
    # BCE: torch agrees strictly inside (eps, 1 - eps) only; on a seam (or within PyTorch's
    # rounding of it) nothing is compared. Cosine: both norms above eps.
    bce, ce, cos = (torchlean.LOSSES[n] for n in ("binary_cross_entropy", "cross_entropy",
                                                   "cosine_similarity"))
    assert bce.torch_comparable([0.3, 0.7], [1.0, 0.0])
    assert not bce.torch_comparable([1e-9, 0.7], [1.0, 0.0])
    assert not ce.torch_comparable([1e-6], [1.0])
    assert not ce.torch_comparable([float(np.float32(1e-6))], [1.0])
    assert ce.torch_comparable([1e-9], [1.0])
    assert cos.torch_comparable([1.0, 2.0], [1.0, 0.0])
    assert not cos.torch_comparable([1e-8, 0.0], [1.0, 0.0])
    assert torchlean.LOSSES["mse"].torch_comparable([1e300], [-1e300])
