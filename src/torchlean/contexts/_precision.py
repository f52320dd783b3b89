"""The one lock around the global working precisions of mpmath and python-flint.

arb arithmetic reads ``flint.ctx.prec`` and mpmath arithmetic reads ``mpmath.mp.prec``: each is
a single process-wide setting with no per-call or per-thread form that keeps the number types
(a private ``mpmath.MPContext`` makes its own ``mpf`` class). So every evaluation that sets
either one holds :data:`LOCK` from setting it to restoring it, around all the arithmetic that
reads it; evaluations of the precision-carrying semantics therefore run one thread at a time.
Their work is pure Python under the GIL, so little parallelism is lost.

One re-entrant lock serves both libraries: a nested evaluation on the same thread (the binary32
fallback inside another evaluation, the certifier's oracle calling the precise semantics, an
interval evaluation inside the oracle's block) takes it again, and with a single lock there is
no order of two locks to get wrong.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

__all__ = ["LOCK", "flint_prec", "mpmath_prec"]

#: held while any evaluation of the package has changed flint's or mpmath's global precision
LOCK = threading.RLock()


@contextlib.contextmanager
def mpmath_prec(*, prec: int | None = None, dps: int | None = None) -> Iterator[None]:
    """mpmath's global precision at ``prec`` bits or ``dps`` digits inside the block (the
    current one when neither is given), under :data:`LOCK`; restored exactly on exit."""
    import mpmath

    mp = mpmath.mp
    with LOCK:
        old_prec, old_dps = mp.prec, mp.dps
        try:
            if dps is not None:
                mp.dps = dps
            elif prec is not None:
                mp.prec = prec
            yield
        finally:
            # prec and dps are stored apart: set whichever of them was set last, so that both
            # read back as they were (setting one derives the other).
            if mpmath.libmp.dps_to_prec(old_dps) == old_prec:
                mp.dps = old_dps
            else:
                mp.prec = old_prec


@contextlib.contextmanager
def flint_prec(bits: int | None = None) -> Iterator[None]:
    """flint's global arb precision at ``bits`` inside the block (the current one when None),
    under :data:`LOCK`; restored on exit."""
    import flint

    with LOCK:
        old = flint.ctx.prec  # flint derives ctx.dps from ctx.prec: restoring prec restores both
        try:
            if bits is not None:
                flint.ctx.prec = bits
            yield
        finally:
            flint.ctx.prec = old
