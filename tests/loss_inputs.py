"""Inputs for every registered loss, drawn from its declaration's branch regions.

``smooth_case`` reads ``decl.region_zones()``: each zone's sampler draws points strictly inside
one branch region (a margin from every seam: kinks, clamp bounds, changes of evaluation form),
so a central difference with a step of ~1e-6 never straddles a seam. For a loss of elements
(or of slices) every element comes from a zone drawn at random, so one case visits every branch;
a loss of the whole tensor takes one zone per case: the first declared one unless ``zone`` says
otherwise (the others may be narrower than a difference step). Parameters are the declared
defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

import torchlean
from torchlean.spec.core.declaration import LossDeclaration, Zone

Case = tuple[np.ndarray, np.ndarray, dict[str, Any]]


def zones(name: str, *, torch_only: bool = False) -> tuple[Zone, ...]:
    """The branch regions of ``name`` (those where the PyTorch reference agrees, if asked)."""
    out = torchlean.LOSSES[name].region_zones()
    return tuple(z for z in out if z.torch_agrees) if torch_only else out


def draw(decl: LossDeclaration, shape: tuple[int, ...], rng: np.random.Generator,
         params: Mapping[str, Any], *, torch_only: bool = False,
         zone: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(predicted, target)`` of ``shape`` inside the branch regions of ``decl``."""
    regions = [z for z in decl.region_zones() if z.torch_agrees or not torch_only]
    if zone is not None:
        regions = [regions[zone % len(regions)]]
    if decl.kind == "whole" or len(regions) == 1:
        p, t = regions[0].sample(rng, shape, params)
        return np.asarray(p, dtype=np.float64), np.asarray(t, dtype=np.float64)
    samples = [z.sample(rng, shape, params) for z in regions]
    pick = rng.integers(len(regions), size=shape)
    p = np.choose(pick, [np.asarray(s[0], dtype=np.float64) for s in samples])
    t = np.choose(pick, [np.asarray(s[1], dtype=np.float64) for s in samples])
    return np.asarray(p, dtype=np.float64), np.asarray(t, dtype=np.float64)


def smooth_case(name: str, shape: tuple[int, ...] = (2, 3), seed: int = 0, *,
                torch_only: bool = False, zone: int | None = None) -> Case:
    """``(predicted, target, params)`` in float64 for the loss ``name``, inside its branch
    regions (only those where PyTorch agrees with ``torch_only``; only the ``zone``-th if
    given), with the default params."""
    decl = torchlean.LOSSES[name]
    params = dict(decl.params)
    p, t = draw(decl, shape, np.random.default_rng(seed), params, torch_only=torch_only,
                zone=zone)
    return p, t, params
