"""``torchlean eval``: values and derivatives from files the tests write, in every semantics,
against the Python API and a hand derivation; every bad input refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from cli_output import one_error_line, plain

import torchlean
from torchlean.cli import main
from torchlean.contexts import binary32

# Huber, delta = 3/4, at d = p - t = [1/2, 2, -3/2] (hand derivation): the quadratic part
# d**2 / (2 delta) = 1/6 at 1/2, the linear part |d| - delta / 2 = 13/8 and 9/8 at 2 and -3/2;
# their mean is 35/36. The derivative: d / delta / 3 = 2/9, then sign(d) / 3 = 1/3 and -1/3.
P, T = [0.5, 2.0, -1.0], [0.0, 0.0, 0.5]
VALUE = Fraction(35, 36)
DERIV = [Fraction(2, 9), Fraction(1, 3), Fraction(-1, 3)]
HUBER = ["huber", "--param", "delta=0.75"]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """The inputs as .npy and .csv files, and malformed ones."""
    out = {"p.npy": tmp_path / "p.npy", "t.npy": tmp_path / "t.npy",
           "p.csv": tmp_path / "p.csv", "t.csv": tmp_path / "t.csv"}
    np.save(out["p.npy"], np.array(P))
    np.save(out["t.npy"], np.array(T))
    out["p.csv"].write_text("".join(f"{v}\n" for v in P))
    out["t.csv"].write_text("".join(f"{v}\n" for v in T))
    out["object.npy"] = tmp_path / "object.npy"
    np.save(out["object.npy"], np.array([0.5, "x", None], dtype=object), allow_pickle=True)
    out["pickle.npy"] = tmp_path / "pickle.npy"
    np.save(out["pickle.npy"], {"predicted": P}, allow_pickle=True)  # a pickled dict
    out["text.npy"] = tmp_path / "text.npy"
    np.save(out["text.npy"], np.array(["0.5", "2", "-1"]))
    out["header.csv"] = tmp_path / "header.csv"
    out["header.csv"].write_text("predicted\n0.5\n2\n-1\n")
    out["ragged.csv"] = tmp_path / "ragged.csv"
    out["ragged.csv"].write_text("0.5,1\n2\n")
    out["wide.npy"] = tmp_path / "wide.npy"
    np.save(out["wide.npy"], np.zeros((3, 2)))
    out["negative.csv"] = tmp_path / "negative.csv"
    out["negative.csv"].write_text("1\n-1\n2\n")
    return out


def _args(files: dict[str, Path], p: str = "p.npy", t: str = "t.npy") -> list[str]:
    return ["--predicted", str(files[p]), "--target", str(files[t])]


def test_the_value_and_the_derivative_file_match_the_api_and_the_hand_derivation(
        files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "grad.npy"
    assert main(["eval", *HUBER, *_args(files), "--out", str(out)]) == 0
    text, err = capsys.readouterr()
    assert err == ""
    value, deriv = torchlean.value_and_deriv("huber", np.array(P), np.array(T), delta=0.75)
    assert text == f"{float(value)!r}\n"
    assert float(text) == pytest.approx(float(VALUE), rel=1e-15)
    grad = np.load(out, allow_pickle=False)
    np.testing.assert_array_equal(grad, deriv)
    np.testing.assert_allclose(grad, [float(x) for x in DERIV], rtol=1e-15)


def test_csv_files_give_what_npy_files_give_and_csv_out_reads_back(
        files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", *HUBER, *_args(files)]) == 0
    from_npy = capsys.readouterr().out
    out = tmp_path / "grad.csv"
    assert main(["eval", *HUBER, *_args(files, "p.csv", "t.csv"), "--out", str(out)]) == 0
    assert capsys.readouterr().out == from_npy
    _, deriv = torchlean.value_and_deriv("huber", np.array(P), np.array(T), delta=0.75)
    np.testing.assert_array_equal(np.loadtxt(out, delimiter=","), deriv)


def test_a_two_column_csv_is_a_matrix_for_a_slice_loss(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logits = np.array([[0.1, 0.2, 0.7], [2.0, -1.0, 0.5]])
    labels = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    p, t = tmp_path / "s.csv", tmp_path / "l.csv"
    p.write_text("0.1,0.2,0.7\n2.0,-1.0,0.5\n")
    t.write_text("0,0,1\n1,0,0\n")
    assert main(["eval", "softmax", "--predicted", str(p), "--target", str(t), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    value, deriv = torchlean.value_and_deriv("softmax", logits, labels)
    assert record["loss"] == "softmax" and record["context"] == "float64"
    assert record["shape"] == [2, 3]
    assert record["value"] == float(value)
    np.testing.assert_array_equal(record["derivative"], deriv)
    # softmax minus the label (hand derivation of the softmax cross-entropy's gradient)
    e = np.exp(logits)
    np.testing.assert_allclose(deriv, e / e.sum(-1, keepdims=True) - labels, rtol=1e-14)


def test_float32_is_the_binary32_semantics_bit_for_bit(
        files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "grad.npy"
    assert main(["eval", *HUBER, *_args(files), "--context", "float32", "--out",
                 str(out)]) == 0
    value, deriv = torchlean.value_and_deriv("huber", np.array(P), np.array(T), delta=0.75,
                                             ctx=binary32.CONTEXT)
    text = capsys.readouterr().out.strip()
    assert np.float32(text) == value and text == str(np.float32(value))
    grad = np.load(out, allow_pickle=False)
    assert grad.dtype == np.float32
    np.testing.assert_array_equal(grad, np.asarray(deriv))


def test_interval_prints_an_enclosure_of_the_exact_value(
        files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "grad.npy"
    assert main(["eval", *HUBER, *_args(files), "--context", "interval", "--out",
                 str(out)]) == 0
    lo, hi = json.loads(capsys.readouterr().out)  # "[lo, hi]"
    assert Fraction(lo) <= VALUE <= Fraction(hi) and hi - lo < 1e-15
    grad = np.load(out, allow_pickle=False)
    assert grad.shape == (3, 2)  # lower and upper bound on a new last axis
    for (g_lo, g_hi), exact in zip(grad, DERIV, strict=True):
        assert Fraction(g_lo) <= exact <= Fraction(g_hi)


def test_precise_prints_fifty_digits_and_exact_the_rational(
        files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", *HUBER, *_args(files), "--context", "precise"]) == 0
    assert capsys.readouterr().out.strip() == "0.97" + "2" * 48  # 35/36 to 50 digits
    assert main(["eval", *HUBER, *_args(files), "--context", "exact", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["value"] == "35/36"
    assert record["derivative"] == ["2/9", "1/3", "-1/3"]
    assert record["params"] == {"delta": 0.75}


def test_an_irrational_exact_value_prints_with_its_decimal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p, t = tmp_path / "p.csv", tmp_path / "t.csv"
    p.write_text("0,0\n")
    t.write_text("1,0\n")
    assert main(["eval", "softmax", "--predicted", str(p), "--target", str(t), "--context",
                 "exact"]) == 0
    # two equal logits: -log(1/2) = log(2) (hand derivation)
    text = capsys.readouterr().out.strip()
    assert text.startswith("log(2) = 0.693147180559945309417232121458176568075500134360")


def test_check_domain_false_is_a_parameter(files: dict[str, Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    args = ["eval", "poisson", *_args(files, "p.csv", "negative.csv")]
    assert main(args) == 2
    assert "check_domain=false" in one_error_line(capsys.readouterr().err, "eval")
    assert main([*args, "--param", "check_domain=false"]) == 0
    value = torchlean.value_and_deriv("poisson", np.array(P), np.array([1.0, -1.0, 2.0]),
                                      check_domain=False)[0]
    assert float(capsys.readouterr().out) == float(value)


@pytest.mark.parametrize(("case", "args", "message"), [
    pytest.param("unknown loss", ["nope", "P", "T"], "unknown loss 'nope'", id="unknown-loss"),
    pytest.param("missing file", ["huber", "missing.npy", "T"], "no such file",
                 id="missing-file"),
    pytest.param("object .npy", ["huber", "object.npy", "T"], "pickled", id="object-npy"),
    pytest.param("pickled .npy", ["huber", "pickle.npy", "T"], "pickled", id="pickled-npy"),
    pytest.param("strings .npy", ["huber", "text.npy", "T"], "real numbers", id="string-npy"),
    pytest.param("csv header", ["huber", "header.csv", "T"], "no header", id="csv-header"),
    pytest.param("ragged csv", ["huber", "ragged.csv", "T"], "ragged", id="csv-ragged"),
    pytest.param("shapes", ["huber", "wide.npy", "T"], "must match", id="shape-mismatch"),
    pytest.param("suffix", ["huber", "p.txt", "T"], "must end in .npy or .csv", id="suffix"),
    pytest.param("unknown parameter", ["huber", "P", "T", "--param", "beta=1"],
                 "`beta` is not a parameter of the huber loss", id="unknown-parameter"),
    pytest.param("parameter of none", ["mse", "P", "T", "--param", "delta=1"],
                 "it takes none", id="parameter-of-a-loss-without"),
    pytest.param("validator", ["huber", "P", "T", "--param", "delta=-1"], "`delta` must be",
                 id="validator"),
    pytest.param("validator inf", ["huber", "P", "T", "--param", "delta=inf"],
                 "`delta` must be", id="validator-inf"),
    pytest.param("twice", ["huber", "P", "T", "--param", "delta=1", "--param", "delta=2"],
                 "given twice", id="parameter-twice"),
    pytest.param("unknown context", ["huber", "P", "T", "--context", "float16"],
                 "unknown context 'float16'", id="unknown-context"),
    pytest.param("domain", ["poisson", "P", "negative.csv"], "must lie in", id="domain"),
])
def test_bad_input_is_one_line_and_exit_2(case: str, args: list[str], message: str,
                                          files: dict[str, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    name, p, t, *rest = args
    paths = {"P": files["p.npy"], "T": files["t.npy"]}
    where = [str(paths.get(x) or files.get(x) or tmp_path / x) for x in (p, t)]
    assert main(["eval", name, "--predicted", where[0], "--target", where[1], *rest]) == 2, case
    out, err = capsys.readouterr()
    assert out == ""
    assert message in one_error_line(err, "eval")


@pytest.mark.parametrize("args", [
    pytest.param(["--param", "delta"], id="param-without-value"),
    pytest.param(["--param", "delta=abc"], id="param-not-a-number"),
    pytest.param(["--out", "no/such/folder/g.npy"], id="out-missing-folder"),
])
def test_bad_arguments_exit_2_through_argparse(args: list[str], files: dict[str, Path],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["eval", "huber", *_args(files), *args])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    one_error_line(err, "eval")


def test_a_3d_derivative_is_refused_as_csv(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    p, t = tmp_path / "p.npy", tmp_path / "t.npy"
    np.save(p, np.zeros((2, 2, 2)))
    np.save(t, np.ones((2, 2, 2)))
    assert main(["eval", "mse", "--predicted", str(p), "--target", str(t), "--out",
                 str(tmp_path / "g.csv")]) == 2
    assert "write a .npy file" in one_error_line(capsys.readouterr().err, "eval")


def _command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "torchlean", "eval", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_command_writes_the_derivative_and_refuses_a_pickle(
        files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "grad.npy"
    done = _command(*HUBER, *_args(files, "p.csv", "t.npy"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    plain(done.stdout)
    value, deriv = torchlean.value_and_deriv("huber", np.array(P), np.array(T), delta=0.75)
    assert float(done.stdout) == float(value)
    np.testing.assert_array_equal(np.load(out, allow_pickle=False), deriv)
    bad = _command(*HUBER, *_args(files, "object.npy", "t.npy"))
    assert bad.returncode == 2 and bad.stdout == ""
    assert "pickled" in one_error_line(bad.stderr, "eval")
