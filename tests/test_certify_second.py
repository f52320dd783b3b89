"""``torchlean certify`` on second derivatives: a wrong Hessian is caught by the check that
should catch it, and a right one passes.

The wrong ones are deliberate: a factor 2 (off everywhere: sympy's derivative of the
derivative term says so), a wrong sign on one branch, a choice at a kink outside the one-sided
limits, a false ``hessian_sign``, a slice loss whose Hessian-vector product forgets a term or
reads the target where it should read the vector, and a wrong diagonal. The expected values
are hand derivations: for ``a d**2`` the second derivative is ``2 a``; for the softmax
cross-entropy ``H = m (diag(s) - s s^T)``, ``m`` the target's mass.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import torchlean
from torchlean import Seam
from torchlean.certify import (
    check_floats,
    check_frameworks,
    check_hessian,
    check_intervals,
    check_kinks,
    check_symbolic,
    run,
    second_order,
)
from torchlean.cli import main
from torchlean.errors import UnsupportedOperationError
from torchlean.registry import LOSSES
from torchlean.spec.core.declaration import REGISTRY, LossDeclaration, unregister


@pytest.fixture(autouse=True)
def _forget_user_losses(tmp_path: Path) -> Iterator[None]:
    losses, modules = set(REGISTRY), set(sys.modules)
    yield
    for name in set(REGISTRY) - losses:
        unregister(name)
    for name in set(sys.modules) - modules:
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


# ---------------------------------------------------------------------------------------------
# user losses: an asymmetric square (a C1 seam where the second derivative jumps) and a
# softmax cross-entropy (slice)
# ---------------------------------------------------------------------------------------------


def _asym(c: Any, p: Any, t: Any) -> Any:  # d**2 + d below 0, 2 d**2 + d above
    d = p - t
    return c.where(c.lt(d, 0), d * d + d, 2 * d * d + d)


def _asym_deriv(c: Any, p: Any, t: Any) -> Any:
    d = p - t
    return c.where(c.lt(d, 0), 2 * d + 1, 4 * d + 1)


def _asym_second(c: Any, p: Any, t: Any) -> Any:  # 2 and 4; 3 at d = 0, between them
    d = p - t
    return c.where(c.lt(d, 0), 2, c.where(c.lt(0, d), 4, 3))


def _asym_loss(name: str, second: Any, sign: str = "positive",
               second_choice: str = "second derivative 3") -> LossDeclaration:
    decl: LossDeclaration = torchlean.define_loss(
        name, reduction="sum", second=second, hessian_sign=sign,
        seams=[Seam("residual", lambda k, prm: k.const(0), "d = 0", kink=False,
                    second_choice=second_choice)],
        torch_reference=lambda p, t: (torch_where(p - t)).sum(),
        deriv=_asym_deriv)(_asym)
    return decl


def torch_where(d: Any) -> Any:
    import torch

    return torch.where(d < 0, d * d + d, 2 * d * d + d)


def _softmax(c: Any, p: Any) -> Any:
    e = c.exp(p)
    return e / c.sum(e, axis=-1, keepdims=True)


def _ce(c: Any, p: Any, t: Any) -> Any:
    e = c.exp(p)
    return t * (c.log(c.sum(e, axis=-1, keepdims=True)) - p)


def _ce_deriv(c: Any, p: Any, t: Any) -> Any:
    return _softmax(c, p) * c.sum(t, axis=-1, keepdims=True) - t


def _ce_diag(c: Any, p: Any, t: Any) -> Any:
    s = _softmax(c, p)
    return c.sum(t, axis=-1, keepdims=True) * s * (1 - s)


def _ce_hvp(c: Any, p: Any, t: Any, v: Any) -> Any:
    s = _softmax(c, p)
    return c.sum(t, axis=-1, keepdims=True) * s * (v - c.sum(s * v, axis=-1, keepdims=True))


def _torch_ce(p: Any, t: Any) -> Any:
    import torch

    return (t * (torch.logsumexp(p, dim=-1, keepdim=True) - p)).sum()


def _ce_loss(name: str, *, diag: Any = _ce_diag, hvp: Any = _ce_hvp) -> LossDeclaration:
    decl: LossDeclaration = torchlean.define_loss(
        name, kind="slice", reduction="sum", second=diag, hvp=hvp, hessian_sign="nonnegative",
        domain=torchlean.Domain(target=(0.0, 1.0), target_lo=0.0), torch_reference=_torch_ce,
        deriv=_ce_deriv)(_ce)
    return decl


def _status(result: Any) -> str:
    return str(result.status)


# ---------------------------------------------------------------------------------------------
# the second-order declaration
# ---------------------------------------------------------------------------------------------


def test_second_order_declaration_of_an_elementwise_loss() -> None:
    decl = _asym_loss("asym_decl_second", _asym_second)
    two = second_order(decl)
    assert two.reduction == "sum" and two.kind == "elementwise"
    assert two.value_term is _asym_deriv and two.deriv_term is _asym_second
    # the seam where the second derivative jumps is a kink of the second-order declaration
    (seam,) = two.seams
    assert seam.kink and seam.choice == "second derivative 3"
    p, t = np.array([-1.5, 0.0, 2.0]), np.zeros(3)
    # hand derivation: value sum(g) = -2 + 1 + 9, derivative (2, 3, 4)
    assert float(two.value(p, t)) == 8.0
    np.testing.assert_array_equal(two.deriv(p, t), [2.0, 3.0, 4.0])


def test_second_order_of_a_mean_loss_undoes_the_mean() -> None:
    # mse is mean-reduced: the second-order value is the unreduced derivative 2 d, summed
    two = second_order("mse")
    p, t = np.array([1.0, 2.0, 4.0]), np.zeros(3)
    assert float(two.value(p, t)) == 14.0
    np.testing.assert_array_equal(two.deriv(p, t), [2.0, 2.0, 2.0])


def test_a_loss_without_second_derivative_has_no_second_order_row() -> None:
    decl = torchlean.define_loss("no_second_row", deriv=_asym_deriv)(_asym)
    with pytest.raises(UnsupportedOperationError, match="no second derivative"):
        second_order(decl)
    report = run([decl], points=1, checks=["symbolic"])
    assert report.losses[0].second is None


# ---------------------------------------------------------------------------------------------
# right second derivatives pass
# ---------------------------------------------------------------------------------------------


def test_a_right_elementwise_second_derivative_passes_every_check() -> None:
    decl = _asym_loss("asym_right_second", _asym_second)
    report = run([decl], points=1)
    row = report.losses[0].second
    assert row is not None and row.loss == "asym_right_second (2nd)"
    assert {c: r.status for c, r in row.checks.items()} == {
        "symbolic": "PASS", "kinks": "PASS", "intervals": "PASS", "floats": "PASS",
        "frameworks": "PASS", "hessian": "PASS"}, [r.failures[:1] for r in row.checks.values()]
    assert report.ok


def test_a_right_slice_hessian_passes_every_check() -> None:
    decl = _ce_loss("ce_right_second")
    two = second_order(decl)
    for check in (check_symbolic, check_kinks, check_intervals):
        assert _status(check(two, points=1)) == "PASS", check
    assert _status(check_frameworks(two, points=1, value=False)) == "PASS"
    hess = check_hessian(decl, points=4)
    assert hess.status == "PASS", hess.failures[:1]
    assert hess.figures["columns"] == 6 and hess.figures["combinations"] == 1


# ---------------------------------------------------------------------------------------------
# wrong ones are caught
# ---------------------------------------------------------------------------------------------


def test_a_second_derivative_off_by_a_factor_two_fails() -> None:
    def doubled(c: Any, p: Any, t: Any) -> Any:
        return 2 * _asym_second(c, p, t)

    two = second_order(_asym_loss("asym_doubled_second", doubled))
    assert _status(check_symbolic(two, points=1)) == "FAIL"
    assert _status(check_kinks(two, points=1, beside=True)) == "FAIL"
    assert _status(check_frameworks(two, points=1, value=False)) == "FAIL"


def test_a_wrong_sign_on_one_branch_fails_symbolic_and_the_sign_claim() -> None:
    def flipped(c: Any, p: Any, t: Any) -> Any:  # -4 where d > 0
        d = p - t
        return c.where(c.lt(d, 0), 2, c.where(c.lt(0, d), -4, 3))

    decl = _asym_loss("asym_flipped_second", flipped)
    sym = check_symbolic(second_order(decl), points=1)
    assert sym.status == "FAIL"
    assert all("d > 0" in f["case"] for f in sym.failures)  # the branch d < 0 is right
    assert check_hessian(decl, points=2).status == "FAIL"


def test_a_choice_at_the_seam_outside_the_one_sided_limits_fails_kinks_only() -> None:
    def five_at_zero(c: Any, p: Any, t: Any) -> Any:  # 5 at d = 0: outside [2, 4]
        d = p - t
        return c.where(c.lt(d, 0), 2, c.where(c.lt(0, d), 4, 5))

    two = second_order(_asym_loss("asym_five_second", five_at_zero, second_choice="5"))
    assert _status(check_symbolic(two, points=1)) == "PASS"
    kinks = check_kinks(two, points=1, beside=True)
    assert kinks.status == "FAIL"
    first = kinks.failures[0]
    assert "d = 0" in first["case"] and first["derivative"] == 5.0
    assert {first["left"], first["right"]} == {2.0, 4.0}


def test_a_jump_across_a_seam_declared_smooth_fails_kinks() -> None:
    # no second_choice: the second derivative must be continuous at d = 0, and it jumps 2 -> 4
    two = second_order(_asym_loss("asym_smooth_claim", _asym_second, second_choice=""))
    assert _status(check_kinks(two, points=1, beside=True)) == "FAIL"


def test_huber_stated_one_over_delta_on_the_linear_side_fails() -> None:
    huber = LOSSES["huber"]

    def everywhere(c: Any, p: Any, t: Any, *, delta: float) -> Any:
        return (p - t) * 0 + 1 / c.const(delta)

    two = second_order(huber.with_changes(second_term=everywhere))
    assert _status(check_symbolic(two, points=1)) == "FAIL"
    assert _status(check_frameworks(two, points=1, value=False)) == "FAIL"


def test_huber_with_a_second_derivative_outside_the_limits_at_the_seam_fails_kinks() -> None:
    huber = LOSSES["huber"]

    def twice_at_seam(c: Any, p: Any, t: Any, *, delta: float) -> Any:
        a, dl = c.abs(p - t), c.const(delta)
        return c.where(c.lt(a, dl), 1 / dl, c.where(c.lt(dl, a), 0, 2 / dl))

    two = second_order(huber.with_changes(second_term=twice_at_seam))
    kinks = check_kinks(two, points=1, beside=True)
    assert kinks.status == "FAIL"
    assert all("delta" in f["case"] for f in kinks.failures)
    assert _status(check_symbolic(two, points=1)) == "PASS"  # right on every region


def test_a_false_hessian_sign_claim_fails() -> None:
    # mae's second derivative is 0: "positive" is false, "zero" and "nonnegative" true
    mae = LOSSES["mae"]
    assert check_hessian(mae, points=2).status == "PASS"
    assert check_hessian(mae.with_changes(hessian_sign="nonnegative"), points=2).status == "PASS"
    assert check_hessian(mae.with_changes(hessian_sign="positive"), points=2).status == "FAIL"
    # huber's is 1 / delta inside: "zero" is false
    huber = LOSSES["huber"]
    assert check_hessian(huber.with_changes(hessian_sign="zero"), points=2).status == "FAIL"

    # log(1 + d**2): 2 (1 - d**2) / (1 + d**2)**2 < 0 for |d| > 1; claimed nonnegative
    def cauchy(c: Any, p: Any, t: Any) -> Any:
        d = p - t
        return c.log(1 + d * d)

    def cauchy_deriv(c: Any, p: Any, t: Any) -> Any:
        d = p - t
        return 2 * d / (1 + d * d)

    def cauchy_second(c: Any, p: Any, t: Any) -> Any:
        d = p - t
        return 2 * (1 - d * d) / ((1 + d * d) * (1 + d * d))

    decl = torchlean.define_loss("cauchy_sign_claim", second=cauchy_second,
                                 hessian_sign="nonnegative", deriv=cauchy_deriv)(cauchy)
    result = check_hessian(decl, points=4)
    assert result.status == "FAIL"
    assert result.failures[0]["exact"] < 0
    assert _status(check_symbolic(second_order(decl), points=1)) == "PASS"
    assert check_hessian(decl.with_changes(hessian_sign="any")).status == "SKIP"


def test_a_slice_hvp_without_the_rank_one_term_fails() -> None:
    def diagonal_only(c: Any, p: Any, t: Any, v: Any) -> Any:  # m s v: no - m s (s . v)
        return c.sum(t, axis=-1, keepdims=True) * _softmax(c, p) * v

    decl = _ce_loss("ce_diag_hvp", hvp=diagonal_only)
    two = second_order(decl)
    assert _status(check_symbolic(two, points=1)) == "FAIL"
    assert _status(check_frameworks(two, points=1, value=False)) == "FAIL"
    assert check_hessian(decl, points=4).status == "FAIL"


def test_a_slice_hvp_that_reads_the_target_instead_of_the_vector_fails_hessian() -> None:
    def reads_t(c: Any, p: Any, t: Any, v: Any) -> Any:
        return _ce_hvp(c, p, t, t)

    decl = _ce_loss("ce_reads_t_hvp", hvp=reads_t)
    # the second-order declaration multiplies by t itself: it cannot see this mistake
    assert _status(check_symbolic(second_order(decl), points=1)) == "PASS"
    hess = check_hessian(decl, points=4)
    assert hess.status == "FAIL"
    assert any("Hessian column" in f["case"] for f in hess.failures)


def test_a_wrong_slice_diagonal_fails_hessian() -> None:
    def no_one_minus(c: Any, p: Any, t: Any) -> Any:  # m s, not m s (1 - s)
        return c.sum(t, axis=-1, keepdims=True) * _softmax(c, p)

    hess = check_hessian(_ce_loss("ce_wrong_diag", diag=no_one_minus), points=4)
    assert hess.status == "FAIL"
    assert all("diagonal" in f["case"] for f in hess.failures)


def test_floats_measure_the_second_derivative_alone() -> None:
    result = check_floats(second_order("log_cosh"), value=False)
    assert result.status == "PASS", result.failures[:1]
    assert result.figures["parts"] == ["deriv"]
    assert result.figures["max_ulps"]["float32"]["value"] == 0.0


# ---------------------------------------------------------------------------------------------
# the report and the command
# ---------------------------------------------------------------------------------------------


def test_a_wrong_second_derivative_fails_the_report_and_shows_its_row() -> None:
    def doubled(c: Any, p: Any, t: Any) -> Any:
        return 2 * _asym_second(c, p, t)

    decl = _asym_loss("asym_report_second", doubled)
    report = run([decl], points=1, checks=["symbolic", "hessian"])
    first, second = report.losses[0], report.losses[0].second
    assert first.checks["symbolic"].status == "PASS"
    assert second is not None and second.checks["symbolic"].status == "FAIL"
    assert not report.ok and "1 of 3 checks failed" in report.verdict
    data = report.to_dict()["losses"][0]
    assert data["ok"] is False and data["second"]["loss"] == "asym_report_second (2nd)"
    assert data["second"]["checks"]["symbolic"]["status"] == "FAIL"


MODULE = '''
import torchlean
from torchlean import Seam


@torchlean.define_loss("{name}", reduction="sum", hessian_sign="positive",
                       seams=[Seam("residual", lambda k, prm: k.const(0), "d = 0", kink=False,
                                   second_choice="second derivative 3")])
def {name}(c, p, t):
    d = p - t
    return c.where(c.lt(d, 0), d * d + d, 2 * d * d + d)


@{name}.deriv
def _(c, p, t):
    d = p - t
    return c.where(c.lt(d, 0), 2 * d + 1, 4 * d + 1)


@{name}.second
def _(c, p, t):
    d = p - t
    return c.where(c.lt(d, 0), 2, c.where(c.lt(0, d), {above}, 3))
'''


@pytest.mark.parametrize(("above", "status"), [("4", 0), ("8", 1)])
def test_cli_module_certifies_a_user_loss_second_derivative(tmp_path: Path, above: str,
                                                             status: int) -> None:
    name = f"asym_cli_{above}"
    path = tmp_path / f"second_{above}.py"
    path.write_text(textwrap.dedent(MODULE.format(name=name, above=above)))
    out = tmp_path / "r.json"
    assert main(["certify", "--module", str(path), "--points", "1", "--json", str(out)]) == status
    (loss,) = json.loads(out.read_text())["losses"]
    assert loss["loss"] == name and loss["ok"] is (status == 0)
    row = loss["second"]
    assert row["loss"] == f"{name} (2nd)"
    assert set(row["checks"]) == {"symbolic", "kinks", "intervals", "floats", "frameworks",
                                  "hessian"}
    assert row["checks"]["frameworks"]["status"] == "SKIP"  # no PyTorch reference
    assert row["checks"]["symbolic"]["status"] == ("PASS" if status == 0 else "FAIL")


@pytest.mark.slow
def test_every_package_second_derivative_is_certified() -> None:
    report = run([d for d in LOSSES.values() if d.has_second])
    failing = {row.loss: [c for c, r in row.checks.items() if not r.ok]
               for r in report.losses for row in r.rows() if not row.ok}
    assert not failing, failing


def test_a_smooth_seam_where_the_derivative_vanishes_passes_kinks() -> None:
    # d**2 below 0, 2 d**2 above (an expectile loss): C1 at d = 0 with derivative 0 there; the
    # one-sided quotients are exact to h**2, so 0 is met far inside the tolerance
    def expectile(c: Any, p: Any, t: Any) -> Any:
        d = p - t
        return c.where(c.lt(d, 0), d * d, 2 * d * d)

    def expectile_deriv(c: Any, p: Any, t: Any) -> Any:
        d = p - t
        return c.where(c.lt(d, 0), 2 * d, 4 * d)

    decl = torchlean.define_loss(
        "expectile_seam", seams=[Seam("residual", lambda k, prm: k.const(0), "d = 0",
                                      kink=False)], deriv=expectile_deriv)(expectile)
    result = check_kinks(decl, points=1)
    assert result.status == "PASS", result.failures[:1]
    assert result.figures["max_relative_gap"] < 1e-14
