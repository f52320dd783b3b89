"""``torchlean eval``: a loss's value on the numbers of two files, in one of five semantics, and
its derivative written to a file."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from torchlean.cli.common import (
    OK,
    UsageError,
    checked_params,
    declaration,
    param_pair,
    writable_file,
)
from torchlean.cli.data_files import read_array, write_array

__all__ = ["CONTEXTS", "add_parser", "command"]


@dataclass(frozen=True)
class Semantics:
    """A ``--context`` choice: the context module (None: float64 NumPy arrays), and how its
    numbers print and become float64 in the derivative file."""

    module: str | None
    text: Callable[[Any], str]
    plain: Callable[[Any], Any]
    help: str


def _float64_text(v: Any) -> str:
    return repr(float(v))


def _float32_text(v: Any) -> str:
    return str(np.float32(v))  # the shortest text that reads back as the same binary32


def _precise_text(v: Any) -> str:
    import mpmath

    return mpmath.nstr(v, 50)


def _interval_pair(v: Any) -> list[float]:
    from torchlean.contexts.interval import bounds

    return list(bounds(v))


def _interval_text(v: Any) -> str:
    lo, hi = _interval_pair(v)
    return f"[{lo!r}, {hi!r}]"


def _exact_float(v: Any) -> float:
    import sympy

    return float(sympy.N(v, 30))


def _elementwise(fn: Callable[[Any], Any], a: np.ndarray, dtype: Any = np.float64) -> np.ndarray:
    out = np.array([fn(x) for x in np.asarray(a, dtype=object).ravel()], dtype=dtype)
    return out.reshape(np.shape(a) + out.shape[1:])


#: the semantics of ``--context``, by name
CONTEXTS: dict[str, Semantics] = {
    "float64": Semantics(None, _float64_text, lambda a: np.asarray(a, dtype=np.float64),
                         "NumPy float64 arrays (the fused kernels where they apply)"),
    "float32": Semantics("binary32", _float32_text, lambda a: np.asarray(a, dtype=np.float32),
                         "IEEE binary32 (torchlean.contexts.binary32): the inputs rounded once "
                         "to binary32, then every operation one binary32 operation, the same "
                         "bits on every machine"),
    "interval": Semantics("interval", _interval_text,
                          lambda a: _elementwise(_interval_pair, a),
                          "arb balls (torchlean.contexts.interval): prints the enclosure "
                          "[lo, hi] rounded outward; --out gets lo and hi on a new last axis"),
    "precise": Semantics("precise", _precise_text, lambda a: _elementwise(float, a),
                         "mpmath at 50 digits (torchlean.contexts.precise): prints 50 "
                         "significant digits; --out gets the nearest float64"),
    "exact": Semantics("exact", str, lambda a: _elementwise(_exact_float, a),
                       "sympy (torchlean.contexts.exact): the numbers of the files read as "
                       "their shortest decimals; prints the exact value (a rational, or an "
                       "expression and its 50-digit decimal); --out gets the nearest float64"),
}

EPILOG = """\
examples:
  torchlean eval huber --predicted p.npy --target t.npy
  torchlean eval huber --predicted p.csv --target t.csv --param delta=0.5 --out grad.npy
  torchlean eval cross_entropy_logits --predicted logits.npy --target labels.npy --json
  torchlean eval mse --predicted p.csv --target t.csv --context exact

files: .npy (read with allow_pickle=False: numeric arrays only) or .csv (numbers only, no
header, rows of one length; one column is a 1-D array, several a 2-D one). The value is
printed on stdout; --out writes the derivative w.r.t. the predicted values (.npy or .csv by
its suffix, the shape of --predicted).

exit status:
  0    the value was printed (and the derivative written)
  2    bad input: an unknown loss, context or parameter, a parameter value its validator
       refuses, a missing or unreadable file, a pickled or object .npy, a CSV with a header or
       ragged rows, shapes that do not match, a target outside the loss's domain
  130  interrupted (Ctrl-C)
"""


def _contexts_text() -> str:
    import textwrap

    lines = ["\ncontexts (--context):"]
    for name, semantics in CONTEXTS.items():
        lines += textwrap.wrap(f"{name:<10}{semantics.help}", 92, initial_indent="  ",
                               subsequent_indent=" " * 12)
    return "\n".join(lines) + "\n"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("eval", help="a loss's value (and derivative) on your own .npy/.csv data",
                       description="Evaluate a loss on the numbers of two files: print its "
                                   "value; --out writes its derivative with respect to the "
                                   "predicted values.",
                       epilog=EPILOG + _contexts_text(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", metavar="NAME", help="the loss (torchlean list shows them)")
    p.add_argument("--predicted", required=True, metavar="FILE",
                   help="the predicted values (.npy or .csv)")
    p.add_argument("--target", required=True, metavar="FILE",
                   help="the targets, in the shape of --predicted (.npy or .csv)")
    p.add_argument("--param", type=param_pair, action="append", default=None, metavar="K=V",
                   help="a parameter of the loss (repeat for several), a number: delta=0.5, "
                        "epsilon=1e-7; check_domain=false where the loss checks its target")
    p.add_argument("--context", default="float64", metavar="NAME",
                   help=f"the semantics, one of {', '.join(CONTEXTS)} (default: float64; "
                        f"see contexts below)")
    p.add_argument("--out", type=writable_file, default=None, metavar="FILE",
                   help="write the derivative here (.npy or .csv; its folder must exist)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object on stdout (loss, context, parameters, shape, "
                        "value, derivative) instead of the value alone")
    return p


def command(args: argparse.Namespace) -> int:
    """Read, evaluate, print, write; every refusal is a UsageError (exit 2)."""
    from torchlean.errors import TorchleanError
    from torchlean.registry import value_and_deriv

    decl = declaration(args.name)
    if args.context not in CONTEXTS:
        raise UsageError(f"argument --context: unknown context {args.context!r}; one of "
                         f"{', '.join(CONTEXTS)}")
    semantics = CONTEXTS[args.context]
    params = checked_params(decl, args.param)
    if args.out is not None and str(args.out) == "-":
        raise UsageError("argument --out: a file is needed (.npy or .csv); the derivative is "
                         "printed with --json")
    predicted = read_array(args.predicted, "--predicted")
    target = read_array(args.target, "--target")
    if predicted.shape != target.shape:
        raise UsageError(f"--target has shape {target.shape}, --predicted {predicted.shape}: "
                         f"they must match")
    ctx = _context(semantics)
    try:
        value, deriv = value_and_deriv(decl.name, predicted, target, **params,
                                       **({} if ctx is None else {"ctx": ctx}))
    except TorchleanError as exc:  # a domain or shape the loss refuses
        from torchlean.errors import DomainError

        hint = " (--param check_domain=false skips it)" if isinstance(exc, DomainError) else ""
        raise UsageError(f"{exc}{hint}") from None
    plain = semantics.plain(deriv)
    if args.out is not None:
        try:
            write_array(args.out, plain)
        except OSError as exc:
            raise UsageError(f"cannot write the derivative to {str(args.out)!r}: "
                             f"{exc.strerror or exc}") from None
    if args.json:
        record = {"loss": decl.name, "context": args.context,
                  "params": {**dict(decl.params), **params}, "shape": list(predicted.shape),
                  "value": _json_value(args.context, semantics, value),
                  "derivative": _json_deriv(args.context, semantics, deriv, plain)}
        print(json.dumps(_finite(record)))
    else:
        print(_value_text(args.context, semantics, value))
    return OK


def _context(semantics: Semantics) -> Any:
    if semantics.module is None:
        return None
    import importlib

    try:
        return importlib.import_module(f"torchlean.contexts.{semantics.module}").CONTEXT
    except ImportError as exc:  # pragma: no cover - an extra that is not installed
        raise UsageError(f"argument --context: needs {exc.name} (pip install "
                         f"'torchlean[certify]')") from None


def _value_text(context: str, semantics: Semantics, value: Any) -> str:
    text = semantics.text(value)
    if context == "exact" and not getattr(value, "is_Rational", False):
        import sympy

        text += f" = {sympy.N(value, 50)}"
    return text


def _json_value(context: str, semantics: Semantics, value: Any) -> Any:
    if context == "interval":
        return _interval_pair(value)
    if context in ("float64", "float32"):
        return float(value)  # a float32 is exactly a float64; JSON writes its float64 text
    return semantics.text(value)


def _json_deriv(context: str, semantics: Semantics, deriv: Any, plain: np.ndarray) -> Any:
    if context in ("float64", "float32", "interval"):
        return np.asarray(plain, dtype=np.float64).tolist()
    return _elementwise(semantics.text, deriv, object).tolist()


def _finite(x: Any) -> Any:
    """JSON has no NaN or infinity: those become the strings "nan", "inf", "-inf"."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if x != x else ("inf" if x > 0 else "-inf")
    return x
