"""The gallery figure of a loss: value and derivative with their interval enclosures and seams,
the float32 error in ulps of the package and of PyTorch, and the second derivative.

Drawn on a bare :class:`matplotlib.figure.Figure` with the Agg canvas: no display, no pyplot
state, nothing to close.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from torchlean.errors import ParameterError, UnsupportedOperationError
from torchlean.gallery.series import Series, series
from torchlean.spec.core.declaration import LossDeclaration

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["FORMATS", "draw", "figure", "save"]

#: the file formats :func:`save` writes, by suffix
FORMATS = (".png", ".svg")
#: inches at 100 dpi: 900 x 700 pixels
SIZE = (9.0, 7.0)
DPI = 100
_VALUE, _DERIV, _SECOND, _BOUND = "tab:blue", "tab:orange", "tab:green", "tab:red"
#: line styles of the seam markers, by kind
_STYLES = {"kink": "-", "corner": "--", "form": ":"}
_KIND_WORDS = {"kink": "kink", "corner": "derivative kink", "form": "change of form"}


def figure(loss: str | LossDeclaration | Series,
           params: Mapping[str, Any] | None = None) -> Figure:
    """The gallery figure of ``loss``.

    Args:
        loss: a registered loss's name, or a declaration (a user's ``define_loss`` too); or the
            :class:`~torchlean.gallery.series.Series` of one, already computed.
        params: the loss's parameters (defaults for the missing ones; each passes the
            declaration's validator, else :class:`~torchlean.errors.ParameterError`); none
            with a series.

    Returns:
        A :class:`matplotlib.figure.Figure` of 900 x 700 pixels at 100 dpi with stacked panels
        sharing ``x``: the value and the derivative with their interval enclosures and the
        seams marked; the float32 error in ulps of the package and of PyTorch; the second
        derivative where the loss declares one. The numbers are :func:`series`'s.

    Raises:
        UnsupportedOperationError: matplotlib is not installed (the ``plot`` extra).
    """
    _matplotlib()
    if isinstance(loss, Series):
        if params:
            raise ParameterError(f"`params` must be None with a computed series (it has "
                                 f"{dict(loss.params)}); got {dict(params)}")
        return draw(loss)
    return draw(series(loss, params))


def save(loss: str | LossDeclaration | Series, path: str | os.PathLike[str],
         params: Mapping[str, Any] | None = None) -> Path:
    """Write the gallery figure of ``loss`` to ``path``, a ``.png`` or ``.svg`` file.

    Args:
        loss: a registered loss's name, or a declaration; or a computed
            :class:`~torchlean.gallery.series.Series` (to write several formats of one).
        path: the file to write; its suffix picks the format.
        params: the loss's parameters, as for :func:`figure`.

    Returns:
        The path written.

    Raises:
        ParameterError: ``path`` does not end in ``.png`` or ``.svg``, or its folder does not
            exist; a parameter fails its validator.
        UnsupportedOperationError: matplotlib is not installed (the ``plot`` extra).
    """
    out = Path(os.fspath(path))
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ParameterError(
            f"`path` must end in {' or '.join(FORMATS)} (the format of the figure); got "
            f"{str(out)!r}" + (f" (suffix {out.suffix!r})" if out.suffix else " (no suffix)")
        )
    if not out.parent.is_dir():
        raise ParameterError(f"`path` must be in an existing folder; got {str(out)!r} "
                             f"({str(out.parent)!r} is not a folder)")
    fig = figure(loss, params)
    fig.savefig(out, format=suffix[1:], dpi=DPI)
    return out


def _matplotlib() -> Any:
    """matplotlib, or the package's error naming the extra that installs it."""
    try:
        import matplotlib
    except ImportError as exc:
        raise UnsupportedOperationError(
            "the gallery figures need matplotlib: pip install 'torchlean[plot]'"
        ) from exc
    return matplotlib


def draw(s: Series) -> Figure:
    """Draw a :class:`~torchlean.gallery.series.Series`.

    Returns:
        The figure, on an Agg canvas.
    """
    _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ratios = [3.0, 2.0] + ([1.4] if s.second is not None else [])
    axes = fig.subplots(len(ratios), 1, sharex=True, height_ratios=ratios)
    _values(axes[0], s)
    _errors(axes[1], s)
    if s.second is not None:
        _second(axes[2], s)
    for ax in axes:
        for m in s.markers:
            ax.axvline(m.x, color="0.35", lw=0.9, ls=_STYLES[m.kind], alpha=0.8, zorder=0)
        ax.grid(True, alpha=0.25)
    _marker_labels(axes[0], s)
    arg = s.arg_names[0]
    axes[-1].set_xlabel(f"x = {arg}" if s.kind == "elementwise" else f"x = {arg}[0]")
    prm = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in s.params.items())
    fig.suptitle(f"{s.name}({prm})" if prm else s.name, fontsize=13, fontweight="bold")
    axes[0].set_title(s.setting, fontsize=9, pad=22 if s.markers else 6)
    axes[0].set_xlim(float(s.x[0]), float(s.x[-1]))
    return fig


# --------------------------------------------------------------------------------------------
# the panels
# --------------------------------------------------------------------------------------------


def _values(ax: Axes, s: Series) -> None:
    """Value and derivative (50 digits), their enclosures as bands, the kink choices as dots."""
    jumps = [m.x for m in s.markers if m.kind == "kink"]
    ax.plot(s.x, s.value, color=_VALUE, lw=1.8, label="value")
    ax.plot(s.x, _broken(s.x, s.deriv, jumps), color=_DERIV, lw=1.8, label="derivative")
    h = f"{s.half_width:.2g}"
    ax.fill_between(s.box_x, _finite(s.value_lo), _finite(s.value_hi), color=_VALUE,
                    alpha=0.25, lw=0, label=f"value enclosure over [x-h, x+h], h={h}")
    ax.fill_between(s.box_x, _finite(s.deriv_lo), _finite(s.deriv_hi), color=_DERIV,
                    alpha=0.25, lw=0, label="derivative enclosure")
    at = np.isin(s.x, jumps)
    if at.any():
        ax.plot(s.x[at], s.deriv[at], "o", color=_DERIV, ms=5, mec="black", mew=0.6,
                label="derivative chosen at a kink")
    ax.set_ylim(*_limits(s.value, s.deriv))
    ax.set_ylabel("value, derivative")
    ax.legend(loc="best", fontsize=8, framealpha=0.85, ncol=2)


def _errors(ax: Axes, s: Series) -> None:
    """float32 errors in ulps against the 50-digit values: the package's (dots), PyTorch's
    (triangles), and the bound the certifier holds the package to."""
    from matplotlib.ticker import FuncFormatter, NullLocator

    worst = 0.0
    # PyTorch's hollow triangles are drawn larger, so they show around the package's dots
    # where both are equally close
    for ulps, label, color, style, size in (
            (s.torch_ulps_value, "PyTorch: value", _VALUE, "^", 5.5),
            (s.torch_ulps_deriv, "PyTorch: derivative", _DERIV, "^", 5.5),
            (s.ulps_value, "torchlean: value", _VALUE, "o", 3.2),
            (s.ulps_deriv, "torchlean: derivative", _DERIV, "o", 3.2)):
        if not np.isfinite(ulps).any():
            continue
        worst = max(worst, float(np.nanmax(np.where(np.isinf(ulps), np.nan, ulps))))
        ax.plot(s.x, np.where(np.isinf(ulps), np.nan, ulps), style, color=color, ms=size,
                mfc=color if style == "o" else "none", mew=0.8, label=label)
    ax.axhline(s.bound, color=_BOUND, ls="--", lw=1.0,
               label=f"certified bound, {s.bound:g} ulp")
    ax.set_yscale("symlog", linthresh=1.0, linscale=1.0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_locator(NullLocator())
    # a little below 0, so the correctly rounded results (0 ulps) show above the axis; a
    # decade above the largest error for the legend
    ax.set_ylim(-0.06, max(4.0, worst * 12))
    ax.set_ylabel("float32 error (ulps)")
    notes = [f"{n} errors infinite (not shown)" for n in
             [int(np.isinf(s.ulps_value).sum() + np.isinf(s.ulps_deriv).sum())] if n]
    if s.torch_note:
        notes.append(s.torch_note)
    if notes:
        ax.set_title("; ".join(notes), fontsize=8, loc="left", color="0.25")
    ax.legend(loc="upper right", fontsize=7.5, framealpha=0.85, ncol=3)


def _second(ax: Axes, s: Series) -> None:
    assert s.second is not None
    jumps = [m.x for m in s.markers if m.kind != "form"]
    ax.plot(s.x, _broken(s.x, s.second, jumps), color=_SECOND, lw=1.6,
            label="second derivative")
    ax.set_ylim(*_limits(s.second))
    ax.set_ylabel("second derivative")
    ax.legend(loc="best", fontsize=8, framealpha=0.85)


def _marker_labels(ax: Axes, s: Series) -> None:
    """Each seam's label above the top panel, on two levels where neighbours would touch."""
    span = float(s.x[-1] - s.x[0]) or 1.0
    last, level = -np.inf, 0
    for m in s.markers:
        level = 1 - level if (m.x - last) / span < 0.12 else 0
        last = m.x
        ax.annotate(f"{m.label} ({_KIND_WORDS[m.kind]})", xy=(m.x, 1.0),
                    xycoords=("data", "axes fraction"), xytext=(0, 2 + 10 * level),
                    textcoords="offset points", ha="center", va="bottom", fontsize=7.5,
                    color="0.2", annotation_clip=False)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _broken(x: np.ndarray, y: np.ndarray, at: list[float]) -> np.ndarray:
    """``y`` with NaN on the points ``at`` (a jump: the line is not drawn across it)."""
    return np.where(np.isin(x, at), np.nan, y)


def _finite(y: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(y), y, np.nan)


def _limits(*ys: np.ndarray) -> tuple[float, float]:
    """y limits around the finite values of the lines; where a few values dwarf the bulk (a
    pole: ``-t / p`` at ``p -> 0``), the bulk (5th to 95th percentile) with room around it, so
    the rest stays readable. The bands may reach beyond."""
    vals = np.concatenate([np.asarray(y)[np.isfinite(y)] for y in ys])
    if vals.size == 0:
        return -1.0, 1.0
    lo, hi = float(vals.min()), float(vals.max())
    q_lo, q_hi = (float(v) for v in np.percentile(vals, [5, 95]))
    if hi - lo > 4 * (q_hi - q_lo):
        room = 0.3 * (q_hi - q_lo)
        lo, hi = max(lo, q_lo - room), min(hi, q_hi + room)
    pad = 0.08 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.1
    return lo - pad, hi + pad
