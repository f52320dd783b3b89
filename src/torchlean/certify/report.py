"""The report as a table (rich) and as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torchlean.certify.result import CHECKS, FAIL, PASS, Report

__all__ = ["render", "write_json"]

_STYLE = {PASS: "green", FAIL: "bold red", "SKIP": "yellow"}


def render(report: Report, console: Any = None) -> None:
    """Print one row per loss, one column per check (status and key figures), then every
    failing case and every skip reason."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=160)
    table = Table(title="torchlean certify")
    table.add_column("loss", style="bold", no_wrap=True)
    for c in CHECKS:
        table.add_column(c)
    for r in report.losses:
        cells = []
        for c in CHECKS:
            res = r.checks.get(c)
            if res is None:
                cells.append("-")
                continue
            cells.append(f"[{_STYLE[res.status]}]{res.status}[/] {res.summary}")
        table.add_row(r.loss, *cells)
    console.print(table)
    for r in report.losses:
        for c, res in r.checks.items():
            if res.status == FAIL:
                console.print(f"[bold red]FAIL[/] {r.loss} / {c}: {res.n_failures} failing "
                              f"case(s); first: {res.failures[0]['case'] if res.failures else ''}",
                              highlight=False)
    verdict = "[green]all checks passed[/]" if report.ok else "[bold red]some checks failed[/]"
    console.print(f"{verdict} ({report.seconds:.1f} s)")


def write_json(report: Report, path: str | Path) -> None:
    """The full report (every figure and failing case) as JSON."""
    Path(path).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
