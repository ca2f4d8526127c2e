"""Losses: float64 finite-difference gradients, plain-NumPy reference formulas, reductions,
the logits fast path, validation errors, lookup and configs; torch/keras when importable."""
import os
import warnings

import numpy as np
import pytest

from glassnet import losses as L
from glassnet.autograd import Tensor, gradcheck, ops

EPS = 1e-7
R = np.random.default_rng(11)
N, C = 5, 4


def probs(n=N, c=C):
    return R.dirichlet(np.ones(c), n)


def one_hot(labels, c=C):
    return np.eye(c)[labels]


LABELS = R.integers(0, C, N)
Y_ONEHOT = one_hot(LABELS)
Y_BIN = R.integers(0, 2, (N, C)).astype(float)
Y_REG = R.standard_normal((N, C))
LOGITS = R.standard_normal((N, C)) * 2


def softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def activation_output(z, kind):
    """What a softmax/sigmoid activation returns: the probabilities, recording their logits."""
    z = z if isinstance(z, Tensor) else Tensor(z)
    out = ops.softmax(z) if kind == "softmax" else ops.sigmoid(z)
    out._logits = (kind, z)
    return out


def keras_module():
    os.environ.setdefault("KERAS_BACKEND", "numpy")
    return pytest.importorskip("keras")


# ---- plain-NumPy references (Keras' formulas, with 1e-7 clipping) ---------------------------
def ref_bce(y, p):
    p = np.clip(p, EPS, 1 - EPS)
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p), axis=-1)


def ref_cce(y, p):
    p = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
    return -np.sum(y * np.log(p), axis=-1)


def ref_log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


REFERENCES = {
    "mean_squared_error": lambda y, p: np.mean((y - p) ** 2, -1),
    "mean_absolute_error": lambda y, p: np.mean(np.abs(y - p), -1),
    "mean_absolute_percentage_error":
        lambda y, p: 100 * np.mean(np.abs((y - p) / np.maximum(np.abs(y), EPS)), -1),
    "mean_squared_logarithmic_error":
        lambda y, p: np.mean((np.log(np.maximum(p, EPS) + 1)
                              - np.log(np.maximum(y, EPS) + 1)) ** 2, -1),
    "huber": lambda y, p: np.mean(np.where(np.abs(p - y) <= 1, 0.5 * (p - y) ** 2,
                                           np.abs(p - y) - 0.5), -1),
    "log_cosh": lambda y, p: np.mean(np.log(np.cosh(p - y)), -1),
    "kl_divergence": lambda y, p: np.sum(np.clip(y, EPS, 1) * np.log(
        np.clip(y, EPS, 1) / np.clip(p, EPS, 1)), -1),
    "poisson": lambda y, p: np.mean(p - y * np.log(p + EPS), -1),
    "hinge": lambda y, p: np.mean(np.maximum(1 - (2 * y - 1) * p, 0), -1),
    "squared_hinge": lambda y, p: np.mean(np.maximum(1 - (2 * y - 1) * p, 0) ** 2, -1),
    "categorical_hinge": lambda y, p: np.maximum(
        np.max((1 - y) * p, -1) - np.sum(y * p, -1) + 1, 0),
    "cosine_similarity": lambda y, p: -np.sum(
        y / np.linalg.norm(y, axis=-1, keepdims=True)
        * p / np.linalg.norm(p, axis=-1, keepdims=True), -1),
    "binary_crossentropy": ref_bce,
    "categorical_crossentropy": ref_cce,
}

# (function name, y_true, y_pred): y_pred values keep away from kinks (|e| = delta, 0, ...).
VALUE_CASES = [
    ("mean_squared_error", Y_REG, R.standard_normal((N, C))),
    ("mean_absolute_error", Y_REG, Y_REG + R.choice([-1, 1], (N, C)) * R.uniform(.1, 1,
                                                                                  (N, C))),
    ("mean_absolute_percentage_error", Y_REG, R.standard_normal((N, C))),
    ("mean_squared_logarithmic_error", np.abs(Y_REG), R.uniform(0.1, 3, (N, C))),
    ("huber", Y_REG, Y_REG + R.choice([-1, 1], (N, C)) * R.choice([0.4, 1.7], (N, C))),
    ("log_cosh", Y_REG, R.standard_normal((N, C))),
    ("kl_divergence", probs(), probs()),
    ("poisson", R.uniform(0, 3, (N, C)), R.uniform(0.2, 3, (N, C))),
    ("hinge", Y_BIN, R.uniform(-3, 3, (N, C))),
    ("squared_hinge", Y_BIN, R.uniform(-3, 3, (N, C))),
    ("categorical_hinge", Y_ONEHOT, R.standard_normal((N, C))),
    ("cosine_similarity", Y_REG, R.standard_normal((N, C))),
    ("binary_crossentropy", Y_BIN, R.uniform(0.05, 0.95, (N, C))),
    ("categorical_crossentropy", Y_ONEHOT, probs()),
]


@pytest.mark.parametrize("name, y, p", VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
def test_values_match_numpy_reference(name, y, p):
    out = getattr(L, name)(y, Tensor(p))
    assert out.shape == (N,)
    np.testing.assert_allclose(out.data, REFERENCES[name](y, p), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name, y, p", VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
def test_gradients_wrt_y_pred(name, y, p):
    fn = getattr(L, name)
    assert gradcheck(lambda yp: fn(y, yp), p)


LOGIT_GRAD_CASES = [
    ("bce_from_logits", lambda z: L.binary_crossentropy(Y_BIN, z, from_logits=True)),
    ("bce_from_logits_smoothed",
     lambda z: L.binary_crossentropy(Y_BIN, z, from_logits=True, label_smoothing=0.2)),
    ("bce_sigmoid_output",
     lambda z: L.binary_crossentropy(Y_BIN, activation_output(z, "sigmoid"))),
    ("cce_from_logits", lambda z: L.categorical_crossentropy(Y_ONEHOT, z, from_logits=True)),
    ("cce_from_logits_smoothed",
     lambda z: L.categorical_crossentropy(Y_ONEHOT, z, from_logits=True, label_smoothing=.1)),
    ("cce_softmax_output",
     lambda z: L.categorical_crossentropy(Y_ONEHOT, activation_output(z, "softmax"))),
    ("cce_probability_path_of_softmax",
     lambda z: L.categorical_crossentropy(Y_ONEHOT, ops.softmax(z))),
    ("scce_from_logits",
     lambda z: L.sparse_categorical_crossentropy(LABELS, z, from_logits=True)),
    ("scce_softmax_output",
     lambda z: L.sparse_categorical_crossentropy(LABELS[:, None], activation_output(z,
                                                                                  "softmax"))),
    ("scce_ignore_class", lambda z: L.sparse_categorical_crossentropy(
        np.where(np.arange(N) == 2, -1, LABELS), z, from_logits=True, ignore_class=-1)),
    ("scce_probabilities", lambda z: L.sparse_categorical_crossentropy(LABELS, ops.softmax(z))),
    ("Loss_class_weighted", lambda z: L.CategoricalCrossentropy(from_logits=True)(
        Y_ONEHOT, z, sample_weight=np.linspace(0.5, 2, N))),
]


@pytest.mark.parametrize("name, fn", LOGIT_GRAD_CASES, ids=[c[0] for c in LOGIT_GRAD_CASES])
def test_gradients_wrt_logits(name, fn):
    assert gradcheck(fn, LOGITS)


def test_gradient_class_axis_not_last():
    z = R.standard_normal((2, C, 3))
    y = np.moveaxis(one_hot(R.integers(0, C, (2, 3))), -1, 1)
    assert gradcheck(lambda t: L.categorical_crossentropy(y, t, from_logits=True, axis=1), z)
    ref = -np.sum(y * np.moveaxis(ref_log_softmax(np.moveaxis(z, 1, -1)), -1, 1), axis=1)
    np.testing.assert_allclose(
        L.categorical_crossentropy(y, Tensor(z), from_logits=True, axis=1).data, ref)
    labels = np.argmax(y, axis=1)
    np.testing.assert_allclose(
        L.sparse_categorical_crossentropy(labels, Tensor(z), from_logits=True, axis=1).data,
        ref)


def test_logits_path_equals_probability_path_for_moderate_values():
    p = softmax(LOGITS)
    by_logits = L.categorical_crossentropy(Y_ONEHOT, Tensor(LOGITS), from_logits=True).data
    np.testing.assert_allclose(by_logits, ref_cce(Y_ONEHOT, p), rtol=1e-6)
    np.testing.assert_allclose(
        L.categorical_crossentropy(Y_ONEHOT, activation_output(LOGITS, "softmax")).data,
        by_logits, rtol=1e-6)
    np.testing.assert_allclose(
        L.sparse_categorical_crossentropy(LABELS, Tensor(p)).data, by_logits, rtol=1e-6)
    sig = 1 / (1 + np.exp(-LOGITS))
    np.testing.assert_allclose(
        L.binary_crossentropy(Y_BIN, Tensor(LOGITS), from_logits=True).data,
        ref_bce(Y_BIN, sig), rtol=1e-6)
    np.testing.assert_allclose(
        L.binary_crossentropy(Y_BIN, activation_output(LOGITS, "sigmoid")).data,
        ref_bce(Y_BIN, sig), rtol=1e-6)


def test_reference_logits_formula():
    out = L.categorical_crossentropy(Y_ONEHOT, Tensor(LOGITS), from_logits=True)
    np.testing.assert_allclose(out.data, -np.sum(Y_ONEHOT * ref_log_softmax(LOGITS), -1))
    z = LOGITS
    bce = np.mean(np.maximum(z, 0) - z * Y_BIN + np.log1p(np.exp(-np.abs(z))), -1)
    np.testing.assert_allclose(
        L.binary_crossentropy(Y_BIN, Tensor(z), from_logits=True).data, bce)


@pytest.mark.parametrize("kind", ["softmax", "sigmoid"])
def test_extreme_logits_are_stable(kind):
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 500.0]])
    y = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise",
                                                invalid="raise"):
        warnings.simplefilter("error")
        for from_logits in (True, False):
            zt = Tensor(z, requires_grad=True)
            y_pred = zt if from_logits else activation_output(zt, kind)
            if kind == "softmax":
                loss = L.CategoricalCrossentropy(from_logits=from_logits)(y, y_pred)
                expected = (2000.0 + 0.0) / 2  # row 0: 1000 - (-1000); row 1: 0
            else:
                loss = L.BinaryCrossentropy(from_logits=from_logits)(y, y_pred)
                expected = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
            loss.backward()
            assert np.isfinite(loss.data) and np.all(np.isfinite(zt.grad))
            # The activation output takes the exact logits path, not the clipped one.
            np.testing.assert_allclose(loss.data, expected, rtol=1e-12)


def test_softmax_recorded_axis_decides_the_path():
    z = R.standard_normal((2, C, 3))
    out = ops.softmax(Tensor(z), axis=1)
    out._logits = ("softmax", Tensor(z), 1)  # an activation that normalised over axis 1
    y_classes_on_1 = np.moveaxis(one_hot(R.integers(0, C, (2, 3))), -1, 1)
    log_p = np.log(softmax(z, axis=1))
    np.testing.assert_allclose(  # same axis: the logits kernel
        L.categorical_crossentropy(y_classes_on_1, out, axis=1).data,
        -np.sum(y_classes_on_1 * log_p, axis=1), rtol=1e-6)
    y_last = one_hot(R.integers(0, 3, (2, C)), c=3)
    np.testing.assert_allclose(  # another axis: Keras' probability formula
        L.categorical_crossentropy(y_last, out).data, ref_cce(y_last, softmax(z, axis=1)),
        rtol=1e-6)


def test_probability_path_clips_extreme_probabilities():
    y = np.array([[0.0, 1.0]])
    p = np.array([[1.0, 0.0]])
    np.testing.assert_allclose(L.categorical_crossentropy(y, Tensor(p)).data, -np.log(EPS))
    np.testing.assert_allclose(L.binary_crossentropy(y, Tensor(p)).data, -np.log(EPS),
                               rtol=1e-6)


def test_from_logits_on_probabilities_warns_once(monkeypatch):
    monkeypatch.setattr(L, "_WARNED_FROM_LOGITS", set())
    out = activation_output(LOGITS, "softmax")
    with pytest.warns(UserWarning, match="from_logits=True but the output is already a"):
        L.categorical_crossentropy(Y_ONEHOT, out, from_logits=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        L.categorical_crossentropy(Y_ONEHOT, out, from_logits=True)
        L.binary_crossentropy(Y_BIN, Tensor(LOGITS), from_logits=True)  # plain logits


def test_label_smoothing_values():
    ls = 0.2
    z = LOGITS
    smooth = Y_ONEHOT * (1 - ls) + ls / C
    np.testing.assert_allclose(
        L.categorical_crossentropy(Y_ONEHOT, Tensor(z), from_logits=True,
                                   label_smoothing=ls).data,
        -np.sum(smooth * ref_log_softmax(z), -1))
    p = softmax(z)
    np.testing.assert_allclose(
        L.categorical_crossentropy(Y_ONEHOT, Tensor(p), label_smoothing=ls).data,
        ref_cce(smooth, p), rtol=1e-6)
    p = R.uniform(0.05, 0.95, (N, C))
    np.testing.assert_allclose(
        L.binary_crossentropy(Y_BIN, Tensor(p), label_smoothing=ls).data,
        ref_bce(Y_BIN * (1 - ls) + 0.5 * ls, p))


def test_binary_targets_of_rank_one_are_expanded():
    y, p = np.array([0.0, 1.0, 1.0]), np.array([[0.2], [0.7], [0.4]])
    out = L.binary_crossentropy(y, Tensor(p))
    np.testing.assert_allclose(out.data, ref_bce(y[:, None], p))
    loss = L.BinaryCrossentropy()(y, activation_output(np.log(p / (1 - p)), "sigmoid"))
    np.testing.assert_allclose(loss.data, ref_bce(y[:, None], p).mean())


def test_sparse_accepts_int_float_and_column_labels():
    p = probs()
    expected = ref_cce(Y_ONEHOT, p)
    for labels in (LABELS, LABELS[:, None], LABELS.astype(float), LABELS.astype(np.int32)):
        np.testing.assert_allclose(
            L.sparse_categorical_crossentropy(labels, Tensor(p)).data, expected)


@pytest.mark.parametrize("labels, match", [
    ([0, 1, 2, 4, 0], r"\[0, 4\).*4"),
    ([0, -1, 2, 3, 0], r"\[0, 4\).*-1"),
    ([0, 1.5, 2, 3, 0], r"integer.*1\.5"),
])
def test_sparse_label_errors(labels, match):
    with pytest.raises(ValueError, match=match):
        L.sparse_categorical_crossentropy(np.array(labels), Tensor(probs()))


def test_sparse_ignore_class_as_keras():
    labels = np.array([0, 255, 2, 3, 255])
    p = probs()
    per_sample = L.sparse_categorical_crossentropy(labels, Tensor(p), ignore_class=255)
    valid = labels != 255
    expected = np.where(valid, ref_cce(one_hot(np.where(valid, labels, 0)), p), 0)
    np.testing.assert_allclose(per_sample.data, expected)
    mean = L.SparseCategoricalCrossentropy(ignore_class=255)(labels, Tensor(p))
    np.testing.assert_allclose(mean.data, expected.sum() / valid.sum())  # averages valid ones


@pytest.mark.parametrize("fn, y_shape, p_shape", [
    (L.mean_squared_error, (4, 3), (4, 2)),
    (L.binary_crossentropy, (4, 3), (4,)),
    (L.categorical_crossentropy, (4,), (4, 3)),
    (L.sparse_categorical_crossentropy, (4, 3), (4, 3)),
])
def test_shape_mismatch_names_both_shapes(fn, y_shape, p_shape):
    with pytest.raises(ValueError, match=rf"{y_shape}.*{p_shape}".replace("(", r"\(")
                       .replace(")", r"\)")):
        fn(np.zeros(y_shape), Tensor(np.full(p_shape, 0.5)))


# ---- reductions and sample weights ----------------------------------------------------------
def test_reductions_and_sample_weight_as_keras():
    y, p = Y_REG, R.standard_normal((N, C))
    w = R.uniform(0, 2, N)
    per = np.mean((y - p) ** 2, -1)
    cases = {"sum_over_batch_size": np.sum(per * w) / N, "mean": np.sum(per * w) / N,
             "sum": np.sum(per * w), "mean_with_sample_weight": np.sum(per * w) / w.sum()}
    for reduction, expected in cases.items():
        out = L.MeanSquaredError(reduction=reduction)(y, Tensor(p), sample_weight=w)
        assert out.shape == ()
        np.testing.assert_allclose(out.data, expected)
    for reduction in (None, "none"):
        out = L.MeanSquaredError(reduction=reduction)(y, Tensor(p), sample_weight=w)
        np.testing.assert_allclose(out.data, per * w)
    np.testing.assert_allclose(L.MeanSquaredError()(y, Tensor(p)).data, per.mean())
    # a (N, 1) weight column is squeezed to match (N,) per-sample losses
    np.testing.assert_allclose(
        L.MeanSquaredError()(y, Tensor(p), sample_weight=w[:, None]).data, np.sum(per * w) / N)


def test_invalid_reduction_lists_valid_ones():
    with pytest.raises(ValueError, match="sum_over_batch_size.*Received: reduction='avg'"):
        L.MeanSquaredError(reduction="avg")


def test_dtype_follows_y_pred():
    p32 = Tensor(np.full((2, 3), 0.5, dtype=np.float32))
    y64 = np.ones((2, 3))
    for fn in (L.mean_squared_error, L.binary_crossentropy, L.categorical_crossentropy,
               L.huber, L.kl_divergence):
        assert fn(y64, p32).dtype == np.float32
    assert L.MeanSquaredError()(y64, p32, sample_weight=np.ones(2)).dtype == np.float32
    assert L.mean_squared_error(y64, Tensor(np.zeros((2, 3)))).dtype == np.float64
    assert L.MeanSquaredError(dtype="float64")(y64, p32).dtype == np.float64


# ---- lookup, custom losses, configs ---------------------------------------------------------
def test_get_resolves_names_classes_and_callables():
    assert L.get("mse") is L.mean_squared_error is L.mse
    assert L.get("MSE") is L.mean_squared_error
    assert L.get("kullback_leibler_divergence") is L.kl_divergence
    assert L.get("logcosh") is L.log_cosh
    assert L.get("categorical_crossentropy") is L.categorical_crossentropy
    assert isinstance(L.get("CategoricalCrossentropy"), L.CategoricalCrossentropy)
    assert isinstance(L.get(L.Huber), L.Huber)
    inst = L.Huber(delta=2.0)
    assert L.get(inst) is inst
    cfg = L.get({"class_name": "CategoricalCrossentropy", "config": {"from_logits": True}})
    assert cfg.from_logits is True
    assert L.get(None) is None


def test_unknown_loss_suggests_a_name():
    with pytest.raises(ValueError, match='Did you mean "mean_squared_error"'):
        L.get("mean_sqared_error")


def test_custom_callable_loss_trains_through_ops():
    def my_loss(y_true, y_pred):
        return ops.mean(ops.square(y_pred - y_true) * 2.0, axis=-1)

    assert L.get(my_loss) is my_loss
    wrapper = L.LossFunctionWrapper(my_loss)
    assert wrapper.name == "my_loss"
    p = R.standard_normal((N, C))
    np.testing.assert_allclose(wrapper(Y_REG, Tensor(p)).data, 2 * np.mean((p - Y_REG) ** 2))
    assert gradcheck(lambda t: wrapper(Y_REG, t), p)


def test_custom_loss_subclass():
    class Cube(L.Loss):
        def call(self, y_true, y_pred):
            return ops.mean((y_pred - y_true) ** 3, axis=-1)

    loss = Cube(reduction="sum")
    assert loss.name == "cube"
    np.testing.assert_allclose(loss([[1.0], [0.0]], Tensor([[3.0], [1.0]])).data, 9.0)
    assert isinstance(L.deserialize(L.serialize(loss)), Cube)


ALL_CLASSES = [
    (L.BinaryCrossentropy, {"from_logits": True, "label_smoothing": 0.1, "axis": -1}),
    (L.CategoricalCrossentropy, {"label_smoothing": 0.2}),
    (L.SparseCategoricalCrossentropy, {"from_logits": True, "ignore_class": -1}),
    (L.MeanSquaredError, {"reduction": "sum"}), (L.MeanAbsoluteError, {}),
    (L.MeanAbsolutePercentageError, {}), (L.MeanSquaredLogarithmicError, {}),
    (L.Huber, {"delta": 2.5}), (L.LogCosh, {}), (L.KLDivergence, {"name": "kl"}),
    (L.Hinge, {}), (L.SquaredHinge, {}), (L.CategoricalHinge, {}), (L.Poisson, {}),
    (L.CosineSimilarity, {"axis": 1, "reduction": None}),
]


@pytest.mark.parametrize("cls, kwargs", ALL_CLASSES, ids=[c[0].__name__ for c in ALL_CLASSES])
def test_config_round_trip(cls, kwargs):
    loss = cls(**kwargs)
    config = loss.get_config()
    for key, value in kwargs.items():
        assert config[key] == value
    assert cls.from_config(config).get_config() == config
    again = L.deserialize(L.serialize(loss))
    assert type(again) is cls and again.get_config() == config
    assert L.get(cls.__name__).name == cls().name


def test_keras_default_names():
    assert L.Huber().name == "huber_loss"
    assert L.BinaryCrossentropy().name == "binary_crossentropy"
    assert L.KLDivergence().name == "kl_divergence"
    assert L.MeanSquaredError().get_config() == {"name": "mean_squared_error",
                                                 "reduction": "sum_over_batch_size"}


def test_function_wrapper_and_function_serialization():
    wrapper = L.LossFunctionWrapper(L.huber, reduction="sum", delta=3.0)
    again = L.LossFunctionWrapper.from_config(wrapper.get_config())
    assert again.fn is L.huber and again.get_config() == wrapper.get_config()
    assert L.deserialize(L.serialize(L.mean_squared_error)) is L.mean_squared_error
    assert L.deserialize("mae") is L.mean_absolute_error


# ---- external oracles when installed --------------------------------------------------------
def test_against_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    t = torch.from_numpy
    z, y = LOGITS, Y_ONEHOT
    np.testing.assert_allclose(
        L.sparse_categorical_crossentropy(LABELS, Tensor(z), from_logits=True).data,
        F.cross_entropy(t(z), t(LABELS), reduction="none").numpy(), rtol=1e-10)
    np.testing.assert_allclose(
        L.categorical_crossentropy(y, Tensor(z), from_logits=True, label_smoothing=0.1).data,
        F.cross_entropy(t(z), t(LABELS), reduction="none", label_smoothing=0.1).numpy(),
        rtol=1e-10)
    np.testing.assert_allclose(
        L.binary_crossentropy(Y_BIN, Tensor(z), from_logits=True).data,
        F.binary_cross_entropy_with_logits(t(z), t(Y_BIN), reduction="none").mean(-1).numpy(),
        rtol=1e-10)
    p = R.standard_normal((N, C))
    np.testing.assert_allclose(L.MeanSquaredError()(Y_REG, Tensor(p)).data,
                               F.mse_loss(t(p), t(Y_REG)).item(), rtol=1e-10)
    np.testing.assert_allclose(L.Huber(delta=0.7)(Y_REG, Tensor(p)).data,
                               F.huber_loss(t(p), t(Y_REG), delta=0.7).item(), rtol=1e-10)
    q, target = probs(), probs()
    np.testing.assert_allclose(
        L.kl_divergence(target, Tensor(q)).data,
        F.kl_div(t(np.log(q)), t(target), reduction="none").sum(-1).numpy(), rtol=1e-8)


def test_against_keras():
    keras = keras_module()
    p, pb = probs().astype("float32"), R.uniform(0.05, 0.95, (N, C)).astype("float32")
    z = LOGITS.astype("float32")
    w = R.uniform(0, 2, N).astype("float32")
    cases = [
        (L.BinaryCrossentropy(label_smoothing=0.1), keras.losses.BinaryCrossentropy(
            label_smoothing=0.1), Y_BIN, pb),
        (L.CategoricalCrossentropy(), keras.losses.CategoricalCrossentropy(), Y_ONEHOT, p),
        (L.CategoricalCrossentropy(from_logits=True),
         keras.losses.CategoricalCrossentropy(from_logits=True), Y_ONEHOT, z),
        (L.SparseCategoricalCrossentropy(), keras.losses.SparseCategoricalCrossentropy(),
         LABELS, p),
        (L.Huber(delta=0.5, reduction="sum"), keras.losses.Huber(delta=0.5, reduction="sum"),
         Y_REG, z),
        (L.KLDivergence(), keras.losses.KLDivergence(), probs(), p),
        (L.CosineSimilarity(), keras.losses.CosineSimilarity(), Y_REG, z),
        (L.LogCosh(), keras.losses.LogCosh(), Y_REG, z),
        (L.CategoricalHinge(), keras.losses.CategoricalHinge(), Y_ONEHOT, z),
        (L.MeanAbsolutePercentageError(), keras.losses.MeanAbsolutePercentageError(), Y_REG, z),
    ]
    for ours, theirs, y, y_pred in cases:
        y = y.astype("float32")
        got = ours(y, Tensor(y_pred), sample_weight=w).data
        np.testing.assert_allclose(got, np.asarray(theirs(y, y_pred, sample_weight=w)),
                                   rtol=2e-5, err_msg=type(ours).__name__)
