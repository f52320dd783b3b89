"""A griffe extension (mkdocs.yml: the python handler's ``extensions:``) that reads the package's
reStructuredText habits in its docstrings as Markdown before mkdocstrings renders them.

- ``:role:`~a.b.c``` -> ``c`` and ``:role:`a.b.c``` -> ``a.b.c`` as code, linked to the object's
  entry when the site documents it: the link is an *optional* cross-reference of mkdocs-autorefs,
  which falls back to plain code when no page holds the target, so ``--strict`` stays green
  whatever the API pages choose to show.
- A paragraph ending in ``::`` ends in ``:`` (a lone ``::`` goes), and the indented block after
  it becomes a fenced code block (Python when it parses as Python).

The docstrings in ``src/`` keep their reStructuredText; only the site's copy is rewritten.
"""

from __future__ import annotations

import ast
import html
import re
import textwrap
from collections.abc import Callable
from typing import Any

import griffe

# :func:`target`, :py:class:`~a.b.C`, :meth:`text <a.b.C.m>`
_ROLE = re.compile(
    r":(?:py:)?(?:func|class|meth|mod|data|attr|exc|obj|const|type):"
    r"`(?:(?P<text>[^`<]+?)\s*<(?P<labelled>[^`>]+)>|(?P<tilde>~)?(?P<target>[^`]+))`")

# an inline literal (``x``), which may show a role as text
_LITERAL = re.compile(r"(``.+?``)")

Resolver = Callable[[str], "str | None"]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _role(match: re.Match[str], resolve: Resolver | None) -> str:
    if match["labelled"]:
        shown, target = match["text"], match["labelled"].lstrip("~")
    else:
        target = match["target"]
        # Sphinx shows ``~a.b.c`` as ``c``, and a leading dot only widens the search
        shown = target.rsplit(".", 1)[-1] if match["tilde"] else target.lstrip(".")
    shown = shown.removesuffix("()")
    code = f"<code>{html.escape(shown)}</code>"
    identifier = resolve(target) if resolve is not None else None
    if identifier is None:
        return f"`{shown}`"
    return f'<autoref identifier="{html.escape(identifier)}" optional>{code}</autoref>'


def _language(code: str) -> str:
    try:
        ast.parse(code)
    except SyntaxError:
        return "text"
    return "python"


def rewrite(text: str, resolve: Resolver | None = None) -> str:
    """``text`` (a docstring) with its roles as code spans or cross-references and its ``::``
    literal blocks fenced. ``resolve`` maps a role's target to the identifier to link to, or None
    for plain code (no resolver: always plain code)."""
    lines = text.split("\n")
    out: list[str] = []
    fence: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        stripped = line.strip()
        if fence is not None:  # inside a fenced block already in Markdown: leave it alone
            out.append(line)
            if stripped.startswith(fence):
                fence = None
            continue
        if stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
            out.append(line)
            continue
        line = "".join(part if part.startswith("``") else
                       _ROLE.sub(lambda m: _role(m, resolve), part)
                       for part in _LITERAL.split(line))
        if not stripped.endswith("::"):
            out.append(line)
            continue
        base = _indent(line)
        head = line.rstrip()[:-2].rstrip()
        if head.strip():
            # "text::" reads "text:"; "text ::" reads "text"
            out.append(head + ":" if not line.rstrip()[:-2].endswith(" ") else head)
        # the literal block: the indented lines after the paragraph (blank lines inside kept)
        j = i
        while j < len(lines) and not lines[j].strip():
            j += 1
        block: list[str] = []
        while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > base):
            block.append(lines[j])
            j += 1
        while block and not block[-1].strip():
            block.pop()
        if not block:
            continue
        code = textwrap.dedent("\n".join(block))
        pad = " " * base
        out += ["", f"{pad}```{_language(code)}",
                *(pad + c if c else "" for c in code.split("\n")), f"{pad}```", ""]
        i = j
        while i < len(lines) and not lines[i].strip():
            i += 1
    return "\n".join(out)


class SphinxRoles(griffe.Extension):
    """Rewrites every loaded object's docstring with :func:`rewrite`."""

    def _resolver(self, obj: griffe.Object, loader: griffe.GriffeLoader) -> Resolver:
        def resolve(target: str) -> str | None:
            name = target.lstrip("~").lstrip(".").removesuffix("()")
            path = None
            try:
                path = loader.modules_collection.get_member(name).path if "." in name else None
            except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                path = None
            if path is None:
                try:
                    path = obj.resolve(name.split(".", 1)[0])
                    if "." in name:
                        path = f"{path}.{name.split('.', 1)[1]}"
                except (griffe.NameResolutionError, griffe.AliasResolutionError,
                        griffe.CyclicAliasError):
                    return name if "." in name else None
            try:  # a re-export (torchlean.define_loss) links to where it is defined
                member = loader.modules_collection.get_member(path)
                return member.final_target.path if member.is_alias else member.path
            except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                return path

        return resolve

    def _rewrite(self, obj: Any, loader: griffe.GriffeLoader) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value, self._resolver(obj, loader))

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader,
                  **kwargs: Any) -> None:
        self._rewrite(obj, loader)

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader,
                   **kwargs: Any) -> None:
        # the package module itself gets no on_object
        self._rewrite(pkg, loader)
