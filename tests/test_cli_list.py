"""``torchlean --help`` and ``torchlean list``: every verb with examples, the catalogue read
from the declarations."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cli_output import plain

import torchlean
from torchlean.cli import main

VERBS = ("list", "eval", "plot", "certify")


def test_help_lists_every_verb_with_examples_and_exit_statuses(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for verb in VERBS:
        assert f"\n    {verb} " in out, out
        assert f"torchlean {verb} " in out  # an example of each
    for status in ("0 ", "1 ", "2 ", "130"):
        assert f"\n  {status}" in out


@pytest.mark.parametrize("verb", VERBS)
def test_each_verb_has_examples_and_exit_statuses(verb: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([verb, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "examples:\n" in out and f"  torchlean {verb}" in out
    assert "exit status:\n  0 " in out and "\n  2 " in out


def test_no_verb_or_an_unknown_verb_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["frobnicate"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("torchlean: error: ")


def test_the_catalogue_lists_every_loss_with_its_parameters(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    plain(out)
    lines = out.splitlines()
    assert lines[0].split() == ["loss", "kind", "parameters", "summary"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert list(rows) == list(torchlean.LOSSES)
    for name, decl in torchlean.LOSSES.items():
        assert f"{decl.kind}, {decl.reduction}" in rows[name]
        for key, default in decl.params.items():
            assert f"{key}={default!r}" in rows[name]
        # a loss declared elsewhere in the session may have no formula
        assert (decl.formula.splitlines() or [""])[0] in rows[name]
    assert "delta=1.0" in rows["huber"] and "gamma=2.0, alpha=0.25" in rows["binary_focal"]


def test_the_json_catalogue_is_the_declarations(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in entries] == list(torchlean.LOSSES)
    for e in entries:
        decl = torchlean.LOSSES[e["name"]]
        assert e["kind"] == decl.kind and e["reduction"] == decl.reduction
        assert e["params"] == dict(decl.params)
        assert [p["name"] for p in e["parameters"]] == list(decl.parameters)
        assert e["formula"] == decl.formula and e["checks_domain"] == decl.has_domain_check
        assert (e["second_derivative"] is None) == (not decl.has_second)
    huber = next(e for e in entries if e["name"] == "huber")
    assert huber["parameters"][0]["default"] == 1.0 and huber["parameters"][0]["doc"]


def test_the_command_prints_plain_text_to_a_pipe() -> None:
    done = subprocess.run([sys.executable, "-m", "torchlean", "list"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    plain(done.stdout)
    # a fresh interpreter has the package's losses only (tests may have declared more here)
    own = [d for d in torchlean.LOSSES.values() if d.origin == "torchlean"]
    assert len(done.stdout.splitlines()) == len(own) + 1
