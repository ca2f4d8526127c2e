"""Keras interop both ways.

Files written by real Keras (3.x `.keras` and legacy `.h5`, and Keras 2.x `.h5` files built
by tests/fixtures/make_keras_fixtures.py) load in glassnet with Keras' predictions
(rtol 1e-5); these tests need no Keras. When Keras is importable, files written by glassnet
are loaded by real Keras in a subprocess and must predict the same.
"""
import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import warnings

import numpy as np
import pytest

import glassnet as keras
from glassnet import layers

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
EXPECTED = np.load(FIXTURES / "expected.npz")
FILES = ["k3_seq.keras", "k3_seq.h5", "k3_fn.keras", "k3_fn.h5", "k2_seq.h5", "k22_seq.h5",
         "k2_fn.h5"]


def _load(name, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return keras.models.load_model(FIXTURES / name, **kwargs)


def _predict(model, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.predict(x, verbose=0)


@pytest.mark.parametrize("name", FILES)
def test_keras_files_load_with_keras_predictions(name):
    model = _load(name)
    expected = EXPECTED[name.split(".")[0]]
    np.testing.assert_allclose(_predict(model, EXPECTED["x"]), expected, rtol=1e-5,
                               atol=1e-6)


def test_keras3_sequential_details():
    model = _load("k3_seq.keras")
    kinds = [type(l).__name__ for l in model.layers]
    assert kinds == ["Dense", "BatchNormalization", "Dropout", "Dense", "LeakyReLU", "Dense",
                     "PReLU", "Dense", "ELU", "LayerNormalization", "Reshape", "Flatten",
                     "Dense", "Dense", "Dense", "Softmax"]
    assert model.layers[4].negative_slope == pytest.approx(0.2)
    assert type(model.layers[0].kernel_initializer).__name__ == "HeNormal"
    assert model.layers[12].kernel_initializer.mode == "fan_avg"
    assert type(model.optimizer).__name__ == "Adam"
    assert model.optimizer.learning_rate == pytest.approx(0.003)
    assert model.optimizer.iterations == 2  # Keras trained 2 steps before saving
    assert model.loss == "sparse_categorical_crossentropy"
    m = model.optimizer.get_slot(model.layers[0].kernel, "momentum")
    assert np.abs(m).sum() > 0  # Keras' first moments were restored, not zeros


def test_keras3_files_agree_with_each_other():
    a, b = _load("k3_seq.keras"), _load("k3_seq.h5")
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(wa.numpy(), wb.numpy())
    for va, vb in zip(a.optimizer.variables, b.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(va), np.asarray(vb))


def test_keras_weights_file_loads_into_a_glassnet_model():
    model = _load("k3_seq.keras", compile=False)
    fresh = keras.models.model_from_json(model.to_json())
    report = fresh.load_weights(FIXTURES / "k3_seq.weights.h5")
    assert not report.skipped and len(report.loaded) == len(fresh.weights)
    np.testing.assert_allclose(_predict(fresh, EXPECTED["x"]), EXPECTED["k3_seq"], rtol=1e-5)


def test_keras2_legacy_translation():
    model = _load("k2_seq.h5")
    assert model.layers[4].negative_slope == pytest.approx(0.3)  # Keras 2 `alpha`
    assert model.layers[7].alpha == pytest.approx(0.7)
    assert model.optimizer.learning_rate == pytest.approx(0.001)  # Keras 2 `lr`
    assert model.optimizer.iterations == 0  # Keras 2 optimizer weights do not fit: fresh
    old = _load("k22_seq.h5")
    assert type(old.optimizer).__name__ == "SGD"
    assert old.optimizer.momentum == pytest.approx(0.9)
    assert old.optimizer.decay == pytest.approx(1e-4)
    assert old.layers[0].kernel_initializer.mode == "fan_avg"


def test_keras2_optimizer_mismatch_warns():
    with pytest.warns(UserWarning, match="fresh optimizer state"):
        keras.models.load_model(FIXTURES / "k2_seq.h5")


@pytest.mark.parametrize("name", ["k3_seq.keras", "k2_seq.h5", "glassnet"])
def test_transfer_learning_snippet_runs_unchanged(name, tmp_path):
    """The recipe of issue 4, on a file saved by real Keras and on one saved by glassnet."""
    if name == "glassnet":
        source = keras.Sequential([layers.Dense(8, activation="relu", input_shape=(6,)),
                                   layers.Dense(4, activation="softmax")])
        source.save(tmp_path / "my_model.h5")
        path = tmp_path / "my_model.h5"
    else:
        path = FIXTURES / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model_A = keras.models.load_model(path)
        model_B = keras.models.Sequential(model_A.layers[:-1])
        model_B.add(keras.layers.Dense(2, activation="sigmoid"))
        model_A_clone = keras.models.clone_model(model_A)
        model_A_clone.set_weights(model_A.get_weights())
        for layer in model_B.layers[:-1]:
            layer.trainable = False
        model_B.compile(loss="binary_crossentropy", optimizer="sgd", metrics=["loss"])
        y = (EXPECTED["x"][:, :2] > 0).astype("float32")
        model_B.fit(EXPECTED["x"], y, epochs=1, verbose=0)
    np.testing.assert_allclose(_predict(model_A_clone, EXPECTED["x"]),
                               _predict(model_A, EXPECTED["x"]), rtol=1e-5)


# ---- glassnet -> real Keras -----------------------------------------------------------------
_KERAS_CHECK = r"""
import os, sys, json
os.environ["KERAS_BACKEND"] = "numpy"
import numpy as np, keras
data = np.load(sys.argv[1])
out = {}
for path in sys.argv[2:]:
    model = keras.models.load_model(path)
    p = model.predict(data["x"], verbose=0)
    opt = getattr(model, "optimizer", None)
    out[os.path.basename(path)] = {
        "max_diff": float(np.max(np.abs(p - data["y_" + os.path.basename(path)]))),
        "rel": float(np.max(np.abs(p - data["y_" + os.path.basename(path)]) /
                            (np.abs(data["y_" + os.path.basename(path)]) + 1e-6))),
        "iterations": None if opt is None else int(opt.iterations.numpy()),
        "layers": [type(l).__name__ for l in model.layers]}
    for weights in (path.replace(".keras", ".weights.h5"), path.replace(".keras", "_w.h5")):
        if path.endswith(".keras") and os.path.exists(weights):
            model.set_weights([np.zeros_like(w) for w in model.get_weights()])
            model.load_weights(weights)
            p = model.predict(data["x"], verbose=0)
            out[os.path.basename(weights)] = {
                "max_diff": float(np.max(np.abs(p - data["y_" + os.path.basename(path)]))),
                "rel": 0.0, "iterations": 8, "layers": []}
print("RESULT" + json.dumps(out))
"""


def _glassnet_models():
    keras.utils.set_random_seed(5)
    x = np.random.default_rng(5).standard_normal((20, 6)).astype("float32")
    seq = keras.Sequential([
        layers.Dense(8, activation="relu", kernel_initializer="he_normal", input_shape=(6,)),
        layers.BatchNormalization(), layers.Dropout(0.2),
        layers.Dense(8, activation="tanh"), layers.LeakyReLU(0.2),
        layers.Dense(6, activation="selu"), layers.PReLU(), layers.ELU(),
        layers.LayerNormalization(), layers.Reshape((2, 3)), layers.Flatten(),
        layers.Dense(5, activation="sigmoid"), layers.Dense(4), layers.Softmax()])
    seq.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                metrics=["accuracy", "loss"])
    inp = keras.Input((6,))
    h = layers.Dense(7, activation="silu")(inp)
    h = layers.BatchNormalization()(h)
    fn = keras.Model(inp, layers.Dense(3, activation="softmax")(h))
    fn.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
               loss="sparse_categorical_crossentropy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for model in (seq, fn):
            model.fit(x, np.arange(20) % 3, batch_size=5, epochs=2, verbose=0)
    return x, {"seq": seq, "fn": fn}


def _keras_numpy_backend_imports() -> bool:
    import subprocess
    import sys
    if importlib.util.find_spec("keras") is None:
        return False
    probe = subprocess.run([sys.executable, "-c", "import keras"], capture_output=True,
                           env={**os.environ, "KERAS_BACKEND": "numpy"})
    return probe.returncode == 0


@pytest.mark.skipif(not _keras_numpy_backend_imports(),
                    reason="Keras (numpy backend: needs scipy) not importable")
def test_glassnet_files_load_in_real_keras(tmp_path):
    x, models = _glassnet_models()
    arrays, paths = {"x": x}, []
    for key, model in models.items():
        for ext in (".keras", ".h5"):
            path = tmp_path / f"{key}{ext}"
            model.save(path)
            paths.append(str(path))
            arrays[f"y_{path.name}"] = _predict(model, x)
        model.save_weights(tmp_path / f"{key}.weights.h5")  # Keras 3 layout
        model.save_weights(tmp_path / f"{key}_w.h5")  # Keras 2 layout
    np.savez(tmp_path / "data.npz", **arrays)
    env = {**os.environ, "KERAS_BACKEND": "numpy", "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", _KERAS_CHECK, str(tmp_path / "data.npz"),
                             *paths], capture_output=True, text=True, env=env, timeout=300)
    line = [l for l in result.stdout.splitlines() if l.startswith("RESULT")]
    assert line, f"real Keras failed to load glassnet files:\n{result.stderr[-3000:]}"
    out = json.loads(line[0][len("RESULT"):])
    for name, info in out.items():
        assert info["max_diff"] <= 1e-6 + 1e-5 * 1.0 and info["rel"] < 1e-4, (name, info)
        assert info["iterations"] == 8, (name, info)  # the optimizer state came along
    assert out["seq.keras"]["layers"][:3] == ["Dense", "BatchNormalization", "Dropout"]
    assert {"seq.weights.h5", "seq_w.h5", "fn.weights.h5", "fn_w.h5"} <= set(out)
