"""The ``torchlean`` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

__all__ = ["main"]

#: exit statuses of ``torchlean certify``
OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130

EXIT_STATUS = """\
exit status:
  0    every check passed (a skipped check does not apply; each loss needs a pass)
  1    a check failed, or examined nothing
  2    usage error (bad argument, unwritable --json path); nothing was certified
  130  interrupted (Ctrl-C)
"""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block): ``torchlean certify: error: ...``."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: error: {message}\n")


class UsageError(Exception):
    """An argument the command refuses; reported in one line, exit status 2."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}")
    return value


def _seed(text: str) -> int:
    # non-negative integers of any size: exactly what numpy's default_rng accepts
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer; got {text!r}")
    return value


def _loss(text: str) -> str:
    from torchlean.registry import LOSSES

    if text not in LOSSES:
        raise argparse.ArgumentTypeError(f"unknown loss {text!r}; one of {', '.join(LOSSES)}")
    return text


def _writable_file(text: str) -> Path:
    """A path whose file can be created or replaced now, checked before any work."""
    path = Path(text)
    parent = path.parent
    if not text or path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder, not a file")
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists()
                                                     and not os.access(path, os.W_OK)):
        raise argparse.ArgumentTypeError(f"{text!r} is not writable")
    return path


def _certify(args: argparse.Namespace) -> int:
    """Run every check, print the table, write the JSON report; 0 exactly when all passed."""
    try:
        from torchlean.certify import render, run, write_json
    except ImportError as exc:  # pragma: no cover - the certify extra is missing
        raise UsageError(f"needs the certify extra (pip install 'torchlean[certify]'): "
                         f"{exc}") from None
    report = run([args.loss] if args.loss else None, points=args.points, seed=args.seed,
                 progress=sys.stderr.isatty())
    render(report)  # a closed stdout silences the table; the status and JSON still count
    if args.json:
        try:
            write_json(report, args.json)
        except OSError as exc:
            raise UsageError(f"cannot write the report to {str(args.json)!r}: "
                             f"{exc.strerror or exc}") from None
    return OK if report.ok else FAILED


def _parser() -> _Parser:
    parser = _Parser(prog="torchlean", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cert = sub.add_parser("certify", help="certify every loss and derivative (exit 0: all pass)",
                          description="Certify every derivative against its loss: five checks "
                                      "(symbolic, kinks, intervals, floats, frameworks).",
                          epilog=EXIT_STATUS,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    cert.add_argument("--loss", type=_loss, default=None, help="one loss name (default: all)")
    cert.add_argument("--json", type=_writable_file, default=None, metavar="PATH",
                      help="write the full report here (its folder must exist)")
    cert.add_argument("--points", type=_positive_int, default=None, metavar="N",
                      help="sample count of every check, N >= 1 (default: each check's own)")
    cert.add_argument("--seed", type=_seed, default=0, metavar="S",
                      help="random seed of the samples, S >= 0 (default: 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``torchlean``; returns the exit status (argument errors exit 2 through SystemExit)."""
    prog = "torchlean"
    try:
        parser = _parser()
        args = parser.parse_args(argv)
        prog = f"torchlean {args.command}"
        if args.command == "certify":
            return _certify(args)
        return USAGE  # pragma: no cover - argparse requires a known command
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        # stdout closed early (``| head``, outside the report's own console): stop quietly,
        # and keep the interpreter's final flush from raising again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
