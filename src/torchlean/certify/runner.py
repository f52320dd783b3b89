"""``run``: every check of every loss of the registry, with a progress bar."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterable, Mapping
from numbers import Integral
from typing import Any

from torchlean.certify.common import declaration
from torchlean.certify.floats import check_floats
from torchlean.certify.frameworks import check_frameworks
from torchlean.certify.hessian import check_hessian
from torchlean.certify.intervals import check_intervals
from torchlean.certify.kinks import check_kinks
from torchlean.certify.result import SECOND_CHECKS, CheckResult, LossReport, Report
from torchlean.certify.second import row_name, second_order
from torchlean.certify.symbolic import check_symbolic
from torchlean.spec.core.declaration import LossDeclaration

__all__ = ["CHECK_FUNCTIONS", "DEFAULT_POINTS", "SECOND_CHECK_FUNCTIONS", "SECOND_POINTS", "run",
           "validate_points", "validate_seed"]

Check = Callable[..., CheckResult]

#: the check functions, by report column
CHECK_FUNCTIONS: dict[str, Check] = {
    "symbolic": check_symbolic,
    "kinks": check_kinks,
    "intervals": check_intervals,
    "floats": check_floats,
    "frameworks": check_frameworks,
}

#: the ``points`` argument of each check in a full run (see each check's docstring)
DEFAULT_POINTS = {"symbolic": 3, "kinks": 3, "intervals": 8, "floats": 8, "frameworks": 8}


def _on_second_order(check: Check, **options: Any) -> Check:
    """``check`` run on the second-order declaration (torchlean.certify.second)."""
    def second(decl: LossDeclaration, value_fn: Any, deriv_fn: Any, *, points: int,
               seed: int) -> CheckResult:
        return check(second_order(decl), points=points, seed=seed, **options)

    second.__name__ = check.__name__
    return second


#: the checks of a loss's second-order row, by report column: the five on its second-order
#: declaration (kink quotients beside the point, the derivative term may jump there; floats
#: and PyTorch on the second derivative alone), and the Hessian's own check
SECOND_CHECK_FUNCTIONS: dict[str, Check] = {
    "symbolic": _on_second_order(check_symbolic),
    "kinks": _on_second_order(check_kinks, beside=True),
    "intervals": _on_second_order(check_intervals),
    "floats": _on_second_order(check_floats, value=False),
    "frameworks": _on_second_order(check_frameworks, value=False),
    "hessian": check_hessian,
}

#: the default ``points`` of the second-order checks (fewer: a full run stays fast)
SECOND_POINTS = {"symbolic": 2, "kinks": 2, "intervals": 4, "floats": 4, "frameworks": 4,
                 "hessian": 4}


def run(losses: Iterable[str | LossDeclaration] | None = None, *, points: int | None = None,
        seed: int = 0,
        checks: Iterable[str] = SECOND_CHECKS,
        pairs: Mapping[str, tuple[Callable[..., Any] | None, Callable[..., Any] | None]]
        | None = None, progress: bool = False, second: bool = True) -> Report:
    """Certify the losses ``losses``, registered names or declarations (default: every loss of
    ``torchlean.LOSSES``), and the second derivative of each that declares one (``second``;
    its row is ``LossReport.second``, with the ``hessian`` check besides the five).

    ``points`` (a positive integer) replaces every check's default sample count (smaller is
    faster); ``seed`` is a non-negative integer; ``pairs`` maps a loss name to a
    ``(value_fn, deriv_fn)`` pair that replaces its spec functions (None keeps one);
    ``progress`` shows a rich progress bar; ``pairs`` replace the first-order terms only. A
    check that raises (a term that raises inside a
    context, say) is reported as FAIL with the exception, and the others go on. Every argument
    is checked before any check runs (ParameterError).
    """
    from torchlean.errors import ParameterError
    from torchlean.registry import LOSSES

    validate_points(points)
    validate_seed(seed)
    decls = list(LOSSES.values()) if losses is None else [declaration(x) for x in losses]
    checks = list(checks)
    for c in checks:
        if c not in SECOND_CHECK_FUNCTIONS:
            raise ParameterError(f"`checks` must name some of {', '.join(SECOND_CHECKS)}; got "
                                 f"{c!r}")
    start = time.perf_counter()
    reports = []
    jobs: list[tuple[LossDeclaration, LossReport, str, Check, int, tuple[Any, Any]]] = []
    for d in decls:
        first = LossReport(d.name, dict(d.params))
        reports.append(first)
        pair = (pairs or {}).get(d.name, (None, None))
        jobs += [(d, first, c, CHECK_FUNCTIONS[c], DEFAULT_POINTS[c], pair)
                 for c in checks if c in CHECK_FUNCTIONS]
        if second and d.has_second:
            first.second = LossReport(row_name(d.name), dict(d.params))
            jobs += [(d, first.second, c, SECOND_CHECK_FUNCTIONS[c], SECOND_POINTS[c],
                      (None, None)) for c in checks]
    with _progress(progress, len(jobs)) as advance:
        for decl, report, check, fn, default, (value_fn, deriv_fn) in jobs:
            advance(f"{report.loss}: {check}")
            report.checks[check] = _timed(fn, decl, value_fn, deriv_fn,
                                          default if points is None else points, seed)
        advance("done")
    return Report(reports, {"points": points, "seed": seed, "checks": checks, "second": second},
                  _environment(), time.perf_counter() - start)


def validate_points(points: object) -> None:
    """``points`` is None (each check's default) or a positive integer; else ParameterError."""
    from torchlean.errors import ParameterError

    if points is None:
        return
    if isinstance(points, bool) or not isinstance(points, Integral) or points < 1:
        raise ParameterError(f"`points` must be a positive integer; got {points!r}")


def validate_seed(seed: object) -> None:
    """``seed`` is an integer NumPy's ``default_rng`` accepts (non-negative); else
    ParameterError."""
    from torchlean.errors import ParameterError

    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ParameterError(f"`seed` must be a non-negative integer; got {seed!r}")


def _timed(fn: Check, decl: LossDeclaration, value_fn: Any, deriv_fn: Any, points: int,
           seed: int) -> CheckResult:
    t0 = time.perf_counter()
    try:
        result = fn(decl, value_fn, deriv_fn, points=points, seed=seed)
    except Exception as exc:  # a crash is a failed check, shown with its cause
        where = _raised_in(exc)
        text = f"{type(exc).__name__}: {exc}"
        result = CheckResult(fn.__name__.removeprefix("check_"), "FAIL",
                             f"raised {text}"[:200],
                             failures=[{"case": f"raised {text}"[:300], "error": repr(exc),
                                        **({"raised_in": where} if where else {})}],
                             n_failures=1)
    result.seconds = time.perf_counter() - t0
    return result


def _raised_in(exc: BaseException) -> str:
    """``file:line in function`` of the innermost frame outside torchlean, the libraries and
    the standard library (a user's term, where it raised), or ""."""
    import sysconfig
    import traceback
    from pathlib import Path

    import torchlean

    skip = (str(Path(torchlean.__file__).parent), sysconfig.get_paths()["stdlib"],
            sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"])
    for f in reversed(traceback.extract_tb(exc.__traceback__)):
        if not f.filename.startswith(skip) and not f.filename.startswith("<"):
            return f"{f.filename}:{f.lineno} in {f.name}"
    return ""


class _progress:
    """A rich progress bar on stderr (or nothing); ``advance(label)`` moves it one step. It
    fits an 80-column terminal and is erased when the run ends (the table follows on stdout)."""

    def __init__(self, show: bool, total: int) -> None:
        self.show, self.total = show, total
        self.bar: Any = None
        self.task: Any = None
        self.started = False

    def __enter__(self) -> Callable[[str], None]:
        if self.show:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(bar_width=20),
                                MofNCompleteColumn(), TimeElapsedColumn(),
                                console=Console(stderr=True), transient=True)
            self.bar.__enter__()
            self.task = self.bar.add_task("certify", total=self.total)
        return self.advance

    def advance(self, label: str) -> None:
        if self.bar is None:
            return
        if self.started:
            self.bar.advance(self.task)
        self.started = True
        # a fixed width keeps the bar still; long names are cut (the table has them whole)
        self.bar.update(self.task, description=f"{label[:_LABEL]:<{_LABEL}}")

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


#: the width of the progress bar's label: with the bar (20), the count and the time, 75 columns
_LABEL = 36


def _environment() -> dict[str, str]:
    import importlib.metadata as md

    env = {"python": platform.python_version()}
    for pkg in ("torchlean", "numpy", "sympy", "mpmath", "python-flint", "torch"):
        try:
            env[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            env[pkg] = "not installed"
    return env
