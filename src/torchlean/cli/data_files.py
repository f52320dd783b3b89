"""Arrays from and to files: ``.npy`` (read with ``allow_pickle=False``) and ``.csv`` (numbers
only: no header, no ragged rows; one column is a 1-D array, several a 2-D one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from torchlean.cli.common import UsageError

__all__ = ["SUFFIXES", "read_array", "write_array"]

SUFFIXES = (".npy", ".csv")


def _suffix(path: Path, option: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"argument {option}: {str(path)!r} must end in .npy or .csv; got "
                         f"{suffix or 'no suffix'!r}")
    return suffix


def read_array(text: str, option: str) -> np.ndarray:
    """The numbers of the file ``text`` as a float64 array (``option`` names the argument in
    errors); every problem is a :class:`UsageError`."""
    path = Path(text)
    suffix = _suffix(path, option)
    if not path.exists():
        raise UsageError(f"argument {option}: no such file {text!r}")
    if not path.is_file():
        raise UsageError(f"argument {option}: {text!r} is not a file")
    try:
        return _read_npy(path, option) if suffix == ".npy" else _read_csv(path, option)
    except OSError as exc:
        raise UsageError(f"argument {option}: cannot read {text!r}: "
                         f"{exc.strerror or exc}") from None


def _read_npy(path: Path, option: str) -> np.ndarray:
    try:
        a = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():  # an object array or a pickled Python object
            raise UsageError(f"argument {option}: {str(path)!r} holds pickled objects; only "
                             f"numeric arrays are read (allow_pickle=False)") from None
        raise UsageError(f"argument {option}: {str(path)!r} is not a valid .npy file: "
                         f"{exc}") from None
    except EOFError:
        raise UsageError(f"argument {option}: {str(path)!r} is empty or truncated") from None
    if not isinstance(a, np.ndarray):  # pragma: no cover - np.load of .npz returns NpzFile
        raise UsageError(f"argument {option}: {str(path)!r} is not a single array")
    if a.dtype.kind not in "biuf":
        raise UsageError(f"argument {option}: {str(path)!r} must hold real numbers; got "
                         f"dtype {a.dtype}")
    return a.astype(np.float64)


def _read_csv(path: Path, option: str) -> np.ndarray:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"argument {option}: {str(path)!r} is not a text (CSV) file") from None
    rows: list[list[float]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue  # blank lines (a trailing newline, spacing) carry no numbers
        fields = line.split(",")
        row = []
        for field in fields:
            try:
                row.append(float(field))
            except ValueError:
                what = "a header" if not rows else "a non-number"
                raise UsageError(
                    f"argument {option}: {str(path)!r} line {number}: {field.strip()!r} is not "
                    f"a number ({what}? the CSV holds numbers only, no header)") from None
        if rows and len(row) != len(rows[0]):
            raise UsageError(f"argument {option}: {str(path)!r} line {number} has {len(row)} "
                             f"value(s), the first row {len(rows[0])} (ragged rows)")
        rows.append(row)
    if not rows:
        raise UsageError(f"argument {option}: {str(path)!r} holds no numbers")
    a = np.array(rows, dtype=np.float64)
    return a[:, 0] if a.shape[1] == 1 else a


def write_array(path: Path, values: np.ndarray) -> None:
    """``values`` to ``path`` by its suffix: ``.npy`` as is, ``.csv`` one row per line (a 1-D
    array one value per line) with each number's shortest round-trip form."""
    suffix = _suffix(path, "--out")
    if suffix == ".npy":
        np.save(path, values, allow_pickle=False)
        return
    if values.ndim > 2:
        raise UsageError(f"argument --out: a CSV holds at most 2 axes; the derivative has shape "
                         f"{values.shape}: write a .npy file")
    rows = values.reshape(-1, 1) if values.ndim <= 1 else values
    path.write_text("".join(",".join(_number(v) for v in row) + "\n" for row in rows))


def _number(v: np.generic) -> str:
    # str of a NumPy scalar is the shortest text that reads back as the same number of its
    # own width (float32 included)
    return str(v)
