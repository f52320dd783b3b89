"""Accuracy table: max ulps of every loss's value and derivative on the edge-case grid, for
torchlean (the spec, and the fused ``value_and_deriv``) and for PyTorch, against the 50-digit
oracle. Run from the repository root:

    python benchmarks/accuracy.py            # print the table
    python benchmarks/accuracy.py --update   # also rewrite the table in docs/accuracy.md

The grid and the oracle are ``tests/oracle.py`` (the same ones ``tests/test_extremes.py``
asserts on). An error is the number of representable numbers of the dtype between a result and
the correctly rounded exact value (0 = correctly rounded). PyTorch runs natively in the dtype
(float32 in float32), gradients by autograd; a grid case where PyTorch defines the loss
differently (binary cross-entropy outside [eps, 1 - eps], where PyTorch clamps each log at
-100 instead of clipping p; gradients at a clamp bound, which autograd passes through; cosine
gradients where a norm is below eps, which PyTorch's gradient ignores) is left out of its column.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import oracle  # noqa: E402

import torchlean  # noqa: E402

DOC = ROOT / "docs" / "accuracy.md"
START, END = "<!-- accuracy-table:start -->", "<!-- accuracy-table:end -->"



def torch_impl(name: str) -> oracle.Impl | None:
    """PyTorch's value and autograd gradient of the declaration's ``torch_reference``, in the
    input dtype (None where it raises; no implementation where the loss has no reference)."""
    import torch

    decl = torchlean.LOSSES[name]
    fn = decl.torch_reference
    if fn is None:
        return None
    params = dict(decl.params)

    def run(p: np.ndarray, t: np.ndarray) -> tuple[Any, Any] | None:
        pt = torch.from_numpy(p.copy()).requires_grad_(True)
        tt = torch.from_numpy(t.copy())
        try:
            v = fn(pt, tt, **params)
            v.backward()
        except (RuntimeError, ValueError):
            return None
        return v.detach().double().numpy(), pt.grad.double().numpy()

    return run


def torch_skip(name: str) -> Callable[[oracle.Case, str], bool]:
    """Grid cases where PyTorch's loss is a different function: outside the regions where the
    declaration says its PyTorch reference agrees, or on a seam (see the module docstring)."""
    decl = torchlean.LOSSES[name]

    def skip(case: oracle.Case, part: str) -> bool:
        return not decl.torch_comparable(case.predicted, case.target)

    return skip


def spec_impl(name: str) -> oracle.Impl:
    entry = torchlean.LOSSES[name]
    return lambda p, t: (entry.value(p, t), entry.deriv(p, t))


def _fmt(w: oracle.Worst | None) -> str:
    if w is None:
        return "-"
    u = w.ulps
    text = "inf" if math.isinf(u) else (f"{u:.3g}" if u < 1e4 else f"{u:.1e}")
    if w.nonfinite:
        text += f" ({len(w.nonfinite)} inf/nan)"
    return text


def table() -> str:
    rows = [
        "| loss | dtype | cases | value | derivative | value, ulps of terms "
        "| derivative, ulps of terms | fused value | fused derivative | PyTorch value "
        "| PyTorch derivative |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in torchlean.LOSSES:
        for dtype in oracle.GRID_DTYPES:
            ours = oracle.measure(name, dtype, spec_impl(name))
            fused = oracle.measure(name, dtype, oracle.spec_impl(name))
            impl = torch_impl(name)
            torch_rep = (None if impl is None
                         else oracle.measure(name, dtype, impl, skip=torch_skip(name)))
            rows.append(
                f"| {name} | {dtype} | {ours.cases} | {_fmt(ours.value)} | {_fmt(ours.deriv)} "
                f"| {_fmt(ours.value_scaled)} | {_fmt(ours.deriv_scaled)} "
                f"| {_fmt(fused.value)} | {_fmt(fused.deriv)} "
                f"| {_fmt(torch_rep.value if torch_rep else None)} "
                f"| {_fmt(torch_rep.deriv if torch_rep else None)} |"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", action="store_true",
                        help=f"rewrite the table between the markers in {DOC.name}")
    args = parser.parse_args(argv)
    import warnings

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # PyTorch's own overflow warnings are part of its row
        text = table()
    print(text)
    if args.update:
        doc = DOC.read_text()
        new = re.sub(f"{re.escape(START)}.*?{re.escape(END)}", f"{START}\n{text}\n{END}", doc,
                     flags=re.S)
        DOC.write_text(new)
        print(f"updated {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
