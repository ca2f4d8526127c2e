"""Keras JSON (Keras 1–3 dialects) → a glassnet model, safely.

A file's config is only data: classes are looked up in glassnet's own registries, in
`custom_objects` and in classes registered with `register_keras_serializable` — never
imported from the `module` a file names, never unpickled, unmarshalled or evaluated. A
Lambda layer or lambda function (Python bytecode in the file) is refused with or without
`safe_mode` (accepted for Keras compatibility; glassnet never runs code from a file); named
functions and classes come from `custom_objects`. Nothing in a file can turn checks off.

Legacy dialects are translated, not rejected: `batch_input_shape`, `input_dim`, LeakyReLU's
`alpha`, dtype policies, `module`/`registered_name` wrappers, Keras 2 initializer configs,
the optimizer's `lr` and `decay`, list-form Sequential configs.
"""
from __future__ import annotations

import inspect

import numpy as np

from .. import constraints, initializers, regularizers
from ..layers import base as layers_base
from .guard import Budget, SavingError, check_batch_shape, limits

_CUSTOM_REGISTRY: dict = {}  # filled by register_keras_serializable (user code only)

_MODEL_CLASSES = ("Sequential", "Functional", "Model")
# Keras-only arguments that glassnet accepts silently at these values (anything else is
# an error naming the argument, rather than a silently different model).
_KERAS_DEFAULTS = {
    "sparse": (False, None), "ragged": (False, None), "optional": (False,),
    "quantization_config": (None,), "lora_rank": (None,), "lora_alpha": (None,),
    "renorm": (False,), "renorm_clipping": (None, {}), "renorm_momentum": (0.99,),
    "virtual_batch_size": (None,), "adjustment": (None,), "fused": (None, True, False),
    "trainable_weights_in_config": (None,),
}


class Context:
    """What one load may use: custom objects, safe mode, the file's name, a budget."""

    def __init__(self, custom_objects, safe_mode, what, budget=None):
        if custom_objects is not None and not isinstance(custom_objects, dict):
            raise TypeError("`custom_objects` must be a dict mapping names to classes or "
                            f"functions. Received: {type(custom_objects).__name__}")
        self.custom = dict(custom_objects or {})
        self.safe_mode = bool(safe_mode)
        self.what = what
        self.budget = budget or Budget(what)
        self.layers = 0
        self.resolved: dict = {}  # class name -> class, handed to the models' from_config

    def lookup(self, *names):
        for name in names:
            if isinstance(name, str):
                if name in self.custom:
                    return self.custom[name]
                if name in _CUSTOM_REGISTRY:
                    return _CUSTOM_REGISTRY[name]
        return None

    def objects(self) -> dict:
        return {**self.resolved, **self.custom}


# ---- public entry points -------------------------------------------------------------------
def model_from_config(config, ctx: Context):
    """Build (and, when the shape is known, build the weights of) a model from a config."""
    if isinstance(config, list):  # Keras <= 2.1: a Sequential config was a list of layers
        config = {"class_name": "Sequential", "config": {"layers": config}}
    entry = translate_entry(config, ctx, depth=0)
    with ctx.budget.active():
        layer = construct(entry, ctx)
        build = entry.get("build_config")
        if isinstance(build, dict) and build.get("input_shape") is not None \
                and not layer.built:
            layer.build(tuple(build["input_shape"]))
    return layer


def construct(entry, ctx: Context):
    """Instantiate a translated entry through the class's own from_config."""
    cls = class_of(entry, ctx)
    config = entry["config"]
    name = config.get("name") if isinstance(config, dict) else None
    try:
        params = inspect.signature(cls.from_config).parameters
        if "custom_objects" in params:
            return cls.from_config(config, custom_objects=ctx.objects())
        return cls.from_config(config)
    except SavingError:
        raise
    except Exception as exc:
        raise SavingError(f"{ctx.what}: cannot rebuild {entry['class_name']} {name!r} from "
                          f"its config: {type(exc).__name__}: {exc}") from None


def class_of(entry, ctx: Context):
    """The class named by an entry: custom objects, registered classes, glassnet's own."""
    name, registered = entry["class_name"], entry.get("registered_name")
    custom = ctx.lookup(name, registered)
    if custom is not None:
        if not isinstance(custom, type):
            raise SavingError(f"{ctx.what}: custom_objects[{name!r}] must be a class for a "
                              f"layer; received {custom!r}.")
        ctx.resolved[name] = custom
        return custom
    if name == "Lambda":
        raise SavingError(
            f"{ctx.what}: the model contains a Lambda layer. Its function is Python code "
            "stored in the file, and glassnet never runs code from a file (no pickle, "
            "marshal or eval), so Lambda layers cannot be loaded. Rebuild the model in code "
            "and use load_weights(), or pass a Lambda class in custom_objects.")
    if name == "Model" and isinstance(entry.get("config"), dict) \
            and "input_layers" in entry["config"]:
        name = "Functional"
    cls = layers_base._REGISTRY.get(name)
    if cls is None or not cls.__module__.startswith("glassnet."):
        known = sorted(k for k, v in layers_base._REGISTRY.items()
                       if v.__module__.startswith("glassnet.") and not k.startswith("_"))
        raise SavingError(
            f"{ctx.what}: unknown layer class {name!r}. glassnet does not import classes "
            f"named by a file. If it is your own class, pass custom_objects={{{name!r}: "
            f"{name}}} (or register it with glassnet.saving.register_keras_serializable). "
            f"Built-in layers: {', '.join(known)}.")
    return cls


# ---- translation ---------------------------------------------------------------------------
def translate_entry(entry, ctx: Context, depth: int) -> dict:
    """A checked, translated copy of `{"class_name", "config", ...}` (recursively)."""
    if depth > 32:
        raise SavingError(f"{ctx.what}: models are nested more than 32 levels deep.")
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        raise SavingError(f"{ctx.what}: a layer entry must be a dict with a string "
                          f"'class_name'; received {_short(entry)}.")
    ctx.layers += 1
    if ctx.layers > limits.max_layers:
        raise SavingError(f"{ctx.what}: more than {limits.max_layers:,} layers.")
    out = {k: entry[k] for k in ("class_name", "registered_name", "name", "inbound_nodes")
           if k in entry}
    if out.get("registered_name") is not None and not isinstance(out["registered_name"], str):
        out["registered_name"] = None
    cls = class_of(entry, ctx)
    if "inbound_nodes" in out:
        out["inbound_nodes"] = _check_nodes(cls, out["inbound_nodes"], entry, ctx)
    config = entry.get("config", {})
    if config is None:
        config = {}
    if isinstance(config, list) and entry["class_name"] == "Sequential":
        config = {"layers": config}
    if not isinstance(config, dict):
        raise SavingError(f"{ctx.what}: the config of {entry['class_name']} must be a dict; "
                          f"received {_short(config)}.")
    if cls.__name__ in _MODEL_CLASSES and cls.__module__.startswith("glassnet."):
        out["config"] = _translate_model(cls.__name__, config, ctx, depth)
    else:
        out["config"] = translate_layer_config(cls, entry["class_name"], config, ctx)
    build = entry.get("build_config")
    if isinstance(build, dict) and build.get("input_shape") is not None:
        shape = build["input_shape"]
        if isinstance(shape, list) and shape and not isinstance(shape[0], (list, dict)):
            out["build_config"] = {"input_shape": check_batch_shape(
                shape, f"{ctx.what}: build_config of {entry['class_name']}")}
    return out


def _check_nodes(cls, nodes, entry, ctx) -> list:
    """Functional call records: keyword arguments the layer's call() cannot take are
    dropped when they are Keras plumbing (training/mask flags), refused otherwise."""
    where = f"{ctx.what}: layer {entry.get('name')!r} ({entry['class_name']})"
    if not isinstance(nodes, list):
        raise SavingError(f"{where}: inbound_nodes must be a list.")
    params = inspect.signature(cls.call).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())

    def clean(kwargs):
        if not isinstance(kwargs, dict):
            raise SavingError(f"{where}: call keyword arguments must be a dict.")
        out = {}
        for key, value in kwargs.items():
            if takes_any or key in params or value is None:
                out[key] = value
            elif key not in ("training", "mask") or not isinstance(value, bool):
                raise SavingError(f"{where}: the layer is called with argument {key!r}, "
                                  f"which its call() does not accept.")
        return out

    checked = []
    for node in nodes:
        if isinstance(node, dict):
            checked.append({**node, "kwargs": clean(node.get("kwargs") or {})})
        elif isinstance(node, list):
            entries = []
            for item in node:
                if not isinstance(item, list) or len(item) < 3:
                    raise SavingError(f"{where}: malformed inbound node {_short(item)}.")
                entries.append(item[:3] + [clean(item[3])] if len(item) > 3 else item)
            checked.append(entries)
        else:
            raise SavingError(f"{where}: malformed inbound node {_short(node)}.")
    return checked


def _translate_model(kind, config, ctx, depth) -> dict:
    # NOTE: a model's dtype (policy) is dropped: its layers carry their own.
    out = {k: v for k, v in config.items() if k not in ("layers", "dtype")}
    layers = config.get("layers", [])
    if not isinstance(layers, list):
        raise SavingError(f"{ctx.what}: 'layers' of a {kind} config must be a list.")
    if len(layers) > limits.max_layers:
        raise SavingError(f"{ctx.what}: {len(layers):,} layers, more than the limit of "
                          f"{limits.max_layers:,}.")
    out["layers"] = [translate_entry(spec, ctx, depth + 1) for spec in layers]
    if out.get("build_input_shape") is not None:
        out["build_input_shape"] = check_batch_shape(
            out["build_input_shape"], f"{ctx.what}: build_input_shape")
        first = out["layers"][0]["config"] if out["layers"] else {}
        if kind == "Sequential" and any(first.get(k) is not None for k in (
                "batch_shape", "batch_input_shape", "input_shape", "input_dim", "shape")):
            # NOTE: the first layer defines the input (as in Keras); a second, possibly
            # different, shape would leave the model built for one and checking another.
            out.pop("build_input_shape")
    if "name" in out and not isinstance(out["name"], str):
        raise SavingError(f"{ctx.what}: model name must be a string.")
    if kind != "Sequential" and ("input_layers" not in out or "output_layers" not in out):
        if kind == "Functional" or "input_layers" in out:
            raise SavingError(f"{ctx.what}: a functional config needs 'input_layers' and "
                              "'output_layers'.")
    return out


def translate_layer_config(cls, class_name, config, ctx) -> dict:
    """Legacy keys translated, nested objects checked, Keras-only defaults dropped."""
    where = f"{ctx.what}: layer {config.get('name')!r} ({class_name})"
    conf = {}
    for key, value in config.items():
        if not isinstance(key, str):
            raise SavingError(f"{where}: config keys must be strings.")
        conf[key] = value
    _refuse_lambdas(conf, where, ctx)
    if "dtype" in conf:
        conf["dtype"] = dtype_name(conf["dtype"], where)
    if class_name == "LeakyReLU" and "alpha" in conf:  # Keras 2 name of negative_slope
        alpha = conf.pop("alpha")
        conf.setdefault("negative_slope", alpha)
    for key in ("batch_input_shape", "batch_shape"):
        if conf.get(key) is not None:
            conf[key] = list(check_batch_shape(conf[key], f"{where}: {key}"))
    for key in ("input_shape", "shape"):  # one sample's shape
        if conf.get(key) is not None:
            shape = conf[key]
            check_batch_shape([None] + list(shape) if isinstance(shape, list) else shape,
                              f"{where}: {key}")
    if class_name == "InputLayer" and "batch_input_shape" in conf and "batch_shape" not in conf:
        conf["batch_shape"] = conf.pop("batch_input_shape")
    for key in ("target_shape", "noise_shape"):
        if isinstance(conf.get(key), list):
            check_batch_shape([None] + conf[key], f"{where}: {key}")
    for key, value in list(conf.items()):
        if value is None:
            continue
        if key == "activation" or key.endswith("_activation"):
            conf[key] = _activation(value, where, ctx)
        elif key.endswith("_initializer"):
            conf[key] = _nested(value, initializers, "initializer", where, ctx)
        elif key.endswith("_regularizer"):
            conf[key] = _nested(value, regularizers, "regularizer", where, ctx)
        elif key.endswith("_constraint"):
            conf[key] = _nested(value, constraints, "constraint", where, ctx)
    if cls.__module__.startswith("glassnet."):
        accepted = set(layers_base._BASE_KWARGS) | set(layers_base._init_parameters(cls))
        for key in [k for k in conf if k not in accepted]:
            if key in ("module", "registered_name", "build_config", "shared_object_id"):
                conf.pop(key)
            elif key in _KERAS_DEFAULTS:
                if not any(_same(conf[key], d) for d in _KERAS_DEFAULTS[key]):
                    raise SavingError(f"{where}: Keras argument {key}={_short(conf[key])} "
                                      "is not supported by glassnet.")
                conf.pop(key)
    return conf


def _same(a, b) -> bool:
    return type(a) is type(b) and a == b


def dtype_name(value, where) -> str:
    """A dtype name from a name or a dtype policy (Keras 2 Policy, Keras 3 DTypePolicy)."""
    if isinstance(value, dict):
        inner = value.get("config")
        value = inner.get("name") if isinstance(inner, dict) else None
    if not isinstance(value, str):
        raise SavingError(f"{where}: dtype must be a name or a dtype policy; received "
                          f"{_short(value)}.")
    if value.startswith("mixed_"):  # mixed precision keeps float32 variables
        return "float32"
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise SavingError(f"{where}: unknown dtype {value!r}.") from None
    if dtype.kind not in "fiub":
        raise SavingError(f"{where}: dtype {value!r} is not a numeric dtype.")
    return dtype.name


def _refuse_lambdas(value, where, ctx, depth=0):
    if depth > 64:
        raise SavingError(f"{where}: the config is nested too deeply.")
    if isinstance(value, dict):
        if value.get("class_name") == "__lambda__" or value.get("function_type") == "lambda":
            hint = ("glassnet refuses it in safe mode" if ctx.safe_mode else
                    "glassnet never runs code from a file, even with safe_mode=False")
            raise SavingError(f"{where} holds a Python lambda (bytecode stored in the file); "
                              f"{hint}. Use a named function and pass it in custom_objects.")
        for v in value.values():
            _refuse_lambdas(v, where, ctx, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _refuse_lambdas(v, where, ctx, depth + 1)


def _activation(value, where, ctx):
    if isinstance(value, dict):
        inner = value.get("config")
        name = inner if isinstance(inner, str) else value.get("class_name")
        custom = ctx.lookup(value.get("registered_name"), name)
        if custom is not None:
            return custom
        if isinstance(name, str):
            return name
        raise SavingError(f"{where}: cannot read activation {_short(value)}.")
    if isinstance(value, str):
        custom = ctx.lookup(value)
        return value if custom is None else custom
    raise SavingError(f"{where}: activation must be a name; received {_short(value)}.")


def _nested(value, module, kind, where, ctx):
    """An initializer/regularizer/constraint spec: custom objects resolved, classes checked."""
    if isinstance(value, str):
        custom = ctx.lookup(value)
        return value if custom is None else custom
    if not isinstance(value, dict) or not isinstance(value.get("class_name"), str):
        article = "an" if kind[0] in "aeiou" else "a"
        raise SavingError(f"{where}: {article} {kind} must be a name or a "
                          f"{{class_name, config}} dict; received {_short(value)}.")
    name, inner = value["class_name"], value.get("config") or {}
    if name == "function":
        name = value.get("registered_name") or inner
        if not isinstance(name, str):
            raise SavingError(f"{where}: cannot read {kind} {_short(value)}.")
        custom = ctx.lookup(name)
        return name if custom is None else custom
    if not isinstance(inner, dict):
        raise SavingError(f"{where}: the config of {kind} {name!r} must be a dict.")
    custom = ctx.lookup(value.get("registered_name"), name)
    if custom is not None:
        try:
            return custom.from_config(dict(inner)) if isinstance(custom, type) else custom
        except Exception as exc:
            raise SavingError(f"{where}: custom {kind} {name!r}: {exc}") from None
    cls = module._REGISTRY.get(module._normalize(name))
    if cls is not None and not cls.__module__.startswith("glassnet."):
        raise SavingError(f"{where}: {kind} class {name!r} is not a glassnet built-in; pass "
                          f"it in custom_objects to load it.")
    if kind == "initializer":
        inner = {k: v for k, v in inner.items() if k != "dtype"}  # TF 1.x wrote a dtype
    return {"class_name": name, "config": inner}


def _short(value, n=100) -> str:
    text = repr(value)
    return text if len(text) <= n else text[:n] + "…"

