"""The cached NumPy dispatch of ``torchlean.value_and_deriv`` (``registry._plan``,
``kernels.numpy_path.Plan``): the same results as the uncached fast path, bit for bit, for
every loss with a kernel; the parameters checked on every call that would check them; and
everything the plan does not take (kernels off, other layouts, bad targets) left to the
ordinary path and the spec."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import torchlean
from torchlean import kernels
from torchlean.errors import DomainError, ParameterError
from torchlean.registry import _PLANS, _plan, compute_value_and_deriv

pytest.importorskip("numba")

NAMES = [n for n, d in torchlean.LOSSES.items() if d.kernel is not None]


def _inputs(name: str, dtype: str, shape: tuple[int, ...] = (20, 7)) -> tuple[Any, Any]:
    decl = torchlean.LOSSES[name]
    p, t = decl.region_zones()[0].sample(np.random.default_rng(5), shape, decl.params)
    return np.ascontiguousarray(p, dtype), np.ascontiguousarray(t, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", NAMES)
def test_the_plan_gives_the_fast_path_bits(name: str, dtype: str) -> None:
    p, t = _inputs(name, dtype)
    for shape in (p.shape, (p.size,)):
        pp, tt = p.reshape(shape), t.reshape(shape)
        v, g = torchlean.value_and_deriv(name, pp, tt)
        assert _plan(name, {}) is not None
        v0, g0 = compute_value_and_deriv(name, pp, tt, torchlean.LOSSES[name].bind_params({}))
        assert type(v) is type(v0) and type(g) is type(g0) and g.dtype == g0.dtype
        np.testing.assert_array_equal(v, v0)
        np.testing.assert_array_equal(g, g0)


def test_parameters_are_checked_on_every_call_and_keyed() -> None:
    p, t = _inputs("huber", "float64")
    for _ in range(2):
        with pytest.raises(ParameterError, match="delta"):
            torchlean.value_and_deriv("huber", p, t, delta=-1.0)
    a = torchlean.value_and_deriv("huber", p, t, delta=0.5)
    b = torchlean.value_and_deriv("huber", p, t, delta=2.0)
    assert a[0] != b[0]
    assert ("huber", ("delta", float, 0.5)) in _PLANS
    # equal keys of other types are other plans: the validator sees each
    for bad in (True, 1 + 0j):
        with pytest.raises(ParameterError, match="delta"):
            torchlean.value_and_deriv("huber", p, t, delta=bad)
    assert torchlean.value_and_deriv("huber", p, t, delta=1)[0] == \
        torchlean.value_and_deriv("huber", p, t, delta=1.0)[0]


def test_what_the_plan_does_not_take_goes_the_ordinary_way() -> None:
    p, t = _inputs("poisson", "float64")
    plan = _plan("poisson", {})
    assert plan is not None
    # a target outside the domain: the spec's error, every time
    bad = t.copy()
    bad[0, 0] = -1.0
    assert plan(p, bad) is None
    with pytest.raises(DomainError, match="`target`"):
        torchlean.value_and_deriv("poisson", p, bad)
    # another layout, a mixed dtype, an empty array: the ordinary path's results
    for pp, tt in ((p.T, t.T), (p, t.astype(np.float32)), (p[:0], t[:0])):
        assert plan(pp, tt) is None
        v, g = torchlean.value_and_deriv("poisson", pp, tt)
        v0, g0 = compute_value_and_deriv("poisson", pp, tt, {})
        np.testing.assert_array_equal(v, v0)
        np.testing.assert_array_equal(g, g0)
    # kernels off: the spec
    with kernels.disabled():
        assert plan(p, t) is None
        v, g = torchlean.value_and_deriv("poisson", p, t)
        v1 = torchlean.LOSSES["poisson"].value(p, t)
    assert v == v1


def test_unhashable_or_context_parameters_are_not_planned() -> None:
    assert _plan("huber", {"delta": np.array([1.0])}) is None
    assert _plan("mse", {"ctx": "float64"}) is None
    assert _plan("no such loss", {}) is None


def test_a_float32_value_beyond_its_range_is_infinite_without_a_warning() -> None:
    # hand: d = 6e38 overflows float32's range; the mean of d**2 / 2 is about 1.8e77 in float64
    p = np.array([3e38, 0.0], np.float32)
    t = np.array([-3e38, 0.0], np.float32)
    v, _ = torchlean.value_and_deriv("mse", p, t)
    assert type(v) is np.float32 and v == np.inf
    v0, _ = compute_value_and_deriv("mse", p, t, {})
    assert v0 == v
