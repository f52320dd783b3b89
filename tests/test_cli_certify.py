"""``torchlean certify``'s output: a table that fits 80 columns, plain text on a pipe, the
details below it, the report as JSON on stdout."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_output import ANSI, plain
from rich.console import Console

import torchlean
from torchlean.certify import render
from torchlean.certify.report import LEGEND, cell
from torchlean.certify.result import (
    CHECKS,
    FAIL,
    PASS,
    SECOND_CHECKS,
    SKIP,
    CheckResult,
    LossReport,
    Report,
)
from torchlean.cli import main

WIDTH = 80


def _widest_report() -> Report:
    """Every registered loss with the widest cells a run gives (3-digit figures), without
    running a check."""
    losses = []
    for name in torchlean.LOSSES:
        first = LossReport(name, {}, {c: CheckResult(c, FAIL, "x" * 200, n_failures=999,
                                                     failures=[{"case": "y"}]) for c in CHECKS})
        first.second = LossReport(f"{name} (2nd)", {}, {
            c: CheckResult(c, PASS, "x" * 200, examined=999) for c in SECOND_CHECKS})
        losses.append(first)
    return Report(losses, {}, {})


def _table(text: str) -> list[str]:
    """The table's lines: those above the legend."""
    lines = ANSI.sub("", text).splitlines()
    return lines[:lines.index(LEGEND)]


@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "terminal"])
def test_the_table_of_every_loss_fits_80_columns(terminal: bool) -> None:
    console = Console(width=WIDTH, force_terminal=terminal, record=True, file=io.StringIO())
    render(_widest_report(), console)
    text = console.export_text(styles=terminal)
    table = _table(text)
    assert max(len(line) for line in table) <= WIDTH, "\n".join(table)
    names = [line.split()[0] for line in table if line and not line.startswith(" ")]
    # every loss name whole on its own row (no name folded onto a second line)
    assert names == ["loss", *torchlean.LOSSES], names
    if not terminal:
        plain(text)


def test_a_cell_is_a_status_and_at_most_three_characters() -> None:
    floats = CheckResult("floats", PASS, "f32 0.49, f64 1.4 ulp", examined=44, figures={
        "max_ulps": {"float32": {"value": 0.49, "deriv": 1e-9, "case": ""}}})
    assert cell(floats) == "0.5"  # the worst float32 error, in ulps
    assert cell(CheckResult("kinks", PASS, "13 pts, 38 coords", examined=38)) == "38"
    assert cell(CheckResult("hessian", PASS, "", examined=2300)) == "2k"
    assert cell(CheckResult("symbolic", FAIL, "", n_failures=11)) == "11"
    assert cell(CheckResult("frameworks", SKIP, "no PyTorch reference")) == ""
    zero = CheckResult("floats", PASS, "", examined=4, figures={
        "max_ulps": {"float32": {"value": 0.0, "deriv": 0.0}}})
    assert cell(zero) == "0"


def test_failures_and_skips_follow_the_table_whole() -> None:
    report = Report([LossReport("huber", {}, {
        "symbolic": CheckResult("symbolic", FAIL, "", n_failures=2, failures=[
            {"case": "(1,) anywhere: element 0, " + "long " * 30, "predicted": [0.5],
             "target": [0.25], "derivative_spec": 1.0, "derivative_of_value": 2.0,
             "difference": 1.0, "relative_error": 0.5}]),
        "frameworks": CheckResult("frameworks", SKIP, "no PyTorch equivalent")})], {}, {})
    console = Console(width=WIDTH, record=True, file=io.StringIO())
    render(report, console)
    lines = console.export_text().splitlines()
    fail = next(i for i, line in enumerate(lines) if line.startswith("FAIL huber / symbolic"))
    assert lines[fail].endswith("long long ")  # one line, however long: read line by line
    assert lines[fail + 1] == "    at predicted=[0.5], target=[0.25]"
    assert lines[fail + 2].startswith("    by declared derivative 1")
    assert "SKIP huber / frameworks: no PyTorch equivalent" in lines
    assert lines[-1].startswith("1 of 2 checks failed")


def test_a_run_prints_a_narrow_plain_table_with_its_second_order_row(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certify", "--loss", "huber", "--points", "1", "--verbose"]) == 0
    out, err = capsys.readouterr()
    assert err == ""  # no progress bar off a terminal
    plain(out)
    table = _table(out)
    assert max(len(line) for line in table) <= WIDTH
    rows = [line.split() for line in table[2:]]
    assert rows[0][0] == "huber" and rows[1][0] == "(2nd)"
    assert rows[0][1:11:2] == [PASS] * 5 and rows[0][-1] == "-"  # no hessian on the first row
    assert rows[1][1::2] == [PASS] * 6
    # --verbose: each check's summary, under the row's name
    assert "huber (2nd)" in out.splitlines()
    assert any(line.startswith("  hessian    PASS ") for line in out.splitlines())
    assert out.splitlines()[-1].startswith("all checks passed")


def test_json_alone_prints_the_report_on_stdout_instead_of_the_table(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certify", "--loss", "mse", "--points", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and [r["loss"] for r in report["losses"]] == ["mse"]
    assert main(["certify", "--loss", "mse", "--points", "1", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_the_command_on_pipes_is_plain_and_keeps_stderr_empty(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = subprocess.run([sys.executable, "-m", "torchlean", "certify", "--loss", "mse",
                           "--points", "1", "--json", str(out)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    plain(done.stdout)
    assert max(len(line) for line in _table(done.stdout)) <= WIDTH
    assert json.loads(out.read_text())["ok"] is True
