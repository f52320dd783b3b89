"""The documentation site: the gallery's pages are written from the declarations, the build
hook's rewrites, and (slow tier) ``mkdocs build --strict`` of the whole site."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import torchlean
from torchlean.catalogue import optax_functions
from torchlean.gallery import pages
from torchlean.registry import package_losses

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"torchlean_docs_{name}",
                                                  ROOT / "docs" / "hooks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _hook() -> ModuleType:
    return _load("site")


def test_docstring_roles_read_as_code() -> None:
    rewrite = _load("sphinx_docstrings").rewrite
    assert rewrite("raises :class:`~torchlean.errors.DomainError` and :func:`define_loss`") == (
        "raises `DomainError` and `define_loss`")
    assert rewrite(":mod:`torchlean.interop.torch`, :meth:`.value`, :py:func:`grad_hess()`") == (
        "`torchlean.interop.torch`, `value`, `grad_hess`")
    assert rewrite(":func:`the losses <torchlean.LOSSES>` ``:func:`x```") == (
        "`the losses` ``:func:`x```")


def test_docstring_roles_link_where_the_resolver_finds_the_target() -> None:
    rewrite = _load("sphinx_docstrings").rewrite
    paths = {"define_loss": "torchlean.spec.core.declaration.define_loss"}
    assert rewrite("see :func:`define_loss` or :func:`other`", paths.get) == (
        'see <autoref identifier="torchlean.spec.core.declaration.define_loss" optional>'
        "<code>define_loss</code></autoref> or `other`")


def test_a_literal_block_after_a_double_colon_is_fenced() -> None:
    rewrite = _load("sphinx_docstrings").rewrite
    doc = "Declared with this::\n\n    x = f(1)\n\n    y = x\n\nThen text.\n"
    assert rewrite(doc) == (
        "Declared with this:\n\n```python\nx = f(1)\n\ny = x\n```\n\nThen text.\n")
    # a lone "::" goes, "text ::" loses it, a block that is not Python is text, and an
    # indented section keeps its indentation
    assert rewrite("Args:\n    a: markers ::\n\n        <!-- a -->\n    b: c") == (
        "Args:\n    a: markers\n\n    ```text\n    <!-- a -->\n    ```\n\n    b: c")
    assert rewrite("A.\n\n::\n\n    1 + 1\n") == "A.\n\n\n```python\n1 + 1\n```\n"
    # fenced Markdown is left alone
    fenced = "```python\nx = 1  # see :func:`f`::\n```"
    assert rewrite(fenced) == fenced


def test_the_gallery_has_an_index_and_a_page_per_package_loss() -> None:
    site = pages.site_pages()
    names = [d.name for d in package_losses()]
    assert list(site) == ["gallery/index.md", *(f"gallery/{n}.md" for n in names)]
    for name in names:
        assert f"]({name}.md)" in site["gallery/index.md"]
        assert f"({name}.png)" in site["gallery/index.md"]


@pytest.mark.parametrize("decl", package_losses(), ids=lambda d: d.name)
def test_a_loss_page_states_its_declared_facts(decl: torchlean.LossDeclaration) -> None:
    page = pages.loss_page(decl)
    assert page.startswith(f"# `{decl.name}`\n")
    assert f"]({decl.name}.png)" in page
    for text in (decl.formula, decl.derivative_text, decl.torch_text):
        assert f"`{text}`" in page
    assert decl.kink_text.replace("|", "\\|") in page
    if decl.has_second:
        assert f"`{decl.second_text}`" in page
    for param in decl.parameters.values():
        doc = param.doc.replace("|", "\\|")
        assert f"| `{param.name}` | `{param.default!r}` | {doc} |" in page
    for seam in decl.seams:
        assert f"`{seam.label}`" in page
    for fn in optax_functions().get(decl.name, ()):
        assert f"`torchlean.interop.optax.{fn}`" in page


def test_a_new_declaration_gets_its_page_with_no_other_step() -> None:
    @torchlean.define_loss("site_probe_loss", params={"scale": 2.0})
    def probe(c, p, t, *, scale):
        return scale * (p - t) * (p - t)

    @probe.deriv
    def _(c, p, t, *, scale):
        return 2 * scale * (p - t)

    try:
        site = pages.site_pages([torchlean.LOSSES["site_probe_loss"]])
        assert "gallery/site_probe_loss.md" in site
        assert "| `scale` | `2.0` |" in site["gallery/site_probe_loss.md"]
    finally:
        from torchlean.spec.core import declaration

        declaration.unregister("site_probe_loss")


def test_the_optax_functions_are_read_from_the_module() -> None:
    found = optax_functions()
    assert found["huber"] == ("huber_loss",)
    assert "softmax_cross_entropy_with_integer_labels" in found["softmax"]
    assert set(found) <= set(torchlean.LOSSES)


def test_parity_has_notes_for_every_package_loss() -> None:
    text = (ROOT / "docs" / "parity.md").read_text(encoding="utf-8")
    for decl in package_losses():
        if decl.torch_reference is not None:
            assert f"\n### `{decl.name}`\n" in text, f"docs/parity.md: no notes on {decl.name}"


def test_the_home_page_is_the_readme_with_site_links() -> None:
    hook = _hook()
    home = hook.home_page("[Semantics](docs/semantics.md#x) and ![f](docs/figures/a.png)\n")
    assert home == "[Semantics](semantics.md#x) and ![f](figures/a.png)\n"
    assert hook.repository_links("[`examples/a.py`](../examples/a.py) and "
                                 "[the losses](src/torchlean/x.py)") == (
        "`examples/a.py` and the losses (`src/torchlean/x.py`)")
    assert hook.table_code("| `a \\| b` | c \\| d |\n`e \\| f`") == (
        "| `a | b` | c \\| d |\n`e \\| f`")


def test_the_readme_picture_is_committed() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/figures/huber.png)" in readme
    assert (ROOT / "docs" / "figures" / "huber.png").stat().st_size > 10_000


def test_the_cli_page_gets_every_verbs_help() -> None:
    text = _hook().cli_help()
    for verb in ("list", "eval", "plot", "certify"):
        assert f"### `torchlean {verb}`" in text
        assert f"usage: torchlean {verb}" in text
    assert "exit status:" in text
    assert _hook().CLI_MARKER in (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


def test_every_page_of_the_nav_exists() -> None:
    yaml = pytest.importorskip("yaml")  # the docs extra
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    generated = {"index.md", *pages.site_pages()}

    def entries(nav: object) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        if isinstance(nav, list):
            return [e for item in nav for e in entries(item)]
        if isinstance(nav, dict):
            return [e for v in nav.values() for e in entries(v)]
        return []

    listed = entries(config["nav"])
    assert "gallery/index.md" in listed
    for entry in listed:
        assert entry in generated or (ROOT / "docs" / entry).is_file(), entry
    # every hand-written page is in the nav
    for page in sorted((ROOT / "docs").rglob("*.md")):
        assert str(page.relative_to(ROOT / "docs")) in listed, page


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    assert mkdocs is not None, "the docs extra is not installed"
    done = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    site = tmp_path / "site"
    for decl in package_losses():
        assert (site / "gallery" / decl.name / "index.html").is_file()
        assert (site / "gallery" / f"{decl.name}.png").stat().st_size > 10_000
    assert "torchlean certify" in (site / "cli" / "index.html").read_text(encoding="utf-8")
    assert (site / "api" / "index.html").is_file()
    # the docstrings' reStructuredText is read as Markdown: no role and no "::" is left
    api = "".join(p.read_text(encoding="utf-8") for p in (site / "api").rglob("*.html"))
    assert re.search(r":(func|class|meth|mod|data|attr):`", api) is None
    declaration = (site / "api" / "declaration" / "index.html").read_text(encoding="utf-8")
    assert 'href="#torchlean.spec.core.declaration.define_loss"><code>define_loss</code>' in (
        declaration)
