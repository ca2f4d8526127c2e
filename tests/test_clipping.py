"""Gradient clipping inside real training: a deep, badly initialised ReLU net that diverges
without clipping trains with it, and the three clipping modes give the documented, different
updates through `fit`'s path (`optimizer.step`), checked against the raw gradients.

(The definitions on bare variables through `apply_gradients`, and the error when more than one
mode is set, are in tests/test_optimizers.py.)"""
import math
import warnings

import numpy as np
import pytest

import glassnet
from glassnet.initializers import VarianceScaling
from glassnet.layers import Dense
from glassnet.models import Sequential
from glassnet.optimizers import SGD

DEPTH = 20


def regression_data(n=64, d=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype("float32")
    y = np.tanh(x @ rng.standard_normal((d, 1))).astype("float32")
    return x, y


def deep_relu_net(d=8, width=16, scale=3.0):
    """DEPTH ReLU layers whose weights have variance 3/fan_in, 1.5x He's 2/fan_in: the signal
    and the gradients grow ~sqrt(1.5) per layer, about 60x over the stack."""
    layers = [Dense(width, input_shape=(d,), activation="relu",
                    kernel_initializer=VarianceScaling(scale, seed=0))]
    layers += [Dense(width, activation="relu", kernel_initializer=VarianceScaling(scale, seed=i))
               for i in range(1, DEPTH)]
    return Sequential(layers + [Dense(1, kernel_initializer=VarianceScaling(scale, seed=DEPTH))])


def train(epochs=40, **clip):
    glassnet.utils.set_random_seed(0)
    x, y = regression_data()
    model = deep_relu_net()
    model.compile(optimizer=SGD(learning_rate=0.01, **clip), loss="mse")
    initial = float(model.evaluate(x, y, verbose=0))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow on the unclipped run
        history = model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, shuffle=False)
    return initial, history.history["loss"], float(y.var())


def test_deep_net_diverges_without_clipping_and_trains_with_it():
    assert len(deep_relu_net().layers) >= DEPTH + 1
    initial, losses, baseline = train(epochs=3)
    assert math.isfinite(initial) and initial > 10 * baseline  # bad, but finite at first
    assert not all(math.isfinite(v) for v in losses), \
        f"expected the unclipped run to diverge to inf/NaN, received losses {losses}"
    for clip in ({"clipnorm": 1.0}, {"global_clipnorm": 1.0}):
        start, losses, _ = train(**clip)
        assert start == initial
        assert all(math.isfinite(v) for v in losses), f"{clip}: non-finite losses {losses}"
        # better than predicting the mean (loss = var(y)), and far below the start
        assert losses[-1] < baseline < initial / 10, \
            f"{clip}: expected final loss < var(y) = {baseline:.3f}, received {losses[-1]:.3f}"
    assert train(epochs=5, clipnorm=1.0)[1] == train(epochs=5, clipnorm=1.0)[1]  # bit-exact


def one_step_deltas(**clip):
    """Weight change of one train_on_batch with SGD(learning_rate=1): the applied gradient."""
    glassnet.utils.set_random_seed(0)
    x, y = regression_data(n=32, d=4, seed=1)
    init = [VarianceScaling(4.0, seed=i) for i in (1, 2, 3)]
    model = Sequential([Dense(6, input_shape=(4,), activation="tanh", kernel_initializer=init[0]),
                        Dense(3, activation="tanh", kernel_initializer=init[1]),
                        Dense(1, kernel_initializer=init[2])])
    model.compile(optimizer=SGD(learning_rate=1.0, **clip), loss="mse")
    model.build((None, 4))
    before = [w.copy() for w in model.get_weights()]
    model.train_on_batch(x, y * 5.0)
    return [(b - a).astype(np.float64) for b, a in zip(before, model.get_weights())]


def test_per_variable_global_and_value_clipping_differ_as_documented_on_a_model():
    g = one_step_deltas()  # the raw gradients
    norms = np.array([np.linalg.norm(v) for v in g])
    total = math.sqrt(sum(float(np.sum(v * v)) for v in g))
    c = float(np.median(norms))  # some variables above the bound, some below
    assert (norms > c * 1.01).any() and (norms < c * 0.99).any() and total > c

    per_var = one_step_deltas(clipnorm=c)
    for raw, got, n in zip(g, per_var, norms):  # each rescaled on its own, if above c
        np.testing.assert_allclose(got, raw * (c / max(n, c)), rtol=1e-4, atol=1e-6)
    global_ = one_step_deltas(global_clipnorm=c)
    for raw, got in zip(g, global_):  # all rescaled by one factor, directions kept together
        np.testing.assert_allclose(got, raw * (c / total), rtol=1e-4, atol=1e-6)
    value = float(np.median(np.abs(np.concatenate([v.ravel() for v in g]))))
    for raw, got in zip(g, one_step_deltas(clipvalue=value)):
        np.testing.assert_allclose(got, np.clip(raw, -value, value), rtol=1e-4, atol=1e-6)

    below = [i for i, n in enumerate(norms) if n < c * 0.99]
    assert all(np.allclose(per_var[i], g[i], rtol=1e-4, atol=1e-6) for i in below)
    assert not any(np.allclose(global_[i], g[i], rtol=1e-3) for i in below)
    assert math.sqrt(sum(float(np.sum(v * v)) for v in per_var)) > c * 1.01  # per variable
    assert math.sqrt(sum(float(np.sum(v * v)) for v in global_)) == pytest.approx(c, rel=1e-4)
