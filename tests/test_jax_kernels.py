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
    if decl.kind == "slice":
        p[0] *= 1e4  # a confident row: one softmax near 1, the others underflow
        p[1, 2] = 800.0  # one huge logit
        out.append(("large logits", p, t))
    else:
        p[0] *= 1e4
        t[1] *= 1e4
        out.append(("large inputs", p, t))
    return out


def _declared(decl: Any, p: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-example values (per row of a slice loss, per element of an elementwise one) and the
    unreduced derivative, from the declaration (float64)."""
    per = decl.with_changes(reduction="sum")
    if decl.kind == "slice":
        values = np.array([float(per.value(p[i:i + 1], t[i:i + 1])) for i in range(p.shape[0])])
    else:
        values = np.array([[float(per.value(p[i:i + 1, j:j + 1], t[i:i + 1, j:j + 1]))
                            for j in range(p.shape[1])] for i in range(p.shape[0])])
    g, _ = grad_hess(decl, p, t)
    return values, np.asarray(g)


def _assert_within(decl: Any, kern: Any, dtype: str, label: str, p: np.ndarray, t: np.ndarray,
                   got_v: Any, got_g: Any) -> None:
    want_v, want_g = _declared(decl, p, t)
    sv, sg = kern.scales(p, t, decl.params)
    eps = float(np.finfo(dtype).eps)
    got_v, got_g = np.asarray(got_v, np.float64), np.asarray(got_g, np.float64)
    assert np.all(np.abs(got_v - want_v) <= kern.ulps * eps * sv), label
    assert np.all(np.abs(got_g - want_g) <= kern.ulps * eps * sg), label


IDS = [d for d in DECLS if _load(d.jax_kernel).value_ids is not None]
FORMS = [(d, False) for d in DECLS] + [(d, True) for d in IDS]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("decl", "ids"), FORMS,
                         ids=[d.name + ("-ids" if i else "") for d, i in FORMS])
def test_kernel_equals_the_declaration(decl: Any, ids: bool, dtype: str) -> None:
    # the id forms against the declaration on the one-hot rows of random class ids
    kern = _load(decl.jax_kernel)
    rng = np.random.default_rng(7)
    with jax.enable_x64(dtype == "float64"):
        for label, p, t in _cases(decl, rng):
            p, t = p.astype(dtype).astype(np.float64), t.astype(dtype).astype(np.float64)
            if ids:
                labels = rng.integers(0, p.shape[-1], size=p.shape[0])
                t = np.eye(p.shape[-1])[labels]
                tj, value, grad = jnp.asarray(labels, jnp.int32), kern.value_ids, kern.grad_ids
            else:
                tj, value, grad = jnp.asarray(t, dtype), kern.value, kern.grad
            pj = jnp.asarray(p, dtype)
            _assert_within(decl, kern, dtype, label, p, t, value(pj, tj, **decl.params),
                           grad(pj, tj, **decl.params))


@pytest.mark.parametrize("decl", DECLS, ids=[d.name for d in DECLS])
def test_nan_in_nan_out(decl: Any) -> None:
    kern = _load(decl.jax_kernel)
    p = jnp.array([[0.3, jnp.nan, 1.0], [0.2, 0.1, -0.4]])
    t = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    v = kern.value(p, t, **decl.params)
    g = kern.grad(p, t, **decl.params)
    if decl.kind == "slice":
        assert bool(jnp.isnan(v[0])) and bool(jnp.all(jnp.isnan(g[0])))
        assert bool(jnp.all(jnp.isfinite(v[1]))) and bool(jnp.all(jnp.isfinite(g[1])))
    else:
        nan = np.isnan(np.asarray(p))
        np.testing.assert_array_equal(np.isnan(np.asarray(v)), nan)
        np.testing.assert_array_equal(np.isnan(np.asarray(g)), nan)


def test_elementwise_kernels_at_their_edges() -> None:
    # hand: hinge's derivative is 0 at the margin (t x = 1) and for t = 0 at x = inf (where
    # 1 - t x is NaN); the KL divergence of log-targets costs 0 at lt = -inf, whatever lp is
    hinge = _load(torchlean.LOSSES["hinge"].jax_kernel)
    x, t = jnp.array([1.0, jnp.inf, 0.5]), jnp.array([1.0, 0.0, -1.0])
    np.testing.assert_array_equal(np.asarray(hinge.grad(x, t)), [0.0, 0.0, 1.0])
    kl = _load(torchlean.LOSSES["kl_divergence_log_targets"].jax_kernel)
    lp, lt = jnp.array([-jnp.inf, 0.0, jnp.nan]), jnp.array([-jnp.inf, -jnp.inf, -jnp.inf])
    np.testing.assert_array_equal(np.asarray(kl.value(lp, lt)), [0.0, 0.0, np.nan])
    np.testing.assert_array_equal(np.asarray(kl.grad(lp, lt)), [-0.0, -0.0, np.nan])


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


def test_class_ids_through_interop_equal_one_hot_rows() -> None:
    from torchlean.errors import DomainError
    from torchlean.interop import jax as tj

    rng = np.random.default_rng(4)
    z = rng.normal(size=(4, 3))
    ids = np.array([0, 2, 1, 2])
    with jax.enable_x64(True):
        zj, ij, oh = jnp.asarray(z), jnp.asarray(ids), jnp.asarray(np.eye(3)[ids])
        for make in (tj.per_example, tj.loss):
            f = make("softmax")

            def total(p: Any, t: Any, f: Any = f) -> Any:
                return jnp.sum(f(p, t))

            np.testing.assert_allclose(np.asarray(f(zj, ij)), np.asarray(f(zj, oh)), rtol=1e-14)
            np.testing.assert_allclose(np.asarray(jax.grad(total)(zj, ij)),
                                       np.asarray(jax.grad(total)(zj, oh)), rtol=1e-13,
                                       atol=1e-16)
            # the declared Hessian reads the one-hot rows
            np.testing.assert_allclose(np.asarray(jax.hessian(total)(zj, ij)),
                                       np.asarray(jax.hessian(total)(zj, oh)), rtol=1e-13,
                                       atol=1e-16)
        f = tj.per_example("softmax")
        with pytest.raises(DomainError, match=r"`target` holds class ids.*got 3 at index 1"):
            f(zj, jnp.asarray([0, 3, 1, 2]))
        # traced: the example with the bad id is NaN, the others as before
        out = np.asarray(jax.jit(f)(zj, jnp.asarray([0, 3, 1, -1])))
        assert np.isnan(out[1]) and np.isnan(out[3])
        np.testing.assert_allclose(out[[0, 2]], np.asarray(f(zj, ij))[[0, 2]], rtol=1e-14)
        g = np.asarray(jax.jit(jax.grad(lambda p, t: jnp.sum(f(p, t))))(zj, jnp.asarray(
            [0, 3, 1, 2])))
        assert np.all(np.isnan(g[1])) and np.all(np.isfinite(g[[0, 2, 3]]))


@pytest.mark.parametrize("decl", [d for d in DECLS if d.kind == "slice"],
                         ids=[d.name for d in DECLS if d.kind == "slice"])
def test_rows_at_infinite_logits_as_the_declaration(decl: Any) -> None:
    # a +inf logit, every logit -inf, a -inf logit with label 0 and with label 1: the kernel's
    # value is NaN exactly where the declaration's is, and equal elsewhere
    kern = _load(decl.jax_kernel)
    inf = np.inf
    p = np.array([[inf, 0.0, 1.0], [-inf, -inf, -inf], [0.0, -inf, 0.0], [-inf, 0.0, 1.0]])
    t = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    per = decl.with_changes(reduction="sum")
    with np.errstate(all="ignore"):
        want = np.array([float(per.value(p[i:i + 1], t[i:i + 1])) for i in range(len(p))])
    with jax.enable_x64(True):
        got = np.asarray(kern.value(jnp.asarray(p), jnp.asarray(t), **decl.params))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[~np.isnan(want)], want[~np.isnan(want)], rtol=1e-14)
