"""A loss and the norm of its derivative over arrays larger than memory, with Dask.

The two inputs are generated lazily, chunk by chunk, from a seeded random generator, so nothing
is read from disk and nothing is ever held whole: each chunk is made, used by the value and the
derivative, and dropped. The loss is the same spec as everywhere else (``torchlean.value_and_deriv``
on Dask arrays goes through the Array API context); only the scheduler changes.

    # small and quick, on the local threaded scheduler
    python examples/dask_out_of_core.py --size 1e8 --loss huber

    # two arrays of 4e9 float64 (32 GB each, 64 GB in all), on a 24 GiB machine
    python examples/dask_out_of_core.py --size 4e9 --chunk 2e7 --loss mse

    # on a running cluster (`dask scheduler` + `dask worker tcp://HOST:8786` on each node)
    python examples/dask_out_of_core.py --size 4e10 --scheduler-address tcp://HOST:8786

It prints the value, ``||derivative||_2``, the time, and the peak resident memory of this
process (and of each worker on a cluster).

Losses of the whole tensor (``cosine_similarity``) need two passes over the data: every element
of the derivative depends on the norms of all of ``predicted`` and ``target``, so Dask keeps the
generated chunks between the passes. That fits only where the inputs fit in memory, or on a
distributed cluster whose workers spill to disk.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from typing import Any

import dask
import dask.array as da

import torchlean

#: Columns of the generated 2-D arrays: the class axis of ``cross_entropy_logits`` (softmax runs
#: over the last axis, which each chunk holds whole).
COLUMNS = 8


def _peak_rss_mib() -> float:
    """Peak resident memory of the calling process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _inputs(loss: str, rows: int, chunk_rows: int, seed: int) -> tuple[Any, Any]:
    """Lazily generated ``(predicted, target)`` in the loss's domain."""
    shape, chunks = (rows, COLUMNS), (chunk_rows, COLUMNS)
    rp, rt = da.random.default_rng(seed), da.random.default_rng(seed + 1)
    if loss in ("cross_entropy", "binary_cross_entropy"):
        # probabilities against weights in [0, 1]
        return rp.uniform(0.0, 1.0, shape, chunks=chunks), rt.uniform(0.0, 1.0, shape,
                                                                       chunks=chunks)
    predicted = rp.standard_normal(shape, chunks=chunks)
    if loss == "cross_entropy_logits":
        return predicted, rt.uniform(0.0, 1.0, shape, chunks=chunks)
    if loss == "hinge":
        return predicted, da.where(rt.standard_normal(shape, chunks=chunks) > 0, 1.0, -1.0)
    if loss == "poisson":
        return 0.5 * predicted, rt.poisson(2.0, shape, chunks=chunks).astype("float64")
    return predicted, rt.standard_normal(shape, chunks=chunks)


def _parse_count(text: str) -> int:
    value = float(text)
    if value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"expected a positive whole number; got {text}")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=_parse_count, default=10**8,
                        help="elements of each input (4e9 = 32 GB of float64 each)")
    parser.add_argument("--chunk", type=_parse_count, default=10**7,
                        help="elements per chunk (1e7 = 80 MB of float64)")
    parser.add_argument("--loss", default="mse", choices=list(torchlean.LOSSES))
    parser.add_argument("--scheduler-address", default=None,
                        help="a distributed scheduler, e.g. tcp://10.0.0.1:8786 (default: the "
                             "local threaded scheduler)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="threads of the local scheduler")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rows = max(args.size // COLUMNS, 1)
    chunk_rows = max(min(args.chunk // COLUMNS, rows), 1)
    predicted, target = _inputs(args.loss, rows, chunk_rows, args.seed)
    value, deriv = torchlean.value_and_deriv(args.loss, predicted, target)
    deriv_norm = da.sqrt(da.sum(deriv * deriv))

    n = rows * COLUMNS
    gib = 2 * n * predicted.dtype.itemsize / 2**30
    print(f"loss={args.loss}  inputs: 2 x {n:.3g} float64 = {gib:.1f} GiB in "
          f"{predicted.numblocks[0]} chunks of {chunk_rows * COLUMNS:.3g} elements")
    if torchlean.LOSSES[args.loss].kind == "whole":
        print("note: a loss of the whole tensor reads every chunk twice; Dask keeps the chunks "
              "between the two passes (see the module docstring)")

    start = time.perf_counter()
    if args.scheduler_address:
        from distributed import Client, progress

        with Client(args.scheduler_address) as client:
            futures = client.compute([value, deriv_norm])
            progress(futures)
            v, g = client.gather(futures)
            workers = client.run(_peak_rss_mib)
    else:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            v, g = dask.compute(value, deriv_norm, scheduler="threads",
                                num_workers=args.workers)
        workers = {}
    elapsed = time.perf_counter() - start

    print(f"\nvalue            = {float(v)!r}")
    print(f"||derivative||_2 = {float(g)!r}")
    print(f"time             = {elapsed:.1f} s ({gib / elapsed:.2f} GiB/s of input)")
    print(f"peak RSS         = {_peak_rss_mib():.0f} MiB (this process)")
    for address, mib in workers.items():
        print(f"                   {mib:.0f} MiB ({address})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
