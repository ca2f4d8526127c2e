"""Functional API: symbolic graphs, multi-input models, shared layers, sub-graph reuse,
training, Keras 3 config round trips and the errors of malformed graphs."""
import contextlib
import io
import json
import os

import numpy as np
import pytest

import glassnet as keras
from glassnet import layers
from glassnet.autograd import gradcheck
from glassnet.layers import Dense, Input
from glassnet.models import Sequential, clone_model
from glassnet.models.functional import Functional


def real_keras():
    """Keras 3 as an oracle, on its NumPy backend (no TensorFlow here)."""
    os.environ.setdefault("KERAS_BACKEND", "numpy")
    return pytest.importorskip("keras")


def data(n=64, d=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype("float32")
    return x, (x @ rng.standard_normal((d, 1))).astype("float32")


def mlp(name_prefix="f"):
    inp = Input(shape=(4,), name=f"{name_prefix}_in")
    hidden = Dense(8, activation="relu", name=f"{name_prefix}_hidden")(inp)
    out = Dense(1, name=f"{name_prefix}_out")(hidden)
    return keras.Model(inp, out)


# ---- graph building -----------------------------------------------------------------------
def test_model_of_symbolic_tensors_is_functional_with_keras_views():
    model = mlp("a")
    assert isinstance(model, Functional) and isinstance(model, keras.Model)
    assert [l.name for l in model.layers] == ["a_in", "a_hidden", "a_out"]
    assert isinstance(model.layers[0], layers.InputLayer)
    assert model.input is model.inputs[0] and model.input.shape == (None, 4)
    assert model.output.shape == (None, 1) and model.outputs == [model.output]
    hidden = model.get_layer("a_hidden")
    assert hidden.input is model.input and hidden.output.shape == (None, 8)
    assert model.get_layer("a_out").input is hidden.output
    assert len(model.weights) == 4 and model.count_params() == 4 * 8 + 8 + 8 + 1
    assert model.predict(np.ones((3, 4), "float32"), verbose=0).shape == (3, 1)


def test_symbolic_call_records_one_node_per_call_and_no_math():
    inp = Input(shape=(3,))
    dense = Dense(2)
    a, b = dense(inp), dense(inp)
    assert a.shape == b.shape == (None, 2)
    assert [n.index for n in dense._inbound_nodes] == [0, 1]
    assert a._keras_history == (dense, 0, 0) and b._keras_history == (dense, 1, 0)
    assert dense.output is a  # Keras 3: the first call's output


def test_layer_order_and_weights_order_match_keras():
    a, b = Input((4,), name="x"), Input((3,), name="x2")
    d = Dense(5, name="d")
    h2 = d(Dense(4, name="p")(b))
    out = Dense(2, name="o")(layers.Concatenate(name="cat")([d(a), h2]))
    model = keras.Model([a, b], [out, d.output])
    # Keras 3 orders layers by depth from the outputs (deepest first): x2 is one deeper.
    assert [l.name for l in model.layers] == ["x2", "x", "p", "d", "cat", "o"]
    k = real_keras()
    ka, kb = k.Input((4,), name="x"), k.Input((3,), name="x2")
    kd = k.layers.Dense(5, name="d")
    kh2 = kd(k.layers.Dense(4, name="p")(kb))
    kh = kd(ka)
    kout = k.layers.Dense(2, name="o")(k.layers.Concatenate(name="cat")([kh, kh2]))
    kmodel = k.Model([ka, kb], [kout, kh])
    assert [l.name for l in kmodel.layers] == [l.name for l in model.layers]
    assert [w.shape for w in kmodel.get_weights()] == [w.shape for w in model.get_weights()]


def test_multi_input_model_trains_on_lists_and_dicts():
    rng = np.random.default_rng(1)
    wide_in, deep_in = Input((5,), name="wide"), Input((6,), name="deep")
    deep = Dense(8, activation="relu")(deep_in)
    out = Dense(1)(layers.Concatenate()([wide_in, deep]))
    model = keras.Model(inputs=[wide_in, deep_in], outputs=out)
    xw = rng.standard_normal((96, 5)).astype("float32")
    xd = rng.standard_normal((96, 6)).astype("float32")
    y = (xw[:, :1] - xd[:, 1:2]).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    first = model.evaluate([xw, xd], y, verbose=0)
    history = model.fit([xw, xd], y, epochs=15, batch_size=16, verbose=0,
                        validation_data=([xw, xd], y))
    assert history.history["loss"][-1] < 0.5 * first
    by_list = model.predict([xw, xd], verbose=0)
    np.testing.assert_allclose(model.predict({"wide": xw, "deep": xd}, verbose=0), by_list)
    assert by_list.shape == (96, 1) and by_list.dtype == np.float32
    with no_grad_ctx():  # direct calls take lists and dicts too
        np.testing.assert_allclose(model([xw, xd]).data, by_list, rtol=1e-6)
    model.train_on_batch([xw[:8], xd[:8]], y[:8])


def no_grad_ctx():
    return keras.no_grad()


def test_shared_layer_has_one_set_of_weights_and_gets_both_gradients():
    inp_a, inp_b = Input((3,)), Input((3,))
    shared = Dense(2, name="shared_dense")
    out = layers.Add()([shared(inp_a), shared(inp_b)])
    model = keras.Model([inp_a, inp_b], out)
    assert [l.name for l in model.layers].count("shared_dense") == 1
    assert len(model.weights) == 2
    xa, xb = np.ones((4, 3), "float32"), np.full((4, 3), 2.0, "float32")
    expected = xa @ shared.kernel.numpy() + xb @ shared.kernel.numpy() + 2 * shared.bias.numpy()
    np.testing.assert_allclose(model.predict([xa, xb], verbose=0), expected, rtol=1e-6)
    # d(sum out)/d kernel = sum over both calls: xa^T 1 + xb^T 1
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mae")
    before = shared.kernel.numpy().copy()
    model.train_on_batch([xa, xb], expected + 10.0)  # every residual negative: dL/dy = -1/8
    grad = -(xa.T @ np.ones((4, 2)) + xb.T @ np.ones((4, 2))) / 8
    np.testing.assert_allclose(shared.kernel.numpy(), before - 0.1 * grad, rtol=1e-5)


# ---- reuse of sub-graphs ------------------------------------------------------------------
def test_autoencoder_encoder_reuse_after_training():
    x, _ = data(128, 6)
    inp = Input((6,), name="pixels")
    code = Dense(3, activation="relu", name="encoder_out")(Dense(5, activation="relu")(inp))
    out = Dense(6, name="reconstruction")(Dense(5, activation="relu")(code))
    autoencoder = keras.Model(inp, out)
    autoencoder.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    autoencoder.fit(x, x, epochs=3, verbose=0)
    encoder = keras.Model(autoencoder.input, autoencoder.get_layer("encoder_out").output)
    assert [l.name for l in encoder.layers][-1] == "encoder_out" and len(encoder.layers) == 3
    codes = encoder.predict(x, verbose=0)
    w1, b1, w2, b2 = autoencoder.get_weights()[:4]
    manual = np.maximum(np.maximum(x @ w1 + b1, 0) @ w2 + b2, 0)
    np.testing.assert_allclose(codes, manual, rtol=1e-5, atol=1e-6)
    # The decoder alone: a graph that starts at an intermediate tensor gets its own Input.
    decoder = keras.Model(autoencoder.get_layer("encoder_out").output, autoencoder.output)
    assert isinstance(decoder.layers[0], layers.InputLayer) and decoder.input.shape == (None, 3)
    np.testing.assert_allclose(decoder.predict(codes, verbose=0),
                               autoencoder.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_nested_models_as_layers_share_weights_with_the_parts():
    x, _ = data(32, 6)
    enc_in = Input((6,))
    encoder = keras.Model(enc_in, Dense(2, activation="relu")(enc_in), name="encoder")
    dec_in = Input((2,))
    decoder = keras.Model(dec_in, Dense(6)(dec_in), name="decoder")
    ae_in = Input((6,))
    autoencoder = keras.Model(ae_in, decoder(encoder(ae_in)))
    assert [l.name for l in autoencoder.layers][1:] == ["encoder", "decoder"]
    assert len(autoencoder.weights) == 4
    np.testing.assert_allclose(autoencoder.predict(x, verbose=0),
                               decoder.predict(encoder.predict(x, verbose=0), verbose=0),
                               rtol=1e-6)
    autoencoder.compile(optimizer="adam", loss="mse")
    before = encoder.get_weights()[0].copy()
    autoencoder.fit(x, x, epochs=1, verbose=0)
    assert not np.array_equal(before, encoder.get_weights()[0])
    # A Sequential model nested in a functional one, and a functional one in a Sequential.
    seq = Sequential([Dense(4, activation="relu", input_shape=(6,)), Dense(2)])
    inp = Input((6,))
    combo = keras.Model(inp, Dense(1)(seq(inp)))
    assert combo.predict(x, verbose=0).shape == (32, 1)
    stacked = Sequential([encoder, decoder])
    np.testing.assert_allclose(stacked.predict(x, verbose=0),
                               autoencoder.predict(x, verbose=0), rtol=1e-6)


def test_sequential_exposes_its_graph_for_feature_extraction():
    x, _ = data(16, 4)
    model = Sequential([Input((4,)), Dense(5, activation="relu", name="seq_hidden"),
                        Dense(1)])
    features = keras.Model(model.inputs, model.get_layer("seq_hidden").output)
    w, b = model.layers[0].get_weights()
    np.testing.assert_allclose(features.predict(x, verbose=0), np.maximum(x @ w + b, 0),
                               rtol=1e-5, atol=1e-6)


def test_explicit_training_flag_in_graph_is_honoured():
    x, _ = data(64, 4)
    inp = Input((4,))
    bn = layers.BatchNormalization()
    out = Dense(1)(bn(inp, training=False))  # Chollet's fine-tuning recipe
    model = keras.Model(inp, out)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x + 5.0, x[:, :1], epochs=1, verbose=0)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), np.zeros(4, "float32"))
    np.testing.assert_array_equal(bn.moving_variance.numpy(), np.ones(4, "float32"))


def test_functional_matches_the_equivalent_sequential_step_for_step():
    x, y = data(64, 4)
    seq = Sequential([Input((4,)), Dense(8, activation="tanh"), Dense(1)])
    inp = Input((4,))
    func = keras.Model(inp, Dense(1)(Dense(8, activation="tanh")(inp)))
    func.set_weights(seq.get_weights())
    for m in (seq, func):
        m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mse")
        m.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    assert not np.allclose(seq.get_weights()[0], func.layers[1].kernel.numpy() * 0 + 1)
    for a, b in zip(seq.get_weights(), func.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_multi_output_predict_returns_list_and_dict():
    inp = Input((4,))
    h = Dense(3, name="mo_h")(inp)
    model = keras.Model(inp, [Dense(1, name="mo_a")(h), Dense(2, name="mo_b")(h)])
    a, b = model.predict(np.ones((40, 4), "float32"), batch_size=16, verbose=0)
    assert a.shape == (40, 1) and b.shape == (40, 2)
    named = keras.Model(inp, {"first": model.outputs[0], "second": model.outputs[1]})
    out = named.predict(np.ones((5, 4), "float32"), verbose=0)
    assert set(out) == {"first", "second"} and out["second"].shape == (5, 2)


def wide_and_deep_with_aux_output():
    """Géron ch. 10: two inputs, a main and an auxiliary output."""
    input_wide, input_deep = Input((5,), name="input_wide"), Input((6,), name="input_deep")
    hidden = Dense(30, activation="relu")(Dense(30, activation="relu")(input_deep))
    concat = layers.Concatenate()([input_wide, hidden])
    output = Dense(1, name="output")(concat)
    aux_output = Dense(1, name="aux_output")(hidden)
    return keras.Model(inputs=[input_wide, input_deep], outputs=[output, aux_output])


def test_multi_output_training_weights_the_losses_like_keras():
    rng = np.random.default_rng(4)
    xw = rng.standard_normal((128, 5)).astype("float32")
    xd = rng.standard_normal((128, 6)).astype("float32")
    y = (xw[:, :1] + np.sin(xd[:, :1])).astype("float32")
    model = wide_and_deep_with_aux_output()
    model.compile(loss=("mse", "mse"), loss_weights=(0.9, 0.1),
                  optimizer=keras.optimizers.Adam(0.01), metrics=[["mae"], ["mae"]])
    main, aux = (np.asarray(p) for p in model.predict([xw, xd], verbose=0))
    logs = model.evaluate([xw, xd], [y, y], return_dict=True, verbose=0)
    assert list(logs) == ["loss", "output_loss", "aux_output_loss", "output_mae",
                          "aux_output_mae"]
    mse_main, mse_aux = np.mean((main - y) ** 2), np.mean((aux - y) ** 2)
    np.testing.assert_allclose(logs["output_loss"], mse_main, rtol=1e-5)
    np.testing.assert_allclose(logs["aux_output_loss"], mse_aux, rtol=1e-5)
    np.testing.assert_allclose(logs["loss"], 0.9 * mse_main + 0.1 * mse_aux, rtol=1e-5)
    np.testing.assert_allclose(logs["output_mae"], np.mean(np.abs(main - y)), rtol=1e-5)
    history = model.fit((xw, xd), {"output": y, "aux_output": y}, epochs=20, batch_size=32,
                        verbose=0, validation_data=([xw, xd], [y, y]))
    assert history.history["val_output_loss"][-1] < 0.3 * mse_main
    # a zero loss weight leaves the auxiliary head untrained
    frozen_aux = wide_and_deep_with_aux_output()
    frozen_aux.compile(loss={"output": "mse", "aux_output": "mse"},
                       loss_weights={"output": 1.0, "aux_output": 0.0}, optimizer="sgd")
    before = frozen_aux.get_layer("aux_output").get_weights()
    frozen_aux.fit([xw, xd], [y, y], epochs=1, verbose=0)
    for got, want in zip(frozen_aux.get_layer("aux_output").get_weights(), before):
        np.testing.assert_array_equal(got, want)


def test_multi_output_compile_errors_name_the_outputs():
    model = wide_and_deep_with_aux_output()
    with pytest.raises(ValueError, match=r"3 entries for 2 outputs \['output', 'aux_output'\]"):
        model.compile(loss=["mse"] * 3, optimizer="sgd")
    with pytest.raises(ValueError, match=r"keys \['main'\] that are not output names"):
        model.compile(loss={"main": "mse"}, optimizer="sgd")
    model.compile(loss="mse", optimizer="sgd")
    with pytest.raises(ValueError, match=r"expects 2 targets \['output', 'aux_output'\]"):
        model.fit([np.ones((4, 5)), np.ones((4, 6))], np.ones((4, 1)), verbose=0)


# ---- summary and config ---------------------------------------------------------------------
def test_summary_lists_every_layer_with_its_output_shape():
    model = mlp("s")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        model.summary()
    text = out.getvalue()
    assert "s_in (InputLayer)" in text and "s_hidden (Dense)" in text
    assert "(None, 8)" in text and f"{model.count_params():,}" in text


def keras_like_graph(prefix):
    a, b = Input((4,), name=f"{prefix}_a"), Input((3,), name=f"{prefix}_b")
    shared = Dense(5, activation="relu", name=f"{prefix}_shared")
    inner_in = Input((5,))
    inner = keras.Model(inner_in, Dense(2, name=f"{prefix}_inner_d")(inner_in),
                        name=f"{prefix}_inner")
    merged = layers.Concatenate(name=f"{prefix}_cat")(
        [shared(a), shared(Dense(4, name=f"{prefix}_p")(b))])
    out = Dense(1, name=f"{prefix}_out")(merged)
    return keras.Model([a, b], [out, inner(shared.output)], name=f"{prefix}_model")


def test_config_round_trip_through_json_keeps_graph_and_predictions():
    model = keras_like_graph("rt")
    config = json.loads(json.dumps(model.get_config()))
    assert config["input_layers"] == [["rt_a", 0, 0], ["rt_b", 0, 0]]
    # Keras 3 numbers a nested functional model's calls from 1 in output_layers.
    assert config["output_layers"] == [["rt_out", 0, 0], ["rt_inner", 1, 0]]
    shared = next(l for l in config["layers"] if l["name"] == "rt_shared")
    histories = [n["args"][0]["config"]["keras_history"] for n in shared["inbound_nodes"]]
    assert histories == [["rt_a", 0, 0], ["rt_p", 0, 0]]
    cat = next(l for l in config["layers"] if l["name"] == "rt_cat")
    assert [t["config"]["keras_history"] for t in cat["inbound_nodes"][0]["args"][0]] == \
        [["rt_shared", 0, 0], ["rt_shared", 1, 0]]
    inner = next(l for l in config["layers"] if l["name"] == "rt_inner")
    assert inner["class_name"] == "Functional" and "input_layers" in inner["config"]
    rebuilt = keras.Model.from_config(config)
    assert isinstance(rebuilt, Functional)
    assert [l.name for l in rebuilt.layers] == [l.name for l in model.layers]
    rebuilt.set_weights(model.get_weights())
    x = [np.random.default_rng(0).standard_normal((5, 4)).astype("float32"),
         np.random.default_rng(1).standard_normal((5, 3)).astype("float32")]
    for got, want in zip(rebuilt.predict(x, verbose=0), model.predict(x, verbose=0)):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert json.loads(json.dumps(rebuilt.get_config())) == config


def test_keras2_legacy_node_format_is_read():
    config = {
        "name": "legacy", "layers": [
            {"class_name": "InputLayer", "name": "in1",
             "config": {"batch_input_shape": [None, 3], "dtype": "float32", "name": "in1"},
             "inbound_nodes": []},
            {"class_name": "Dense", "name": "d1",
             "config": {"name": "d1", "units": 2, "activation": "relu"},
             "inbound_nodes": [[["in1", 0, 0, {}]]]}],
        "input_layers": [["in1", 0, 0]], "output_layers": [["d1", 0, 0]]}
    model = keras.Model.from_config(config)
    assert [l.name for l in model.layers] == ["in1", "d1"]
    assert model.predict(np.ones((2, 3), "float32"), verbose=0).shape == (2, 2)


def test_config_matches_keras3_both_ways():
    k = real_keras()
    model = keras_like_graph("kx")
    kmodel = k.Model.from_config(json.loads(json.dumps(model.get_config())))
    kmodel.set_weights(model.get_weights())
    x = [np.random.default_rng(2).standard_normal((4, 4)).astype("float32"),
         np.random.default_rng(3).standard_normal((4, 3)).astype("float32")]
    for got, want in zip(kmodel.predict(x, verbose=0), model.predict(x, verbose=0)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    kconfig = json.loads(json.dumps(kmodel.get_config()))
    # NOTE: translating Keras-only layer keys (quantization_config, ...) is the saving
    # layer's job; here only the functional structure is under test.
    for spec in kconfig["layers"]:
        spec["config"].pop("quantization_config", None)
        for inner in spec["config"].get("layers", []):
            inner["config"].pop("quantization_config", None)
    back = keras.Model.from_config(kconfig)
    back.set_weights(kmodel.get_weights())
    for got, want in zip(back.predict(x, verbose=0), model.predict(x, verbose=0)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ---- errors ---------------------------------------------------------------------------------
def test_disconnected_graph_names_the_missing_input():
    a, b = Input((2,), name="first_input"), Input((2,), name="forgotten_input")
    out = layers.Add(name="sum")([Dense(2)(a), b])
    with pytest.raises(ValueError, match=r"disconnected.*'sum'.*'forgotten_input'.*"
                                         r"\['first_input'\]"):
        keras.Model(a, out)


def test_bad_inputs_and_calls_raise_clear_errors():
    with pytest.raises(TypeError, match="KerasTensors.*Received: ndarray"):
        keras.Model(np.ones((2, 2)), Input((2,)))
    model = mlp("e")
    with pytest.raises(ValueError, match=r"Input 'e_in'.*expected shape \(None, 4\), "
                                         r"received shape \(2, 5\)"):
        model.predict(np.ones((2, 5), "float32"), verbose=0)
    a, b = Input((2,), name="in_a"), Input((2,), name="in_b")
    two = keras.Model([a, b], layers.Add()([a, b]))
    with pytest.raises(ValueError, match=r"expects 2 input\(s\) \['in_a', 'in_b'\], "
                                         "received 3"):
        two([np.ones((1, 2))] * 3)
    with pytest.raises(ValueError, match=r"missing \['in_b'\]"):
        two.predict({"in_a": np.ones((1, 2))}, verbose=0)
    class Subclassed(keras.Model):
        def __init__(self):
            inp = Input((2,))
            super().__init__(inp, Dense(1)(inp))
    with pytest.raises(TypeError, match="functional-style subclassing.*not supported"):
        Subclassed()
    with pytest.raises(ValueError, match="same name"):
        i = Input((2,))
        keras.Model(i, Dense(1, name="twin")(Dense(2, name="twin")(i)))


# ---- merging layers -------------------------------------------------------------------------
@pytest.mark.parametrize("cls, kwargs, shapes, out_shape", [
    (layers.Concatenate, {}, [(2, 3), (2, 4)], (2, 7)),
    (layers.Concatenate, {"axis": 1}, [(2, 3, 2), (2, 1, 2)], (2, 4, 2)),
    (layers.Add, {}, [(2, 3), (2, 3), (2, 3)], (2, 3)),
    (layers.Subtract, {}, [(2, 3), (2, 3)], (2, 3)),
    (layers.Multiply, {}, [(2, 3), (2, 3)], (2, 3)),
    (layers.Average, {}, [(2, 3), (2, 3)], (2, 3)),
    (layers.Maximum, {}, [(2, 3), (2, 3)], (2, 3)),
    (layers.Minimum, {}, [(2, 3), (2, 3)], (2, 3)),
])
def test_merging_layers_shapes_config_and_gradients(cls, kwargs, shapes, out_shape):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s) for s in shapes]
    layer = cls(**kwargs)
    y = layer([x.astype("float32") for x in xs])
    assert y.shape == out_shape and y.dtype == np.float32
    assert layer.compute_output_shape([(None,) + s[1:] for s in shapes]) == \
        (None,) + out_shape[1:]
    assert cls.from_config(layer.get_config()).get_config() == layer.get_config()
    layer64 = cls(dtype="float64", **kwargs)
    assert gradcheck(lambda *ts: layer64.call(list(ts)), *xs)


def test_merging_layers_reject_bad_inputs():
    with pytest.raises(ValueError, match=r"same shape.*\(2, 3\).*\(2, 4\)"):
        layers.Add()([np.ones((2, 3)), np.ones((2, 4))])
    with pytest.raises(ValueError, match="at least 2 inputs"):
        layers.Concatenate()([np.ones((2, 3))])
