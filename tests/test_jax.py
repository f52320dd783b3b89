"""``torchlean.interop.jax``: every loss as a ``jax.custom_jvp`` function whose derivative and
second derivative are the declared ones.

Origins: the declaration evaluated by NumPy in float64 (value, derivative, second derivative,
Hessian-vector product), hand derivations for the kinks, JAX's own autodiff where the package
leaves the derivative to JAX (along ``target``, a loss without a declared second derivative).
Every loop reads :data:`torchlean.LOSSES`; JAX compiles are slow, so the fast tests jit a few
functions each and the sweeps over every loss and transformation are marked slow.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from loss_inputs import smooth_case

import torchlean
from torchlean import LOSSES, DomainError, DTypeError, ParameterError, ShapeError
from torchlean.errors import BackendError, UnsupportedOperationError

jax = pytest.importorskip("jax")
jnp = jax.numpy
checkify = pytest.importorskip("jax.experimental.checkify")
tj = pytest.importorskip("torchlean.interop.jax")

PACKAGE = [d for d in LOSSES.values() if d.origin == "torchlean"]
CHECKED = [d for d in PACKAGE if d.has_domain_check]
SHAPE = (2, 3)


@pytest.fixture
def x64() -> Iterator[None]:
    with jax.enable_x64(True):
        yield


def _case(decl: Any, seed: int = 0, shape: tuple[int, ...] = SHAPE) -> tuple[Any, Any]:
    p, t, _ = smooth_case(decl.name, shape, seed)
    return p, t


def _n(decl: Any, shape: tuple[int, ...]) -> int:
    return int(np.prod(shape)) if decl.reduction == "mean" else 1


def _declared_hessian(decl: Any, p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The Hessian of the reduced loss from the declaration (NumPy, float64): the diagonal for
    an elementwise loss, the Hessian-vector products with the unit vectors for a slice loss."""
    size = p.size
    if decl.kind == "elementwise":
        return np.diag(np.asarray(decl.second(p, t)).reshape(-1))
    cols = [np.asarray(decl.hvp(p, t, e.reshape(p.shape))).reshape(-1) for e in np.eye(size)]
    return np.stack(cols, axis=1)


# --------------------------------------------------------------------------------------------
# Values, certified derivatives and second derivatives, every package loss (float64)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def every_loss() -> dict[str, Any]:
    """For every package loss, at float64 inputs inside its branch regions: the value, the
    gradient and the Hessian times ``v`` (the JVP of the gradient) of :func:`loss`, and the
    per-example terms with their JVP along ``v``: one compile for all of them (the full
    ``jax.hessian`` of every loss and the second order of the per-example terms are in the
    slow sweep and for two losses below: their compiles are the slow part)."""
    rng = np.random.default_rng(1)
    inputs = {d.name: (*_case(d), rng.standard_normal(SHAPE)) for d in PACKAGE}
    fns = {d.name: (tj.loss(d.name), None if d.kind == "whole" else tj.per_example(d.name))
           for d in PACKAGE}

    def one(name: str, p: Any, t: Any, v: Any) -> dict[str, Any]:
        f, e = fns[name]
        grad = jax.grad(f)
        out = {"value": f(p, t), "grad": grad(p, t),
               "hvp": jax.jvp(lambda q: grad(q, t), (p,), (v,))[1]}
        if e is not None:
            out["per"], out["per_jvp"] = jax.jvp(lambda q: e(q, t), (p,), (v,))
        return out

    with jax.enable_x64(True):
        run = jax.jit(lambda xs: {n: one(n, *x) for n, x in xs.items()})
        got = jax.tree.map(np.asarray, run(jax.tree.map(jnp.asarray, inputs)))
    return {n: (inputs[n], got[n]) for n in inputs}


def test_value_grad_and_hessian_are_the_declarations(every_loss: dict[str, Any]) -> None:
    for decl in PACKAGE:
        (p, t, v), got = every_loss[decl.name]
        assert got["value"].dtype == got["grad"].dtype == np.float64, decl.name
        # origin: the declaration through NumPy in float64; XLA's exp/log may differ by an ulp
        np.testing.assert_allclose(got["value"], decl.value(p, t), rtol=1e-13, atol=1e-300,
                                   err_msg=decl.name)
        np.testing.assert_allclose(got["grad"], decl.deriv(p, t), rtol=1e-13, atol=1e-15,
                                   err_msg=decl.name)
        if decl.has_second:
            np.testing.assert_allclose(got["hvp"], decl.hvp(p, t, v), rtol=1e-12, atol=1e-15,
                                       err_msg=decl.name)
        else:
            # no declared second derivative: JAX differentiates the derivative term itself
            # (origin: a central difference of the declared derivative along v)
            step = 1e-6
            fd = (np.asarray(decl.deriv(p + step * v, t))
                  - np.asarray(decl.deriv(p - step * v, t))) / (2 * step)
            np.testing.assert_allclose(got["hvp"], fd, rtol=1e-6, atol=1e-8, err_msg=decl.name)


def test_hessian_is_the_declared_second_derivative(x64: None) -> None:
    # jax.hessian itself, for an elementwise and a slice loss (every loss: the slow sweep)
    decls = [next(d for d in PACKAGE if d.kind == k and d.has_second)
             for k in ("elementwise", "slice")]
    cases = [_case(d, 8) for d in decls]
    fns = [(tj.loss(d.name), tj.per_example(d.name)) for d in decls]

    def second(f: Any, e: Any, p: Any, t: Any) -> tuple[Any, Any]:
        # the per-example terms: the Hessian of their sum
        return jax.hessian(f)(p, t), jax.hessian(lambda q: jnp.sum(e(q, t)))(p)

    hs = jax.jit(lambda xs: [second(*fe, *x) for fe, x in zip(fns, xs, strict=True)])(
        jax.tree.map(jnp.asarray, cases))
    for decl, (p, t), (h, h_per) in zip(decls, cases, hs, strict=True):
        want = _declared_hessian(decl, p, t)
        np.testing.assert_allclose(np.asarray(h).reshape(p.size, p.size), want, rtol=1e-12,
                                   atol=1e-15, err_msg=decl.name)
        np.testing.assert_allclose(np.asarray(h_per).reshape(p.size, p.size),
                                   want * _n(decl, SHAPE), rtol=1e-12, atol=1e-15,
                                   err_msg=decl.name)


def test_per_example_terms_and_their_derivatives(every_loss: dict[str, Any]) -> None:
    for decl in PACKAGE:
        if decl.kind == "whole":
            with pytest.raises(UnsupportedOperationError, match=decl.name):
                tj.per_example(decl.name)
            continue
        (p, t, v), got = every_loss[decl.name]
        assert got["per"].shape == (SHAPE[:-1] if decl.kind == "slice" else SHAPE), decl.name
        n = _n(decl, SHAPE)
        # the terms sum to the reduced loss (origin: the declaration's reduction)
        np.testing.assert_allclose(np.sum(got["per"]) / n, decl.value(p, t), rtol=1e-13,
                                   err_msg=decl.name)
        # JVP along v: the unreduced derivative term times v, per example
        gv = np.asarray(decl.deriv(p, t)) * n * v
        want = gv.sum(axis=-1) if decl.kind == "slice" else gv
        np.testing.assert_allclose(got["per_jvp"], want, rtol=1e-12, atol=1e-15,
                                   err_msg=decl.name)


# --------------------------------------------------------------------------------------------
# The certified derivative, not JAX's autodiff of the value term
# --------------------------------------------------------------------------------------------


def test_grad_at_a_kink_is_the_declared_choice() -> None:
    # hinge max(0, 1 - t x) at the margin t x = 1: the declaration takes derivative 0; JAX's
    # autodiff of max splits a tie evenly, -t / 2 (hand derivation), so the two differ.
    hinge = LOSSES["hinge"]
    p, t = jnp.asarray([1.0, 0.5]), jnp.asarray([1.0, 1.0])

    @jax.jit
    def grads(p: Any, t: Any) -> tuple[Any, Any, Any]:
        return (jax.grad(tj.loss("hinge"))(p, t),
                jax.grad(lambda q: hinge.value(q, t))(p),  # JAX differentiating the value term
                jax.grad(lambda q: tj.per_example("hinge")(q, t).sum())(p))

    certified, autodiff, per = grads(p, t)
    np.testing.assert_array_equal(certified, hinge.deriv(np.asarray(p), np.asarray(t)))
    np.testing.assert_array_equal(certified, [0.0, -0.5])
    np.testing.assert_array_equal(autodiff, [-0.25, -0.5])
    np.testing.assert_array_equal(per, [0.0, -1.0])  # the per-example form: the same choice


def test_target_tangent_is_jax_derivative_of_the_value() -> None:
    # mse: d/dt mean((p - t)^2) = -2 (p - t) / n (hand derivation)
    p, t = jnp.asarray([0.5, -1.0, 2.0]), jnp.asarray([0.0, 1.0, 1.5])
    mse = tj.loss("mse")
    labels = jnp.asarray([0, 1, 1])

    @jax.jit
    def grads(p: Any, t: Any, labels: Any) -> tuple[Any, ...]:
        return (*jax.grad(mse, argnums=(0, 1))(p, t), jax.grad(mse)(p, labels),
                jax.grad(mse)(p, labels.astype(jnp.float32)))

    gp, gt, g_int, g_float = grads(p, t, labels)
    np.testing.assert_allclose(gt, -2 * (p - t) / 3, rtol=1e-6)
    np.testing.assert_allclose(gp, 2 * (p - t) / 3, rtol=1e-6)
    # integer targets have no tangent; the derivative w.r.t. predicted is unchanged
    np.testing.assert_array_equal(g_int, g_float)


# --------------------------------------------------------------------------------------------
# jit, vmap, jacfwd / jacrev, dtypes
# --------------------------------------------------------------------------------------------


def test_jit_vmap_and_float32() -> None:
    # one compile for several losses: an elementwise, a slice and a whole-tensor one
    decls = [next(d for d in PACKAGE if d.kind == k) for k in ("elementwise", "slice", "whole")]
    fns = [tj.loss(d.name) for d in decls]
    ps, ts = zip(*(jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), _case(d, 3))
                   for d in decls), strict=True)
    row = fns[0]

    @jax.jit
    def run(ps: Any, ts: Any) -> Any:
        return ([jax.value_and_grad(f)(p, t) for f, p, t in zip(fns, ps, ts, strict=True)],
                jax.vmap(jax.value_and_grad(row))(ps[0], ts[0]),
                [jax.value_and_grad(row)(ps[0][i], ts[0][i]) for i in range(SHAPE[0])],
                [(jax.jacfwd(f)(p, t), jax.jacrev(f)(p, t))
                 for f, p, t in zip(fns[:2], ps[:2], ts[:2], strict=True)])

    results, (rows, row_grads), each_row, jacobians = run(ps, ts)
    for decl, (v, g), p, t in zip(decls, results, ps, ts, strict=True):
        assert v.dtype == jnp.float32 and g.dtype == jnp.float32 and g.shape == SHAPE
        # origin: the declaration in float64 on the same (exactly widened) float32 inputs;
        # without x64 JAX computes in float32
        p64, t64 = np.asarray(p, np.float64), np.asarray(t, np.float64)
        np.testing.assert_allclose(v, decl.value(p64, t64), rtol=1e-5, err_msg=decl.name)
        np.testing.assert_allclose(g, decl.deriv(p64, t64), rtol=1e-5, atol=1e-7,
                                   err_msg=decl.name)
    # vmap over rows: each row its own loss (reduced over that row)
    for i, (v, g) in enumerate(each_row):
        np.testing.assert_allclose(rows[i], v, rtol=1e-6)
        np.testing.assert_allclose(row_grads[i], g, rtol=1e-6)
    for fwd, rev in jacobians:
        np.testing.assert_allclose(fwd, rev, rtol=1e-6)


def test_float32_inputs_stay_float32_under_x64(x64: None) -> None:
    decl = next(d for d in PACKAGE if d.kind == "slice" and d.has_second)
    p, t = _case(decl, 4)
    p32 = jnp.asarray(p, dtype=jnp.float32)
    f = tj.loss(decl.name)
    v, g, h = jax.jit(lambda p, t: (f(p, t), jax.grad(f)(p, t), jax.hessian(f)(p, t)))(
        p32, jnp.asarray(t))
    assert v.dtype == g.dtype == h.dtype == jnp.float32
    # evaluated in float64 and rounded once (origin: the float64 declaration)
    p64 = np.asarray(p32, np.float64)
    np.testing.assert_allclose(v, np.float32(decl.value(p64, t)), rtol=2**-23)
    np.testing.assert_allclose(g, decl.deriv(p64, t).astype(np.float32), rtol=2**-23)
    np.testing.assert_allclose(h.reshape(p.size, p.size),
                               _declared_hessian(decl, p64, t).astype(np.float32), rtol=2**-23,
                               atol=1e-37)


# --------------------------------------------------------------------------------------------
# Out-of-range targets: eager DomainError, NaN under jit, checkify
# --------------------------------------------------------------------------------------------


def _bad_target(decl: Any, t: np.ndarray) -> np.ndarray:
    dom = decl.domain
    bad = t.copy()
    bad[0, 0] = dom.target_lo - 1.0 if dom.target_lo is not None else dom.target_hi + 1.0
    return bad


def test_out_of_range_targets_under_jit_give_nan() -> None:
    assert CHECKED, "no loss of the package checks its target domain"
    cases = [_case(d, 5) for d in CHECKED]
    ps = [jnp.asarray(p, dtype=jnp.float32) for p, _ in cases]
    ts = [jnp.asarray(_bad_target(d, t), dtype=jnp.float32) for d, (_, t) in zip(CHECKED, cases,
                                                                                 strict=True)]
    fns = [(tj.loss(d.name), tj.per_example(d.name)) for d in CHECKED]

    @jax.jit
    def run(ps: list[Any], ts: list[Any]) -> list[Any]:
        return [(*jax.value_and_grad(f)(p, t), e(p, t)) for (f, e), p, t in zip(fns, ps, ts,
                                                                                 strict=True)]

    for decl, (v, g, per), p, t in zip(CHECKED, run(ps, ts), ps, ts, strict=True):
        assert np.isnan(v), decl.name
        # the derivative is NaN where the target is bad (for a slice loss, in its slice)
        assert np.isnan(g[0, 0]), decl.name
        assert np.isnan(per[0] if decl.kind == "slice" else per[0, 0]), decl.name
        ok = np.ones(SHAPE, bool)
        ok[0] = False
        assert np.all(np.isfinite(np.asarray(g)[ok])), decl.name
        # eager: the package's DomainError naming the argument
        with pytest.raises(DomainError, match=f"`{decl.arg_names[1]}` must lie in"):
            tj.loss(decl.name)(p, t)
        # under grad without jit the target is concrete: checked as well
        with pytest.raises(DomainError, match="at index"):
            jax.grad(lambda q, t=t, decl=decl: tj.per_example(decl.name)(q, t).sum())(p)
    # check_domain=False: no check, the terms see the target as given
    assert tj.loss(CHECKED[0].name, check_domain=False)(ps[0], ts[0]).dtype == jnp.float32


def test_domain_check_of_the_declaration_under_jit() -> None:
    # the package's own entry points on JAX tracers: NaN, not TracerBoolConversionError
    decl = CHECKED[0]
    p, t = _case(decl, 6)
    bad = jnp.asarray(_bad_target(decl, t))
    v = jax.jit(lambda q, s: decl.value(q, s))(jnp.asarray(p), bad)
    v2, g2 = jax.jit(lambda q, s: torchlean.value_and_deriv(decl.name, q, s))(jnp.asarray(p),
                                                                              bad)
    assert np.isnan(v) and np.isnan(v2) and np.isnan(g2[0, 0])
    # a concrete target closed over inside jit is checked while tracing
    with pytest.raises(DomainError, match="at index"):
        jax.jit(lambda q: tj.loss(decl.name)(q, bad))(jnp.asarray(p))


def test_checkify_reports_the_bad_target() -> None:
    decl = CHECKED[0]
    p, t = _case(decl, 7)
    p, bad = jnp.asarray(p, dtype=jnp.float32), jnp.asarray(_bad_target(decl, t), jnp.float32)
    f = tj.loss(decl.name, checkify=True)
    err, value = checkify.checkify(jax.jit(jax.value_and_grad(f)))(p, bad)
    with pytest.raises(checkify.JaxRuntimeError, match=rf"`{decl.arg_names[1]}` must lie in .* "
                                                       rf"at flat index 0"):
        err.throw()
    assert np.isnan(value[0])
    err, value = checkify.checkify(jax.jit(f))(p, jnp.asarray(t, jnp.float32))
    assert err.get() is None and np.isfinite(value)


def test_row_checking_kernels_under_jit() -> None:
    # a slice loss whose JAX kernel checks the target rows itself: the row with a target
    # outside the domain is NaN in the value, the derivative and the Hessian, the other rows
    # are as with good targets, and checkify still reports the first bad element
    decls = [d for d in CHECKED if d.kind == "slice" and d.jax_kernel is not None]
    assert decls
    for decl in decls:
        p, t = _case(decl, 8)
        p, t = jnp.asarray(p), jnp.asarray(t)
        bad = jnp.asarray(_bad_target(decl, np.asarray(t)))
        with jax.enable_x64(True):
            f = tj.per_example(decl.name)

            def total(q: Any, s: Any, f: Any = f) -> Any:
                return jnp.sum(f(q, s))

            v, g = jax.jit(jax.value_and_grad(total))(p, bad)
            h = np.asarray(jax.jit(jax.hessian(total))(p, bad))
            _, g0 = jax.jit(jax.value_and_grad(total))(p, t)
            h0 = np.asarray(jax.jit(jax.hessian(total))(p, t))
            per = np.asarray(jax.jit(f)(p, bad))
        assert np.isnan(v) and np.isnan(per[0]) and np.all(np.isfinite(per[1:])), decl.name
        assert np.all(np.isnan(np.asarray(g)[0])), decl.name
        np.testing.assert_allclose(np.asarray(g)[1:], np.asarray(g0)[1:], rtol=1e-14)
        assert np.all(np.isnan(h[0, :, 0, :])), decl.name
        np.testing.assert_allclose(h[1:, :, 1:, :], h0[1:, :, 1:, :], rtol=1e-13, atol=1e-300)
        err, _ = checkify.checkify(jax.jit(tj.per_example(decl.name, checkify=True)))(p, bad)
        with pytest.raises(checkify.JaxRuntimeError, match="at flat index 0"):
            err.throw()


# --------------------------------------------------------------------------------------------
# Bad input at trace time; parameters; inputs left alone; user losses
# --------------------------------------------------------------------------------------------


def test_bad_input_raises_the_package_errors_when_traced() -> None:
    mse = jax.jit(tj.loss("mse"))
    p = jnp.zeros(SHAPE)
    with pytest.raises(ShapeError, match="`target` must have the shape of `predicted`"):
        mse(p, jnp.zeros(3))
    with pytest.raises(DTypeError, match="`predicted` must have a real floating-point dtype"):
        mse(jnp.zeros(SHAPE, dtype=jnp.int32), p)
    with pytest.raises(DTypeError, match="`target` must have a real floating-point, integer"):
        mse(p, jnp.zeros(SHAPE, dtype=jnp.complex64))
    with pytest.raises(ShapeError, match="`logits` must have at least one axis"):
        jax.jit(tj.per_example("cross_entropy_logits"))(jnp.float32(0), jnp.float32(1))
    with pytest.raises(BackendError, match="`predicted` must be a JAX array"):
        tj.loss("mse")(pytest.importorskip("array_api_strict").zeros(2), np.zeros(2))
    with pytest.raises(ParameterError, match="`delta` must be"):
        tj.loss("huber", delta=-1.0)
    with pytest.raises(ParameterError, match="`delta` is not a parameter of the mse loss"):
        tj.per_example("mse", delta=1.0)
    with pytest.raises(ParameterError, match="`name` must be one of"):
        tj.loss("no_such_loss")


def test_inputs_are_not_modified() -> None:
    p, t = np.array([0.5, 2.0]), np.array([1.0, -3.0])
    keep = p.copy(), t.copy()
    v = tj.loss("poisson", check_domain=False)(p, t)
    assert v.dtype == jnp.float32  # NumPy input becomes a JAX array (float32 without x64)
    np.testing.assert_array_equal(p, keep[0])
    np.testing.assert_array_equal(t, keep[1])


def test_a_user_loss(x64: None) -> None:
    from torchlean.spec.core.declaration import unregister

    @torchlean.define_loss("jax_test_quartic", params={"scale": 1.0}, reduction="sum")
    def quartic(c: Any, p: Any, t: Any, *, scale: float) -> Any:
        d = p - t
        return scale * d * d * d * d

    @quartic.deriv
    def _(c: Any, p: Any, t: Any, *, scale: float) -> Any:
        d = p - t
        return 4 * scale * d * d * d

    try:
        p, t = jnp.asarray([0.5, -1.0]), jnp.asarray([0.0, 0.5])
        f = tj.loss("jax_test_quartic", scale=2.0)
        # hand derivation: 8 d^3, and without a declared second derivative JAX differentiates
        # the derivative term: 24 d^2
        d = p - t
        e = tj.per_example(quartic, scale=2.0)  # the declaration itself, not its name
        g, h, per = jax.jit(lambda p, t: (jax.grad(f)(p, t), jax.hessian(f)(p, t), e(p, t)))(
            p, t)
        np.testing.assert_allclose(g, 8 * d**3, rtol=1e-15)
        np.testing.assert_allclose(h, np.diag(24 * d**2), rtol=1e-15)
        np.testing.assert_allclose(per, 2 * d**4, rtol=1e-15)
    finally:
        unregister("jax_test_quartic")


# --------------------------------------------------------------------------------------------
# The sweep: every loss, every transformation, both precisions
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("enable_x64", [False, True])
@pytest.mark.parametrize("name", [d.name for d in PACKAGE])
def test_every_loss_under_every_transformation(name: str, enable_x64: bool) -> None:
    decl = LOSSES[name]
    with jax.enable_x64(enable_x64):
        dtype = jnp.float64 if enable_x64 else jnp.float32
        rtol = 1e-12 if enable_x64 else 2e-5
        for seed in range(3):
            p, t = _case(decl, 10 + seed, (3, 4))
            jp, jt = jnp.asarray(p, dtype), jnp.asarray(t, dtype)
            p64, t64 = np.asarray(jp, np.float64), np.asarray(jt, np.float64)
            f = tj.loss(name)
            v, g = jax.jit(jax.value_and_grad(f))(jp, jt)
            assert v.dtype == g.dtype == dtype
            np.testing.assert_allclose(v, decl.value(p64, t64), rtol=rtol, atol=1e-30)
            want_g = np.asarray(decl.deriv(p64, t64))
            # atol: rtol of the largest element, for elements that cancel to near 0
            np.testing.assert_allclose(g, want_g, rtol=rtol, atol=rtol * np.abs(want_g).max())
            h = np.asarray(jax.jit(jax.hessian(f))(jp, jt)).reshape(12, 12)
            if decl.has_second:
                np.testing.assert_allclose(h, _declared_hessian(decl, p64, t64), rtol=rtol,
                                           atol=1e-6 * rtol)
            if decl.kind != "slice":
                # reverse over reverse transposes the declared second derivative: a slice
                # loss's Hessian-vector product term must then be linear in JAX's sense
                # (docs/jax.md); second*v always is
                hr = np.asarray(jax.jit(jax.jacrev(jax.jacrev(f)))(jp, jt)).reshape(12, 12)
                np.testing.assert_allclose(hr, h, rtol=rtol, atol=1e-6 * rtol)
            vm = jax.jit(jax.vmap(jax.value_and_grad(f)))(jp, jt)
            for i in range(3):
                np.testing.assert_allclose(vm[0][i], decl.value(p64[i], t64[i]), rtol=rtol)
                row = np.asarray(decl.deriv(p64[i], t64[i]))
                np.testing.assert_allclose(vm[1][i], row, rtol=rtol,
                                           atol=rtol * np.abs(row).max())
            if decl.kind == "whole":
                continue
            e = tj.per_example(name)
            per = jax.jit(e)(jp, jt)
            np.testing.assert_allclose(np.sum(np.asarray(per, np.float64)) / _n(decl, (3, 4)),
                                       decl.value(p64, t64), rtol=10 * rtol)
            jac = np.asarray(jax.jit(jax.jacrev(e))(jp, jt))
            np.testing.assert_allclose(jac, jax.jit(jax.jacfwd(e))(jp, jt), rtol=rtol,
                                       atol=1e-6 * rtol)
            if decl.has_second:
                hp = jax.jit(jax.hessian(lambda q, e=e, jt=jt: jnp.sum(e(q, jt))))(jp)
                np.testing.assert_allclose(
                    np.asarray(hp).reshape(12, 12),
                    _declared_hessian(decl, p64, t64) * _n(decl, (3, 4)), rtol=rtol,
                    atol=1e-6 * rtol)
