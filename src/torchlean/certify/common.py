"""What every check shares: the loss under test, and the time box for slow steps."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from torchlean.certify.plans import Plan, plan_for

__all__ = ["Subject", "subject", "time_boxed"]

T = TypeVar("T")


@dataclass(frozen=True)
class Subject:
    """A (value, derivative) pair under test, with the loss whose plan says where to look.

    ``value`` and ``deriv`` are called as ``fn(predicted, target, ctx=..., **params)``; by
    default they are the registry's spec functions, but any pair written against the Context
    may be certified (the tests hand in deliberately wrong derivatives).
    """

    name: str
    value: Callable[..., Any]
    deriv: Callable[..., Any]
    plan: Plan
    params: Mapping[str, Any] = field(default_factory=dict)
    #: the registry's PyTorch expression with the same value ("" when none)
    torch_equivalent: str = ""
    #: the spec takes ``check_domain`` (the certifier turns it off: it samples on purpose)
    has_domain_check: bool = False

    @property
    def call_params(self) -> dict[str, Any]:
        """The keyword arguments of every call of ``value`` and ``deriv``."""
        extra = {"check_domain": False} if self.has_domain_check else {}
        return {**self.params, **extra}


def subject(name: str, value_fn: Callable[..., Any] | None = None,
            deriv_fn: Callable[..., Any] | None = None,
            params: Mapping[str, Any] | None = None) -> Subject:
    """The subject of the registered loss ``name``; ``value_fn`` / ``deriv_fn`` replace the
    spec functions and ``params`` the default parameters."""
    from torchlean.registry import get_loss

    entry = get_loss(name)
    return Subject(name, value_fn or entry.value, deriv_fn or entry.deriv, plan_for(name),
                   {**entry.params, **(params or {})}, entry.torch_equivalent,
                   entry.has_domain_check)


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
