"""``torchlean certify`` as a command: exit statuses, one-line errors, no vacuous certificate."""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cli_output import one_error_line

import torchlean.certify as certify
from torchlean.certify import CheckResult, LossReport, Report, check_symbolic, run
from torchlean.certify.result import FAIL, PASS, SKIP, Collector, skipped
from torchlean.cli import main
from torchlean.errors import ParameterError

CHEAP = ["--loss", "mse", "--points", "1"]


def _command(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "torchlean", "certify", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


# ---------------------------------------------------------------------------------------------
# a certificate is never vacuous
# ---------------------------------------------------------------------------------------------


def test_a_pass_that_examined_nothing_is_a_failure() -> None:
    r = CheckResult("floats", PASS, "f32 0, f64 0 ulp", examined=0)
    assert r.status == FAIL
    assert not r.ok
    assert "examined no points" in r.summary
    assert r.failures[0]["case"] == "examined no points"
    report = Report([LossReport("mse", {}, {"floats": r})], {}, {})
    assert not report.ok
    assert report.to_dict()["ok"] is False


def test_the_collector_fails_a_check_that_counted_nothing() -> None:
    r = Collector().result("symbolic", "0 proven", examined=0, unit="identities")
    assert r.status == FAIL
    assert "examined no identities" in r.summary
    assert Collector().result("symbolic", "1 proven", examined=1).status == PASS


def test_skips_alone_certify_nothing() -> None:
    passed = CheckResult("kinks", PASS, "3 pts", examined=3)
    skip = skipped("frameworks", "no PyTorch equivalent in the registry")
    assert skip.status == SKIP and skip.ok  # not applicable is not a failure ...
    assert Report([LossReport("mse", {}, {"kinks": passed, "frameworks": skip})], {}, {}).ok
    only_skips = Report([LossReport("mse", {}, {"frameworks": skip})], {}, {})
    assert not only_skips.ok  # ... but a loss with nothing that passed is not certified
    assert "nothing certified" in only_skips.verdict
    assert not Report([], {}, {}).ok
    assert not Report([LossReport("mse", {})], {}, {}).ok


def test_a_check_given_no_points_fails() -> None:
    r = check_symbolic("mse", points=0, shapes=((1,),))
    assert r.status == FAIL
    assert r.examined == 0
    assert "examined no identities" in r.summary


def test_run_refuses_non_positive_points_and_negative_seeds() -> None:
    with pytest.raises(ParameterError, match="points"):
        run(["mse"], points=0)
    with pytest.raises(ParameterError, match="points"):
        run(["mse"], points=-1)
    with pytest.raises(ParameterError, match="seed"):
        run(["mse"], seed=-1)


def test_every_passing_check_says_what_it_examined() -> None:
    report = run(["mse"], points=1)
    for c in report.losses[0].checks.values():
        assert c.status == SKIP or (c.status == PASS and c.examined > 0), c
    assert report.ok


# ---------------------------------------------------------------------------------------------
# usage errors: exit 2, one line, before any work
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    pytest.param(["--points", "-1"], id="points-negative"),
    pytest.param(["--points", "0"], id="points-zero"),
    pytest.param(["--points", "two"], id="points-text"),
    pytest.param(["--seed", "-1"], id="seed-negative"),
    pytest.param(["--seed", "0.5"], id="seed-fraction"),
    pytest.param(["--loss", "nope"], id="unknown-loss"),
])
def test_bad_arguments_exit_2_in_one_line(args: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["certify", *args])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    one_error_line(err)


def test_json_into_a_missing_folder_is_refused_before_any_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["certify", *CHEAP, "--json", str(tmp_path / "missing" / "r.json")])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""  # no table: nothing ran
    assert "does not exist" in one_error_line(err)


def test_json_onto_a_folder_is_refused(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["certify", *CHEAP, "--json", str(tmp_path)])
    assert exc.value.code == 2
    one_error_line(capsys.readouterr().err)


def test_a_failed_report_write_is_one_line_and_exit_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def full_disk(report: Any, path: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(certify, "write_json", full_disk)
    assert main(["certify", *CHEAP, "--json", str(tmp_path / "r.json")]) == 2
    assert "No space left" in one_error_line(capsys.readouterr().err)


def test_help_lists_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["certify", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for status in ("0 ", "1 ", "2 ", "130"):
        assert f"\n  {status}" in out, out
    assert "--module FILE_OR_MODULE" in out


@pytest.mark.parametrize("args", [
    pytest.param(["--points", "-1"], id="points-negative"),
    pytest.param(["--seed", "-1"], id="seed-negative"),
    pytest.param(["--json", "no/such/folder/r.json"], id="json-missing-folder"),
])
def test_the_command_exits_2_without_a_traceback(args: list[str]) -> None:
    done = _command(*args)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    one_error_line(done.stderr)


# ---------------------------------------------------------------------------------------------
# interruption and closed pipes
# ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_exits_130_without_a_traceback() -> None:
    # "ready" marks that the command has begun (so the signal does not land in interpreter
    # start-up); the full run of every loss takes far longer than the wait below
    script = ("import sys; from torchlean.cli import main; print('ready', flush=True); "
              "sys.exit(main(['certify']))")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines() == ["torchlean certify: interrupted"]


def test_a_closed_stdout_is_quiet_and_keeps_the_verdict(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = subprocess.Popen([sys.executable, "-m", "torchlean", "certify", *CHEAP,
                             "--json", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the table is printed (``| head -0``)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err
    assert err == ""
    assert proc.returncode == 0
    assert json.loads(out.read_text())["ok"] is True
