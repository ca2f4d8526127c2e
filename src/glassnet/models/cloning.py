"""clone_model: a new model with the same architecture and fresh weights (Keras 3)."""
from __future__ import annotations

from ..layers.input_layer import Input, InputLayer, KerasTensor, flatten
from .functional import Functional
from .graph import _map_structure, _restructure
from .sequential import Sequential


def clone_model(model, input_tensors=None, clone_function=None, call_function=None,
                recursive=False, copy_weights=False, **kwargs):
    """Return a copy of `model` whose layers are new objects with newly initialised weights.

    clone = Model.from_config-style rebuild: each layer is `type(layer).from_config(
    layer.get_config())`, so the clone has the same names, shapes and initializers as
    the original but its own weights (Keras semantics: use `set_weights`, or
    `copy_weights=True`, to copy the values). A layer shared inside the model is cloned
    once and stays shared in the clone. A compiled model's loss and metrics are copied,
    with a fresh optimizer of the same configuration.

    Args:
        model: a Sequential or functional model (a subclassed model needs `get_config`
            and `from_config`).
        input_tensors: optional KerasTensor(s) to build the clone on, in the structure of
            `model.input`; defaults to new `Input`s with the same shapes and names.
        clone_function: `fn(layer) -> layer` applied to every non-input layer; defaults
            to a config round trip. `lambda layer: layer` reuses (shares) the layers.
        call_function: functional models only: `fn(layer, *args, **kwargs)` replaces
            each layer call while the graph is rebuilt (e.g. to insert Dropout).
        recursive: also apply `clone_function` inside nested models. Defaults to False.
        copy_weights: glassnet convenience: copy the weight values into the clone
            (same as `clone.set_weights(model.get_weights())`). Defaults to False.

    Returns:
        The new model (same class for Sequential and Functional).

    Example:
        >>> model_A_clone = keras.models.clone_model(model_A)
        >>> model_A_clone.set_weights(model_A.get_weights())
        >>> twin = keras.models.clone_model(model_A, copy_weights=True)   # the same

    Reference:
        Keras 3, keras/src/models/cloning.py
    """
    cache = kwargs.pop("cache", None)
    if kwargs:
        raise ValueError(f"clone_model() got unexpected keyword argument(s) {sorted(kwargs)}."
                         " Accepted: input_tensors, clone_function, call_function, "
                         "recursive, copy_weights.")
    if clone_function is not None and not callable(clone_function):
        raise ValueError("`clone_function` must be a callable fn(layer) -> layer. "
                         f"Received: clone_function={clone_function!r}")
    wrapped = _wrap_clone_function(clone_function, call_function, recursive,
                                   {} if cache is None else cache)
    if isinstance(model, Sequential):
        if call_function is not None:
            raise ValueError("`call_function` is only supported for functional models: a "
                             "Sequential model's layers are listed, not called, when it is "
                             f"built. Received a Sequential model {model.name!r}.")
        clone = _clone_sequential(model, wrapped, input_tensors)
    elif isinstance(model, Functional):
        clone = _clone_functional(model, wrapped, input_tensors, call_function)
    else:
        if clone_function is not None or input_tensors is not None or call_function:
            raise ValueError("`clone_function`, `input_tensors` and `call_function` are only "
                             "supported for Sequential and functional models. Received a "
                             f"{type(model).__name__} ({model.name!r}).")
        try:
            clone = type(model).from_config(model.get_config())
        except Exception as exc:
            raise ValueError(
                f"Cannot clone the subclassed model {model.name!r} ({type(model).__name__}):"
                f" rebuilding it from get_config() failed ({type(exc).__name__}: {exc}). "
                "Implement get_config() and from_config() on the class.") from exc
    _copy_compile(model, clone)
    if copy_weights:
        if not model.built:
            raise ValueError(f"clone_model(..., copy_weights=True): model {model.name!r} has "
                             "no weights yet (it is not built). Build it or fit it first.")
        if not clone.built and getattr(model, "_build_input_shape", None) is not None:
            clone.build(model._build_input_shape)
        clone.set_weights(model.get_weights())
    return clone


def _wrap_clone_function(clone_function, call_function, recursive, cache):
    """Memoise by layer identity (shared layers stay shared) and recurse when asked."""
    def default(layer):
        return type(layer).from_config(layer.get_config())

    fn = clone_function or default

    def wrapped(layer):
        if id(layer) in cache:
            return cache[id(layer)]
        if recursive and isinstance(layer, (Sequential, Functional)):
            clone = clone_model(layer, clone_function=clone_function,
                                call_function=call_function if isinstance(
                                    layer, Functional) else None,
                                recursive=True, cache=cache)
        else:
            clone = fn(layer)
        cache[id(layer)] = clone
        return clone

    return wrapped


def _clone_sequential(model, clone_function, input_tensors):
    new_layers = [clone_function(layer) for layer in model.layers]
    head = []
    if input_tensors is not None:
        if isinstance(input_tensors, (list, tuple)):
            if len(input_tensors) != 1:
                raise ValueError("`input_tensors` for a Sequential model must be a single "
                                 f"KerasTensor. Received {len(input_tensors)} tensors.")
            input_tensors = input_tensors[0]
        if not isinstance(input_tensors, KerasTensor):
            raise ValueError("`input_tensors` must be a KerasTensor (from keras.Input). "
                             f"Received: {type(input_tensors).__name__} {input_tensors!r}")
        head = [input_tensors if isinstance(input_tensors.layer, InputLayer)
                else Input(batch_shape=input_tensors.shape)]
    elif model._input_batch_shape is not None:
        head = [InputLayer(batch_shape=model._input_batch_shape)]
    return Sequential(head + new_layers, name=model.name, trainable=model.trainable)


def _clone_functional(model, clone_function, input_tensors, call_function):
    if input_tensors is not None:
        given = flatten(input_tensors)
        if any(not isinstance(t, KerasTensor) for t in given):
            raise ValueError("All entries of `input_tensors` must be KerasTensors. Received: "
                             f"{[type(t).__name__ for t in given]}")
        if len(given) != len(model.inputs):
            raise ValueError("`input_tensors` must have the structure of model.input: "
                             f"expected {len(model.inputs)} tensor(s), received {len(given)}.")
        new_inputs = input_tensors
    else:
        new_inputs = _map_structure(
            model.input, lambda t: Input(batch_shape=t.shape, dtype=t.dtype, name=t.layer.name))
    values = {id(src): t for src, t in zip(model._input_sources, flatten(new_inputs))}
    for layer, args, kwargs, fixed_training, outputs in model._plan:
        new_layer = clone_function(layer)
        call_kwargs = dict(kwargs)
        if fixed_training is not None:
            call_kwargs["training"] = fixed_training
        x = _map_structure(args, lambda t: values[id(t)])
        if call_function is not None:
            out = call_function(new_layer, x, **call_kwargs)
        else:
            out = new_layer(x, **call_kwargs)
        outs = out if isinstance(out, list) and len(outputs) > 1 else [out]
        for kt, o in zip(outputs, outs):
            values[id(kt)] = o
    outputs = _restructure(model._output_struct, model._outputs,
                           [values[id(t)] for t in model._outputs])
    return type(model)(new_inputs, outputs, name=model.name, trainable=model.trainable)


def _copy_compile(model, clone):
    if not getattr(model, "compiled", False):
        return
    opt = model.optimizer
    clone.compile(optimizer=type(opt).from_config(opt.get_config()), loss=model.loss,
                  metrics=list(model._metric_specs[:len(model._metric_specs)
                                                   - model._weighted_count]),
                  weighted_metrics=list(model._metric_specs[len(model._metric_specs)
                                                            - model._weighted_count:]))


__all__ = ["clone_model"]
