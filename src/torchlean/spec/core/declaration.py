"""A loss as one declaration: its value and derivative written once against the Context, and
everything the rest of the package needs to know about it as data.

The package's own losses and users' losses are declared the same way, with
:func:`define_loss`::

    import torchlean

    @torchlean.define_loss("pseudo_huber_mine", params={"delta": 1.0})
    def pseudo_huber_mine(c, p, t, *, delta):      # the elementwise value term
        d = p - t
        return delta * delta * (c.sqrt(1 + (d / delta) * (d / delta)) - 1)

    @pseudo_huber_mine.deriv
    def _(c, p, t, *, delta):                       # its derivative w.r.t. p, per element
        d = p - t
        return d / c.sqrt(1 + (d / delta) * (d / delta))

Once both are given the loss is registered: ``torchlean.LOSSES``, ``torchlean.value_and_deriv``,
the PyTorch criteria, every semantics, Dask and ``torchlean certify`` read it from there.

The three kinds of term (``kind=``):

- ``"elementwise"``: ``value(c, p, t, **params)`` is the per-element term and ``deriv`` its
  derivative w.r.t. that element of ``p``; the loss is their ``reduction`` over all elements:
  ``"mean"`` (``sum / n``, ``n = max(size, 1)``) or ``"sum"``.
- ``"slice"``: the same, but a term may read a whole slice along the last axis (a softmax): the
  terms are still reduced over all elements, and ``p`` needs at least one axis.
- ``"whole"``: ``value`` returns the loss itself (one scalar of the whole tensor) and ``deriv``
  its gradient; ``reduction`` must be ``"none"``.

The context ``c`` is the :class:`~torchlean.spec.core.context.Context`: write branches with
``c.where`` / ``c.lt`` / ``c.maximum`` (never a Python ``if`` on data), constants through
``c.const`` where their exact value matters; parameters arrive as Python floats (checked by
their validators), so a Python ``if`` on a parameter is fine.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from torchlean.errors import ParameterError, ShapeError, fmt_shape
from torchlean.spec.core.context import Context, resolve_context
from torchlean.spec.core.tensor import check_same_shape, mean_denominator, mean_over

__all__ = [
    "HESSIAN_SIGNS",
    "KINDS",
    "REDUCTIONS",
    "Domain",
    "LossDeclaration",
    "Param",
    "Seam",
    "Zone",
    "awaiting_derivative",
    "coordinate",
    "define_loss",
    "register",
    "registered",
    "require_axis",
    "set_value_and_deriv",
    "unregister",
]

KINDS = ("elementwise", "slice", "whole")
#: what a declaration may say of the sign of its second derivative (``hessian_sign``)
HESSIAN_SIGNS = ("positive", "nonnegative", "zero", "any")
REDUCTIONS = ("mean", "sum", "none")
#: what a :class:`Seam` may sit on (see :class:`Seam`)
COORDINATES = ("residual", "predicted", "margin", "norm")

Term = Callable[..., Any]
Shape = tuple[int, ...]
Sampler = Callable[[np.random.Generator, Shape, Mapping[str, Any]], tuple[np.ndarray, np.ndarray]]


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


def real_number(name: str) -> Callable[[Any], float]:
    """A validator: any finite real number (its float64 rounding is what the loss sees)."""
    from torchlean.spec.core.tensor import is_real_number

    def check(value: Any) -> float:
        if not is_real_number(value) or value != value:
            raise ParameterError(f"`{name}` must be a finite real number; got {value!r}")
        try:
            out = float(value)
        except OverflowError:
            out = math.inf
        if not math.isfinite(out):
            raise ParameterError(f"`{name}` must be a finite real number; got {value!r}")
        return out

    return check


@dataclass(frozen=True)
class Param:
    """A keyword parameter: its default, the validator every call runs on it (it returns the
    value the terms see, or raises :class:`~torchlean.errors.ParameterError` naming the
    parameter), and what it means."""

    name: str
    default: Any
    check: Callable[[Any], Any]
    doc: str = ""


# --------------------------------------------------------------------------------------------
# Kinks, zones and domains: data the certifier and the tests turn into points
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seam:
    """Where an elementwise term changes branch: ``coordinate == at(k, params)``.

    ``coordinate`` is ``"residual"`` (``d = p - t``), ``"predicted"`` (``p``), ``"margin"``
    (``t * p``) or ``"norm"`` (``||p||`` of the whole tensor). ``at(k, params)`` gives the place
    in the number system ``k`` (anything with ``const``: a Context, the certifier's 50-digit
    oracle), so that a point built from it lies exactly on the seam of the semantics that
    evaluates it. ``kink``: the value is not differentiable there (a clamp, ``|d|``), and
    ``choice`` says which derivative the declaration takes; ``kink=False`` marks a seam where two
    forms of a smooth function meet (a C1 seam, a change of evaluation form): both one-sided
    derivatives must then agree with the declared one.
    """

    coordinate: str
    at: Callable[[Any, Mapping[str, Any]], Any]
    label: str
    kink: bool = True
    choice: str = ""
    #: the second derivative the declaration takes here, in words. Given, the seam is a kink of
    #: the DERIVATIVE (Huber's ``|d| = delta``, a clamp bound, ``|d|``'s 0): the declared second
    #: derivative must lie between the one-sided derivatives of the derivative term. Empty, the
    #: derivative is smooth across it: both one-sided second derivatives equal the declared one
    second_choice: str = ""

    def location(self, params: Mapping[str, Any]) -> float:
        """The seam's place as a float64 (for sampling around it)."""
        return float(self.at(_FLOATS, params))


class _FloatNumbers:
    """The number system of :meth:`Seam.location`: Python floats."""

    @staticmethod
    def const(value: Any) -> float:
        return float(value)


_FLOATS = _FloatNumbers()


@dataclass(frozen=True)
class Zone:
    """A branch region: ``sample(rng, shape, params) -> (predicted, target)`` float64 arrays
    strictly inside it; ``torch_agrees`` when the PyTorch reference has the same value and
    gradient there."""

    name: str
    sample: Sampler
    torch_agrees: bool = True
    #: ``contains(p, t, params, margin) -> bool array`` (elementwise, or one bool for a whole
    #: loss): strictly inside the region, more than ``margin`` (relative) from its seams;
    #: derived for the regions between seams, optional for declared ones
    contains: Callable[..., Any] | None = None


@dataclass(frozen=True)
class Domain:
    """Where the inputs live.

    ``predicted`` and ``target``: the ranges samples are drawn from; ``labels``: the values a
    target takes when it is a label (hinge's -1 and 1); ``target_lo`` / ``target_hi``: the
    CHECKED domain of the target (a value outside raises
    :class:`~torchlean.errors.DomainError` unless ``check_domain=False``), ``what`` names it in
    the message. ``text`` says it in words, for the docs.
    """

    predicted: tuple[float, float] = (-3.0, 3.0)
    target: tuple[float, float] = (-2.0, 2.0)
    labels: tuple[float, ...] = ()
    target_lo: float | None = None
    target_hi: float | None = None
    what: str = ""
    text: str = "predicted, target: real"
    #: the largest magnitude the float check of ``torchlean certify`` feeds the loss: 1e150 by
    #: default (a term may square its input); a loss evaluated without overflow where its value
    #: is finite may declare up to the largest float
    largest: float = 1e150
    #: the per-sample API (:func:`torchlean.grad_hess`, the boosting adapters) refuses a target
    #: that is not one of ``labels`` (logistic's 0 and 1); the value and derivative accept any
    #: target in the checked range
    only_labels: bool = False

    @property
    def checked(self) -> bool:
        return self.target_lo is not None or self.target_hi is not None

    def fit_targets(self, t: np.ndarray) -> np.ndarray:
        """``t`` moved into the domain: labels in turn, checked bounds by clipping."""
        if self.labels:
            return np.resize(np.asarray(self.labels, dtype=np.float64), np.shape(t))
        lo = -np.inf if self.target_lo is None else self.target_lo
        hi = np.inf if self.target_hi is None else self.target_hi
        return np.clip(t, lo, hi)

    def sample_targets(self, rng: np.random.Generator, shape: Shape) -> np.ndarray:
        """Ordinary targets: labels drawn at random, else uniform in ``target`` (inside the
        checked bounds)."""
        if self.labels:
            return rng.choice(np.asarray(self.labels, dtype=np.float64), size=shape)
        return self.fit_targets(rng.uniform(*self.target, size=shape))


# --------------------------------------------------------------------------------------------
# The declaration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossDeclaration:
    """One loss: every fact about it that the package reads (see the module docstring).

    ``value(predicted, target, **params, ctx=None)`` and ``deriv(...)`` evaluate the loss and
    its derivative w.r.t. ``predicted``; ``value_term`` and ``deriv_term`` are the declared
    terms against the Context.
    """

    name: str
    value_term: Term
    deriv_term: Term
    kind: str = "elementwise"
    reduction: str = "mean"
    #: the keyword parameters, by name, with their validators
    parameters: Mapping[str, Param] = field(default_factory=dict)
    seams: tuple[Seam, ...] = ()
    domain: Domain = field(default_factory=Domain)
    #: explicit branch regions; by default they are derived from the seams and the domain
    zones: tuple[Zone, ...] = ()
    #: ``torch_reference(p, t, **params) -> value`` with PyTorch ops (autograd gives the
    #: gradient), for the losses PyTorch has; ``torch_text`` writes it for the docs
    torch_reference: Callable[..., Any] | None = None
    torch_text: str = ""
    #: by zone name, where the PyTorch reference agrees (value and gradient); default: all
    torch_region: Callable[[str], bool] | None = None
    #: the class name of its PyTorch criterion, where the naming rule of
    #: torchlean.interop.torch cannot derive it from ``name``
    criterion_name: str = ""
    #: the fused kernel, as a lazy "module:attribute" reference (e.g.
    #: "torchlean.kernels.terms:mse") resolved by torchlean.kernels on the first fast call, so
    #: declaring a loss imports neither numba nor torch; it names an elementwise kernel (a scalar
    #: term(p, t, n, *params) -> (value_term, derivative_element) decorated with
    #: torchlean.kernels.kernel.elementwise) or a special one; None: the spec runs
    kernel: Any = None
    #: the names of the two inputs in messages
    arg_names: tuple[str, str] = ("predicted", "target")
    #: the formulas in words, for the docs
    formula: str = ""
    derivative_text: str = ""
    kink_text: str = "none"
    doc: str = ""
    #: the module that declared it ("torchlean" for the package's own)
    origin: str = ""
    #: the second derivative: for an elementwise loss ``second(c, p, t, **params)``, the
    #: derivative of the derivative term w.r.t. that element of ``p`` (per element, unreduced);
    #: for a slice loss the diagonal of each slice's Hessian. None: not declared
    second_term: Term | None = None
    #: a slice loss's Hessian-vector product ``hvp(c, p, t, v, **params)``: each slice's
    #: Hessian (of the unreduced terms) times that slice of ``v``
    hvp_term: Term | None = None
    #: the sign of the second derivative wherever it is finite, on the whole domain: "positive"
    #: (> 0; it may underflow to 0), "nonnegative" (>= 0: 0 on Huber's linear part, outside a
    #: clamp, at a degenerate target), "zero" (0 everywhere: a piecewise-linear value such as
    #: mae, hinge, quantile), "any" (it may be negative); the boosting adapters' Hessian policy
    #: reads it, the certifier checks it
    hessian_sign: str = "any"
    #: the second derivative in words, for the docs
    second_text: str = ""
    #: the fused per-sample (gradient, Hessian) kernel of :func:`torchlean.grad_hess`, a lazy
    #: "module:attribute" reference like ``kernel``; None: the spec runs
    grad_hess_kernel: Any = None
    #: fused JAX forms of the per-example value and the unreduced derivative
    #: (:class:`torchlean.kernels.jax_terms.JaxKernel`), a lazy "module:attribute" reference
    #: read by :mod:`torchlean.interop.jax`; None: the declaration's terms run
    jax_kernel: Any = None

    def __post_init__(self) -> None:
        _validate_declaration(self)

    # -- parameters -----------------------------------------------------------------------------
    @property
    def params(self) -> Mapping[str, Any]:
        """Each parameter's default, by name (``check_domain`` is not listed: it is a switch)."""
        return MappingProxyType({k: p.default for k, p in self.parameters.items()})

    @property
    def torch_equivalent(self) -> str:
        """The PyTorch reference written out (``torch_text``)."""
        return self.torch_text

    @property
    def has_domain_check(self) -> bool:
        """Whether the loss checks its target's domain (and takes ``check_domain``)."""
        return self.domain.checked

    def bind_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check keyword names against this loss's parameters (``ctx`` always passes, and
        ``check_domain`` where the loss checks a domain)."""
        allowed = set(self.parameters) | {"ctx"} | ({"check_domain"} if self.has_domain_check
                                              else set())
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ParameterError(
                f"`{unknown[0]}` is not a parameter of the {self.name} loss; expected one of "
                f"{sorted(allowed)}"
            )
        return dict(params)

    def checked_params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Every parameter, the given value or the default, through its validator."""
        return {k: p.check(given.get(k, p.default)) for k, p in self.parameters.items()}

    # -- evaluation -----------------------------------------------------------------------------
    def value(self, predicted: Any, target: Any, /, *, ctx: Context | Any = None,
              check_domain: bool = True, **params: Any) -> Any:
        """The loss at ``(predicted, target)``."""
        return self.evaluate(True, predicted, target, ctx=ctx, check_domain=check_domain,
                             **params)

    def deriv(self, predicted: Any, target: Any, /, *, ctx: Context | Any = None,
              check_domain: bool = True, **params: Any) -> Any:
        """The derivative of :meth:`value` w.r.t. ``predicted``."""
        return self.evaluate(False, predicted, target, ctx=ctx, check_domain=check_domain,
                             **params)

    def value_and_deriv(self, predicted: Any, target: Any, /, **params: Any) -> tuple[Any, Any]:
        """``(value, derivative)``: one fused pass where a fast path exists for the inputs
        (see :func:`torchlean.value_and_deriv`), else :meth:`value` and :meth:`deriv`."""
        if _VALUE_AND_DERIV_HOOK:
            return _VALUE_AND_DERIV_HOOK[0](self, predicted, target, params)
        kw = self.bind_params(params)
        return self.value(predicted, target, **kw), self.deriv(predicted, target, **kw)

    def evaluate(self, want_value: bool, predicted: Any, target: Any, /, *,
                 ctx: Context | Any = None, check_domain: bool = True,
                 caller: str | None = None, **params: Any) -> Any:
        """The value (``want_value``) or the derivative; ``caller`` names the function in a
        domain error (default: "the <name> loss")."""
        self.bind_params(params)
        prm = self.checked_params(params)
        c, p, t = resolve_context(ctx, predicted, target, self.arg_names)
        shape = check_same_shape(c, p, t, self.arg_names)
        if self.kind == "slice":
            require_axis(c, p, self.arg_names[0])
        t = self._checked_target(c, t, check_domain, caller)
        with c.scope():
            if self.kind == "slice" and 0 in shape:
                # an empty slice has no softmax; the totalized results: 0 and an empty array
                return c.finish_value(c.sum(p)) if want_value else c.finish_deriv(p - t)
            if want_value:
                out = self.value_term(c, p, t, **prm)
                if self.reduction == "mean":
                    out = mean_over(c.sum(out), shape)
                elif self.reduction == "sum":
                    out = c.sum(out)
                return c.finish_value(out)
            if self.kind != "whole" and _takes_n(self.deriv_term):
                # the term divides by n itself (a form that must divide before it multiplies)
                n = mean_denominator(shape) if self.reduction == "mean" else 1
                return c.finish_deriv(self.deriv_term(c, p, t, n=n, **prm))
            g = self.deriv_term(c, p, t, **prm)
            if self.reduction == "mean":
                g = mean_over(g, shape)
            return c.finish_deriv(g)

    # -- second order ---------------------------------------------------------------------------
    @property
    def has_second(self) -> bool:
        """Whether the loss declares its second derivative (a slice loss: the diagonal and the
        Hessian-vector product)."""
        if self.kind == "slice":
            return self.second_term is not None and self.hvp_term is not None
        return self.kind == "elementwise" and self.second_term is not None

    def second(self, predicted: Any, target: Any, /, *, ctx: Context | Any = None,
               check_domain: bool = True, **params: Any) -> Any:
        """The diagonal of the Hessian of :meth:`value` w.r.t. ``predicted`` (for an
        elementwise loss, the whole Hessian: it is diagonal), in the shape of ``predicted``."""
        return self._second_order(predicted, target, None, ctx=ctx, check_domain=check_domain,
                                  params=params)

    def hvp(self, predicted: Any, target: Any, vector: Any, /, *, ctx: Context | Any = None,
            check_domain: bool = True, **params: Any) -> Any:
        """The Hessian of :meth:`value` w.r.t. ``predicted`` times ``vector`` (same shape)."""
        return self._second_order(predicted, target, vector, ctx=ctx,
                                  check_domain=check_domain, params=params)

    def _second_order(self, predicted: Any, target: Any, vector: Any, *, ctx: Any,
                      check_domain: bool, params: Mapping[str, Any]) -> Any:
        if not self.has_second:
            from torchlean.errors import UnsupportedOperationError

            what = ("second derivative (diagonal) and Hessian-vector product"
                    if self.kind == "slice" else "second derivative")
            raise UnsupportedOperationError(
                f"the {self.name} loss declares no {what}"
                + (" (a whole-tensor loss has none)" if self.kind == "whole" else "")
            )
        self.bind_params(params)
        prm = self.checked_params(params)
        c, p, t = resolve_context(ctx, predicted, target, self.arg_names)
        shape = check_same_shape(c, p, t, self.arg_names)
        v = None
        if vector is not None:
            c2, _, v = c.bind(predicted, vector, (self.arg_names[0], "vector"))
            check_same_shape(c2, p, v, (self.arg_names[0], "vector"))
        if self.kind == "slice":
            require_axis(c, p, self.arg_names[0])
        t = self._checked_target(c, t, check_domain, None)
        with c.scope():
            if 0 in shape:
                return c.finish_deriv(p - t)
            if self.kind == "slice" and v is not None:
                h = self.hvp_term(c, p, t, v, **prm)
            else:
                h = self.second_term(c, p, t, **prm)  # type: ignore[misc]
                if v is not None:
                    h = h * v
            if self.reduction == "mean":
                h = mean_over(h, shape)
            return c.finish_deriv(h)

    def _checked_target(self, c: Context, t: Any, check_domain: bool,
                        caller: str | None) -> Any:
        if check_domain and self.domain.checked:
            what = caller or f"the {self.name} loss"
            if self.domain.what:
                what += f" ({self.domain.what})"
            t = c.check_range(t, name=self.arg_names[1], lo=self.domain.target_lo,
                              hi=self.domain.target_hi, what=what)
        return t

    # -- derived data ---------------------------------------------------------------------------
    def region_zones(self) -> tuple[Zone, ...]:
        """The branch regions: the declared ones, else those between the seams."""
        zones = self.zones or _zones_from_seams(self)
        if self.torch_region is None:
            return zones
        return tuple(replace(z, torch_agrees=z.torch_agrees and self.torch_region(z.name))
                     for z in zones)

    def torch_comparable(self, predicted: Any, target: Any, params: Mapping[str, Any] | None = None,
                         margin: float = 2.0**-20) -> bool:
        """Whether the PyTorch reference has this loss's value and gradient at the float64
        inputs: every element strictly inside a region where ``torch_agrees``, more than
        ``margin`` (relative) from a seam (PyTorch may round a bound differently). False where a
        region cannot say (no ``contains``)."""
        prm = dict(self.params) if params is None else {**self.params, **params}
        p, t = np.asarray(predicted, dtype=np.float64), np.asarray(target, dtype=np.float64)
        covered = np.zeros(p.shape, dtype=bool)
        for z in self.region_zones():
            if z.contains is None:
                return False
            if z.torch_agrees:
                covered |= np.asarray(z.contains(p, t, prm, margin), dtype=bool)
        return bool(np.all(covered))

    def with_changes(self, **changes: Any) -> LossDeclaration:
        """A copy with some fields replaced (validated again)."""
        return replace(self, **changes)


@functools.cache
def _takes_n(fn: Term) -> bool:
    """Whether a derivative term takes the mean's denominator as the keyword ``n``."""
    try:
        p = inspect.signature(fn).parameters.get("n")
    except (TypeError, ValueError):
        return False
    return p is not None and p.kind is inspect.Parameter.KEYWORD_ONLY


#: the package's ``value_and_deriv`` (fused paths, autograd), plugged in by torchlean.registry so
#: that this module needs nothing above it
_VALUE_AND_DERIV_HOOK: list[Callable[..., tuple[Any, Any]]] = []


def set_value_and_deriv(fn: Callable[..., tuple[Any, Any]]) -> None:
    """Install ``fn(declaration, predicted, target, params)`` behind
    :meth:`LossDeclaration.value_and_deriv`."""
    _VALUE_AND_DERIV_HOOK[:] = [fn]


def require_axis(c: Context, x: Any, name: str) -> None:
    """A slice loss needs at least one axis."""
    if len(tuple(c.shape(x))) == 0:
        raise ShapeError(
            f"`{name}` must have at least one axis (softmax runs over the last); got shape "
            f"{fmt_shape(())}"
        )


def _validate_declaration(d: LossDeclaration) -> None:
    if not isinstance(d.name, str) or not d.name.isidentifier():
        raise ParameterError(f"`name` must be an identifier (letters, digits, _); got {d.name!r}")
    if not callable(d.value_term):
        raise ParameterError(f"the {d.name} loss must declare its value term as a function; "
                             f"got {d.value_term!r}")
    if not callable(d.deriv_term):
        raise ParameterError(
            f"the {d.name} loss declares no derivative: decorate its derivative term with "
            f"`@{d.name}.deriv` (a loss without a derivative cannot be certified)"
        )
    if d.kind not in KINDS:
        raise ParameterError(f"`kind` must be one of {', '.join(KINDS)}; got {d.kind!r}")
    allowed = ("none",) if d.kind == "whole" else ("mean", "sum")
    if d.reduction not in allowed:
        raise ParameterError(
            f"`reduction` must be one of {', '.join(allowed)} for a {d.kind} loss; got "
            f"{d.reduction!r}"
        )
    for key, p in d.parameters.items():
        if not isinstance(p, Param) or p.name != key or not callable(p.check):
            raise ParameterError(
                f"parameter `{key}` of the {d.name} loss needs a validator: declare it as "
                f"Param({key!r}, default, check) or give a number default"
            )
        if key in ("ctx", "check_domain"):
            raise ParameterError(f"`{key}` is reserved; name the parameter of the {d.name} "
                                 f"loss otherwise")
    if d.hessian_sign not in HESSIAN_SIGNS:
        raise ParameterError(f"`hessian_sign` must be one of {', '.join(HESSIAN_SIGNS)}; got "
                             f"{d.hessian_sign!r}")
    for key in ("second_term", "hvp_term"):
        fn = getattr(d, key)
        if fn is not None and not callable(fn):
            raise ParameterError(f"`{key}` of the {d.name} loss must be a function; got {fn!r}")
    if d.kind == "whole" and (d.second_term is not None or d.hvp_term is not None):
        raise ParameterError(f"the {d.name} loss is a whole-tensor loss: it cannot declare a "
                             f"second derivative term")
    if d.kind == "elementwise" and d.hvp_term is not None:
        raise ParameterError(f"the {d.name} loss is elementwise: its Hessian is diagonal, declare "
                             f"`second` only (no `hvp`)")
    for s in d.seams:
        if s.coordinate not in COORDINATES:
            raise ParameterError(
                f"a seam of the {d.name} loss must sit on one of {', '.join(COORDINATES)}; "
                f"got {s.coordinate!r}"
            )


# --------------------------------------------------------------------------------------------
# Zones derived from the seams
# --------------------------------------------------------------------------------------------

#: how far inside a region samples stay from its seams, relative to the region's width
_MARGIN = 0.05


def _zones_from_seams(d: LossDeclaration) -> tuple[Zone, ...]:
    coords = {s.coordinate for s in d.seams}
    if not coords:
        return (Zone("anywhere", _uniform_sampler(d.domain), contains=_everywhere),)
    if len(coords) > 1 or "norm" in coords:
        raise ParameterError(
            f"the {d.name} loss has seams on {sorted(coords)}: declare its `zones` explicitly"
        )
    (coord,) = coords
    return tuple(_coordinate_zones(d, coord))


def _coordinate_zones(d: LossDeclaration, coord: str) -> list[Zone]:
    def cuts(params: Mapping[str, Any]) -> list[float]:
        return sorted({s.location(params) for s in d.seams})

    def region(i: int) -> Sampler:
        def sample(rng: np.random.Generator, shape: Shape,
                   params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
            c = cuts(params)
            lo_dom, hi_dom = _coordinate_range(d.domain, coord, c)
            edges = [lo_dom, *c, hi_dom]
            lo, hi = edges[i], edges[i + 1]
            pad = _MARGIN * (hi - lo)
            v = rng.uniform(lo + pad, hi - pad, size=shape)
            return _place(d.domain, coord, v, rng, shape)

        return sample

    def inside(i: int) -> Callable[..., Any]:
        def contains(p: np.ndarray, t: np.ndarray, params: Mapping[str, Any],
                     margin: float) -> np.ndarray:
            c = cuts(params)
            edges = [-math.inf, *c, math.inf]
            lo, hi = edges[i], edges[i + 1]
            v = coordinate(coord, p, t)
            with np.errstate(invalid="ignore"):
                return ((v > lo + margin * max(abs(lo), 1e-300) if lo > -math.inf else v == v)
                        & (v < hi - margin * max(abs(hi), 1e-300) if hi < math.inf else v == v))

        return contains

    count = len({s.label for s in d.seams}) + 1
    names = _region_names(d, coord)
    return [Zone(names[i] if i < len(names) else f"region {i}", region(i), contains=inside(i))
            for i in range(count)]


def coordinate(coord: str, p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The value of a seam coordinate at float inputs (``"norm"``: of the whole tensor)."""
    if coord == "residual":
        return p - t
    if coord == "predicted":
        return p
    if coord == "margin":
        return t * p
    return np.asarray(np.linalg.norm(p.ravel()))


def _everywhere(p: np.ndarray, t: np.ndarray, params: Mapping[str, Any],
                margin: float) -> np.ndarray:
    return np.ones(np.shape(p), dtype=bool)


def _region_names(d: LossDeclaration, coord: str) -> list[str]:
    sym = {"residual": "d", "predicted": "p", "margin": "t p"}[coord]
    seams = sorted(d.seams, key=lambda s: s.location(d.params))
    if not seams:
        return []
    out = [f"{sym} < {seams[0].label.split('=')[-1].strip()}"]
    for a, b in itertools.pairwise(seams):
        out.append(f"{a.label.split('=')[-1].strip()} < {sym} < "
                   f"{b.label.split('=')[-1].strip()}")
    out.append(f"{sym} > {seams[-1].label.split('=')[-1].strip()}")
    return out


def _coordinate_range(dom: Domain, coord: str, cuts: list[float]) -> tuple[float, float]:
    lo, hi = dom.predicted if coord in ("predicted", "margin") else (-3.0, 3.0)
    if cuts:
        width = max(hi - lo, cuts[-1] - cuts[0], 1.0)
        lo, hi = min(lo, cuts[0] - width / 2), max(hi, cuts[-1] + width / 2)
    return lo, hi


def _place(dom: Domain, coord: str, v: np.ndarray, rng: np.random.Generator,
           shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    """``(p, t)`` whose ``coord`` is ``v``."""
    if coord == "residual":
        t = dom.sample_targets(rng, shape)
        return t + v, t
    if coord == "predicted":
        return v, dom.sample_targets(rng, shape)
    # margin t p = v: a target away from 0
    t = dom.sample_targets(rng, shape)
    t = np.where(np.abs(t) < 0.25, np.copysign(0.25, t) + (t == 0) * 0.25, t)
    return v / t, t


def _uniform_sampler(dom: Domain) -> Sampler:
    def sample(rng: np.random.Generator, shape: Shape,
               params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        return rng.uniform(*dom.predicted, size=shape), dom.sample_targets(rng, shape)

    return sample


# --------------------------------------------------------------------------------------------
# The registry and the decorator
# --------------------------------------------------------------------------------------------

_REGISTRY: dict[str, LossDeclaration] = {}
_LOCK = threading.Lock()
#: every loss by name (a read-only view that follows registrations)
REGISTRY: Mapping[str, LossDeclaration] = MappingProxyType(_REGISTRY)


def register(decl: LossDeclaration, *, replace_existing: bool = False) -> LossDeclaration:
    """Add ``decl`` to the registry; a name taken by another loss is refused (a user loss may
    replace an earlier user loss of its own module of the same name, as a re-import does)."""
    with _LOCK:
        old = _REGISTRY.get(decl.name)
        if old is not None and not replace_existing and not (
                old.origin == decl.origin and old.origin != "torchlean"):
            owner = "a loss of the package" if old.origin == "torchlean" else \
                f"a loss declared in {old.origin}"
            raise ParameterError(
                f"`name` {decl.name!r} is taken by {owner}; choose another name"
            )
        _REGISTRY[decl.name] = decl
    return decl


def registered(name: str) -> LossDeclaration | None:
    """The declaration registered as ``name``, or None."""
    return _REGISTRY.get(name)


def unregister(name: str) -> LossDeclaration | None:
    """Remove a user's loss from the registry (the package's own cannot be removed); return it,
    or None when no such loss was registered."""
    with _LOCK:
        decl = _REGISTRY.get(name)
        if decl is not None and decl.origin == "torchlean":
            raise ParameterError(f"`name` {name!r} is a loss of the package; it cannot be "
                                 f"unregistered")
        return _REGISTRY.pop(name, None)


def _as_params(name: str, params: Mapping[str, Any] | Iterable[Param] | None) -> dict[str, Param]:
    out: dict[str, Param] = {}
    items: Iterable[tuple[str, Any]]
    if params is None:
        items = ()
    elif isinstance(params, Mapping):
        items = params.items()
    else:
        items = ((p.name, p) for p in params)
    for key, spec in items:
        if isinstance(spec, Param):
            out[key] = spec
        elif isinstance(spec, bool) or not isinstance(spec, int | float):
            raise ParameterError(
                f"parameter `{key}` of the {name} loss needs a validator: give a number "
                f"default (any finite real is then accepted) or Param({key!r}, default, check); "
                f"got {spec!r}"
            )
        else:
            out[key] = Param(key, float(spec), real_number(key))
    return out


class _Pending:
    """What ``@define_loss`` returns: ``.deriv`` declares and registers the loss; afterwards the
    object stands for the declaration (``loss.value(p, t)``, ``loss.name``, ...)."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = fields
        self._decl: LossDeclaration | None = None
        self.name = fields["name"]

    def deriv(self, fn: Term) -> LossDeclaration:
        """Decorate the derivative term; the loss is then declared and registered."""
        if self._decl is not None:
            raise ParameterError(f"the {self.name} loss already has a derivative")
        self._decl = register(LossDeclaration(deriv_term=fn, **self._fields))
        return self._decl

    def second(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Decorate the second-derivative term (elementwise: per element; slice: each slice's
        Hessian diagonal); the registered declaration is replaced by one that has it. Called
        with arrays instead, it is the declaration's :meth:`LossDeclaration.second`."""
        if callable(fn) and not args and not kwargs:
            return self._add("second_term", fn)
        return self.declaration.second(fn, *args, **kwargs)

    def hvp(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Decorate a slice loss's Hessian-vector product term ``hvp(c, p, t, v, **params)``;
        called with arrays, the declaration's :meth:`LossDeclaration.hvp`."""
        if callable(fn) and not args and not kwargs:
            return self._add("hvp_term", fn)
        return self.declaration.hvp(fn, *args, **kwargs)

    def _add(self, key: str, fn: Term) -> LossDeclaration:
        if key in self._fields and self._fields[key] is not None:
            raise ParameterError(f"the {self.name} loss already declares `{key}`")
        self._fields[key] = fn
        if self._decl is not None:
            self._decl = register(self._decl.with_changes(**{key: fn}), replace_existing=True)
            return self._decl
        LossDeclaration(deriv_term=_placeholder, **self._fields)  # validated now
        return self  # type: ignore[return-value]

    @property
    def declaration(self) -> LossDeclaration:
        if self._decl is None:
            raise ParameterError(
                f"the {self.name} loss declares no derivative yet: decorate its derivative "
                f"term with `@{self.name}.deriv`"
            )
        return self._decl

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(self.declaration, attr)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # the decorated name is the loss, not its value term: say what is missing or what to call
        decl = self.declaration
        raise ParameterError(
            f"the {decl.name} loss is a declaration, not a function: call "
            f"`{decl.name}.value(predicted, target)` or `torchlean.value_and_deriv({decl.name!r}, "
            f"predicted, target)`"
        )

    def __repr__(self) -> str:
        if self._decl is None:
            return f"<loss {self.name!r} awaiting its derivative>"
        return f"<loss {self.name!r}>"


def awaiting_derivative(namespace: Mapping[str, Any]) -> list[str]:
    """The names of the losses in ``namespace`` (a module's ``vars()``) declared with
    ``@define_loss`` but never given their derivative (``@<loss>.deriv``): nothing was
    registered for them."""
    return [v.name for v in namespace.values() if isinstance(v, _Pending) and v._decl is None]


def define_loss(name: str, *, params: Mapping[str, Any] | Iterable[Param] | None = None,
                reduction: str | None = None, kind: str = "elementwise",
                seams: Iterable[Seam] = (), domain: Domain | None = None,
                zones: Iterable[Zone] = (), torch_reference: Callable[..., Any] | None = None,
                torch_text: str = "", torch_region: Callable[[str], bool] | None = None,
                criterion_name: str = "", kernel: Any = None,
                arg_names: tuple[str, str] = ("predicted", "target"), formula: str = "",
                derivative_text: str = "", kink_text: str = "",
                deriv: Term | None = None, second: Term | None = None,
                hvp: Term | None = None, hessian_sign: str = "any",
                second_text: str = "", grad_hess_kernel: Any = None,
                jax_kernel: Any = None) -> Callable[[Term], Any]:
    """Declare a loss from its value term (the decorated function).

    ``params``: ``{"delta": 1.0}`` (a number default: any finite real accepted) or
    :class:`Param` objects with their own validator. ``reduction``: ``"mean"`` (default) or
    ``"sum"`` for elementwise and slice terms, ``"none"`` for a ``"whole"`` loss. ``seams``: the
    kinks and clamp boundaries (:class:`Seam`); ``domain``: the inputs' ranges and the checked
    target domain (:class:`Domain`); ``zones``: branch regions when the seams cannot say them;
    ``torch_reference(p, t, **params)``: the same value with PyTorch ops. The derivative comes
    from ``@<loss>.deriv`` (or ``deriv=``); until then nothing is registered. Malformed
    declarations raise :class:`~torchlean.errors.ParameterError` here, not at the first call.
    """
    if reduction is None:
        reduction = "none" if kind == "whole" else "mean"
    prm = _as_params(name, params)
    seams_t = tuple(seams)
    decl_seams_text = kink_text or ("; ".join(
        f"{s.label}: {s.choice}" if s.choice else s.label for s in seams_t if s.kink) or "none")

    def decorate(fn: Term) -> Any:
        module = getattr(inspect.getmodule(fn), "__name__", "") or ""
        origin = "torchlean" if module.split(".")[0] == "torchlean" else module
        fields = {
            "name": name, "value_term": fn, "kind": kind, "reduction": reduction,
            "parameters": MappingProxyType(prm), "seams": seams_t, "domain": domain or Domain(),
            "zones": tuple(zones), "torch_reference": torch_reference, "torch_text": torch_text,
            "torch_region": torch_region, "criterion_name": criterion_name,
            "kernel": kernel, "arg_names": arg_names, "formula": formula,
            "derivative_text": derivative_text, "kink_text": decl_seams_text,
            "doc": inspect.getdoc(fn) or "",
            "origin": origin, "second_term": second, "hvp_term": hvp,
            "hessian_sign": hessian_sign, "second_text": second_text,
            "grad_hess_kernel": grad_hess_kernel, "jax_kernel": jax_kernel,
        }
        # a dry validation now, so a bad kind, reduction or seam is refused at declaration time
        LossDeclaration(deriv_term=_placeholder, **fields)
        pending = _Pending(fields)
        if deriv is not None:
            return pending.deriv(deriv)
        return pending

    return decorate


def _placeholder(*_: Any, **__: Any) -> Any:  # pragma: no cover - never called
    raise AssertionError("placeholder derivative")
