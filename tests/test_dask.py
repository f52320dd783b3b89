"""Losses over chunked Dask arrays: lazy, chunk-preserving, on the threaded scheduler and on a
``distributed.LocalCluster`` over loopback."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

from loss_inputs import smooth_case  # noqa: E402
from spec_functions import NAMES  # noqa: E402

import torchlean  # noqa: E402
from torchlean import LOSSES, DomainError, ShapeError  # noqa: E402

SHAPE, CHUNKS = (6, 4), (3, 2)  # chunked along both axes, the softmax axis included


def _pair(name: str) -> tuple[np.ndarray, np.ndarray]:
    """NumPy inputs in the loss's domain, drawn from its declared zones."""
    p, t, _ = smooth_case(name, SHAPE, seed=7)
    return p, t


class _Counter:
    """Counts the blocks a Dask graph materialises (thread-safe)."""

    def __init__(self) -> None:
        self.n = 0
        self._lock = threading.Lock()

    def __call__(self, block: np.ndarray) -> np.ndarray:
        with self._lock:
            self.n += 1
        return block


def _assert_close(got_v: Any, got_g: Any, want_v: Any, want_g: Any, rtol: float = 1e-14) -> None:
    """Within a few ulps: chunked sums add in another order than NumPy (or its fused kernel);
    ``atol`` follows the largest element, for elements that cancel to ~0 (cosine)."""
    np.testing.assert_allclose(got_v, want_v, rtol=rtol)
    np.testing.assert_allclose(got_g, want_g, rtol=rtol, atol=rtol * np.max(np.abs(want_g)))


def _lazy(x: np.ndarray, counter: _Counter | None = None) -> Any:
    a = da.from_array(x, chunks=CHUNKS)
    if counter is None:
        return a
    # `meta` given, so Dask need not call the function on an empty block to infer it
    return a.map_blocks(counter, meta=np.empty((0,) * a.ndim, dtype=a.dtype))


@pytest.mark.parametrize("name", NAMES)
def test_value_is_lazy_scalar_and_derivative_keeps_chunks(name: str) -> None:
    p, t = _pair(name)
    counter = _Counter()
    dp, dt = _lazy(p, counter), _lazy(t, counter)
    v, g = torchlean.value_and_deriv(name, dp, dt)
    assert counter.n == 0, "building the loss computed blocks"
    assert isinstance(v, da.Array) and v.shape == () and v.dtype == np.float64
    assert isinstance(g, da.Array) and g.chunks == dp.chunks
    # origin: the same spec on the NumPy arrays (float64); chunked sums only reorder additions
    want_v, want_g = torchlean.value_and_deriv(name, p, t)
    got_v, got_g = dask.compute(v, g, scheduler="threads")
    assert counter.n > 0
    _assert_close(got_v, got_g, want_v, want_g)


#: one loss of each kind (elementwise, slice, whole)
ONE_OF_EACH_KIND = list({LOSSES[n].kind: n for n in reversed(NAMES)}.values())


@pytest.mark.parametrize("name", ONE_OF_EACH_KIND)
def test_float32_chunks_stay_float32(name: str) -> None:
    p, t = (x.astype(np.float32) for x in _pair(name))
    v, g = torchlean.value_and_deriv(name, _lazy(p), _lazy(t))
    assert v.dtype == np.float32 and g.dtype == np.float32
    assert g.chunks == _lazy(p).chunks
    want_v, want_g = torchlean.value_and_deriv(name, p, t)
    got_v, got_g = dask.compute(v, g, scheduler="threads")
    assert got_v.dtype == np.float32 and got_g.dtype == np.float32
    # float64 inside, rounded once: the chunked sum may differ from NumPy's in the last bit
    _assert_close(got_v, got_g, want_v, want_g, rtol=2**-23)


def test_many_chunks_stay_many_chunks() -> None:
    # a rectangular grid of 40 x 1 chunks: the derivative keeps it, the value is one reduction;
    # mse = 1/n sum((0.5 x)^2) with d = 0.5 x (hand derivation)
    x = da.arange(4000.0, chunks=100).reshape(400, 10).rechunk((10, 10))
    v, g = torchlean.value_and_deriv("mse", x, 0.5 * x)
    assert g.chunks == x.chunks and len(g.chunks[0]) == 40
    n = 4000
    want = sum((0.5 * k) ** 2 for k in range(n)) / n
    np.testing.assert_allclose(v.compute(scheduler="threads"), want, rtol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_chunk_sizes_are_refused(name: str) -> None:
    # A boolean mask leaves the row count unknown (nan): the mean's n would be nan, and the shape
    # check compared (nan, 8) with (nan, 8).
    p, t = _pair(name)
    lp, lt = _lazy(p), _lazy(t)
    keep = lp[:, 0] == lp[:, 0]
    first, second = (re.escape(a) for a in torchlean.LOSSES[name].arg_names)
    with pytest.raises(ShapeError, match=rf"`{first}` must have known chunk sizes; got shape "
                                         rf"\(\?, 4\) \(call `{first}.compute_chunk_sizes\(\)`"):
        torchlean.value_and_deriv(name, lp[keep], lt[keep])
    with pytest.raises(ShapeError, match=f"`{second}` must have known chunk sizes"):
        torchlean.value_and_deriv(name, lp, lt[lt[:, 0] == lt[:, 0]])
    sized_p, sized_t = lp[keep].compute_chunk_sizes(), lt[keep].compute_chunk_sizes()
    v, _ = torchlean.value_and_deriv(name, sized_p, sized_t)
    with torchlean.kernels.disabled():
        want, _ = torchlean.value_and_deriv(name, p, t)
    np.testing.assert_allclose(v.compute(scheduler="threads"), want, rtol=1e-13)


@pytest.mark.parametrize("name", [n for n in NAMES if LOSSES[n].has_domain_check])
def test_domain_check_is_lazy_and_raises_at_compute(name: str) -> None:
    p, t = _pair(name)
    dom = LOSSES[name].domain
    bad = dom.target_lo - 1.0 if dom.target_lo is not None else dom.target_hi + 1.0
    t[5, 3] = bad  # outside the checked domain: in the last chunk only
    v, g = torchlean.value_and_deriv(name, _lazy(p), _lazy(t))  # no error yet
    # the index in the whole array, not in its chunk (there it is (2, 1)); the chunks compute in
    # order on this thread, under NumPy's error state (KL's log of the bad target is NaN there)
    arg = re.escape(LOSSES[name].arg_names[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        with pytest.raises(DomainError, match=rf"`{arg}` must lie in .*got "
                                              rf"{re.escape(repr(bad))} at index \(5, 3\)"):
            v.compute(scheduler="sync")
        with pytest.raises(DomainError, match=f"`{arg}` must lie in"):
            g.compute(scheduler="sync")
    # the documented switch turns the check off: no error (a term undefined outside the domain,
    # KL's log of a negative target, gives NaN, and NumPy's notice of it is silenced here)
    v, _ = torchlean.value_and_deriv(name, _lazy(p), _lazy(t), check_domain=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        got = v.compute(scheduler="sync")
    assert np.isfinite(got) or np.isnan(got)


def test_nan_in_one_chunk_reaches_the_value_and_only_its_derivative_elements() -> None:
    p, t = _pair("mse")
    p[0, 0] = np.nan
    v, g = torchlean.value_and_deriv("mse", _lazy(p), _lazy(t))
    got_v, got_g = dask.compute(v, g, scheduler="threads")
    assert np.isnan(got_v)
    assert np.isnan(got_g[0, 0]) and np.isfinite(np.delete(got_g.ravel(), 0)).all()


# --------------------------------------------------------------------------------------------
# distributed.LocalCluster on loopback
# --------------------------------------------------------------------------------------------


def _cluster(processes: bool, n_workers: int) -> Any:
    kwargs: dict[str, Any] = {}
    if not processes:
        # in-process workers default to the inproc:// transport; ask for TCP on loopback
        kwargs["protocol"] = "tcp"
    return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                    processes=processes, host="127.0.0.1",
                                    dashboard_address=None, **kwargs)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param((False, 1), id="threads_in_process"),
        pytest.param((True, 2), id="two_worker_processes"),
    ],
)
def client(request: pytest.FixtureRequest) -> Iterator[Any]:
    processes, n_workers = request.param
    with _cluster(processes, n_workers) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.mark.parametrize("name", NAMES)
def test_local_cluster_matches_numpy(client: Any, name: str) -> None:
    p, t = _pair(name)
    v, g = torchlean.value_and_deriv(name, _lazy(p), _lazy(t))
    got_v, got_g = client.gather(client.compute([v, g]))
    # origin: the same spec on the NumPy arrays (float64)
    want_v, want_g = torchlean.value_and_deriv(name, p, t)
    _assert_close(got_v, got_g, want_v, want_g)


def test_local_cluster_domain_error_reaches_the_client(client: Any) -> None:
    p, t = _pair("poisson")
    t[0, 0] = -3.0
    v, _ = torchlean.value_and_deriv("poisson", _lazy(p), _lazy(t))
    with pytest.raises(DomainError, match=r"got -3\.0 at index \(0, 0\)"):
        client.compute(v).result()
