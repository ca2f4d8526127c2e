"""Model → Keras 3 JSON: the config and compile config that real Keras reads back.

Keras 3 writes every object as `{"module", "class_name", "config", "registered_name"}`;
layers also carry a `build_config`. A glassnet Sequential becomes Keras' layout (an
InputLayer first instead of `batch_input_shape` on the first layer, which Keras 3 rejects);
a functional model keeps its own `get_config()` graph, with each layer entry rewritten the
same way.
"""
from __future__ import annotations

import numpy as np

from .. import losses, metrics, optimizers
from ..layers.base import Layer
from ..layers.input_layer import InputLayer
from .guard import SavingError


def is_sequential(layer) -> bool:
    from ..models.sequential import Sequential
    return isinstance(layer, Sequential)


def is_functional(layer) -> bool:
    return type(layer).__name__ == "Functional" or any(
        k.__name__ == "Functional" for k in type(layer).__mro__)


def is_builtin(cls) -> bool:
    return cls.__module__.startswith("glassnet.")


def layer_entry(layer: Layer) -> dict:
    """Keras 3 `serialize_keras_object(layer)` for a layer or a model."""
    cls = type(layer)
    name = cls.__name__
    if is_sequential(layer) and (is_builtin(cls) or _inherits_config(cls, "Sequential")):
        config, module = sequential_config(layer), "keras"
    elif is_functional(layer) and (is_builtin(cls) or _inherits_config(cls, "Functional")):
        config, module = functional_config(layer), "keras.src.models.functional"
    else:
        config = clean_config(layer.get_config(), f"layer {layer.name!r} ({name})")
        config.pop("batch_input_shape", None)  # Keras 3 layers reject it; the model's
        module = "keras.layers"                # InputLayer carries the shape instead
    registered = None
    if name == "Functional":
        registered = "Functional"
    elif not is_builtin(cls):
        module, registered = cls.__module__, name
    entry = {"module": module, "class_name": name, "config": config,
             "registered_name": registered}
    shape = getattr(layer, "_build_input_shape", None)
    if layer.built and shape is not None and not isinstance(layer, InputLayer):
        entry["build_config"] = {"input_shape": to_json(shape, "build input shape")}
    return entry


def _inherits_config(cls, base_name) -> bool:
    """True when a user subclass keeps the built-in get_config (so the layout is Keras')."""
    for klass in cls.__mro__:
        if "get_config" in klass.__dict__:
            return klass.__name__ == base_name and is_builtin(klass)
    return False


def sequential_config(model) -> dict:
    """Keras 3 Sequential config: InputLayer first (when the input shape is known)."""
    shape = getattr(model, "_input_batch_shape", None)
    entries = []
    if shape is not None:
        entries.append({
            "module": "keras.layers", "class_name": "InputLayer",
            "config": {"batch_shape": to_json(shape, "input shape"), "dtype": model.dtype,
                       "sparse": False, "ragged": False, "name": "input_layer"},
            "registered_name": None})
    entries += [layer_entry(layer) for layer in model.layers]
    return {"name": model.name, "trainable": model.trainable, "dtype": model.dtype,
            "layers": entries,
            "build_input_shape": None if shape is None else to_json(shape, "input shape")}


def functional_config(model) -> dict:
    """The functional graph config, each layer entry in Keras 3 form."""
    config = model.get_config()
    by_name = {layer.name: layer for layer in model.layers}
    out = []
    for spec in config["layers"]:
        layer = by_name.get(spec.get("name"))
        entry = dict(spec) if layer is None else {**layer_entry(layer)}
        if isinstance(layer, InputLayer):
            entry["config"] = {"batch_shape": to_json(layer.batch_shape, "input shape"),
                               "dtype": layer.dtype, "sparse": False, "ragged": False,
                               "name": layer.name}
        entry["name"] = spec.get("name")
        entry["inbound_nodes"] = to_json(spec.get("inbound_nodes", []), "inbound nodes")
        out.append(entry)
    return {**clean_config({k: v for k, v in config.items() if k != "layers"},
                           f"model {model.name!r}"), "layers": out}


def clean_config(config: dict, what: str) -> dict:
    """A JSON-safe copy of a get_config() dict (objects become Keras dicts)."""
    if not isinstance(config, dict):
        raise SavingError(f"get_config() of {what} returned {type(config).__name__}, "
                          "expected a dict.")
    return {str(k): to_json(v, f"{what}, key {k!r}") for k, v in config.items()}


def to_json(value, what: str):
    """Convert tuples, NumPy values, dtypes, functions and configurable objects to JSON."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): to_json(v, what) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v, what) for v in value]
    if hasattr(value, "get_config") and not isinstance(value, type):
        cls = type(value)
        return {"module": _module_of(cls), "class_name": cls.__name__,
                "config": to_json(value.get_config(), what),
                "registered_name": None if is_builtin(cls) else cls.__name__}
    if callable(value) and getattr(value, "__name__", "<lambda>") != "<lambda>":
        name = value.__name__
        if is_builtin_function(value):
            return name
        return {"module": getattr(value, "__module__", None), "class_name": "function",
                "config": name, "registered_name": name}
    raise SavingError(f"Cannot save {what}: {value!r} ({type(value).__name__}) is not "
                      "JSON-serialisable and has no get_config(). Lambdas cannot be saved: "
                      "use a named function (and custom_objects when loading).")


def is_builtin_function(fn) -> bool:
    return getattr(fn, "__module__", "").startswith("glassnet.")


def _module_of(cls) -> str:
    mod = cls.__module__
    if not mod.startswith("glassnet."):
        return mod
    family = mod.split(".")[1]
    return {"initializers": "keras.initializers", "regularizers": "keras.regularizers",
            "constraints": "keras.constraints", "losses": "keras.losses",
            "metrics": "keras.metrics",
            "optimizers": "keras.optimizers"}.get(family, f"keras.{family}")


# ---- compile config ------------------------------------------------------------------------
def compile_config(model):
    """Keras 3 `compile_config` of a compiled model, or None."""
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        return None
    specs = list(getattr(model, "_metric_specs", []) or [])
    n_weighted = int(getattr(model, "_weighted_count", 0) or 0)
    plain, weighted = specs[:len(specs) - n_weighted], specs[len(specs) - n_weighted:]
    return {
        "optimizer": optimizers.serialize(model.optimizer),
        "loss": _loss_json(model.loss),
        "loss_weights": None,
        "metrics": _metrics_json(plain),
        "weighted_metrics": _metrics_json(weighted),
        "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False,
    }


def training_config(model):
    """Keras' legacy `.h5` training_config (the optimizer under `optimizer_config`)."""
    config = compile_config(model)
    if config is None:
        return None
    opt = config.pop("optimizer")
    config["optimizer_config"] = {"class_name": opt["class_name"], "config": opt["config"]}
    return config


def _loss_json(loss):
    if loss is None or isinstance(loss, str):
        return loss
    if isinstance(loss, losses.Loss):
        return to_json(losses.serialize(loss), "the loss")
    name = getattr(loss, "__name__", None)
    if name and is_builtin_function(loss):
        return name
    return to_json(loss, "the loss")


def _metrics_json(specs):
    out = []
    for spec in specs:
        if isinstance(spec, str):
            if spec.lower() != "loss":  # glassnet always reports the loss; Keras 3 rejects it
                out.append(spec)
        elif isinstance(spec, metrics.Metric):
            out.append(to_json(spec, "a metric"))
        else:
            out.append(to_json(spec, "a metric"))
    return out or None


__all__ = ["layer_entry", "compile_config", "training_config", "to_json", "clean_config"]
