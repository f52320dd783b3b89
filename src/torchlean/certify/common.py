"""What every check shares: the loss under test, and the time box for slow steps."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from torchlean.certify.plans import Plan
from torchlean.spec.core.declaration import LossDeclaration

__all__ = ["Loss", "Subject", "declaration", "subject", "time_boxed"]

T = TypeVar("T")

#: what the checks accept: a registered loss's name, or a declaration
Loss = str | LossDeclaration


@dataclass(frozen=True)
class Subject:
    """A (value, derivative) pair under test, with the declaration that says where to look.

    ``value`` and ``deriv`` are called as ``fn(predicted, target, ctx=..., **params)``; by
    default they evaluate the declaration, but any pair written against the Context may be
    certified (the tests hand in deliberately wrong derivatives).
    """

    decl: LossDeclaration
    value: Callable[..., Any]
    deriv: Callable[..., Any]
    plan: Plan
    params: Mapping[str, Any] = field(default_factory=dict)
    #: the pair takes ``check_domain`` (the certifier turns it off: it samples on purpose)
    has_domain_check: bool = False

    @property
    def name(self) -> str:
        return self.decl.name

    @property
    def call_params(self) -> dict[str, Any]:
        """The keyword arguments of every call of ``value`` and ``deriv``."""
        extra = {"check_domain": False} if self.has_domain_check else {}
        return {**self.params, **extra}


def declaration(loss: Loss) -> LossDeclaration:
    """The declaration itself, or the registered one of that name (ParameterError if none)."""
    if isinstance(loss, LossDeclaration):
        return loss
    from torchlean.registry import get_loss

    return get_loss(loss)


def subject(loss: Loss, value_fn: Callable[..., Any] | None = None,
            deriv_fn: Callable[..., Any] | None = None,
            params: Mapping[str, Any] | None = None) -> Subject:
    """The subject of a declaration (or of the registered loss of that name); ``value_fn`` /
    ``deriv_fn`` replace its evaluation and ``params`` its default parameters (checked by the
    declaration's validators)."""
    decl = declaration(loss)
    prm = decl.checked_params({**decl.params, **(params or {})})
    return Subject(decl, value_fn or decl.value, deriv_fn or decl.deriv, Plan.of(decl), prm,
                   decl.has_domain_check)


class _Timeout(Exception):
    pass


def time_boxed(fn: Callable[[], T], seconds: float) -> tuple[bool, T | None]:
    """``(True, fn())``, or ``(False, None)`` when ``fn`` runs longer than ``seconds``.

    Uses a real-time alarm, so it only interrupts in the main thread; elsewhere ``fn`` is not
    run at all (the caller falls back to a bounded method).
    """
    if threading.current_thread() is not threading.main_thread():
        return False, None

    def on_alarm(signum: int, frame: Any) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return True, fn()
    except _Timeout:
        return False, None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
