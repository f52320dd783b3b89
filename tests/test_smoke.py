"""Every registered loss evaluates on every backend (the detailed checks live elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest

import torchlean


@pytest.mark.parametrize("name", list(torchlean.LOSSES))
def test_every_loss_runs_on_every_backend(name: str, xp) -> None:
    p = np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    t = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    if name == "hinge":
        t = 2 * t - 1
    v_ref, g_ref = torchlean.value_and_deriv(name, p, t)
    v, g = torchlean.value_and_deriv(name, xp.asarray(p), xp.asarray(t))
    # Chunked (Dask) and strict backends may sum in another order: a few ulps apart.
    np.testing.assert_allclose(xp.to_numpy(v), v_ref, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(xp.to_numpy(g), g_ref, rtol=1e-14, atol=1e-15)
