"""The ``torchlean`` command: ``list``, ``eval``, ``plot`` and ``certify``.

Every verb prints plain text to a pipe (no colour codes, nothing wider than its content), takes
``--json`` where a script reads its output, reports bad input in one line on stderr (``torchlean
VERB: error: ...``) with exit status 2, and exits 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from torchlean.cli import certify, evaluate, listing, plot
from torchlean.cli.common import FAILED, INTERRUPTED, OK, USAGE, Parser, UsageError

__all__ = ["FAILED", "INTERRUPTED", "OK", "USAGE", "UsageError", "main"]

EPILOG = """\
examples:
  torchlean list                                        the losses and their parameters
  torchlean eval huber --predicted p.npy --target t.npy --param delta=0.5 --out grad.npy
  torchlean plot huber -o huber.svg                     the loss's gallery figure
  torchlean certify --loss huber                        certify a derivative

  torchlean VERB --help shows each verb's options and examples.

output: plain text on a pipe; --json prints JSON on stdout (list, eval, certify; certify
--json PATH writes the report to a file instead).

exit status:
  0    success (certify: every check passed)
  1    certify: a check failed, or examined nothing
  2    usage error or bad input, reported in one line on stderr; nothing was done
  130  interrupted (Ctrl-C)
"""


def _parser() -> tuple[Parser, dict[str, argparse.ArgumentParser]]:
    """The command's parser and that of each verb."""
    parser = Parser(prog="torchlean", description="Loss functions and their certified "
                    "derivatives, from the command line.", epilog=EPILOG,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="VERB",
                                title="verbs")
    verbs = {name: module.add_parser(sub) for name, module in
             (("list", listing), ("eval", evaluate), ("plot", plot), ("certify", certify))}
    return parser, verbs


def main(argv: Sequence[str] | None = None) -> int:
    """``torchlean``; returns the exit status (argument errors exit 2 through SystemExit)."""
    prog = "torchlean"
    try:
        parser, verbs = _parser()
        args = parser.parse_args(argv)
        prog = f"torchlean {args.command}"
        if args.command == "certify":
            return certify.command(args, verbs["certify"].error)
        if args.command == "eval":
            return evaluate.command(args)
        if args.command == "plot":
            return plot.command(args)
        return listing.command(args)
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        # stdout closed early (``| head``): stop quietly, and keep the interpreter's final
        # flush from raising again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return FAILED if prog == "torchlean certify" else OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
