"""torchlean.interop.optax against optax 0.2.8: the same values (ulps measured), the certified
derivative as the gradient, optax's ``axis`` and ``where``, jit/vmap/grad, and the package's
errors. Every difference from optax is a test here and a reproducer in docs/jax.md."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
jnp = jax.numpy

from torchlean.errors import DomainError, DTypeError, ParameterError, ShapeError  # noqa: E402
from torchlean.interop import optax as ox  # noqa: E402
from torchlean.registry import get_loss  # noqa: E402

#: (function, target convention, keywords, the gradient as a multiple of the declaration's
#: derivative); the conventions are optax's (labels 0/1, signs, probabilities, class ids)
CASES: list[tuple[str, str, dict[str, Any], float]] = [
    ("l2_loss", "real", {}, 1.0),
    ("squared_error", "real", {}, 1.0),
    ("huber_loss", "real", {"delta": 0.7}, 0.7),
    ("log_cosh", "real", {}, 1.0),
    ("hinge_loss", "signs", {}, 1.0),
    ("sigmoid_binary_cross_entropy", "labels", {}, 1.0),
    ("sigmoid_focal_loss", "labels", {}, 2.0),
    ("sigmoid_focal_loss", "labels", {"alpha": 0.3, "gamma": 1.5}, 1.0),
    ("cosine_similarity", "real", {"epsilon": 1e-3}, -1.0),
    ("cosine_distance", "real", {}, 1.0),
    ("softmax_cross_entropy", "probabilities", {}, 1.0),
    ("softmax_cross_entropy_with_integer_labels", "ids", {}, 1.0),
    ("safe_softmax_cross_entropy", "probabilities", {}, 1.0),
    ("poly_loss_cross_entropy", "probabilities", {"epsilon": 1.5}, 1.0),
    ("kl_divergence", "probabilities", {}, 1.0),
    ("kl_divergence_with_log_targets", "log_probabilities", {}, 1.0),
]
IDS = [f"{c[0]}{'-' + '-'.join(map(str, c[2].values())) if c[2] else ''}" for c in CASES]

#: measured over the sweep (test_values_sweep): |ours - optax| in ulps of max(|optax|, 1), at
#: most 4.1 in float32 and float64 (docs/jax.md has the relative figures)
ULPS = 5.0


def _inputs(kind: str, rng: np.random.Generator, shape: tuple[int, ...],
            dtype: str) -> tuple[Any, Any]:
    p = rng.normal(size=shape) * 3
    if kind == "real":
        t = rng.normal(size=shape) * 3
    elif kind == "labels":
        t = rng.integers(0, 2, size=shape).astype(float)
    elif kind == "signs":
        t = 2.0 * rng.integers(0, 2, size=shape) - 1
    elif kind == "probabilities":
        t = np.asarray(jax.nn.softmax(jnp.asarray(rng.normal(size=shape)), axis=-1))
    elif kind == "ids":
        return jnp.asarray(p, dtype), jnp.asarray(rng.integers(0, shape[-1], size=shape[:-1]))
    else:  # log_probabilities
        p = np.asarray(jax.nn.log_softmax(jnp.asarray(p), axis=-1))
        t = np.asarray(jax.nn.log_softmax(jnp.asarray(rng.normal(size=shape)), axis=-1))
    return jnp.asarray(p, dtype), jnp.asarray(t, dtype)


def _ulps(a: Any, b: Any, dtype: str) -> float:
    """max |a - b| in ulps of max(|b|, 1) in ``dtype`` (NaN equal to NaN): a cancelling
    formula on either side (optax's log_cosh near 0, its integer-label cross entropy near 0,
    our cosine similarity as 1 - distance) is accurate to ulps of 1, not of the result."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    d = np.abs(a - b) / np.spacing(np.maximum(np.abs(b), 1.0).astype(dtype)).astype(np.float64)
    d[(a == b) | (np.isnan(a) & np.isnan(b))] = 0
    return float(d.max()) if d.size else 0.0


def _certified(name: str, kw: dict[str, Any], p: Any, t: Any) -> np.ndarray:
    """The declaration's derivative of the summed terms at float64 (NumPy): ``decl.deriv``,
    unreduced (times the element count for a mean-reduced declaration)."""
    decl = get_loss(getattr(ox, name).declaration)
    params = {k: v for k, v in kw.items() if k in decl.parameters}
    if name == "sigmoid_focal_loss" and "alpha" not in kw:
        params["alpha"] = 0.5
    p = np.asarray(p, np.float64)
    t = np.asarray(t)
    if name == "softmax_cross_entropy_with_integer_labels":
        t = np.eye(p.shape[-1])[t]
    g = np.asarray(decl.deriv(p, np.asarray(t, np.float64), **params))
    return g * (p.size if decl.reduction == "mean" else 1)


@pytest.mark.parametrize(("name", "kind", "kw", "scale"), CASES, ids=IDS)
def test_values_and_gradient(name: str, kind: str, kw: dict[str, Any], scale: float) -> None:
    """float64 (x64): optax's values within ULPS; jax.grad is the certified derivative."""
    with jax.enable_x64(True):
        p, t = _inputs(kind, np.random.default_rng(3), (3, 4), "float64")
        ours, theirs = getattr(ox, name), getattr(optax.losses, name)
        assert _ulps(ours(p, t, **kw), theirs(p, t, **kw), "float64") <= ULPS
        g = jax.grad(lambda x: jnp.sum(ours(x, t, **kw)))(p)
        want = scale * _certified(name, kw, p, t)
        np.testing.assert_allclose(np.asarray(g), want, rtol=1e-14, atol=1e-15)


def test_float32_jit_vmap() -> None:
    """float32 under jit and vmap: the same values as optax's and as the eager call."""
    p, t = _inputs("probabilities", np.random.default_rng(4), (3, 4), "float32")
    f = jax.jit(lambda p, t: ox.softmax_cross_entropy(p, t))
    assert f(p, t).dtype == jnp.float32
    assert _ulps(f(p, t), optax.losses.softmax_cross_entropy(p, t), "float32") <= ULPS
    per_row = jax.vmap(ox.softmax_cross_entropy)(p, t)
    np.testing.assert_array_equal(np.asarray(per_row), np.asarray(f(p, t)))
    vg = jax.jit(jax.value_and_grad(lambda p, t: jnp.sum(ox.huber_loss(p, t))))
    v, g = vg(p, t)
    assert np.isfinite(float(v)) and g.shape == p.shape and g.dtype == jnp.float32


_SLOW = pytest.mark.slow


@pytest.mark.parametrize("name", [
    "softmax_cross_entropy",
    pytest.param("poly_loss_cross_entropy", marks=_SLOW),
    pytest.param("kl_divergence", marks=_SLOW),
    pytest.param("cosine_distance", marks=_SLOW),
    pytest.param("cosine_similarity", marks=_SLOW),
])
def test_where_as_optax(name: str) -> None:
    """``where`` per element, a fully masked example included: optax's values; the gradient
    is finite and 0 at the masked entries."""
    p, t = _inputs("probabilities", np.random.default_rng(5), (3, 4), "float32")
    w = jnp.asarray([[True, False, True, True], [True, True, True, False],
                     [False, False, False, False]])
    a = getattr(ox, name)(p, t, where=w)
    assert _ulps(a, getattr(optax.losses, name)(p, t, where=w), "float32") <= ULPS
    g = jax.jit(jax.grad(lambda x: jnp.sum(getattr(ox, name)(x, t, where=w))))(p)
    assert np.all(np.isfinite(np.asarray(g))) and not np.any(np.asarray(g)[~np.asarray(w)])


def test_integer_labels_where_and_axis_as_optax() -> None:
    """Integer labels with a per-example ``where`` and with a tuple ``axis``: optax's values."""
    rng = np.random.default_rng(5)
    p, _ = _inputs("probabilities", rng, (3, 4), "float32")
    rows = jnp.asarray([True, False, True])
    ids = jnp.asarray([0, 3, 1])
    assert _ulps(ox.softmax_cross_entropy_with_integer_labels(p, ids, where=rows),
                 optax.losses.softmax_cross_entropy_with_integer_labels(p, ids, where=rows),
                 "float32") <= ULPS
    x = jnp.asarray(rng.normal(size=(2, 3, 4)), jnp.float32)
    y = jnp.asarray([1, 11])
    assert _ulps(ox.softmax_cross_entropy_with_integer_labels(x, y, axis=(1, 2)),
                 optax.losses.softmax_cross_entropy_with_integer_labels(x, y, axis=(1, 2)),
                 "float32") <= ULPS


# --------------------------------------------------------------------------------------------
# Documented differences from optax (docs/jax.md has each as a reproducer)
# --------------------------------------------------------------------------------------------


def test_hinge_kink_gradient() -> None:
    """At the margin t x = 1 optax's gradient is -t/2 (JAX splits max's tie); the declaration
    says 0."""
    x, t = jnp.asarray([1.0, -1.0]), jnp.asarray([1.0, -1.0])
    ours = jax.grad(lambda x: jnp.sum(ox.hinge_loss(x, t)))(x)
    theirs = jax.grad(lambda x: jnp.sum(optax.losses.hinge_loss(x, t)))(x)
    np.testing.assert_array_equal(np.asarray(ours), [0.0, 0.0])
    np.testing.assert_array_equal(np.asarray(theirs), [-0.5, 0.5])


def test_minus_inf_logits_with_zero_labels() -> None:
    """safe_softmax_cross_entropy: the value and the gradient are finite at a -inf logit with
    label 0 (the gradient there is 0), as optax's."""
    s = jnp.asarray([[0.0, -jnp.inf, 1.0]])
    y = jnp.asarray([[0.5, 0.0, 0.5]])
    v = ox.safe_softmax_cross_entropy(s, y)
    g = jax.grad(lambda s: jnp.sum(ox.safe_softmax_cross_entropy(s, y)))(s)
    assert np.isfinite(float(v[0])) and np.all(np.isfinite(np.asarray(g)))
    assert float(g[0, 1]) == 0.0
    assert _ulps(v, optax.losses.safe_softmax_cross_entropy(s, y), "float32") <= ULPS


def test_cosine_zero_vector_with_epsilon() -> None:
    """A zero prediction with epsilon > 0: the gradient is the declaration's finite one."""
    p, t = jnp.zeros((1, 3)), jnp.asarray([[3.0, 4.0, 0.0]])
    g = jax.grad(lambda p: jnp.sum(ox.cosine_distance(p, t, epsilon=0.01)))(p)
    want = _certified("cosine_distance", {"epsilon": 0.01}, p, t)
    np.testing.assert_allclose(np.asarray(g), want, rtol=1e-6)
    assert np.all(np.isfinite(np.asarray(g)))


def test_integer_labels_out_of_range() -> None:
    """optax: label -1 is the last class, label C gives NaN. Here: DomainError for concrete
    labels, NaN (value and gradient of that example) under jit."""
    s = jnp.asarray([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    bad = jnp.asarray([-1, 0])
    assert np.isfinite(float(optax.losses.softmax_cross_entropy_with_integer_labels(s, bad)[0]))
    with pytest.raises(DomainError, match="`labels`"):
        ox.softmax_cross_entropy_with_integer_labels(s, bad)
    f = jax.jit(ox.softmax_cross_entropy_with_integer_labels)
    v = np.asarray(f(s, bad))
    assert np.isnan(v[0]) and np.isfinite(v[1])
    g = np.asarray(jax.grad(lambda s: jnp.sum(f(s, jnp.asarray([3, 0]))))(s))
    assert np.all(np.isnan(g[0]))


def test_focal_soft_labels_refused() -> None:
    """optax extends the focal loss to soft labels; the declaration is on labels 0 and 1."""
    s, y = jnp.asarray([0.5, -1.0]), jnp.asarray([0.3, 1.0])
    with pytest.raises(DomainError, match="`labels`"):
        ox.sigmoid_focal_loss(s, y)
    assert np.isnan(np.asarray(jax.jit(ox.sigmoid_focal_loss)(s, y))[0])


# --------------------------------------------------------------------------------------------
# Bad input, at trace time
# --------------------------------------------------------------------------------------------


def test_bad_input() -> None:
    s = jnp.ones((2, 3))
    with pytest.raises(DTypeError, match="`logits`"):
        ox.softmax_cross_entropy(jnp.ones((2, 3), jnp.int32), s)
    with pytest.raises(DTypeError, match="`labels`"):
        ox.softmax_cross_entropy_with_integer_labels(s, jnp.asarray([0.0, 1.0]))
    with pytest.raises(ShapeError, match="`labels`"):
        ox.softmax_cross_entropy_with_integer_labels(s, jnp.asarray([0, 1, 2]))
    with pytest.raises(ShapeError, match="`targets`"):
        ox.squared_error(s, jnp.ones((3,)))
    with pytest.raises(ShapeError, match="`labels`"):
        ox.softmax_cross_entropy(s, jnp.ones((4,)))
    with pytest.raises(ParameterError, match="`axis`"):
        ox.softmax_cross_entropy(s, s, axis=jnp.asarray(0))
    with pytest.raises(ParameterError, match="`axis`"):
        ox.kl_divergence(s, s, axis=2)
    with pytest.raises(ParameterError, match="`axis`"):
        jax.jit(lambda s, a: ox.cosine_distance(s, s, axis=a))(s, 1)
    with pytest.raises(ParameterError, match="`delta`"):
        jax.jit(lambda s, d: ox.huber_loss(s, delta=d))(s, 1.0)
    with pytest.raises(DTypeError, match="`predictor_outputs`"):
        ox.hinge_loss(jnp.asarray([1, 2]), jnp.asarray([1, -1]))


def test_every_function_names_a_registered_declaration() -> None:
    for name in ox.__all__:
        assert get_loss(getattr(ox, name).declaration).name == getattr(ox, name).declaration


# --------------------------------------------------------------------------------------------
# The sweep behind ULPS (slow: many compiles)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("name", "kind", "kw", "scale"), CASES, ids=IDS)
def test_values_sweep(name: str, kind: str, kw: dict[str, Any], scale: float, dtype: str) -> None:
    rng = np.random.default_rng(7)
    with jax.enable_x64(dtype == "float64"):
        for _ in range(10):
            p, t = _inputs(kind, rng, (64, 7), dtype)
            a = getattr(ox, name)(p, t, **kw)
            assert a.dtype == p.dtype
            assert _ulps(a, getattr(optax.losses, name)(p, t, **kw), dtype) <= ULPS
