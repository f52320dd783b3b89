"""``torchlean certify``: every check of every loss, a progress bar on a terminal, a table that
fits 80 columns, and the full report as JSON."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from torchlean.cli.common import (
    FAILED,
    OK,
    STDOUT,
    UsageError,
    positive_int,
    seed,
    writable_file,
)

__all__ = ["add_parser", "command"]

EPILOG = """\
examples:
  torchlean certify                          every loss of torchlean.LOSSES
  torchlean certify --loss huber --json report.json
  torchlean certify --module mylosses.py     the losses a module declares
  torchlean certify --points 2 --json        fewer samples; the report as JSON on stdout

output: a progress bar on stderr when it is a terminal; on stdout one row per loss (and one per
declared second derivative, "(2nd)"), one cell per check: PASS n (n things examined; floats:
the worst float32 error in ulps), FAIL n (n failing cases) or SKIP; below it each failing
check's first case, each skip's reason and the verdict. --verbose adds every check's summary.

exit status:
  0    every check passed (a skipped check does not apply; each loss needs a pass)
  1    a check failed, or examined nothing
  2    usage error (bad argument, unwritable --json path, a --module that cannot be
       imported or declares a loss without derivative); nothing was certified
  130  interrupted (Ctrl-C)
"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("certify", help="certify every loss and derivative (exit 0: all pass)",
                       description="Certify every derivative against its loss: five checks "
                                   "(symbolic, kinks, intervals, floats, frameworks); a "
                                   "declared second derivative gets a row of its own, "
                                   "with a sixth (hessian).",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--module", default=None, metavar="FILE_OR_MODULE",
                   help="certify the losses this module declares (a .py file or an "
                        "importable module name) instead of the package's")
    p.add_argument("--loss", default=None, metavar="NAME",
                   help="one loss name (default: all, or all of --module)")
    p.add_argument("--json", type=writable_file, nargs="?", const=STDOUT, default=None,
                   metavar="PATH",
                   help="write the full report (every figure and failing case) as JSON to "
                        "PATH (its folder must exist); alone or with '-': to stdout, instead "
                        "of the table")
    p.add_argument("--points", type=positive_int, default=None, metavar="N",
                   help="sample count of every check, N >= 1 (default: each check's own)")
    p.add_argument("--seed", type=seed, default=0, metavar="S",
                   help="random seed of the samples, S >= 0 (default: 0)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="below the table, every check's one-line summary")
    return p


def _losses(args: argparse.Namespace, error: Callable[[str], NoReturn]) -> list[Any] | None:
    """The declarations to certify: those of ``--module`` (or every registered loss), narrowed
    by ``--loss``; None for every registered loss. Bad values end in ``error`` (exit 2)."""
    from torchlean.errors import ParameterError
    from torchlean.registry import LOSSES

    if args.module is None:
        if args.loss is not None and args.loss not in LOSSES:
            error(f"argument --loss: unknown loss {args.loss!r}; one of {', '.join(LOSSES)}")
        return None if args.loss is None else [LOSSES[args.loss]]
    from torchlean.certify.modules import load_module

    try:
        user = load_module(args.module)
        user.refuse_pending()
    except ParameterError as exc:
        error(str(exc))
    names = [d.name for d in user.losses]
    if not names:
        error(f"argument --module: {user.name} declares no loss (declare one with "
              f"torchlean.define_loss)")
    if args.loss is None:
        return list(user.losses)
    if args.loss not in names:
        error(f"argument --loss: {user.name} declares no loss {args.loss!r}; it declares "
              f"{', '.join(names)}")
    return [d for d in user.losses if d.name == args.loss]


def command(args: argparse.Namespace, error: Callable[[str], NoReturn]) -> int:
    """Run every check, print the table (or the JSON), write the JSON report; 0 exactly when
    all passed."""
    try:
        from torchlean.certify import render, run, write_json
    except ImportError as exc:  # pragma: no cover - the certify extra is missing
        raise UsageError(f"needs the certify extra (pip install 'torchlean[certify]'): "
                         f"{exc}") from None
    losses = _losses(args, error)
    report = run(losses, points=args.points, seed=args.seed, progress=sys.stderr.isatty())
    if args.json == STDOUT:
        write_json(report, STDOUT)
    else:
        # a closed stdout silences the table; the status and the JSON file still count
        render(report, verbose=args.verbose)
    if args.json is not None and args.json != STDOUT:
        try:
            write_json(report, args.json)
        except OSError as exc:
            raise UsageError(f"cannot write the report to {str(args.json)!r}: "
                             f"{exc.strerror or exc}") from None
    return OK if report.ok else FAILED
