"""The domain error of a value-reading range check (``Context.check_range``), shared by the
semantics that hold their values as floats (the arrays and binary32 semantics)."""

from __future__ import annotations

import numpy as np

from torchlean.errors import DomainError

__all__ = ["raise_domain_error"]


def raise_domain_error(x: np.ndarray | None, name: str, lo: float | None, hi: float | None,
                       what: str, start: tuple[int, ...] | None = None) -> None:
    """Raise :class:`~torchlean.errors.DomainError`: ``name`` must lie in ``[lo, hi]`` (an open
    end is ``None``) for ``what``. Given the values ``x`` (float64), the message names the first
    element outside and its index, shifted by ``start`` where ``x`` is a chunk of a larger
    array."""
    # Both ends as floats: an open end prints as -inf / inf under the same `:g` format.
    rng = f"[{-np.inf if lo is None else lo:g}, {np.inf if hi is None else hi:g}]"
    msg = f"`{name}` must lie in {rng} for {what}"
    if x is not None:
        bad = np.zeros(x.shape, dtype=bool)
        if lo is not None:
            bad |= x < lo
        if hi is not None:
            bad |= x > hi
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        at = idx if start is None else tuple(int(a) + i for a, i in zip(start, idx, strict=True))
        msg += f"; got {float(x[idx])!r} at index {at}"
    raise DomainError(msg + " (pass check_domain=False to skip this check)")
