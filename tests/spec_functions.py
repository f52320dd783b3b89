"""The functions under test for each of the package's losses, read from the declarations.

A loss's value and derivative are its seed functions where the seed API has them, found by the
seed's naming rule (``<name>_tensor_spec`` and ``<name>_tensor_deriv_spec`` for the tensor form
of BCE, else ``<name>_spec`` and ``<name>_deriv_spec``), and the declaration's own ``value`` and
``deriv`` for the losses declared after the seed. :data:`SEED_FUNCTIONS` is the seed's API
itself (fixed: 22 functions), which the tests hold the rule to.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torchlean
from torchlean.spec.core.declaration import LossDeclaration
from torchlean.spec.layers import loss as L

Fn = Callable[..., Any]
SpecPair = tuple[Fn, Fn, str]

#: The seed API's loss functions (their names, signatures and errors are fixed).
SEED_FUNCTIONS = tuple(n for n in L.__all__ if n.endswith("_spec") and n != "to_scalar_spec")

#: The package's own losses, in declaration order (users' losses declared by other tests are
#: not among them).
NAMES = tuple(n for n, d in torchlean.LOSSES.items() if d.origin == "torchlean")


def declaration(name: str) -> LossDeclaration:
    return torchlean.LOSSES[name]


@functools.cache
def seed_pair(name: str) -> tuple[Fn, Fn] | None:
    """The seed's ``(value, derivative)`` functions of the tensor form of ``name``, or None."""
    for stem in (f"{name}_tensor", name):
        value, deriv = getattr(L, f"{stem}_spec", None), getattr(L, f"{stem}_deriv_spec", None)
        if value is not None and deriv is not None:
            return value, deriv
    return None


def spec(name: str) -> SpecPair:
    """``(value, derivative, kind)`` of the loss ``name``: the seed functions where they exist,
    else the declaration's; ``kind`` is the declaration's (elementwise, slice or whole)."""
    decl = declaration(name)
    pair = seed_pair(name) or (decl.value, decl.deriv)
    return pair[0], pair[1], decl.kind


#: ``spec(name)`` for every package loss.
SPECS: dict[str, SpecPair] = {name: spec(name) for name in NAMES}
