"""Cross-entropy on logits through the row kernels, held to the spec
(``torchlean.kernels.disabled()``) on each of the row paths (rows of at most ``SHORT`` classes
processed across rows, of at most ``MID`` through one exponential loop per block, longer ones
row by row): several blocks and a partial last block, confident rows (softmax > 1/2, the
spec's expm1 form), ties, NaN and infinities, and both dtypes. Bounds as in
``tests/test_kernels.py``: float32 within 1 ulp of the spec, float64 within 8 ulps of
``(softmax sum|t| + |t|) / n`` (the derivative cancels)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import torchlean
from torchlean import kernels
from torchlean.kernels.terms import softmax_mass_scale

numba_kernels = pytest.importorskip("torchlean.kernels.numba_kernels")

NAME = "cross_entropy_logits"


def spec(z: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    with kernels.disabled(), np.errstate(all="ignore"):
        return torchlean.value_and_deriv(NAME, z, t)


def check(z: np.ndarray, t: np.ndarray) -> None:
    v, g = torchlean.value_and_deriv(NAME, z, t)
    v_ref, g_ref = spec(z, t)
    assert g.dtype == z.dtype and g.shape == z.shape
    np.testing.assert_array_equal(np.isnan(g), np.isnan(g_ref))
    fin = np.isfinite(g_ref)
    np.testing.assert_array_equal(g[~fin & ~np.isnan(g_ref)], g_ref[~fin & ~np.isnan(g_ref)])
    assert math.isnan(float(v)) == math.isnan(float(v_ref))
    diff = np.abs(g[fin].astype(np.float64) - g_ref[fin].astype(np.float64))
    if z.dtype == np.float32:
        ulp = np.spacing(np.maximum(np.abs(g[fin]), np.abs(g_ref[fin])))
        assert np.all(diff <= ulp), f"derivative off by {np.max(diff / ulp)} ulp"
        if math.isfinite(float(v_ref)):
            assert abs(float(v) - float(v_ref)) <= np.spacing(np.float32(abs(float(v_ref))))
        return
    with np.errstate(all="ignore"):
        scale = softmax_mass_scale(z.astype(np.float64), t.astype(np.float64)) / z.size
    tol = 8 * np.finfo(np.float64).eps * np.maximum(np.nan_to_num(scale[fin]), 1e-300)
    assert np.all(diff <= tol), f"derivative off by {np.max(diff / tol) * 8} ulp"
    if math.isfinite(float(v_ref)):
        assert abs(float(v) - float(v_ref)) <= 520 * np.finfo(np.float64).eps * abs(float(v_ref))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cols", [1, 2, 10, numba_kernels.SHORT, numba_kernels.SHORT + 1, 100,
                                  numba_kernels.MID, numba_kernels.MID + 1])
def test_random_rows_match_the_spec(cols: int, dtype: str) -> None:
    # 3000 rows: several blocks of rows and a partial last one; the targets sum to 1 or 2
    rng = np.random.default_rng(cols)
    rows = 3000
    z = rng.normal(0.0, 4.0, (rows, cols)).astype(dtype)
    t = (rng.dirichlet(np.ones(cols), rows) * rng.choice([1.0, 2.0], (rows, 1))).astype(dtype)
    check(z, t)
    check(z[:7], t[:7])  # fewer rows than one block's vector lanes


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_confident_rows_take_the_expm1_form(dtype: str) -> None:
    # one logit far above the rest: softmax of the maximum within 1e-12 of 1, where
    # softmax * mass - t would cancel; the spec's form keeps the derivative's relative accuracy
    rng = np.random.default_rng(1)
    z = rng.normal(0.0, 1.0, (500, 10))
    z[np.arange(500), rng.integers(0, 10, 500)] += rng.uniform(3.0, 40.0, 500)
    t = np.zeros((500, 10))
    t[np.arange(500), np.argmax(z, axis=1)] = 1.0
    z, t = z.astype(dtype), t.astype(dtype)
    check(z, t)
    _, g = torchlean.value_and_deriv(NAME, z, t)
    hot = np.argmax(z, axis=1)
    assert np.all(g[np.arange(500), hot] < 0)  # sm - 1 < 0, never rounded to 0 by cancellation


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ties_and_special_values_match_the_spec(dtype: str) -> None:
    inf, nan = math.inf, math.nan
    z = np.array([
        [1.0, 1.0, 0.0, -2.0],      # a tie for the maximum: neither softmax exceeds 1/2
        [nan, 0.5, 0.2, 0.0],       # NaN: the whole row's softmax is NaN
        [inf, 0.5, 0.2, 0.0],       # +inf: shift 0, the others' softmax 0
        [-inf, 0.5, 0.2, 0.0],      # -inf: softmax exactly 0 there
        [-inf, -inf, -inf, -inf],   # no finite logit: 0 / 0
        [700.0, -700.0, 1e30, 0.0],
        [0.0, 0.0, 0.0, 0.0],
        [88.0, -88.0, 1e-30, 5.0],
    ] * 5, dtype=dtype)
    t = np.tile(np.array([0.25, 0.5, 0.0, 0.25], dtype=dtype), (z.shape[0], 1))
    check(z, t)
    check(z, np.where(np.eye(4, dtype=bool)[np.arange(z.shape[0]) % 4], 1.0, 0.0).astype(dtype))


def test_short_rows_are_bit_identical_serial_and_parallel() -> None:
    rng = np.random.default_rng(5)
    z = rng.normal(0.0, 3.0, (4000, 10)).astype(np.float32)
    t = rng.dirichlet(np.ones(10), 4000).astype(np.float32)
    out = []
    for k in (numba_kernels.PARALLEL, numba_kernels.SERIAL):
        g = np.empty_like(z)
        out.append((k.cross_entropy_logits(z, t, g, float(z.size), True), g))
    assert out[0][0] == out[1][0]
    np.testing.assert_array_equal(out[0][1], out[1][1])
