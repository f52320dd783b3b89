"""The names of the generated criterion classes of :mod:`torchlean.interop.torch`.

Each loss of the package gets one ``torch.nn`` criterion class, named from its declaration:

1. the declaration's own ``criterion_name`` where it gives one (a name the rule below cannot
   say: ``BCELoss``, or ``ProbabilityCrossEntropyLoss``, which says that it takes probabilities,
   unlike ``torch.nn.CrossEntropyLoss``);
2. otherwise the loss name's words, capitalised, then ``Loss``; a name that is a single word of
   at most three letters is an initialism and is upper-cased: ``mse`` gives ``MSELoss``,
   ``huber`` ``HuberLoss``, ``log_cosh`` ``LogCoshLoss``, ``pseudo_huber`` ``PseudoHuberLoss``.

This module does not import PyTorch, so :mod:`torchlean.interop` can list the names without it.
"""

from __future__ import annotations

from typing import Any

from torchlean.registry import package_losses

__all__ = ["FIXED_NAMES", "criterion_class_name", "criterion_names"]

#: the names of :mod:`torchlean.interop.torch` that are not generated from a declaration
FIXED_NAMES = ("SpecLoss", "criterion", "spec_loss")

def criterion_class_name(declaration: Any) -> str:
    """The class name of ``declaration``'s criterion (see the module docstring)."""
    if declaration.criterion_name:
        return str(declaration.criterion_name)
    words = declaration.name.split("_")
    if len(words) == 1 and len(words[0]) <= 3:
        return words[0].upper() + "Loss"
    return "".join(w[:1].upper() + w[1:] for w in words) + "Loss"


def criterion_names() -> dict[str, str]:
    """Class name -> loss name, for every loss of the package."""
    return {criterion_class_name(d): d.name for d in package_losses()}
