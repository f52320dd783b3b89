"""Benchmark of the fused ``torchlean.value_and_deriv`` against PyTorch autograd and the
streaming limit. Run from the repository root:

    python benchmarks/run.py

It measures, in one run, for float32 and float64 and sizes 10**3, 10**5, 10**7, every loss:

- ``ours``: ``torchlean.value_and_deriv(name, p, t)`` on NumPy arrays (the numba kernels), and
  ``ours_torch`` on CPU tensors;
- ``torch``: PyTorch autograd forward + backward of the same loss (``torch.nn.functional``
  where it has the loss, else the composed expression);
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
import torch.nn.functional as F  # noqa: E402

import torchlean  # noqa: E402
from torchlean.kernels.numpy_path import release_pool  # noqa: E402
from torchlean.spec.layers.loss import EPSILON  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = (10**3, 10**5, 10**7)
DTYPES = ("float32", "float64")
CLASSES = 100  # last-axis length for cross-entropy on logits
VD = torchlean.value_and_deriv

#: loss -> (torch autograd expression of (x, t), description)
TORCH: dict[str, tuple[Callable[[Any, Any], Any], str]] = {
    "mse": (lambda x, t: F.mse_loss(x, t), "F.mse_loss"),
    "mae": (lambda x, t: F.l1_loss(x, t), "F.l1_loss"),
    "huber": (lambda x, t: F.smooth_l1_loss(x, t, beta=1.0), "F.smooth_l1_loss"),
    "cross_entropy": (lambda x, t: -(t * x.clamp(EPSILON, 1 - EPSILON).log()).mean(),
                      "-(t * x.clamp(eps, 1 - eps).log()).mean()"),
    "cross_entropy_logits": (lambda z, t: F.cross_entropy(z, t, reduction="sum") / z.numel(),
                             "F.cross_entropy(z, t, reduction='sum') / z.numel()"),
    "hinge": (lambda x, t: torch.clamp(1 - t * x, min=0).mean(),
              "torch.clamp(1 - t * x, min=0).mean()"),
    "poisson": (lambda x, t: F.poisson_nll_loss(x, t, log_input=True, full=False),
                "F.poisson_nll_loss"),
    "cosine_similarity": (lambda x, t: 1 - F.cosine_similarity(x.flatten(), t.flatten(), dim=0,
                                                               eps=EPSILON),
                          "1 - F.cosine_similarity"),
    "log_cosh": (lambda x, t: torch.log(torch.cosh(x - t)).mean(),
                 "torch.log(torch.cosh(x - t)).mean()"),
    "binary_cross_entropy": (lambda x, t: F.binary_cross_entropy(x, t),
                             "F.binary_cross_entropy"),
}


def make_inputs(name: str, size: int, dtype: str, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """Inputs in each loss's domain."""
    shape: tuple[int, ...] = (size,)
    if name == "cross_entropy_logits":
        shape = (size // CLASSES, CLASSES)
    if name in ("cross_entropy", "binary_cross_entropy"):
        p = rng.uniform(0.01, 0.99, shape)
        t = rng.uniform(0.0, 1.0, shape)
    elif name == "cross_entropy_logits":
        p = rng.normal(0.0, 3.0, shape)
        t = rng.dirichlet(np.ones(CLASSES), shape[0])
    elif name == "hinge":
        p = rng.normal(0.0, 1.0, shape)
        t = rng.choice([-1.0, 1.0], shape)
    elif name == "poisson":
        p = rng.normal(0.0, 1.0, shape)
        t = rng.poisson(2.0, shape).astype(np.float64)
    else:
        p = rng.normal(0.0, 1.0, shape)
        t = rng.normal(0.0, 1.0, shape)
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


def torch_autograd(name: str, x: torch.Tensor, t: torch.Tensor) -> Callable[[], Any]:
    expr = TORCH[name][0]

    def run() -> Any:
        xg = x.detach().requires_grad_(True)
        loss = expr(xg, t)
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
                row["torch"] = best_time(torch_autograd(name, tp, tt), budget)
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
        for name in torchlean.LOSSES:
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
    ap.add_argument("--losses", nargs="*", default=list(torchlean.LOSSES))
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
