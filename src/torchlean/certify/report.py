"""The report as a table (rich) and as JSON.

The table fits an 80-column terminal: one row per loss (and one per declared second
derivative), one short cell per check, ``PASS n`` (what it examined; floats: the worst
float32 error in ulps), ``FAIL n`` (failing cases) or ``SKIP``. The details follow the table
as lines of their own: each failing check's first case, each skip's reason, with
``verbose`` every check's summary; the JSON report holds every figure. On a pipe the output is
plain text: no colour codes and no box drawing.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from torchlean.certify.result import (
    FAIL,
    PASS,
    SECOND_CHECKS,
    SKIP,
    CheckResult,
    Report,
    how_much,
    where,
)

__all__ = ["HEADERS", "LEGEND", "cell", "render", "stdout_console", "write_json"]

_STYLE = {PASS: "green", FAIL: "bold red", SKIP: "yellow"}

#: the column headings: a check's name, split where it is wider than its cells (``PASS nnn``)
HEADERS = {"symbolic": "symbolic", "kinks": "kinks", "intervals": "inter-\nvals",
           "floats": "floats", "frameworks": "frame-\nworks", "hessian": "hessian"}

#: what a cell's figure means, printed under the table
LEGEND = "PASS n: n examined (floats: worst float32 ulps); FAIL n: n failing cases"


def render(report: Report, console: Any = None, *, verbose: bool = False) -> None:
    """Print the table (one row per loss, below a loss that declares a second derivative its
    second-order row, with the ``hessian`` column), then, for every failed check, its first
    failing case: what failed, where (the inputs) and by how much; then each skipped check's
    reason and the verdict. ``verbose``: every check's summary besides."""
    from rich.markup import escape
    from rich.table import Table

    console = console or stdout_console()
    rows = [row for r in report.losses for row in r.rows()]
    columns = [c for c in SECOND_CHECKS if any(c in r.checks for r in rows)] or \
        list(SECOND_CHECKS[:-1])
    table = Table(box=None, pad_edge=False,
                  collapse_padding=True, show_edge=False, header_style="bold")
    table.add_column("loss", style="bold", overflow="fold")
    for c in columns:
        table.add_column(HEADERS.get(c, c), no_wrap=True)
    for r in report.losses:
        for n, row in enumerate(r.rows()):
            label = escape(row.loss) if n == 0 else "  (2nd)"
            cells = []
            for c in columns:
                res = row.checks.get(c)
                cells.append("-" if res is None else
                             f"[{_STYLE.get(res.status, '')}]{res.status}[/] {cell(res)}".rstrip())
            table.add_row(label, *cells)
    if console.is_terminal:
        console.print(table)
    else:  # plain text: the same lines without the padding that ends them
        with console.capture() as captured:
            console.print(table)
        for line in captured.get().splitlines():
            console.out(line.rstrip(), highlight=False)
    console.print(LEGEND, style="dim", highlight=False)
    # the detail lines keep their length (no wrap inside them: they are read line by line)
    for r in rows:
        for c, res in r.checks.items():
            if res.status == FAIL:
                first = res.failures[0] if res.failures else {}
                console.print("[bold red]FAIL[/] " + escape(
                    f"{r.loss} / {c}: {res.n_failures} failing case(s); first: "
                    f"{first.get('case', '')}"), highlight=False, soft_wrap=True)
                for label, text in (("at", where(first)), ("in", first.get("raised_in", "")),
                                    ("by", how_much(first))):
                    if text:
                        console.print(f"    {label} {text}", highlight=False, markup=False,
                                      soft_wrap=True)
            elif res.status == SKIP:
                console.print("[yellow]SKIP[/] " + escape(f"{r.loss} / {c}: {res.summary}"),
                              highlight=False, soft_wrap=True)
    if verbose:
        for r in rows:
            console.print(escape(r.loss), style="bold", highlight=False, soft_wrap=True)
            for c, res in r.checks.items():
                console.print(f"  {c:<10} [{_STYLE.get(res.status, '')}]{res.status}[/] "
                              + escape(f"{res.summary} ({res.seconds:.1f} s)"),
                              highlight=False, soft_wrap=True)
    style = "green" if report.ok else "bold red"
    console.print(f"[{style}]{escape(report.verdict)}[/] ({report.seconds:.1f} s)",
                  highlight=False, soft_wrap=True)


def cell(res: CheckResult) -> str:
    """A check's figure in at most 3 characters (``""`` for a skip): the failing cases of a
    failure; of a pass, what it examined, or for floats the worst float32 error in ulps."""
    if res.status == FAIL:
        return _count(res.n_failures)
    if res.status != PASS:
        return ""
    ulps = res.figures.get("max_ulps", {}).get("float32") if res.check == "floats" else None
    if isinstance(ulps, dict):
        worst = max((v for k, v in ulps.items() if k in ("value", "deriv")
                     and isinstance(v, int | float)), default=None)
        if worst is not None:
            return _ulps(worst)
    return _count(res.examined)


def _count(n: int) -> str:
    if n < 1000:
        return str(n)
    if n < 10**6:
        return f"{n // 1000}k"
    return f"{n // 10**6}M"


def _ulps(x: float) -> str:
    if x != x:
        return "nan"
    if x < 9.95:
        text = f"{x:.1f}".rstrip("0").rstrip(".")
        return text or "0"
    return _count(round(x)) if x < 1e9 else "inf"


def stdout_console() -> Any:
    """A console for stdout that falls silent when the reader goes away (``| head``): rich
    would exit with status 1, which reads as a failed check, and skip the JSON report."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            # later writes, and the flush at exit, go nowhere instead of raising again
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)

    return _Console()


def write_json(report: Report, path: str | Path) -> None:
    """The full report (every figure and failing case) as JSON; ``"-"``: to stdout."""
    text = json.dumps(report.to_dict(), indent=2) + "\n"
    if str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    Path(path).write_text(text)
