"""The graph-free training step (training/step_plan.py) against the autograd graph.

The plan must be an optimisation only: the same weights, optimizer slots, batch-norm
statistics, losses and predictions, bit for bit, after several steps of train_on_batch and
fit; and every case it does not cover must go through the graph.
"""
import numpy as np
import pytest

import glassnet as keras
from glassnet import native
from glassnet.autograd import no_grad
from glassnet.training import step_plan

pytestmark = pytest.mark.filterwarnings("ignore:BatchNormalization layer")

if not native.available():
    pytest.skip("the plan needs the compiled kernels", allow_module_level=True)


@pytest.fixture(autouse=True)
def _plan_and_kernels_on():
    native.set_enabled(True)
    step_plan.set_enabled(True)
    yield
    step_plan.set_enabled(True)
    native.set_enabled(True)


@pytest.fixture
def plan_calls(monkeypatch):
    """Counts the steps the plan took (a run that returns a result)."""
    calls = {"taken": 0, "handed_back": 0}
    original = step_plan.StepPlan.run

    def run(self, *args):
        out = original(self, *args)
        calls["taken" if out is not None else "handed_back"] += 1
        return out
    monkeypatch.setattr(step_plan.StepPlan, "run", run)
    return calls


def _stack(kind, dtype="float32"):
    L = keras.layers
    if kind == "bn_adam":
        layers = [L.Input((12,), dtype=dtype), L.Dense(16, activation="relu", dtype=dtype),
                  L.BatchNormalization(dtype=dtype),
                  L.Dense(8, activation="relu", dtype=dtype),
                  L.BatchNormalization(center=False, scale=False, dtype=dtype),
                  L.Dense(5, activation="softmax", dtype=dtype)]
        opt = keras.optimizers.Adam(0.01)
    elif kind == "flatten_nesterov":
        layers = [L.Input((3, 4)), L.Flatten(), L.Dense(16, activation="tanh"),
                  L.Dense(8), L.Dense(8, activation="elu", use_bias=False),
                  L.Dense(5, activation="softmax")]
        opt = keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True)
    elif kind == "frozen_first":
        layers = [L.Input((12,)), L.Dense(16, activation="relu", trainable=False),
                  L.Dense(16, activation="relu"), L.BatchNormalization(),
                  L.Dense(5, activation="softmax")]
        opt = keras.optimizers.RMSprop(0.01)
    elif kind == "dropout":
        layers = [L.Input((12,)), L.Dropout(0.2, seed=1), L.Dense(16, activation="relu"),
                  L.Dropout(0.5, seed=2), L.BatchNormalization(),
                  L.Dense(16, activation="relu"), L.Dropout(0.0),
                  L.Dropout(0.3, noise_shape=(None, 1), seed=3),
                  L.Dense(5, activation="softmax")]
        opt = keras.optimizers.Nadam(0.01)
    elif kind == "small_graphs":  # layers the plan runs as graphs of their own
        layers = [L.Input((12,)), L.Dense(16, use_bias=False), L.BatchNormalization(),
                  L.Activation("relu"), L.Dense(16), L.LeakyReLU(negative_slope=0.2),
                  L.Dense(16, activation="sigmoid"), L.PReLU(),
                  L.GaussianNoise(0.1, seed=4),
                  L.Dense(16, activation="swish"), L.AlphaDropout(0.1, seed=5), L.ELU(),
                  L.Activation("linear"), L.Dense(5, activation="softmax")]
        opt = keras.optimizers.Adam(0.01)
    elif kind == "prelu_first":  # the lowest trainable layer is a small graph
        layers = [L.Input((12,)), L.PReLU(), L.Dense(5, activation="softmax",
                                                     trainable=False)]
        opt = keras.optimizers.SGD(0.1)
    else:  # frozen middle: gradients flow through a layer that learns nothing
        layers = [L.Input((12,)), L.Dense(16, activation="relu"),
                  L.Dense(16, activation="selu", trainable=False),
                  L.Dense(5, activation="softmax")]
        opt = keras.optimizers.Adam(0.01, amsgrad=True)
    model = keras.Sequential(layers)
    loss = keras.losses.SparseCategoricalCrossentropy() if kind == "dropout" else \
        "sparse_categorical_crossentropy"  # the Loss object: its own reduction path
    model.compile(optimizer=opt, loss=loss, metrics=["accuracy"])
    return model


def _data(kind, n=64, dtype="float32"):
    rng = np.random.default_rng(3)
    shape = (n, 3, 4) if kind == "flatten_nesterov" else (n, 12)
    return rng.standard_normal(shape).astype(dtype), rng.integers(0, 5, n)


def _state(model):
    out = [w.copy() for w in model.get_weights()]
    out += [np.array(v, copy=True) for v in model.optimizer.variables]
    return out


def _train(kind, plan_on, dtype="float32", label_shape=None):
    keras.utils.set_random_seed(7)
    model = _stack(kind, dtype)
    x, y = _data(kind, dtype=dtype)
    if label_shape == "column":
        y = y[:, None]
    elif label_shape == "float":
        y = y.astype("float32")
    step_plan.set_enabled(plan_on)
    losses = [model.train_on_batch(x[:32], y[:32]) for _ in range(4)]
    # batches of 24, 24, 16: the plan's kept arrays change shape
    history = model.fit(x, y, batch_size=24, epochs=2, verbose=0, shuffle=True)
    preds = model.predict(x, verbose=0)
    return model, losses, history.history, preds


@pytest.mark.parametrize("kind", ["bn_adam", "flatten_nesterov", "frozen_first",
                                  "frozen_middle", "dropout", "small_graphs",
                                  "prelu_first"])
def test_plan_matches_the_graph_bit_for_bit(kind, plan_calls):
    fast, fast_losses, fast_hist, fast_pred = _train(kind, True)
    assert plan_calls["taken"] == 4 + 2 * 3 and plan_calls["handed_back"] == 0
    slow, slow_losses, slow_hist, slow_pred = _train(kind, False)
    assert plan_calls["taken"] == 4 + 2 * 3  # the graph run did not take the plan
    np.testing.assert_array_equal(np.array(fast_losses), np.array(slow_losses))
    assert fast_hist == slow_hist
    for a, b in zip(_state(fast), _state(slow), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fast_pred, slow_pred)
    def bn_layers(model):
        return [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    for a, b in zip(bn_layers(fast), bn_layers(slow), strict=True):
        assert a.num_updates == b.num_updates > 0


@pytest.mark.parametrize("labels", ["column", "float"])
def test_plan_takes_label_columns_and_integral_floats(labels, plan_calls):
    fast = _train("bn_adam", True, label_shape=labels)
    slow = _train("bn_adam", False, label_shape=labels)
    assert plan_calls["taken"] > 0
    for a, b in zip(_state(fast[0]), _state(slow[0]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_results_do_not_share_the_kept_arrays():
    model = _stack("bn_adam")
    x, y = _data("bn_adam")
    variables = model.trainable_variables
    loss, y_pred = model._train_batch(x[:32], y[:32], None, variables)
    first = (float(loss.data), y_pred.data.copy())
    model._train_batch(x[32:], y[32:], None, variables)
    assert float(loss.data) == first[0]
    np.testing.assert_array_equal(y_pred.data, first[1])


def test_plan_in_float64(plan_calls):
    keras.backend.set_floatx("float64")
    try:
        fast, _, _, pred_fast = _train("bn_adam", True, dtype="float64")
        slow, _, _, pred_slow = _train("bn_adam", False, dtype="float64")
    finally:
        keras.backend.set_floatx("float32")
    assert plan_calls["taken"] > 0 and fast.get_weights()[0].dtype == np.float64
    np.testing.assert_array_equal(pred_fast, pred_slow)
    for a, b in zip(_state(fast), _state(slow), strict=True):
        np.testing.assert_array_equal(a, b)
    # float64 layers in a float32 model: the model rounds its input; the graph's business
    mixed = _stack("bn_adam", "float64")
    assert mixed.dtype == "float32" and step_plan.plan_for(mixed) is None


def test_the_gradients_land_where_backward_leaves_them(plan_calls):
    """The optimizer sees the same gradients: its step is wrapped to read them."""
    seen = {}
    for on in (True, False):
        keras.utils.set_random_seed(2)
        model = _stack("bn_adam")
        x, y = _data("bn_adam")
        model.train_on_batch(x[:32], y[:32])  # packs the buffers
        opt = model.optimizer
        original = opt.step

        def step(variables, original=original, on=on):
            seen[on] = [np.array(v.grad, copy=True) for v in variables]
            return original(variables)
        opt.step = step
        step_plan.set_enabled(on)
        model.train_on_batch(x[32:], y[32:])
    assert plan_calls["taken"] == 3  # both models' first steps, the first model's second
    for a, b in zip(seen[True], seen[False], strict=True):
        np.testing.assert_array_equal(a, b)


def test_what_the_plan_does_not_cover_goes_through_the_graph(plan_calls):
    x, y = _data("bn_adam")
    model = _stack("bn_adam")
    model.train_on_batch(x[:32], y[:32], sample_weight=np.ones(32))
    assert plan_calls == {"taken": 0, "handed_back": 1}
    model.layers[1].trainable = False  # a frozen BN normalises with its moving statistics
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.train_on_batch(x[:32], y[:32])
    assert plan_calls == {"taken": 0, "handed_back": 2}
    model.layers[1].trainable = True
    model.layers[0].kernel_regularizer = None
    model.layers[0].kernel.regularizer = keras.regularizers.L2(0.01)
    model.train_on_batch(x[:32], y[:32])
    assert plan_calls == {"taken": 0, "handed_back": 3}
    model.layers[0].kernel.regularizer = None
    model.train_on_batch(x[:32], y[:32])
    assert plan_calls["taken"] == 1

    # other losses, other layers, logits out, a layer twice, another model class: no plan
    dense = keras.layers.Dense(12, activation="relu")
    for loss, layers in [
        ("categorical_crossentropy", [keras.layers.Dense(5, activation="softmax")]),
        ("sparse_categorical_crossentropy", [keras.layers.LayerNormalization(),
                                             keras.layers.Dense(5, activation="softmax")]),
        ("sparse_categorical_crossentropy", [keras.layers.Dense(5)]),
        ("sparse_categorical_crossentropy", [dense, dense,
                                             keras.layers.Dense(5, activation="softmax")]),
    ]:
        m = keras.Sequential([keras.layers.Input((12,))] + layers)
        m.compile(optimizer="sgd", loss=loss)
        assert step_plan.plan_for(m) is None
    class Custom(keras.Sequential):
        pass
    sub = Custom([keras.layers.Input((12,)), keras.layers.Dense(5, activation="softmax")])
    sub.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert step_plan.plan_for(sub) is None
    inputs = keras.layers.Input((12,))
    functional = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(inputs))
    functional.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert step_plan.plan_for(functional) is None


def test_diagnostics_wrappers_see_the_layers(plan_calls):
    """A wrapper around a layer's call (activation statistics) must see the forward."""
    model = _stack("bn_adam")
    x, y = _data("bn_adam")
    seen = []
    layer = model.layers[0]
    original = layer.call

    def call(inputs, *args, **kwargs):
        seen.append(inputs.shape)
        return original(inputs, *args, **kwargs)
    layer.__dict__["call"] = call
    model.train_on_batch(x[:32], y[:32])
    assert seen and plan_calls == {"taken": 0, "handed_back": 1}


def test_errors_are_the_graphs(plan_calls):
    model = _stack("bn_adam")
    x, y = _data("bn_adam")
    with pytest.raises(ValueError, match=r"labels in \[0, 5\).*Received label 7"):
        model.train_on_batch(x[:32], np.full(32, 7))
    with pytest.raises(ValueError, match="expected shape"):
        model.train_on_batch(x[:32, :10], y[:32])
    with pytest.raises(ValueError, match="integer class labels"):
        model.train_on_batch(x[:32], np.full(32, 0.5))
    frozen = _stack("bn_adam")
    for layer in frozen.layers:
        layer.trainable = False
    frozen.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="no trainable weights"):
        frozen.train_on_batch(x[:32], y[:32])


def test_environment_variable_and_switch(monkeypatch):
    model = _stack("bn_adam")
    assert step_plan.plan_for(model) is not None
    step_plan.set_enabled(False)
    assert not step_plan.enabled() and step_plan.plan_for(model) is None
    step_plan.set_enabled(True)
    with native.disabled():
        assert step_plan.plan_for(model) is None


def test_environment_variable_switches_the_plan_off():
    import os
    import subprocess
    import sys
    code = "from glassnet.training import step_plan; print(step_plan.enabled())"
    env = {**os.environ, "GLASSNET_STEP_PLAN": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "False"


# ---- found in review: the plan hands back, or fails, exactly where the graph does ----
def _ab(fn):
    """fn() with the plan, then without it (same seed): (result or error text) twice."""
    out = []
    for on in (True, False):
        step_plan.set_enabled(on)
        keras.utils.set_random_seed(7)
        try:
            out.append(fn())
        except Exception as exc:  # the error is part of the behaviour compared
            out.append(f"{type(exc).__name__}: {exc}")
    step_plan.set_enabled(True)
    return out


def _bn_dropout_model():
    L = keras.layers
    model = keras.Sequential([L.Input((12,)), L.Dense(16), L.BatchNormalization(),
                              L.Dropout(0.5, seed=1), L.Dense(5, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def _side_effects(model):
    bn, dropout = model.layers[1], model.layers[2]
    return bn.num_updates, float(bn.moving_mean.numpy()[0]), float(dropout._rng.random())


@pytest.mark.parametrize("bad", [(7, np.int64), (-1, np.int32), (7, np.uint8),
                                 (2 ** 63 + 1, np.uint64), (7.0, np.float32)])
def test_a_bad_label_raises_after_the_forward_pass_as_in_the_graph(bad):
    x, _ = _data("bn_adam")
    value, dtype = bad
    labels = np.zeros(32, dtype)
    labels[5] = value

    def bad_labels():
        model = _bn_dropout_model()
        with pytest.raises(ValueError, match=f"Received label {value!r}") as caught:
            model.train_on_batch(x[:32], labels)
        # the error the user reads comes alone, not "during handling of" another one
        assert caught.value.__context__ is None and caught.value.__cause__ is None
        return _side_effects(model)
    on, off = _ab(bad_labels)
    assert on == off and on[0] == 1


def test_float16_models_take_the_graph():
    keras.backend.set_floatx("float16")
    try:
        model = keras.Sequential([keras.layers.Input((4,)),
                                  keras.layers.Dense(3, activation="softmax")])
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    finally:
        keras.backend.set_floatx("float32")
    assert step_plan.plan_for(model) is None
    loss = model.train_on_batch(np.ones((8, 4), "float16"), np.arange(8) % 3)
    assert np.isfinite(loss)


def test_nothing_left_to_train_is_noticed_before_any_side_effect():
    x, y = _data("bn_adam")

    class FreezeAll(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            for layer in self.model.layers:
                if layer.weights and layer.trainable_weights:
                    layer.trainable = False

    def freeze_mid_epoch():
        L = keras.layers
        model = keras.Sequential([L.Input((12,)), L.Dense(16),
                                  L.BatchNormalization(center=False, scale=False),
                                  L.Dense(5, activation="softmax")])
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        with pytest.raises(ValueError, match="does not depend on any trainable weight"):
            model.fit(x, y, batch_size=8, verbose=0, callbacks=[FreezeAll()])
        return model.layers[1].num_updates

    on, off = _ab(freeze_mid_epoch)
    assert on == off == 2

    def under_no_grad():
        model = _bn_dropout_model()
        with no_grad():
            return model.train_on_batch(x[:32], y[:32])
    on, off = _ab(under_no_grad)
    assert on == off and "does not depend" in on


def test_reassigned_activations_and_penalties_are_seen():
    x, y = _data("bn_adam")

    def change_activations():
        model = _stack("bn_adam")
        first = model.train_on_batch(x[:32], y[:32])
        model.layers[-1].activation = keras.activations.linear  # logits out: a new loss
        model.layers[0].activation = keras.activations.tanh
        return first, model.train_on_batch(x[:32], y[:32])
    on, off = _ab(change_activations)
    assert on == off

    def model_activity_regularizer():
        model = _bn_dropout_model()
        model.activity_regularizer = keras.regularizers.L2(0.1)
        return model.train_on_batch(x[:32], y[:32]), model.train_on_batch(x[:32], y[:32])
    on, off = _ab(model_activity_regularizer)
    assert on == off


def test_patched_methods_are_called(plan_calls):
    x, y = _data("bn_adam")
    model = _bn_dropout_model()
    base = model.compute_loss
    model.compute_loss = lambda *a, **k: base(*a, **k) * 10.0
    model.train_on_batch(x[:32], y[:32])
    assert plan_calls == {"taken": 0, "handed_back": 1}
    del model.compute_loss
    seen = []
    original = keras.layers.Dense.call

    def counting_call(self, inputs):
        seen.append(self.name)
        return original(self, inputs)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras.layers.Dense, "call", counting_call)
        model.train_on_batch(x[:32], y[:32])
    assert len(seen) == 2 and plan_calls == {"taken": 0, "handed_back": 2}
    model.train_on_batch(x[:32], y[:32])
    assert plan_calls["taken"] == 1


def test_custom_activation_functions_take_the_graph():
    L = keras.layers
    model = keras.Sequential([L.Input((12,)), L.Dense(16, activation=lambda t: t * 2.0),
                              L.BatchNormalization(), L.Dense(5, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert step_plan.plan_for(model) is None


def test_loss_objects_with_other_settings_take_the_graph():
    x, y = _data("bn_adam")
    for loss in (keras.losses.SparseCategoricalCrossentropy(ignore_class=0),
                 keras.losses.SparseCategoricalCrossentropy(reduction="sum"),
                 keras.losses.SparseCategoricalCrossentropy(from_logits=True)):
        model = _bn_dropout_model()
        model.compile(optimizer="sgd", loss=loss)
        assert step_plan.plan_for(model) is None, loss

    def bad_label_and_later_settings():
        model = _bn_dropout_model()
        loss = keras.losses.SparseCategoricalCrossentropy()
        model.compile(optimizer="sgd", loss=loss)
        try:
            model.train_on_batch(x[:32], np.full(32, 9))
        except ValueError as exc:
            message = str(exc)
        loss.reduction = "sum"  # after compile: the next step must see it
        return message, _side_effects(model), model.train_on_batch(x[:32], y[:32])
    on, off = _ab(bad_label_and_later_settings)
    assert on == off and "Received label 9" in on[0]
