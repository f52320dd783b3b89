"""The docs' generated tables are what the declarations render, and the renderer's rules.

(The docs' code examples run through the repository's conftest.py, one test per example.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

import torchlean
from torchlean import catalogue
from torchlean.errors import ParameterError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", catalogue.documents(ROOT), ids=lambda p: p.name)
def test_generated_fragments_are_current(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert catalogue.render(text, source=str(path)) == text, (
        f"{path.relative_to(ROOT)} has a stale generated fragment; regenerate it with "
        f"`{catalogue.COMMAND}`"
    )


def test_the_docs_hold_the_table_and_the_names() -> None:
    semantics = (ROOT / "docs" / "semantics.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "<!-- generated: losses -->" in semantics
    assert "<!-- generated: loss-names -->" in readme


def test_every_package_loss_has_a_row_with_its_declared_facts() -> None:
    decls = catalogue.package_losses()
    table = catalogue.loss_table(decls)
    rows = table.splitlines()[2:]
    assert len(rows) == len(decls)
    for decl, row in zip(decls, rows, strict=True):
        assert row.startswith(f"| `{decl.name}` | {decl.kind}, {decl.reduction} |")
        for text in (decl.formula, decl.derivative_text):
            assert text.replace("|", "\\|") in row
        for key, default in decl.params.items():
            assert f"`{key}={default!r}`" in row


def test_only_the_package_losses_are_listed() -> None:
    @torchlean.define_loss("catalogue_probe_loss")
    def probe(c, p, t):
        return p * t

    @probe.deriv
    def _(c, p, t):
        return t

    try:
        assert "catalogue_probe_loss" in torchlean.LOSSES
        assert all(d.origin == "torchlean" for d in catalogue.package_losses())
        assert "catalogue_probe_loss" not in catalogue.FRAGMENTS["losses"]()
        assert "catalogue_probe_loss" not in catalogue.FRAGMENTS["loss-names"]()
    finally:
        from torchlean.spec.core import declaration

        declaration.unregister("catalogue_probe_loss")


def test_render_replaces_only_between_the_markers() -> None:
    text = ("before\n<!-- generated: loss-names -->\nold text\n<!-- end generated -->\n"
            "after\n")
    out = catalogue.render(text)
    assert out.startswith("before\n<!-- generated: loss-names -->\nThe losses: `mse`, ")
    assert out.endswith("<!-- end generated -->\nafter\n")
    assert "old text" not in out
    assert catalogue.render(out) == out


@pytest.mark.parametrize(("text", "message"), [
    ("<!-- generated: nothing -->\n<!-- end generated -->\n", "unknown generated fragment"),
    ("<!-- generated: losses -->\nrows\n", "has no '<!-- end generated -->'"),
])
def test_render_refuses_a_malformed_fragment(text: str, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        catalogue.render(text, source="doc.md")


def test_the_command_reports_and_rewrites_stale_files(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "docs").mkdir()
    doc = tmp_path / "docs" / "table.md"
    doc.write_text("<!-- generated: losses -->\n<!-- end generated -->\n", encoding="utf-8")
    (tmp_path / "README.md").write_text("no fragments\n", encoding="utf-8")
    assert catalogue.main(["--root", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert f"stale: {doc}" in captured.out
    assert catalogue.COMMAND in captured.err
    assert catalogue.main(["--root", str(tmp_path), "--write"]) == 0
    assert "| `mse` |" in doc.read_text(encoding="utf-8")
    assert catalogue.main(["--root", str(tmp_path)]) == 0


def test_every_keyword_of_define_loss_is_documented() -> None:
    import inspect

    text = (ROOT / "docs" / "custom-losses.md").read_text(encoding="utf-8")
    table = text[text.index("## Every keyword of `define_loss`"):]
    for name in inspect.signature(torchlean.define_loss).parameters:
        assert f"| `{name}` |" in table, f"docs/custom-losses.md does not document `{name}`"
