"""``torchlean certify``: the checks pass on the specs and catch deliberately wrong derivatives.

The wrong derivatives below exist only to be caught; each is a mistake TorchLean's own history
or the seed's docstrings made.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

import mpmath
import numpy as np
import pytest

from torchlean.certify import (
    CHECKS,
    check_floats,
    check_frameworks,
    check_intervals,
    check_kinks,
    check_symbolic,
    run,
)
from torchlean.certify.common import time_boxed
from torchlean.certify.oracle import ulps
from torchlean.certify.plans import plan_for
from torchlean.cli import main
from torchlean.registry import LOSSES
from torchlean.spec.core.context import resolve_context
from torchlean.spec.core.declaration import Domain, LossDeclaration
from torchlean.spec.core.tensor import mean_over
from torchlean.spec.layers.activation import softmax

# ---------------------------------------------------------------------------------------------
# deliberately wrong derivative terms (written over the Context, like the declarations')
# ---------------------------------------------------------------------------------------------


def cosine_deriv_norm_squared(c: Any, p: Any, t: Any, *, epsilon: float) -> Any:
    """The seed docstring's coefficient: (p.t)/(||p||**2 T) p - t/(||p|| T) (should be ||p||**3)."""
    eps = c.const(epsilon)
    pn = c.norm(p)
    big_t = c.maximum(c.norm(t), eps)
    dot = c.sum(p * t)
    radial = dot / (pn * pn * big_t) * p - t / (pn * big_t)
    return c.where(c.lt(eps, pn), radial, -t / (eps * big_t))


def cross_entropy_deriv_through_clamp(c: Any, p: Any, t: Any, *, epsilon: float) -> Any:
    """Early TorchLean: -t / clamp(p) everywhere, nonzero where the clamp makes the value flat."""
    eps = c.const(epsilon)
    return -t / c.minimum(c.maximum(p, eps), 1 - eps)


def logits_deriv_softmax_minus_t(c: Any, z: Any, t: Any) -> Any:
    """softmax(z) - t: right only when every target slice sums to 1."""
    return softmax(c, z) - t


def _wrong(name: str, term: Any) -> LossDeclaration:
    """The registered declaration with its derivative term replaced (not registered)."""
    return dataclasses.replace(LOSSES[name], deriv_term=term)


WRONG = [
    pytest.param("cosine_similarity", cosine_deriv_norm_squared,
                 {"symbolic", "frameworks"}, id="cosine-norm-squared"),
    pytest.param("cross_entropy", cross_entropy_deriv_through_clamp,
                 {"symbolic", "frameworks"}, id="cross-entropy-through-clamp"),
    pytest.param("cross_entropy_logits", logits_deriv_softmax_minus_t,
                 {"symbolic", "kinks", "frameworks"}, id="logits-softmax-minus-t"),
]


@pytest.mark.parametrize(("name", "wrong", "caught_by"), WRONG)
def test_wrong_derivative_is_reported_failing(name: str, wrong: Any, caught_by: set[str]) -> None:
    checks = ["symbolic", "kinks"] + (["frameworks"] if "frameworks" in caught_by else [])
    if "frameworks" in caught_by:
        pytest.importorskip("torch")
    report = run([_wrong(name, wrong)], points=2, checks=checks)
    assert not report.ok
    assert report.losses[0].loss == name
    statuses = {c: r.status for c, r in report.losses[0].checks.items()}
    for c in caught_by:
        assert statuses[c] == "FAIL", statuses
        assert report.losses[0].checks[c].failures, c


@pytest.mark.parametrize(("name", "wrong", "caught_by"), WRONG)
def test_the_spec_itself_passes_where_the_wrong_one_fails(name: str, wrong: Any,
                                                          caught_by: set[str]) -> None:
    assert check_symbolic(name, points=2).status == "PASS"


def test_symbolic_failure_names_a_50_digit_counterexample() -> None:
    r = check_symbolic(_wrong("cross_entropy_logits", logits_deriv_softmax_minus_t), points=1,
                       shapes=((3,),))
    assert r.status == "FAIL"
    case = r.failures[0]
    # a counterexample, not an undecided simplification: the two derivatives differ visibly
    assert abs(case["derivative_of_value"] - case["derivative_spec"]) > 1e-3
    assert case["difference"] == pytest.approx(
        abs(case["derivative_of_value"] - case["derivative_spec"]), rel=1e-9)
    assert len(case["predicted"]) == len(case["target"]) == 3


def test_a_replacement_pair_of_functions_is_certified_too() -> None:
    # the (value_fn, deriv_fn) form: a candidate written as a whole function over the Context
    def logits_deriv(logits: Any, target: Any, /, *, ctx: Any = None) -> Any:
        c, z, t = resolve_context(ctx, logits, target, ("logits", "target"))
        with c.scope():
            return c.finish_deriv(mean_over(softmax(c, z) - t, c.shape(z)))

    r = check_symbolic("cross_entropy_logits", None, logits_deriv, points=1, shapes=((3,),))
    assert r.status == "FAIL"


# ---------------------------------------------------------------------------------------------
# every check passes on the specs (cheap losses, few points)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mae", "hinge", "cross_entropy"])
def test_every_check_passes_on_cheap_losses_except_known_float_defects(name: str) -> None:
    report = run([name], points=2)
    checks = report.losses[0].checks
    assert list(checks) == list(CHECKS)
    for c in ("symbolic", "kinks", "intervals"):
        assert checks[c].status == "PASS", (c, checks[c].failures[:2])
    assert checks["frameworks"].status in ("PASS", "SKIP")
    # float32: the contract of 1 ulp holds for these three
    assert checks["floats"].figures["max_ulps"]["float32"]["value"] <= 1.0


def test_kinks_bracket_mae_at_zero_residual() -> None:
    r = check_kinks("mae", points=2)
    assert r.status == "PASS"
    assert "d = 0" in r.figures["kinds"]
    assert r.figures["coordinates"] >= 8


def test_kinks_catch_a_subgradient_outside_the_bracket() -> None:
    def mae_deriv_two_at_zero(c: Any, p: Any, t: Any) -> Any:
        # sign(d) except 2 at d = 0: right on both open regions, outside [-1/n, 1/n] at the kink
        d = p - t
        return c.where(c.lt(d, 0), -1, c.where(c.lt(0, d), 1, 2))

    r = check_kinks(_wrong("mae", mae_deriv_two_at_zero), points=2)
    assert r.status == "FAIL"
    first = r.failures[0]
    assert "d = 0" in first["case"]
    # hand derivation: on (1,), the one-sided derivatives are -1 and 1, the declared one 2
    ones = [f for f in r.failures if len(f["predicted"]) == 1]
    assert ones and ones[0]["derivative"] == 2.0
    assert (ones[0]["left"], ones[0]["right"]) == pytest.approx((-1.0, 1.0), rel=1e-20)
    assert ones[0]["difference"] == pytest.approx(1.0, rel=1e-20)


def test_kinks_hold_a_smooth_seam_to_both_one_sided_derivatives() -> None:
    # huber's |d| = delta is declared kink=False: a derivative that picks a value between the
    # one-sided ones there (1/2 instead of 1) passes a bracket test but not this one
    def huber_half_at_seam(c: Any, p: Any, t: Any, *, delta: float) -> Any:
        d = p - t
        dl = c.const(delta)
        a = c.abs(d)
        return c.where(c.lt(a, dl), d / dl, c.where(c.lt(dl, a), c.sign(d), c.sign(d) / 2))

    r = check_kinks(_wrong("huber", huber_half_at_seam), points=2)
    assert r.status == "FAIL"
    assert all("delta" in f["case"] and "equal to" in f["case"] for f in r.failures)


def test_intervals_contain_the_50_digit_values() -> None:
    r = check_intervals("huber", points=6)
    assert r.status == "PASS", r.failures[:2]
    assert r.figures["points"] >= 100  # 5 centres x 4 widths x 7 points


def test_floats_measure_huber_within_contract() -> None:
    r = check_floats("huber")
    assert r.status == "PASS", r.failures[:2]
    # measured: float32 <= 0.5 ulp (float64 inside, one rounding); float64 1.4 ulp (the mean
    # of four terms at subnormal targets)
    assert r.figures["max_ulps"]["float32"]["deriv"] <= 0.5
    assert r.figures["max_ulps"]["float64"]["value"] <= 2.0


def test_frameworks_skip_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    r = check_frameworks("mse")
    assert r.status == "SKIP"
    assert "torch" in r.summary


def test_frameworks_skip_a_declaration_without_a_reference() -> None:
    r = check_frameworks(LOSSES["mse"].with_changes(torch_reference=None))
    assert r.status == "SKIP"
    assert "no PyTorch reference" in r.summary


def test_frameworks_call_the_reference_and_compare_where_it_agrees() -> None:
    torch = pytest.importorskip("torch")
    calls: list[Any] = []

    def half_mse(p: Any, t: Any) -> Any:  # not the mse: value and gradient both halved
        calls.append(p)
        return torch.mean((p - t) ** 2) / 2

    r = check_frameworks(LOSSES["mse"].with_changes(torch_reference=half_mse), points=2)
    assert r.status == "FAIL" and calls
    assert r.failures[0]["relative_error"] == pytest.approx(0.5, rel=1e-9)  # hand: 1 - 1/2
    # BCE's reference agrees only strictly inside (eps, 1 - eps): the two zones there
    assert check_frameworks("binary_cross_entropy", points=2).figures["zones"] == [
        "eps < p < 1/2", "1/2 < p < 1 - eps"]


def test_frameworks_agree_with_autograd() -> None:
    pytest.importorskip("torch")
    r = check_frameworks("poisson", points=4)
    assert r.status == "PASS"
    assert r.figures["max_relative_error"] <= 1e-12


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("computed", "exact", "dtype", "expected"), [
    # hand-derived: one float64 spacing above 1 is 2**-52
    pytest.param(1.0 + 2.0**-52, "1", np.float64, 1.0, id="one-ulp-f64"),
    pytest.param(1.0, "1.0000000000000001110223024625156540423631668090820312", np.float64,
                 0.5, id="half-ulp-f64"),
    pytest.param(float(np.float32(1) + np.float32(2.0**-23)), "1", np.float32, 1.0,
                 id="one-ulp-f32"),
    pytest.param(math.nan, "nan", np.float64, 0.0, id="nan-nan"),
    pytest.param(math.inf, "1e400", np.float64, 0.0, id="overflow-rounds-to-inf"),
    pytest.param(math.inf, "1e300", np.float64, math.inf, id="spurious-inf"),
    pytest.param(0.5, "nan", np.float64, math.inf, id="finite-for-nan"),
])
def test_ulps(computed: float, exact: str, dtype: Any, expected: float) -> None:
    with mpmath.workdps(60):
        assert ulps(computed, mpmath.mpf(exact), dtype) == pytest.approx(expected, rel=1e-12)


def test_time_box_interrupts_a_slow_step() -> None:
    def slow() -> int:
        import time

        time.sleep(2)
        return 1

    assert time_boxed(slow, 0.05) == (False, None)
    assert time_boxed(lambda: 7, 1.0) == (True, 7)


# ---------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------


def test_cli_certifies_one_cheap_loss_and_writes_json(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    assert main(["certify", "--loss", "mse", "--points", "2", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["ok"] is True
    (loss,) = data["losses"]
    assert loss["loss"] == "mse"
    assert set(loss["checks"]) == set(CHECKS)
    assert all(c["status"] in ("PASS", "SKIP") for c in loss["checks"].values())
    assert "mse" in capsys.readouterr().out


def test_cli_exit_status_is_1_when_a_check_fails(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # a registry whose poisson derivative is twice the true one: the command must say so
    from types import MappingProxyType

    import torchlean.registry as registry

    entry = registry.LOSSES["poisson"]

    def doubled(c: Any, x: Any, t: Any) -> Any:
        return 2 * entry.deriv_term(c, x, t)

    rows = {**registry.LOSSES, "poisson": entry.with_changes(deriv_term=doubled)}
    monkeypatch.setattr(registry, "LOSSES", MappingProxyType(rows))
    out = tmp_path / "r.json"
    assert main(["certify", "--loss", "poisson", "--points", "1", "--json", str(out)]) == 1
    data = json.loads(out.read_text())
    assert data["ok"] is False
    assert data["losses"][0]["checks"]["symbolic"]["status"] == "FAIL"


def test_cli_exit_status_is_0_for_poisson_with_its_cancellation(tmp_path: Path) -> None:
    # exp(x) - t at x = log(t) cancels: the float check passes it as conditioned, and says so
    out = tmp_path / "r.json"
    assert main(["certify", "--loss", "poisson", "--points", "1", "--json", str(out)]) == 0
    floats = json.loads(out.read_text())["losses"][0]["checks"]["floats"]
    assert floats["status"] == "PASS"
    assert floats["figures"]["conditioned"] >= 1


def test_cli_rejects_an_unknown_loss() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["certify", "--loss", "nope"])
    assert exc.value.code == 2


def test_float_edge_cases_reach_the_declared_largest_magnitude() -> None:
    # the package's losses declare 1e300 (evaluated without overflow where finite); a
    # declaration that says nothing stops at 1e150, where a square is still finite
    mse = LOSSES["mse"]
    labels = [e.label for e in plan_for(mse).edge_cases(mse.params)]
    assert any(label.startswith("extreme (up to 1e+300)") for label in labels)
    plain = mse.with_changes(domain=Domain())
    assert not any("extreme" in e.label for e in plan_for(plain).edge_cases(plain.params))
    assert all(np.all(np.abs(e.predicted[np.isfinite(e.predicted)]) <= 1e150)
               for e in plan_for(plain).edge_cases(plain.params))
