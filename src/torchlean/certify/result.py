"""What a check returns: a status, a one-line summary, key figures and the failing cases."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["CHECKS", "FAIL", "PASS", "SKIP", "CheckResult", "LossReport", "Report"]

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"

#: The five checks, in the order of the report's columns.
CHECKS = ("symbolic", "kinks", "intervals", "floats", "frameworks")

#: At most this many failing cases are kept per check (the count is always exact).
MAX_FAILURES = 20


@dataclass
class CheckResult:
    """The outcome of one check of one loss.

    ``figures`` holds the numbers behind the verdict (points checked, max ulps, ...);
    ``failures`` describes the first failing cases, each a dict with at least ``case``.
    """

    check: str
    status: str
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    n_failures: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != FAIL


class Collector:
    """Accumulates failing cases while a check runs (keeps the first few, counts all)."""

    def __init__(self) -> None:
        self.failures: list[dict[str, Any]] = []
        self.count = 0

    def fail(self, case: str, **details: Any) -> None:
        self.count += 1
        if len(self.failures) < MAX_FAILURES:
            self.failures.append({"case": case, **{k: _plain(v) for k, v in details.items()}})

    def result(self, check: str, summary: str,
               figures: dict[str, Any] | None = None) -> CheckResult:
        return CheckResult(check, FAIL if self.count else PASS, summary,
                           {k: _plain(v) for k, v in (figures or {}).items()},
                           self.failures, self.count)


def skipped(check: str, reason: str) -> CheckResult:
    """A check that could not run, with the reason shown in the report."""
    return CheckResult(check, SKIP, reason)


@dataclass
class LossReport:
    """Every check of one loss."""

    loss: str
    params: dict[str, Any]
    checks: dict[str, CheckResult] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks.values())


@dataclass
class Report:
    """The whole certification: one :class:`LossReport` per loss."""

    losses: list[LossReport]
    settings: dict[str, Any]
    environment: dict[str, str]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no check failed (a skipped check is not a failure)."""
        return all(r.ok for r in self.losses)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "settings": self.settings,
            "environment": self.environment,
            "losses": [
                {"loss": r.loss, "params": r.params, "ok": r.ok,
                 "checks": {k: {**asdict(c), "seconds": round(c.seconds, 3)}
                            for k, c in r.checks.items()}}
                for r in self.losses
            ],
        }


def _plain(v: Any) -> Any:
    """A JSON-friendly copy: numbers stay numbers, everything else becomes text."""
    if isinstance(v, bool | int | str) or v is None:
        return v
    if isinstance(v, float):
        return v if v == v and abs(v) != float("inf") else str(v)
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    try:
        import numpy as np

        if isinstance(v, np.ndarray):
            return _plain(v.tolist())
        if isinstance(v, np.generic):
            return _plain(v.item())
    except ImportError:  # pragma: no cover
        pass
    return str(v)
