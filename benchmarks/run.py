"""Benchmark of the fused ``torchlean.value_and_deriv`` against PyTorch autograd and the
streaming limit. Run from the repository root:

    python benchmarks/run.py

It measures, in one run, for float32 and float64 and sizes 10**3, 10**5, 10**7, every loss whose
declaration names a fused kernel, on inputs drawn from the declaration's zones:

- ``ours``: ``torchlean.value_and_deriv(name, p, t)`` on NumPy arrays (the numba kernels), and
  ``ours_torch`` on CPU tensors;
- ``torch``: PyTorch autograd forward + backward of the declaration's PyTorch reference
  (``torch_reference``; ``nan`` for a loss without one);
- ``stream``: ``np.add(p, t, out=g)``, two arrays read and one written (the memory traffic of
  a fused loss + derivative).

Everyone gets 2 threads (``numba.set_num_threads(2)``, ``torch.set_num_threads(2)``; NumPy's
``add`` is single-threaded). Each time is the minimum over repeats of the mean of a timed loop
(``timeit`` style). It prints the table with the ratios, writes ``results.md`` and
``time_per_element.png`` under ``benchmarks/results/``, and measures with ``tracemalloc`` the
peak memory a NumPy ``value_and_deriv`` allocates beyond the derivative it returns.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import sys
import time
import timeit
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

THREADS = 2
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))

import numba  # noqa: E402
import torch  # noqa: E402

import torchlean  # noqa: E402
from torchlean.kernels.numpy_path import release_pool  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = (10**3, 10**5, 10**7)
DTYPES = ("float32", "float64")
CLASSES = 100  # last-axis length for cross-entropy on logits
VD = torchlean.value_and_deriv

#: the losses with a fused kernel (their declarations name one), in registry order
KERNEL_LOSSES = [name for name, decl in torchlean.LOSSES.items() if decl.kernel is not None]


def make_inputs(name: str, size: int, dtype: str, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """Inputs from the declaration's zones where its PyTorch reference agrees (each element
    from a zone drawn at random; a whole-tensor loss: the first such zone); a slice loss gets
    rows of ``CLASSES``."""
    decl = torchlean.LOSSES[name]
    shape: tuple[int, ...] = (size // CLASSES, CLASSES) if decl.kind == "slice" else (size,)
    # where the PyTorch reference computes the same loss (it refuses BCE's clamped inputs)
    zones = [z for z in decl.region_zones() if z.torch_agrees] or list(decl.region_zones())
    if decl.kind == "whole" or len(zones) == 1:
        p, t = zones[0].sample(rng, shape, decl.params)
    else:
        pick = rng.integers(len(zones), size=shape)
        p, t = np.empty(shape), np.empty(shape)
        for k, zone in enumerate(zones):
            zp, zt = zone.sample(rng, shape, decl.params)
            p = np.where(pick == k, zp, p)
            t = np.where(pick == k, zt, t)
    return p.astype(dtype), t.astype(dtype)


def best_time(fn: Callable[[], Any], budget: float) -> float:
    """Seconds per call: the minimum over repeats of the mean of a loop of ``number`` calls."""
    fn()  # warm up (compiles, caches)
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    number = max(1, int(0.02 / once))
    repeat = max(3, min(15, int(budget / (once * number))))
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def torch_autograd(name: str, x: torch.Tensor, t: torch.Tensor) -> Callable[[], Any] | None:
    """Autograd forward + backward of the declaration's PyTorch reference (None: it has
    none)."""
    decl = torchlean.LOSSES[name]
    expr = decl.torch_reference
    if expr is None:
        return None
    params = dict(decl.params)

    def run() -> Any:
        xg = x.detach().requires_grad_(True)
        loss = expr(xg, t, **params)
        loss.backward()
        return loss, xg.grad

    return run


def extra_memory(name: str, p: np.ndarray, t: np.ndarray) -> int:
    """Peak bytes a NumPy ``value_and_deriv`` allocates beyond its derivative (tracemalloc),
    with the recycled derivative buffer released first so the derivative is a new allocation."""
    release_pool()
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    out = torchlean.value_and_deriv(name, p, t)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak - np.asarray(out[1]).nbytes


def measure(sizes: tuple[int, ...], budget: float,
            losses: list[str]) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    rows = []
    for dtype in DTYPES:
        for size in sizes:
            for name in losses:
                p, t = make_inputs(name, size, dtype, rng)
                tp, tt = torch.from_numpy(p), torch.from_numpy(t)
                g = np.empty_like(p)
                row: dict[str, Any] = {"loss": name, "dtype": dtype, "size": size}
                row["ours"] = best_time(lambda n=name, a=p, b=t: VD(n, a, b), budget)
                row["ours_torch"] = best_time(lambda n=name, a=tp, b=tt: VD(n, a, b), budget)
                reference = torch_autograd(name, tp, tt)
                row["torch"] = math.nan if reference is None else best_time(reference, budget)
                row["stream"] = best_time(lambda a=p, b=t, c=g: np.add(a, b, out=c), budget)
                row["extra_bytes"] = extra_memory(name, p, t)
                rows.append(row)
                print(fmt_row(row), flush=True)
    return rows


HEADER = ("| loss | dtype | size | ours µs | ours (torch in) µs | torch autograd µs | "
          "stream µs | torch / ours | ours / stream | extra memory |")
RULE = "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"


def fmt_row(r: dict[str, Any]) -> str:
    us = 1e6
    return (f"| {r['loss']} | {r['dtype']} | {r['size']:.0e} | {r['ours'] * us:.1f} | "
            f"{r['ours_torch'] * us:.1f} | {r['torch'] * us:.1f} | {r['stream'] * us:.1f} | "
            f"{r['torch'] / r['ours']:.2f} | {r['ours'] / r['stream']:.2f} | "
            f"{r['extra_bytes'] / 1024:.0f} KiB |")


def write_markdown(rows: list[dict[str, Any]], path: Path, threads: int) -> None:
    lines = [
        "# value_and_deriv benchmark",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, shared with other jobs; "
        f"{threads} threads for everyone. Python {sys.version.split()[0]}, NumPy "
        f"{np.__version__}, numba {numba.__version__}, torch {torch.__version__}.",
        "Command: `python benchmarks/run.py`. Times are per call; `torch / ours` > 1 means ours "
        "is faster; `ours / stream` is the distance to the streaming limit "
        "`np.add(p, t, out=g)`; extra memory is the tracemalloc peak beyond the derivative.",
        "",
        HEADER,
        RULE,
        *(fmt_row(r) for r in rows),
        "",
    ]
    path.write_text("\n".join(lines))


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(DTYPES), figsize=(13, 5), sharey=True)
    for ax, dtype in zip(axes, DTYPES, strict=True):
        for name in dict.fromkeys(r["loss"] for r in rows):
            rs = [r for r in rows if r["dtype"] == dtype and r["loss"] == name]
            ax.plot([r["size"] for r in rs], [r["ours"] / r["size"] * 1e9 for r in rs],
                    marker="o", label=name)
        rs = [r for r in rows if r["dtype"] == dtype and r["loss"] == "mse"]
        ax.plot([r["size"] for r in rs], [r["stream"] / r["size"] * 1e9 for r in rs], "k--",
                label="stream np.add")
        ax.plot([r["size"] for r in rs], [r["torch"] / r["size"] * 1e9 for r in rs], "k:",
                label="torch autograd (mse)")
        ax.set(xscale="log", yscale="log", title=f"value_and_deriv, {dtype}",
               xlabel="elements", ylabel="ns per element")
        ax.grid(True, which="both", alpha=0.3)
    axes[-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    ap.add_argument("--budget", type=float, default=0.4,
                    help="seconds of repeats per measurement (default 0.4)")
    ap.add_argument("--threads", type=int, default=THREADS,
                    help=f"threads for numba and torch (default {THREADS})")
    ap.add_argument("--losses", nargs="*", default=KERNEL_LOSSES)
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    numba.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    RESULTS.mkdir(exist_ok=True)
    print(HEADER)
    print(RULE)
    rows = measure(tuple(args.sizes), args.budget, args.losses)
    if not args.no_write:
        tag = "" if args.threads == THREADS else f"_{args.threads}thread"
        md, png = RESULTS / f"results{tag}.md", RESULTS / f"time_per_element{tag}.png"
        write_markdown(rows, md, args.threads)
        plot(rows, png)
        print(f"wrote {md} and {png}")


if __name__ == "__main__":
    main()
