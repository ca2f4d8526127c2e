"""Callbacks with Keras 3 semantics: EarlyStopping, ReduceLROnPlateau, ModelCheckpoint,
LearningRateScheduler, TerminateOnNaN, CSVLogger (glassnet.callbacks)."""
import csv
import json
import os

import numpy as np
import pytest

import glassnet as gn
from glassnet import callbacks
from glassnet.layers import Dense
from glassnet.models import Sequential


def regression_data(n=64, d=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype("float32")
    y = (x @ rng.standard_normal((d, 1)) + 0.1).astype("float32")
    return x, y


def small_model(lr=0.05, seed=0):
    gn.utils.set_random_seed(seed)
    model = Sequential([Dense(4, activation="tanh", input_shape=(3,)), Dense(1)])
    model.compile(optimizer=gn.optimizers.SGD(learning_rate=lr), loss="mse")
    return model


class Script(callbacks.Callback):
    """Writes a scripted value into the epoch logs (placed before the callback under test)
    and snapshots the weights at each epoch end."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values, self.snapshots = key, list(values), []

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
        self.snapshots.append(self.model.get_weights())


def drive(cb, model, values, key="val_loss"):
    """Call the epoch hooks by hand with scripted logs; return the epoch that stopped."""
    cb.set_model(model)
    model.stop_training = False
    cb.on_train_begin({})
    for epoch, value in enumerate(values):
        cb.on_epoch_begin(epoch, {})
        cb.on_epoch_end(epoch, {key: value})
        if model.stop_training:
            return epoch
    return None


def test_public_namespace_exports_every_callback():
    for name in ("Callback", "History", "LambdaCallback", "ProgbarLogger", "EarlyStopping",
                 "ModelCheckpoint", "LearningRateScheduler", "ReduceLROnPlateau",
                 "TerminateOnNaN", "CSVLogger"):
        assert name in callbacks.__all__ and isinstance(getattr(callbacks, name), type)
        assert issubclass(getattr(callbacks, name), callbacks.Callback)


# ---- EarlyStopping -----------------------------------------------------------------------
def test_early_stopping_restores_the_best_epochs_weights_with_scripted_monitor():
    x, y = regression_data()
    model = small_model()
    script = Script("val_loss", [1.0, 0.5, 0.4, 0.6, 0.7, 0.8, 0.9, 1.0])
    stop = callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    history = model.fit(x, y, epochs=8, batch_size=16, verbose=0, shuffle=False,
                        callbacks=[script, stop])
    assert len(history.history["loss"]) == 5  # stopped after epoch 4 (0-based)
    assert stop.stopped_epoch == 4 and stop.best_epoch == 2 and stop.best == 0.4
    final_at_stop = script.snapshots[-1]
    for restored, best, last in zip(model.get_weights(), script.snapshots[2], final_at_stop):
        np.testing.assert_array_equal(restored, best)
        assert not np.array_equal(best, last)  # training really moved the weights


def test_early_stopping_on_real_val_loss_after_a_perturbation():
    x, y = regression_data(96)
    x_val, y_val = regression_data(32, seed=1)
    model = small_model(lr=0.05)
    rng = np.random.default_rng(5)

    def ruin(epoch, logs):
        if epoch >= 4:  # from epoch 4 on, the weights are scrambled: val_loss goes up
            model.set_weights([w + rng.standard_normal(w.shape).astype("float32") * 3
                               for w in model.get_weights()])
    snapshots = []
    record = callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: snapshots.append(model.get_weights()))
    stop = callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    history = model.fit(x, y, epochs=20, batch_size=32, verbose=0, shuffle=False,
                        validation_data=(x_val, y_val),
                        callbacks=[callbacks.LambdaCallback(on_epoch_begin=ruin), record,
                                   stop])
    val = history.history["val_loss"]
    best = int(np.argmin(val))
    assert len(val) < 20 and best < len(val) - 1 and val[-1] > val[best]
    assert stop.best_epoch == best
    for restored, expected in zip(model.get_weights(), snapshots[best]):
        np.testing.assert_array_equal(restored, expected)
    restored_loss = model.evaluate(x_val, y_val, verbose=0)
    np.testing.assert_allclose(restored_loss, val[best], rtol=1e-6)


@pytest.mark.parametrize("kwargs, values, stopped", [
    ({}, [1.0, 2.0], 1),                                   # patience 0: first bad epoch > 0
    ({}, [2.0, 1.0], None),
    ({"patience": 2}, [3.0, 2.0, 2.5, 2.4, 2.3], 3),       # 2 epochs without improvement
    ({"patience": 2}, [3.0, 2.0, 2.5, 1.9, 2.3], None),
    ({"patience": 2, "min_delta": 0.5}, [3.0, 2.8, 2.6, 2.4], 2),  # < min_delta: no gain
    ({"patience": 2}, [3.0, 2.8, 2.6, 2.4], None),
    ({"patience": 1, "mode": "max"}, [0.5, 0.6, 0.55, 0.58], 2),
    ({"patience": 1, "mode": "min"}, [0.5, 0.6, 0.55, 0.58], 1),
    ({"patience": 2, "baseline": 1.0}, [2.0, 2.5, 1.5], 1),   # never beats the baseline
    ({"patience": 2}, [2.0, 2.5, 1.5], None),
    ({"patience": 1, "start_from_epoch": 2}, [5.0, 6.0, 7.0, 8.0, 9.0], 3),
    ({"patience": 1}, [5.0, 6.0, 7.0, 8.0, 9.0], 1),
])
def test_early_stopping_rules_match_keras(kwargs, values, stopped):
    model = small_model()
    assert drive(callbacks.EarlyStopping(**kwargs), model, values) == stopped


def test_early_stopping_auto_mode_follows_the_metric_direction():
    gn.utils.set_random_seed(0)
    model = Sequential([Dense(3, activation="softmax", input_shape=(3,))])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x, _ = regression_data(8)
    model.fit(x, np.arange(8) % 3, epochs=1, verbose=0)  # builds the compiled metrics
    assert "accuracy" in [m.name for m in model.metrics]
    stop = callbacks.EarlyStopping(monitor="val_accuracy", patience=0)
    # accuracy is maximised: a rise is an improvement, a fall stops at once
    assert drive(stop, model, [0.5, 0.7, 0.6], key="val_accuracy") == 2
    assert stop.monitor_op is np.greater
    unknown = callbacks.EarlyStopping(monitor="val_mystery")
    with pytest.raises(ValueError, match="mode='max'"):
        drive(unknown, model, [1.0], key="val_mystery")


def test_early_stopping_restores_best_even_below_baseline_and_warns_on_missing_key():
    model = small_model()
    stop = callbacks.EarlyStopping(patience=2, baseline=0.1, restore_best_weights=True)
    stop.set_model(model)
    stop.on_train_begin({})
    snapshots = []
    for epoch, value in enumerate([0.5, 0.3, 0.4]):
        model.set_weights([w + 1.0 for w in model.get_weights()])
        snapshots.append(model.get_weights())
        stop.on_epoch_end(epoch, {"val_loss": value})
    assert model.stop_training and stop.best_epoch == 1
    stop.on_train_end({})
    for restored, expected in zip(model.get_weights(), snapshots[1]):
        np.testing.assert_array_equal(restored, expected)
    with pytest.warns(UserWarning, match="val_loss.*not available.*loss"):
        callbacks.EarlyStopping().get_monitor_value({"loss": 1.0})


# ---- ReduceLROnPlateau -------------------------------------------------------------------
def test_reduce_lr_on_plateau_lowers_the_rate_after_patience_flat_epochs():
    x, y = regression_data()
    model = small_model(lr=0.1)
    plateau = callbacks.ReduceLROnPlateau(monitor="val_flat", mode="min", factor=0.5,
                                          patience=2)
    history = model.fit(x, y, epochs=5, batch_size=32, verbose=0,
                        callbacks=[Script("val_flat", [1.0] * 5), plateau])
    # the logged rate is the one used in the epoch; reductions after epochs 2 and 4
    np.testing.assert_allclose(history.history["learning_rate"],
                               [0.1, 0.1, 0.1, 0.05, 0.05])
    np.testing.assert_allclose(model.optimizer.learning_rate, 0.025)


@pytest.mark.parametrize("kwargs, expected", [
    ({}, [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125]),
    ({"cooldown": 2}, [0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025]),
    ({"min_lr": 0.03}, [0.1, 0.1, 0.05, 0.05, 0.03, 0.03, 0.03]),
])
def test_reduce_lr_on_plateau_cooldown_and_min_lr(kwargs, expected):
    model = small_model(lr=0.1)
    cb = callbacks.ReduceLROnPlateau(factor=0.5, patience=2, **kwargs)
    cb.set_model(model)
    cb.on_train_begin({})
    rates = []
    for epoch in range(7):
        cb.on_epoch_end(epoch, {"val_loss": 1.0})
        rates.append(model.optimizer.learning_rate)
    np.testing.assert_allclose(rates, expected)


def test_reduce_lr_on_plateau_counts_min_delta_and_rejects_bad_factor():
    model = small_model(lr=0.1)
    cb = callbacks.ReduceLROnPlateau(factor=0.5, patience=1, min_delta=0.1)
    # improvements of 0.05 < min_delta count as flat: a reduction after each epoch > 0
    drive(cb, model, [1.0, 0.95, 0.9])
    np.testing.assert_allclose(model.optimizer.learning_rate, 0.025)
    with pytest.raises(ValueError, match="factor >= 1.0.*Received: factor=1.5"):
        callbacks.ReduceLROnPlateau(factor=1.5)


# ---- LearningRateScheduler ---------------------------------------------------------------
def test_learning_rate_scheduler_sets_and_logs_the_rate_that_training_uses():
    x, y = regression_data()
    model = small_model(lr=0.1)
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: lr if epoch == 0 else lr * 0.5)
    history = model.fit(x, y, epochs=3, batch_size=64, verbose=0, shuffle=False,
                        callbacks=[sched])
    np.testing.assert_allclose(history.history["learning_rate"], [0.1, 0.05, 0.025])
    manual = small_model(lr=0.1)
    for epoch, lr in enumerate([0.1, 0.05, 0.025]):
        manual.optimizer.learning_rate = lr
        manual.fit(x, y, epochs=1, batch_size=64, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), manual.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_learning_rate_scheduler_accepts_one_argument_and_rejects_non_floats():
    model = small_model(lr=0.1)
    sched = callbacks.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))
    sched.set_model(model)
    sched.on_epoch_begin(2)
    np.testing.assert_allclose(model.optimizer.learning_rate, 0.03)
    bad = callbacks.LearningRateScheduler(lambda epoch, lr: "fast")
    bad.set_model(model)
    with pytest.raises(ValueError, match="should be a float. Got: 'fast'"):
        bad.on_epoch_begin(0)


# ---- TerminateOnNaN ----------------------------------------------------------------------
def test_terminate_on_nan_stops_at_the_first_bad_batch_and_says_which(capsys):
    x, y = regression_data(40)
    x[13, 0] = np.nan  # sample 13 lies in batch 3 (batches of 4, no shuffling)
    model = small_model()
    seen = []
    guard = callbacks.TerminateOnNaN()
    history = model.fit(x, y, epochs=3, batch_size=4, verbose=0, shuffle=False,
                        callbacks=[callbacks.LambdaCallback(
                            on_train_batch_end=lambda b, logs: seen.append(b)), guard])
    assert seen == [0, 1, 2, 3]
    assert len(history.history["loss"]) == 1
    assert (guard.stopped_epoch, guard.stopped_batch) == (0, 3)
    out = capsys.readouterr().out
    assert "Epoch 1, batch 3: invalid loss nan" in out


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf flows through the backward pass
def test_terminate_on_nan_can_raise():
    x, y = regression_data(16)
    y[9] = np.inf
    model = small_model()
    with pytest.raises(RuntimeError, match="epoch 1, batch 2"):
        model.fit(x, y, epochs=2, batch_size=4, verbose=0, shuffle=False,
                  callbacks=[callbacks.TerminateOnNaN(raise_error=True)])


# ---- CSVLogger ---------------------------------------------------------------------------
def read_csv(path, sep=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=sep))


def test_csv_logger_writes_one_row_per_epoch_with_sorted_keys(tmp_path):
    x, y = regression_data()
    model = small_model()
    model.compile(optimizer=gn.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    path = tmp_path / "log.csv"
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0,
                        validation_data=regression_data(16, seed=2),
                        callbacks=[callbacks.CSVLogger(path)])
    rows = read_csv(path)
    assert rows[0] == ["epoch", "loss", "mae", "val_loss", "val_mae"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    for key, column in (("loss", 1), ("mae", 2), ("val_loss", 3), ("val_mae", 4)):
        np.testing.assert_array_equal([float(r[column]) for r in rows[1:]],
                                      history.history[key])


def test_csv_logger_appends_without_a_second_header_and_fills_missing_val_keys(tmp_path):
    x, y = regression_data()
    model = small_model()
    path = tmp_path / "log.tsv"
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.CSVLogger(path, "\t")])
    model.fit(x, y, epochs=1, verbose=0,
              callbacks=[callbacks.CSVLogger(path, separator="\t", append=True)])
    rows = read_csv(path, "\t")
    assert rows[0] == ["epoch", "loss", "val_loss"]
    assert len(rows) == 4 and [r[0] for r in rows[1:]] == ["0", "1", "0"]
    assert all(r[2] == "NA" for r in rows[1:])


# ---- ModelCheckpoint ---------------------------------------------------------------------
class FakeSavingModel(Sequential):
    """Implements the Model.save / save_weights API by writing the weights as JSON, so the
    callback's logic is tested without the saving module."""

    fail_after_partial_write = False

    def save(self, filepath, overwrite=True, **kwargs):
        self._write(filepath, "model")

    def save_weights(self, filepath, overwrite=True, **kwargs):
        self._write(filepath, "weights")

    def _write(self, filepath, kind):
        assert filepath.endswith((".keras", ".h5")), filepath
        with open(filepath, "w") as f:
            f.write('{"kind": "%s", ' % kind)
            if self.fail_after_partial_write:
                raise OSError("disk full")
            f.write('"weights": %s}' % json.dumps([w.tolist() for w in self.get_weights()]))


def fake_model():
    gn.utils.set_random_seed(0)
    model = FakeSavingModel([Dense(2, input_shape=(3,))])
    model.compile(optimizer=gn.optimizers.SGD(0.05), loss="mse")
    return model


def test_model_checkpoint_save_best_only_formats_the_path(tmp_path):
    x, y = regression_data()
    y = np.repeat(y, 2, axis=1)
    model = fake_model()
    script = Script("val_loss", [0.9, 0.7, 0.8, 0.5, 0.6])
    ckpt = callbacks.ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{val_loss:.2f}.keras"),
                                     save_best_only=True)
    model.fit(x, y, epochs=5, batch_size=32, verbose=0, callbacks=[script, ckpt])
    assert sorted(os.listdir(tmp_path)) == ["m-01-0.90.keras", "m-02-0.70.keras",
                                            "m-04-0.50.keras"]
    with open(tmp_path / "m-04-0.50.keras") as f:
        saved = json.load(f)
    assert saved["kind"] == "model"
    for a, b in zip(saved["weights"], script.snapshots[3]):
        np.testing.assert_allclose(np.array(a, dtype="float32"), b)


def test_model_checkpoint_weights_only_every_epoch_and_threshold(tmp_path):
    x, y = regression_data()
    y = np.repeat(y, 2, axis=1)
    model = fake_model()
    path = tmp_path / "w.weights.h5"
    ckpt = callbacks.ModelCheckpoint(path, save_weights_only=True, save_best_only=True,
                                     monitor="val_q", mode="min", initial_value_threshold=0.65)
    script = Script("val_q", [0.9, 0.7, 0.6, 0.8])
    model.fit(x, y, epochs=4, verbose=0, callbacks=[script, ckpt])
    assert os.listdir(tmp_path) == ["w.weights.h5"]
    with open(path) as f:
        saved = json.load(f)
    assert saved["kind"] == "weights"  # only epoch 2 beat the threshold
    for a, b in zip(saved["weights"], script.snapshots[2]):
        np.testing.assert_allclose(np.array(a, dtype="float32"), b)


def test_model_checkpoint_save_freq_in_batches(tmp_path):
    x, y = regression_data(64)
    y = np.repeat(y, 2, axis=1)
    model = fake_model()
    ckpt = callbacks.ModelCheckpoint(str(tmp_path / "e{epoch}-b{batch}.keras"), save_freq=3)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[ckpt])
    # 4 batches per epoch: saves after global batches 3 and 6 (e1 batch 3, e2 batch 2)
    assert sorted(os.listdir(tmp_path)) == ["e1-b3.keras", "e2-b2.keras"]


def test_model_checkpoint_leaves_no_temporary_or_partial_file_on_error(tmp_path):
    x, y = regression_data()
    y = np.repeat(y, 2, axis=1)
    model = fake_model()
    target = tmp_path / "ckpt.keras"
    ckpt = callbacks.ModelCheckpoint(target, monitor="loss")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[ckpt])
    good = target.read_text()
    assert os.listdir(tmp_path) == ["ckpt.keras"] and json.loads(good)["kind"] == "model"
    model.fail_after_partial_write = True
    with pytest.raises(OSError, match="disk full"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[ckpt])
    assert os.listdir(tmp_path) == ["ckpt.keras"]
    assert target.read_text() == good  # the previous checkpoint is intact


def test_model_checkpoint_validates_the_path():
    with pytest.raises(ValueError, match=r"must end in `\.weights\.h5`.*Received: "
                                         "filepath=w.keras"):
        callbacks.ModelCheckpoint("w.keras", save_weights_only=True)
    with pytest.raises(ValueError, match="must end in `.keras`.*Received: filepath=m.txt"):
        callbacks.ModelCheckpoint("m.txt")
    with pytest.raises(ValueError, match="save_freq"):
        callbacks.ModelCheckpoint("m.keras", save_freq="batch")


@pytest.mark.parametrize("weights_only", [False, True])
def test_model_checkpoint_with_the_real_saving_module(tmp_path, weights_only):
    saving = pytest.importorskip("glassnet.saving")
    x, y = regression_data()
    model = small_model()
    name = "best.weights.h5" if weights_only else "best.keras"
    script = Script("val_loss", [0.9, 0.5, 0.7])
    ckpt = callbacks.ModelCheckpoint(tmp_path / name, save_best_only=True,
                                     save_weights_only=weights_only)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[script, ckpt])
    assert os.listdir(tmp_path) == [name]
    if weights_only:
        other = small_model(seed=1)
        other.load_weights(str(tmp_path / name))
    else:
        other = saving.load_model(str(tmp_path / name))
    for a, b in zip(other.get_weights(), script.snapshots[1]):
        np.testing.assert_array_equal(a, b)
