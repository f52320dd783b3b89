"""What a check returns: a status, a one-line summary, key figures and the failing cases.

A certificate is never vacuous: every check says how many things it examined (points,
identities, coordinates, float runs), and a check that examined nothing FAILS, whatever the
reason. A SKIP (a check that does not apply, with its reason) is neither a pass nor a failure,
but a loss whose checks were all skipped is not certified.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["CHECKS", "FAIL", "PASS", "SECOND_CHECKS", "SKIP", "CheckResult", "LossReport", "Report",
           "how_much", "where"]

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"

#: The five checks, in the order of the report's columns.
CHECKS = ("symbolic", "kinks", "intervals", "floats", "frameworks")
#: The checks of a second-order row: the five, run on the second-order declaration
#: (torchlean.certify.second), and the Hessian's own (sign claim; slice: H v and diagonal).
SECOND_CHECKS = (*CHECKS, "hessian")

#: At most this many failing cases are kept per check (the count is always exact).
MAX_FAILURES = 20


@dataclass
class CheckResult:
    """The outcome of one check of one loss.

    ``figures`` holds the numbers behind the verdict (points checked, max ulps, ...);
    ``failures`` describes the first failing cases, each a dict with at least ``case``;
    ``examined`` counts what the check looked at, in ``unit``s. A PASS that examined nothing
    is turned into a FAIL on construction ("examined no points").
    """

    check: str
    status: str
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    n_failures: int = 0
    seconds: float = 0.0
    examined: int = 0
    unit: str = "points"

    def __post_init__(self) -> None:
        if self.status == PASS and self.examined <= 0:
            # no counterexample among no cases proves nothing
            reason = f"examined no {self.unit}"
            self.status = FAIL
            self.summary = f"{reason} ({self.summary})" if self.summary else reason
            self.failures = [{"case": reason}, *self.failures][:MAX_FAILURES]
            self.n_failures += 1

    @property
    def passed(self) -> bool:
        """Examined something and found no failing case."""
        return self.status == PASS and self.examined > 0

    @property
    def ok(self) -> bool:
        """Not a failure: passed, or skipped (does not apply here)."""
        return self.passed or self.status == SKIP


class Collector:
    """Accumulates failing cases while a check runs (keeps the first few, counts all)."""

    def __init__(self) -> None:
        self.failures: list[dict[str, Any]] = []
        self.count = 0

    def fail(self, case: str, **details: Any) -> None:
        self.count += 1
        if len(self.failures) < MAX_FAILURES:
            self.failures.append({"case": case, **{k: _plain(v) for k, v in details.items()}})

    def result(self, check: str, summary: str, figures: dict[str, Any] | None = None, *,
               examined: int, unit: str = "points") -> CheckResult:
        """The verdict: FAIL with a failing case, or when ``examined`` (what the check looked
        at, counted in ``unit``) is 0; PASS otherwise."""
        return CheckResult(check, FAIL if self.count else PASS, summary,
                           {k: _plain(v) for k, v in (figures or {}).items()},
                           self.failures, self.count, examined=int(examined), unit=unit)


def skipped(check: str, reason: str) -> CheckResult:
    """A check that could not run, with the reason shown in the report."""
    return CheckResult(check, SKIP, reason)


@dataclass
class LossReport:
    """Every check of one loss; ``second``: those of its second derivative, where it declares
    one (a row of its own, labelled ``<loss> (2nd)``)."""

    loss: str
    params: dict[str, Any]
    checks: dict[str, CheckResult] = field(default_factory=dict)
    second: LossReport | None = None

    @property
    def ok(self) -> bool:
        """No check failed and at least one passed (skips alone certify nothing), in this row
        and in the second-order row."""
        checks = self.checks.values()
        return (all(c.ok for c in checks) and any(c.passed for c in checks)
                and (self.second is None or self.second.ok))

    def rows(self) -> list[LossReport]:
        """This row, then the second-order row where there is one."""
        return [self] if self.second is None else [self, self.second]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "loss": self.loss, "params": self.params, "ok": self.ok,
            "checks": {k: {**asdict(c), "seconds": round(c.seconds, 3)}
                       for k, c in self.checks.items()}}
        if self.second is not None:
            out["second"] = self.second.to_dict()
        return out


@dataclass
class Report:
    """The whole certification: one :class:`LossReport` per loss."""

    losses: list[LossReport]
    settings: dict[str, Any]
    environment: dict[str, str]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when there is a loss, no check failed and every loss has a passing check."""
        return bool(self.losses) and all(r.ok for r in self.losses)

    @property
    def verdict(self) -> str:
        """One line: why the report is or is not ok."""
        if not self.losses:
            return "nothing certified: no loss was checked"
        rows = [row for r in self.losses for row in r.rows()]
        results = [c for r in rows for c in r.checks.values()]
        failed = sum(not c.ok for c in results)
        skipped = sum(c.status == SKIP for c in results)
        bare = [r.loss for r in rows if not any(c.passed for c in r.checks.values())]
        if failed:
            return f"{failed} of {len(results)} checks failed"
        if bare:
            return f"nothing certified for {', '.join(bare)}: no check ran and passed"
        return "all checks passed" + (f" ({skipped} skipped)" if skipped else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "verdict": self.verdict,
            "seconds": round(self.seconds, 3),
            "settings": self.settings,
            "environment": self.environment,
            "losses": [r.to_dict() for r in self.losses],
        }


#: at most this many elements of an input are shown in a failure line
SHOWN = 6


def where(failure: dict[str, Any]) -> str:
    """The counterexample point of a failing case, shortened (``""`` when it has none)."""
    return ", ".join(f"{k}={_short(failure[k])}" for k in ("predicted", "target")
                     if k in failure)


def how_much(failure: dict[str, Any]) -> str:
    """By how much a failing case misses (ulps, difference, relative error), in words."""
    f = failure
    if "ulps" in f:
        return f"{_g(f['ulps'])} ulps (threshold {_g(f.get('threshold'))})"
    if "derivative_of_value" in f:
        return (f"declared derivative {_g(f['derivative_spec'])}, d value / d p "
                f"{_g(f['derivative_of_value'])}: difference {_g(f.get('difference'))}, "
                f"relative {_g(f.get('relative_error'))}")
    if "left" in f:
        return (f"declared derivative {_g(f['derivative'])}, one-sided derivatives "
                f"{_g(f['left'])} (left) and {_g(f['right'])} (right): off by "
                f"{_g(f.get('difference'))}, relative {_g(f.get('relative_error'))}")
    if "lo" in f:
        return (f"exact {_g(f['exact'])} outside [{_g(f['lo'])}, {_g(f['hi'])}] by "
                f"{_g(f.get('difference'))}")
    if "relative_error" in f:
        return (f"relative error {_g(f['relative_error'])}, difference "
                f"{_g(f.get('difference'))}")
    return ""


def _g(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, int | float) and not isinstance(v, bool) else str(v)


def _short(values: Any) -> str:
    if not isinstance(values, list):
        return _g(values)
    flat: list[Any] = []
    stack = [values]
    while stack:  # flatten nested lists, in order
        x = stack.pop()
        if isinstance(x, list):
            stack.extend(reversed(x))
        else:
            flat.append(x)
    shown = ", ".join(_g(v) for v in flat[:SHOWN])
    return f"[{shown}{', ...' if len(flat) > SHOWN else ''}]"


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
