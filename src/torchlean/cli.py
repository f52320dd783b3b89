"""The ``torchlean`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

__all__ = ["main"]


def _report(args: argparse.Namespace) -> int:
    """Evaluate every loss and derivative on embedded data and print a table."""
    from torchlean.registry import LOSSES, get_loss

    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.95, size=(4, 3))
    t = np.eye(3)[[0, 1, 2, 0]]
    names = [args.loss] if args.loss else list(LOSSES)
    print(f"{'loss':<22} {'value':>14} {'|deriv|_1':>14}")
    for name in names:
        entry = get_loss(name)
        target = 2 * t - 1 if name == "hinge" else t
        v = entry.value(p, target)
        g = entry.deriv(p, target)
        print(f"{name:<22} {float(v):>14.8g} {float(np.abs(g).sum()):>14.8g}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="torchlean", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cert = sub.add_parser("certify", help="check every loss and derivative")
    cert.add_argument("--loss", default=None, help="one loss name (default: all)")
    args = parser.parse_args(argv)
    if args.command == "certify":
        return _report(args)
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
