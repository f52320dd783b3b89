"""``torchlean plot``: a loss's gallery figure (value, derivative, kinks, enclosure, float32
error) saved as PNG or SVG by :func:`torchlean.gallery.save`."""

from __future__ import annotations

import argparse
from typing import Any

from torchlean.cli.common import OK, UsageError, checked_params, declaration, param_pair

__all__ = ["add_parser", "command"]

EPILOG = """\
examples:
  torchlean plot huber -o huber.png
  torchlean plot huber --param delta=0.5 -o huber-half.svg

exit status:
  0    the figure was written (its path is printed)
  2    bad input: an unknown loss or parameter, a parameter value its validator refuses, a
       file name that does not end in .png or .svg, a folder that does not exist, or
       matplotlib missing (pip install 'torchlean[plot]')
  130  interrupted (Ctrl-C)
"""

SUFFIXES = (".png", ".svg")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("plot", help="draw a loss's gallery figure to a .png or .svg file",
                       description="Draw a loss's figure: its value and derivative over a "
                                   "representative range with the kinks and clamp bounds "
                                   "marked, the interval enclosure as a band and the float32 "
                                   "error in ulps (the figure of the docs' gallery).",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", metavar="NAME", help="the loss (torchlean list shows them)")
    p.add_argument("--param", type=param_pair, action="append", default=None, metavar="K=V",
                   help="a parameter of the loss (repeat for several): delta=0.5")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="the figure's file, .png or .svg (its folder must exist)")
    return p


def command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from torchlean.cli.common import writable_file
    from torchlean.errors import TorchleanError

    decl = declaration(args.name)
    params = checked_params(decl, args.param)
    path = Path(args.output)
    if path.suffix.lower() not in SUFFIXES:
        raise UsageError(f"argument -o/--output: {args.output!r} must end in .png or .svg; got "
                         f"{path.suffix or 'no suffix'!r}")
    try:
        writable_file(args.output)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"argument -o/--output: {exc}") from None
    try:
        from torchlean.gallery import save
    except ImportError as exc:
        raise UsageError(f"plot needs matplotlib (pip install 'torchlean[plot]'): "
                         f"{exc}") from None
    try:
        written = save(decl.name, path, params or None)
    except TorchleanError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write the figure to {args.output!r}: "
                         f"{exc.strerror or exc}") from None
    print(written)
    return OK
