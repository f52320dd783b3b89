"""Shared fixtures: every array backend goes through the one ``xp`` fixture."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Shared, loaded machines: no per-example deadline and no "too slow" health check (they would
# fail a run for timing, not for a wrong result). Tests still set their own example counts.
settings.register_profile("torchlean", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("torchlean")

BACKENDS = ("numpy", "torch", "dask", "array_api_strict")


class Backend:
    """An array library as the tests see it: build arrays, read them back as NumPy."""

    def __init__(self, name: str) -> None:
        self.name = name
        if name == "numpy":
            self.mod: Any = np
        elif name == "dask":
            self.mod = pytest.importorskip("dask.array")
        else:
            self.mod = pytest.importorskip(name)

    def asarray(self, values: Any, dtype: str = "float64") -> Any:
        a = np.asarray(values, dtype=dtype)
        if self.name == "numpy":
            return a
        if self.name == "torch":
            return self.mod.from_numpy(a.copy())
        if self.name == "dask":
            return self.mod.from_array(a, chunks=max(1, a.shape[0] // 2) if a.ndim else ())
        return self.mod.asarray(a)

    def to_numpy(self, x: Any) -> np.ndarray:
        if self.name == "torch":
            return x.detach().cpu().numpy()
        if self.name == "dask":
            return np.asarray(x.compute())
        if self.name == "array_api_strict":
            return np.from_dlpack(x)
        return np.asarray(x)

    def dtype_name(self, x: Any) -> str:
        return str(x.dtype).rsplit(".", 1)[-1]

    def __repr__(self) -> str:
        return self.name


@pytest.fixture(params=BACKENDS)
def xp(request: pytest.FixtureRequest) -> Backend:
    """Each array backend in turn (skipped, with the reason, when its library is missing)."""
    return Backend(request.param)


def has_module(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


@pytest.fixture(params=["kernels", "spec"])
def path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run with the fused kernels on, and again with the declaration alone."""
    from torchlean.kernels import disabled

    if request.param == "spec":
        with disabled():
            yield "spec"
    else:
        yield "kernels"
