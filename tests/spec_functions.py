"""The spec functions under test, by loss name: ``(value, derivative, how it reduces)``.

Listed by hand (not read from the registry) so that the tests also hold the registry to them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torchlean.spec.layers import loss as L

SpecPair = tuple[Callable[..., Any], Callable[..., Any], str]

#: name -> (value spec, derivative spec, reduction): "elementwise" (mean of a per-element term),
#: "last_axis" (softmax over the last axis) or "whole" (one vector, no mean).
SPECS: dict[str, SpecPair] = {
    "mse": (L.mse_spec, L.mse_deriv_spec, "elementwise"),
    "mae": (L.mae_spec, L.mae_deriv_spec, "elementwise"),
    "huber": (L.huber_spec, L.huber_deriv_spec, "elementwise"),
    "cross_entropy": (L.cross_entropy_spec, L.cross_entropy_deriv_spec, "elementwise"),
    "cross_entropy_logits": (L.cross_entropy_logits_spec, L.cross_entropy_logits_deriv_spec,
                             "last_axis"),
    "hinge": (L.hinge_spec, L.hinge_deriv_spec, "elementwise"),
    "poisson": (L.poisson_spec, L.poisson_deriv_spec, "elementwise"),
    "cosine_similarity": (L.cosine_similarity_spec, L.cosine_similarity_deriv_spec, "whole"),
    "log_cosh": (L.log_cosh_spec, L.log_cosh_deriv_spec, "elementwise"),
    "binary_cross_entropy": (L.binary_cross_entropy_tensor_spec,
                             L.binary_cross_entropy_tensor_deriv_spec, "elementwise"),
}

NAMES = tuple(SPECS)
