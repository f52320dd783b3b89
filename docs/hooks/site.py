"""MkDocs hooks of the documentation site (``hooks:`` in mkdocs.yml).

- The home page is README.md, its links rewritten for the site (``docs/x.md`` -> ``x.md``), so
  the repository's front page and the site's say the same once.
- The gallery (an index and one page per loss, with their figures) is written from the loss
  declarations at every build by :mod:`torchlean.gallery.pages`; nothing of it is stored in the
  repository.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the helpers below run without mkdocs (the tests call them)
    from mkdocs.structure.files import Files

ROOT = Path(__file__).resolve().parents[2]

# README links into docs/ (the site's root)
_DOCS_LINK = re.compile(r"\]\(docs/")
# a link from a page to a file of the repository outside docs/ (a source, an example)
_REPO_LINK = re.compile(
    r"\[(?P<text>[^\]]+)\]\((?:\.\./)?(?P<path>(?:src|examples|benchmarks)/[^)#]+)\)")

_figures: tempfile.TemporaryDirectory[str] | None = None


def home_page(readme: str) -> str:
    """README.md as the site's home page."""
    return _DOCS_LINK.sub("](", readme)


def repository_links(markdown: str) -> str:
    """Links to the repository's files outside docs/ (they work on GitHub) as their paths: the
    site does not hold those files."""

    def plain(m: re.Match[str]) -> str:
        text, path = m["text"], m["path"]
        return text if path in text else f"{text} (`{path}`)"

    return _REPO_LINK.sub(plain, markdown)


_CODE_SPAN = re.compile(r"`[^`\n]*`")


def table_code(markdown: str) -> str:
    """In table rows, ``\\|`` inside a code span as ``|``: GitHub needs the escape there, while
    the site's tables read a pipe inside a code span as text and would show the backslash."""
    return "\n".join(
        _CODE_SPAN.sub(lambda m: m[0].replace("\\|", "|"), line) if line.startswith("|")
        else line for line in markdown.split("\n"))


CLI_MARKER = "<!-- generated at build: cli-help -->"


def _help(argv: list[str]) -> str:
    """What ``torchlean ARGV --help`` prints, 100 columns wide."""
    from torchlean.cli import main

    out = io.StringIO()
    width = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main([*argv, "--help"])
    finally:
        if width is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = width
    return out.getvalue().rstrip()


def cli_help() -> str:
    """The help of the command and of each verb its help lists, as Markdown."""
    top = _help([])
    listed = top.split("\nverbs:", 1)[1].split("\n\n", 1)[0]
    verbs = re.findall(r"^    ([a-z][\w-]*)  ", listed, flags=re.MULTILINE)
    if not verbs:
        raise RuntimeError("`torchlean --help` lists no verbs under 'verbs:'")
    parts = ["### `torchlean`", "", "```text", top, "```", ""]
    for verb in verbs:
        parts += [f"### `torchlean {verb}`", "", "```text", _help([verb]), "```", ""]
    return "\n".join(parts)


# pages whose tables need the table of contents' room (their rows link to the sections anyway)
WIDE_PAGES = frozenset({"parity.md"})


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    if page.file.src_uri in WIDE_PAGES:
        page.meta["hide"] = [*page.meta.get("hide", ()), "toc"]
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_help())
    return table_code(repository_links(markdown))


def _with_gallery(nav: Any, entries: list[str]) -> Any:
    """``nav`` with the gallery's index entry turned into a section of every loss's page."""
    if isinstance(nav, list):
        return [_with_gallery(item, entries) for item in nav]
    if isinstance(nav, dict):
        return {k: (entries if v == entries[0] else _with_gallery(v, entries))
                for k, v in nav.items()}
    return nav


def on_config(config: Any) -> Any:
    from torchlean.gallery import pages

    entries = list(pages.site_pages())
    config["nav"] = _with_gallery(config["nav"], entries)
    return config


def on_files(files: Files, config: Any) -> Files:
    global _figures
    from mkdocs.structure.files import File

    from torchlean.gallery import pages

    files.append(File.generated(config, "index.md",
                                content=home_page((ROOT / "README.md").read_text("utf-8"))))
    for uri, text in pages.site_pages().items():
        files.append(File.generated(config, uri, content=text))
    _figures = tempfile.TemporaryDirectory(prefix="torchlean-gallery-")
    for uri, path in pages.draw_figures(Path(_figures.name)).items():
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def on_post_build(config: Any) -> None:
    global _figures
    if _figures is not None:
        _figures.cleanup()
        _figures = None
