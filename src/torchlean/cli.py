"""The ``torchlean`` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["main"]

#: exit statuses of ``torchlean certify``
OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130

EXIT_STATUS = """\
exit status:
  0    every check passed (a skipped check does not apply; each loss needs a pass)
  1    a check failed, or examined nothing
  2    usage error (bad argument, unwritable --json path, a --module that cannot be
       imported or declares a loss without derivative); nothing was certified
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


def _certify(args: argparse.Namespace, error: Callable[[str], NoReturn]) -> int:
    """Run every check, print the table, write the JSON report; 0 exactly when all passed."""
    try:
        from torchlean.certify import render, run, write_json
    except ImportError as exc:  # pragma: no cover - the certify extra is missing
        raise UsageError(f"needs the certify extra (pip install 'torchlean[certify]'): "
                         f"{exc}") from None
    losses = _losses(args, error)
    report = run(losses, points=args.points, seed=args.seed, progress=sys.stderr.isatty())
    render(report)  # a closed stdout silences the table; the status and JSON still count
    if args.json:
        try:
            write_json(report, args.json)
        except OSError as exc:
            raise UsageError(f"cannot write the report to {str(args.json)!r}: "
                             f"{exc.strerror or exc}") from None
    return OK if report.ok else FAILED


def _parser() -> tuple[_Parser, _Parser]:
    """The command's parser and that of ``certify``."""
    parser = _Parser(prog="torchlean", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cert = sub.add_parser("certify", help="certify every loss and derivative (exit 0: all pass)",
                          description="Certify every derivative against its loss: five checks "
                                      "(symbolic, kinks, intervals, floats, frameworks); a "
                                      "declared second derivative gets a row of its own, "
                                      "with a sixth (hessian).",
                          epilog=EXIT_STATUS,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    cert.add_argument("--module", default=None, metavar="FILE_OR_MODULE",
                      help="certify the losses this module declares (a .py file or an "
                           "importable module name) instead of the package's")
    cert.add_argument("--loss", default=None, metavar="NAME",
                      help="one loss name (default: all, or all of --module)")
    cert.add_argument("--json", type=_writable_file, default=None, metavar="PATH",
                      help="write the full report here (its folder must exist)")
    cert.add_argument("--points", type=_positive_int, default=None, metavar="N",
                      help="sample count of every check, N >= 1 (default: each check's own)")
    cert.add_argument("--seed", type=_seed, default=0, metavar="S",
                      help="random seed of the samples, S >= 0 (default: 0)")
    return parser, cert


def main(argv: Sequence[str] | None = None) -> int:
    """``torchlean``; returns the exit status (argument errors exit 2 through SystemExit)."""
    prog = "torchlean"
    try:
        parser, cert = _parser()
        args = parser.parse_args(argv)
        prog = f"torchlean {args.command}"
        if args.command == "certify":
            return _certify(args, cert.error)
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
