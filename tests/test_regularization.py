"""Regularisation (issue 3, item 3): regularizers, constraints, activity penalties, noise
layers, Monte-Carlo dropout. Oracles: the Keras formulas written out in NumPy, float64
finite differences, and Keras 3 itself (NumPy backend, separate process) when installed."""
import importlib.util
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

import glassnet as gn
from glassnet import constraints as C
from glassnet import layers, optimizers, utils
from glassnet import regularizers as R
from glassnet.autograd import Tensor, gradcheck
from glassnet.layers.regularization import mc_dropout
from helpers import check_layer

EPS = 1e-7  # Keras' backend.epsilon()
W = np.random.default_rng(7).standard_normal((6, 4)).astype("float32")
W3 = np.random.default_rng(8).standard_normal((3, 2, 5)).astype("float32")


def _seq(*layer_list, input_dim=3):
    return gn.Sequential([layers.Input(shape=(input_dim,)), *layer_list])


# ---- regularizers: formulas, gradients, lookup --------------------------------------------
@pytest.mark.parametrize("reg, expected", [
    (R.L1(0.3), 0.3 * np.abs(W).sum()),
    (R.L2(0.1), 0.1 * np.square(W).sum()),                       # no 1/2
    (R.L1L2(l1=0.01, l2=0.02), 0.01 * np.abs(W).sum() + 0.02 * np.square(W).sum()),
    (R.L1L2(l2=0.5), 0.5 * np.square(W).sum()),
    (R.Regularizer(), 0.0),
])
def test_regularizer_penalty_is_the_keras_formula(reg, expected):
    penalty = reg(W)
    assert isinstance(penalty, Tensor) and penalty.shape == ()
    assert penalty.dtype == np.float32
    assert float(penalty.data) == pytest.approx(expected, rel=1e-6)


def _orthogonal_reference(w, factor, mode):
    u = w / np.maximum(np.linalg.norm(w, axis=1 if mode == "rows" else 0, keepdims=True),
                       EPS)
    p = u @ u.T if mode == "rows" else u.T @ u
    n = p.shape[0]
    return factor * 0.5 * np.abs(p - np.diag(np.diag(p))).sum() / (n * (n - 1) / 2)


@pytest.mark.parametrize("mode", ["rows", "columns"])
def test_orthogonal_regularizer_formula(mode):
    reg = R.OrthogonalRegularizer(factor=0.2, mode=mode)
    expected = _orthogonal_reference(W.astype("float64"), 0.2, mode)
    assert float(reg(W).data) == pytest.approx(expected, rel=1e-5)
    assert float(reg(np.eye(4, dtype="float32")).data) == 0.0
    with pytest.raises(ValueError, match=r"rank-2.*\(3, 2, 5\)"):
        reg(W3)


@pytest.mark.parametrize("reg", [R.L1(0.3), R.L2(0.1), R.L1L2(0.2, 0.3),
                                 R.OrthogonalRegularizer(0.5),
                                 R.OrthogonalRegularizer(0.5, mode="columns")],
                         ids=lambda r: repr(r))
def test_regularizer_gradient_matches_finite_differences(reg):
    w = W.astype("float64")
    w[np.abs(w) < 0.05] = 0.3  # |x| is not differentiable at 0
    assert gradcheck(lambda x: reg(x), w)


def test_regularizer_gradient_is_the_analytic_one():
    var = gn.Variable(W.copy(), name="w", dtype=W.dtype)
    R.L1L2(l1=0.1, l2=0.2)(var).backward()
    np.testing.assert_allclose(var.grad, 0.1 * np.sign(W) + 2 * 0.2 * W, rtol=1e-6)


def test_keras_lowercase_names_are_the_classes():
    assert isinstance(R.l2(0.05), R.L2) and R.l2(0.05).l2 == 0.05
    assert isinstance(R.l1(), R.L1) and R.l1().l1 == 0.01
    assert isinstance(R.l1_l2(l1=0.1), R.L1L2)
    assert (C.max_norm, C.non_neg, C.unit_norm, C.min_max_norm) == \
        (C.MaxNorm, C.NonNeg, C.UnitNorm, C.MinMaxNorm)


@pytest.mark.parametrize("identifier, cls, config", [
    ("l2", R.L2, {"l2": 0.01}),
    ("L1", R.L1, {"l1": 0.01}),
    ("l1_l2", R.L1L2, {"l1": 0.01, "l2": 0.01}),
    ("orthogonal_regularizer", R.OrthogonalRegularizer, {"factor": 0.01, "mode": "rows"}),
    (R.L2, R.L2, {"l2": 0.01}),
    ({"class_name": "L1L2", "config": {"l1": 0.5, "l2": 0.0}}, R.L1L2,
     {"l1": 0.5, "l2": 0.0}),
])
def test_regularizers_get(identifier, cls, config):
    reg = R.get(identifier)
    assert type(reg) is cls and reg.get_config() == config


def test_regularizers_get_passes_instances_callables_and_none():
    reg = R.L2(0.3)
    assert R.get(reg) is reg and R.get(None) is None

    def my_penalty(x):
        return 0.5 * gn.ops.sum(x)
    assert R.get(my_penalty) is my_penalty


def test_unknown_regularizer_and_constraint_names_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown regularizer: 'l3'.*Valid names:.*l2"):
        R.get("l3")
    with pytest.raises(ValueError, match=r"Unknown constraint: 'maxnrm'.*max_norm"):
        C.get("maxnrm")
    with pytest.raises(ValueError, match=r"l2.*Received: l2=-1"):
        R.L2(-1)
    with pytest.raises(ValueError, match="mode.*Received: mode='diag'"):
        R.OrthogonalRegularizer(mode="diag")


@pytest.mark.parametrize("obj", [R.L1(0.3), R.L2(0.1), R.L1L2(0.1, 0.2),
                                 R.OrthogonalRegularizer(0.2, "columns")], ids=repr)
def test_regularizer_serialize_round_trip(obj):
    config = R.serialize(obj)
    assert config["module"] == "keras.regularizers"
    assert config["class_name"] == type(obj).__name__ and config["registered_name"] is None
    back = R.deserialize(json.loads(json.dumps(config)))
    assert type(back) is type(obj) and back.get_config() == obj.get_config()
    assert float(back(W).data) == float(obj(W).data)


@pytest.mark.parametrize("obj", [C.MaxNorm(3, axis=[0, 1]), C.NonNeg(), C.UnitNorm(1),
                                 C.MinMaxNorm(0.5, 2.0, 0.3, 0)], ids=repr)
def test_constraint_serialize_round_trip(obj):
    config = C.serialize(obj)
    assert config["module"] == "keras.constraints"
    back = C.deserialize(json.loads(json.dumps(config)))
    assert type(back) is type(obj) and back.get_config() == obj.get_config()
    np.testing.assert_array_equal(back(W3), obj(W3))


def test_custom_function_serializes_by_name_and_deserializes_with_custom_objects():
    def half_l2(x):
        return 0.5 * gn.ops.sum(gn.ops.square(x))
    config = R.serialize(half_l2)
    assert config["class_name"] == "function" and config["config"] == "half_l2"
    assert R.deserialize(config, custom_objects={"half_l2": half_l2}) is half_l2


# ---- constraints ----------------------------------------------------------------------------
def _norms(w, axis):
    return np.sqrt(np.sum(np.square(w.astype("float64")), axis=axis, keepdims=True))


@pytest.mark.parametrize("constraint, reference", [
    (C.MaxNorm(1.5), lambda w: w * np.clip(_norms(w, 0), 0, 1.5) / (EPS + _norms(w, 0))),
    (C.MaxNorm(2, axis=[0, 1]),
     lambda w: w * np.clip(_norms(w, (0, 1)), 0, 2) / (EPS + _norms(w, (0, 1)))),
    (C.NonNeg(), lambda w: np.maximum(w, 0)),
    (C.UnitNorm(axis=1), lambda w: w / (EPS + _norms(w, 1))),
    (C.MinMaxNorm(0.5, 1.0, rate=0.7, axis=0),
     lambda w: w * (0.7 * np.clip(_norms(w, 0), 0.5, 1.0) + 0.3 * _norms(w, 0))
     / (EPS + _norms(w, 0))),
])
@pytest.mark.parametrize("w", [W, W3 * 0.2], ids=["dense", "rank3_small"])
def test_constraint_is_the_keras_formula(constraint, reference, w):
    out = constraint(w)
    assert out.dtype == np.float32 and out.shape == w.shape
    np.testing.assert_allclose(out, reference(w), rtol=1e-6, atol=1e-7)


def test_constraints_reach_their_bounds():
    big = W * 10
    assert np.all(np.linalg.norm(C.MaxNorm(2)(big), axis=0) <= 2 + 1e-6)
    np.testing.assert_allclose(np.linalg.norm(C.UnitNorm()(W), axis=0), 1, rtol=1e-6)
    norms = np.linalg.norm(C.MinMaxNorm(1.0, 1.5)(np.concatenate([W * 0.01, big], 1)),
                           axis=0)
    # eps / n: a relative 5e-6 below the bound for the small (n = 0.02) columns, as Keras
    assert np.all(norms >= 1 - 1e-5) and np.all(norms <= 1.5 + 1e-6)
    assert C.NonNeg()(W).min() == 0 and W.min() < 0


def test_max_norm_bounds_every_column_after_each_update_in_fit():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5)).astype("float32")
    y = (x @ rng.standard_normal((5, 3)) * 4).astype("float32")

    def train(constraint):
        gn.utils.set_random_seed(0)
        dense = layers.Dense(3, kernel_initializer=gn.initializers.RandomNormal(0, 1.0, seed=1),
                             kernel_constraint=constraint)
        model = _seq(dense, input_dim=5)
        model.compile(optimizers.SGD(0.1), "mse")
        norms = []
        for _ in range(5):
            model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
            norms.append(np.linalg.norm(dense.kernel.numpy(), axis=0))
        return np.array(norms)

    bounded = train("max_norm")  # MaxNorm(2)
    assert np.all(bounded <= 2.0 * (1 + 1e-6)), bounded
    assert bounded.max() > 1.99  # the bound is active, not trivially met
    assert train(None).max() > 2.5  # without it, the same run leaves the ball


def test_non_neg_kernel_constraint_in_fit():
    x = np.random.default_rng(1).standard_normal((32, 3)).astype("float32")
    y = -x.sum(axis=1, keepdims=True)  # pulls the kernel negative
    dense = layers.Dense(1, kernel_constraint=C.NonNeg())
    model = _seq(dense)
    model.compile(optimizers.SGD(0.1), "mse")
    model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert dense.kernel.numpy().min() >= 0.0


# ---- layers: wiring, losses, penalties in the training loss -------------------------------
def test_dense_string_regularizers_and_constraints_resolve():
    dense = layers.Dense(4, kernel_regularizer="l2", bias_regularizer="l1",
                         activity_regularizer="l1_l2", kernel_constraint="max_norm",
                         bias_constraint="non_neg")
    assert isinstance(dense.kernel_regularizer, R.L2)
    assert isinstance(dense.bias_regularizer, R.L1)
    assert isinstance(dense.activity_regularizer, R.L1L2)
    assert isinstance(dense.kernel_constraint, C.MaxNorm)
    dense(np.ones((2, 3)))
    assert dense.kernel.regularizer is dense.kernel_regularizer
    assert dense.bias.constraint is dense.bias_constraint


def test_dense_config_round_trip_with_regularizers_and_constraints():
    layer = check_layer(
        layers.Dense, {"units": 3, "kernel_regularizer": "l2",
                       "bias_regularizer": R.L1(0.2), "activity_regularizer": R.L2(0.1),
                       "kernel_constraint": C.MaxNorm(2.5), "bias_constraint": "non_neg"},
        input_shape=(4, 5), expected_output_shape=(4, 3),
        expected_trainable=2, expected_non_trainable=0)
    config = layer.get_config()
    assert config["kernel_regularizer"] == {
        "module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.01},
        "registered_name": None}
    assert config["activity_regularizer"]["config"] == {"l2": 0.1}
    assert config["kernel_constraint"]["config"] == {"max_value": 2.5, "axis": 0}
    assert "activity_regularizer" not in layers.Dense(2).get_config()  # Keras: only if set


def test_batchnorm_and_prelu_regularizers_are_wired():
    bn = layers.BatchNormalization(gamma_regularizer="l2", beta_constraint="non_neg")
    bn(np.ones((4, 3)))
    assert isinstance(bn.gamma.regularizer, R.L2)
    assert isinstance(bn.beta.constraint, C.NonNeg)
    clone = layers.BatchNormalization.from_config(bn.get_config())
    assert clone.get_config()["gamma_regularizer"] == bn.get_config()["gamma_regularizer"]
    assert bn.get_config()["beta_constraint"]["class_name"] == "NonNeg"
    prelu = layers.PReLU(alpha_regularizer=R.L1(0.5), alpha_constraint="non_neg",
                         alpha_initializer="ones")
    prelu(np.ones((2, 3)))
    assert [float(p.data) for p in prelu.losses] == pytest.approx([1.5])
    assert layers.PReLU.from_config(prelu.get_config()).get_config()["alpha_regularizer"] \
        == {"module": "keras.regularizers", "class_name": "L1", "config": {"l1": 0.5},
            "registered_name": None}


def test_layer_losses_keras_docstring_example():
    # keras.regularizers.Regularizer docstring: activity 5.0 (after / batch 5), kernel 0.25
    dense = layers.Dense(5, kernel_initializer="ones", kernel_regularizer=R.L1(0.01),
                         activity_regularizer=R.L2(0.01))
    dense(np.full((5, 5), 2.0, "float32"))
    assert [float(t.data) for t in dense.losses] == pytest.approx([5.0, 0.25], rel=1e-6)


def test_model_losses_list_each_penalty_once_and_reset_each_call():
    inner = gn.Sequential([layers.Dense(4, kernel_regularizer="l2", bias_regularizer="l1"),
                           layers.Dense(2, activity_regularizer=R.L1(0.1))])
    model = _seq(layers.Dense(3, kernel_regularizer=R.L2(0.5)), inner)
    x = np.random.default_rng(0).standard_normal((8, 3)).astype("float32")
    out_inner_first = inner.layers[0](model.layers[0](x))
    model(x)
    losses = model.losses
    assert len(losses) == 4  # 1 activity + 3 weight penalties, none counted twice
    activity = 0.1 * np.abs(inner.layers[1](out_inner_first).numpy()).sum() / 8
    weights = (0.5 * np.square(model.layers[0].kernel.numpy()).sum()
               + 0.01 * np.square(inner.layers[0].kernel.numpy()).sum()
               + 0.01 * np.abs(inner.layers[0].bias.numpy()).sum())
    assert float(sum(t.data for t in losses)) == pytest.approx(activity + weights, rel=1e-5)
    model(x[:4])
    assert len(model.losses) == 4  # recomputed for the last call, not accumulated
    assert len(model.layers[0].losses) == 1


def _data(n=32, d=3, k=2, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, d)).astype("float32"),
            rng.standard_normal((n, k)).astype("float32"))


def _twin_models(**dense_kwargs):
    """Two identical 2-layer models, the second with extra Dense arguments on layer 2."""
    made = []
    for extra in ({}, dense_kwargs):
        model = _seq(layers.Dense(4, activation="tanh",
                                  kernel_initializer=gn.initializers.GlorotUniform(seed=3)),
                     layers.Dense(2, kernel_initializer=gn.initializers.GlorotUniform(seed=4),
                                  bias_initializer="ones", **extra))
        model.compile(optimizers.SGD(0.1), "mse")
        made.append(model)
    return made


def test_regularised_loss_is_data_loss_plus_penalty_exactly():
    x, y = _data()
    plain, reg = _twin_models(kernel_regularizer=R.L2(0.03), bias_regularizer=R.L1(0.02))
    kernel, bias = reg.layers[1].kernel.numpy().copy(), reg.layers[1].bias.numpy().copy()
    data_loss = np.mean(np.square(y - reg.predict(x, verbose=0)))
    penalty = 0.03 * np.square(kernel).sum() + 0.02 * np.abs(bias).sum()
    assert [float(t.data) for t in reg.losses] == pytest.approx(
        [0.03 * np.square(kernel).sum(), 0.02 * np.abs(bias).sum()], rel=1e-6)
    loss_plain = plain.train_on_batch(x, y)
    loss_reg = reg.train_on_batch(x, y)
    assert loss_plain == pytest.approx(data_loss, rel=1e-6)
    assert loss_reg == pytest.approx(data_loss + penalty, rel=1e-6)
    # the gradient of the penalty enters the update once: d/dW = 2 * 0.03 * W
    k_plain, k_reg = plain.layers[1].kernel.numpy(), reg.layers[1].kernel.numpy()
    np.testing.assert_allclose(k_plain - k_reg, 0.1 * 2 * 0.03 * kernel, rtol=1e-4,
                               atol=1e-7)
    b_plain, b_reg = plain.layers[1].bias.numpy(), reg.layers[1].bias.numpy()
    np.testing.assert_allclose(b_plain - b_reg, 0.1 * 0.02 * np.sign(bias), rtol=1e-4,
                               atol=1e-7)


def test_evaluate_includes_the_penalty_as_keras_does():
    x, y = _data()
    plain, reg = _twin_models(kernel_regularizer=R.L2(0.05))
    penalty = 0.05 * np.square(reg.layers[1].kernel.numpy()).sum()
    assert reg.evaluate(x, y, verbose=0) == pytest.approx(
        plain.evaluate(x, y, verbose=0) + penalty, rel=1e-6)


def test_activity_regularizer_penalty_in_loss_through_the_fast_path():
    x, y = _data()
    plain, reg = _twin_models(activity_regularizer=R.L2(0.2))
    out = reg.predict(x, verbose=0)
    penalty = 0.2 * np.square(out).sum() / len(x)  # Keras 3 divides by the batch size
    reg(x)  # the regularised layer is not first: Sequential must not skip __call__
    assert len(reg.losses) == 1
    assert float(reg.losses[0].data) == pytest.approx(penalty, rel=1e-6)
    assert reg.train_on_batch(x, y) == pytest.approx(plain.train_on_batch(x, y) + penalty,
                                                     rel=1e-6)
    assert not np.allclose(reg.layers[1].kernel.numpy(), plain.layers[1].kernel.numpy())


def test_frozen_weights_are_not_penalised():
    x, y = _data()
    model = _seq(layers.Dense(4, kernel_regularizer="l2"), layers.Dense(2))
    model(x)
    assert len(model.losses) == 1
    model.layers[0].trainable = False
    assert model.losses == []


# ---- noise layers ---------------------------------------------------------------------------
NOISE_LAYERS = [(layers.AlphaDropout, {"rate": 0.2}), (layers.GaussianNoise, {"stddev": 0.3}),
                (layers.GaussianDropout, {"rate": 0.3})]


@pytest.mark.parametrize("cls, kwargs", NOISE_LAYERS)
def test_noise_layer_contract_and_identity_at_inference(cls, kwargs):
    layer = check_layer(cls, {**kwargs, "seed": 3}, input_shape=(4, 5),
                        expected_output_shape=(4, 5), expected_trainable=0,
                        expected_non_trainable=0, gradcheck_inputs=False)
    x = np.random.default_rng(0).standard_normal((4, 5)).astype("float32")
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    y = layer(x, training=True)
    assert y.dtype == np.float32 and not np.allclose(y.numpy(), x)
    y64 = cls(**kwargs, seed=3)(Tensor(x.astype("float64")), training=True)
    assert y64.dtype == np.float64


@pytest.mark.parametrize("cls, kwargs", NOISE_LAYERS)
def test_noise_layer_vjp_with_fixed_noise(cls, kwargs):
    x = np.random.default_rng(1).standard_normal((3, 4))

    def fn(inp):  # a fresh layer with the same seed draws the same noise on every call
        return cls(**kwargs, seed=11)(inp, training=True)
    assert gradcheck(fn, x)


@pytest.mark.parametrize("cls, kwargs", NOISE_LAYERS)
def test_noise_layer_seed_reproducible(cls, kwargs):
    x = np.ones((5, 6), "float32")
    a = cls(**kwargs, seed=5)(x, training=True).numpy()
    b = cls(**kwargs, seed=5)(x, training=True).numpy()
    np.testing.assert_array_equal(a, b)


def test_alpha_dropout_keeps_selu_mean_and_variance():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 500)).astype("float32")  # SELU's fixed point: N(0, 1)
    rate = 0.2
    y = layers.AlphaDropout(rate, seed=0)(x, training=True).numpy()
    assert abs(y.mean()) < 0.01 and abs(y.var() - 1) < 0.01
    alpha_p = -1.6732632423543772 * 1.0507009873554805
    a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
    dropped = np.isclose(y, a * alpha_p - a * alpha_p * rate)
    assert dropped.mean() == pytest.approx(rate, abs=0.005)
    np.testing.assert_allclose(y[~dropped], a * x[~dropped] - a * alpha_p * rate, rtol=1e-5,
                               atol=1e-6)
    plain = layers.Dropout(rate, seed=0)(x, training=True).numpy()
    assert abs(plain.var() - 1) > 0.1  # inverted dropout would not keep the variance


def test_alpha_dropout_noise_shape_shares_the_mask():
    y = layers.AlphaDropout(0.5, noise_shape=(None, 1), seed=0)(
        np.ones((50, 4), "float32"), training=True).numpy()
    assert np.all(y == y[:, :1])
    assert len(np.unique(y[:, 0])) == 2


def test_gaussian_noise_and_dropout_statistics():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 2.0, (300, 400)).astype("float32")
    added = layers.GaussianNoise(0.3, seed=1)(x, training=True).numpy() - x
    assert abs(added.mean()) < 0.005 and added.std() == pytest.approx(0.3, rel=0.01)
    factor = layers.GaussianDropout(0.3, seed=1)(x, training=True).numpy() / x
    assert abs(factor.mean() - 1) < 0.005
    assert factor.var() == pytest.approx(0.3 / 0.7, rel=0.02)


def test_noise_layer_argument_errors_name_the_value():
    with pytest.raises(ValueError, match=r"rate.*\[0, 1\).*Received: rate=1"):
        layers.AlphaDropout(1)
    with pytest.raises(ValueError, match=r"rate.*Received: rate=-0.1"):
        layers.GaussianDropout(-0.1)
    with pytest.raises(ValueError, match=r"stddev.*Received: stddev=1.5"):
        layers.GaussianNoise(1.5)


# ---- Monte-Carlo dropout ------------------------------------------------------------------
def _mc_model(dropout=True, seed=0):
    gn.utils.set_random_seed(seed)
    stack = [layers.Dense(16, activation="relu"), layers.BatchNormalization()]
    if dropout:
        stack.append(layers.Dropout(0.3, seed=seed))
    stack.append(layers.Dense(2))
    model = _seq(*stack, input_dim=4)
    model.compile("sgd", "mse")
    x = np.random.default_rng(seed).standard_normal((40, 4)).astype("float32")
    model.fit(x, x[:, :2], epochs=2, batch_size=8, verbose=0)
    return model, x


def test_mc_predict_spread_and_batchnorm_statistics_untouched():
    model, x = _mc_model()
    bn = model.layers[1]
    before = [w.numpy().copy() for w in bn.non_trainable_weights]
    updates = bn.num_updates
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the BN convergence hint is not under test
        mean, std = utils.mc_predict(model, x[:10], n_samples=20)
        deterministic = model.predict(x[:10], verbose=0)
    assert mean.shape == std.shape == (10, 2) and mean.dtype == std.dtype == np.float32
    assert np.all(std > 0)
    for w, old in zip(bn.non_trainable_weights, before):
        np.testing.assert_array_equal(w.numpy(), old)
    assert bn.num_updates == updates
    # flags restored: plain inference is deterministic again
    np.testing.assert_array_equal(deterministic, model.predict(x[:10], verbose=0))


def test_mc_predict_without_dropout_has_zero_spread_and_warns():
    model, x = _mc_model(dropout=False)
    with pytest.warns(UserWarning, match="no Dropout"):
        mean, std = utils.mc_predict(model, x[:10], n_samples=7)
    assert np.all(std == 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(mean, model.predict(x[:10], verbose=0))


def test_mc_predict_mean_is_the_inference_output_for_a_linear_net():
    # inverted dropout keeps the expectation: E[W2 (m * W1 x)] = W2 W1 x
    gn.utils.set_random_seed(0)
    model = _seq(layers.Dense(8), layers.Dropout(0.5, seed=1), layers.Dense(1), input_dim=3)
    x = np.random.default_rng(2).standard_normal((5, 3)).astype("float32")
    mean, std = utils.mc_predict(model, x, n_samples=400, batch_size=2)
    exact = model.predict(x, verbose=0)
    assert np.all(np.abs(mean - exact) < 5 * std / np.sqrt(400) + 1e-6)
    with pytest.raises(ValueError, match="n_samples.*Received: n_samples=0"):
        utils.mc_predict(model, x, n_samples=0)


def test_mc_dropout_scope_covers_the_dropout_family_only_and_nests():
    drop, alpha, gdrop, noise = (layers.Dropout(0.5), layers.AlphaDropout(0.5),
                                 layers.GaussianDropout(0.5), layers.GaussianNoise(0.5))
    model = _seq(drop, alpha, gdrop, noise, input_dim=6)
    x = np.ones((4, 6), "float32")
    with mc_dropout(model) as active:
        assert set(map(id, active)) == {id(drop), id(alpha), id(gdrop)}
        for layer in (drop, alpha, gdrop):
            assert not np.allclose(layer(x).numpy(), x)
        np.testing.assert_array_equal(noise(x).numpy(), x)
        with mc_dropout(drop):
            pass
        assert drop._mc_sampling  # the inner scope restored the outer one's flag
    for layer in (drop, alpha, gdrop):
        np.testing.assert_array_equal(layer(x).numpy(), x)
        assert "_mc_sampling" not in vars(layer)


def test_mc_dropout_layer_is_always_on_and_round_trips():
    layer = layers.MCDropout(0.5, seed=0)
    y = layer(np.ones((20, 20), "float32"), training=False).numpy()
    assert set(np.unique(y)) == {0.0, 2.0}
    clone = layers.get_layer_class("MCDropout").from_config(layer.get_config())
    assert type(clone) is layers.MCDropout and clone.rate == 0.5
    alpha = layers.MCAlphaDropout(0.3, seed=0)
    assert not np.allclose(alpha(np.ones((5, 5), "float32")).numpy(), 1.0)


def test_model_call_with_training_true_runs_dropout():
    model = _seq(layers.Dense(8), layers.Dropout(0.5), input_dim=3)
    x = np.ones((6, 3), "float32")
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())
    assert not np.allclose(model(x, training=True).numpy(), model(x).numpy())


# ---- Keras 3 as the oracle (separate process: the backend is chosen at import) ------------
_KERAS_SCRIPT = r"""
import json, os, sys
os.environ["KERAS_BACKEND"] = "numpy"
try:
    import keras
    from keras import regularizers as R, constraints as C
except Exception as exc:
    print("NO_KERAS", exc); sys.exit(0)
import numpy as np
inp = json.loads(sys.stdin.read())
w, w3, x = (np.array(inp[k], dtype="float32") for k in ("w", "w3", "x"))
regs = {"L1": R.L1(0.3), "L2": R.L2(0.1), "L1L2": R.L1L2(0.01, 0.02),
        "orth_rows": R.OrthogonalRegularizer(0.2), "orth_cols":
        R.OrthogonalRegularizer(0.2, mode="columns")}
cons = {"max_norm": C.MaxNorm(1.5), "max_norm3": C.MaxNorm(2, axis=[0, 1]),
        "non_neg": C.NonNeg(), "unit_norm": C.UnitNorm(axis=1),
        "min_max": C.MinMaxNorm(0.5, 1.0, rate=0.7, axis=0)}
wv = keras.Variable(w)  # as in a layer (Keras' ndarray path of normalize() is broken)
out = {"reg": {k: float(np.asarray(r(wv))) for k, r in regs.items()},
       "reg_config": {k: R.serialize(r) for k, r in regs.items()},
       "con": {k: np.asarray(c(w3 if k.endswith("3") else w)).tolist()
               for k, c in cons.items()},
       "con_config": {k: C.serialize(c) for k, c in cons.items()}}
dense = keras.layers.Dense(4, kernel_regularizer="l2", bias_regularizer=R.L1(0.2),
                           activity_regularizer=R.L2(0.1), kernel_constraint=C.MaxNorm(3))
dense.build((None, 6))
dense.set_weights([w[:, :4], np.arange(4, dtype="float32")])
dense(x)
out["dense_losses"] = [float(np.asarray(t)) for t in dense.losses]
cfg = dense.get_config()
out["dense_config"] = {k: cfg.get(k) for k in ("kernel_regularizer", "bias_regularizer",
                       "activity_regularizer", "kernel_constraint", "bias_constraint")}
print("RESULT" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def keras_results():
    if importlib.util.find_spec("keras") is None:  # not imported here: backend choice
        pytest.skip("keras is not installed")
    x = np.random.default_rng(9).standard_normal((5, 6)).astype("float32")
    payload = json.dumps({"w": W.tolist(), "w3": (W3 * 0.2).tolist(), "x": x.tolist()})
    proc = subprocess.run([sys.executable, "-c", _KERAS_SCRIPT], input=payload,
                          capture_output=True, text=True, timeout=300)
    if "NO_KERAS" in proc.stdout:
        pytest.skip("keras is installed but cannot be imported with the numpy backend")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.split("RESULT", 1)[1]), x


def test_regularizers_match_keras(keras_results):
    theirs, _ = keras_results
    ours = {"L1": R.L1(0.3), "L2": R.L2(0.1), "L1L2": R.L1L2(0.01, 0.02),
            "orth_rows": R.OrthogonalRegularizer(0.2),
            "orth_cols": R.OrthogonalRegularizer(0.2, mode="columns")}
    for key, reg in ours.items():
        assert float(reg(W).data) == pytest.approx(theirs["reg"][key], rel=1e-5), key
        mine, keras_config = R.serialize(reg), theirs["reg_config"][key]
        assert {k: v for k, v in mine.items() if k != "config"} == \
            {k: v for k, v in keras_config.items() if k != "config"}
        _assert_config_close(mine["config"], keras_config["config"], key)


def _assert_config_close(mine, theirs, key):
    """Keras keeps l1 / factor as float32 tensors: 0.3 comes back as 0.30000001192..."""
    assert set(mine) == set(theirs), key
    for name, value in mine.items():
        if isinstance(value, float):
            assert value == pytest.approx(theirs[name], rel=1e-6), (key, name)
        else:
            assert value == theirs[name], (key, name)


def test_constraints_match_keras(keras_results):
    theirs, _ = keras_results
    ours = {"max_norm": C.MaxNorm(1.5), "max_norm3": C.MaxNorm(2, axis=[0, 1]),
            "non_neg": C.NonNeg(), "unit_norm": C.UnitNorm(axis=1),
            "min_max": C.MinMaxNorm(0.5, 1.0, rate=0.7, axis=0)}
    for key, con in ours.items():
        w = W3 * 0.2 if key.endswith("3") else W
        np.testing.assert_allclose(con(w), np.array(theirs["con"][key]), rtol=1e-6,
                                   atol=1e-7, err_msg=key)
        assert C.serialize(con) == theirs["con_config"][key]


def test_dense_losses_and_config_match_keras(keras_results):
    theirs, x = keras_results
    dense = layers.Dense(4, kernel_regularizer="l2", bias_regularizer=R.L1(0.2),
                         activity_regularizer=R.L2(0.1), kernel_constraint=C.MaxNorm(3))
    dense.build((None, 6))
    dense.set_weights([W[:, :4], np.arange(4, dtype="float32")])
    dense(x)
    assert [float(t.data) for t in dense.losses] == pytest.approx(theirs["dense_losses"],
                                                                  rel=1e-5)
    config = dense.get_config()
    for key, value in theirs["dense_config"].items():
        mine = config.get(key)
        if value is None or mine is None:
            assert mine == value, key
        else:
            assert {k: v for k, v in mine.items() if k != "config"} == \
                {k: v for k, v in value.items() if k != "config"}, key
            _assert_config_close(mine["config"], value["config"], key)
