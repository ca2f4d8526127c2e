"""Reproducible resume (issue 3 item 5): 4 epochs, save, load, 4 more == 8 epochs, bit for bit.

The model has BatchNormalization (moving statistics), Dropout (its own generator) and Adam
(slots, iteration count); fit shuffles with the model's generator. Everything that state
depends on must travel through the file.
"""
import warnings

import numpy as np
import pytest

import glassnet as keras
from glassnet import backend, layers


def _data():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((96, 5)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64") + (x[:, 2] > 1).astype("int64")
    return x, y


def _model(schedule=False):
    keras.utils.set_random_seed(123)
    lr = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=5, decay_rate=0.9) \
        if schedule else 0.01
    model = keras.Sequential([
        layers.Dense(16, activation="relu", input_shape=(5,)),
        layers.BatchNormalization(momentum=0.9),
        layers.Dropout(0.3),
        layers.Dense(16, activation="tanh"),
        layers.Dropout(0.2),
        layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _fit(model, x, y, epochs, initial_epoch=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BN "few updates" advice
        return model.fit(x, y, batch_size=16, epochs=epochs, initial_epoch=initial_epoch,
                         verbose=0, shuffle=True)


def _assert_same_state(a, b):
    assert len(a.weights) == len(b.weights)
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(wa.numpy(), wb.numpy(), err_msg=wa.path)
    assert a.optimizer.iterations == b.optimizer.iterations
    for va, vb in zip(a.optimizer.variables, b.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(va), np.asarray(vb))


@pytest.mark.parametrize("ext", [".keras", ".h5"])
@pytest.mark.parametrize("schedule", [False, True], ids=["constant_lr", "schedule"])
def test_four_plus_four_epochs_equal_eight_bit_for_bit(tmp_path, ext, schedule):
    x, y = _data()
    straight = _model(schedule)
    history = _fit(straight, x, y, 8)

    first = _model(schedule)
    _fit(first, x, y, 4)
    path = tmp_path / f"checkpoint{ext}"
    first.save(path)
    del first
    backend.set_global_seed(999)  # whatever happens in between must not matter
    resumed = keras.models.load_model(path)
    assert resumed.optimizer.iterations == 4 * 6
    rest = _fit(resumed, x, y, 8, initial_epoch=4)

    _assert_same_state(straight, resumed)
    np.testing.assert_array_equal(history.history["loss"][4:], rest.history["loss"])
    np.testing.assert_array_equal(straight.predict(x, verbose=0), resumed.predict(x, verbose=0))


def test_resume_without_saved_state_differs(tmp_path):
    """The test above can fail: dropping the optimizer state breaks bit-equality."""
    x, y = _data()
    straight = _model()
    _fit(straight, x, y, 8)
    first = _model()
    _fit(first, x, y, 4)
    first.save(tmp_path / "no_opt.keras", include_optimizer=False)
    resumed = keras.models.load_model(tmp_path / "no_opt.keras", compile=False)
    resumed.compile(optimizer=keras.optimizers.Adam(0.01),
                    loss="sparse_categorical_crossentropy")
    _fit(resumed, x, y, 8, initial_epoch=4)
    assert not np.array_equal(straight.weights[0].numpy(), resumed.weights[0].numpy())


def test_generator_states_are_stored_as_json_and_restored(tmp_path):
    x, y = _data()
    model = _model()
    _fit(model, x, y, 1)
    dropout = model.layers[2]
    dropout_state = dropout._rng.bit_generator.state
    shuffle_state = model._shuffle_rng.bit_generator.state
    global_state = backend.global_rng().bit_generator.state
    model.save(tmp_path / "m.h5")
    import h5py
    import json
    with h5py.File(tmp_path / "m.h5") as f:
        saved = json.loads(f.attrs["glassnet_state"])
    assert saved["layers"]["layers/dropout"]["rng"]["state"]["state"] == \
        dropout_state["state"]["state"]
    backend.global_rng().random(10)  # move the global generator on
    loaded = keras.models.load_model(tmp_path / "m.h5")
    assert loaded.layers[2]._rng.bit_generator.state == dropout_state
    assert loaded._shuffle_rng.bit_generator.state == shuffle_state
    assert backend.global_rng().bit_generator.state != global_state  # not by default
    keras.models.load_model(tmp_path / "m.h5", restore_global_rng=True)
    assert backend.global_rng().bit_generator.state == global_state
