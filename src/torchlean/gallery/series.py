"""The numbers a gallery figure plots, computed from the declaration alone.

One sample of the loss (an element; a row of a slice loss; a short vector of a whole-tensor
loss) is swept along one coordinate ``x`` of ``predicted``:

- the value, derivative and second derivative: the declared terms at 50 digits
  (:mod:`torchlean.contexts.precise`) on the exact binary values of float32 inputs;
- their interval enclosures (:mod:`torchlean.contexts.interval`) over boxes
  ``[x - h, x + h]`` around every ``stride``-th point;
- the float32 error in ulps of the package (``value_and_deriv`` of one sample) and of the
  declaration's PyTorch reference (autograd for its gradient) against those 50-digit values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from torchlean.gallery.placement import Marker, Placement, place
from torchlean.spec.core.declaration import LossDeclaration, _takes_n

__all__ = ["POINTS", "Series", "declaration_of", "series"]

#: points of the sweep (the seams are added to them)
POINTS = 241
#: an enclosure box every ``stride`` points
STRIDE = 4
#: the boxes' half-width, relative to the swept range: wide enough for the band to show
HALF_WIDTH = 0.01


@dataclass(frozen=True)
class Series:
    """What :func:`torchlean.gallery.figure` draws, as float64 arrays over ``x``.

    Attributes:
        name: the loss.
        params: the parameters used (after the declaration's validators).
        kind: the declaration's kind (``elementwise``, ``slice``, ``whole``).
        x: the swept coordinate of ``predicted`` (float32 numbers, seams included).
        predicted: each sample's ``predicted``, shape ``(len(x), k)`` (``k = 1`` elementwise).
        target: the fixed target of every sample, shape ``(k,)``.
        setting: what varies and what is fixed, in words (the figure's subtitle).
        value, deriv: the loss of one sample and its derivative w.r.t. ``x``, at 50 digits.
        second: the second derivative w.r.t. ``x`` (None when the loss declares none).
        box_x: the centres of the enclosure boxes; ``half_width``: their half-width ``h``.
        value_lo, value_hi, deriv_lo, deriv_hi: the interval enclosures over
            ``[box_x - h, box_x + h]`` (float64 rounded outward; NaN: no information).
        ulps_value, ulps_deriv: the package's float32 error in ulps (of float32).
        torch_ulps_value, torch_ulps_deriv: PyTorch's, NaN where it is not comparable (no
            reference, torch missing, or a region where the declaration says PyTorch differs).
        torch_note: why PyTorch is missing or partly left out ("" when it is shown in full).
        bound: the float32 error bound the certifier holds the package to, in ulps.
        markers: the seams on ``x``.
        arg_names: the declaration's names of ``predicted`` and ``target``.
    """

    name: str
    params: Mapping[str, Any]
    kind: str
    x: np.ndarray
    predicted: np.ndarray
    target: np.ndarray
    setting: str
    value: np.ndarray
    deriv: np.ndarray
    second: np.ndarray | None
    box_x: np.ndarray
    half_width: float
    value_lo: np.ndarray
    value_hi: np.ndarray
    deriv_lo: np.ndarray
    deriv_hi: np.ndarray
    ulps_value: np.ndarray
    ulps_deriv: np.ndarray
    torch_ulps_value: np.ndarray
    torch_ulps_deriv: np.ndarray
    torch_note: str
    bound: float
    markers: tuple[Marker, ...]
    arg_names: tuple[str, str] = ("predicted", "target")

    @property
    def kinks(self) -> tuple[float, ...]:
        """Where the value or its derivative is not smooth (markers of kind kink or corner)."""
        return tuple(m.x for m in self.markers if m.kind != "form")

    @property
    def has_torch(self) -> bool:
        """Whether any PyTorch error is shown."""
        return bool(np.isfinite(self.torch_ulps_value).any()
                    or np.isfinite(self.torch_ulps_deriv).any())


def declaration_of(loss: str | LossDeclaration) -> LossDeclaration:
    """The declaration itself, or the registered loss of that name (ParameterError if none)."""
    if isinstance(loss, LossDeclaration):
        return loss
    from torchlean.registry import get_loss

    return get_loss(loss)


def series(loss: str | LossDeclaration, params: Mapping[str, Any] | None = None) -> Series:
    """The arrays of ``loss``'s gallery figure.

    Args:
        loss: a registered loss's name, or a declaration (a user's ``define_loss`` too).
        params: the loss's parameters; missing ones take their defaults, every one passes the
            declaration's validator (:class:`~torchlean.errors.ParameterError` otherwise).

    Returns:
        A :class:`Series`.
    """
    decl = declaration_of(loss)
    given = dict(params or {})
    decl.bind_params(given)
    given.pop("ctx", None)
    given.pop("check_domain", None)
    prm = decl.checked_params(given)
    where = place(decl, prm)
    x = _grid(where)
    rows = where.rows(x)
    if decl.kind == "elementwise":
        rows = rows[:, :1]
    targets = where.targets(len(x))
    value, deriv, second = _exact(decl, rows, targets, prm)
    h = HALF_WIDTH * (where.hi - where.lo)
    pick = np.arange(0, len(x), STRIDE)
    enclosure = _enclosure(decl, rows[pick], targets[pick], h, prm)
    ours = _float32_ours(decl, rows, targets, prm)
    theirs, shown, note = _float32_torch(decl, rows, targets, prm)
    u_ours = [_ulps(ours[i], exact) for i, exact in enumerate((value, deriv))]
    u_torch = [_ulps(theirs[i], exact, shown) for i, exact in enumerate((value, deriv))]
    return Series(
        name=decl.name, params=prm, kind=decl.kind, x=x, predicted=rows, target=where.target,
        setting=where.text, value=_floats(value), deriv=_floats(deriv),
        second=None if second is None else _floats(second), box_x=x[pick], half_width=h,
        value_lo=enclosure[0], value_hi=enclosure[1], deriv_lo=enclosure[2],
        deriv_hi=enclosure[3], ulps_value=u_ours[0], ulps_deriv=u_ours[1],
        torch_ulps_value=u_torch[0], torch_ulps_deriv=u_torch[1], torch_note=note,
        bound=_float32_bound(), markers=where.markers, arg_names=decl.arg_names)


def _grid(where: Placement) -> np.ndarray:
    """``POINTS`` float32 numbers over the range, with every marker's place."""
    x = np.linspace(where.lo, where.hi, POINTS).astype(np.float32)
    marks = np.asarray([m.x for m in where.markers], dtype=np.float32)
    return np.unique(np.concatenate([x, marks])).astype(np.float64)


# --------------------------------------------------------------------------------------------
# The declared terms over many samples at once
# --------------------------------------------------------------------------------------------


def _per_sample(decl: LossDeclaration, c: Any, p: Any, t: Any, prm: Mapping[str, Any],
                second: bool) -> tuple[Any, Any, Any]:
    """(value, derivative w.r.t. the first element, second derivative or None) of every
    sample (row) of ``p``, in the context ``c`` (already bound): the loss of ONE sample, as
    ``decl.value(row, target)`` computes it, but every row in one pass."""
    k = int(tuple(c.shape(p))[-1])
    den = k if decl.reduction == "mean" else 1
    with c.scope():
        v = decl.value_term(c, p, t, **prm)
        v = c.sum(v, axis=-1)
        if _takes_n(decl.deriv_term):
            g = decl.deriv_term(c, p, t, n=den, **prm)
        else:
            g = decl.deriv_term(c, p, t, **prm) / den
        h = None
        if second and decl.second_term is not None:
            h = decl.second_term(c, p, t, **prm) / den
        out = (c.finish_deriv(v / den), c.finish_deriv(g))
        return (*out, None if h is None else c.finish_deriv(h))


def _whole(decl: LossDeclaration, ctx: Any, rows: Any, targets: Any,
           prm: Mapping[str, Any]) -> tuple[list[Any], list[Any]]:
    """A whole-tensor loss reads the whole row: one call per row."""
    vals, ders = [], []
    for p, t in zip(rows, targets, strict=True):
        vals.append(decl.value(p, t, ctx=ctx, check_domain=False, **prm))
        ders.append(np.asarray(decl.deriv(p, t, ctx=ctx, check_domain=False, **prm),
                               dtype=object).reshape(-1)[0])
    return vals, ders


def _exact(decl: LossDeclaration, rows: np.ndarray, targets: np.ndarray,
           prm: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The 50-digit value, derivative and second derivative (object arrays of mpf)."""
    from torchlean.certify.oracle import Oracle

    oracle = Oracle()
    with oracle.digits():
        if decl.kind == "whole":
            v, g = _whole(decl, oracle.module, [oracle.tensor(r) for r in rows],
                          [oracle.tensor(t) for t in targets], prm)
            return _mpfs(v), _mpfs(g), None
        c, p, t = oracle.module.CONTEXT.bind(oracle.tensor(rows), oracle.tensor(targets),
                                             decl.arg_names)
        v, g, h = _per_sample(decl, c, p, t, prm, decl.has_second)
        first = _mpfs(np.asarray(g, dtype=object)[:, 0])
        return _mpfs(v), first, None if h is None else _mpfs(np.asarray(h, dtype=object)[:, 0])


def _enclosure(decl: LossDeclaration, rows: np.ndarray, targets: np.ndarray, h: float,
               prm: Mapping[str, Any]) -> tuple[np.ndarray, ...]:
    """Interval bounds of the value and the derivative over ``x`` in ``[x - h, x + h]``."""
    from torchlean.contexts import interval

    lo, hi = rows.copy(), rows.copy()
    lo[:, 0] -= h
    hi[:, 0] += h
    if decl.kind == "whole":
        v, g = _whole(decl, interval, [interval.box(a, b) for a, b in zip(lo, hi, strict=True)],
                      [interval.point(t) for t in targets], prm)
        v_b, g_b = interval.bounds(np.asarray(v, dtype=object)), interval.bounds(
            np.asarray(g, dtype=object))
    else:
        c, p, t = interval.CONTEXT.bind(interval.box(lo, hi), interval.point(targets),
                                        decl.arg_names)
        v, g, _ = _per_sample(decl, c, p, t, prm, False)
        v_b = interval.bounds(v)
        g_b = interval.bounds(np.asarray(g, dtype=object)[:, 0])
    return tuple(np.asarray(b, dtype=np.float64).reshape(-1) for b in (*v_b, *g_b))


# --------------------------------------------------------------------------------------------
# float32: the package and PyTorch
# --------------------------------------------------------------------------------------------


def _sample(decl: LossDeclaration, row: np.ndarray, dtype: Any) -> np.ndarray:
    """One sample's array: ``(1,)`` for an elementwise loss, the row otherwise."""
    return np.asarray(row, dtype=dtype)


def _float32_ours(decl: LossDeclaration, rows: np.ndarray, targets: np.ndarray,
                  prm: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The package's float32 value and derivative (first element) of each sample, one call
    each: what a user gets for that sample."""
    vals, ders = np.empty(len(rows)), np.empty(len(rows))
    for i, (p, t) in enumerate(zip(rows, targets, strict=True)):
        v, g = decl.value_and_deriv(_sample(decl, p, np.float32), _sample(decl, t, np.float32),
                                    **prm)
        vals[i], ders[i] = float(v), float(np.asarray(g).reshape(-1)[0])
    return vals, ders


def _float32_torch(decl: LossDeclaration, rows: np.ndarray, targets: np.ndarray,
                   prm: Mapping[str, Any]
                   ) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, str]:
    """PyTorch's float32 value and gradient (first element) of each sample from the
    declaration's reference, NaN where the declaration says PyTorch computes another function
    (a region with ``torch_agrees=False``, next to a seam); where it was evaluated; and a note
    saying what is missing."""
    nan = np.full(len(rows), np.nan)
    shown = np.zeros(len(rows), dtype=bool)
    if decl.torch_reference is None:
        return (nan, nan.copy()), shown, "PyTorch has no reference for this loss"
    try:
        import torch
    except ImportError:
        return (nan, nan.copy()), shown, "PyTorch is not installed"
    from torchlean.certify.frameworks import torch_reference

    vals, ders = nan.copy(), nan.copy()
    left_out = 0
    for i, (p, t) in enumerate(zip(rows, targets, strict=True)):
        if not decl.torch_comparable(p, t, prm):
            left_out += 1
            continue
        pt = torch.tensor(_sample(decl, p, np.float32))
        tt = torch.tensor(_sample(decl, t, np.float32))
        v, g = torch_reference(decl.torch_reference, pt, tt, prm)
        vals[i], ders[i] = float(v), float(g.reshape(-1)[0])
        shown[i] = True
    note = ""
    if left_out:
        note = (f"PyTorch left out at {left_out} of {len(rows)} points, where the declaration "
                f"says it computes another function (a seam, a clamp, another branch)")
    return (vals, ders), shown, note


def _ulps(computed: np.ndarray, exact: np.ndarray,
          shown: np.ndarray | None = None) -> np.ndarray:
    """Errors in float32 ulps; NaN where ``shown`` is False (nothing to compare)."""
    from torchlean.certify.oracle import ulps

    out = np.full(len(computed), np.nan)
    for i, (c, e) in enumerate(zip(computed, exact, strict=True)):
        if shown is None or shown[i]:
            out[i] = ulps(float(c), e, np.float32)
    return out


def _float32_bound() -> float:
    """The float32 bound of the certifier's float check (docs/certification.md)."""
    from torchlean.certify.floats import THRESHOLDS

    return float(THRESHOLDS["float32"])


# --------------------------------------------------------------------------------------------
# numbers
# --------------------------------------------------------------------------------------------


def _mpfs(values: Any) -> np.ndarray:
    """An object array of mpf from what a semantics returns (its tensors, 0-d arrays)."""
    import mpmath

    def one(x: Any) -> Any:
        if isinstance(x, np.ndarray):
            x = x.reshape(()).item()
        return x if isinstance(x, mpmath.mpf) else mpmath.mpf(x)

    flat = [one(v) for v in np.asarray(values, dtype=object).reshape(-1)]
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out


def _floats(values: np.ndarray) -> np.ndarray:
    return np.array([float(v) for v in values], dtype=np.float64)
