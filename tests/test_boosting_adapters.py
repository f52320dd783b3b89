"""The boosting adapters' conventions: what each library receives for given scores, labels and
weights (hand derivations and :func:`torchlean.grad_hess`), the Hessian policies, and the
errors for bad input, raised before the library builds a tree."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import numpy as np
import pytest

import torchlean
from torchlean.errors import DomainError, ParameterError, ShapeError, UnsupportedOperationError
from torchlean.interop import boosting
from torchlean.interop.boosting import AUTO_FLOOR, Constant, Exact, Floor, Scaled

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")
cb = pytest.importorskip("catboost")

from torchlean.interop import catboost as tc  # noqa: E402
from torchlean.interop import lightgbm as tl  # noqa: E402
from torchlean.interop import xgboost as tx  # noqa: E402

P = np.array([0.5, -1.25, 2.0, 0.0])
Y = np.array([1.0, 0.5, -1.0, 0.0])
W = np.array([1.0, 2.0, 0.5, 0.0])


def softmax_rows(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class Data:
    """What ``dtrain`` / ``train_data`` give an objective (``get_label``, ``get_weight``)."""

    def __init__(self, label: Any, weight: Any) -> None:
        self.label, self.weight = label, weight

    def get_label(self) -> Any:
        return self.label

    def get_weight(self) -> Any:
        return self.weight


# --------------------------------------------------------------------------------------------
# Conventions: values, signs, weights, layouts
# --------------------------------------------------------------------------------------------


def test_xgboost_native_squared_error_by_hand() -> None:
    # squared_error is (p - y)**2 / 2: gradient p - y, Hessian 1, both times the weight
    d = xgb.DMatrix(np.zeros((4, 1)), label=Y, weight=W)
    g, h = tx.objective("squared_error")(P.astype(np.float32), d)
    np.testing.assert_allclose(g, (P - Y) * W, rtol=1e-7)
    np.testing.assert_allclose(h, W, rtol=0)
    assert g.shape == h.shape == (4,)


def test_xgboost_without_weights_gives_unit_weights() -> None:
    d = xgb.DMatrix(np.zeros((4, 1)), label=Y)  # get_weight() is an empty array
    g, h = tx.objective("squared_error")(P, d)
    np.testing.assert_array_equal(g, P - Y)
    np.testing.assert_array_equal(h, np.ones(4))


def test_lightgbm_native_and_both_sklearn_forms_agree_with_grad_hess() -> None:
    y = np.array([1.0, 0.0, 1.0, 0.0])
    want = torchlean.grad_hess("logistic", P, y, sample_weight=W)
    got = [
        tl.objective("logistic")(P, Data(y.astype(np.float32), W.astype(np.float32))),
        tl.sklearn_objective("logistic")(y, P, W),
        tx.sklearn_objective("logistic")(y, P, sample_weight=W),
        tx.objective("logistic")(P, Data(y, W)),
    ]
    for g, h in got:
        np.testing.assert_array_equal(g, want[0])
        np.testing.assert_array_equal(h, want[1])


def test_logistic_by_hand() -> None:
    # grad sigmoid(s) - y, hess sigmoid(s) sigmoid(-s)
    y = np.array([1.0, 0.0, 1.0, 0.0])
    sig = 1 / (1 + np.exp(-P))
    g, h = tl.objective("logistic")(P, Data(y, None))
    np.testing.assert_allclose(g, sig - y, rtol=1e-15, atol=1e-16)
    np.testing.assert_allclose(h, sig * (1 - sig), rtol=1e-14)


def test_catboost_negates_both_derivatives() -> None:
    # CatBoost maximises: for squared error it takes der1 = t - a, der2 = -1 (times weights)
    out = tc.objective("squared_error").calc_ders_range(P, Y.astype(np.float32),
                                                        W.astype(np.float32))
    assert out.shape == (4, 2)
    np.testing.assert_allclose(out[:, 0], (Y - P) * W, rtol=1e-15)
    np.testing.assert_array_equal(out[:, 1], -W)
    unweighted = tc.objective("squared_error").calc_ders_range(P, Y, None)
    np.testing.assert_array_equal(unweighted[:, 1], -np.ones(4))


@pytest.mark.parametrize("library", ["xgboost", "lightgbm", "sklearn"])
def test_multiclass_scores_keep_their_n_by_k_layout(library: str) -> None:
    s = np.array([[0.1, 2.0, -1.0], [0.0, 0.0, 0.0], [3.0, -2.0, 0.5], [1.0, 1.0, 4.0],
                  [-0.5, 0.2, 0.3]])
    ids = np.array([1, 0, 2, 2, 0])
    w = np.array([1.0, 0.5, 2.0, 1.0, 3.0])
    if library == "xgboost":
        g, h = tx.objective("softmax", hessian="exact")(s.astype(np.float32), Data(ids, w))
        s32 = s.astype(np.float32).astype(np.float64)
    elif library == "lightgbm":
        g, h = tl.objective("softmax", hessian="exact")(s, Data(ids.astype(np.float32), w))
        s32 = s
    else:
        g, h = tl.sklearn_objective("softmax", hessian="exact")(ids, s, w)
        s32 = s
    p = softmax_rows(s32)
    onehot = np.eye(3)[ids]
    assert g.shape == h.shape == (5, 3)
    np.testing.assert_allclose(g, (p - onehot) * w[:, None], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(h, p * (1 - p) * w[:, None], rtol=1e-13, atol=1e-15)


def test_catboost_multiclass_takes_the_whole_hessian() -> None:
    a = np.array([0.3, -1.0, 2.0, 0.1])
    obj = tc.objective("softmax", hessian="exact")
    assert isinstance(obj, tc.CatBoostMultiObjective)
    assert not hasattr(obj, "calc_ders_range")
    der1, der2 = obj.calc_ders_multi(a, 2.0, 1.5)
    p = softmax_rows(a[None, :])[0]
    # the Hessian of -log softmax(a)[y] is diag(p) - p p^T (hand derivation), negated, weighted
    np.testing.assert_allclose(der1, -1.5 * (p - np.eye(4)[2]), rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(der2, -1.5 * (np.diag(p) - np.outer(p, p)), rtol=1e-13,
                               atol=1e-16)
    _, diag = tc.objective("softmax", hessian=2.0).calc_ders_multi(a, 0.0, 1.5)
    np.testing.assert_array_equal(diag, -np.diag(np.full(4, 3.0)))
    _, scaled = tc.objective("softmax", hessian=Scaled(2.0)).calc_ders_multi(a, 0.0, 1.0)
    np.testing.assert_allclose(scaled, -2 * (np.diag(p) - np.outer(p, p)), rtol=1e-13,
                               atol=1e-16)


def test_float32_inputs_are_computed_in_float64() -> None:
    y = np.array([3.0, 0.0, 1.0, 7.0])
    g, h = tx.objective("poisson_log")(P.astype(np.float32), Data(y.astype(np.float32), None))
    assert g.dtype == h.dtype == np.float64
    want = torchlean.grad_hess("poisson_log", P.astype(np.float32).astype(np.float64), y)
    np.testing.assert_array_equal(g, want[0])
    np.testing.assert_array_equal(h, want[1])


def test_a_single_score_column_is_accepted() -> None:
    g, h = tx.objective("squared_error")(P[:, None], Data(Y, None))
    assert g.shape == h.shape == (4, 1)
    np.testing.assert_array_equal(g[:, 0], P - Y)


def test_nan_scores_give_nan_under_every_policy() -> None:
    s = np.array([np.nan, 0.5])
    for hessian in ("exact", "auto", 1.0, Floor(0.1), Scaled(3.0)):
        g, h = tl.objective("squared_error", hessian=hessian)(s, Data(np.zeros(2), None))
        assert np.isnan(g[0]) and np.isnan(h[0]) and np.isfinite(h[1])


def test_objectives_copy_and_pickle() -> None:
    obj = tl.objective("tweedie_log", hessian=Floor(0.01), power=1.3)
    assert copy.deepcopy(obj) is obj
    back = pickle.loads(pickle.dumps(obj))
    assert type(back) is type(obj) and back.params == obj.params and back.policy == obj.policy
    assert "tweedie_log" in repr(obj) and "power=1.3" in repr(obj)


# --------------------------------------------------------------------------------------------
# Hessian policies
# --------------------------------------------------------------------------------------------


def test_policies_on_weighted_hessians() -> None:
    s = np.array([-8.0, -1.0, 0.0, 3.0])
    y = np.ones(4)
    w = np.array([1.0, 2.0, 0.5, 4.0])
    _, exact = torchlean.grad_hess("binary_focal", s, y, sample_weight=w)
    assert exact[0] < 0  # far on the wrong side the focal Hessian is negative
    _, unweighted = torchlean.grad_hess("binary_focal", s, y)

    def hess(policy: Any) -> np.ndarray:
        return tl.objective("binary_focal", hessian=policy)(s, Data(y, w))[1]

    np.testing.assert_array_equal(hess("exact"), exact)
    np.testing.assert_array_equal(hess(Exact()), exact)
    np.testing.assert_array_equal(hess(0.25), 0.25 * w)
    np.testing.assert_array_equal(hess(Constant(0.25)), 0.25 * w)
    np.testing.assert_array_equal(hess(Floor(0.01)), w * np.maximum(unweighted, 0.01))
    np.testing.assert_array_equal(hess(Scaled(2.0)), 2 * exact)


def test_auto_reads_the_declared_hessian_sign() -> None:
    want = {"positive": Exact(), "zero": Constant(1.0), "nonnegative": Floor(AUTO_FLOOR),
            "any": Floor(AUTO_FLOOR)}
    for name, decl in torchlean.LOSSES.items():
        if decl.has_second:
            assert boosting.resolve_hessian("auto", decl) == want[decl.hessian_sign], name


def test_auto_gives_quantile_a_unit_hessian() -> None:
    # the pinball loss's exact Hessian is 0; auto gives the weight (Hessian 1), as the
    # libraries' own quantile objectives do
    g, h = tx.objective("quantile", alpha=0.3)(P, Data(Y, W))
    assert torchlean.get_loss("quantile").hessian_sign == "zero"
    np.testing.assert_array_equal(h, W)
    # gradient of the pinball loss on d = y - p: -alpha where y > p, 1 - alpha where y < p
    np.testing.assert_allclose(g[:3], np.where(Y > P, -0.3, 0.7)[:3] * W[:3], rtol=1e-15)
    _, zero = tx.objective("quantile", hessian="exact", alpha=0.3)(P, Data(Y, W))
    np.testing.assert_array_equal(zero, np.zeros(4))


def test_auto_floors_a_negative_focal_hessian() -> None:
    s, y = np.array([-9.0, 0.0]), np.array([1.0, 1.0])
    _, exact = torchlean.grad_hess("binary_focal", s, y)
    _, h = tx.objective("binary_focal")(s, Data(y, None))
    assert exact[0] < 0 and h[0] == AUTO_FLOOR
    assert h[1] == exact[1] > AUTO_FLOOR


def test_lightgbm_multiclass_ratio() -> None:
    s = np.array([[0.0, 1.0, -1.0, 0.5]])
    _, exact = tl.objective("softmax", hessian="exact")(s, Data([3.0], None))
    _, h = tl.objective("softmax", hessian=Scaled("k/(k-1)"))(s, Data([3.0], None))
    np.testing.assert_allclose(h, exact * 4 / 3, rtol=1e-15)


@pytest.mark.parametrize("bad", [0, -1.0, np.inf, np.nan, True, "floor", None, [1.0]])
def test_bad_hessian_policies(bad: Any) -> None:
    with pytest.raises(ParameterError, match="`hessian`"):
        tx.objective("squared_error", hessian=bad)


def test_bad_policy_values() -> None:
    with pytest.raises(ParameterError, match="`hessian`"):
        Floor(0.0)
    with pytest.raises(ParameterError, match="`hessian`"):
        Constant(-2)
    with pytest.raises(ParameterError, match="`factor`"):
        Scaled("k")
    with pytest.raises(ParameterError, match=r"`hessian`.*multi-class"):
        tx.objective("squared_error", hessian=Scaled("k/(k-1)"))


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def test_parameters_are_checked_when_the_objective_is_made() -> None:
    for make in (tx.objective, tx.sklearn_objective, tl.objective, tl.sklearn_objective,
                 tc.objective):
        for power in (1.0, 2.0, 2.5):
            with pytest.raises(ParameterError, match="`power`"):
                make("tweedie_log", power=power)
        with pytest.raises(ParameterError, match="`delta` is not a parameter"):
            make("logistic", delta=1.0)
    with pytest.raises(UnsupportedOperationError, match=r"`name`.*no second derivative"):
        tx.objective("cosine_similarity")
    with pytest.raises(ParameterError, match="`name` must be one of"):
        tl.objective("no_such_loss")


@pytest.mark.parametrize(("name", "labels", "match"), [
    ("logistic", [0.0, 1.0, 2.0, 1.0], r"`target` must hold labels 0 or 1"),
    ("logistic", [0.0, 1.0, 0.5, 1.0], r"`target` must hold labels 0 or 1"),
    ("poisson_log", [0.0, 1.0, -3.0, 1.0], "`target`"),
    ("binary_focal", [0.0, 1.0, -1.0, 1.0], "`target`"),
])
def test_labels_outside_the_domain(name: str, labels: list[float], match: str) -> None:
    with pytest.raises(DomainError, match=match):
        tx.objective(name)(P, Data(np.array(labels), None))
    with pytest.raises(DomainError, match=r"XGBoost objective \(" + name):
        tx.objective(name).check(np.array(labels))


def test_class_ids_outside_the_classes() -> None:
    s = np.zeros((3, 3))
    with pytest.raises(DomainError,
                       match=r"class ids.*\[0, 3\) for 3 classes; got \S*3\S* at index 1"):
        tl.objective("softmax")(s, Data(np.array([0.0, 3.0, 1.0]), None))
    with pytest.raises(DomainError, match="class ids"):
        tl.objective("softmax")(s, Data(np.array([0.0, 1.5, 1.0]), None))
    with pytest.raises(DomainError, match=r"\[0, 2\)"):
        tl.objective("softmax").check([0, 1, 2], num_class=2)
    tl.objective("softmax").check([0, 1, 2])  # three classes: fine


@pytest.mark.parametrize(("name", "shape", "arg"), [
    ("softmax", (4,), "preds"),
    ("softmax", (4, 1), "preds"),
    ("logistic", (4, 3), "preds"),
    ("squared_error", (2, 2, 1), "preds"),
])
def test_scores_of_the_wrong_shape(name: str, shape: tuple[int, ...], arg: str) -> None:
    with pytest.raises(ShapeError, match=f"`{arg}`"):
        tl.objective(name)(np.zeros(shape), Data(np.zeros(4), None))


def test_labels_of_the_wrong_length() -> None:
    with pytest.raises(ShapeError, match=r"`label`.*4 of them"):
        tx.objective("squared_error")(P, Data(np.zeros(5), None))
    with pytest.raises(ShapeError, match="`y_true`"):
        tx.sklearn_objective("squared_error")(np.zeros(3), P)


def test_weights_of_the_wrong_length_or_sign() -> None:
    with pytest.raises(ShapeError, match=r"`sample_weight`.*shape \(4,\)"):
        tl.sklearn_objective("squared_error")(Y, P, np.ones(3))
    with pytest.raises(DomainError, match=r"`weight` must hold weights >= 0; got -1.0 at index 2"):
        tl.objective("squared_error")(P, Data(Y, np.array([1.0, 1.0, -1.0, 1.0])))
    with pytest.raises(DomainError, match="`weights`"):
        tc.objective("squared_error").calc_ders_range(P, Y, np.array([1.0, np.nan, 1, 1]))
    with pytest.raises(ShapeError, match="`sample_weight`"):
        tx.objective("squared_error").check(Y, np.ones(2))


def test_xgboost_training_stops_before_the_first_tree() -> None:
    d = xgb.DMatrix(np.zeros((4, 2)), label=np.array([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(DomainError, match="labels 0 or 1"):
        xgb.train({"verbosity": 0, "nthread": 1}, d, 3, obj=tx.objective("logistic"))
    d = xgb.DMatrix(np.zeros((4, 2)), label=np.array([0.0, 1.0, 1.0, 1.0]))
    with pytest.raises(ShapeError, match=r"`predt`.*classes"):
        xgb.train({"verbosity": 0, "nthread": 1}, d, 3, obj=tx.objective("softmax"))


def test_lightgbm_training_stops_before_the_first_tree() -> None:
    x = np.random.default_rng(0).normal(size=(50, 2))
    data = lgb.Dataset(x, np.r_[np.zeros(49), -1.0])
    with pytest.raises(DomainError, match="`target`"):
        lgb.train({"objective": tl.objective("poisson_log"), "verbosity": -1,
                   "num_threads": 1, "min_data_in_leaf": 5}, data, 3)


def test_catboost_keeps_the_message() -> None:
    x = np.random.default_rng(0).normal(size=(20, 2))
    y = np.r_[np.zeros(10), np.ones(9), 3.0]
    model = cb.CatBoostRegressor(loss_function=tc.objective("logistic"), eval_metric="RMSE",
                                 iterations=2, verbose=False, thread_count=1,
                                 allow_writing_files=False)
    with pytest.raises(cb.CatBoostError,
                       match=r"DomainError: CatBoost objective \(logistic\): `target` must "
                             r"hold labels 0 or 1.*got \S*3\S* at index 19"):
        model.fit(x, y)
