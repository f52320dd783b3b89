"""The binary32 semantics: correct rounding of every elementary function, left-fold sums, every
loss against a 50-digit mpmath reference, golden bit patterns, NaN propagation and errors.

Oracles: ``_rn32`` rounds an mpmath value to binary32 through mpmath's own 24-bit
round-to-nearest-even (a different route from the one under test, which compares neighbours);
the loss references are the declarations evaluated by the tests' 50-digit oracle
(``tests/oracle.py``) at the exact binary32 inputs drawn from each loss's zones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import mpmath
import numpy as np
import oracle
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loss_inputs import smooth_case

import torchlean
from torchlean.contexts import binary32, infer_context
from torchlean.contexts import binary32_rounding as rounding
from torchlean.contexts.binary32 import CONTEXT as B
from torchlean.contexts.binary32 import Binary32Array
from torchlean.errors import BackendError, DomainError, DTypeError, ShapeError
from torchlean.spec.layers import loss as L

F32 = np.float32
FUNCTIONS = ("exp", "expm1", "log", "log1p", "tanh")


def bits(x: Any) -> np.ndarray:
    """The binary32 bit patterns of ``x`` (so that NaN == NaN and -0.0 != 0.0 in comparisons)."""
    return np.asarray(x, dtype=F32).view(np.uint32)


def hexbits(x: Any) -> list[str]:
    return [f"{int(b):08x}" for b in bits(x).reshape(-1)]


def from_bits(patterns: Sequence[int]) -> np.ndarray:
    return np.array(patterns, dtype=np.uint32).view(F32)


def _rn32(v: Any) -> F32:
    """The binary32 number nearest to the mpmath real ``v``, ties to even.

    Normal range: mpmath rounds to 24 bits (its default rounding is to nearest, ties to even).
    Subnormal range: round ``v * 2**149`` to an integer by hand. ``|result| >= 2**128``: inf.
    """
    if v == 0:
        return F32(0.0)
    _, e = mpmath.frexp(v)  # v = m 2**e with 1/2 <= |m| < 1
    if e - 1 >= -126:
        with mpmath.workprec(24):
            w = +v
    else:
        k = mpmath.ldexp(v, 149)
        n = mpmath.floor(k)
        frac = k - n
        if frac > 0.5 or (frac == 0.5 and int(n) % 2):
            n += 1
        w = mpmath.ldexp(n, -149)
    if abs(w) >= mpmath.ldexp(1, 128):
        return F32(np.inf if w > 0 else -np.inf)
    r = F32(float(w))
    return F32(-0.0) if (r == 0 and v < 0) else r


def _mp_reference(name: str, x: float) -> F32:
    """``RN32(f(x))`` from a 60-digit mpmath value (at a zero, which mpmath does not sign: the
    exact C99 result, 1 for exp and -inf for log, else the zero itself)."""
    if x == 0:
        return F32({"exp": 1.0, "log": -np.inf}.get(name, x))
    with mpmath.workdps(60):
        return _rn32(getattr(mpmath, name)(mpmath.mpf(x)))


# ---------------------------------------------------------------------------------------------
# The oracle itself
# ---------------------------------------------------------------------------------------------

def _two(k: int) -> Any:
    return mpmath.ldexp(1, k)


# Each value is built inside a 300-bit context (at 53 bits 1 + 2**-24 + 2**-80 would collapse).
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # hand derivations: 1 + 2**-24 is the midpoint of 1 and 1 + 2**-23 -> even (1)
        (lambda: 1 + _two(-24), 1.0),
        # the midpoint of 1 + 2**-23 (odd) and 1 + 2**-22 (even)
        (lambda: 1 + 3 * _two(-24), 1 + 4 * 2.0**-24),
        (lambda: 1 + _two(-24) + _two(-80), 1 + 2.0**-23),  # just above the midpoint
        (lambda: _two(-150), 0.0),  # midpoint of 0 and the least subnormal -> 0 (even)
        (lambda: 3 * _two(-150), 2.0**-148),  # between 2**-149 (odd) and 2**-148 (even)
        (lambda: -_two(-151), -0.0),  # rounds to zero, keeps the sign
        # (2 - 2**-24) 2**127, the midpoint of the largest finite number and 2**128: inf
        (lambda: _two(128) - _two(103), np.inf),
        (lambda: _two(128) - _two(103) - _two(60), float(np.finfo(F32).max)),
    ],
    ids=["tie-to-1", "tie-up-to-even", "above-tie", "subnormal-tie-to-0", "subnormal-tie-even",
         "negative-zero", "overflow-threshold", "below-overflow"],
)
def test_oracle_and_round_mpf_agree_on_hand_cases(value: Callable[[], Any],
                                                  expected: float) -> None:
    with mpmath.workprec(300):
        v = value()
        assert bits(_rn32(v)) == bits(F32(expected))
        assert bits(rounding.round_mpf_to_binary32(v)) == bits(F32(expected))


@settings(max_examples=150, deadline=None)
@given(st.floats(width=32, allow_nan=False, allow_infinity=False),
       st.sampled_from([-1, 0, 1]), st.integers(40, 200))
def test_round_mpf_near_midpoints(a: float, side: int, k: int) -> None:
    """Values at and next to the midpoint of two neighbours round like the oracle."""
    lo = F32(a)
    with np.errstate(over="ignore"):
        hi = np.nextafter(lo, F32(np.inf))
    if np.isinf(hi):
        return
    with mpmath.workprec(400):
        mid = (mpmath.mpf(float(lo)) + mpmath.mpf(float(hi))) / 2
        v = mid + side * abs(mid) * mpmath.ldexp(1, -k) if mid != 0 else mid
        assert bits(rounding.round_mpf_to_binary32(v)) == bits(_rn32(v))


# ---------------------------------------------------------------------------------------------
# Correctly rounded elementary functions
# ---------------------------------------------------------------------------------------------

# Domains where the function is not trivially 0, +-1 or inf (and a little beyond, to cover the
# overflow and underflow boundaries).
_DOMAINS: dict[str, tuple[float, float]] = {
    "exp": (-110.0, 95.0),
    "expm1": (-20.0, 95.0),
    "log": (0.0, float(np.finfo(F32).max)),
    "log1p": (-1.0, float(np.finfo(F32).max)),
    "tanh": (-12.0, 12.0),
}


def _check_correctly_rounded(name: str, xs: np.ndarray) -> None:
    got = getattr(B, name)(xs.astype(F32))
    want = np.array([_mp_reference(name, float(x)) for x in xs.reshape(-1)], dtype=F32)
    mismatch = np.flatnonzero(bits(got).reshape(-1) != bits(want))
    assert mismatch.size == 0, [
        (float(xs.reshape(-1)[i]), float(got.reshape(-1)[i]), float(want[i])) for i in mismatch
    ]


@pytest.mark.parametrize("name", FUNCTIONS)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_random_inputs_are_correctly_rounded(name: str, data: st.DataObject) -> None:
    lo, hi = _DOMAINS[name]
    xs = data.draw(st.lists(st.floats(lo, hi, width=32, exclude_min=True), min_size=1,
                            max_size=40))
    _check_correctly_rounded(name, np.array(xs, dtype=F32))


@pytest.mark.parametrize("name", FUNCTIONS)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_small_inputs_are_correctly_rounded(name: str, data: st.DataObject) -> None:
    """Tiny arguments, where f(x) ~ 1 + x or ~ x sits next to a rounding boundary."""
    mag = data.draw(st.lists(st.floats(2.0**-100, 2.0**-10, width=32), min_size=1, max_size=40))
    sign = 1.0 if name == "log" else data.draw(st.sampled_from([-1.0, 1.0]))
    _check_correctly_rounded(name, sign * np.array(mag, dtype=F32))


# Every finite binary32 input whose binary64 library value lies within 2**-26 binary32 ulps of a
# binary32 rounding midpoint, found by scanning every input of each domain once (binary64 value
# from NumPy, distance to the nearest midpoint of its two binary32 neighbours).
HARD_INPUTS: dict[str, list[int]] = {
    "exp": [
        0x36fdffc1, 0x377eff81, 0x383a3ef1, 0x38e69cc1, 0x39c6be5b, 0x39e5bb1d, 0x3d1a274e,
        0x4001b249, 0x40315b33, 0xb3000000, 0xbae0e25c, 0xbbf0edf1, 0xc16912cd, 0xc2b2e798,
    ],
    "expm1": [
        0x33b504f3, 0x34ca62c1, 0x36322b1b, 0x37b61385, 0x3a254e7a, 0x3dc252dd, 0x4001b249,
        0x40315b33, 0xb3800000, 0xb675cbfc, 0xbb7b3b6c,
    ],
    "tanh": [0x3ac37de2],
    "log": [
        0x022ae487, 0x064cb44b, 0x07c060fa, 0x0dc8bba4, 0x0f61ff63, 0x111c87f8, 0x145cb6d4,
        0x14907055, 0x158772eb, 0x16c5ee7a, 0x18b06f2a, 0x1a8446cb, 0x1aac80dc, 0x1b81ab52,
        0x1dc9e7c1, 0x1f116ab8, 0x22925ad4, 0x22f6d580, 0x2423c085, 0x25be734f, 0x25f12e61,
        0x2758eec4, 0x27a51454, 0x28e3fa26, 0x29e6126b, 0x29fd22f8, 0x2c4c24b7, 0x2e492984,
        0x38dcbe38, 0x39c31348, 0x3bf86ef0, 0x3c413d3a, 0x3e2b3421, 0x3fd364d7, 0x41178feb,
        0x44bc4360, 0x464d5b2b, 0x4665a9a6, 0x46ca6c75, 0x4b77325a, 0x4bf70db3, 0x4c5d65a5,
        0x4d604ebe, 0x4e85f412, 0x4fe4ab24, 0x54af989d, 0x5b98e163, 0x5d800341, 0x5d8b2d5b,
        0x5ee8984e, 0x5f64c24a, 0x62b467ba, 0x63b134d9, 0x64e27fa3, 0x65d890d3, 0x66a8c860,
        0x66abbd63, 0x6914cb96, 0x6d1f23eb, 0x6e7054f2, 0x6f31a8ec, 0x736cc271, 0x7405dee8,
        0x79e7ec37, 0x7d98b8f4,
    ],
    "log1p": [
        0x35400003, 0x36dedace, 0x3710001b, 0x3770004b, 0x37c6e0e0, 0x3cf58230, 0x3ddbfec3,
        0x3ebe9143, 0x3efd81ad, 0x3f26c9ae, 0x41078feb, 0x44bc2360, 0x464d572b, 0x4665a5a6,
        0x46ca6a75, 0x4b773259, 0x4e599333, 0x4ee5f0e7, 0x50da4bf6, 0x542dfac1, 0x55185f82,
        0x5588e13b, 0x5b98e163, 0x5d800341, 0x5d8b2d5b, 0x5ee8984e, 0x5f64c24a, 0x62b467ba,
        0x63b134d9, 0x64e27fa3, 0x65d890d3, 0x66a8c860, 0x66abbd63, 0x6914cb96, 0x6d1f23eb,
        0x6e7054f2, 0x6f31a8ec, 0x736cc271, 0x7405dee8, 0x79e7ec37, 0x7d98b8f4, 0xb3b504f3,
        0xb53ffffd, 0xb619776c, 0xb70fffe5, 0xb76fffb5, 0xb7c6e012, 0xba800b50, 0xbb0ec8c4,
    ],
}

# Inputs whose binary64 value is exactly a binary32 midpoint (under NumPy 2.4 on x86-64), so that
# rounding it once more goes the wrong way, with the correctly rounded result (from _rn32 of a
# 60-digit value). The plain binary64 -> binary32 conversion gives the neighbour here.
DOUBLE_ROUNDING_TRAPS: list[tuple[str, int, int]] = [
    ("log", 0x3c413d3a, 0xc08e158f),
    ("log", 0x41178feb, 0x400fe5e7),
    ("log", 0x4c5d65a5, 0x418f034b),
    ("log", 0x65d890d3, 0x4254d1f9),
    ("log", 0x6f31a8ec, 0x42845a89),
    ("log1p", 0x35400003, 0x353fffff),
    ("log1p", 0x3710001b, 0x370ffff3),
    ("log1p", 0x3efd81ad, 0x3ecdeee1),
    ("log1p", 0x41078feb, 0x400fe5e7),
    ("log1p", 0x65d890d3, 0x4254d1f9),
    ("log1p", 0x6f31a8ec, 0x42845a89),
    ("log1p", 0xb53ffffd, 0xb5400001),
    ("log1p", 0xb70fffe5, 0xb710000d),
    ("log1p", 0xbb0ec8c4, 0xbb0ef0a5),
]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_hard_inputs_near_midpoints(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[float] = []
    original = rounding._mp_rounded

    def counting(fn: str, x: float) -> F32:
        calls.append(x)
        return original(fn, x)

    monkeypatch.setattr(rounding, "_mp_rounded", counting)
    xs = from_bits(HARD_INPUTS[name])
    _check_correctly_rounded(name, xs)
    # Each of them is within 2**-49 relative of a midpoint: the guard band sends all of them to
    # the mpmath fallback.
    assert len(calls) == xs.size


@pytest.mark.parametrize(("name", "x", "want"), DOUBLE_ROUNDING_TRAPS,
                         ids=[f"{n}-{x:08x}" for n, x, _ in DOUBLE_ROUNDING_TRAPS])
def test_double_rounding_traps(name: str, x: int, want: int) -> None:
    got = getattr(B, name)(from_bits([x]))
    assert hexbits(got) == [f"{want:08x}"]
    assert hexbits(_mp_reference(name, float(from_bits([x])[0]))) == [f"{want:08x}"]


@pytest.mark.parametrize("name", FUNCTIONS)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_mpmath_fallback_alone_is_correctly_rounded(name: str, data: st.DataObject) -> None:
    """The fallback path on ordinary inputs (the guard band rarely sends those to it)."""
    lo, hi = _DOMAINS[name]
    x = data.draw(st.floats(lo, hi, width=32, exclude_min=True).filter(lambda v: v != 0))
    assert bits(rounding._mp_rounded(name, x)) == bits(_mp_reference(name, x))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_nearest_midpoint_inputs_of_a_window(name: str) -> None:
    """Scan 2**18 consecutive inputs and check the 24 whose binary64 values lie nearest to a
    binary32 midpoint (a fresh sample of hard cases each function)."""
    start = {"exp": 0x3f000000, "expm1": 0xbe800000, "log": 0x3f800001, "log1p": 0x3c000000,
             "tanh": 0x3e000000}[name]
    xs = np.arange(start, start + 2**18, dtype=np.uint32).view(F32)
    y = rounding.FUNCTIONS[name](xs.astype(np.float64))
    r = y.astype(F32)
    nb = np.where(y > r, np.nextafter(r, F32(np.inf)), np.nextafter(r, F32(-np.inf)))
    mid = (r.astype(np.float64) + nb.astype(np.float64)) / 2
    dist = np.abs(y - mid) / np.abs(nb.astype(np.float64) - r.astype(np.float64))
    _check_correctly_rounded(name, xs[np.argsort(dist, kind="stable")[:24]])


_SPECIAL = [np.inf, -np.inf, np.nan, 0.0, -0.0, -1.0, -2.0, 1.0, float(np.finfo(F32).max),
            float(np.finfo(F32).smallest_subnormal), -float(np.finfo(F32).smallest_subnormal)]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_special_values_follow_c99(name: str) -> None:
    """inf, nan, signed zeros and domain edges: the binary64 C99 results rounded to binary32."""
    xs = np.array(_SPECIAL, dtype=F32)
    with np.errstate(all="ignore"):
        want = rounding.FUNCTIONS[name](xs.astype(np.float64)).astype(F32)
    got = getattr(B, name)(xs)
    np.testing.assert_array_equal(bits(got), bits(want))
    # a few stated by hand: exp(-inf) = 0, log(0) = -inf, log1p(-1) = -inf, tanh(-0) = -0
    assert bits(B.exp(F32(-np.inf))) == bits(F32(0.0))
    assert B.log(F32(0.0)) == -np.inf and B.log1p(F32(-1.0)) == -np.inf
    assert bits(B.tanh(F32(-0.0))) == bits(F32(-0.0))
    assert np.isnan(B.log(F32(-1.0)))


def test_elementary_functions_keep_shape_and_scalars() -> None:
    x = np.arange(6, dtype=F32).reshape(2, 3).T  # non-contiguous
    out = B.exp(x)
    assert out.shape == (3, 2) and out.dtype == F32
    np.testing.assert_array_equal(out, B.exp(np.ascontiguousarray(x)))
    assert isinstance(B.log(F32(2.0)), F32)


# ---------------------------------------------------------------------------------------------
# Sums: the left fold
# ---------------------------------------------------------------------------------------------


def _left_fold(x: np.ndarray) -> F32:
    acc = F32(0.0) if x.size == 0 else x.reshape(-1)[0]
    with np.errstate(over="ignore", invalid="ignore"):
        for v in x.reshape(-1)[1:]:
            acc = F32(acc + v)
    return acc


def test_left_fold_differs_from_pairwise() -> None:
    # x = [1, e x 15], e = 2**-24 (hand derivation). Left fold: 1 + e is a tie and rounds to
    # the even 1, fifteen times: 1. Halving pairwise: the second half is 8e, the first
    # ((1 + e) + 2e) + 4e = 1 + 3 * 2**-23 (every step exact after the first), total
    # 1 + 7 * 2**-23. The exact sum 1 + 7.5 * 2**-23 rounds (tie, to even) to 1 + 2**-20.
    x = np.array([1.0] + [2.0**-24] * 15, dtype=F32)

    def halving(v: np.ndarray) -> F32:
        return v[0] if v.size == 1 else F32(halving(v[: v.size // 2]) + halving(v[v.size // 2:]))

    assert bits(B.sum(x)) == bits(F32(1.0))
    assert halving(x) == F32(1 + 7 * 2.0**-23)
    assert bits(B.sum(x.reshape(4, 4), axis=None)) == bits(F32(1.0))
    assert bits(B.sum(np.stack([x, x]), axis=1)).tolist() == bits(F32([1.0, 1.0])).tolist()
    assert bits(L.to_scalar_spec(binary32.tensor(x))) == bits(F32(1.0))


_ANY32 = st.floats(-(2.0**100), 2.0**100, width=32)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=3), st.data())
def test_sum_is_the_left_fold_along_every_axis(shape: list[int], data: st.DataObject) -> None:
    n = int(np.prod(shape))
    vals = data.draw(st.lists(_ANY32, min_size=n, max_size=n))
    x = np.array(vals, dtype=F32).reshape(shape)
    assert bits(B.sum(x)) == bits(_left_fold(x))
    assert B.sum(x, keepdims=True).shape == (1,) * len(shape)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    want = np.apply_along_axis(_left_fold, axis, x) if x.size else np.zeros(
        np.delete(shape, axis), dtype=F32)
    got = B.sum(x, axis=axis)
    assert got.dtype == F32
    np.testing.assert_array_equal(bits(got), bits(want).reshape(got.shape))
    np.testing.assert_array_equal(bits(B.sum(x, axis=axis, keepdims=True)),
                                  bits(np.expand_dims(got, axis)))


def test_norm_is_sqrt_of_the_folded_squares_and_overflows_literally() -> None:
    x = np.array([3.0, 4.0, 1e-3], dtype=F32)
    with B.scope():
        assert bits(B.norm(x)) == bits(np.sqrt(_left_fold(x * x)))
        # (2e19)**2 = 4e38 > 3.4e38: the literal binary32 formula overflows (documented).
        assert B.norm(np.array([2e19], dtype=F32)) == np.inf
        assert B.norm(np.zeros((0,), dtype=F32)) == 0.0


def test_exp_shift_is_the_slice_maximum() -> None:
    x = np.array([[1.0, 5.0, -2.0], [np.inf, 0.0, 1.0], [np.nan, 1.0, 2.0]], dtype=F32)
    np.testing.assert_array_equal(B.exp_shift(x, -1), [[5.0], [0.0], [0.0]])
    assert B.exp_shift(np.zeros((2, 0), dtype=F32), -1).shape == (2, 1)


# ---------------------------------------------------------------------------------------------
# Every loss: runs, float32, agrees with 50-digit mpmath
# ---------------------------------------------------------------------------------------------

NAMES = tuple(n for n, d in torchlean.LOSSES.items() if d.origin == "torchlean")


def _inputs(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A (3, 4) case from the loss's zones (away from kinks and clamps, so the reference needs
    no branch choice at a boundary), rounded to binary32."""
    p, t, _ = smooth_case(name, (3, 4), seed=20240613)
    return p.astype(F32), t.astype(F32)


def _ulps(got: Any, ref: Any, scale: Any) -> float:
    """|got - ref| in binary32 ulps of ``scale`` (the oracle's scaled ulps)."""
    return oracle.scaled_ulps(float(got), ref, scale, F32)


@pytest.mark.parametrize("name", NAMES)
def test_every_loss_runs_in_binary32_and_matches_mpmath(name: str) -> None:
    p32, t32 = _inputs(name)
    p, t = binary32.tensor(p32), binary32.tensor(t32)
    value, deriv = torchlean.value_and_deriv(name, p, t)
    assert type(value) is F32
    assert type(deriv) is Binary32Array and deriv.dtype == F32 and deriv.shape == p.shape
    # the 50-digit oracle on the exact binary32 inputs: the value and the derivative term
    entry = torchlean.LOSSES[name]
    ref_v = oracle.exact(entry.value, p32, t32)[()]
    ref_g = list(oracle.exact(entry.deriv, p32, t32).reshape(-1))
    # A dozen binary32 roundings each, most of them exact or of one sign: measured at most
    # 1 ulp for the values and 1.3 ulps for the derivatives; 4 leaves room, no more.
    assert _ulps(value, ref_v, ref_v) <= 4, (float(value), ref_v)
    # Derivative: elementwise, in ulps of its largest element (an element that cancels,
    # such as softmax * mass - t, is small next to its terms).
    scale = max(abs(g) for g in ref_g)
    errs = [_ulps(g, r, scale) for g, r in zip(deriv.reshape(-1), ref_g, strict=True)]
    assert max(errs) <= 4, errs


@pytest.mark.parametrize("name", NAMES)
def test_plain_float32_arrays_with_ctx_give_the_same_bits(name: str) -> None:
    p, t = _inputs(name)
    p0, t0 = p.copy(), t.copy()
    v1, g1 = torchlean.value_and_deriv(name, binary32.tensor(p), binary32.tensor(t))
    v2, g2 = torchlean.value_and_deriv(name, p, t, ctx=binary32)
    assert hexbits(v1) == hexbits(v2) and hexbits(g1) == hexbits(g2)
    np.testing.assert_array_equal(p, p0)  # inputs untouched
    np.testing.assert_array_equal(t, t0)


@pytest.mark.parametrize("name", NAMES)
def test_empty_input(name: str) -> None:
    shape = (2, 0)
    p, t = binary32.tensor(np.zeros(shape)), binary32.tensor(np.zeros(shape))
    value, deriv = torchlean.value_and_deriv(name, p, t)
    # the float64 semantics' value (the totalized mean: 0; cosine: 1)
    expected = float(torchlean.LOSSES[name].value(np.zeros(shape), np.zeros(shape)))
    assert type(value) is F32 and value == expected
    assert deriv.shape == shape and deriv.dtype == F32


@pytest.mark.parametrize("name", NAMES)
def test_value_and_deriv_is_the_spec(name: str) -> None:
    """No fast path takes binary32 tensors: value_and_deriv gives the spec's own bits."""
    p, t = (binary32.tensor(v) for v in _inputs(name))
    entry = torchlean.LOSSES[name]
    value, deriv = torchlean.value_and_deriv(name, p, t)
    assert hexbits(value) == hexbits(entry.value(p, t))
    assert hexbits(deriv) == hexbits(entry.deriv(p, t))


def test_softmax_specs_run_in_binary32() -> None:
    from torchlean.spec.layers.activation import log_softmax_spec, softmax_spec

    z = binary32.tensor([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]])
    s = softmax_spec(z)
    assert type(s) is Binary32Array and s.dtype == F32
    # hand: the second row is exp(0 - log(1 + exp(-1000) + exp(-2000))) = 1, 0, 0 in binary32
    np.testing.assert_array_equal(s[1], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(log_softmax_spec(z)[1], [0.0, -1000.0, -2000.0])


# ---------------------------------------------------------------------------------------------
# Golden bit patterns
# ---------------------------------------------------------------------------------------------

_REAL_P = [[0.25, -1.5, 3.0, 0.7], [2.0, 0.1, -0.3, 12.0]]
_REAL_T = [[0.0, 1.0, 2.5, 0.7], [-1.0, 0.35, 0.2, -3.0]]  # d = 0 and |d| = 1 (kinks)
_PROB_P = [[0.2, 0.5, 0.3, 0.999999], [1e-7, 0.1, 0.6, 1e-6]]  # clamp active and at the bounds
_PROB_T = [[0.0, 1.0, 0.25, 1.0], [0.5, 0.0, 0.75, 1.0]]

GOLDEN_INPUTS: dict[str, tuple[list[Any], list[Any]]] = {
    "mse": (_REAL_P, _REAL_T),
    "mae": (_REAL_P, _REAL_T),
    "huber": (_REAL_P, _REAL_T),
    "cross_entropy": (_PROB_P, _PROB_T),
    "cross_entropy_logits": ([[1.5, -2.0, 0.25, 3.0], [100.0, 0.0, -100.0, 7.5]], _PROB_T),
    "hinge": (_REAL_P, [[1.0, -1.0, 1.0, 1.0], [-1.0, 1.0, -1.0, 1.0]]),  # 0.7 * 1: no kink,
    "poisson": (_REAL_P, [[0.0, 1.0, 2.0, 3.0], [5.0, 0.0, 1.0, 8.0]]),
    "cosine_similarity": (_REAL_P, _REAL_T),
    "log_cosh": (_REAL_P, _REAL_T),
    "binary_cross_entropy": (_PROB_P, _PROB_T),
}

# Value and derivative bit patterns (hex of the binary32 numbers, row-major), computed once with
# this semantics; the inputs are rounded once from the binary64 literals above.
GOLDEN: dict[str, tuple[str, list[str]]] = {
    "mse": ("41f0e000", [
        "3d800000", "bf200000", "3e000000", "00000000", "3f400000", "bd800000",
        "be000000", "40700000",
    ]),
    "mae": ("40300000", [
        "3e000000", "be000000", "3e000000", "00000000", "3e000000", "be000000",
        "be000000", "3e000000",
    ]),
    "huber": ("401a8000", [
        "3d000000", "be000000", "3d800000", "00000000", "3e000000", "bd000000",
        "bd800000", "3e000000",
    ]),
    "cross_entropy": ("4030cde1", [
        "80000000", "be800000", "bdd55555", "be000009", "00000000", "80000000",
        "be200000", "00000000",
    ]),
    "cross_entropy_logits": ("41f8c45e", [
        "3d46ad02", "bdfd0011", "bc8e2828", "3dbd339b", "3e600000", "00000008",
        "bdc00000", "be000000",
    ]),
    "hinge": ("3f34cccd", [
        "be000000", "00000000", "00000000", "be000000", "3e000000", "be000000",
        "3e000000", "00000000",
    ]),
    "poisson": ("469edcd6", [
        "3e245af2", "bdc6e0f1", "4010af2e", "bdfc7ab4", "3e98e64c", "3e0d763e",
        "bd04b37a", "469eeeb3",
    ]),
    "cosine_similarity": ("3fcb7161", [
        "ba719083", "bc57a27b", "bd6cae84", "bc80507a", "3c39706a", "bbe26ee4",
        "bb2c81fb", "3c41f87d",
    ]),
    "log_cosh": ("4015dace", [
        "3cfacbf5", "bdfc92c1", "3d6c9a9f", "00000000", "3dfebbe9", "bcfacbf5",
        "bd6c9a9f", "3e000000",
    ]),
    "binary_cross_entropy": ("403767a7", [
        "3e1fffff", "be800000", "3cf3cf40", "be000008", "00000000", "3e0e38e4",
        "bd9fffff", "00000000",
    ]),
}


def _golden_table() -> dict[str, tuple[str, list[str]]]:
    out = {}
    for name, (p, t) in GOLDEN_INPUTS.items():
        value, deriv = torchlean.value_and_deriv(name, binary32.tensor(p), binary32.tensor(t))
        out[name] = (hexbits(value)[0], hexbits(deriv))
    return out


@pytest.mark.parametrize("name", list(GOLDEN))
def test_golden_bits(name: str) -> None:
    # hand data for the losses listed; a loss without golden bits is held to the 50-digit
    # oracle above
    assert set(GOLDEN) == set(GOLDEN_INPUTS) and set(GOLDEN) <= set(torchlean.LOSSES)
    assert _golden_table()[name] == GOLDEN[name], (
        "binary32 bits changed; if the spec's formula was changed on purpose, regenerate the "
        "table with `python tests/test_context_binary32.py`")


# ---------------------------------------------------------------------------------------------
# NaN, types and errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["predicted", "target"])
@pytest.mark.parametrize("name", NAMES)
def test_nan_in_gives_nan_out(name: str, which: str) -> None:
    p, t = _inputs(name)
    (p if which == "predicted" else t)[1, 2] = np.nan
    value, deriv = torchlean.value_and_deriv(name, binary32.tensor(p), binary32.tensor(t),
                                             **({"check_domain": False}
                                                if torchlean.LOSSES[name].has_domain_check
                                                else {}))
    assert np.isnan(value)
    assert np.isnan(deriv[1, 2])


def test_tensor_rounds_once_to_nearest_even() -> None:
    x = binary32.tensor([0.1, 1 + 2.0**-24, 1 + 3 * 2.0**-24, 1e39, 2**24 + 1])
    # hand: 0.1 -> 0x3dcccccd; ties go to the even neighbour; 1e39 overflows; 2**24 + 1 is a tie
    assert hexbits(x) == ["3dcccccd", "3f800000", "3f800002", "7f800000", "4b800000"]
    assert type(x) is Binary32Array and x.dtype == F32
    assert infer_context(x, np.zeros(5)) is B
    assert infer_context(np.zeros(5), x) is B


def test_binary32_array_keeps_only_float32() -> None:
    x = binary32.tensor([1.0, 2.0])
    assert type(x + 1) is Binary32Array and (x + 1).dtype == F32
    assert type(x * 0.1) is Binary32Array  # a Python float is a weak scalar (NEP 50)
    assert type(x > 1) is np.ndarray
    assert type(x.astype(np.float64)) is np.ndarray
    assert type(x.view(np.uint32)) is np.ndarray
    assert type(x + np.float64(1.0)) is np.ndarray  # widened: no longer binary32
    assert type(x[0]) is F32


def test_float64_inputs_with_ctx_are_rounded_once() -> None:
    p = np.array([0.1, 0.7, 1 / 3])
    t = np.array([1, 0, 2])  # integer targets are promoted
    v = L.mse_spec(p, t, ctx=binary32)
    assert bits(v) == bits(L.mse_spec(binary32.tensor(p), binary32.tensor(t)))


def test_python_scalars_with_ctx() -> None:
    v = L.binary_cross_entropy_spec(0.25, 1.0, ctx=binary32)
    assert type(v) is float
    with mpmath.workdps(50):
        ref = -mpmath.log(mpmath.mpf(float(F32(0.25))))
    assert abs(v - float(ref)) <= float(np.spacing(F32(ref)))


def test_operand_of_another_dtype_is_refused() -> None:
    with pytest.raises(DTypeError, match="float32"):
        B.maximum(np.float64(1.0), F32(0.0))
    with pytest.raises(DTypeError, match="float32"):
        B.finish_value(np.float64(1.0))


@pytest.mark.parametrize(
    ("predicted", "target", "error", "match"),
    [
        (np.array([1, 2]), np.array([1.0, 2.0]), DTypeError, "`predicted`.*floating.*int64"),
        (np.array([1.0, 2.0]), np.array(["a", "b"]), DTypeError, "`target`"),
        (np.array([1.0, 2.0]), np.array([1.0, 2.0, 3.0]), ShapeError, r"\(2,\).*\(3,\)"),
        (np.array([1.0, 2.0]), {"a": 1}, BackendError, "`target`"),
        ([[1.0, 2.0], [3.0]], [1.0, 2.0], ShapeError, "`predicted`.*rectangular"),
    ],
    ids=["int-predicted", "string-target", "shape", "dict-target", "ragged"],
)
def test_errors_name_the_argument(predicted: Any, target: Any, error: type,
                                  match: str) -> None:
    with pytest.raises(error, match=match):
        L.mse_spec(predicted, target, ctx=binary32)


def test_torch_tensors_are_refused_with_ctx() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(BackendError, match=r"`predicted`.*torch"):
        L.mse_spec(torch.zeros(2), torch.zeros(2), ctx=binary32)


def test_domain_checks() -> None:
    p = binary32.tensor([0.5, 0.5])
    with pytest.raises(DomainError, match=r"`target`.*\[0, 1\].*-0\.5"):
        L.binary_cross_entropy_tensor_spec(p, binary32.tensor([0.5, -0.5]))
    with pytest.raises(DomainError, match="`target`"):
        L.poisson_spec(p, binary32.tensor([1.0, -1.0]))
    v = L.poisson_spec(p, binary32.tensor([1.0, -1.0]), check_domain=False)
    assert np.isfinite(v)
    # NaN passes the check (and gives NaN out)
    assert np.isnan(L.poisson_spec(p, binary32.tensor([1.0, np.nan])))


def test_no_numpy_warnings_from_specials() -> None:
    # exp overflow, log(0) and 0/0 in discarded branches must not warn (warnings are errors)
    p = binary32.tensor([100.0, 0.0, 1.0])
    t = binary32.tensor([0.0, 1.0, 1.0])
    assert L.poisson_spec(p, t) == np.inf
    assert np.isfinite(L.cross_entropy_spec(p * 0, t))


if __name__ == "__main__":  # print the golden table (after a deliberate change of the spec)
    for key, (v, g) in _golden_table().items():
        print(f'    "{key}": ("{v}", {g!r}),')
