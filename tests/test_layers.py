"""Core and normalization layers: contract, gradients, Keras semantics, errors."""
import numpy as np
import pytest

from glassnet import layers
from glassnet.autograd import Tensor, no_grad
from helpers import check_layer


def test_dense_contract():
    check_layer(layers.Dense, {"units": 3}, (2, 4), (2, 3), 2, 0)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "softmax", "elu", "selu",
                                        "leaky_relu", "gelu", "swish"])
def test_dense_with_activation_contract(activation):
    check_layer(layers.Dense, {"units": 3, "activation": activation}, (5, 4), (5, 3), 2, 0)


def test_dense_no_bias_and_rank3():
    check_layer(layers.Dense, {"units": 2, "use_bias": False}, (2, 3, 4), (2, 3, 2), 1, 0)


def test_dense_keras_weight_order_and_shapes():
    d = layers.Dense(5)
    d.build((None, 3))
    assert [w.name for w in d.weights] == ["kernel", "bias"]
    assert d.kernel.shape == (3, 5) and d.bias.shape == (5,)
    assert d.kernel.dtype == np.float32
    assert np.all(d.bias.numpy() == 0)
    limit = np.sqrt(6 / (3 + 5))
    assert np.all(np.abs(d.kernel.numpy()) <= limit)
    assert d.count_params() == 20


def test_dense_computes_affine_then_activation():
    d = layers.Dense(2, activation="relu")
    x = np.array([[1.0, -2.0, 3.0]], dtype=np.float32)
    y = d(x).data
    ref = np.maximum(x @ d.kernel.numpy() + d.bias.numpy(), 0)
    np.testing.assert_allclose(y, ref, rtol=1e-6)


def test_dense_softmax_output_keeps_logits():
    d = layers.Dense(3, activation="softmax")
    y = d(np.ones((2, 4), dtype=np.float32))
    assert y._logits is not None and y._logits[0] == "softmax"
    np.testing.assert_allclose(y.data.sum(axis=1), 1.0, rtol=1e-6)


def test_dense_input_shape_error_names_layer_expected_and_actual():
    d = layers.Dense(3, name="hidden_1")
    d(np.ones((2, 4)))
    with pytest.raises(ValueError) as err:
        d(np.ones((2, 5)))
    message = str(err.value)
    assert "hidden_1" in message and "4" in message and "(2, 5)" in message


def test_dense_rejects_bad_units_and_unknown_kwargs():
    with pytest.raises(ValueError, match="units"):
        layers.Dense(0)
    with pytest.raises(TypeError, match="Did you mean"):
        layers.Dense(3, activaton="relu")
    with pytest.raises(ValueError, match="Did you mean"):
        layers.Dense(3, activation="rleu")


def test_non_numeric_input_is_a_clear_error():
    with pytest.raises(TypeError, match="numeric"):
        layers.Dense(2)(np.array([["a", "b"]]))


def test_flatten_and_reshape():
    check_layer(layers.Flatten, {}, (2, 3, 4), (2, 12), 0, 0)
    check_layer(layers.Reshape, {"target_shape": (4, 3)}, (2, 12), (2, 4, 3), 0, 0)
    assert layers.Reshape((-1, 2)).compute_output_shape((None, 6)) == (None, 3, 2)
    with pytest.raises(ValueError, match="cannot reshape"):
        layers.Reshape((5,))(np.ones((2, 6)))


def test_dropout_training_vs_inference():
    layer = layers.Dropout(0.5, seed=1)
    x = np.ones((200, 50), dtype=np.float32)
    np.testing.assert_array_equal(layer(x, training=False).data, x)
    y = layer(x, training=True).data
    kept = y != 0
    assert 0.4 < kept.mean() < 0.6
    np.testing.assert_allclose(y[kept], 2.0)
    assert y.dtype == np.float32
    with pytest.raises(ValueError, match="rate"):
        layers.Dropout(1.0)


def test_dropout_gradient_uses_the_same_mask():
    layer = layers.Dropout(0.3, seed=0)
    x = Tensor(np.ones((10, 10)), requires_grad=True)
    y = layer(x, training=True)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, y.data)


# ---- BatchNormalization -------------------------------------------------------------------
def test_batchnorm_contract_and_defaults():
    bn = check_layer(layers.BatchNormalization, {}, (6, 3), (6, 3), 2, 2)
    assert bn.momentum == 0.99 and bn.epsilon == 1e-3
    assert [w.name for w in bn.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]


def test_batchnorm_training_uses_batch_stats_and_updates_moving_stats():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((64, 3)) * 3 + 5).astype(np.float32)
    bn = layers.BatchNormalization(momentum=0.9)
    y = bn(x, training=True).data
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(0), x.var(0) / (x.var(0) + 1e-3), rtol=1e-4)
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.1 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), 0.9 + 0.1 * x.var(0), rtol=1e-5)


def test_batchnorm_inference_uses_moving_stats():
    bn = layers.BatchNormalization()
    x = np.random.default_rng(1).standard_normal((8, 2)).astype(np.float32)
    bn.build((None, 2))
    bn.set_weights([np.array([2.0, 1.0]), np.array([0.5, -1.0]), np.array([1.0, 2.0]),
                    np.array([4.0, 0.25])])
    y = bn(x, training=False).data
    ref = (x - [1.0, 2.0]) / np.sqrt(np.array([4.0, 0.25]) + 1e-3) * [2.0, 1.0] + [0.5, -1.0]
    np.testing.assert_allclose(y, ref, rtol=1e-5)


def test_frozen_batchnorm_runs_in_inference_mode_and_keeps_stats():
    bn = layers.BatchNormalization()
    x = np.random.default_rng(2).standard_normal((16, 4)).astype(np.float32) + 3
    bn(x, training=True)
    stats = [bn.moving_mean.numpy().copy(), bn.moving_variance.numpy().copy()]
    bn.trainable = False
    y_train = bn(x, training=True).data
    y_infer = bn(x, training=False).data
    np.testing.assert_array_equal(y_train, y_infer)
    for w, before in zip([bn.moving_mean, bn.moving_variance], stats):
        np.testing.assert_array_equal(w.numpy(), before)
    assert bn.trainable_weights == [] and len(bn.non_trainable_weights) == 4
    bn.trainable = True
    assert len(bn.trainable_weights) == 2  # moving stats stay non-trainable


def test_batchnorm_rejects_batch_of_one_in_training():
    bn = layers.BatchNormalization(name="bn_one")
    with pytest.raises(ValueError, match="bn_one"):
        bn(np.ones((1, 3)), training=True)
    assert bn(np.ones((1, 3)), training=False).shape == (1, 3)


def test_batchnorm_channels_first_axis():
    check_layer(layers.BatchNormalization, {"axis": 1}, (4, 3, 2), (4, 3, 2), 2, 2)


def test_batchnorm_matches_torch_training_step():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((32, 5))
    g = rng.standard_normal((32, 5))
    bn = layers.BatchNormalization(momentum=0.9, epsilon=1e-3, dtype="float64")
    xt = Tensor(x, requires_grad=True)
    y = bn(xt, training=True)
    y.backward(g)
    tbn = torch.nn.BatchNorm1d(5, eps=1e-3, momentum=0.1, dtype=torch.float64)
    tx = torch.tensor(x, requires_grad=True)
    ty = tbn(tx)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(xt.grad, tx.grad.numpy(), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(bn.gamma.grad, tbn.weight.grad.numpy(), rtol=1e-8)
    np.testing.assert_allclose(bn.moving_mean.numpy(), tbn.running_mean.numpy(), rtol=1e-8)
    # torch stores the unbiased running variance; Keras (and glassnet) the biased one.
    n = len(x)
    np.testing.assert_allclose(bn.moving_variance.numpy(),
                               0.9 + 0.1 * x.var(0), rtol=1e-8)
    np.testing.assert_allclose((tbn.running_var.numpy() - 0.9) * (n - 1) / n,
                               0.1 * x.var(0), rtol=1e-8)


def test_dense_matches_torch_linear():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x, g = rng.standard_normal((8, 6)), rng.standard_normal((8, 3))
    d = layers.Dense(3, activation="tanh", dtype="float64")
    xt = Tensor(x, requires_grad=True)
    y = d(xt)
    y.backward(g)
    lin = torch.nn.Linear(6, 3, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(d.kernel.numpy().T))
        lin.bias.copy_(torch.tensor(d.bias.numpy()))
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.tanh(lin(tx))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(d.kernel.grad, lin.weight.grad.numpy().T, rtol=1e-10)
    np.testing.assert_allclose(xt.grad, tx.grad.numpy(), rtol=1e-10)


def test_layer_normalization():
    ln = check_layer(layers.LayerNormalization, {}, (4, 6), (4, 6), 2, 0)
    x = np.random.default_rng(5).standard_normal((4, 6)).astype(np.float32) * 3 + 1
    y = ln(x).data
    np.testing.assert_allclose(y.mean(1), 0, atol=1e-5)
    assert ln.epsilon == 1e-3


def test_input_layer_and_symbolic_call():
    inp = layers.Input(shape=(4,))
    assert inp.shape == (None, 4)
    out = layers.Dense(3)(inp)
    assert out.shape == (None, 3)


def test_layer_names_are_unique_and_snake_case():
    a, b = layers.Dense(1), layers.Dense(1)
    assert a.name != b.name and a.name.startswith("dense")
    assert layers.BatchNormalization().name.startswith("batch_normalization")


def test_set_weights_checks_count_and_shape():
    d = layers.Dense(2)
    d.build((None, 3))
    with pytest.raises(ValueError, match="expects 2 weight arrays"):
        d.set_weights([np.zeros((3, 2))])
    with pytest.raises(ValueError, match=r"expected shape \(3, 2\)"):
        d.set_weights([np.zeros((2, 2)), np.zeros(2)])


def test_trainable_flag_controls_gradients():
    d = layers.Dense(2)
    d.build((None, 3))
    d.trainable = False
    assert d.trainable_weights == [] and len(d.non_trainable_weights) == 2
    with no_grad():
        assert d(np.ones((1, 3))).shape == (1, 2)
