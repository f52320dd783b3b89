"""The fused JAX forms (``jax_kernel`` of a declaration, :mod:`torchlean.kernels.jax_terms`)
held to their declarations: per-example values and unreduced derivatives against the
declaration's terms evaluated by NumPy in float64, within the kernel's stated ulps of the
magnitudes that may cancel; at large and infinite logits and NaN; and used by
:mod:`torchlean.interop.jax`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy

import torchlean  # noqa: E402
from torchlean.kernels.kernel import _load  # noqa: E402
from torchlean.per_sample import grad_hess  # noqa: E402

DECLS = [d for d in torchlean.LOSSES.values() if d.origin == "torchlean" and d.jax_kernel]


def _cases(decl: Any, rng: np.random.Generator) -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    for z in decl.region_zones():
        p, t = z.sample(rng, (6, 5), decl.params)
        out.append((z.name, np.asarray(p, np.float64), np.asarray(t, np.float64)))
    p, t = out[0][1].copy(), out[0][2].copy()
    p[0] *= 1e4  # a confident row: one softmax near 1, the others underflow
    p[1, 2] = 800.0  # one huge logit
    out.append(("large logits", p, t))
    return out


def _declared(decl: Any, p: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-example values and the unreduced derivative, from the declaration (float64)."""
    per = decl.with_changes(reduction="sum")
    values = np.array([float(per.value(p[i:i + 1], t[i:i + 1])) for i in range(p.shape[0])])
    g, _ = grad_hess(decl, p, t)
    return values, np.asarray(g)


def _scales(p: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The magnitudes a plain evaluation rounds against: per example sum |t log_softmax| (and
    the row's |t|), per element softmax * |mass| + |t|."""
    s = p - p.max(axis=-1, keepdims=True)
    lse = np.log(np.exp(s).sum(axis=-1, keepdims=True))
    sm = np.exp(s - lse)
    mass = np.abs(t).sum(axis=-1, keepdims=True)
    value = np.sum(np.abs(t * (s - lse)), axis=-1) + mass[:, 0] * (1 + np.abs(lse[:, 0]))
    return value, sm * mass + np.abs(t)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("decl", DECLS, ids=[d.name for d in DECLS])
def test_kernel_equals_the_declaration(decl: Any, dtype: str) -> None:
    kern = _load(decl.jax_kernel)
    rng = np.random.default_rng(7)
    eps = float(np.finfo(dtype).eps)
    with jax.enable_x64(dtype == "float64"):
        for label, p, t in _cases(decl, rng):
            p, t = p.astype(dtype).astype(np.float64), t.astype(dtype).astype(np.float64)
            want_v, want_g = _declared(decl, p, t)
            got_v = np.asarray(kern.value(jnp.asarray(p, dtype), jnp.asarray(t, dtype),
                                          **decl.params), np.float64)
            got_g = np.asarray(kern.grad(jnp.asarray(p, dtype), jnp.asarray(t, dtype),
                                         **decl.params), np.float64)
            sv, sg = _scales(p, t)
            eps_g = 1 + abs(decl.params.get("epsilon", 0.0))
            assert np.all(np.abs(got_v - want_v) <= kern.ulps * eps * sv), label
            assert np.all(np.abs(got_g - want_g) <= kern.ulps * eps * sg * eps_g), label


@pytest.mark.parametrize("decl", DECLS, ids=[d.name for d in DECLS])
def test_nan_in_nan_out(decl: Any) -> None:
    kern = _load(decl.jax_kernel)
    p = jnp.array([[0.3, jnp.nan, 1.0], [0.2, 0.1, -0.4]])
    t = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    v = kern.value(p, t, **decl.params)
    g = kern.grad(p, t, **decl.params)
    assert bool(jnp.isnan(v[0])) and bool(jnp.all(jnp.isnan(g[0])))
    assert bool(jnp.all(jnp.isfinite(v[1]))) and bool(jnp.all(jnp.isfinite(g[1])))


def test_safe_form_at_minus_infinity() -> None:
    # a -inf logit with label 0 costs nothing, its gradient is 0 (softmax 0 there); as the
    # declaration (hand: row (0, -inf, 0), label on the first class: value log 2)
    decl = torchlean.LOSSES["safe_softmax_cross_entropy"]
    kern = _load(decl.jax_kernel)
    p = jnp.array([[0.0, -jnp.inf, 0.0]])
    t = jnp.array([[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(kern.value(p, t), [np.log(2.0)], rtol=1e-7)
    np.testing.assert_allclose(kern.grad(p, t), [[-0.5, 0.0, 0.5]], rtol=1e-7)
    np.testing.assert_allclose(np.asarray(kern.value(p, t)),
                               float(decl.value(np.asarray(p), np.asarray(t))), rtol=1e-7)


def test_interop_uses_the_kernel_and_the_declared_hessian() -> None:
    from torchlean.interop import jax as tj

    decl = torchlean.LOSSES["softmax"]
    rng = np.random.default_rng(3)
    p, t = decl.region_zones()[0].sample(rng, (3, 4), decl.params)
    with jax.enable_x64(True):
        f = tj.loss("softmax")
        v = float(f(jnp.asarray(p), jnp.asarray(t)))
        g = np.asarray(jax.grad(f)(jnp.asarray(p), jnp.asarray(t)))
        vec = rng.standard_normal(p.shape)
        hv = np.asarray(jax.jvp(jax.grad(f), (jnp.asarray(p), jnp.asarray(t)),
                                (jnp.asarray(vec), jnp.zeros_like(jnp.asarray(t))))[1])
    np.testing.assert_allclose(v, float(decl.value(p, t)), rtol=1e-14)
    np.testing.assert_allclose(g, decl.deriv(p, t), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(hv, decl.hvp(p, t, vec), rtol=1e-13, atol=1e-15)
