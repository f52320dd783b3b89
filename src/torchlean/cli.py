"""The ``torchlean`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _certify(args: argparse.Namespace) -> int:
    """Run every check, print the table, write the JSON report; 0 exactly when none failed."""
    try:
        from torchlean.certify import render, run, write_json
    except ImportError as exc:  # pragma: no cover - the certify extra is missing
        print(f"torchlean certify needs the certify extra (pip install 'torchlean[certify]'): "
              f"{exc}", file=sys.stderr)
        return 2
    report = run([args.loss] if args.loss else None, points=args.points, seed=args.seed,
                 progress=sys.stderr.isatty())
    render(report)
    if args.json:
        write_json(report, args.json)
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="torchlean", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cert = sub.add_parser("certify", help="certify every loss and derivative (exit 0: all pass)")
    cert.add_argument("--loss", default=None, help="one loss name (default: all)")
    cert.add_argument("--json", default=None, metavar="PATH", help="write the full report here")
    cert.add_argument("--points", type=int, default=None,
                      help="sample count of every check (default: each check's own)")
    cert.add_argument("--seed", type=int, default=0, help="random seed of the samples")
    args = parser.parse_args(argv)
    if args.command == "certify":
        try:
            return _certify(args)
        except ValueError as exc:  # an unknown loss name: the package's own message
            parser.error(str(exc))
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
