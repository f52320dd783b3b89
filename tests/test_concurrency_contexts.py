"""The precision-carrying semantics under threads: results as in a serial run, and flint's and
mpmath's global precision left as found, however the evaluations interleave."""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import flint
import mpmath
import numpy as np
import pytest

from torchlean.certify.oracle import Oracle
from torchlean.contexts import binary32, exact, interval, precise
from torchlean.contexts import binary32_rounding as rounding
from torchlean.errors import ParameterError
from torchlean.spec.layers import loss as L

P, T = [0.3, -1.7, 2.5], [0.1, 0.4, -0.6]
#: binary32 inputs whose float64 value lies on a binary32 midpoint: only the mpmath fallback
#: rounds them correctly (see tests/test_context_binary32.py)
HARD = [("log", 0x3c413d3a), ("log", 0x41178feb), ("log", 0x6f31a8ec),
        ("log1p", 0x35400003), ("log1p", 0x3efd81ad), ("log1p", 0xbb0ec8c4)]
_FRESH = itertools.count(1)
#: iterations of each worker. Before the lock, with the switch interval below, every race test
#: failed in 10 of 10 runs from 30 rounds on (most from 3); at Python's default interval, 100.
ROUNDS = 300


@pytest.fixture(autouse=True)
def _busy_switching() -> Iterator[None]:
    """Switch threads often, so that interleavings a loaded machine would produce happen here,
    and check that no test leaves either global precision changed."""
    before = sys.getswitchinterval()
    globals_before = (flint.ctx.prec, flint.ctx.dps, mpmath.mp.prec, mpmath.mp.dps)
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)
    assert (flint.ctx.prec, flint.ctx.dps, mpmath.mp.prec, mpmath.mp.dps) == globals_before


def _run(*workers: Callable[[], Any]) -> list[Any]:
    """Run every worker on its own thread, all at once; their results in order."""
    with ThreadPoolExecutor(len(workers)) as pool:
        futures = [pool.submit(w) for w in workers]
        return [f.result(timeout=60) for f in futures]


def _repeat(fn: Callable[[], Any], n: int | None = None) -> Callable[[], list[Any]]:
    return lambda: [fn() for _ in range(ROUNDS if n is None else n)]


def _log_cosh_50() -> Any:
    with mpmath.workdps(50):
        return mpmath.fsum(mpmath.log(mpmath.cosh(mpmath.mpf(p) - mpmath.mpf(t)))
                           for p, t in zip(P, T, strict=True)) / len(P)


def _precise_log_cosh(dps: int) -> Any:
    return L.log_cosh_spec(precise.tensor(P, dps=dps), precise.tensor(T, dps=dps))


def _low_precise() -> Any:
    return _precise_log_cosh(5)


# --------------------------------------------------------------------------------------------
# interval: flint.ctx.prec
# --------------------------------------------------------------------------------------------


def test_interval_enclosures_beside_low_precision_threads() -> None:
    truth = _log_cosh_50()
    low = interval.IntervalContext(prec=4)
    before = flint.ctx.prec

    def coarse() -> Any:
        return L.log_cosh_spec(interval.box([0.9], [1.1]), interval.point([0.0]), ctx=low)

    def default() -> tuple[float, float]:
        return interval.bounds(L.log_cosh_spec(interval.point(P), interval.point(T)))

    results = _run(_repeat(coarse), _repeat(default), _repeat(coarse), _repeat(default))
    for lo, hi in results[1] + results[3]:
        assert lo <= truth <= hi
        assert hi - lo < 1e-14  # still the 80-bit width, not a 4-bit one
    assert flint.ctx.prec == before


# --------------------------------------------------------------------------------------------
# precise, exact, the oracle, binary32: mpmath.mp.prec
# --------------------------------------------------------------------------------------------


def test_precise_50_digits_beside_5_digit_threads() -> None:
    want = _precise_log_cosh(50)
    results = _run(_repeat(_low_precise), _repeat(lambda: _precise_log_cosh(50)),
                   _repeat(_low_precise), _repeat(lambda: _precise_log_cosh(50)))
    assert all(v == want for v in results[1] + results[3])
    assert abs(want - _log_cosh_50()) < mpmath.mpf(10) ** -45


def test_precise_beside_exact_semantics() -> None:
    """sympy sets mpmath's precision while it decides comparisons of the exact semantics."""
    want = _precise_log_cosh(50)

    def symbolic() -> None:
        try:
            for _ in range(10):
                # new inputs each time: sympy caches what it has decided once
                k = next(_FRESH)
                L.log_cosh_spec(exact.tensor([p + k / 1024 for p in P]), exact.tensor(T))
        finally:
            done.set()

    def check() -> list[Any]:
        out = [_precise_log_cosh(50)]
        while not done.is_set() and len(out) < 20 * ROUNDS:
            out.append(_precise_log_cosh(50))
        return out

    done = threading.Event()
    results = _run(symbolic, check)
    assert all(v == want for v in results[1])


def test_oracle_beside_5_digit_threads() -> None:
    oracle = Oracle()
    want = oracle.value(L.log_cosh_spec, np.array(P), np.array(T), {})

    def check() -> Any:
        return oracle.value(L.log_cosh_spec, np.array(P), np.array(T), {})

    results = _run(_repeat(_low_precise), _repeat(check))
    assert all(v == want for v in results[1])


def test_binary32_fallback_beside_5_digit_threads() -> None:
    def rounded() -> list[int]:
        out = []
        for name, pattern in HARD:
            x = np.array([pattern], dtype=np.uint32).view(np.float32)
            out.append(int(getattr(binary32.CONTEXT, name)(x).view(np.uint32)[0]))
        return out

    want = rounded()
    results = _run(_repeat(_low_precise), _repeat(rounded, 100), _repeat(_low_precise))
    assert all(r == want for r in results[1])


def test_nested_use_does_not_deadlock() -> None:
    """The binary32 fallback inside a precise evaluation, and the oracle's own evaluations,
    take the lock again on the same thread (on a daemon thread here: a deadlock fails)."""
    checked: list[bool] = []

    def nested() -> None:
        with precise.PreciseContext(dps=30).scope():
            assert rounding.correctly_rounded("log", np.array([0.5], np.float32))[0] < 0
            assert _precise_log_cosh(50) == _precise_log_cosh(50)
            assert mpmath.mp.dps == 30
        oracle = Oracle()
        with oracle.digits():
            assert oracle.value(L.log_cosh_spec, np.array(P), np.array(T), {}) > 0
        checked.append(True)

    worker = threading.Thread(target=nested, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert checked == [True]


def test_globals_set_by_the_caller_are_kept() -> None:
    old_flint, old_dps = flint.ctx.prec, mpmath.mp.dps

    def default_interval() -> Any:
        return interval.bounds(L.log_cosh_spec(interval.point(P), interval.point(T)))

    try:
        flint.ctx.prec, mpmath.mp.dps = 200, 30
        _run(_repeat(_low_precise), _repeat(_low_precise), _repeat(default_interval),
             _repeat(default_interval))
        assert (flint.ctx.prec, mpmath.mp.dps, mpmath.mp.prec) == (200, 30, 103)
    finally:
        flint.ctx.prec, mpmath.mp.dps = old_flint, old_dps


# --------------------------------------------------------------------------------------------
# bounds on the precision
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prec", [None, 2**40, 2**63, 10**9])
def test_interval_prec_above_the_maximum_is_refused(prec: int | None) -> None:
    prec = interval.MAX_PREC + 1 if prec is None else prec  # None: just above the maximum
    with pytest.raises(ParameterError, match=rf"`prec` must be .* \[2, {interval.MAX_PREC}\]; got"):
        interval.IntervalContext(prec=prec)


def test_interval_prec_at_the_maximum_works() -> None:
    ctx = interval.IntervalContext(prec=interval.MAX_PREC)
    lo, hi = interval.bounds(L.log_cosh_spec(interval.point(P), interval.point(T), ctx=ctx))
    assert lo <= _log_cosh_50() <= hi


@pytest.mark.parametrize("dps", [None, 2**63, 10**9])
def test_precise_dps_above_the_maximum_is_refused(dps: int | None) -> None:
    dps = precise.MAX_DPS + 1 if dps is None else dps  # None: just above the maximum
    expected = rf"`dps` must be .* \[1, {precise.MAX_DPS}\]; got {dps}"
    with pytest.raises(ParameterError, match=expected):
        precise.PreciseContext(dps=dps)
    with pytest.raises(ParameterError, match=expected):
        precise.tensor([1.0], dps=dps)
    with pytest.raises(ParameterError, match="`dps`"):
        Oracle(dps=dps)


def test_precise_dps_at_the_maximum_is_accepted() -> None:
    assert precise.PreciseContext(dps=precise.MAX_DPS).dps == precise.MAX_DPS
    assert precise.tensor([0.5], dps=precise.MAX_DPS).dps == precise.MAX_DPS
