"""``torchlean plot``: the gallery's figure of a loss written to the file named, and every bad
input refused in one line before any drawing."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from cli_output import one_error_line

from torchlean.cli import main


def test_the_name_the_path_and_the_parameters_reach_the_gallery(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[Any, ...]] = []

    def save(loss: str, path: Path, params: Any = None) -> Path:
        calls.append((loss, Path(path), params))
        return Path(path)

    monkeypatch.setitem(sys.modules, "torchlean.gallery",
                        types.SimpleNamespace(save=save))
    out = tmp_path / "huber.svg"
    assert main(["plot", "huber", "--param", "delta=0.5", "-o", str(out)]) == 0
    assert calls == [("huber", out, {"delta": 0.5})]
    assert capsys.readouterr().out == f"{out}\n"
    assert main(["plot", "mse", "--output", str(tmp_path / "mse.png")]) == 0
    assert calls[-1] == ("mse", tmp_path / "mse.png", None)


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(["nope", "-o", "F.svg"], "unknown loss 'nope'", id="unknown-loss"),
    pytest.param(["huber", "--param", "beta=1", "-o", "F.svg"], "`beta` is not a parameter",
                 id="unknown-parameter"),
    pytest.param(["huber", "--param", "delta=-1", "-o", "F.svg"], "`delta` must be",
                 id="validator"),
    pytest.param(["huber", "-o", "F.pdf"], "must end in .png or .svg", id="suffix"),
    pytest.param(["huber", "-o", "missing/F.svg"], "does not exist", id="missing-folder"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(tmp_path / a) if a.startswith(("F.", "missing/")) else a for a in args]
    assert main(["plot", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert message in one_error_line(err, "plot")
    assert not list(tmp_path.iterdir())


def test_a_missing_output_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["plot", "huber"])
    assert exc.value.code == 2
    one_error_line(capsys.readouterr().err, "plot")


def test_the_command_writes_an_svg(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "huber.svg"
    done = subprocess.run([sys.executable, "-m", "torchlean", "plot", "huber", "--param",
                           "delta=0.5", "-o", str(out)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    assert "<svg" in out.read_text()[:2000]
