"""The gallery's Markdown pages, written from the loss declarations.

The documentation site builds them (docs/hooks/site.py, at ``mkdocs build``): an index of every
loss of the package and one page per loss, whose every fact is read from the declaration
(formula, derivative, kinks and seams, parameters with their defaults and validators' meaning,
second derivative, domain, the PyTorch expression and criterion, the optax function). A loss
added to the package gets its page with no other step; nothing here names a loss.

The pages are not stored in the repository: :func:`site_pages` gives their text by path and
:func:`draw_figures` draws their figures with :func:`torchlean.gallery.save`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from torchlean.catalogue import optax_functions
from torchlean.interop.criterion_names import criterion_class_name
from torchlean.registry import package_losses
from torchlean.spec.core.declaration import LossDeclaration, Param, Seam

__all__ = [
    "FOLDER",
    "draw_figures",
    "figure_name",
    "index_page",
    "loss_page",
    "page_name",
    "site_pages",
]

#: the gallery's folder in the site
FOLDER = "gallery"

# what each seam coordinate is, in the words of the docs
_COORDINATES = {
    "residual": "the residual `d = predicted - target`",
    "predicted": "`predicted`",
    "margin": "the margin `target * predicted`",
    "norm": "the norm of `predicted`",
}


def page_name(decl: LossDeclaration) -> str:
    """The page of ``decl``, relative to the gallery's folder."""
    return f"{decl.name}.md"


def figure_name(decl: LossDeclaration) -> str:
    """The figure of ``decl``, relative to the gallery's folder."""
    return f"{decl.name}.png"


def _code(text: str) -> str:
    """``text`` as a code span (the site's tables read a ``|`` inside one as text)."""
    return f"`{text}`" if text else "none"


def _cell(text: str) -> str:
    return text.replace("|", "\\|") if text else "none"


def _call(decl: LossDeclaration) -> str:
    args = [f"{k}={v!r}" for k, v in decl.params.items()]
    args += ["check_domain=True"] if decl.has_domain_check else []
    return f"{criterion_class_name(decl)}({', '.join(args)})"


def _seam_row(seam: Seam, params: Mapping[str, object]) -> str:
    try:
        where = f"{seam.location(params):.6g}"
    except (ArithmeticError, ValueError):  # a seam that needs data (a norm) has no fixed place
        where = "depends on the data"
    kind = "kink: " + (seam.choice or "derivative chosen") if seam.kink else "smooth seam"
    second = seam.second_choice or "smooth across it"
    return (f"| {_code(seam.label)} | {_COORDINATES.get(seam.coordinate, seam.coordinate)} | "
            f"{where} | {_cell(kind)} | {_cell(second)} |")


def _param_row(param: Param) -> str:
    return f"| `{param.name}` | `{param.default!r}` | {_cell(param.doc)} |"


def _domain(decl: LossDeclaration) -> str:
    dom = decl.domain
    text = dom.text
    if dom.checked:
        lo = "-inf" if dom.target_lo is None else f"{dom.target_lo:g}"
        hi = "inf" if dom.target_hi is None else f"{dom.target_hi:g}"
        text += (f". A target outside [{lo}, {hi}] raises `DomainError` "
                 f"(`check_domain=False` skips the check)")
    if dom.labels:
        text += f". Labels: {', '.join(f'{v:g}' for v in dom.labels)}"
    return _cell(text)


def loss_page(decl: LossDeclaration) -> str:
    """The gallery page of one loss."""
    name = decl.name
    optax = optax_functions().get(name, ())
    second = (f"{_code(decl.second_text)} (sign: {decl.hessian_sign})" if decl.has_second
              else "not declared")
    facts = [
        "| | as declared |",
        "|---|---|",
        f"| kind, reduction | {decl.kind}, {decl.reduction} |",
        f"| value | {_code(decl.formula)} |",
        f"| derivative w.r.t. `{decl.arg_names[0]}` | {_code(decl.derivative_text)} |",
        f"| at the kinks | {_cell(decl.kink_text)} |",
        f"| second derivative | {second} |",
        f"| domain | {_domain(decl)} |",
        f"| PyTorch expression with the same value | {_code(decl.torch_text)} |",
        f"| PyTorch criterion | `torchlean.interop.torch.{_call(decl)}` |",
        "| optax-compatible function | "
        + (", ".join(f"`torchlean.interop.optax.{f}`" for f in optax) or "none") + " |",
        f"| JAX | `torchlean.interop.jax.per_example(\"{name}\")` |",
    ]
    out = [
        f"# `{name}`",
        "",
        f"![The value and the derivative of {name}]({figure_name(decl)})",
        "",
        "At the default parameters: the value and its derivative over a representative "
        "range, kinks and clamp bounds marked, the interval enclosures as bands; below, the "
        "float32 error in ulps of ours beside PyTorch's, and the second derivative where it is "
        "declared.",
        "",
        *facts,
        "",
    ]
    if decl.doc:
        out += [decl.doc.strip(), ""]
    out += ["## Parameters", ""]
    if decl.parameters:
        out += ["| parameter | default | meaning (checked on every call) |", "|---|---|---|"]
        out += [_param_row(p) for p in decl.parameters.values()]
    else:
        out.append("None.")
    out += ["", "## Seams and kinks", ""]
    if decl.seams:
        out += ["Where the term changes branch, at the default parameters:", "",
                "| seam | on | at | what the derivative does | second derivative there |",
                "|---|---|---|---|---|"]
        out += [_seam_row(s, decl.params) for s in decl.seams]
    else:
        out.append("None: one formula on the whole domain.")
    out += [
        "",
        "## See also",
        "",
        "- [Semantics](../semantics.md): the conventions every loss shares "
        "(shapes, `n`, NaN, dtypes).",
        f"- [PyTorch parity](../parity.md#{name}): where PyTorch's value or gradient "
        f"differs.",
        "- [Certification](../certification.md): how `torchlean certify` checks this "
        "derivative.",
        f"- Draw this figure: `torchlean plot {name} -o {name}.png` "
        "([command line](../cli.md)).",
        "",
    ]
    return "\n".join(out)


def index_page(decls: Iterable[LossDeclaration]) -> str:
    """The gallery's index: every loss, its figure as a thumbnail and its formula."""
    decls = list(decls)
    out = [
        "# Gallery",
        "",
        f"Every loss of the package ({len(decls)}), drawn from its declaration: the value and "
        "the derivative over a representative range, with the kinks and clamp bounds marked, "
        "the interval enclosure as a band and the float32 error in ulps beside PyTorch's. "
        "Each page lists the formula, the derivative, the choice at each kink, the "
        "parameters and the PyTorch and optax equivalents.",
        "",
        '<div class="grid cards" markdown>',
        "",
    ]
    for d in decls:
        out += [
            f"-   [![{d.name}]({figure_name(d)}){{ loading=lazy }}]({page_name(d)})",
            "",
            f"    [**`{d.name}`**]({page_name(d)}) · {d.kind}, {d.reduction}",
            "",
            f"    {_code(d.formula)}",
            "",
        ]
    out += ["</div>", ""]
    return "\n".join(out)


def site_pages(decls: Iterable[LossDeclaration] | None = None) -> dict[str, str]:
    """Path in the site (``gallery/...``) -> Markdown, for the index and every loss."""
    decls = package_losses() if decls is None else list(decls)
    pages = {f"{FOLDER}/index.md": index_page(decls)}
    pages.update({f"{FOLDER}/{page_name(d)}": loss_page(d) for d in decls})
    return pages


def draw_figures(folder: Path, decls: Iterable[LossDeclaration] | None = None) -> dict[str, Path]:
    """Draw every loss's figure into ``folder``: path in the site -> the file drawn."""
    from torchlean import gallery

    decls = package_losses() if decls is None else list(decls)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for d in decls:
        path = folder / figure_name(d)
        gallery.save(d.name, path, dict(d.params))
        out[f"{FOLDER}/{figure_name(d)}"] = path
    return out
