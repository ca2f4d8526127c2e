"""sample_weight and class_weight in fit/evaluate, checked against hand computations of
Keras 3's "sum_over_batch_size" reduction: loss = sum(w * loss_i) / number of loss values."""
import os

import numpy as np
import pytest

import glassnet as gn
from glassnet.layers import Dense
from glassnet.models import Sequential


def data(n=12, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype("float32"), rng


def frozen_model(units, activation=None, input_shape=(3,), loss="mse", **compile_kwargs):
    """A model trained with learning rate 0: fit reports losses of fixed weights."""
    gn.utils.set_random_seed(0)
    model = Sequential([Dense(units, activation=activation, input_shape=input_shape)])
    model.compile(optimizer=gn.optimizers.SGD(0.0), loss=loss, **compile_kwargs)
    return model


def cross_entropy(probs, labels):
    return -np.log(probs[np.arange(len(labels)), labels].astype(np.float64))


def test_evaluate_with_sample_weight_divides_by_the_number_of_samples():
    x, rng = data(10)
    y = rng.standard_normal((10, 2)).astype("float32")
    w = rng.uniform(0, 2, 10).astype("float32")
    model = frozen_model(2)
    pred = model.predict(x, verbose=0).astype(np.float64)
    per_sample = ((pred - y) ** 2).mean(axis=1)
    expected = (w * per_sample).sum() / 10  # not / w.sum()
    got = model.evaluate(x, y, sample_weight=w, batch_size=4, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(model.evaluate(x, y, sample_weight=w[:, None], batch_size=4,
                                              verbose=0), expected, rtol=1e-6)
    unweighted = model.evaluate(x, y, batch_size=4, verbose=0)
    np.testing.assert_allclose(unweighted, per_sample.mean(), rtol=1e-6)


@pytest.mark.parametrize("one_hot", [False, True])
def test_class_weight_in_fit_matches_hand_computation(one_hot):
    x, rng = data(12)
    labels = np.arange(12) % 3
    class_weight = {0: 1.0, 1: 3.0, 2: 0.5}
    loss = "categorical_crossentropy" if one_hot else "sparse_categorical_crossentropy"
    y = np.eye(3, dtype="float32")[labels] if one_hot else labels
    model = frozen_model(3, "softmax", loss=loss)
    ce = cross_entropy(model.predict(x, verbose=0), labels)
    cw = np.array([class_weight[c] for c in labels])
    history = model.fit(x, y, class_weight=class_weight, batch_size=12, epochs=1,
                        verbose=0, shuffle=False)
    np.testing.assert_allclose(history.history["loss"][0], (cw * ce).sum() / 12, rtol=1e-6)
    # batches of 5, 7 (the last batch of 2 is merged): the epoch loss is the sample-weighted
    # mean of the batch losses, so it equals the full-batch value
    history = model.fit(x, y, class_weight=class_weight, batch_size=5, epochs=1,
                        verbose=0, shuffle=False)
    np.testing.assert_allclose(history.history["loss"][0], (cw * ce).sum() / 12, rtol=1e-6)


def test_class_weight_and_sample_weight_multiply():
    x, rng = data(8)
    labels = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    sw = rng.uniform(0.5, 2.0, 8).astype("float32")
    model = frozen_model(2, "softmax", loss="sparse_categorical_crossentropy")
    ce = cross_entropy(model.predict(x, verbose=0), labels)
    cw = np.where(labels == 1, 4.0, 1.0)
    history = model.fit(x, labels, sample_weight=sw, class_weight={1: 4.0}, batch_size=8,
                        verbose=0)
    np.testing.assert_allclose(history.history["loss"][0], (sw * cw * ce).sum() / 8,
                               rtol=1e-6)


def test_class_weight_for_binary_column_targets_and_missing_classes():
    x, rng = data(10)
    y = (np.arange(10) % 2).astype("float32")[:, None]  # (N, 1) float labels
    model = frozen_model(1, "sigmoid", loss="binary_crossentropy")
    p = model.predict(x, verbose=0)[:, 0].astype(np.float64)
    bce = -(y[:, 0] * np.log(p) + (1 - y[:, 0]) * np.log(1 - p))
    history = model.fit(x, y, class_weight={1: 2.5}, batch_size=10, verbose=0)
    w = np.where(y[:, 0] == 1, 2.5, 1.0)  # class 0 is missing: weight 1
    np.testing.assert_allclose(history.history["loss"][0], (w * bce).sum() / 10, rtol=1e-5)


def test_temporal_sample_weights_weight_each_loss_value():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 4, 3)).astype("float32")
    y = rng.standard_normal((6, 4, 2)).astype("float32")
    w = rng.uniform(0, 2, (6, 4)).astype("float32")
    model = frozen_model(2, input_shape=(4, 3))
    per_step = ((model.predict(x, verbose=0).astype(np.float64) - y) ** 2).mean(axis=-1)
    np.testing.assert_allclose(model.evaluate(x, y, sample_weight=w, verbose=0),
                               (w * per_step).sum() / per_step.size, rtol=1e-6)
    per_sample_w = w[:, 0]  # one weight per sequence repeats over its time steps
    np.testing.assert_allclose(model.evaluate(x, y, sample_weight=per_sample_w, verbose=0),
                               (per_sample_w[:, None] * per_step).sum() / per_step.size,
                               rtol=1e-6)


def test_weighted_metrics_are_logged_beside_the_unweighted_ones():
    x, rng = data(10)
    labels = np.arange(10) % 3
    w = rng.uniform(0, 2, 10).astype("float32")
    model = frozen_model(3, "softmax", loss="sparse_categorical_crossentropy",
                         metrics=["accuracy"], weighted_metrics=["accuracy"])
    hit = (model.predict(x, verbose=0).argmax(axis=1) == labels).astype(np.float64)
    logs = model.evaluate(x, labels, sample_weight=w, verbose=0, return_dict=True)
    assert list(logs) == ["loss", "accuracy", "weighted_accuracy"]
    np.testing.assert_allclose(logs["accuracy"], hit.mean(), rtol=1e-6)
    np.testing.assert_allclose(logs["weighted_accuracy"], (w * hit).sum() / w.sum(),
                               rtol=1e-6)


def test_weighting_errors_name_what_was_expected():
    x, rng = data(6)
    y = rng.standard_normal((6, 2)).astype("float32")
    model = frozen_model(2)
    with pytest.raises(ValueError, match=r"one weight per sample \(6\).*shape \(5,\)"):
        model.evaluate(x, y, sample_weight=np.ones(5), verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight` of shape \(6, 3\) does not "
                                         r"match the loss values of shape \(6,\)"):
        model.evaluate(x, y, sample_weight=np.ones((6, 3)), verbose=0)
    with pytest.raises(TypeError, match="must be a dict.*Received: list"):
        model.fit(x, y, class_weight=[1.0, 2.0], verbose=0)


def test_weighted_losses_match_keras():
    os.environ.setdefault("KERAS_BACKEND", "numpy")
    keras = pytest.importorskip("keras")
    x, rng = data(10)
    labels = np.arange(10) % 3
    w = rng.uniform(0, 2, 10).astype("float32")
    ours = frozen_model(3, "softmax", loss="sparse_categorical_crossentropy")
    theirs = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, activation="softmax")])
    theirs.set_weights(ours.get_weights())
    theirs.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    np.testing.assert_allclose(
        ours.evaluate(x, labels, sample_weight=w, batch_size=4, verbose=0),
        theirs.evaluate(x, labels, sample_weight=w, batch_size=4, verbose=0), rtol=1e-5)
