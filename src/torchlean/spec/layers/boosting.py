"""The per-sample objectives of gradient boosting, declared once like every loss.

Each is written on the raw score ``s`` (the margin, the log-rate, the log-mean) that XGBoost,
LightGBM and CatBoost hand a custom objective, per sample and unreduced: the value is the SUM
of the per-sample terms, so its gradient is the per-sample gradient. Each declares its second
derivative; :func:`torchlean.grad_hess` returns both per sample, and the adapters of
:mod:`torchlean.interop.xgboost`, :mod:`~torchlean.interop.lightgbm` and
:mod:`~torchlean.interop.catboost` hand them over in each library's convention
(``docs/gradient-boosting.md``).

The seed's ``pseudo_huber`` and the others with a second derivative serve boosting as they
are (``grad_hess`` takes their per-sample terms, without the mean).
"""

from __future__ import annotations

import math
from typing import Any

from torchlean.errors import ParameterError
from torchlean.spec.core.context import Context
from torchlean.spec.core.declaration import Domain, LossDeclaration, Param, Seam, define_loss
from torchlean.spec.core.tensor import is_real_number
from torchlean.spec.layers.loss import (
    _LARGEST,
    _cross_entropy_logits,
    _cross_entropy_logits_deriv,
    _cross_entropy_logits_hvp,
    _cross_entropy_logits_second,
    _keep_nan,
    _poisson,
    _poisson_deriv,
    _poisson_second,
    _zero_second,
)

__all__ = [
    "BINARY_FOCAL",
    "GAMMA_LOG",
    "LOGISTIC",
    "POISSON_LOG",
    "QUANTILE",
    "SOFTMAX",
    "SQUARED_ERROR",
    "TWEEDIE_LOG",
]

_KERNELS = "torchlean.kernels.grad_hess_terms:"


def _F() -> Any:
    import torch.nn.functional as F

    return F


def _torch() -> Any:
    import torch

    return torch


def _open_interval(name: str, lo: float, hi: float, *, closed: bool = False) -> Any:
    """A validator: a real number in ``(lo, hi)`` (``[lo, hi]`` when ``closed``)."""
    brackets = "[]" if closed else "()"
    expected = f"a real number in {brackets[0]}{lo:g}, {hi:g}{brackets[1]}"

    def check(value: Any) -> float:
        if not is_real_number(value) or value != value:
            raise ParameterError(f"`{name}` must be {expected}; got {value!r}")
        v = float(value)
        ok = lo <= v <= hi if closed else lo < v < hi
        if not ok:
            raise ParameterError(f"`{name}` must be {expected}; got {value!r}")
        return v

    return check


def _check_gamma(value: Any) -> float:
    """The focusing exponent: a finite real number >= 0 (0 is the weighted logistic loss)."""
    if not is_real_number(value) or value != value:
        raise ParameterError(f"`gamma` must be a finite real number >= 0; got {value!r}")
    v = float(value)
    if not 0 <= v < math.inf:
        raise ParameterError(f"`gamma` must be a finite real number >= 0; got {value!r}")
    return v


# --------------------------------------------------------------------------------------------
# Sigmoid pieces on the raw margin, without overflow or cancellation
# --------------------------------------------------------------------------------------------


def _sigmoid_parts(c: Context, m: Any) -> tuple[Any, Any, Any, Any]:
    """``(sigmoid(m), sigmoid(-m), softplus(m), softplus(-m))`` from ``e = exp(-|m|)`` alone
    (which never overflows): ``softplus(m) = max(m, 0) + log1p(e)``."""
    e = c.exp(-c.abs(m))
    pos = c.lt(0, m)
    big, small = 1 / (1 + e), e / (1 + e)
    l1 = c.log1p(e)
    return (c.where(pos, big, small), c.where(pos, small, big),
            c.maximum(m, 0) + l1, c.maximum(-m, 0) + l1)


_MARGIN_SEAM = [Seam("predicted", lambda k, prm: k.const(0), "s = 0", kink=False)]


# --------------------------------------------------------------------------------------------
# Logistic on raw margins
# --------------------------------------------------------------------------------------------


def _logistic(c: Context, s: Any, y: Any) -> Any:
    # softplus(s) - y s = max(s, 0) - y s + log1p(exp(-|s|)): for y in [0, 1] the first part is
    # (1 - y) s or -y s, never negative, so nothing cancels
    lin = c.where(c.lt(0, s), (1 - y) * s, -(y * s))
    return lin + c.log1p(c.exp(-c.abs(s)))


def _logistic_deriv(c: Context, s: Any, y: Any) -> Any:
    sig, sig_neg, _, _ = _sigmoid_parts(c, s)
    # sigmoid(s) - y, from y = 1/2 on as (1 - y) - sigmoid(-s): the same real, and 1 - y is
    # exact there, so a confident right answer keeps its tiny gradient
    return c.where(c.lt(2 * y, 1), sig - y, (1 - y) - sig_neg)


def _logistic_second(c: Context, s: Any, y: Any) -> Any:
    e = c.exp(-c.abs(s))
    return _keep_nan(c, e / ((1 + e) * (1 + e)), y)


LOGISTIC: LossDeclaration = define_loss(
    "logistic", reduction="sum", seams=_MARGIN_SEAM,
    formula="sum(log(1 + exp(s)) - y s), s the raw margin",
    derivative_text="sigmoid(s) - y", second=_logistic_second, hessian_sign="positive",
    second_text="sigmoid(s) sigmoid(-s)",
    domain=Domain(largest=_LARGEST, predicted=(-4.0, 4.0), target=(0.0, 1.0),
                  labels=(0.0, 1.0), target_lo=0.0, target_hi=1.0, what="labels",
                  only_labels=True,
                  text="predicted: raw margins; target: labels 0 or 1 (the per-sample API "
                       "checks them; the value accepts any target in [0, 1])"),
    grad_hess_kernel=_KERNELS + "logistic",
    torch_reference=lambda s, y: _F().binary_cross_entropy_with_logits(s, y, reduction="sum"),
    torch_text="F.binary_cross_entropy_with_logits(s, y, reduction='sum')",
    deriv=_logistic_deriv)(_logistic)


# --------------------------------------------------------------------------------------------
# Softmax multi-class on raw scores
# --------------------------------------------------------------------------------------------


def _torch_softmax(z: Any, t: Any) -> Any:
    a, b = (z, t) if z.ndim == 1 else (z.movedim(-1, 1), t.movedim(-1, 1))
    return _F().cross_entropy(a, b, reduction="sum")


SOFTMAX: LossDeclaration = define_loss(
    "softmax", kind="slice", reduction="sum",
    formula="-sum(t log_softmax(s)), softmax over the last axis (classes); one row a sample",
    derivative_text="softmax(s) sum_last(t) - t",
    second=_cross_entropy_logits_second, hvp=_cross_entropy_logits_hvp,
    # p (1 - p) sum_last(t): positive on a row with a label, 0 on a row whose targets sum to 0
    hessian_sign="nonnegative",
    second_text="diagonal: sum_last(t) softmax (1 - softmax); Hessian times v: "
                "sum_last(t) softmax (v - softmax . v)",
    domain=Domain(largest=_LARGEST, target=(0.0, 1.0), target_lo=0.0, target_hi=1.0,
                  what="class probabilities",
                  text="predicted: (n, k) raw scores; target: one-hot rows or class "
                       "probabilities, or (per sample) integer class ids in [0, k)"),
    grad_hess_kernel=_KERNELS + "softmax",
    jax_kernel="torchlean.kernels.jax_terms:softmax_cross_entropy",
    torch_reference=_torch_softmax,
    torch_text="F.cross_entropy(s.movedim(-1, 1), t.movedim(-1, 1), reduction='sum')",
    deriv=_cross_entropy_logits_deriv)(_cross_entropy_logits)


# --------------------------------------------------------------------------------------------
# Squared error
# --------------------------------------------------------------------------------------------


def _squared_error(c: Context, p: Any, y: Any) -> Any:
    d = p - y
    return d * d / 2


def _squared_error_deriv(c: Context, p: Any, y: Any) -> Any:
    return p - y


def _squared_error_second(c: Context, p: Any, y: Any) -> Any:
    d = p - y
    return c.where(c.isnan(d), d, 1)


SQUARED_ERROR: LossDeclaration = define_loss(
    "squared_error", reduction="sum", formula="sum((p - y)**2 / 2)",
    derivative_text="p - y", second=_squared_error_second, second_text="1",
    hessian_sign="positive",
    grad_hess_kernel=_KERNELS + "squared_error",
    torch_reference=lambda p, y: ((p - y) ** 2 / 2).sum(),
    torch_text="((p - y)**2 / 2).sum()",
    deriv=_squared_error_deriv)(_squared_error)


# --------------------------------------------------------------------------------------------
# Quantile (pinball)
# --------------------------------------------------------------------------------------------


def _quantile(c: Context, p: Any, y: Any, *, alpha: float) -> Any:
    r = y - p
    a = c.const(alpha)
    # a select, not maximum(a r, (a - 1) r): the same value, and sympy decides it directly
    return c.where(c.lt(r, 0), (a - 1) * r, a * r)


def _quantile_deriv(c: Context, p: Any, y: Any, *, alpha: float) -> Any:
    r = y - p
    a = c.const(alpha)
    return _keep_nan(c, c.where(c.lt(0, r), -a, c.where(c.lt(r, 0), 1 - a, 0)), r)


def _torch_quantile(p: Any, y: Any, alpha: float) -> Any:
    r = y - p
    return _torch().maximum(alpha * r, (alpha - 1) * r).sum()


QUANTILE: LossDeclaration = define_loss(
    "quantile", reduction="sum",
    params=[Param("alpha", 0.5, _open_interval("alpha", 0.0, 1.0),
                  "the quantile, 0 < alpha < 1 (1/2: half the absolute error)")],
    formula="sum(max(alpha (y - p), (alpha - 1) (y - p)))",
    derivative_text="-alpha where y > p, 1 - alpha where y < p, 0 at y = p",
    second=_zero_second,
    hessian_sign="zero", second_text="0 (at y = p too)",
    seams=[Seam("residual", lambda k, prm: k.const(0), "d = 0", choice="derivative 0",
                second_choice="second derivative 0")],
    domain=Domain(largest=_LARGEST),
    grad_hess_kernel=_KERNELS + "quantile",
    torch_reference=_torch_quantile,
    torch_text="torch.maximum(alpha * (y - p), (alpha - 1) * (y - p)).sum()",
    deriv=_quantile_deriv)(_quantile)


# --------------------------------------------------------------------------------------------
# Poisson, Gamma and Tweedie with log link
# --------------------------------------------------------------------------------------------

POISSON_LOG: LossDeclaration = define_loss(
    "poisson_log", reduction="sum", formula="sum(exp(s) - y s), s the log-rate",
    derivative_text="exp(s) - y", second=_poisson_second, second_text="exp(s)",
    hessian_sign="positive",
    domain=Domain(largest=_LARGEST, target=(0.0, 5.0), target_lo=0.0, what="counts",
                  text="predicted: log-rates; target: counts >= 0 (checked)"),
    grad_hess_kernel=_KERNELS + "poisson_log",
    torch_reference=lambda s, y: _F().poisson_nll_loss(s, y, log_input=True, full=False,
                                                       reduction="sum"),
    torch_text="F.poisson_nll_loss(s, y, log_input=True, full=False, reduction='sum')",
    deriv=_poisson_deriv)(_poisson)

def _times_exp(c: Context, y: Any, x: Any) -> Any:
    """``y exp(x)``, 0 at ``y = 0`` however large ``x`` (where ``0 * inf`` would be NaN); NaN
    in either gives NaN."""
    zero = c.logical_and(c.le(y, 0), c.le(0, y))
    return _keep_nan(c, c.where(zero, 0, y * c.exp(x)), x)


def _gamma_log(c: Context, s: Any, y: Any) -> Any:
    return _times_exp(c, y, -s) + s


def _gamma_log_deriv(c: Context, s: Any, y: Any) -> Any:
    return 1 - _times_exp(c, y, -s)


def _gamma_log_second(c: Context, s: Any, y: Any) -> Any:
    return _times_exp(c, y, -s)


GAMMA_LOG: LossDeclaration = define_loss(
    "gamma_log", reduction="sum",
    formula="sum(y exp(-s) + s), s the log-mean (the Gamma deviance up to terms free of s)",
    derivative_text="1 - y exp(-s)", second=_gamma_log_second, second_text="y exp(-s)",
    hessian_sign="nonnegative",
    # y = 0 lies outside the Gamma family (XGBoost's reg:gamma refuses it) but the terms are
    # defined there (the value is s, with no minimum): only negative targets are refused
    domain=Domain(predicted=(-2.0, 2.0), target=(0.1, 5.0), target_lo=0.0,
                  what="non-negative targets",
                  text="predicted: log-means; target: >= 0 (checked; the Gamma family "
                       "needs y > 0, at y = 0 the value s has no minimum)"),
    grad_hess_kernel=_KERNELS + "gamma_log",
    torch_reference=lambda s, y: (y * _torch().exp(-s) + s).sum(),
    torch_text="(y * torch.exp(-s) + s).sum()",
    deriv=_gamma_log_deriv)(_gamma_log)


def _tweedie_exps(c: Context, s: Any, y: Any, power: float) -> tuple[Any, Any, Any, Any]:
    """``(rho - 1, 2 - rho, y exp((1 - rho) s), exp((2 - rho) s))``."""
    rho = c.const(power)
    a, b = rho - 1, 2 - rho
    return a, b, _times_exp(c, y, -(a * s)), c.exp(b * s)


def _tweedie_log(c: Context, s: Any, y: Any, *, power: float) -> Any:
    # -y e1 / (1 - rho) + e2 / (2 - rho): both terms are >= 0 for 1 < rho < 2, y >= 0
    a, b, ye1, e2 = _tweedie_exps(c, s, y, power)
    return ye1 / a + e2 / b


def _tweedie_log_deriv(c: Context, s: Any, y: Any, *, power: float) -> Any:
    _, _, ye1, e2 = _tweedie_exps(c, s, y, power)
    return e2 - ye1


def _tweedie_log_second(c: Context, s: Any, y: Any, *, power: float) -> Any:
    a, b, ye1, e2 = _tweedie_exps(c, s, y, power)
    return a * ye1 + b * e2


def _torch_tweedie(s: Any, y: Any, power: float) -> Any:
    torch = _torch()
    return (y * torch.exp((1 - power) * s) / (power - 1)
            + torch.exp((2 - power) * s) / (2 - power)).sum()


TWEEDIE_LOG: LossDeclaration = define_loss(
    "tweedie_log", reduction="sum",
    params=[Param("power", 1.5, _open_interval("power", 1.0, 2.0),
                  "the variance power, 1 < power < 2 (compound Poisson-Gamma)")],
    formula="sum(-y exp((1 - rho) s) / (1 - rho) + exp((2 - rho) s) / (2 - rho)), "
            "rho = power, s the log-mean",
    derivative_text="exp((2 - rho) s) - y exp((1 - rho) s)",
    second=_tweedie_log_second, hessian_sign="positive",
    second_text="(rho - 1) y exp((1 - rho) s) + (2 - rho) exp((2 - rho) s)",
    domain=Domain(largest=_LARGEST, target=(0.0, 5.0), target_lo=0.0,
                  what="non-negative targets",
                  text="predicted: log-means; target: >= 0 (checked); 1 < power < 2"),
    grad_hess_kernel=_KERNELS + "tweedie_log",
    torch_reference=_torch_tweedie,
    torch_text="(y * torch.exp((1 - rho) * s) / (rho - 1) + torch.exp((2 - rho) * s) / "
               "(2 - rho)).sum()",
    deriv=_tweedie_log_deriv)(_tweedie_log)


# --------------------------------------------------------------------------------------------
# Binary focal loss on raw margins
# --------------------------------------------------------------------------------------------


def _focal_parts(c: Context, s: Any, y: Any, gamma: float,
                 alpha: float) -> tuple[Any, Any, Any, Any, Any, Any]:
    """``(sign, a_t, q**gamma, r, q, L)`` at the label's margin ``m = (2y - 1) s``:
    ``q = sigmoid(-m)`` (one minus the probability of the label), ``r = sigmoid(m)``,
    ``L = softplus(-m)`` (the cross-entropy), ``a_t = alpha y + (1 - alpha)(1 - y)``."""
    sgn = 2 * y - 1
    r, q, spm, spn = _sigmoid_parts(c, sgn * s)
    a = c.const(alpha)
    a_t = a * y + (1 - a) * (1 - y)
    # q**gamma = exp(-gamma softplus(m)): no power in the Context, and no log of a tiny q
    qg = c.exp(-c.const(gamma) * spm)
    return sgn, a_t, qg, r, q, spn


def _binary_focal(c: Context, s: Any, y: Any, *, gamma: float, alpha: float) -> Any:
    _, a_t, qg, _, _, spn = _focal_parts(c, s, y, gamma, alpha)
    return a_t * (qg * spn)


def _binary_focal_deriv(c: Context, s: Any, y: Any, *, gamma: float, alpha: float) -> Any:
    sgn, a_t, qg, r, q, spn = _focal_parts(c, s, y, gamma, alpha)
    g = c.const(gamma)
    return -(sgn * (a_t * (qg * (g * (r * spn) + q))))


def _binary_focal_second(c: Context, s: Any, y: Any, *, gamma: float, alpha: float) -> Any:
    sgn, a_t, qg, r, q, spn = _focal_parts(c, s, y, gamma, alpha)
    g = c.const(gamma)
    inner = g * (spn * (g * r - q)) + q * (2 * g + 1)
    return sgn * sgn * (a_t * (qg * (r * inner)))


def _torch_focal(s: Any, y: Any, gamma: float, alpha: float) -> Any:
    torch, F = _torch(), _F()
    p = torch.sigmoid(s)
    ce = F.binary_cross_entropy_with_logits(s, y, reduction="none")
    q = 1 - (p * y + (1 - p) * (1 - y))
    return ((alpha * y + (1 - alpha) * (1 - y)) * ce * q**gamma).sum()


BINARY_FOCAL: LossDeclaration = define_loss(
    "binary_focal", reduction="sum",
    params=[Param("gamma", 2.0, _check_gamma, "the focusing exponent, >= 0"),
            Param("alpha", 0.25, _open_interval("alpha", 0.0, 1.0, closed=True),
                  "the weight of the positive class, in [0, 1]")],
    formula="sum(a_t (1 - p_t)**gamma (-log p_t)), p_t = sigmoid((2y - 1) s), "
            "a_t = alpha y + (1 - alpha)(1 - y)",
    derivative_text="-(2y - 1) a_t q**gamma (gamma r L + q), q = 1 - p_t, r = p_t, "
                    "L = -log p_t",
    second=_binary_focal_second, hessian_sign="any",
    second_text="a_t q**gamma r (gamma L (gamma r - q) + (2 gamma + 1) q) (negative far on "
                "the wrong side for gamma > 0)",
    seams=_MARGIN_SEAM,
    domain=Domain(largest=_LARGEST, predicted=(-4.0, 4.0), target=(0.0, 1.0),
                  labels=(0.0, 1.0), target_lo=0.0, target_hi=1.0, what="labels",
                  only_labels=True,
                  text="predicted: raw margins; target: labels 0 or 1 (checked by the "
                       "per-sample API)"),
    grad_hess_kernel=_KERNELS + "binary_focal",
    torch_reference=_torch_focal,
    torch_text="(a_t * F.binary_cross_entropy_with_logits(s, y, reduction='none') * "
               "(1 - p_t)**gamma).sum()",
    deriv=_binary_focal_deriv)(_binary_focal)
