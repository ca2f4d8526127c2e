"""glassnet.saving: formats, round trips, load reports, safety, bounds and atomic saves."""
import json
import os
import subprocess
import sys
import warnings
import zipfile

import h5py
import numpy as np
import pytest

import glassnet as keras
from glassnet import layers, saving
from glassnet.saving import SavingError

X = np.random.default_rng(0).standard_normal((12, 6)).astype("float32")
Y = np.arange(12) % 4


def every_layer_model(compiled=True, train=True):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        layers.Dense(8, activation="relu", kernel_initializer="he_normal", input_shape=(6,)),
        layers.BatchNormalization(),
        layers.Dropout(0.3),
        layers.Dense(8, activation="tanh", kernel_regularizer=keras.regularizers.L2(1e-3)),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Dense(6, activation="selu", kernel_constraint=keras.constraints.MaxNorm(2.0)),
        layers.PReLU(),
        layers.ELU(alpha=0.5),
        layers.LayerNormalization(),
        layers.Reshape((2, 3)),
        layers.Flatten(),
        layers.Dense(4),
        layers.Softmax(),
    ], name="every_layer")
    if compiled:
        model.compile(optimizer=keras.optimizers.Adam(0.01),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        if train:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(X, Y, batch_size=4, epochs=2, verbose=0)
    return model


def predict(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.predict(X, verbose=0)


def functional_model():
    inp = keras.Input((6,), name="features")
    h = layers.Dense(8, activation="relu", name="hidden")(inp)
    h = layers.BatchNormalization(name="bn")(h)
    out = layers.Dense(3, activation="softmax", name="probs")(h)
    model = keras.Model(inp, out, name="fn")
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


# ---- round trips -------------------------------------------------------------------------
@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_round_trip_keeps_predictions_config_and_training_state(tmp_path, ext):
    model = every_layer_model()
    model.layers[0].trainable = False
    path = tmp_path / f"model{ext}"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(predict(loaded), predict(model), rtol=1e-6, atol=0)
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    assert [type(l) for l in loaded.layers] == [type(l) for l in model.layers]
    assert loaded.layers[0].trainable is False and loaded.layers[1].trainable is True
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert loaded.layers[7].alpha == 0.5 and loaded.layers[4].negative_slope == 0.2
    assert isinstance(loaded.layers[3].kernel_regularizer, keras.regularizers.L2)
    assert isinstance(loaded.layers[5].kernel_constraint, keras.constraints.MaxNorm)
    assert type(loaded.optimizer).__name__ == "Adam"
    assert loaded.optimizer.learning_rate == pytest.approx(0.01)
    assert loaded.optimizer.iterations == model.optimizer.iterations == 6
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert loaded.loss == "sparse_categorical_crossentropy"


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_uncompiled_unbuilt_and_compile_false(tmp_path, ext):
    model = every_layer_model(compiled=False)
    model.save(tmp_path / f"a{ext}")
    loaded = keras.models.load_model(tmp_path / f"a{ext}")
    assert not loaded.compiled
    np.testing.assert_allclose(predict(loaded), predict(model), rtol=1e-6)
    trained = every_layer_model()
    trained.save(tmp_path / f"b{ext}")
    assert not keras.models.load_model(tmp_path / f"b{ext}", compile=False).compiled
    unbuilt = keras.Sequential([layers.Dense(3), layers.Dense(2)])
    unbuilt.save(tmp_path / f"c{ext}")
    again = keras.models.load_model(tmp_path / f"c{ext}")
    assert not again.built and [l.units for l in again.layers] == [3, 2]


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_functional_and_nested_models_round_trip(tmp_path, ext):
    fn = functional_model()
    fn.save(tmp_path / f"fn{ext}")
    loaded = keras.models.load_model(tmp_path / f"fn{ext}")
    np.testing.assert_allclose(predict(loaded), predict(fn), rtol=1e-6)
    assert [l.name for l in loaded.layers] == [l.name for l in fn.layers]
    inner = keras.Sequential([layers.Dense(5, activation="relu"), layers.Dense(4)],
                             name="inner")
    outer = keras.Sequential([layers.Dense(6, input_shape=(6,)), inner, layers.Dense(2)])
    outer.save(tmp_path / f"nested{ext}")
    loaded = keras.models.load_model(tmp_path / f"nested{ext}")
    np.testing.assert_allclose(predict(loaded), predict(outer), rtol=1e-6)
    assert isinstance(loaded.layers[1], keras.Sequential)


def test_keras3_weight_layout_is_positional_by_class(tmp_path):
    model = keras.Sequential([layers.Dense(3, name="first", input_shape=(2,)),
                              layers.BatchNormalization(name="norm"),
                              layers.Dense(1, name="last")])
    model.save_weights(tmp_path / "w.weights.h5")
    with h5py.File(tmp_path / "w.weights.h5") as f:
        assert f["layers/dense/vars"].attrs["name"] == "first"
        assert f["layers/dense_1/vars"].attrs["name"] == "last"
        assert f["layers/dense/vars/0"].shape == (2, 3)
        assert [f[f"layers/batch_normalization/vars/{i}"].shape for i in range(4)] == \
            [(3,)] * 4
    model.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5") as f:
        assert json.loads(f.attrs["model_config"])["class_name"] == "Sequential"
        assert list(f["model_weights"].attrs["layer_names"]) == ["first", "norm", "last"]
        assert f["model_weights/first"].attrs["weight_names"][0] == "first/kernel"


def test_to_json_and_model_from_json(tmp_path):
    model = every_layer_model(compiled=False)
    text = model.to_json()
    config = json.loads(text)
    assert config["class_name"] == "Sequential"
    assert config["config"]["layers"][0]["class_name"] == "InputLayer"
    assert "batch_input_shape" not in config["config"]["layers"][1]["config"]
    clone = keras.models.model_from_json(text)
    assert [type(l) for l in clone.layers] == [type(l) for l in model.layers]
    assert clone.layers[0].get_config()["units"] == 8
    assert not np.array_equal(clone.weights[0].numpy(), model.weights[0].numpy())
    assert json.loads(clone.to_json())["config"]["layers"][1]["config"]["units"] == 8


# ---- weights only ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["w.weights.h5", "w.h5", "m.keras"])
def test_save_and_load_weights_report(tmp_path, name):
    model = every_layer_model()
    path = tmp_path / name
    model.save(path) if name.endswith(".keras") else model.save_weights(path)
    other = every_layer_model(train=False)
    report = other.load_weights(path)
    assert isinstance(report, saving.LoadReport) and not report.skipped
    assert len(report.loaded) == len(model.weights)
    np.testing.assert_allclose(predict(other), predict(model), rtol=1e-6)


def test_load_weights_mismatch_is_all_or_nothing_and_skip_mismatch_reports(tmp_path):
    model = every_layer_model(compiled=False)
    model.save_weights(tmp_path / "w.weights.h5")
    different = keras.Sequential([layers.Dense(8, input_shape=(6,)), layers.Dense(5)])
    before = [w.numpy().copy() for w in different.weights]
    with pytest.raises(SavingError, match="expected shape|expected 0 variable|missing"):
        different.load_weights(tmp_path / "w.weights.h5")
    for w, b in zip(different.weights, before):
        np.testing.assert_array_equal(w.numpy(), b)  # nothing was assigned
    report = different.load_weights(tmp_path / "w.weights.h5", skip_mismatch=True)
    assert report.loaded == ["dense/kernel", "dense/bias"] or len(report.loaded) == 2
    assert report.skipped and "dense_1" in str(report)
    assert "expected shape (8, 5)" in str(report)
    np.testing.assert_array_equal(different.weights[0].numpy(), model.weights[0].numpy())


def test_legacy_weights_skip_mismatch_matches_by_name(tmp_path):
    a = keras.Sequential([layers.Dense(4, input_shape=(3,), name="x1"),
                          layers.Dense(2, name="x2")])
    a.save_weights(tmp_path / "w.h5")
    b = keras.Sequential([layers.Dense(4, input_shape=(3,), name="x1"),
                          layers.Dense(4, name="x3"), layers.Dense(2, name="x2")])
    with pytest.raises(SavingError, match="2 layer.*3|3 layer.*2"):
        b.load_weights(tmp_path / "w.h5")
    report = b.load_weights(tmp_path / "w.h5", skip_mismatch=True)
    assert any("x3" in what for what, _ in report.skipped)
    np.testing.assert_array_equal(b.get_layer("x1").kernel.numpy(), a.layers[0].kernel.numpy())


def test_save_errors(tmp_path):
    model = every_layer_model(compiled=False)
    with pytest.raises(ValueError, match=r"\.keras"):
        model.save(tmp_path / "model.pkl")
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        model.save_weights(tmp_path / "w.npz")
    model.save(tmp_path / "m.keras")
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "m.keras", overwrite=False)
    with pytest.raises(ValueError, match="not built"):
        keras.Sequential([layers.Dense(2)]).save_weights(tmp_path / "x.weights.h5")
    model.save_weights(tmp_path / "only.weights.h5")
    with pytest.raises(SavingError, match="load_weights"):
        keras.models.load_model(tmp_path / "only.weights.h5")
    with pytest.raises(FileNotFoundError):
        keras.models.load_model(tmp_path / "absent.keras")


# ---- safe loading --------------------------------------------------------------------------
class Scale(layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return inputs * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def _custom_model():
    return keras.Sequential([layers.Dense(3, input_shape=(6,)), Scale(3.0)])


def test_custom_classes_need_custom_objects_or_registration(tmp_path):
    model = _custom_model()
    model.save(tmp_path / "c.keras")
    with pytest.raises(SavingError, match="unknown layer class 'Scale'.*custom_objects"):
        keras.models.load_model(tmp_path / "c.keras")
    loaded = keras.models.load_model(tmp_path / "c.keras", custom_objects={"Scale": Scale})
    np.testing.assert_allclose(predict(loaded), predict(model), rtol=1e-6)
    registered = saving.register_keras_serializable(package="tests")(Scale)
    try:
        loaded = keras.models.load_model(tmp_path / "c.keras")
        assert isinstance(loaded.layers[1], registered)
    finally:
        saving.get_custom_objects().pop("Scale")
        saving.get_custom_objects().pop("tests>Scale")


def _config_file(tmp_path, config, name="cfg.keras"):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
    return path


def _sequential_config(*layer_entries, **extra):
    return {"class_name": "Sequential", **extra, "config": {
        "name": "s", "layers": [{"class_name": "InputLayer",
                                 "config": {"batch_shape": [None, 4], "name": "in"}},
                                *layer_entries]}}


LAMBDA = {"class_name": "Lambda", "config": {
    "name": "lambda", "function": {"class_name": "__lambda__", "config": {
        "code": "4wEAAAAAAAAAAAAAAAEAAAACAAAAQwAAAHMEAAAAfABTAKkBTqkAKQHaAXhyAgAAAHICAAAA",
        "defaults": None, "closure": None}}}}


@pytest.mark.parametrize("safe_mode", [True, False])
def test_lambda_is_refused_whatever_the_file_says(tmp_path, safe_mode):
    config = _sequential_config(LAMBDA, safe_mode=False, custom_objects={"Lambda": "x"})
    config["config"]["safe_mode"] = False
    path = _config_file(tmp_path, config)
    with pytest.raises(SavingError, match="Lambda"):
        keras.models.load_model(path, safe_mode=safe_mode)


@pytest.mark.parametrize("safe_mode", [True, False])
def test_lambda_activation_bytecode_is_never_run(tmp_path, safe_mode):
    dense = {"class_name": "Dense", "config": {
        "units": 2, "activation": LAMBDA["config"]["function"]}}
    path = _config_file(tmp_path, _sequential_config(dense))
    with pytest.raises(SavingError, match="lambda.*never runs code|lambda.*safe mode"):
        keras.models.load_model(path, safe_mode=safe_mode)


def test_classes_named_by_a_file_are_never_imported(tmp_path):
    entry = {"module": "os", "class_name": "system", "registered_name": "system",
             "config": {"command": "touch pwned"}}
    path = _config_file(tmp_path, _sequential_config(entry))
    with pytest.raises(SavingError, match="unknown layer class 'system'"):
        keras.models.load_model(path)
    assert not os.path.exists("pwned")
    weird = {"class_name": "Dense", "config": {"units": 2, "kernel_initializer": {
        "module": "builtins", "class_name": "eval", "config": {"source": "1+1"}}}}
    with pytest.raises(SavingError, match="eval"):
        keras.models.load_model(_config_file(tmp_path, _sequential_config(weird), "b.keras"))


def test_legacy_config_keys_are_translated():
    config = {"class_name": "Sequential", "config": {"name": "old", "layers": [
        {"class_name": "Dense", "config": {
            "name": "d", "units": 3, "input_dim": 4, "activation": "relu",
            "dtype": {"module": "keras", "class_name": "DTypePolicy",
                      "config": {"name": "float32"}, "registered_name": None},
            "kernel_initializer": {"class_name": "VarianceScaling", "config": {
                "scale": 1.0, "mode": "fan_avg", "distribution": "normal", "seed": None,
                "dtype": "float32"}}}},
        {"class_name": "LeakyReLU", "config": {"name": "l", "alpha": 0.1}},
        {"class_name": "BatchNormalization", "config": {
            "name": "b", "axis": [1], "fused": True, "renorm": False,
            "dtype": {"class_name": "Policy", "config": {"name": "mixed_float16"}}}},
    ]}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # translated silently, no deprecation warnings
        model = keras.models.model_from_json(json.dumps(config))
    assert model.layers[1].negative_slope == pytest.approx(0.1)
    assert model.layers[0].kernel.shape == (4, 3)
    assert model.layers[0].kernel_initializer.distribution == "truncated_normal"
    assert model.layers[2].dtype == "float32"
    bad = json.loads(json.dumps(config))
    bad["config"]["layers"][2]["config"]["renorm"] = True
    with pytest.raises(SavingError, match="renorm=True is not supported"):
        keras.models.model_from_json(json.dumps(bad))


# ---- bounds and hostile files ------------------------------------------------------------
def test_absurd_shapes_in_config_are_refused_before_allocation(tmp_path):
    dense = {"class_name": "Dense", "config": {"name": "huge", "units": 10**9}}
    path = _config_file(tmp_path, _sequential_config(dense))
    with pytest.raises(SavingError, match="refusing to create layer 'huge'"):
        keras.models.load_model(path)
    wide = _sequential_config()
    wide["config"]["layers"][0]["config"]["batch_shape"] = [None, 10**6, 10**6]
    with pytest.raises(SavingError, match="elements, more than the limit"):
        keras.models.load_model(_config_file(tmp_path, wide, "wide.keras"))


def _keras_file_with_weights(tmp_path, edit, name="w.keras"):
    """A small valid .keras file whose weights h5 is changed by `edit(h5file, tmp_path)`."""
    model = keras.Sequential([layers.Dense(3, input_shape=(4,))])
    model.save(tmp_path / "base.keras")
    with zipfile.ZipFile(tmp_path / "base.keras") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    weights = tmp_path / "inner.h5"
    weights.write_bytes(members["model.weights.h5"])
    with h5py.File(weights, "a") as f:
        edit(f, tmp_path)
    members["model.weights.h5"] = weights.read_bytes()
    with zipfile.ZipFile(tmp_path / name, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    return tmp_path / name


def _external_link(f, tmp_path):
    with h5py.File(tmp_path / "elsewhere.h5", "w") as other:
        other["kernel"] = np.ones((4, 3), "float32")
    del f["layers/dense/vars/0"]
    f["layers/dense/vars/0"] = h5py.ExternalLink(str(tmp_path / "elsewhere.h5"), "/kernel")


def _soft_link(f, tmp_path):
    f["layers/dense/kernel_copy"] = f["layers/dense/vars/0"][()]
    del f["layers/dense/vars/0"]
    f["layers/dense/vars/0"] = h5py.SoftLink("/layers/dense/kernel_copy")


def _virtual(f, tmp_path):
    with h5py.File(tmp_path / "source.h5", "w") as other:
        other["kernel"] = np.ones((4, 3), "float32")
    layout = h5py.VirtualLayout(shape=(4, 3), dtype="float32")
    layout[:] = h5py.VirtualSource(str(tmp_path / "source.h5"), "kernel", shape=(4, 3))
    del f["layers/dense/vars/0"]
    f["layers/dense/vars"].create_virtual_dataset("0", layout)


def _external_storage(f, tmp_path):
    (tmp_path / "raw.bin").write_bytes(np.ones((4, 3), "float32").tobytes())
    del f["layers/dense/vars/0"]
    f["layers/dense/vars"].create_dataset("0", shape=(4, 3), dtype="float32",
                                          external=[(str(tmp_path / "raw.bin"), 0, 48)])


def _huge_dataset(f, tmp_path):
    del f["layers/dense/vars/1"]
    f["layers/dense/vars"].create_dataset("1", shape=(2**40,), dtype="float32",
                                          chunks=(1024,))


def _object_dtype(f, tmp_path):
    del f["layers/dense/vars/1"]
    f["layers/dense/vars"].create_dataset("1", data=["a", "b", "c"],
                                          dtype=h5py.string_dtype())


@pytest.mark.parametrize("edit, message", [
    (_external_link, "external link"), (_soft_link, "soft"), (_virtual, "virtual"),
    (_external_storage, "external raw files"), (_huge_dataset, "1099511627776"),
    (_object_dtype, "numeric"),
], ids=["external_link", "soft_link", "virtual", "external_storage", "huge", "object"])
def test_hostile_hdf5_constructs_are_refused(tmp_path, edit, message):
    path = _keras_file_with_weights(tmp_path, edit)
    with pytest.raises(SavingError, match=message):
        keras.models.load_model(path)
    fresh = keras.Sequential([layers.Dense(3, input_shape=(4,))])
    with pytest.raises(SavingError, match=message):
        fresh.load_weights(path)


def test_huge_legacy_dataset_is_refused_before_reading(tmp_path):
    model = keras.Sequential([layers.Dense(3, input_shape=(4,), name="dense")])
    model.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        group = f["model_weights/dense"]
        del group["dense/kernel"]
        group.create_dataset("dense/kernel", shape=(2**20, 2**20), dtype="float32",
                             chunks=(64, 64))
    with pytest.raises(SavingError, match="expected shape"):
        keras.models.load_model(tmp_path / "m.h5")


def test_zip_bombs_are_stopped(tmp_path, monkeypatch):
    model = keras.Sequential([layers.Dense(3, input_shape=(4,))])
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", members["config.json"])
        zf.writestr("metadata.json", b" " * (8 * 2**20))  # 8 MB of spaces, ~8 KB stored
        zf.writestr("model.weights.h5", members["model.weights.h5"])
    monkeypatch.setattr(saving.limits, "max_json_bytes", 2**20)
    with pytest.raises(SavingError, match="declares 8,388,608 bytes"):
        keras.models.load_model(bomb)
    # A member whose header understates its size: streaming stops at the declared size.
    data = bytearray(bomb.read_bytes())
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # patch the sizes of metadata.json
        start = 0
        while (i := data.find(sig, start)) != -1:
            name_at = i + (30 if sig == b"PK\x03\x04" else 46)
            size_at = i + (22 if sig == b"PK\x03\x04" else 24)
            if data[name_at:name_at + 13] == b"metadata.json":
                data[size_at:size_at + 4] = (1000).to_bytes(4, "little")
            start = i + 4
    bomb.write_bytes(bytes(data))
    with pytest.raises(SavingError, match="metadata.json|zip"):
        keras.models.load_model(bomb)


@pytest.mark.parametrize("content", [b"", b"garbage" * 10, b"PK\x03\x04" + b"\0" * 50,
                                     b"\x89HDF\r\n\x1a\n" + b"\0" * 200])
def test_corrupt_files_raise_saving_error(tmp_path, content):
    path = tmp_path / "bad.keras"
    path.write_bytes(content)
    with pytest.raises(SavingError):
        keras.models.load_model(path)


def test_truncated_files_raise_saving_error(tmp_path):
    model = every_layer_model()
    for ext in (".keras", ".h5"):
        model.save(tmp_path / f"m{ext}")
        data = (tmp_path / f"m{ext}").read_bytes()
        for cut in (len(data) // 3, len(data) // 2, len(data) - 10):
            (tmp_path / f"t{ext}").write_bytes(data[:cut])
            with pytest.raises(SavingError):
                keras.models.load_model(tmp_path / f"t{ext}")


# ---- atomic saving -------------------------------------------------------------------------
@pytest.mark.parametrize("ext", [".keras", ".h5", ".weights.h5"])
def test_interrupted_save_keeps_the_previous_file_and_leaves_no_temporary(
        tmp_path, monkeypatch, ext):
    model = every_layer_model()
    path = tmp_path / f"m{ext}"
    save = model.save_weights if ext == ".weights.h5" else model.save
    save(path)
    before = path.read_bytes()
    from glassnet.saving import weights as weights_mod

    def explode(*args, **kwargs):
        raise RuntimeError("disk full (injected)")
    target = "write_keras_weights" if ext != ".h5" else "write_legacy_weights"
    original = getattr(weights_mod, target)

    def partial(f, *args, **kwargs):
        f.create_group("half_written")
        explode()
    monkeypatch.setattr(weights_mod, target, partial)
    with pytest.raises(RuntimeError, match="injected"):
        save(path)
    monkeypatch.setattr(weights_mod, target, original)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == [path.name]
    if ext != ".weights.h5":
        np.testing.assert_allclose(predict(keras.models.load_model(path)), predict(model))


def test_killed_save_never_destroys_the_file_and_stale_temporaries_are_cleaned(tmp_path):
    model = every_layer_model()
    path = tmp_path / "m.keras"
    model.save(path)
    before = path.read_bytes()
    code = f"""
import os, signal, sys
sys.path.insert(0, {os.path.dirname(os.path.dirname(keras.__file__))!r})
import glassnet as keras
from glassnet import layers
from glassnet.saving import api
model = keras.Sequential([layers.Dense(3, input_shape=(4,))])
def die(model, tmp, include_optimizer):
    with open(tmp, "wb") as f:
        f.write(b"PK half a file")
    os.kill(os.getpid(), signal.SIGKILL)
api._write_keras = die
model.save({str(path)!r})
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert result.returncode != 0
    assert path.read_bytes() == before
    leftovers = [n for n in os.listdir(tmp_path) if n != path.name]
    assert len(leftovers) == 1 and leftovers[0].endswith(".glassnet-tmp")
    model.save(path)  # the next save removes the dead process's temporary file
    assert os.listdir(tmp_path) == [path.name]


def test_corrupt_global_heap_that_would_hang_libhdf5_is_refused(tmp_path):
    """Regression (found by the fuzz test): a zero-size free-space record in an HDF5
    global heap makes libhdf5 loop forever while reading a string attribute."""
    import faulthandler
    model = keras.Sequential([layers.Dense(3, input_shape=(4,))])
    model.save(tmp_path / "m.h5")
    data = bytearray((tmp_path / "m.h5").read_bytes())
    start = data.find(b"GCOL")
    p, end = start + 16, start + int.from_bytes(data[start + 8:start + 16], "little")
    while int.from_bytes(data[p:p + 2], "little") != 0:  # walk to the free-space record
        size = int.from_bytes(data[p + 8:p + 16], "little")
        p += 16 + -(-size // 8) * 8
        assert p < end
    data[p + 8:p + 16] = bytes(8)
    (tmp_path / "hang.h5").write_bytes(bytes(data))
    faulthandler.dump_traceback_later(60, exit=True)  # a regression hangs: fail loudly
    try:
        with pytest.raises(SavingError, match="global heap"):
            keras.models.load_model(tmp_path / "hang.h5")
    finally:
        faulthandler.cancel_dump_traceback_later()


def _cube(x):
    return x * x * x


def _my_loss(y_true, y_pred):
    return keras.losses.mean_squared_error(y_true, y_pred)


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_loss_objects_and_custom_functions_round_trip(tmp_path, ext):
    model = keras.Sequential([layers.Dense(3, activation=_cube, input_shape=(6,))])
    model.compile(optimizer="sgd", loss=keras.losses.Huber(delta=0.5),
                  metrics=[keras.metrics.MeanAbsoluteError()])
    model.save(tmp_path / f"a{ext}")
    with pytest.raises(SavingError, match="_cube"):
        keras.models.load_model(tmp_path / f"a{ext}")
    loaded = keras.models.load_model(tmp_path / f"a{ext}", custom_objects={"_cube": _cube})
    assert loaded.layers[0].activation is _cube
    assert isinstance(loaded.loss, keras.losses.Huber) and loaded.loss.get_config()[
        "delta"] == 0.5
    np.testing.assert_allclose(predict(loaded), predict(model), rtol=1e-6)
    model.compile(optimizer="sgd", loss=_my_loss)
    model.save(tmp_path / f"b{ext}")
    loaded = keras.models.load_model(tmp_path / f"b{ext}",
                                     custom_objects={"_cube": _cube, "_my_loss": _my_loss})
    assert loaded.loss is _my_loss


class TwoLayer(keras.Model):
    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = layers.Dense(units, activation="relu")
        self.head = layers.Dense(2)

    def call(self, x, training=False):
        return self.head(self.hidden(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_subclassed_model_round_trips_with_custom_objects(tmp_path, ext):
    model = TwoLayer(5)
    model.build((None, 6))
    model.save(tmp_path / f"s{ext}")
    if ext == ".keras":  # Keras 3 names groups by attribute for subclassed models
        with zipfile.ZipFile(tmp_path / "s.keras") as zf:
            (tmp_path / "w.h5").write_bytes(zf.read("model.weights.h5"))
        with h5py.File(tmp_path / "w.h5") as f:
            assert f["hidden/vars/0"].shape == (6, 5) and f["head/vars/1"].shape == (2,)
    with pytest.raises(SavingError, match="TwoLayer"):
        keras.models.load_model(tmp_path / f"s{ext}")
    loaded = keras.models.load_model(tmp_path / f"s{ext}",
                                     custom_objects={"TwoLayer": TwoLayer})
    assert isinstance(loaded, TwoLayer) and loaded.units == 5
    np.testing.assert_allclose(predict(loaded), predict(model), rtol=1e-6)
