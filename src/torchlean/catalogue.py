"""The docs' tables of losses, generated from the declarations.

A markdown file holds a generated fragment between two marker comments::

    <!-- generated: losses -->
    ...
    <!-- end generated -->

:data:`FRAGMENTS` says what each name renders (``losses``: the table of docs/semantics.md;
``loss-names``: the README's list; ``criteria``: the PyTorch criteria of
docs/ecosystem.md; ``parity``: the PyTorch and optax equivalents of docs/parity.md). Only the
package's own losses (origin ``"torchlean"``) are listed: the package's docs describe the
package, whatever a user has declared in the same process.
``python -m torchlean.catalogue --write`` rewrites the fragments of README.md and docs/*.md;
without ``--write`` it lists the stale files and exits 1 if there are any (the test
suite does the same check).
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib.util
import re
import sys
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from torchlean.errors import ParameterError
from torchlean.registry import package_losses
from torchlean.spec.core.declaration import LossDeclaration

__all__ = [
    "COMMAND",
    "FRAGMENTS",
    "criterion_table",
    "documents",
    "loss_names",
    "loss_table",
    "main",
    "optax_functions",
    "package_losses",
    "parity_table",
    "render",
    "stale",
]

#: the command that regenerates every fragment (run from the repository's root)
COMMAND = "python -m torchlean.catalogue --write"

_START = re.compile(r"<!-- generated: (?P<name>[\w-]+) -->\n")
_END = "<!-- end generated -->"
#: the docs' line length (prose; table rows are one line each)
_WIDTH = 100


def _code(text: str) -> str:
    """``text`` as a code span in a table cell (a ``|`` would end the cell)."""
    return f"`{text}`".replace("|", "\\|") if text else "none"


def _cell(text: str) -> str:
    return text.replace("|", "\\|") if text else "none"


def _params(decl: LossDeclaration) -> str:
    if not decl.params:
        return "none"
    return ", ".join(_code(f"{k}={v!r}") for k, v in decl.params.items())


def loss_table(decls: Iterable[LossDeclaration]) -> str:
    """One row per loss: its kind and reduction, value, derivative w.r.t. ``predicted`` and
    parameters with their defaults, as the declaration states them. The rest of a declaration
    (kinks, second derivative, domain, equivalents) is on the loss's gallery page and the PyTorch
    expressions in the ``parity`` table: each is stated once."""
    lines = [
        "| loss | kind, reduction | value | derivative w.r.t. `predicted` | parameters |",
        "|---|---|---|---|---|",
    ]
    for d in decls:
        lines.append(
            f"| `{d.name}` | {d.kind}, {d.reduction} | {_code(d.formula)} | "
            f"{_code(d.derivative_text)} | {_params(d)} |"
        )
    return "\n".join(lines) + "\n"


def loss_names(decls: Iterable[LossDeclaration]) -> str:
    """The names, as one sentence linking to the table."""
    names = ", ".join(f"`{d.name}`" for d in decls)
    text = (f"The losses: {names} (formulas and derivatives in "
            f"[docs/semantics.md](docs/semantics.md#the-losses)).")
    return textwrap.fill(text, width=_WIDTH, break_long_words=False,
                         break_on_hyphens=False) + "\n"


def criterion_table(decls: Iterable[LossDeclaration]) -> str:
    """One row per loss: its PyTorch criterion class with the constructor's parameters and
    defaults (see torchlean.interop.torch), the loss name and its domain."""
    from torchlean.interop.criterion_names import criterion_class_name

    lines = ["| criterion | loss name | parameters | domain |", "|---|---|---|---|"]
    for d in decls:
        args = [f"{k}={v!r}" for k, v in d.params.items()]
        args += ["check_domain=True"] if d.has_domain_check else []
        params = "; ".join(f"`{k}`: {p.doc}" for k, p in d.parameters.items())
        lines.append(f"| `{criterion_class_name(d)}({', '.join(args)})` | `{d.name}` | "
                     f"{_cell(params)} | {_cell(d.domain.text)} |")
    return "\n".join(lines) + "\n"


@functools.cache
def optax_functions() -> Mapping[str, tuple[str, ...]]:
    """Loss name -> the functions of :mod:`torchlean.interop.optax` that evaluate it.

    Read from that module's source (each function names its declaration with ``@_declared``),
    so that writing the docs needs neither JAX nor optax.
    """
    spec = importlib.util.find_spec("torchlean.interop")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover
        return {}
    source = Path(next(iter(spec.submodule_search_locations))) / "optax.py"
    out: dict[str, list[str]] = {}
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
            continue
        for dec in node.decorator_list:
            if (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Name)
                    and dec.func.id == "_declared" and dec.args
                    and isinstance(dec.args[0], ast.Constant)):
                out.setdefault(str(dec.args[0].value), []).append(node.name)
    return MappingProxyType({k: tuple(v) for k, v in out.items()})


def _differs(decl: LossDeclaration) -> str:
    """The branch regions where the PyTorch reference is declared to differ."""
    if decl.torch_region is None:
        return "none"
    zones = [z.name for z in decl.region_zones() if not decl.torch_region(z.name)]
    return ", ".join(_code(z) for z in zones) or "none"


def parity_table(decls: Iterable[LossDeclaration]) -> str:
    """One row per loss with a PyTorch reference: the PyTorch expression with the same value,
    the optax-compatible functions and the branch regions where PyTorch's value or gradient is
    declared to differ; each row links to the loss's notes below it. The criterion classes are
    in the ``criteria`` table, not repeated here (four columns fit the page)."""
    lines = ["| loss | PyTorch expression with the same value | optax | PyTorch differs in |",
             "|---|---|---|---|"]
    for d in decls:
        if d.torch_reference is None:
            continue
        optax = ", ".join(f"`{f}`" for f in optax_functions().get(d.name, ())) or "none"
        lines.append(f"| [`{d.name}`](#{d.name}) | {_code(d.torch_text)} | {optax} | "
                     f"{_differs(d)} |")
    return "\n".join(lines) + "\n"


#: what each fragment name renders
FRAGMENTS: Mapping[str, Callable[[], str]] = MappingProxyType({
    "losses": lambda: loss_table(package_losses()),
    "loss-names": lambda: loss_names(package_losses()),
    "criteria": lambda: criterion_table(package_losses()),
    "parity": lambda: parity_table(package_losses()),
})


def render(text: str, *, source: str = "the text") -> str:
    """``text`` with every generated fragment rendered again."""
    out: list[str] = []
    pos = 0
    for start in _START.finditer(text):
        if start.start() < pos:
            continue
        name = start["name"]
        if name not in FRAGMENTS:
            raise ParameterError(
                f"{source}: unknown generated fragment {name!r}; expected one of "
                f"{', '.join(FRAGMENTS)}"
            )
        end = text.find(_END, start.end())
        if end < 0:
            raise ParameterError(f"{source}: the fragment {name!r} has no {_END!r} after it")
        out += [text[pos:start.end()], FRAGMENTS[name]()]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def documents(root: Path) -> list[Path]:
    """The markdown files that may hold fragments: README.md and docs/*.md under ``root``."""
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))]
            if p.is_file()]


def stale(paths: Iterable[Path], *, write: bool = False) -> list[Path]:
    """The files whose fragments differ from what the declarations render (rewritten when
    ``write``)."""
    out = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        new = render(text, source=str(path))
        if new != text:
            out.append(path)
            if write:
                path.write_text(new, encoding="utf-8")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m torchlean.catalogue [--write] [--root DIR]``: 0 when every fragment is up to
    date (or was rewritten), 1 when some are stale."""
    parser = argparse.ArgumentParser(prog="python -m torchlean.catalogue",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the stale fragments")
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="the repository's root (default: the current folder)")
    args = parser.parse_args(argv)
    found = stale(documents(args.root), write=args.write)
    for path in found:
        print(f"{'rewrote' if args.write else 'stale'}: {path}")
    if found and not args.write:
        print(f"regenerate with: {COMMAND}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
