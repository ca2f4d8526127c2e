"""Functional: a model defined by a graph of layer calls on symbolic tensors (Keras 3).

    inputs = keras.Input(shape=(784,))
    code = keras.layers.Dense(32, activation="relu", name="encoder_out")(inputs)
    outputs = keras.layers.Dense(784, activation="sigmoid")(code)
    autoencoder = keras.Model(inputs, outputs)          # routed here by Model.__new__
    encoder = keras.Model(autoencoder.input, autoencoder.get_layer("encoder_out").output)

Calling a layer on a `KerasTensor` runs no math: it records a `Node` (layer, arguments,
output tensors) on the layer. `Functional(inputs, outputs)` walks the nodes back from the
outputs to the inputs, sorts them topologically and, on real data, calls each layer in
that order. A layer called twice (a shared layer) has two nodes and one set of weights.

Training uses the ordinary Trainer: models with several inputs or outputs are trained on
lists (or dicts) of arrays through `multi_io.MultiIOTraining`.
"""
from __future__ import annotations

import inspect

import numpy as np

from ..autograd import Tensor
from ..autograd.variable import structure_changed
from ..layers.base import get_layer_class, shape_str
from ..layers.input_layer import InputLayer, flatten
from .graph import (_as_given, _check_tensors, _fill, _is_input_tensor,
                    _keras_layer_order, _map_structure, _plan_node, _restructure,
                    _topological_nodes)
from .model import Model
from .multi_io import MultiIOTraining, split_arrays


class Functional(MultiIOTraining, Model):
    """A model whose layers form a graph from `inputs` to `outputs` (Keras `Functional`).

    Built by `glassnet.Model(inputs, outputs)`. `layers` lists the InputLayers first, then
    every layer in topological order (a shared layer once).

    Args:
        inputs: a KerasTensor from `keras.Input(...)` (or any KerasTensor of the graph), or
            a list/tuple/dict of them.
        outputs: a KerasTensor reachable from `inputs`, or a list/tuple/dict of them.
        name: model name; defaults to "functional", made unique.
        trainable: whether the model's layers are trainable. Defaults to True.

    Example:
        >>> inp = keras.Input(shape=(4,), name="x")
        >>> hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inp)
        >>> model = keras.Model(inp, keras.layers.Dense(1)(hidden))
        >>> model.predict(np.ones((2, 4))).shape
        (2, 1)
        >>> features = keras.Model(model.input, model.get_layer("hidden").output)

    Reference:
        Keras 3, keras/src/models/functional.py and keras/src/ops/function.py
    """

    def __init__(self, inputs, outputs, name=None, trainable=True, **kwargs):
        if self.__dict__.get("_graph_ready"):  # Model.__new__ built us; Python calls again
            return
        Model.__init__(self, name=name, trainable=trainable, **kwargs)
        self._input_struct, self._output_struct = inputs, outputs
        given_inputs = _check_tensors(flatten(inputs), "inputs")
        self._outputs = _check_tensors(flatten(outputs), "outputs")
        if len({id(t) for t in given_inputs}) != len(given_inputs):
            raise ValueError(f"Model {self.name!r}: the same tensor appears twice in `inputs`.")
        # A graph input that is not an Input(...) (a decoder built on an intermediate
        # tensor) gets a fresh InputLayer, as Keras does; the graph stops at that tensor.
        self._input_sources = given_inputs
        self._inputs = [t if _is_input_tensor(t) else
                        InputLayer(batch_shape=t.shape, dtype=t.dtype).output
                        for t in given_inputs]
        self._nodes = _topological_nodes(given_inputs, self._outputs, self.name)
        layers = _keras_layer_order(given_inputs, self._inputs, self._outputs)
        self.__dict__["_layers"] = []
        for layer in layers:
            self._track_layer(layer)
            self._layers.append(layer)
        structure_changed()
        self._plan = [_plan_node(node) for node in self._nodes]
        self._packed_layout = None
        self._build_input_shape = self._inputs[0].shape if len(self._inputs) == 1 else \
            [t.shape for t in self._inputs]
        self.built = True
        self._graph_ready = True
        if not trainable:
            self.trainable = False

    # ---- graph views --------------------------------------------------------------------
    @property
    def inputs(self) -> list:
        return list(self._inputs)

    @property
    def outputs(self) -> list:
        return list(self._outputs)

    @property
    def input(self):
        """The model's input tensor(s), in the structure given to the constructor."""
        return _restructure(self._input_struct, self._input_sources, self._inputs)

    @property
    def output(self):
        return self._output_struct if not isinstance(self._output_struct, tuple) \
            else list(self._output_struct)

    @property
    def input_names(self) -> list:
        return [t.layer.name for t in self._inputs]

    @property
    def output_names(self) -> list:
        return [t.layer.name for t in self._outputs]

    def build(self, input_shape=None):
        """A functional model is built when it is constructed; kept for Keras code."""
        self.built = True

    # ---- running the graph --------------------------------------------------------------
    def call(self, inputs, training=False):
        """Run the graph on real inputs; return outputs in the constructor's structure."""
        values = {id(src): t for src, t in zip(self._input_sources, self._bind(inputs))}
        # NOTE: keyed by id() at run time only: ids are not stable across deepcopy.
        for layer, args, kwargs, fixed_training, outputs in self._plan:
            x = _fill(args, values)
            out = layer(x, training=training if fixed_training is None else fixed_training,
                        **kwargs)
            if len(outputs) == 1:
                values[id(outputs[0])] = out
            else:
                for kt, o in zip(outputs, out):
                    values[id(kt)] = o
        outs = [values[id(t)] for t in self._outputs]
        if self._pack_outputs:  # training with several outputs (see multi_io)
            return self._packed_outputs(outs)
        out = _restructure(self._output_struct, self._outputs, outs)
        return out[0] if isinstance(out, list) and len(out) == 1 else out  # as Keras 3

    def _bind(self, inputs) -> list:
        """Match the call's inputs to the model's inputs (list, dict or one array)."""
        n = len(self._inputs)
        layout = self._packed_layout
        if layout is not None and isinstance(inputs, Tensor) and n > 1:
            return [Tensor(a) for a in split_arrays(inputs.data, layout)]
        if isinstance(inputs, dict):
            keys = list(self._input_struct) if isinstance(self._input_struct, dict) \
                else self.input_names
            missing = [k for k in keys if k not in inputs]
            if missing:
                raise ValueError(f"Model {self.name!r} expects inputs named {keys}; the dict "
                                 f"passed has keys {list(inputs)} (missing {missing}).")
            inputs = [inputs[k] for k in keys]
        elif not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        if len(inputs) != n:
            raise ValueError(f"Model {self.name!r} expects {n} input(s) {self.input_names}, "
                             f"received {len(inputs)}.")
        out = []
        for kt, x in zip(self._inputs, inputs):
            if not isinstance(x, Tensor):
                x = Tensor(np.asarray(x, dtype=kt.dtype) if np.asarray(x).dtype != kt.dtype
                           else np.asarray(x))
            expected = kt.shape
            if len(x.shape) != len(expected) or any(
                    e is not None and s != e for s, e in zip(x.shape[1:], expected[1:])):
                raise ValueError(
                    f"Input {kt.layer.name!r} of model {self.name!r} is incompatible: "
                    f"expected shape {shape_str(expected)}, received shape {shape_str(x.shape)}.")
            out.append(x)
        return out

    def compute_output_shape(self, input_shape):
        leaves = input_shape if isinstance(input_shape, list) and input_shape and \
            isinstance(input_shape[0], (list, tuple)) else [input_shape]
        if isinstance(input_shape, dict):
            leaves = list(input_shape.values())
        batch = leaves[0][0] if leaves and leaves[0] else None
        shapes = [(batch,) + tuple(t.shape[1:]) for t in self._outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def _node_ids(self) -> set:
        """ids of the nodes of this model (input nodes included)."""
        return {id(n) for n in self._nodes} | {id(t.node) for t in self._inputs}

    # ---- summary ------------------------------------------------------------------------
    def _summary_rows(self):
        rows, own = [], self._node_ids
        for layer in self._layers:
            nodes = [n for n in layer._inbound_nodes if id(n) in own]
            shapes = [kt.shape for kt in nodes[0].outputs] if nodes else []
            out_shape = shape_str(shapes[0]) if len(shapes) == 1 else \
                "[" + ", ".join(map(shape_str, shapes)) + "]"
            params = layer.count_params() if layer.built else 0
            n_train = sum(w.size for w in layer.trainable_weights) if layer.built else 0
            state = "Y" if layer.trainable and n_train else (
                "frozen" if not layer.trainable else "-")
            rows.append((f"{layer.name} ({type(layer).__name__})", out_shape, params, state))
        return rows

    # ---- config -------------------------------------------------------------------------
    def get_config(self) -> dict:
        """Keras 3 functional config: `layers` with `inbound_nodes`, `input_layers`,
        `output_layers` (each tensor as `[layer_name, node_index, tensor_index]`)."""
        index, own = {}, self._node_ids  # id(node) -> index among the layer's nodes here
        for layer in self._layers:
            mine = [n for n in layer._inbound_nodes if id(n) in own]
            for i, node in enumerate(mine):
                index[id(node)] = i
        sources = {id(s): t for s, t in zip(self._input_sources, self._inputs)}

        def ref(kt):
            kt = sources.get(id(kt), kt)
            return [kt.layer.name, index[id(kt.node)], kt.tensor_index]

        def io_ref(kt):
            # NOTE: Keras 3 counts a nested functional model's nodes from 1 in
            # input_layers/output_layers (a Keras 2 relic), but from 0 in inbound_nodes.
            name, node_index, tensor_index = ref(kt)
            offset = isinstance(sources.get(id(kt), kt).layer, Functional)
            return [name, node_index + offset, tensor_index]

        def tensor_config(kt):
            return {"class_name": "__keras_tensor__",
                    "config": {"shape": list(kt.shape), "dtype": kt.dtype,
                               "keras_history": ref(kt)}}

        layer_configs = []
        for layer in self._layers:
            spec = serialize_layer(layer)
            nodes = [n for n in layer._inbound_nodes if id(n) in own and not n.is_input]
            spec["name"] = layer.name
            spec["inbound_nodes"] = [
                {"args": [_map_structure(n.args, tensor_config)],
                 "kwargs": dict(n.call_kwargs)} for n in nodes]
            layer_configs.append(spec)
        return {
            "name": self.name, "trainable": self.trainable, "layers": layer_configs,
            "input_layers": _map_structure(_as_given(self._input_struct), io_ref),
            "output_layers": _map_structure(_as_given(self._output_struct), io_ref),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Rebuild the graph from `get_config()` output (Keras 3 and Keras 2 node formats)."""
        created, order = {}, []
        for spec in config.get("layers", []):
            layer = deserialize_layer(spec, custom_objects)
            name = spec.get("name") or spec.get("config", {}).get("name") or layer.name
            created[name] = layer
            order.append((name, layer, list(spec.get("inbound_nodes", []))))
        outputs = {}  # (layer name, node index) -> output KerasTensors
        for name, layer, _ in order:
            if isinstance(layer, InputLayer):
                outputs[(name, 0)] = [layer.output]

        def lookup(history):
            name, node_index, tensor_index = history[0], int(history[1]), int(history[2])
            if (name, node_index) not in outputs:
                raise _Pending((name, node_index))
            return outputs[(name, node_index)][tensor_index]

        pending = {name: nodes for name, _, nodes in order if nodes}
        done = {name: 0 for name, _, _ in order}
        while pending:
            progressed, blocked = False, None
            for name, layer, _ in order:
                while pending.get(name):
                    try:
                        args, kwargs = _node_arguments(pending[name][0], lookup, layer)
                    except _Pending as exc:
                        blocked = (name, exc.args[0])
                        break
                    out = layer(args, **kwargs)
                    outputs[(name, done[name])] = flatten(out) if isinstance(out, list) \
                        else [out]
                    done[name] += 1
                    pending[name].pop(0)
                    progressed = True
                if name in pending and not pending[name]:
                    del pending[name]
            if not progressed:
                raise ValueError(f"Cannot rebuild functional model {config.get('name')!r}: "
                                 f"layer {blocked[0]!r} is called on the output of "
                                 f"{blocked[1][0]!r} (node {blocked[1][1]}), which no layer "
                                 "of the config produces.")

        def resolve(spec):
            if _is_history(spec):
                if spec[0] not in created:
                    raise ValueError(f"Functional config {config.get('name')!r} names "
                                     f"{spec[0]!r} as an input/output, but has no such layer.")
                offset = isinstance(created[spec[0]], Functional)  # see get_config
                try:
                    return lookup([spec[0], int(spec[1]) - offset, spec[2]])
                except _Pending:
                    raise ValueError(f"Functional config {config.get('name')!r}: the "
                                     f"input/output {list(spec)} refers to a call of layer "
                                     f"{spec[0]!r} that the config does not contain.") from None
            if isinstance(spec, dict):
                return {k: resolve(v) for k, v in spec.items()}
            return [resolve(s) for s in spec]

        model = cls(resolve(config["input_layers"]), resolve(config["output_layers"]),
                    name=config.get("name"))
        if not config.get("trainable", True):
            model.trainable = False
        return model


class _Pending(Exception):
    """A node refers to a tensor that is not rebuilt yet."""


# ---- config helpers ---------------------------------------------------------------------
def serialize_layer(layer) -> dict:
    """`{"module", "class_name", "config", "registered_name", "build_config"}` (Keras 3)."""
    cls_name = type(layer).__name__
    if cls_name == "Functional":
        module, registered = "keras.src.models.functional", "Functional"
    elif cls_name == "Sequential":
        module, registered = "keras", None
    else:
        module, registered = "keras.layers", None
        from ..layers import base as layers_base
        if layers_base._REGISTRY.get(cls_name) is not type(layer) or \
                not type(layer).__module__.startswith("glassnet."):
            registered = f"Custom>{cls_name}"
    spec = {"module": module, "class_name": cls_name, "config": layer.get_config(),
            "registered_name": registered}
    if layer.built and not isinstance(layer, InputLayer) and \
            layer._build_input_shape is not None:
        spec["build_config"] = {"input_shape": _jsonable_shape(layer._build_input_shape)}
    return spec


def _jsonable_shape(shape):
    if isinstance(shape, dict):
        return {k: _jsonable_shape(v) for k, v in shape.items()}
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        return [_jsonable_shape(s) for s in shape]
    return list(shape)


def deserialize_layer(spec: dict, custom_objects=None):
    """Create a layer from `{"class_name", "config"}`, looking in `custom_objects` first."""
    cls_name = spec["class_name"]
    custom = custom_objects or {}
    cls = custom.get(cls_name) or custom.get(spec.get("registered_name") or "") or \
        get_layer_class(cls_name)
    config = dict(spec.get("config", {}))
    if "custom_objects" in inspect.signature(cls.from_config).parameters:
        return cls.from_config(config, custom_objects=custom_objects)
    return cls.from_config(config)


def _is_history(spec) -> bool:
    return isinstance(spec, (list, tuple)) and len(spec) == 3 and isinstance(spec[0], str) \
        and not isinstance(spec[1], (list, dict))


def _node_arguments(node_data, lookup, layer):
    """(args, kwargs) of one serialized node: Keras 3 `{"args", "kwargs"}` or Keras 2
    `[[name, node_index, tensor_index, kwargs], ...]`."""
    if isinstance(node_data, dict):
        def convert(value):
            if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
                return lookup(value["config"]["keras_history"])
            if isinstance(value, dict):
                return {k: convert(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [convert(v) for v in value]
            return value
        args = [convert(a) for a in node_data.get("args", [])]
        kwargs = {k: convert(v) for k, v in node_data.get("kwargs", {}).items()}
        if len(args) != 1:
            raise ValueError(f"Layer {layer.name!r}: glassnet layers take one positional "
                             f"argument (a tensor or a list of tensors); the config gives "
                             f"{len(args)}.")
        x = args[0]
    else:  # Keras 2: a list of [layer_name, node_index, tensor_index, kwargs]
        tensors = [lookup(entry[:3]) for entry in node_data]
        kwargs = dict(node_data[0][3]) if node_data and len(node_data[0]) > 3 else {}
        x = tensors[0] if len(tensors) == 1 else tensors
    accepted = inspect.signature(layer.call).parameters
    kwargs = {k: v for k, v in kwargs.items() if v is not None or k in accepted}
    return x, kwargs


__all__ = ["Functional", "serialize_layer", "deserialize_layer"]
