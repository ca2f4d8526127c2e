"""Transfer-learning semantics: shared layers, clone_model, freezing, unique names, the
shared-layer summary and warning, per-layer learning rates and the two-phase helper."""
import contextlib
import gc
import io
import os
import warnings

import numpy as np
import pytest

import glassnet as keras
from glassnet import layers
from glassnet.callbacks import LambdaCallback
from glassnet.layers import BatchNormalization, Dense, Flatten, Input
from glassnet.layers import base as layers_base
from glassnet.models import Sequential, clone_model, fine_tune, set_lr_multiplier

# The users' recipe from issue 4, verbatim (tabs included).
SNIPPET = '''model_A = keras.models.load_model("my_model.h5")
model_B = keras.models.Sequential(model_A.layers[:-1])
model_B.add(keras.layers.Dense(2, activation = "sigmoid"))
model_A_clone = keras.models.clone_model(model_A)
model_A_clone.set_weights(model_A.get_weights())

for layer in model_B.layers[:-1]:
\tlayer.trainable = False

model_B.compile(loss = "binary_crossentropy", optimizer = "sgd", metrics = ["loss"])
'''


def task_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4, 4)).astype("float32")
    y_a = (x.reshape(n, -1)[:, :3].argmax(1)).astype("int64")
    y_b = np.eye(2, dtype="float32")[(x[:, 0, 0] > 0).astype(int)]
    return x, y_a, y_b


def make_model_A():
    model = Sequential([Flatten(input_shape=(4, 4)), Dense(6, activation="relu"),
                        Dense(5, activation="relu"), Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y_a, _ = task_data()
    model.fit(x, y_a, epochs=1, verbose=0)
    return model


def run_snippet(model_A=None, directory=None):
    """Execute the snippet with `import glassnet as keras`; without a file, model_A is
    given and the load line is skipped."""
    scope = {"keras": keras}
    code = SNIPPET
    if model_A is not None:
        scope["model_A"] = model_A
        code = SNIPPET.split("\n", 1)[1]
    cwd = os.getcwd()
    try:
        if directory is not None:
            os.chdir(directory)
        exec(compile(code, "issue4_snippet", "exec"), scope)
    finally:
        os.chdir(cwd)
    return scope


def check_snippet_semantics(scope):
    model_A, model_B, clone = scope["model_A"], scope["model_B"], scope["model_A_clone"]
    names = [l.name for l in model_B.layers]
    assert len(set(names)) == len(names), names
    assert all(b is a for b, a in zip(model_B.layers[:-1], model_A.layers[:-1]))
    assert all(not l.trainable for l in model_B.layers[:-1]) and model_B.layers[-1].trainable
    assert all(c is not a for c, a in zip(clone.layers, model_A.layers))
    for got, want in zip(clone.get_weights(), model_A.get_weights()):
        np.testing.assert_array_equal(got, want)
    x, _, y_b = task_data(32, seed=3)
    before_A = model_A.get_weights()
    history = model_B.fit(x, y_b, epochs=1, verbose=0)
    assert list(history.history) == ["loss"]  # metrics=["loss"] is accepted
    for got, want in zip(model_A.get_weights(), before_A):
        np.testing.assert_array_equal(got, want)  # frozen: A untouched
    for layer in model_B.layers:
        layer.trainable = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model_B.fit(x, y_b, epochs=1, verbose=0)
    changed = [not np.array_equal(a, b) for a, b in zip(model_A.get_weights(), before_A)]
    assert any(changed[:-2]) and not any(changed[-2:])  # shared layers moved, A's head not
    for got, want in zip(clone.get_weights(), before_A):
        np.testing.assert_array_equal(got, want)  # the clone is independent


# ---- the issue's snippet ------------------------------------------------------------------
def test_issue_snippet_on_a_model_built_in_code():
    check_snippet_semantics(run_snippet(model_A=make_model_A()))


def test_issue_snippet_when_automatic_names_restart(monkeypatch):
    # Real Keras 3 raises "All layers added to a Sequential model should have unique names"
    # here: the name counter does not know the model's names (fresh process, clear_session).
    model_A = make_model_A()
    monkeypatch.setattr(layers_base, "_NAME_COUNTS", {})
    scope = run_snippet(model_A=model_A)
    head = scope["model_B"].layers[-1]
    assert head.name not in [l.name for l in model_A.layers]
    assert head.kernel.path.startswith(head.name + "/")
    check_snippet_semantics(scope)


def test_issue_snippet_on_a_saved_and_loaded_model(tmp_path, monkeypatch):
    pytest.importorskip("glassnet.saving")
    if not (hasattr(keras.models, "load_model") and hasattr(Sequential, "save")):
        pytest.skip("glassnet.saving is not wired to model.save/load_model yet")
    model_A = make_model_A()
    model_A.save(str(tmp_path / "my_model.h5"))
    monkeypatch.setattr(layers_base, "_NAME_COUNTS", {})  # as in a new process
    scope = run_snippet(directory=tmp_path)
    x = task_data(8)[0]
    np.testing.assert_allclose(scope["model_A"].predict(x, verbose=0),
                               model_A.predict(x, verbose=0), rtol=1e-5)
    check_snippet_semantics(scope)


def test_issue_snippet_on_a_model_saved_by_keras(tmp_path, monkeypatch):
    os.environ.setdefault("KERAS_BACKEND", "numpy")
    real_keras = pytest.importorskip("keras")
    if not hasattr(keras.models, "load_model"):
        pytest.skip("glassnet.saving is not wired to load_model yet")
    k_model = real_keras.Sequential([
        real_keras.Input((4, 4)), real_keras.layers.Flatten(),
        real_keras.layers.Dense(6, activation="relu"), real_keras.layers.BatchNormalization(),
        real_keras.layers.Dense(5, activation="relu"),
        real_keras.layers.Dense(3, activation="softmax")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k_model.save(str(tmp_path / "my_model.h5"))  # Keras' legacy HDF5 layout
    monkeypatch.setattr(layers_base, "_NAME_COUNTS", {})  # as in a new process
    scope = run_snippet(directory=tmp_path)
    names = [l.name for l in scope["model_A"].layers]
    assert names == [l.name for l in k_model.layers]  # "dense", "dense_1", ... kept
    check_snippet_semantics(scope)


# ---- names --------------------------------------------------------------------------------
def test_explicit_name_clash_raises_naming_both_layers():
    model = Sequential([Input((3,)), Dense(2, name="head")])
    with pytest.raises(ValueError, match=r"unique names.*'head' \(Dense\).*'head' \(Dense\)"
                                         r".*given explicitly"):
        model.add(Dense(4, name="head"))
    assert [l.name for l in model.layers] == ["head"]


def test_explicit_name_wins_over_an_automatic_one():
    auto = Dense(2)
    model = Sequential([Input((3,)), auto])
    taken = auto.name
    with pytest.warns(UserWarning, match=f"renamed '{taken}' -> "):
        model.add(Dense(2, name=taken))
    assert model.layers[1].name == taken and auto.name != taken
    assert auto.kernel.path == f"{auto.name}/kernel"


# ---- sharing: summary and warning ---------------------------------------------------------
def summary_text(model):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        model.summary()
    return out.getvalue()


def test_summary_shows_frozen_and_shared_layers_while_the_other_model_lives():
    model_A = make_model_A()
    model_A.name = "model_a_for_summary"
    model_B = Sequential(model_A.layers[:-1] + [Dense(1, activation="sigmoid")])
    model_B.layers[1].trainable = False
    text = summary_text(model_B)
    assert "frozen" in text and f"Frozen layers: {model_B.layers[1].name}" in text
    shared_line = next(l for l in text.splitlines() if "Shared with other models" in l)
    for layer in model_B.layers[1:3]:
        assert f"{layer.name} (also in 'model_a_for_summary')" in shared_line
    assert model_B.layers[-1].name not in shared_line
    assert "Shared with" in summary_text(model_A)
    del model_A
    gc.collect()
    assert "Shared with" not in summary_text(model_B)


def shared_warnings(record):
    return [w for w in record if "shared with other models" in str(w.message)]


def test_fit_warns_once_before_updating_shared_layers():
    model_A = make_model_A()
    model_B = Sequential(model_A.layers[:-1] + [Dense(2, activation="sigmoid")])
    x, _, y_b = task_data()
    model_B.compile(optimizer="sgd", loss="binary_crossentropy")
    for layer in model_B.layers[:-1]:
        layer.trainable = False
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model_B.fit(x, y_b, epochs=1, verbose=0)  # shared layers frozen: nothing to say
        assert shared_warnings(record) == []
        for layer in model_B.layers:
            layer.trainable = True
        model_B.fit(x, y_b, epochs=1, verbose=0)
        model_B.fit(x, y_b, epochs=1, verbose=0)
    found = shared_warnings(record)
    assert len(found) == 1
    assert model_A.name in str(found[0].message) and "clone_model" in str(found[0].message)


def test_models_nested_in_the_trained_model_are_not_other_models():
    enc_in = Input((4,))
    encoder = keras.Model(enc_in, Dense(2)(enc_in))
    ae_in = Input((4,))
    autoencoder = keras.Model(ae_in, Dense(4)(encoder(ae_in)))
    autoencoder.compile(optimizer="sgd", loss="mse")
    x = np.ones((8, 4), "float32")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        autoencoder.fit(x, x, epochs=1, verbose=0)
    assert shared_warnings(record) == []
    assert "Shared with" not in summary_text(autoencoder)


# ---- clone_model --------------------------------------------------------------------------
def test_clone_model_builds_fresh_weights_and_copy_weights_copies():
    model_A = make_model_A()
    clone = clone_model(model_A)
    assert type(clone) is Sequential and clone.name == model_A.name
    assert [l.name for l in clone.layers] == [l.name for l in model_A.layers]
    assert [l.get_config() for l in clone.layers] == [l.get_config() for l in model_A.layers]
    assert all(c is not a for c, a in zip(clone.weights, model_A.weights))
    assert not np.allclose(clone.get_weights()[0], model_A.get_weights()[0])
    assert clone.compiled and clone.optimizer is not model_A.optimizer  # compile copied
    twin = clone_model(model_A, copy_weights=True)
    for got, want in zip(twin.get_weights(), model_A.get_weights()):
        np.testing.assert_array_equal(got, want)
    x, y_a, _ = task_data()
    before = model_A.get_weights()
    twin.fit(x, y_a, epochs=1, verbose=0)
    for got, want in zip(model_A.get_weights(), before):
        np.testing.assert_array_equal(got, want)


def test_clone_functional_keeps_sharing_and_accepts_clone_and_call_functions():
    a, b = Input((3,), name="ca"), Input((3,), name="cb")
    shared = Dense(2, name="c_shared")
    model = keras.Model([a, b], layers.Add()([shared(a), shared(b)]))
    clone = clone_model(model, copy_weights=True)
    assert len(clone.weights) == 2 and clone.get_layer("c_shared") is not shared
    xs = [np.ones((2, 3), "float32"), np.full((2, 3), 3.0, "float32")]
    np.testing.assert_allclose(clone.predict(xs, verbose=0), model.predict(xs, verbose=0))
    reuse = clone_model(model, clone_function=lambda layer: layer)
    assert reuse.get_layer("c_shared") is shared
    new_in = [Input((3,), name="na"), Input((3,), name="nb")]
    on_new = clone_model(model, input_tensors=new_in)
    assert [t.layer.name for t in on_new.inputs] == ["na", "nb"]
    calls = []

    def call_function(layer, *args, **kwargs):
        calls.append(layer.name)
        return layer(*args, **kwargs)
    clone_model(model, call_function=call_function)
    assert calls.count("c_shared") == 2
    with pytest.raises(ValueError, match="only supported for functional"):
        clone_model(make_model_A(), call_function=call_function)
    with pytest.raises(ValueError, match="copy_weights=True.*not built"):
        clone_model(Sequential([Dense(2)]), copy_weights=True)


def test_clone_recursive_applies_the_clone_function_inside_nested_models():
    inner_in = Input((3,))
    inner = keras.Model(inner_in, Dense(4, name="inner_dense")(inner_in), name="inner")
    outer_in = Input((3,))
    outer = keras.Model(outer_in, Dense(1, name="outer_dense")(inner(outer_in)))
    seen = []

    def clone_function(layer):
        seen.append(layer.name)
        return type(layer).from_config(layer.get_config())
    clone = clone_model(outer, clone_function=clone_function, recursive=True)
    assert "inner_dense" in seen and "inner" not in seen  # recursed into the inner model
    assert clone.get_layer("inner") is not inner
    assert clone.get_layer("inner").get_layer("inner_dense") is not inner.get_layer(
        "inner_dense")
    seen.clear()
    clone_model(outer, clone_function=clone_function)
    assert seen == ["inner", "outer_dense"]  # not recursive: the nested model is one layer


# ---- freezing -----------------------------------------------------------------------------
def test_freezing_leaves_weights_and_bn_statistics_unchanged_across_fit():
    x, y_a, _ = task_data(96)
    bn = BatchNormalization()
    model = Sequential([Flatten(input_shape=(4, 4)), Dense(6), bn,
                        Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    model.fit(x, y_a, epochs=1, verbose=0)
    for layer in model.layers[:-1]:
        layer.trainable = False
    frozen = [w.numpy().copy() for l in model.layers[:-1] for w in l.weights]
    assert len(frozen) == 6  # kernel, bias, gamma, beta, moving mean and variance
    head = model.layers[-1].kernel.numpy().copy()
    model.fit(x + 2.0, y_a, epochs=2, verbose=0)
    for got, want in zip([w.numpy() for l in model.layers[:-1] for w in l.weights], frozen):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(head, model.layers[-1].kernel.numpy())
    z = np.random.default_rng(0).standard_normal((16, 6)).astype("float32") * 3 + 1
    np.testing.assert_allclose(bn(z, training=True).data, bn(z, training=False).data)


def test_trainable_changes_take_effect_at_the_next_fit_without_recompiling():
    x, y_a, _ = task_data()
    model = make_model_A()
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss="sparse_categorical_crossentropy")
    model.fit(x, y_a, epochs=1, verbose=0)
    base = model.layers[1]
    base.trainable = False  # no compile() afterwards (Keras would need one)
    before = base.get_weights()
    model.fit(x, y_a, epochs=1, verbose=0)
    for got, want in zip(base.get_weights(), before):
        np.testing.assert_array_equal(got, want)
    base.trainable = True
    model.fit(x, y_a, epochs=1, verbose=0)
    assert not np.array_equal(base.get_weights()[0], before[0])


# ---- learning-rate multipliers ------------------------------------------------------------
def one_step_delta(multiplier, x, y, template):
    model = clone_model(template, copy_weights=True)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    if multiplier is not None:
        set_lr_multiplier(model.layers[0], multiplier)
    before = model.get_weights()
    model.train_on_batch(x, y)
    return [a - b for a, b in zip(model.get_weights(), before)], model


def test_lr_multiplier_scales_one_sgd_step_exactly():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 4)).astype("float32")
    y = rng.standard_normal((16, 1)).astype("float32")
    template = Sequential([Input((4,)), Dense(5, activation="tanh"), Dense(1)])
    plain, _ = one_step_delta(None, x, y, template)
    scaled, model = one_step_delta(0.25, x, y, template)
    # NOTE: deltas are differences of float32 weights of size ~1: exact to ~1e-7.
    for got, want in zip(scaled[:2], plain[:2]):  # w <- w - (0.25 * lr) * g
        np.testing.assert_allclose(got, 0.25 * want, rtol=1e-5, atol=2e-7)
    for got, want in zip(scaled[2:], plain[2:]):  # the head: the optimizer's lr
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-7)
    assert np.abs(plain[0]).max() > 1e-3  # the step is far above that rounding
    assert all(w.lr_multiplier == 0.25 for w in model.layers[0].weights)
    # A change takes effect at the next step, without compile().
    model.layers[0].lr_multiplier = 0.0
    before = model.layers[0].get_weights()
    model.train_on_batch(x, y)
    for got, want in zip(model.layers[0].get_weights(), before):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match=r"lr_multiplier.*>= 0.*Received: lr_multiplier=-1"):
        model.layers[0].lr_multiplier = -1


def test_lr_multiplier_set_before_build_reaches_the_weights():
    layer = Dense(3)
    layer.lr_multiplier = 0.5
    layer.build((None, 2))
    assert [w.lr_multiplier for w in layer.weights] == [0.5, 0.5]
    with pytest.raises(TypeError, match="list of Layers"):
        set_lr_multiplier([layer, "dense"], 0.1)


# ---- the two-phase helper -----------------------------------------------------------------
def test_fine_tune_freezes_then_unfreezes_with_a_lower_learning_rate():
    x, _, y_b = task_data(96)
    y = y_b[:, 1:]
    model_A = make_model_A()
    base = clone_model(model_A, copy_weights=True).layers[:-1]
    model = Sequential(base + [Dense(1, activation="sigmoid")])
    base_kernel = base[1].kernel
    snapshots, rates = [], []
    record = LambdaCallback(on_epoch_end=lambda epoch, logs: (
        snapshots.append(base_kernel.numpy().copy()),
        rates.append(model.optimizer.learning_rate)))
    start = base_kernel.numpy().copy()
    history = fine_tune(model, base, x, y, head_epochs=2, finetune_epochs=3, head_lr=0.05,
                        loss="binary_crossentropy", metrics=["accuracy"],
                        callbacks=[record], validation_data=(x, y))
    assert history.epoch == [0, 1, 2, 3, 4] and history.head_epochs == 2
    assert len(history.history["val_accuracy"]) == 5
    np.testing.assert_array_equal(snapshots[0], start)
    np.testing.assert_array_equal(snapshots[1], start)
    assert not np.array_equal(snapshots[-1], start)
    assert rates[:2] == [pytest.approx(0.05)] * 2 and rates[2:] == [pytest.approx(0.005)] * 3
    assert all(layer.trainable for layer in model.layers)


def test_fine_tune_keeps_batchnorm_frozen_and_applies_base_multiplier():
    x, _, y_b = task_data(64)
    bn = BatchNormalization()
    base = [Flatten(input_shape=(4, 4)), Dense(6), bn]
    model = Sequential(base + [Dense(2, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    stats = [bn.moving_mean.numpy().copy(), bn.moving_variance.numpy().copy()]
    fine_tune(model, base, x, y_b, head_epochs=1, finetune_epochs=1,
              base_lr_multiplier=0.1)
    assert not bn.trainable and model.layers[1].trainable
    np.testing.assert_array_equal(bn.moving_mean.numpy(), stats[0])
    np.testing.assert_array_equal(bn.moving_variance.numpy(), stats[1])
    assert model.layers[1].kernel.lr_multiplier == pytest.approx(0.1)
    with pytest.raises(ValueError, match="needs a `loss`"):
        fine_tune(Sequential([Dense(1)]), [], x, y_b)


# ---- the example on real data -------------------------------------------------------------
def test_transfer_example_runs_the_snippet_and_transfers(capsys):
    from glassnet.datasets import fashion_mnist
    if not fashion_mnist.is_available():
        pytest.skip("Fashion-MNIST not found: `apt-get install dataset-fashion-mnist` or set "
                    "GLASSNET_DATA to a folder with the four IDX files")
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
    import transfer_learning
    means = transfer_learning.main(seeds=1, epochs_a=2, fresh=True)
    assert "users' snippet ran" in capsys.readouterr().out
    assert means["model A val accuracy"] > 0.8
    assert means["B on A (1e-2, 1e-2)"] > 0.97, means


def test_deepcopy_of_a_model_does_not_share_its_layers():
    import copy
    model_A = Sequential([Flatten(input_shape=(4, 4)), Dense(6), Dense(3)])  # not compiled
    twin = copy.deepcopy(model_A)
    assert all(a is not b for a, b in zip(twin.layers, model_A.layers))
    assert "Shared with" not in summary_text(twin)
    x = task_data(8)[0]
    np.testing.assert_allclose(twin.predict(x, verbose=0), model_A.predict(x, verbose=0))
    inp = Input((4, 4))
    functional = keras.Model(inp, Dense(2)(Flatten()(inp)))
    copied = copy.deepcopy(functional)
    np.testing.assert_allclose(copied.predict(x, verbose=0), functional.predict(x, verbose=0))
    assert "Shared with" not in summary_text(copied)
