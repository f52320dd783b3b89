"""What every verb of the command shares: the parser class, the one-line usage error, argument
types and ``--param k=v`` parsing checked against a loss's declaration."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["FAILED", "INTERRUPTED", "OK", "USAGE", "Parser", "UsageError", "checked_params",
           "declaration", "param_pair", "positive_int", "seed", "writable_file"]

#: exit statuses of every verb
OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130

#: ``--json -`` (or ``--json`` alone): the report goes to standard output
STDOUT = "-"


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block): ``torchlean VERB: error: ...``."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: error: {message}\n")


class UsageError(Exception):
    """Input the command refuses (an argument, a file, a parameter value); reported in one line
    on stderr, exit status 2."""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}")
    return value


def seed(text: str) -> int:
    # non-negative integers of any size: exactly what numpy's default_rng accepts
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer; got {text!r}")
    return value


def writable_file(text: str) -> Path | str:
    """A path whose file can be created or replaced now, checked before any work; ``-`` is
    standard output."""
    if text == STDOUT:
        return STDOUT
    path = Path(text)
    parent = path.parent
    if not text or path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder, not a file")
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists()
                                                     and not os.access(path, os.W_OK)):
        raise argparse.ArgumentTypeError(f"{text!r} is not writable")
    return path


def _number(text: str) -> int | float | bool:
    """A parameter value as the Python number it spells: an integer, a float (``1e-6``,
    ``inf``, ``nan``), or ``true``/``false`` (for ``check_domain``)."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(low)
    except ValueError:
        pass
    try:
        return float(low)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"the value must be a number (or true/false); got {text!r}") from None


def param_pair(text: str) -> tuple[str, int | float | bool]:
    """``k=v`` as ``(k, number)``."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (delta=0.5); got {text!r}")
    try:
        return key, _number(value)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{key}: {exc}") from None


def declaration(name: str) -> Any:
    """The registered loss ``name``; an unknown one is a usage error listing the names."""
    from torchlean.registry import LOSSES

    if name not in LOSSES:
        raise UsageError(f"unknown loss {name!r}; one of {', '.join(LOSSES)} "
                         f"(torchlean list shows them)")
    return LOSSES[name]


def checked_params(decl: Any, pairs: Sequence[tuple[str, Any]] | None) -> dict[str, Any]:
    """``--param`` pairs as keyword arguments of ``decl``: each name one of its parameters
    (or ``check_domain`` where it checks a domain), given once, and each value through the
    declaration's validator; anything else is a usage error naming it."""
    from torchlean.errors import ParameterError

    names = list(decl.parameters) + (["check_domain"] if decl.has_domain_check else [])
    params: dict[str, Any] = {}
    for key, value in pairs or ():
        if key not in names:
            takes = f"it takes {', '.join(names)}" if names else "it takes none"
            raise UsageError(f"argument --param: `{key}` is not a parameter of the {decl.name} "
                             f"loss; {takes}")
        if key in params:
            raise UsageError(f"argument --param: `{key}` given twice")
        params[key] = value
    if not isinstance(params.get("check_domain", True), bool):
        raise UsageError(f"argument --param: `check_domain` must be true or false; got "
                         f"{params['check_domain']!r}")
    try:
        decl.checked_params({k: v for k, v in params.items() if k != "check_domain"})
    except ParameterError as exc:
        raise UsageError(f"argument --param: {exc}") from None
    return params


def params_text(params: Mapping[str, Any]) -> str:
    """``delta=1.0, epsilon=1e-06`` (``none`` for no parameter)."""
    return ", ".join(f"{k}={_show(v)}" for k, v in params.items()) or "none"


def _show(v: Any) -> str:
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(v)
