"""Sequential models and the training loop: the users' snippets, Keras semantics, errors."""
import io
import os
import contextlib

import numpy as np
import pytest

import glassnet as keras
from glassnet.layers import BatchNormalization, Dense, Flatten
from glassnet.models import Sequential


def blobs(n=300, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, d)) * 3
    y = rng.integers(0, k, n)
    x = centers[y] + rng.standard_normal((n, d))
    return x.astype("float32"), y


def bn_stack():
    return Sequential([
        Dense(64, input_shape=(4,), activation="relu"),
        BatchNormalization(),
        Dense(128, activation="relu"),
        BatchNormalization(),
        Dense(128, activation="relu"),
        BatchNormalization(),
        Dense(64, activation="relu"),
        BatchNormalization(),
        Dense(64, activation="relu"),
        BatchNormalization(),
        Dense(3, activation="softmax"),
    ])


def test_users_first_snippet_builds_with_keras_shapes():
    he_normal = keras.initializers.he_normal(seed=None)
    model = Sequential()
    model.add(Flatten(input_shape=(32, 32, 3)))
    model.add(Dense(128, activation="relu", kernel_initializer=he_normal))
    model.add(Dense(128, activation="relu", kernel_initializer=he_normal))
    model.add(Dense(100, activation="softmax"))
    assert model.built
    assert model.count_params() == 3072 * 128 + 128 + 128 * 128 + 128 + 128 * 100 + 100
    assert model.compute_output_shape((None, 32, 32, 3)) == (None, 100)
    std = model.layers[1].kernel.numpy().std()
    assert abs(std - np.sqrt(2 / 3072)) / np.sqrt(2 / 3072) < 0.05


def test_users_optimizer_lines_work_with_legacy_lr():
    with pytest.warns(DeprecationWarning):
        sgd = keras.optimizers.SGD(lr=0.001, momentum=0.9, nesterov=True)
    with pytest.warns(DeprecationWarning):
        rms = keras.optimizers.RMSProp(lr=0.001, rho=0.9)
    with pytest.warns(DeprecationWarning):
        adam = keras.optimizers.Adam(lr=0.001, beta_1=0.9, beta_2=0.999)
    assert sgd.nesterov and rms.rho == 0.9 and adam.beta_2 == 0.999
    assert np.isclose(sgd.learning_rate, 0.001)


def test_bn_stack_trains_on_blobs_and_counts_weights():
    keras.utils.set_random_seed(0)
    x, y = blobs()
    model = bn_stack()
    assert len(model.weights) == 6 * 2 + 5 * 4
    assert len(model.trainable_weights) == 6 * 2 + 5 * 2
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    # 250 steps: enough for momentum-0.99 moving statistics to converge for evaluate().
    history = model.fit(x, y, epochs=25, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    loss, acc = model.evaluate(x, y, verbose=0)
    assert acc > 0.9


def test_predict_one_sample_equals_inside_a_batch():
    keras.utils.set_random_seed(1)
    x, y = blobs()
    model = bn_stack()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, verbose=0)
    one = model.predict(x[5:6], verbose=0)
    batch = model.predict(x, batch_size=256, verbose=0)
    np.testing.assert_allclose(one[0], batch[5], rtol=1e-5, atol=1e-6)


def test_same_seed_gives_bit_identical_training():
    def run():
        keras.utils.set_random_seed(42)
        x, y = blobs(seed=3)
        model = bn_stack()
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                      loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=2, verbose=0)
        return model.get_weights()
    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


def test_weights_stay_float32_through_training():
    x, y = blobs()
    model = bn_stack()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x.astype("float64"), y, epochs=1, verbose=0)
    assert all(w.dtype == np.float32 for w in model.get_weights())
    assert model.predict(x[:3], verbose=0).dtype == np.float32


def test_history_validation_and_metrics_names():
    x, y = blobs()
    model = bn_stack()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    h = model.fit(x, y, epochs=2, validation_split=0.2, verbose=0)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(h.history["loss"]) == 2
    h = model.fit(x, y, epochs=1, validation_data=(x[:10], y[:10]), verbose=0)
    assert "val_accuracy" in h.history


def test_metrics_loss_is_accepted():
    x, y = blobs()
    model = Sequential([Dense(3, activation="softmax", input_shape=(4,))])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["loss"])
    h = model.fit(x, y, epochs=1, verbose=0)
    assert list(h.history) == ["loss"]


def test_binary_and_one_hot_targets_and_mse():
    x, y = blobs(k=2)
    model = Sequential([Dense(8, activation="relu", input_shape=(4,)),
                        Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=10, verbose=0)
    assert model.evaluate(x, y, verbose=0)[1] > 0.9
    x3, y3 = blobs(k=3)
    onehot = keras.utils.to_categorical(y3, 3)
    model = Sequential([Dense(3, activation="softmax", input_shape=(4,))])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x3, onehot, epochs=20, verbose=0)
    assert model.evaluate(x3, onehot, verbose=0)[1] > 0.8
    reg = Sequential([Dense(1, input_shape=(4,))])
    reg.compile(optimizer="adam", loss="mse", metrics=["mae"])
    target = x3 @ np.array([1.0, -2.0, 0.5, 0.0], dtype="float32")
    h = reg.fit(x3, target, epochs=5, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]


def test_custom_loss_function_in_compile():
    def my_mse(y_true, y_pred):
        return keras.ops.mean(keras.ops.square(y_pred - y_true), axis=-1)
    x, _ = blobs()
    target = x[:, :1] * 2
    model = Sequential([Dense(1, input_shape=(4,))])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=my_mse)
    h = model.fit(x, target, epochs=5, verbose=0)
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]


def test_on_batch_methods():
    x, y = blobs()
    model = Sequential([Dense(3, activation="softmax", input_shape=(4,))])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    loss, acc = model.train_on_batch(x[:32], y[:32])
    assert np.isfinite(loss) and 0 <= acc <= 1
    assert isinstance(model.test_on_batch(x[:32], y[:32], return_dict=True), dict)
    assert model.predict_on_batch(x[:5]).shape == (5, 3)


def test_freezing_takes_effect_at_next_fit():
    x, y = blobs()
    model = bn_stack()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    for layer in model.layers[:-1]:
        layer.trainable = False
    frozen = [w.numpy().copy() for l in model.layers[:-1] for w in l.weights]
    head = model.layers[-1].kernel.numpy().copy()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    after = [w.numpy() for l in model.layers[:-1] for w in l.weights]
    for a, b in zip(frozen, after):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(head, model.layers[-1].kernel.numpy())


def test_summary_shows_counts_and_frozen_layers():
    model = bn_stack()
    model.layers[0].trainable = False
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        model.summary()
    text = out.getvalue()
    assert "Trainable params" in text and "Non-trainable params" in text
    assert "frozen" in text and model.layers[0].name in text
    assert f"{model.count_params():,}" in text


def test_verbose_modes_print_one_line_per_epoch_in_logs():
    x, y = blobs()
    model = Sequential([Dense(3, activation="softmax", input_shape=(4,))])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    for verbose in (1, 2):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            model.fit(x, y, epochs=2, verbose=verbose)
        lines = [l for l in out.getvalue().splitlines() if "loss" in l]
        assert len(lines) == 2
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        model.fit(x, y, epochs=2, verbose=0)
    assert out.getvalue() == ""


def test_lambda_callback_and_stop_training():
    x, y = blobs()
    model = Sequential([Dense(3, activation="softmax", input_shape=(4,))])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    seen = []

    def on_epoch_end(epoch, logs):
        seen.append(epoch)
        if epoch == 1:
            model.stop_training = True
    model.fit(x, y, epochs=5, verbose=0,
              callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)])
    assert seen == [0, 1]


def test_build_with_none_batch_and_subclassed_model():
    model = Sequential([Dense(4), Dense(2)])
    model.build((None, 3))
    assert model.layers[0].kernel.shape == (3, 4)

    class MLP(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = Dense(8, activation="relu")
            self.out = Dense(3, activation="softmax")

        def call(self, x, training=False):
            return self.out(self.hidden(x))
    x, y = blobs()
    m = MLP()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    m.fit(x, y, epochs=1, verbose=0)
    assert len(m.trainable_weights) == 4


def test_class_and_sample_weights_change_the_loss():
    x, y = blobs()
    model = Sequential([Dense(3, activation="softmax", input_shape=(4,))])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    base = model.evaluate(x, y, verbose=0)
    weights = np.where(y == 0, 2.0, 0.0)
    weighted = model.evaluate(x, y, sample_weight=weights, verbose=0)
    ref = model.compute_loss(y=y, y_pred=keras.ops.convert_to_tensor(
        model.predict(x, verbose=0)), sample_weight=weights)
    assert np.isclose(weighted, float(ref.data), rtol=1e-5) and not np.isclose(weighted, base)
    model.fit(x, y, class_weight={0: 1.0, 1: 2.0, 2: 0.5}, epochs=1, verbose=0)


# ---- bad input ----------------------------------------------------------------------------
def compiled_model():
    model = Sequential([Dense(3, activation="softmax", input_shape=(4,), name="first")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_wrong_input_shape_names_layer_expected_and_actual():
    model = compiled_model()
    with pytest.raises(ValueError) as err:
        model.fit(np.ones((10, 5)), np.zeros(10), verbose=0)
    assert "first" in str(err.value) and "4" in str(err.value) and "5" in str(err.value)


def test_labels_out_of_range():
    model = compiled_model()
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        model.fit(np.ones((10, 4)), np.full(10, 3), verbose=0)


def test_length_mismatch_and_empty_data():
    model = compiled_model()
    with pytest.raises(ValueError, match="same number of samples"):
        model.fit(np.ones((10, 4)), np.zeros(9), verbose=0)
    with pytest.raises(ValueError, match="empty"):
        model.fit(np.ones((0, 4)), np.zeros(0), verbose=0)


def test_unknown_names_suggest_the_right_one():
    model = Sequential([Dense(3, input_shape=(4,))])
    with pytest.raises(ValueError, match="categorical_crossentropy"):
        model.compile(optimizer="adam", loss="categorical_crossentropie")
    with pytest.raises(ValueError, match="adam"):
        model.compile(optimizer="adma", loss="mse")
    with pytest.raises(ValueError, match="relu"):
        Dense(3, activation="relu6x")


def test_non_numeric_arrays():
    model = compiled_model()
    with pytest.raises(TypeError, match="numeric"):
        model.fit(np.array([["a"] * 4] * 3), np.zeros(3), verbose=0)
    with pytest.raises(TypeError, match="numeric"):
        model.fit(np.ones((3, 4)), np.array(["cat", "dog", "cat"]), verbose=0)


def test_fit_before_compile_is_a_clear_error():
    model = Sequential([Dense(3, input_shape=(4,))])
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(np.ones((3, 4)), np.zeros(3), verbose=0)


def test_low_level_surface_variable_apply_gradients():
    v = keras.Variable(np.array([1.0, 2.0]))
    assert isinstance(v.numpy(), np.ndarray) and v.dtype == np.float32  # as keras.Variable
    assert keras.Variable(np.zeros(2), dtype="float64").dtype == np.float64
    v.assign([3.0, 4.0])
    opt = keras.optimizers.SGD(learning_rate=0.5)
    opt.apply_gradients(zip([np.array([1.0, 1.0], dtype=np.float32)], [v]))
    np.testing.assert_allclose(v.numpy(), [2.5, 3.5])
    t = keras.ops.convert_to_tensor([1.0, 2.0])
    assert t.dtype == np.float32
    init = keras.initializers.GlorotUniform(seed=1)
    assert init((3, 4), dtype="float32").shape == (3, 4)


def test_blas_thread_control_round_trips_and_fit_restores_it():
    from glassnet import backend
    before = backend.get_blas_threads()
    if before is None:
        pytest.skip("this NumPy's BLAS exposes no thread control")
    previous = backend.set_blas_threads(1)
    assert previous == before and backend.get_blas_threads() == 1
    backend.set_blas_threads(before)
    x, y = blobs()
    model = compiled_model()
    model.fit(x, y, epochs=1, verbose=0)
    assert backend.get_blas_threads() == before
    assert backend.blas_threads_for(32 * 4 * 3) == 1


@pytest.mark.parametrize("setting", ["", "default"])
def test_allocator_policy_applies_with_the_first_model_unless_opted_out(setting):
    """glibc keeps freed step memory (no page faults in the next step); `import glassnet`
    alone changes nothing and GLASSNET_MALLOC=default opts out."""
    import subprocess
    import sys
    code = ("import ctypes, glassnet as gn; from glassnet import backend;"
            "assert backend._allocator_state['tuned'] is None, 'import must not tune';"
            "gn.Sequential([gn.layers.Dense(2)]);"
            "print(backend._allocator_state['tuned'],"
            " hasattr(ctypes.CDLL(None), 'gnu_get_libc_version'))")
    env = dict(os.environ, GLASSNET_MALLOC=setting)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    tuned, glibc = out[0] == "True", out[1] == "True"
    assert tuned == (glibc and setting != "default"), out


def test_steps_per_epoch_and_batch_size_validation():
    x, y = blobs()
    model = compiled_model()
    seen = []
    model.fit(x, y, epochs=1, steps_per_epoch=2, verbose=0, callbacks=[
        keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(b))])
    assert seen == [0, 1]
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="batch_size"):
            model.fit(x, y, batch_size=bad, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(x, batch_size=0)


def test_float64_targets_do_not_leak_into_custom_loss_gradients():
    seen = []

    def loss(y_true, y_pred):
        seen.append(np.asarray(y_true).dtype)
        return keras.ops.mean(keras.ops.square(y_pred - y_true), axis=-1)
    model = Sequential([Dense(1, input_shape=(3,))])
    model.compile(optimizer="sgd", loss=loss)
    model.fit(np.random.rand(32, 3), np.random.rand(32, 1), verbose=0)
    assert set(seen) == {np.dtype("float32")}
    assert all(w.dtype == np.float32 for w in model.get_weights())


def test_learning_rate_of_a_scheduled_optimizer_cannot_be_overwritten():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, 10, 0.9)
    opt = keras.optimizers.SGD(schedule)
    with pytest.raises(TypeError, match="schedule"):
        opt.learning_rate = 0.1


def test_blas_thread_tuner_keeps_the_faster_setting_and_reprobes(monkeypatch):
    from glassnet import backend
    from glassnet.training.trainer import _BlasThreadTuner
    small = _BlasThreadTuner(10)
    assert small.next_threads(0.0) == 1
    probe_steps = _BlasThreadTuner.RUN * len(_BlasThreadTuner.PLAN)
    busy = [False]
    monkeypatch.setattr(backend, "machine_busy", lambda: busy[0])

    def probe(tuner, cost, now, steps=probe_steps):
        seen = []
        for i in range(steps):
            threads = tuner.next_threads(now)
            seen.append(threads)
            # the first step of each run pays for the thread switch (and the very first
            # one for building the model): it must not decide anything
            slow = 0.003 if i % tuner.RUN == 0 else 0.0
            tuner.record(threads, cost[threads] + slow, now)
            now += 0.01
        return seen, now

    tuner = _BlasThreadTuner(2 ** 30)
    seen, now = probe(tuner, {1: 0.010, 0: 0.004}, 0.0)  # the default (0) is faster here
    assert seen[0] == 0, "a measurement starts with the library default"
    assert 1 in seen and tuner.choice == 0 and tuner.next_threads(now) == 0

    def steps_at_choice(tuner, count, seconds, now):
        for _ in range(count):
            assert tuner.next_threads(now) == tuner.choice
            tuner.record(tuner.choice, seconds, now)
        return now

    # measured again after PROBE_EVERY steps at the choice and MIN_INTERVAL_S, not before
    steps_at_choice(tuner, tuner.PROBE_EVERY, 0.004, now)
    assert tuner.next_threads(now + tuner.MIN_INTERVAL_S - 0.1) == 0 and tuner.choice == 0
    now += tuner.MIN_INTERVAL_S
    _, now = probe(tuner, {1: 0.002, 0: 0.009}, now)  # one thread is faster (a VM, a peer)
    assert tuner.choice == 1 and tuner.next_threads(now) == 1
    steps_at_choice(tuner, tuner.PROBE_EVERY - 1, 0.002, now + 1000)
    assert tuner.choice == 1, "not due before PROBE_EVERY steps, however long it took"
    steps_at_choice(tuner, 1, 0.002, now)
    now += tuner.MIN_INTERVAL_S
    _, now = probe(tuner, {1: 0.0098, 0: 0.0100}, now)  # a tie is noise: keep the default
    assert tuner.choice == 0

    # between measurements, steps that turn slow (a competitor arrived) trigger one at once
    for _ in range(20):
        tuner.record(tuner.next_threads(now), 0.0100, now)
    assert tuner.next_threads(now) == 0 and tuner.choice == 0
    for _ in range(20):
        threads = tuner.next_threads(now)
        if tuner.choice is None:
            break
        tuner.record(threads, 0.016, now)
    assert tuner.choice is None, "a 1.6x slow-down starts a new measurement"
    _, now = probe(tuner, {1: 0.008, 0: 0.016}, now)
    assert tuner.choice == 1

    # long steps on an idle machine: the default after one step, no step at one thread
    long = _BlasThreadTuner(2 ** 30)
    seen, now = probe(long, {1: 0.2, 0: 0.1}, 0.0)
    assert seen == [0] * probe_steps and long.choice == 0
    busy[0] = True  # ... unless another process keeps a core busy: then measured
    long = _BlasThreadTuner(2 ** 30)
    seen, now = probe(long, {1: 0.05, 0: 0.25}, 0.0)
    assert 1 in seen and long.choice == 1


def test_training_imports_nothing_after_its_first_steps():
    """A module imported mid-epoch costs the user a pause and resident memory: np.median
    imported numpy.ma (1.6 MB of RSS, about 10 ms) when the BLAS tuner decided, at step 15."""
    import subprocess
    import sys
    script = """
import sys, numpy as np, glassnet as keras
x = np.random.default_rng(0).standard_normal((64 * 40, 784), dtype=np.float32)
y = np.arange(len(x)) % 10
model = keras.Sequential([keras.layers.Input((784,)), keras.layers.Dense(512, "relu"),
                          keras.layers.Dense(10, "softmax")])
model.compile("adam", "sparse_categorical_crossentropy")
seen = {}
class Watch(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 1:
            seen.setdefault("early", set(sys.modules))
model.fit(x, y, batch_size=64, epochs=2, verbose=0, callbacks=[Watch()])
tuner = next(iter(model._blas_tuners.values()))
decided = keras.backend.get_blas_threads() is None or tuner.decided_at > 0  # at least once
print(tuner.fixed is None and decided, sorted(set(sys.modules) - seen["early"]))
"""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, check=True).stdout.split(maxsplit=1)
    assert out[0] == "True", "the tuner must have measured and decided (where BLAS threads " \
        "can be set)"
    assert out[1].strip() == "[]", f"imported while training: {out[1]}"


def test_tuner_median_is_the_middle_value():
    from glassnet.training.trainer import _median
    assert _median([3.0, 1.0, 2.0]) == 2.0
    assert _median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert _median([0.5]) == 0.5


def test_weight_lists_follow_structure_changes():
    """Layers cache their weight lists; every change of structure or trainable flag shows."""
    from glassnet.layers import Dense
    from glassnet.models import Sequential
    model = Sequential([Dense(3, input_shape=(2,)), Dense(2)])
    first = model.trainable_weights
    assert len(first) == 4 and len(model.weights) == 4
    first.clear()  # a caller mutating the returned list does not corrupt the cache
    assert len(model.trainable_weights) == 4
    model.layers[0].trainable = False
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 2
    model.layers[0].kernel.trainable = True  # a single variable's flag
    assert len(model.trainable_weights) == 3
    model.add(Dense(1))
    assert len(model.weights) == 6
    model.pop()
    assert len(model.weights) == 4
    model.layers[0].trainable = True
    assert [w.path for w in model.trainable_weights] == [w.path for w in model.weights]
