"""The gallery figure (torchlean.gallery): its numbers against hand derivations and 50-digit
mpmath evaluations written here, and the files it writes."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import mpmath
import numpy as np
import pytest

import torchlean
from torchlean import gallery
from torchlean.certify.floats import THRESHOLDS
from torchlean.errors import ParameterError, UnsupportedOperationError
from torchlean.gallery.series import Series
from torchlean.spec.core.declaration import REGISTRY, Seam, unregister

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def huber() -> Series:
    return gallery.series("huber", {"delta": 1.0})


@pytest.fixture(scope="module")
def logits() -> Series:
    return gallery.series("cross_entropy_logits")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    # the IHDR chunk: width and height, big-endian, right after its length and type
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _svg_root(path: Path) -> str:
    return ET.parse(path).getroot().tag


# --------------------------------------------------------------------------------------------
# huber: hand derivation (h(d) = d**2 / 2 for |d| < 1, |d| - 1/2 else; target 0)
# --------------------------------------------------------------------------------------------


def test_huber_kinks_sit_at_plus_minus_delta(huber: Series) -> None:
    # |d| = delta, with the target 0 the declaration's representative (middle of [-2, 2])
    assert huber.kinks == (-1.0, 1.0)
    assert [m.kind for m in huber.markers] == ["corner", "corner"]
    assert list(huber.target) == [0.0]
    assert gallery.series("huber", {"delta": 0.5}).kinks == (-0.5, 0.5)
    # the seams are points of the sweep, so the derivative there is drawn
    assert {-1.0, 1.0} <= set(huber.x.tolist())


def test_huber_values_match_the_hand_derivation(huber: Series) -> None:
    x = huber.x
    value = np.where(np.abs(x) < 1, x * x / 2, np.abs(x) - 0.5)
    np.testing.assert_allclose(huber.value, value, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(huber.deriv, np.clip(x, -1, 1))
    assert huber.second is not None
    np.testing.assert_array_equal(huber.second, np.where(np.abs(x) < 1, 1.0, 0.0))


def test_huber_enclosure_contains_the_50_digit_value(huber: Series) -> None:
    h = huber.half_width
    assert h > 0.01  # wide enough to be seen
    with mpmath.workdps(50):
        for i, c in enumerate(huber.box_x):
            for x in (c - h, c, c + h):
                d = mpmath.mpf(float(x))
                v = d * d / 2 if abs(d) < 1 else abs(d) - mpmath.mpf(1) / 2
                g = max(-1, min(1, d))
                assert huber.value_lo[i] <= v <= huber.value_hi[i], (x, v)
                assert huber.deriv_lo[i] <= g <= huber.deriv_hi[i], (x, g)


def test_huber_float32_within_the_certified_bound(huber: Series) -> None:
    # the float32 bound of the certifier's float check (docs/certification.md: <= 1 ulp)
    bound = THRESHOLDS["float32"]
    assert huber.bound == bound
    assert np.all(huber.ulps_value <= bound)
    assert np.all(huber.ulps_deriv <= bound)
    # d**2 / 2 and clip(d) of a float32 d: one rounding at most, so half an ulp
    assert huber.ulps_value.max() <= 0.5
    assert huber.ulps_deriv.max() == 0.0


def test_huber_torch_is_left_out_only_on_its_seams(huber: Series) -> None:
    # the declaration says PyTorch agrees inside each region, not on the seams themselves
    left_out = huber.x[np.isnan(huber.torch_ulps_value)]
    assert left_out.tolist() == [-1.0, 1.0]
    assert huber.has_torch
    assert "left out at 2 of" in huber.torch_note
    # smooth_l1_loss(beta=1) in float32 is no worse than half an ulp away from our oracle here
    shown = ~np.isnan(huber.torch_ulps_value)
    assert np.all(huber.torch_ulps_value[shown] <= 0.5)


# --------------------------------------------------------------------------------------------
# cross_entropy_logits: one row (x, 0.5, -0.5), target (1, 0, 0); mean over its 3 elements
# --------------------------------------------------------------------------------------------


def test_logits_row_against_mpmath(logits: Series) -> None:
    assert logits.kind == "slice"
    assert logits.target.tolist() == [1.0, 0.0, 0.0]
    assert "x = logits[0] varies" in logits.setting
    np.testing.assert_array_equal(logits.predicted[:, 1:], np.broadcast_to([0.5, -0.5],
                                                                          (len(logits.x), 2)))
    with mpmath.workdps(50):
        def exact(x: float) -> tuple[mpmath.mpf, mpmath.mpf, mpmath.mpf]:
            z = [mpmath.mpf(x), mpmath.mpf(0.5), mpmath.mpf(-0.5)]
            lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in z))
            s0 = mpmath.exp(z[0] - lse)
            # -log softmax_0 / 3; its derivative (softmax_0 - 1) / 3; second s0 (1 - s0) / 3
            return (lse - z[0]) / 3, (s0 - 1) / 3, s0 * (1 - s0) / 3

        ref = [exact(float(x)) for x in logits.x]
        for k, got in enumerate((logits.value, logits.deriv, logits.second)):
            assert got is not None
            want = np.array([float(r[k]) for r in ref])
            np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)
        h = logits.half_width
        for i, c in enumerate(logits.box_x):
            for x in (c - h, c, c + h):
                v, g, _ = exact(float(x))
                assert logits.value_lo[i] <= v <= logits.value_hi[i]
                assert logits.deriv_lo[i] <= g <= logits.deriv_hi[i]


def test_logits_float32_within_the_documented_bound(logits: Series) -> None:
    # docs/accuracy.md: cross-entropy on logits, float32 value within 1 ulp; the derivative
    # within 1 ulp of its terms (it cancels where softmax_0 nears 1), so the value alone here
    assert np.all(logits.ulps_value <= THRESHOLDS["float32"])
    assert not logits.markers and logits.kinks == ()
    assert logits.has_torch and logits.torch_note == ""


def test_poisson_against_mpmath_and_its_bound() -> None:
    s = gallery.series("poisson")
    # the middle of the declared target range [0, 5]
    assert s.target.tolist() == [2.5]
    with mpmath.workdps(50):
        # exp(x) - t x, derivative exp(x) - t, second exp(x) (hand derivation)
        e = [mpmath.exp(mpmath.mpf(float(x))) for x in s.x]
        np.testing.assert_allclose(s.value, [float(v - 2.5 * mpmath.mpf(float(x)))
                                             for v, x in zip(e, s.x, strict=True)], rtol=1e-15)
        np.testing.assert_allclose(s.deriv, [float(v - 2.5) for v in e], rtol=1e-15)
        assert s.second is not None
        np.testing.assert_allclose(s.second, [float(v) for v in e], rtol=1e-15)
    # docs/accuracy.md: poisson float32 value and derivative within 1 ulp
    assert np.all(s.ulps_value <= 1) and np.all(s.ulps_deriv <= 1)


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------


def test_renders_png_and_svg(huber: Series, logits: Series, tmp_path: Path) -> None:
    png = gallery.save(huber, tmp_path / "huber.png")
    assert png == tmp_path / "huber.png"
    assert _png_size(png) == (900, 700)
    svg = gallery.save(huber, str(tmp_path / "huber.SVG"))
    assert _svg_root(svg) == "{http://www.w3.org/2000/svg}svg"
    assert _png_size(gallery.save(logits, tmp_path / "logits.png")) == (900, 700)
    with pytest.raises(ParameterError, match="`params` must be None with a computed series"):
        gallery.save(huber, tmp_path / "again.png", {"delta": 2.0})


def test_figure_panels(tmp_path: Path) -> None:
    fig = gallery.figure("cosine_similarity")
    # a whole-tensor loss declares no second derivative: two panels
    assert len(fig.axes) == 2
    assert fig.axes[1].get_ylabel() == "float32 error (ulps)"
    assert fig.axes[1].get_xlabel() == "x = predicted[0]"
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels[:2] == ["value", "derivative"]
    fig.savefig(tmp_path / "cosine.svg")
    assert _svg_root(tmp_path / "cosine.svg").endswith("svg")


@pytest.mark.parametrize("path", ["figure.jpg", "figure", "figure.png.txt"])
def test_bad_suffix(path: str, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match=r"`path` must end in \.png or \.svg.*got") as e:
        gallery.save("huber", tmp_path / path)
    assert path in str(e.value)
    assert not list(tmp_path.iterdir())


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="`path` must be in an existing folder"):
        gallery.save("huber", tmp_path / "nowhere" / "huber.png")


def test_parameters_are_checked() -> None:
    with pytest.raises(ParameterError, match="delta"):
        gallery.series("huber", {"delta": -1.0})
    with pytest.raises(ParameterError, match="`beta` is not a parameter of the huber loss"):
        gallery.series("huber", {"beta": 1.0})
    with pytest.raises(ParameterError):
        gallery.series("no_such_loss")


def test_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    s = gallery.series("mse")
    assert s.torch_note == "PyTorch is not installed"
    assert not s.has_torch and np.isnan(s.torch_ulps_deriv).all()


def test_without_matplotlib(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(UnsupportedOperationError, match=r"torchlean\[plot\]"):
        gallery.save("mse", tmp_path / "mse.png")


# --------------------------------------------------------------------------------------------
# a user's loss
# --------------------------------------------------------------------------------------------


@pytest.fixture
def user_loss() -> Iterator[str]:
    name = "gallery_twice_abs"

    # 2|d|: a kink at d = 0 declared as data, derivative 0 chosen there
    @torchlean.define_loss(name, seams=[Seam("residual", lambda k, prm: k.const(0), "d = 0",
                                             choice="derivative 0")])
    def twice_abs(c, p, t):  # type: ignore[no-untyped-def]
        return 2 * c.abs(p - t)

    @twice_abs.deriv
    def _(c, p, t):  # type: ignore[no-untyped-def]
        return 2 * c.sign(p - t)

    try:
        yield name
    finally:
        if name in REGISTRY:
            unregister(name)


def test_user_loss_renders(user_loss: str, tmp_path: Path) -> None:
    s = gallery.series(user_loss)
    assert s.kinks == (0.0,) and s.markers[0].choice == "derivative 0"
    np.testing.assert_array_equal(s.value, 2 * np.abs(s.x))
    np.testing.assert_array_equal(s.deriv, 2 * np.sign(s.x))
    assert s.second is None and s.torch_note == "PyTorch has no reference for this loss"
    assert _png_size(gallery.save(REGISTRY[user_loss], tmp_path / "user.png")) == (900, 700)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(torchlean.LOSSES))
def test_every_loss_renders(name: str, tmp_path: Path) -> None:
    s = gallery.series(name)
    assert np.isfinite(s.value).any() and np.isfinite(s.deriv).any()
    assert np.isfinite(s.ulps_value).all()
    assert _png_size(gallery.save(name, tmp_path / f"{name}.png")) == (900, 700)
    assert _svg_root(gallery.save(name, tmp_path / f"{name}.svg")).endswith("svg")
