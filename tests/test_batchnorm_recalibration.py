"""BatchNormalization statistics over the whole training set
(glassnet.utils.recalibrate_batchnorm) and the warning about unconverged moving averages."""
import warnings

import numpy as np
import pytest

import glassnet as gn
from glassnet.layers import BatchNormalization, Dense
from glassnet.models import Model, Sequential
from glassnet.training.bn_stats import StreamingMoments, updates_needed


def offset_blobs(n=400, d=6, offset=40.0, seed=0):
    """Two linearly separable classes around a large common offset (BN must remove it)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d)
    x = rng.standard_normal((n, d)) * 2.0 + offset
    y = ((x - offset) @ w > 0).astype("int64")
    return x.astype("float32"), y


def bn_net(d=6, momentum=0.99, seed=0):
    gn.utils.set_random_seed(seed)
    model = Sequential([
        Dense(8, input_shape=(d,)),
        BatchNormalization(momentum=momentum),
        Dense(6, activation="relu"),
        BatchNormalization(momentum=momentum),
        Dense(2, activation="softmax"),
    ])
    model.compile(optimizer=gn.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def quiet_fit(model, x, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y, verbose=0, **kwargs)


def test_streaming_moments_are_exact_for_any_chunking():
    rng = np.random.default_rng(3)
    data = 1e4 + rng.standard_normal((1000, 5, 3)) * 1e-2  # large offset, tiny spread
    reference = data.transpose(0, 2, 1).reshape(-1, 5)
    for bounds in ([0, 1000], [0, 1, 2, 500, 999, 1000], list(range(0, 1001, 37)) + [1000]):
        moments = StreamingMoments(axis=1)
        for a, b in zip(bounds[:-1], bounds[1:]):
            moments.update(data[a:b])
        assert moments.count == 3000
        np.testing.assert_allclose(moments.mean, reference.mean(axis=0), rtol=1e-13)
        np.testing.assert_allclose(moments.variance, reference.var(axis=0), rtol=1e-7)


def test_recalibrated_statistics_equal_the_population_statistics_of_each_layers_inputs():
    x, y = offset_blobs()
    model = bn_net()
    quiet_fit(model, x, y, epochs=1, batch_size=80)  # 5 steps: moving stats far off
    bn1, bn2 = model.layers[1], model.layers[3]
    (k1, b1), (k2, b2) = model.layers[0].get_weights(), model.layers[2].get_weights()
    h1 = x.astype(np.float64) @ k1 + b1
    assert np.max(np.abs(bn1.moving_mean.numpy() - h1.mean(axis=0))) > 1.0

    counts = gn.utils.recalibrate_batchnorm(model, x, batch_size=37)
    assert counts == {bn1.name: len(x), bn2.name: len(x)}
    np.testing.assert_allclose(bn1.moving_mean.numpy(), h1.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn1.moving_variance.numpy(), h1.var(axis=0), rtol=1e-5)
    # the second layer sees the first one's recalibrated statistics (layer by layer)
    gamma, beta, mean, var = bn1.get_weights()
    z1 = (h1 - mean) / np.sqrt(var.astype(np.float64) + bn1.epsilon) * gamma + beta
    h2 = np.maximum(z1 @ k2 + b2, 0.0)
    np.testing.assert_allclose(bn2.moving_mean.numpy(), h2.mean(axis=0), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(bn2.moving_variance.numpy(), h2.var(axis=0), rtol=1e-5,
                               atol=1e-6)
    assert bn1.moving_mean.dtype == np.float32


def test_recalibration_does_not_depend_on_the_batch_size():
    x, y = offset_blobs(150)
    first, second = bn_net(), bn_net()
    quiet_fit(first, x, y, epochs=1, batch_size=50)
    second.set_weights(first.get_weights())
    gn.utils.recalibrate_batchnorm(first, x, batch_size=7)
    gn.utils.recalibrate_batchnorm(second, x, batch_size=1000)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-6)


def test_recalibration_beats_unconverged_moving_averages_on_test_accuracy():
    x, y = offset_blobs(600, seed=1)
    x_train, y_train, x_test, y_test = x[:400], y[:400], x[400:], y[400:]
    model = bn_net(seed=2)
    quiet_fit(model, x_train, y_train, epochs=5, batch_size=40)  # 50 of the 300 steps needed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
    gn.utils.recalibrate_batchnorm(model, x_train)
    after = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
    assert after >= 0.95 and after > before + 0.3, (before, after)


def test_order_follows_the_forward_pass_in_subclassed_models():
    class Net(Model):
        def __init__(self):
            super().__init__()
            self.bn_late = BatchNormalization(axis=1)  # created first, called last
            self.dense = Dense(3)
            self.bn_early = BatchNormalization(axis=1)

        def call(self, inputs, training=False):
            h = self.bn_early(inputs, training=training)
            return self.bn_late(self.dense(h), training=training)

    rng = np.random.default_rng(0)
    x = (rng.standard_normal((30, 4, 3)) * 3 + 5).astype("float32")
    net = Net()
    net(x[:2])
    counts = gn.utils.recalibrate_batchnorm(net, x, batch_size=8)
    assert list(counts) == [net.bn_early.name, net.bn_late.name]
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(net.bn_early.moving_mean.numpy(), x64.mean(axis=(0, 2)),
                               rtol=1e-6)
    np.testing.assert_allclose(net.bn_early.moving_variance.numpy(), x64.var(axis=(0, 2)),
                               rtol=1e-5)
    g, b, m, v = net.bn_early.get_weights()
    z = (x64 - m[:, None]) / np.sqrt(v[:, None] + net.bn_early.epsilon) * g[:, None] \
        + b[:, None]
    kernel, bias = net.dense.get_weights()
    h = z @ kernel + bias
    np.testing.assert_allclose(net.bn_late.moving_mean.numpy(), h.mean(axis=(0, 2)),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net.bn_late.moving_variance.numpy(), h.var(axis=(0, 2)),
                               rtol=1e-5)


def test_functional_models_are_recalibrated_in_graph_order():
    from glassnet.layers import Input
    gn.utils.set_random_seed(0)
    inputs = Input((4,))
    dense = Dense(5)
    first, second = BatchNormalization(), BatchNormalization()
    outputs = Dense(2)(second(dense(first(inputs))))
    model = Model(inputs, outputs)
    x = (np.random.default_rng(1).standard_normal((50, 4)) * 2 + 7).astype("float32")
    assert gn.utils.recalibrate_batchnorm(model, x, batch_size=16) == {first.name: 50,
                                                                       second.name: 50}
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(first.moving_mean.numpy(), x64.mean(axis=0), rtol=1e-6)
    g, b, m, v = first.get_weights()
    kernel, bias = dense.get_weights()
    h = ((x64 - m) / np.sqrt(v + first.epsilon) * g + b) @ kernel + bias
    np.testing.assert_allclose(second.moving_mean.numpy(), h.mean(axis=0), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(second.moving_variance.numpy(), h.var(axis=0), rtol=1e-5)


def test_recalibration_errors_name_what_was_expected():
    model = bn_net()
    x, _ = offset_blobs(20)
    with pytest.raises(ValueError, match="`x` is empty"):
        gn.utils.recalibrate_batchnorm(model, x[:0])
    with pytest.raises(ValueError, match="positive integer. Received: batch_size=0"):
        gn.utils.recalibrate_batchnorm(model, x, batch_size=0)
    shared = BatchNormalization()
    twice = Sequential([Dense(6, input_shape=(6,)), shared, Dense(6), shared])
    with pytest.raises(ValueError, match=shared.name + r".*called more than once"):
        gn.utils.recalibrate_batchnorm(twice, x)


# ---- the warning -------------------------------------------------------------------------
def record(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def test_updates_needed_is_three_time_constants():
    assert updates_needed(0.99) == 300
    assert updates_needed(0.9) == 30
    assert updates_needed(0.5) == 6
    assert updates_needed(1.0) == float("inf")


def test_warning_fires_once_per_layer_for_few_updates_and_suggests_recalibration():
    x, y = offset_blobs(100)
    model = bn_net()
    quiet_fit(model, x, y, epochs=1, batch_size=20)  # 5 updates, 300 needed
    messages = record(lambda: model.evaluate(x, y, verbose=0))
    assert len(messages) == 2
    for layer, message in zip((model.layers[1], model.layers[3]), messages):
        assert repr(layer.name) in message and "only 5 times" in message
        assert "about 300 updates" in message
        assert "glassnet.utils.recalibrate_batchnorm(model, x_train)" in message
    assert record(lambda: model.evaluate(x, y, verbose=0)) == []
    assert record(lambda: model.predict(x, verbose=0)) == []


def test_predict_warns_too_and_recalibration_silences_it():
    x, y = offset_blobs(100)
    model = bn_net()
    quiet_fit(model, x, y, epochs=1, batch_size=20)
    gn.utils.recalibrate_batchnorm(model, x)
    assert record(lambda: model.predict(x, verbose=0)) == []
    other = bn_net()
    quiet_fit(other, x, y, epochs=1, batch_size=20)
    assert len(record(lambda: other.predict(x, verbose=0))) == 2


def test_no_warning_after_enough_steps_or_without_training():
    x, y = offset_blobs(100)
    model = bn_net(momentum=0.5)  # 6 updates needed
    quiet_fit(model, x, y, epochs=2, batch_size=20)  # 10 updates
    assert record(lambda: model.evaluate(x, y, verbose=0)) == []
    assert record(lambda: bn_net().predict(x, verbose=0)) == []
