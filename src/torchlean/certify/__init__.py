"""Derivative certification: ``torchlean certify``.

For every loss of :data:`torchlean.LOSSES` (or of a user's module, :func:`load_module`), five
checks, each a function of a declaration (or a registered loss's name) and, optionally, a
replacement ``(value_fn, deriv_fn)`` pair; where they look is read from the declaration
(:mod:`torchlean.certify.plans`):

- :func:`check_symbolic` (a): the derivative spec equals sympy's derivative of the value spec
  on each branch region;
- :func:`check_kinks` (b): at each declared kink the chosen derivative lies between the
  one-sided derivatives, and equals both at smooth seams and ordinary points (50-digit
  difference quotients of the value);
- :func:`check_intervals` (c): arb enclosures contain the 50-digit values at sampled points;
- :func:`check_floats` (d): float64 and float32 results against the 50-digit oracle, in ulps;
- :func:`check_frameworks` (e): agreement with PyTorch autograd where the semantics agree.

:func:`run` runs them and returns a :class:`Report`; :func:`render` and :func:`write_json`
print or save it. A loss that declares its second derivative gets a second row, ``<loss>
(2nd)``: the five checks run on its second-order declaration (:func:`second_order`: the
derivative as the value, the second derivative as its derivative) and :func:`check_hessian`
(the declared Hessian sign; for a slice loss, Hessian-vector products and diagonal against the
derivative). Every check counts what it examined; one that examined nothing fails, and a
loss whose checks were all skipped is not certified (docs/certification.md, "Verdicts").
"""

from __future__ import annotations

from torchlean.certify.floats import THRESHOLDS, check_floats
from torchlean.certify.frameworks import check_frameworks
from torchlean.certify.hessian import check_hessian
from torchlean.certify.intervals import check_intervals
from torchlean.certify.kinks import check_kinks
from torchlean.certify.modules import UserModule, load_module
from torchlean.certify.report import render, write_json
from torchlean.certify.result import CHECKS, SECOND_CHECKS, CheckResult, LossReport, Report
from torchlean.certify.runner import (
    CHECK_FUNCTIONS,
    DEFAULT_POINTS,
    SECOND_CHECK_FUNCTIONS,
    SECOND_POINTS,
    run,
)
from torchlean.certify.second import second_order
from torchlean.certify.symbolic import check_symbolic

__all__ = [
    "CHECKS",
    "CHECK_FUNCTIONS",
    "DEFAULT_POINTS",
    "SECOND_CHECKS",
    "SECOND_CHECK_FUNCTIONS",
    "SECOND_POINTS",
    "THRESHOLDS",
    "CheckResult",
    "LossReport",
    "Report",
    "UserModule",
    "check_floats",
    "check_frameworks",
    "check_hessian",
    "check_intervals",
    "check_kinks",
    "check_symbolic",
    "load_module",
    "render",
    "run",
    "second_order",
    "write_json",
]
