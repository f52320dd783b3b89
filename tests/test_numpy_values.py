"""A loss value on NumPy input is a NumPy scalar of the input's dtype, for every loss, whether
its term ends in a sum (a mean) or in a branch over whole-tensor quantities (cosine)."""

from __future__ import annotations

import numpy as np
import pytest

import torchlean
from torchlean import LOSSES
from torchlean.spec.layers.loss import Loss, cosine_similarity_spec

PACKAGE = [d.name for d in LOSSES.values() if d.origin == "torchlean"]
DTYPES = [np.float16, np.float32, np.float64]


def _inputs(name: str, dtype: type, zone: int = 0) -> tuple[np.ndarray, np.ndarray]:
    decl = LOSSES[name]
    p, t = decl.region_zones()[zone].sample(np.random.default_rng(0), (3, 4), decl.params)
    return p.astype(dtype), t.astype(dtype)


def _is_numpy_scalar(v: object, dtype: type) -> bool:
    return np.isscalar(v) and isinstance(v, np.generic) and v.dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("name", PACKAGE)
def test_value_is_a_numpy_scalar_of_the_input_dtype(name: str, dtype: type) -> None:
    p, t = _inputs(name, dtype)
    decl = LOSSES[name]
    assert _is_numpy_scalar(decl.value(p, t), dtype)
    assert _is_numpy_scalar(Loss.of(name).value(p, t), dtype)
    value, deriv = torchlean.value_and_deriv(name, p, t)  # a fused kernel where one applies
    assert _is_numpy_scalar(value, dtype)
    # the derivative stays an array of the input's shape
    assert isinstance(deriv, np.ndarray) and deriv.shape == p.shape and deriv.dtype == dtype


def test_cosine_similarity_value_is_immutable() -> None:
    # it was a 0-d ndarray: writable in place, and np.isscalar false
    p, t = np.array([1.0, 2.0]), np.array([2.0, 1.0])
    v = cosine_similarity_spec(p, t)
    assert np.isscalar(v) and type(v) is np.float64
    # origin: hand derivation, 1 - (2 + 2) / (sqrt(5) sqrt(5)) = 1/5
    assert v == pytest.approx(0.2, rel=1e-15)
    assert type(Loss.cosine_similarity().value(p, t)) is np.float64
