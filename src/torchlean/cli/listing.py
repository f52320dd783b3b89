"""``torchlean list``: the catalogue of losses, read from their declarations."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from typing import Any

from torchlean.cli.common import OK, params_text

__all__ = ["add_parser", "command", "entry", "summary"]

EPILOG = """\
examples:
  torchlean list
  torchlean list --json | python -c "import json, sys; print(len(json.load(sys.stdin)))"

exit status:
  0    the catalogue was printed
  2    usage error
"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("list", help="the catalogue: every loss, its kind and parameters",
                       description="Every registered loss (torchlean.LOSSES): its name, kind "
                                   "and reduction, parameters with their defaults, and its "
                                   "formula, as its declaration states them.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true",
                   help="print a JSON list on stdout, one object per loss (name, kind, "
                        "reduction, params, parameters, summary, formula, derivative, kinks, "
                        "second derivative, domain, PyTorch equivalent, origin)")
    return p


def summary(decl: Any) -> str:
    """One line about the loss: the first line of its ``doc``, else its formula."""
    for text in (decl.doc, decl.formula):
        line = text.strip().splitlines()[0].strip() if text.strip() else ""
        if line:
            return line
    return "(no description)"


def entry(decl: Any) -> dict[str, Any]:
    """The loss as a JSON object (parameter defaults that are not finite become text)."""
    def plain(v: Any) -> Any:
        return v if not isinstance(v, float) or abs(v) < float("inf") else str(v)

    return {
        "name": decl.name, "kind": decl.kind, "reduction": decl.reduction,
        "params": {k: plain(v) for k, v in decl.params.items()},
        "parameters": [{"name": p.name, "default": plain(p.default), "doc": p.doc}
                       for p in decl.parameters.values()],
        "arguments": list(decl.arg_names), "summary": summary(decl), "formula": decl.formula,
        "derivative": decl.derivative_text, "kinks": decl.kink_text,
        "second_derivative": decl.second_text if decl.has_second else None,
        "hessian_sign": decl.hessian_sign if decl.has_second else None,
        "domain": decl.domain.text, "checks_domain": decl.has_domain_check,
        "pytorch": decl.torch_text or None, "origin": decl.origin,
    }


def command(args: argparse.Namespace) -> int:
    from torchlean.registry import LOSSES

    decls = list(LOSSES.values())
    if args.json:
        print(json.dumps([entry(d) for d in decls], indent=2))
        return OK
    rows = [("loss", "kind", "parameters", "summary")]
    rows += [(d.name, f"{d.kind}, {d.reduction}", params_text(d.params), summary(d))
             for d in decls]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    # a terminal gets one line per loss, the summary cut to its width; a pipe the whole text
    limit = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    for r in rows:
        line = "  ".join(f"{cell:<{w}}" for cell, w in zip(r, widths, strict=False)) + "  " + r[3]
        if limit is not None and len(line) > limit:
            line = line[:max(limit - 3, 0)] + "..."
        print(line.rstrip())
    return OK
