"""The loss gallery: one figure per loss, generated from its declaration.

:func:`figure` draws it, :func:`save` writes it as PNG or SVG, :func:`series` returns the
numbers it plots. Any declaration works, a user's :func:`torchlean.define_loss` too. Needs
matplotlib (``pip install 'torchlean[plot]'``), imported only when a figure is drawn.
"""

from torchlean.gallery.figure import FORMATS, draw, figure, save
from torchlean.gallery.placement import Marker
from torchlean.gallery.series import Series, series

__all__ = ["FORMATS", "Marker", "Series", "draw", "figure", "save", "series"]
