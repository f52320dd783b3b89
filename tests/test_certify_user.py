"""``torchlean certify --module``: users' own losses, certified with all five checks.

Each test writes a user's module (the public shape of ``torchlean.define_loss``) to a temporary
folder. User losses register into the process-wide registry: every loss name below is used by
one test only, and each test removes the losses and modules it imported.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_output import one_error_line

from torchlean.certify import CHECKS, run
from torchlean.certify.modules import load_module
from torchlean.cli import main
from torchlean.errors import ParameterError
from torchlean.spec.core.declaration import REGISTRY, unregister

PSEUDO_HUBER = '''
import torchlean

@torchlean.define_loss("{name}", params={{"delta": 1.0}}, reduction="mean")
def {name}(c, p, t, *, delta):
    d = p - t
    return delta * delta * (c.sqrt(1 + (d / delta) * (d / delta)) - 1)

@{name}.deriv
def _(c, p, t, *, delta):
    d = {deriv}
    return d / c.sqrt(1 + (d / delta) * (d / delta))
'''

# |d| with a kink at d = 0 declared as data; the derivative there is the declared choice
ABSOLUTE = '''
import torchlean
from torchlean import Seam

@torchlean.define_loss("{name}", seams=[Seam("residual", lambda k, prm: k.const(0), "d = 0",
                                             choice="derivative {at_zero}")])
def {name}(c, p, t):
    return c.abs(p - t)

@{name}.deriv
def _(c, p, t):
    d = p - t
    return c.where(c.lt(d, 0), -1, c.where(c.lt(0, d), 1, {at_zero}))
'''

SQUARED = '''
import torchlean

@torchlean.define_loss("{name}")
def {name}(c, p, t):
    return (p - t) * (p - t)

@{name}.deriv
def _(c, p, t):
    return 2 * (p - t)
'''


@pytest.fixture(autouse=True)
def _forget_user_losses(tmp_path: Path) -> Iterator[None]:
    losses, modules = set(REGISTRY), set(sys.modules)
    yield
    for name in set(REGISTRY) - losses:
        unregister(name)
    for name in set(sys.modules) - modules:
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def _write(folder: Path, stem: str, *sources: str) -> Path:
    path = folder / f"{stem}.py"
    path.write_text("\n".join(textwrap.dedent(s) for s in sources))
    return path


def _command(*args: str, cwd: Path | None = None,
             env_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = dict(os.environ)
    if env_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(env_path),
                                                         env.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "torchlean", "certify", *args],
                          capture_output=True, text=True, timeout=300, check=False, cwd=cwd,
                          env=env)


# ---------------------------------------------------------------------------------------------
# a correct loss, as a file and as a module name
# ---------------------------------------------------------------------------------------------


def test_a_correct_user_loss_is_certified_from_its_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "mylosses", PSEUDO_HUBER.format(name="pseudo_huber_mine",
                                                            deriv="p - t"))
    done = _command("--module", str(path), "--points", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pseudo_huber_mine" in done.stdout
    assert "all checks passed" in done.stdout
    # only the module's losses: none of the package's
    assert "cross_entropy" not in done.stdout


def test_a_module_name_on_the_path_is_certified(tmp_path: Path) -> None:
    _write(tmp_path, "user_squares_mod", SQUARED.format(name="user_square_by_name"))
    done = _command("--module", "user_squares_mod", "--points", "1", env_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "user_square_by_name" in done.stdout


def test_in_process_every_check_runs_on_the_module_losses(tmp_path: Path) -> None:
    path = _write(tmp_path, "inproc_losses",
                  PSEUDO_HUBER.format(name="pseudo_huber_inproc", deriv="p - t"),
                  SQUARED.format(name="square_inproc"))
    user = load_module(str(path))
    assert user.name == "inproc_losses"
    assert sorted(d.name for d in user.losses) == ["pseudo_huber_inproc", "square_inproc"]
    assert all(d.origin == "inproc_losses" for d in user.losses)
    report = run(list(user.losses), points=1)
    assert report.ok, report.verdict
    for r in report.losses:
        assert list(r.checks) == list(CHECKS)
        # no PyTorch reference declared: the frameworks check does not apply
        assert r.checks["frameworks"].status == "SKIP"
        assert all(r.checks[c].status == "PASS" for c in CHECKS if c != "frameworks")


def test_a_file_is_imported_once_and_never_shadows_a_loaded_module(tmp_path: Path) -> None:
    import json

    path = _write(tmp_path, "json", SQUARED.format(name="square_in_json_file"))
    user = load_module(str(path))
    assert sys.modules["json"] is json  # the standard library's json is still json
    assert user.name.startswith("json_") and user.name != "json"
    assert [d.name for d in user.losses] == ["square_in_json_file"]
    again = load_module(str(path))
    assert again.module is user.module and again.losses == user.losses


def test_loss_narrows_to_one_of_the_module(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "narrow_losses", SQUARED.format(name="square_narrow_a"),
                  SQUARED.format(name="square_narrow_b"))
    assert main(["certify", "--module", str(path), "--loss", "square_narrow_b",
                 "--points", "1"]) == 0
    out = capsys.readouterr().out
    assert "square_narrow_b" in out and "square_narrow_a" not in out


# ---------------------------------------------------------------------------------------------
# wrong derivatives: exit 1, with the check, the point and the size of the miss
# ---------------------------------------------------------------------------------------------


def test_a_wrong_derivative_exits_1_and_says_where_and_by_how_much(tmp_path: Path) -> None:
    # d / delta forgotten in the derivative: right at delta = 1 only, so the certifier must
    # also look at other parameter values
    path = _write(tmp_path, "wrong_losses",
                  PSEUDO_HUBER.format(name="pseudo_huber_wrong", deriv="(p - t) * delta"))
    done = _command("--module", str(path), "--points", "2")
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    fail = next(line for line in out.splitlines() if line.startswith("FAIL"))
    assert "pseudo_huber_wrong / symbolic" in fail
    assert "delta=0.75" in fail  # the parameter value at which it differs
    lines = out.splitlines()
    at = lines[lines.index(fail) + 1].strip()
    by = lines[lines.index(fail) + 2].strip()
    assert at.startswith("at predicted=[") and "target=[" in at
    assert by.startswith("by declared derivative") and "difference" in by


def test_a_wrong_derivative_in_process_names_a_counterexample(tmp_path: Path) -> None:
    path = _write(tmp_path, "wrong_double",
                  SQUARED.format(name="square_double").replace("2 * (p - t)", "4 * (p - t)"))
    (decl,) = load_module(str(path)).losses
    report = run([decl], points=1, checks=["symbolic", "kinks"])
    assert not report.ok
    sym = report.losses[0].checks["symbolic"]
    assert sym.status == "FAIL"
    case = sym.failures[0]
    # hand derivation: d/dp (p - t)**2 = 2 (p - t), declared 4 (p - t): off by 2 |p - t| / n
    d = [p - t for p, t in zip(case["predicted"], case["target"], strict=True)]
    n = len(d)
    i = int(case["case"].split("element ")[1].split(",")[0])
    assert case["derivative_of_value"] == pytest.approx(2 * d[i] / n, rel=1e-12)
    assert case["derivative_spec"] == pytest.approx(4 * d[i] / n, rel=1e-12)
    assert case["difference"] == pytest.approx(2 * abs(d[i]) / n, rel=1e-12)
    assert report.losses[0].checks["kinks"].status == "FAIL"


def test_a_wrong_choice_at_a_declared_kink_fails_the_kinks_check(tmp_path: Path) -> None:
    path = _write(tmp_path, "kink_losses", ABSOLUTE.format(name="abs_choice_two", at_zero=2),
                  ABSOLUTE.format(name="abs_choice_zero", at_zero=0))
    done = _command("--module", str(path), "--points", "2")
    assert done.returncode == 1, done.stdout + done.stderr
    fails = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert fails == [fails[0]] and "abs_choice_two / kinks" in fails[0], done.stdout
    assert "d = 0" in fails[0]
    assert "one-sided derivatives" in done.stdout
    # right on both open regions: the symbolic check has nothing to object
    (two, zero) = sorted(load_module(str(path)).losses, key=lambda d: d.name != "abs_choice_two")
    report = run([two, zero], points=1, checks=["symbolic", "kinks"])
    assert report.losses[0].checks["symbolic"].status == "PASS"
    assert report.losses[0].checks["kinks"].status == "FAIL"
    assert report.losses[1].ok


# ---------------------------------------------------------------------------------------------
# a loss that raises inside a context; a loss without a derivative
# ---------------------------------------------------------------------------------------------

RAISES_IN_EXACT = '''
import torchlean

@torchlean.define_loss("{name}")
def {name}(c, p, t):
    return (p - t) * (p - t)

@{name}.deriv
def _(c, p, t):
    if type(c).__name__ == "ExactContext":  # a term that cannot run over sympy symbols
        raise ValueError("this derivative has no symbolic form")
    return 2 * (p - t)
'''


def test_a_loss_that_raises_is_a_failure_naming_the_loss_check_and_exception(
        tmp_path: Path) -> None:
    path = _write(tmp_path, "raising_losses", RAISES_IN_EXACT.format(name="sq_raises"),
                  SQUARED.format(name="square_beside_raises"))
    done = _command("--module", str(path), "--points", "1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    fail = next(line for line in done.stdout.splitlines() if line.startswith("FAIL"))
    assert "sq_raises / symbolic" in fail
    assert "ValueError: this derivative has no symbolic form" in fail
    lines = done.stdout.splitlines()
    assert "raising_losses.py" in lines[lines.index(fail) + 1]  # where it raised
    # the other checks of that loss, and the other loss, still ran
    user = load_module(str(path))
    report = run(list(user.losses), points=1)
    by_name = {r.loss: r for r in report.losses}
    raising = by_name["sq_raises"]
    assert raising.checks["symbolic"].status == "FAIL"
    assert raising.checks["kinks"].status == "PASS"
    assert raising.checks["floats"].status == "PASS"
    assert by_name["square_beside_raises"].ok


def test_a_loss_without_a_derivative_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "no_deriv", '''
        import torchlean

        @torchlean.define_loss("half_declared_loss")
        def half_declared_loss(c, p, t):
            return (p - t) * (p - t)
        ''')
    done = _command("--module", str(path))
    assert done.returncode == 2, done.stdout + done.stderr
    line = one_error_line(done.stderr)
    assert "half_declared_loss" in line and "declares no derivative" in line
    assert "@half_declared_loss.deriv" in line
    with pytest.raises(ParameterError, match="declares no derivative"):
        load_module(str(path)).refuse_pending()


# ---------------------------------------------------------------------------------------------
# usage errors: one line, exit 2, no traceback
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "expected"), [
    pytest.param("no/such/file.py", "no such file", id="missing-file"),
    pytest.param("no_such_module_for_torchlean", "no module named", id="missing-module"),
    pytest.param("syntax", "SyntaxError", id="syntax-error"),
    pytest.param("importerror", "ModuleNotFoundError", id="import-error-inside"),
    pytest.param("badreduction", "`reduction`", id="malformed-declaration"),
    pytest.param("clash", "taken by a loss of the package", id="name-of-a-package-loss"),
    pytest.param("empty", "declares no loss", id="no-loss"),
])
def test_a_bad_module_is_a_usage_error(tmp_path: Path, source: str, expected: str) -> None:
    bodies = {
        "syntax": "def broken(:\n",
        "importerror": "import a_module_that_is_not_there_at_all\n",
        "badreduction": ('import torchlean\n@torchlean.define_loss("bad_red_loss", '
                         'reduction="median")\ndef f(c, p, t):\n    return p - t\n'),
        "clash": ('import torchlean\n@torchlean.define_loss("mse")\ndef f(c, p, t):\n'
                  '    return p - t\n@f.deriv\ndef _(c, p, t):\n    return 1\n'),
        "empty": "x = 1\n",
    }
    if source in bodies:
        source = str(_write(tmp_path, f"bad_{source}", bodies[source]))
    done = _command("--module", source, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert expected in one_error_line(done.stderr)


def test_an_unknown_loss_of_the_module_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "one_loss", SQUARED.format(name="square_only_one"))
    with pytest.raises(SystemExit) as exc:
        main(["certify", "--module", str(path), "--loss", "mse"])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    line = one_error_line(err)
    assert "declares no loss 'mse'" in line and "square_only_one" in line
