"""The report as a table (rich) and as JSON."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from torchlean.certify.result import FAIL, PASS, SECOND_CHECKS, Report, how_much, where

__all__ = ["render", "write_json"]

_STYLE = {PASS: "green", FAIL: "bold red", "SKIP": "yellow"}


def render(report: Report, console: Any = None) -> None:
    """Print one row per loss, one column per check (status and key figures), and below a loss
    that declares a second derivative its second-order row (``<loss> (2nd)``, with the
    ``hessian`` column); then, for every failed check, its first failing case: what failed,
    where (the inputs) and by how much."""
    from rich.markup import escape
    from rich.table import Table

    console = console or _console()
    table = Table(title="torchlean certify")
    table.add_column("loss", style="bold", no_wrap=True)
    rows = [row for r in report.losses for row in r.rows()]
    columns = [c for c in SECOND_CHECKS if any(c in r.checks for r in rows)] or \
        list(SECOND_CHECKS[:-1])
    for c in columns:
        table.add_column(c)
    for r in rows:
        cells = []
        for c in columns:
            res = r.checks.get(c)
            if res is None:
                cells.append("-")
                continue
            cells.append(f"[{_STYLE[res.status]}]{res.status}[/] {escape(res.summary)}")
        table.add_row(r.loss, *cells)
    console.print(table)
    for r in rows:
        for c, res in r.checks.items():
            if res.status != FAIL:
                continue
            first = res.failures[0] if res.failures else {}
            console.print("[bold red]FAIL[/] " + escape(
                f"{r.loss} / {c}: {res.n_failures} failing case(s); first: "
                f"{first.get('case', '')}"), highlight=False)
            for label, text in (("at", where(first)), ("in", first.get("raised_in", "")),
                                ("by", how_much(first))):
                if text:
                    console.print(f"    {label} {text}", highlight=False, markup=False)
    style = "green" if report.ok else "bold red"
    console.print(f"[{style}]{report.verdict}[/] ({report.seconds:.1f} s)", highlight=False)


def _console() -> Any:
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

    return _Console(width=160)


def write_json(report: Report, path: str | Path) -> None:
    """The full report (every figure and failing case) as JSON."""
    Path(path).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
