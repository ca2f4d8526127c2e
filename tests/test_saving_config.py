"""get_config/from_config round trips for every registered object, through JSON.

Each registry is walked, so a newly added layer, initializer, regularizer, constraint,
activation, loss, metric, optimizer or schedule is checked without editing this file (a
new required constructor argument needs an example value in EXAMPLES).
"""
import inspect
import json
import warnings

import numpy as np
import pytest

import glassnet as keras
from glassnet import (activations, constraints, initializers, layers, losses, metrics,
                      optimizers, regularizers)
from glassnet.layers import base as layers_base
from glassnet.optimizers import schedules
from glassnet.saving import compile_config, deserialize, serialize

EXAMPLES = {  # values for required constructor arguments, by name
    "units": 3, "rate": 0.3, "stddev": 0.2, "target_shape": (2, 3), "activation": "tanh",
    "shape": (6,), "initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5,
    "first_decay_steps": 7, "boundaries": [5, 10], "values": [0.3, 0.2, 0.1],
    "max_learning_rate": 0.5, "total_steps": 100, "fn": losses.mean_squared_error,
}
CLASS_ARGS = {"InputLayer": {"shape": (6,)}}  # classes whose arguments are all optional
MULTI_INPUT = ("Add", "Average", "Concatenate", "Maximum", "Minimum", "Multiply",
               "Subtract")


def _builtins(registry, skip=()):
    seen, out = set(), []
    for cls in registry.values():
        if isinstance(cls, type) and cls.__module__.startswith("glassnet.") and \
                not cls.__name__.startswith("_") and cls.__name__ not in skip and \
                cls not in seen and not inspect.isabstract(cls):
            seen.add(cls)
            out.append(cls)
    return sorted(out, key=lambda c: c.__name__)


def _make(cls, **extra):
    kwargs = dict(extra)
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name in ("self", "args", "kwargs") or p.default is not inspect.Parameter.empty:
            continue
        if name not in EXAMPLES:
            pytest.fail(f"{cls.__name__}: add an example value for its required argument "
                        f"{name!r} to EXAMPLES in {__file__}.")
        kwargs.setdefault(name, EXAMPLES[name])
    return cls(**kwargs)


def _json(value):
    return json.loads(json.dumps(value))


LAYERS = _builtins(layers_base._REGISTRY, skip=("Sequential", "Functional", "Model"))


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_every_layer_config_round_trips_through_json(cls):
    layer = _make(cls, **CLASS_ARGS.get(cls.__name__, {}))
    config = _json(serialize.clean_config(layer.get_config(), cls.__name__))
    ctx = deserialize.Context(None, True, "test")
    entry = deserialize.translate_entry({"class_name": cls.__name__, "config": config},
                                        ctx, depth=0)
    clone = deserialize.construct(entry, ctx)
    assert type(clone) is cls
    assert _json(serialize.clean_config(clone.get_config(), "clone")) == config


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_every_layer_survives_save_and_load_in_a_model(cls, tmp_path):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(1).standard_normal((4, 6)).astype("float32")
    if cls.__name__ == "InputLayer":
        model = keras.Sequential([layers.InputLayer(shape=(6,)), layers.Dense(2)])
    elif cls.__name__ in MULTI_INPUT:
        inp = keras.Input((6,))
        a, b = layers.Dense(6)(inp), layers.Dense(6)(inp)
        model = keras.Model(inp, _make(cls)([a, b]))
    else:
        model = keras.Sequential([layers.Dense(6, input_shape=(6,)), _make(cls)])
    for w in model.weights:  # non-trivial values (BN statistics, PReLU alpha, ...)
        w.assign(np.random.default_rng(2).uniform(0.5, 1.5, w.shape))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ext in (".keras", ".h5"):
            model.save(tmp_path / f"m{ext}")
            # NOTE: after the save: always-on noise layers (MCDropout) draw from the
            # generator state the file holds, so the loaded model draws the same mask.
            expected = model.predict(x, verbose=0)
            loaded = keras.models.load_model(tmp_path / f"m{ext}")
            np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-6,
                                       err_msg=f"{cls.__name__} via {ext}")


def _nested_round_trip(module, obj, kind):
    spec = _json(module.serialize(obj))
    ctx = deserialize.Context(None, True, "test")
    translated = deserialize._nested(spec, module, kind, "test", ctx)
    clone = module.deserialize(translated)
    assert type(clone) is type(obj)
    assert _json(clone.get_config()) == _json(obj.get_config())


@pytest.mark.parametrize("cls", _builtins(initializers._REGISTRY), ids=lambda c: c.__name__)
def test_every_initializer_round_trips(cls):
    _nested_round_trip(initializers, _make(cls), "initializer")


@pytest.mark.parametrize("cls", _builtins(regularizers._REGISTRY), ids=lambda c: c.__name__)
def test_every_regularizer_round_trips(cls):
    _nested_round_trip(regularizers, _make(cls), "regularizer")


@pytest.mark.parametrize("cls", _builtins(constraints._REGISTRY), ids=lambda c: c.__name__)
def test_every_constraint_round_trips(cls):
    _nested_round_trip(constraints, _make(cls), "constraint")


@pytest.mark.parametrize("name", sorted(activations._REGISTRY))
def test_every_activation_round_trips_by_name(name):
    fn = activations.get(name)
    assert activations.get(_json(activations.serialize(fn))) is fn


@pytest.mark.parametrize("cls", _builtins(losses._CLASSES, skip=("Loss",)),
                         ids=lambda c: c.__name__)
def test_every_loss_round_trips(cls):
    loss = _make(cls)
    clone = losses.deserialize(_json(losses.serialize(loss)))
    assert type(clone) is cls
    assert _json(losses.serialize(clone)) == _json(losses.serialize(loss))


@pytest.mark.parametrize("cls", _builtins(metrics._REGISTRY, skip=("Metric",)),
                         ids=lambda c: c.__name__)
def test_every_metric_round_trips(cls):
    metric = _make(cls)
    clone = metrics.deserialize(_json(metrics.serialize(metric)))
    assert type(clone) is cls
    assert _json(metrics.serialize(clone)) == _json(metrics.serialize(metric))


@pytest.mark.parametrize("name", sorted(optimizers.base._REGISTRY))
def test_every_optimizer_round_trips(name):
    opt = optimizers.get(name)
    ctx = deserialize.Context(None, True, "test")
    clone = compile_config.optimizer_from_config(_json(optimizers.serialize(opt)), ctx)
    assert type(clone) is type(opt)
    assert {k: v for k, v in clone.get_config().items() if k != "name"} == \
        {k: v for k, v in opt.get_config().items() if k != "name"}


@pytest.mark.parametrize("cls", _builtins(schedules._REGISTRY), ids=lambda c: c.__name__)
def test_every_schedule_round_trips_inside_an_optimizer(cls):
    opt = optimizers.Adam(learning_rate=_make(cls))
    ctx = deserialize.Context(None, True, "test")
    clone = compile_config.optimizer_from_config(_json(optimizers.serialize(opt)), ctx)
    assert type(clone._schedule) is cls
    assert clone._schedule.get_config() == opt._schedule.get_config()
    opt.iterations = clone.iterations = 7
    assert clone.learning_rate == opt.learning_rate
