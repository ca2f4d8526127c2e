"""Metrics: hand-computed values, accumulation with sample weights, reset, Keras' resolution
of "accuracy", AUC against a brute-force ROC AUC, precision/recall; keras when importable."""
import os

import numpy as np
import pytest

from glassnet import losses
from glassnet import metrics as M
from glassnet.autograd import Tensor

R = np.random.default_rng(5)


def keras_module():
    os.environ.setdefault("KERAS_BACKEND", "numpy")
    return pytest.importorskip("keras")


# ---- function forms -------------------------------------------------------------------------
def test_accuracy_functions_by_hand():
    y_pred = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3], [0.2, 0.3, 0.5], [0.4, 0.35, 0.25]])
    labels = np.array([1, 2, 2, 1])
    onehot = np.eye(3)[labels]
    np.testing.assert_array_equal(M.categorical_accuracy(onehot, y_pred), [1, 0, 1, 0])
    np.testing.assert_array_equal(M.sparse_categorical_accuracy(labels, y_pred), [1, 0, 1, 0])
    np.testing.assert_array_equal(M.sparse_categorical_accuracy(labels[:, None], y_pred),
                                  [1, 0, 1, 0])
    np.testing.assert_array_equal(M.top_k_categorical_accuracy(onehot, y_pred, k=2),
                                  [1, 1, 1, 1])
    np.testing.assert_array_equal(M.sparse_top_k_categorical_accuracy(labels, y_pred, k=1),
                                  [1, 0, 1, 0])
    np.testing.assert_array_equal(
        M.sparse_top_k_categorical_accuracy([2, 2, 0, 1], y_pred, k=2), [1, 1, 0, 1])
    np.testing.assert_array_equal(M.binary_accuracy([1, 0, 1, 0], [0.7, 0.2, 0.5, 0.9]),
                                  [1, 1, 0, 0])
    np.testing.assert_array_equal(M.binary_accuracy([1, 0], [0.7, 0.2], threshold=0.8), [0, 1])
    np.testing.assert_array_equal(M.accuracy([1, 2, 3], [1, 2, 4]), [1, 1, 0])
    assert M.categorical_accuracy(onehot, y_pred).dtype == np.float32


def test_functions_accept_tensors_without_building_a_graph():
    y_pred = Tensor(R.uniform(size=(4, 3)), requires_grad=True)
    out = M.sparse_categorical_accuracy(Tensor(np.array([0, 1, 2, 0])), y_pred)
    assert isinstance(out, np.ndarray)
    m = M.MeanSquaredError()
    m.update_state(Tensor(np.zeros((4, 3))), y_pred)
    assert m.result() == pytest.approx(np.mean(y_pred.data ** 2))


# ---- stateful metrics: hand computations, accumulation, reset ------------------------------
def test_mean_and_sum_with_weights():
    m = M.Mean()
    m.update_state([1.0, 3.0])
    m.update_state([5.0], sample_weight=[2.0])
    assert m.result() == pytest.approx((1 + 3 + 10) / 4)
    s = M.Sum()
    s.update_state([[1.0, 2.0], [3.0, 4.0]], sample_weight=[1.0, 0.5])
    assert s.result() == pytest.approx(3 + 3.5)
    m.reset_state()
    s.reset_state()
    assert m.result() == 0.0 and s.result() == 0.0
    assert isinstance(m.result(), float)


def _batches(n_batches=3, n=7, c=4, sparse=False):
    for _ in range(n_batches):
        y_pred = R.dirichlet(np.ones(c), n)
        labels = R.integers(0, c, n)
        y_true = labels[:, None] if sparse else np.eye(c)[labels]
        yield y_true, y_pred, R.uniform(0, 2, n)


@pytest.mark.parametrize("metric, fn, sparse", [
    (M.CategoricalAccuracy, lambda y, p: np.argmax(y, -1) == np.argmax(p, -1), False),
    (M.SparseCategoricalAccuracy, lambda y, p: y[:, 0] == np.argmax(p, -1), True),
    (M.TopKCategoricalAccuracy, lambda y, p: np.sum(p > np.sum(y * p, -1, keepdims=True), -1)
     < 2, False),
    (M.MeanSquaredError, lambda y, p: np.mean((y - p) ** 2, -1), False),
    (M.MeanAbsoluteError, lambda y, p: np.mean(np.abs(y - p), -1), False),
])
def test_weighted_accumulation_over_batches(metric, fn, sparse):
    m = metric(k=2) if metric is M.TopKCategoricalAccuracy else metric()
    values, weights = [], []
    for y, p, w in _batches(sparse=sparse):
        m.update_state(y, p, sample_weight=w)
        values.append(fn(y, p))
        weights.append(w)
    values, weights = np.concatenate(values), np.concatenate(weights)
    assert m.result() == pytest.approx(np.sum(values * weights) / np.sum(weights))
    m.reset_state()
    assert m.result() == 0.0
    y, p, _ = next(_batches(1, sparse=sparse))
    m.update_state(y, p)
    assert m.result() == pytest.approx(np.mean(fn(y, p)))


def test_binary_accuracy_and_rmse():
    m = M.BinaryAccuracy(threshold=0.6)
    m.update_state([[1], [0], [1]], [[0.7], [0.65], [0.61]])
    m.update_state([1, 1], [[0.2], [0.9]], sample_weight=[3.0, 1.0])
    assert m.result() == pytest.approx((1 + 0 + 1 + 0 * 3 + 1 * 1) / (3 + 4))
    r = M.RootMeanSquaredError()
    r.update_state([[0.0, 0.0]], [[3.0, 4.0]])
    r.update_state([[1.0, 1.0]], [[1.0, 1.0]])
    assert r.result() == pytest.approx(np.sqrt((9 + 16) / 4))


def test_precision_recall_by_hand():
    y_true = np.array([0, 1, 1, 1, 0, 1])
    y_pred = np.array([0.8, 0.2, 0.7, 0.9, 0.3, 0.55])
    p, r = M.Precision(), M.Recall()
    p.update_state(y_true, y_pred)
    r.update_state(y_true, y_pred)
    assert p.result() == pytest.approx(3 / 4)  # tp: .7 .9 .55; fp: .8
    assert r.result() == pytest.approx(3 / 4)  # fn: .2
    w = np.array([1, 1, 1, 1, 1, 4.0])
    p = M.Precision(thresholds=[0.6, 0.1])
    p.update_state(y_true, y_pred, sample_weight=w)
    np.testing.assert_allclose(p.result(), [2 / 3, 7 / 9])
    r = M.Recall(thresholds=0.6)
    r.update_state(y_true, y_pred, sample_weight=w)
    r.update_state([1], [0.95])
    assert r.result() == pytest.approx(3 / 8)
    r.reset_state()
    assert r.result() == 0.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        M.Precision(thresholds=1.5)


def test_precision_top_k_and_class_id():
    y_true = np.array([[0, 1, 1], [1, 0, 0]])
    y_pred = np.array([[0.2, 0.7, 0.6], [0.9, 0.8, 0.1]])
    p = M.Precision(top_k=1)
    p.update_state(y_true, y_pred)
    assert p.result() == pytest.approx(1.0)  # only 0.7 and 0.9 count, both correct
    p = M.Precision(class_id=1)
    p.update_state(y_true, y_pred)
    assert p.result() == pytest.approx(0.5)


# ---- AUC ------------------------------------------------------------------------------------
def brute_force_roc_auc(labels, scores):
    """Exact trapezoid ROC AUC over every distinct score as a threshold."""
    thresholds = np.concatenate([[np.inf], np.unique(scores)[::-1], [-np.inf]])
    pos, neg = labels == 1, labels == 0
    tpr = [(scores[pos] >= t).mean() for t in thresholds]
    fpr = [(scores[neg] >= t).mean() for t in thresholds]
    trapezoid = getattr(np, "trapezoid", None) or np.trapz  # renamed in NumPy 2
    return trapezoid(tpr, fpr)


def test_auc_matches_brute_force_roc():
    labels = R.integers(0, 2, 2000)
    scores = np.clip(0.5 + 0.25 * (labels - 0.5) + 0.25 * R.standard_normal(2000), 0, 1)
    m = M.AUC()
    for chunk in np.array_split(np.arange(2000), 4):
        m.update_state(labels[chunk], scores[chunk])
    assert m.result() == pytest.approx(brute_force_roc_auc(labels, scores), abs=5e-3)
    fine = M.AUC(num_thresholds=2000)
    fine.update_state(labels, scores)
    assert fine.result() == pytest.approx(brute_force_roc_auc(labels, scores), abs=1e-3)


def test_auc_edge_values_and_reset():
    perfect = M.AUC()
    perfect.update_state([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert perfect.result() == pytest.approx(1.0)
    pr = M.AUC(curve="PR")
    pr.update_state([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert pr.result() == pytest.approx(1.0, abs=1e-6)
    worst = M.AUC()
    worst.update_state([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9])
    assert worst.result() == pytest.approx(0.0, abs=1e-6)
    worst.reset_state()
    assert worst.result() == 0.0
    with pytest.raises(ValueError, match="ROC, PR"):
        M.AUC(curve="XY")


def test_auc_sample_weights_equal_repetition():
    labels, scores = R.integers(0, 2, 50), R.uniform(size=50)
    reps = R.integers(1, 4, 50)
    weighted, repeated = M.AUC(), M.AUC()
    weighted.update_state(labels, scores, sample_weight=reps)
    repeated.update_state(np.repeat(labels, reps), np.repeat(scores, reps))
    assert weighted.result() == pytest.approx(repeated.result())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # keras' own divide_no_nan
def test_auc_and_confusion_metrics_against_keras():
    keras = keras_module()
    pairs = [(M.AUC(), keras.metrics.AUC()),
             (M.AUC(curve="PR"), keras.metrics.AUC(curve="PR")),
             (M.AUC(num_thresholds=11, summation_method="majoring"),
              keras.metrics.AUC(num_thresholds=11, summation_method="majoring")),
             (M.AUC(thresholds=[0.2, 0.3, 0.75]),
              keras.metrics.AUC(thresholds=[0.2, 0.3, 0.75])),
             (M.AUC(multi_label=True), keras.metrics.AUC(multi_label=True)),
             (M.Precision(thresholds=[0.3, 0.6]),
              keras.metrics.Precision(thresholds=[0.3, 0.6])),
             (M.Recall(), keras.metrics.Recall())]
    for ours, theirs in pairs:
        for _ in range(3):
            y = R.integers(0, 2, (40, 3)).astype("float32")
            p = R.uniform(size=(40, 3)).astype("float32")
            w = R.uniform(0, 2, 40).astype("float32")
            ours.update_state(y, p, sample_weight=w)
            theirs.update_state(y, p, sample_weight=w)
        np.testing.assert_allclose(ours.result(), np.asarray(theirs.result()), atol=1e-5,
                                   err_msg=ours.name)


def test_accuracy_metrics_against_keras():
    keras = keras_module()
    pairs = [(M.BinaryAccuracy(), keras.metrics.BinaryAccuracy(), "binary"),
             (M.CategoricalAccuracy(), keras.metrics.CategoricalAccuracy(), "onehot"),
             (M.SparseCategoricalAccuracy(), keras.metrics.SparseCategoricalAccuracy(),
              "sparse"),
             (M.SparseTopKCategoricalAccuracy(k=2),
              keras.metrics.SparseTopKCategoricalAccuracy(k=2), "sparse"),
             (M.RootMeanSquaredError(), keras.metrics.RootMeanSquaredError(), "onehot")]
    for ours, theirs, kind in pairs:
        for _ in range(2):
            p = R.dirichlet(np.ones(4), 16).astype("float32")
            labels = R.integers(0, 4, 16)
            y = {"binary": (p > 0.3).astype("float32") * R.integers(0, 2, (16, 4)),
                 "onehot": np.eye(4, dtype="float32")[labels], "sparse": labels[:, None]}[kind]
            w = R.uniform(0, 2, 16).astype("float32")
            ours.update_state(y, p, sample_weight=w)
            theirs.update_state(y, p, sample_weight=w)
        np.testing.assert_allclose(ours.result(), float(theirs.result()), rtol=1e-5)


# ---- get(): Keras' resolution of strings -----------------------------------------------------
@pytest.mark.parametrize("identifier, kwargs, cls", [
    ("accuracy", {"loss": "binary_crossentropy"}, M.BinaryAccuracy),
    ("accuracy", {"loss": "bce"}, M.BinaryAccuracy),
    ("accuracy", {"loss": losses.binary_crossentropy}, M.BinaryAccuracy),
    ("accuracy", {"loss": losses.BinaryCrossentropy(from_logits=True)}, M.BinaryAccuracy),
    ("acc", {"loss": "sparse_categorical_crossentropy"}, M.SparseCategoricalAccuracy),
    ("accuracy", {"loss": losses.SparseCategoricalCrossentropy}, M.SparseCategoricalAccuracy),
    ("accuracy", {"loss": "categorical_crossentropy"}, M.CategoricalAccuracy),
    ("accuracy", {"loss": "mse", "y_true_shape": (8, 1), "y_pred_shape": (8, 1)},
     M.BinaryAccuracy),
    ("accuracy", {"y_true_shape": (8,), "y_pred_shape": (8, 5)}, M.SparseCategoricalAccuracy),
    ("accuracy", {"y_true_shape": (8, 1), "y_pred_shape": (8, 5)},
     M.SparseCategoricalAccuracy),
    ("accuracy", {"y_true_shape": (8, 5), "y_pred_shape": (8, 5)}, M.CategoricalAccuracy),
    ("accuracy", {"loss": "binary_crossentropy", "y_true_shape": (8, 5),
                  "y_pred_shape": (8, 5)}, M.BinaryAccuracy),  # multi-label
    ("crossentropy", {"loss": "binary_crossentropy"}, M.BinaryCrossentropy),
    ("ce", {"y_true_shape": (8,), "y_pred_shape": (8, 5)}, M.SparseCategoricalCrossentropy),
    ("crossentropy", {"loss": "categorical_crossentropy"}, M.CategoricalCrossentropy),
])
def test_accuracy_resolution(identifier, kwargs, cls):
    metric = M.get(identifier, **kwargs)
    assert type(metric) is cls
    assert metric.name == identifier


def test_crossentropy_metric_follows_loss_from_logits():
    metric = M.get("crossentropy", loss=losses.CategoricalCrossentropy(from_logits=True))
    assert metric.from_logits is True
    z = R.standard_normal((4, 3))
    y = np.eye(3)[[0, 1, 2, 0]]
    metric.update_state(y, z)
    expected = losses.categorical_crossentropy(y, z, from_logits=True).data.mean()
    assert metric.result() == pytest.approx(expected)


def test_accuracy_without_hints_decides_per_batch():
    metric = M.get("accuracy")
    assert metric.name == "accuracy"
    metric.update_state([[1], [0]], [[0.9], [0.8]])  # binary: 1 of 2
    metric.update_state([2, 0], [[0.1, 0.2, 0.7], [0.1, 0.8, 0.1]])  # sparse: 1 of 2
    metric.update_state(np.eye(3)[[1, 1]], [[0.1, 0.8, 0.1], [0.1, 0.8, 0.1]])  # 2 of 2
    assert metric.result() == pytest.approx(4 / 6)


def test_get_names_and_other_identifiers():
    assert M.get("loss") is None and M.get(None) is None
    mse = M.get("mse")
    assert type(mse) is M.MeanSquaredError and mse.name == "mse"
    assert M.get("mean_absolute_error").name == "mean_absolute_error"
    auc = M.get("AUC")
    assert type(auc) is M.AUC and auc.name == "AUC"
    assert M.get("auc").name == "auc"
    assert type(M.get("binary_accuracy")) is M.BinaryAccuracy
    assert M.AUC().name == "auc" and M.Precision().name == "precision"
    mape = M.get("mape")
    assert isinstance(mape, M.MeanMetricWrapper) and mape.name == "mape"
    mape.update_state([[2.0]], [[1.0]])
    assert mape.result() == pytest.approx(50.0)
    huber = M.get("Huber")
    huber.update_state([[0.0]], [[3.0]])
    assert huber.result() == pytest.approx(2.5)
    instance = M.Recall(name="r")
    assert M.get(instance) is instance
    assert type(M.get(M.Precision)) is M.Precision

    def my_metric(y_true, y_pred):
        return np.abs(y_true - y_pred).max(axis=-1)

    custom = M.get(my_metric)
    assert custom.name == "my_metric"
    custom.update_state([[0.0, 1.0]], [[0.5, 3.0]])
    assert custom.result() == 2.0
    loss_metric = M.get(losses.MeanSquaredError())
    loss_metric.update_state([[0.0, 2.0]], [[0.0, 0.0]])
    assert loss_metric.result() == pytest.approx(2.0)


def test_unknown_metric_suggests_a_name():
    with pytest.raises(ValueError, match='Did you mean "accuracy"'):
        M.get("acuracy")


@pytest.mark.parametrize("metric", [
    M.Mean(name="m"), M.Sum(), M.Accuracy(), M.BinaryAccuracy(threshold=0.3),
    M.CategoricalAccuracy(), M.SparseCategoricalAccuracy(name="sca"),
    M.TopKCategoricalAccuracy(k=3), M.SparseTopKCategoricalAccuracy(k=2),
    M.MeanSquaredError(), M.MeanAbsoluteError(), M.RootMeanSquaredError(),
    M.AUC(num_thresholds=50, curve="PR", multi_label=True), M.AUC(thresholds=[0.3, 0.5]),
    M.Precision(thresholds=[0.2, 0.4]), M.Recall(top_k=2, class_id=1),
    M.MeanMetricWrapper(losses.huber, name="h", delta=2.0),
], ids=lambda m: type(m).__name__)
def test_config_round_trip(metric):
    config = metric.get_config()
    again = type(metric).from_config(config)
    assert again.get_config() == config
    restored = M.deserialize(M.serialize(metric))
    assert type(restored) is type(metric) and restored.get_config() == config


def test_keras_configs():
    assert M.BinaryAccuracy().get_config() == {"name": "binary_accuracy", "dtype": "float32",
                                               "threshold": 0.5}
    assert M.TopKCategoricalAccuracy().get_config()["k"] == 5
    assert M.AUC().get_config()["curve"] == "ROC"
