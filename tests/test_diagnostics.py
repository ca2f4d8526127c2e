"""glassnet.diagnostics: each detector fires on a constructed pathological model and stays
quiet on a healthy one; the records hold hand-checkable numbers; Monitor costs nothing when
it is not used and samples exactly every N steps."""
import json
import math
import os
import pathlib
import subprocess
import sys
import warnings

import numpy as np
import pytest

from glassnet import initializers, optimizers
from glassnet.callbacks import LambdaCallback
from glassnet.diagnostics import (SATURATION_MARGIN, THRESHOLDS, DiagnosticWarning, Monitor,
                                  activation_stats, diagnose, jsonable)
from glassnet.layers import Activation, BatchNormalization, Dense, Dropout
from glassnet.models import Model, Sequential

SRC = pathlib.Path(__file__).resolve().parents[1] / "src"


def data(n=64, d=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype("float32")
    return x, (x[:, :1] > 0).astype("float32")


def mlp(depth, activation, width=32, init="glorot_uniform", bias="zeros", d=16,
        out="sigmoid", loss="binary_crossentropy", optimizer="sgd"):
    layers = [Dense(width, input_shape=(d,), activation=activation, kernel_initializer=init,
                    bias_initializer=bias)]
    layers += [Dense(width, activation=activation, kernel_initializer=init,
                     bias_initializer=bias) for _ in range(depth - 1)]
    model = Sequential(layers + [Dense(1, activation=out)])
    model.compile(optimizer, loss)
    return model


def quiet_diagnose(model, x, y=None, **kw):
    return diagnose(model, x, y, verbose=0, **kw)


def caught(fn, *args, **kwargs):
    """(result of fn, messages of the DiagnosticWarnings it emitted)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [str(w.message) for w in seen if issubclass(w.category, DiagnosticWarning)]


# ---- statistics ---------------------------------------------------------------------------
def test_activation_stats_follow_the_stated_thresholds():
    assert SATURATION_MARGIN == 0.02
    sig = np.array([[0.019, 0.5], [0.981, 0.97]], "float32")  # 0.019 and 0.981 saturated
    assert activation_stats(sig, "sigmoid", None)["saturated"] == 0.5
    tanh = np.array([[-0.99, 0.5], [0.979, 0.981]], "float32")
    assert activation_stats(tanh, "tanh", None)["saturated"] == 0.5
    relu = np.zeros((8, 4), "float32")
    relu[3, 1] = 2.0  # unit 1 fires once: alive; units 0, 2, 3 never fire: dead
    stats = activation_stats(relu, "relu", 10)
    assert stats["dead"] == 0.75 and stats["saturated"] is None
    assert sum(stats["hist"][0]) == relu.size and len(stats["hist"][1]) == 11
    assert activation_stats(relu[:4], "relu", None)["dead"] is None  # too few samples
    assert activation_stats(np.array([[np.nan, 1.0]]), None, 5)["nonfinite"]
    huge = activation_stats(np.array([[-3e38, 3e38], [1, 2]], "float32"), None, 5)
    assert sum(huge["hist"][0]) == 4 and not huge["nonfinite"]  # a diverging run
    same = activation_stats(np.full((2, 3), 1e30, "float32"), None, 30)
    assert sum(same["hist"][0]) == 6


def test_record_holds_hand_checkable_pre_activations_and_gradients():
    x, y = data(32, 4)
    model = Sequential([Dense(3, input_shape=(4,), activation="relu"), Dense(1)])
    model.compile("sgd", "mse")
    report = quiet_diagnose(model, x, y)
    first, last = model.layers
    rec = report.records[0]["layers"]
    z = x.astype("float64") @ first.kernel.data + first.bias.data
    assert rec[first.name]["pre_mean"] == pytest.approx(z.mean(), abs=1e-5 * z.std())
    assert rec[first.name]["pre_std"] == pytest.approx(z.std(), rel=1e-4)
    h = np.maximum(z, 0)
    assert rec[first.name]["act_mean"] == pytest.approx(h.mean(), abs=1e-5 * h.std())
    # d/dW mean((h W + b - y)^2) = 2/N h^T (h W + b - y)
    err = h @ last.kernel.data + last.bias.data - y
    grad = 2 / len(x) * h.T @ err
    assert rec[last.name]["grad_norm"]["kernel"] == pytest.approx(np.linalg.norm(grad),
                                                                  rel=1e-4)
    assert all(w.grad is None for w in model.weights)


def test_update_ratio_is_the_step_over_the_weight_norm():
    x, y = data(16, 4)
    model = Sequential([Dense(1, input_shape=(4,), bias_initializer="ones")])
    model.compile(optimizers.SGD(learning_rate=0.1), "mse")
    w0, b0 = (np.array(v.data) for v in model.weights)
    monitor = Monitor(every=1, verbose=0)
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, callbacks=[monitor], verbose=0)
    rec = monitor.records[0]["layers"][model.layers[0].name]
    err = x @ w0 + b0 - y
    g_w = 2 / len(x) * x.T @ err
    assert rec["grad_norm"]["kernel"] == pytest.approx(np.linalg.norm(g_w), rel=1e-4)
    # SGD: ||dw|| / ||w|| = lr ||g|| / ||w||
    assert rec["update_ratio"]["kernel"] == pytest.approx(
        0.1 * np.linalg.norm(g_w) / np.linalg.norm(w0), rel=1e-4)


# ---- one detector each: pathological triggers it, healthy does not ------------------------
def test_std1_sigmoid_saturates_and_glorot_does_not():
    x, y = data()
    bad = mlp(5, "sigmoid", width=100, init=initializers.RandomNormal(stddev=1.0, seed=0))
    report, messages = caught(diagnose, bad, x, y)
    assert {"saturation", "init_scale"} <= report.codes
    assert any(m.startswith("[saturation]") and "Glorot" in m for m in messages)
    hidden = list(report.records[0]["layers"].values())[1:5]
    assert all(s["saturated"] > 0.5 for s in hidden)  # most within 0.02 of 0 or 1
    good = quiet_diagnose(mlp(5, "sigmoid", width=100), x, y)
    assert not {"saturation", "init_scale"} & good.codes


def test_deep_sigmoid_gradients_vanish_and_shallow_do_not():
    x, y = data()
    bad = quiet_diagnose(mlp(30, "sigmoid", width=16), x, y)
    finding = bad.by_code("vanishing_gradients")[0]
    assert finding.layer == next(iter(bad.records[0]["layers"]))  # the first layer
    assert finding.value < THRESHOLDS["vanishing_ratio"]
    assert "He" in finding.advice
    assert "vanishing_gradients" not in quiet_diagnose(mlp(3, "sigmoid"), x, y).codes


@pytest.mark.parametrize("every", [1, 50])
def test_huge_learning_rate_is_caught_with_first_layer_and_batch(every):
    x, y = data(128)
    y = 3 * x[:, :1] + 1

    def run(lr):
        model = mlp(2, "relu", init="he_normal", out=None, loss="mse",
                    optimizer=optimizers.SGD(learning_rate=lr))
        monitor, losses = Monitor(every=every, verbose=0), []
        log = LambdaCallback(on_train_batch_end=lambda b, logs: losses.append(logs["loss"]))
        with np.errstate(all="ignore"):
            model.fit(x, y, epochs=2, batch_size=16, shuffle=False,
                      callbacks=[monitor, log], verbose=0)
        return model, monitor.report, losses

    model, report, losses = run(1e3)
    nonfinite = report.by_code("nonfinite")
    assert len(nonfinite) == 1 and nonfinite[0].severity == "error"
    f = nonfinite[0]
    assert f.layer in [l.name for l in model.layers] and f.epoch == 0
    # the batch whose loss, or whose update, first went non-finite
    first_bad = next(i for i, v in enumerate(losses) if not math.isfinite(v))
    assert f.batch in (first_bad - 1, first_bad) and f.step == f.batch
    assert f"batch {f.batch}" in str(report) and f.layer in str(report)
    assert {"large_updates", "exploding_gradients"} & report.codes
    _, healthy, _ = run(1e-2)
    assert not {"nonfinite", "large_updates", "exploding_gradients"} & healthy.codes


def test_nan_in_one_batch_is_located_between_samples():
    x, y = data(128)
    x[3 * 16 + 5, 2] = np.nan  # batch 3 (shuffle=False); the Monitor samples step 0 only
    model = mlp(2, "relu", init="he_normal")
    monitor = Monitor(every=50, verbose=0)
    with np.errstate(all="ignore"):
        model.fit(x, y, epochs=1, batch_size=16, shuffle=False, callbacks=[monitor],
                  verbose=0)
    (f,) = monitor.report.by_code("nonfinite")
    assert (f.epoch, f.batch, f.step, f.layer) == (0, 3, 3, model.layers[0].name)
    assert "loss nan" in f.message and len(monitor.records) == 1


def test_negative_bias_kills_relus_and_zero_bias_does_not():
    x, y = data()
    bad = mlp(3, "relu", init="he_normal", bias=initializers.Constant(-10.0))
    monitor = Monitor(every=1)
    _, messages = caught(bad.fit, x, y, epochs=1, batch_size=32, callbacks=[monitor],
                         verbose=0)
    assert sum(m.startswith("[dead_units]") for m in messages) == 3  # each hidden layer
    dead = monitor.report.by_code("dead_units")
    assert dead[0].layer == bad.layers[0].name and dead[0].value == 1.0
    assert "LeakyReLU" in dead[0].advice
    healthy = Monitor(every=1, verbose=0)
    mlp(3, "relu", init="he_normal").fit(x, y, epochs=1, batch_size=32,
                                         callbacks=[healthy], verbose=0)
    assert "dead_units" not in healthy.report.codes


def test_deep_relu_with_glorot_gets_init_advice_and_he_does_not():
    x, y = data()
    bad = quiet_diagnose(mlp(8, "relu", init="glorot_uniform"), x)
    finding = bad.by_code("init_mismatch")[0]
    assert "GlorotUniform" in finding.message and "he_normal" in finding.advice
    assert not {"init_mismatch", "init_scale"} & quiet_diagnose(
        mlp(8, "relu", init="he_normal"), x).codes
    # a std-1 normal kernel is flagged anywhere, even in a one-hidden-layer net
    one = quiet_diagnose(mlp(1, "relu", init=initializers.RandomNormal(stddev=1.0)), x)
    assert one.has("init_scale")


def _bn_model(momentum):
    model = Sequential([Dense(16, input_shape=(16,)), BatchNormalization(momentum=momentum),
                        Activation("relu"), Dropout(0.2, seed=1),
                        Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    return model


def test_bn_statistics_after_few_updates_are_flagged():
    x, y = data()
    model, monitor = _bn_model(0.99), Monitor(every=2)
    _, messages = caught(model.fit, x, y, epochs=2, batch_size=16, callbacks=[monitor],
                         verbose=0)
    assert messages == [monitor.report.findings[0].text()]
    f = monitor.report.by_code("bn_unconverged")[0]
    assert f.value == 8 and f.threshold == 300  # 3 / (1 - 0.99)
    bn = monitor.records[-1]["layers"][model.layers[1].name]["bn"]
    assert bn["training"] and bn["num_updates"] == 6 and bn["mean_gap"] >= 0
    fast, quiet = _bn_model(0.5), Monitor(every=2, verbose=0)
    fast.fit(x, y, epochs=2, batch_size=16, callbacks=[quiet], verbose=0)
    assert "bn_unconverged" not in quiet.report.codes  # needs 6 updates, had 8


def test_batch_of_one_into_bn_is_reported_not_raised():
    x, y = data()
    model = _bn_model(0.5)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    bn = model.layers[1]
    report, messages = caught(diagnose, model, x[:1], y[:1])
    assert any(m.startswith("[bn_batch_of_one]") for m in messages)
    f = report.by_code("bn_batch_of_one")[0]
    assert f.severity == "error" and f.layer == bn.name and not report.ok
    assert "dead_units" not in report.codes  # one sample says nothing about dead units
    assert "bn_batch_of_one" not in quiet_diagnose(model, x, y).codes
    monitor = Monitor()
    with pytest.warns(DiagnosticWarning, match="bn_batch_of_one"), \
            pytest.raises(ValueError, match="per channel"):
        model.fit(x[:3], y[:3], batch_size=1, callbacks=[monitor], verbose=0)
    model.fit(x, y, batch_size=16, verbose=0)  # the wrappers left by the error are gone
    assert not any("call" in l.__dict__ for l in model.layers)
    assert "step" not in model.optimizer.__dict__


# ---- the model is left as it was; cost; sampling -------------------------------------------
def test_diagnose_leaves_the_model_unchanged():
    x, y = data()
    a, b = _bn_model(0.9), _bn_model(0.9)
    b.set_weights(a.get_weights())
    a.layers[3]._rng = np.random.default_rng(7)
    b.layers[3]._rng = np.random.default_rng(7)
    report = a.diagnose(x, y, verbose=0)
    assert report.records[0]["train_inference_gap"] > 0
    assert a.layers[1].num_updates == 0 and all(w.grad is None for w in a.weights)
    for m in (a, b):
        m.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_fit_without_monitor_runs_no_diagnostics_code(monkeypatch):
    code = ("import sys, numpy as np\n"
            "from glassnet.models import Sequential\nfrom glassnet.layers import Dense\n"
            "m = Sequential([Dense(4, input_shape=(3,), activation='relu'), Dense(1)])\n"
            "m.compile('sgd', 'mse')\n"
            "m.fit(np.ones((8, 3), 'float32'), np.ones((8, 1), 'float32'), verbose=0)\n"
            "print(sorted(k for k in sys.modules if 'diagnostics' in k))")
    env = {**os.environ, "PYTHONPATH": str(SRC), "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env).stdout
    assert out.strip() == "[]"
    from glassnet.diagnostics import activations, gradients

    def boom(*args, **kwargs):
        raise AssertionError("diagnostics code ran without a Monitor")
    monkeypatch.setattr(activations.Capture, "install", boom)
    monkeypatch.setattr(gradients.StepProbe, "install", boom)
    x, y = data()
    model = mlp(2, "relu")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert not any("call" in l.__dict__ for l in model.layers)


@pytest.mark.parametrize("every, expected", [(3, [0, 3, 6, 9, 12, 15, 18]), (50, [0])])
def test_monitor_samples_every_n_steps(every, expected):
    x, y = data(80)
    model = mlp(2, "relu", init="he_normal")
    monitor = Monitor(every=every, verbose=0)
    model.fit(x, y, epochs=2, batch_size=8, callbacks=[monitor], verbose=0)
    assert [r["step"] for r in monitor.records] == expected
    assert [(r["epoch"], r["batch"]) for r in monitor.records] == \
        [(s // 10, s % 10) for s in expected]
    assert monitor.steps_seen == 20
    assert not any("call" in l.__dict__ for l in model.layers)
    assert "step" not in model.optimizer.__dict__


def test_records_and_report_are_plottable_and_json_safe():
    x, y = data()
    model = mlp(2, "tanh")
    monitor = Monitor(every=2, histogram_bins=12, verbose=0)
    model.fit(x, y, epochs=1, batch_size=16, callbacks=[monitor], verbose=0)
    rec = monitor.records[0]
    assert set(rec) >= {"step", "epoch", "batch", "loss", "layers"}
    first = rec["layers"][model.layers[0].name]
    assert set(first) >= {"act_mean", "act_std", "hist", "saturated", "dead", "pre_mean",
                          "pre_std", "grad_norm", "update_ratio", "bn", "nonfinite"}
    counts, edges = first["hist"]
    assert sum(counts) == 16 * 32 and edges[0] == -1.0 and edges[-1] == 1.0
    assert set(first["grad_norm"]) == {"kernel", "bias"}
    text = json.dumps(monitor.report.to_dict(include_records=True), allow_nan=False)
    assert json.loads(text)["steps_sampled"] == 2
    assert json.dumps(jsonable({"a": math.nan, "b": np.float32(1)}), allow_nan=False)
    table = str(monitor.report)
    assert all(l.name in table for l in model.layers) and "act std" in table


def test_monitor_watches_chosen_layers_of_a_subclassed_model():
    class Net(Model):
        def __init__(self):
            super().__init__()
            self.hidden = Dense(8, activation="relu")
            self.out = Dense(1)

        def call(self, x, training=False):
            return self.out(self.hidden(x))

    x, y = data(32, 4)
    model = Net()
    model.compile("sgd", "mse")
    monitor = Monitor(every=1, layers=[model.hidden], verbose=0)
    model.fit(x, y, epochs=1, batch_size=16, callbacks=[monitor], verbose=0)
    assert list(monitor.records[0]["layers"]) == [model.hidden.name]
    assert monitor.records[0]["layers"][model.hidden.name]["grad_norm"]["kernel"] > 0
    with pytest.raises(ValueError, match="unknown layers"):
        model.fit(x, y, callbacks=[Monitor(layers=["nope"])], verbose=0)


def test_arguments_are_validated():
    with pytest.raises(ValueError, match="every"):
        Monitor(every=0)
    with pytest.raises(ValueError, match="Unknown diagnostics threshold"):
        Monitor(thresholds={"dead": 0.5})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # verbose=0 never warns
        x, y = data()
        quiet_diagnose(mlp(3, "relu", bias=initializers.Constant(-10.0)), x, y)


def test_functional_model_is_watched_in_graph_order():
    keras = pytest.importorskip("glassnet")
    pytest.importorskip("glassnet.models.functional")
    from glassnet.layers import Input
    inp = Input((16,))
    h = Dense(16, activation="relu", bias_initializer=initializers.Constant(-10.0))(inp)
    out = Dense(1)(BatchNormalization()(h))
    model = keras.Model(inp, out)
    model.compile("sgd", "mse")
    x, y = data()
    monitor = Monitor(every=2, verbose=0)
    model.fit(x, y, epochs=1, batch_size=16, callbacks=[monitor], verbose=0)
    names = [l.name for l in model.layers if l.weights]
    assert list(monitor.records[0]["layers"]) == names
    assert monitor.report.has("dead_units", names[0])
    assert quiet_diagnose(model, x, y).has("dead_units", names[0])
