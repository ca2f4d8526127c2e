"""Input, InputLayer and KerasTensor: the symbolic placeholders of the functional API."""
from __future__ import annotations

import numpy as np

from .. import backend
from .base import Layer, shape_str


class KerasTensor:
    """A symbolic tensor: a shape, a dtype and the layer call (node) that produced it.

    Returned by `Input(...)` and by calling a layer on KerasTensors; used to build models
    without data (`glassnet.Model(inputs, outputs)`). `_keras_history` is Keras'
    `(layer, node_index, tensor_index)`: output `tensor_index` of the layer's
    `node_index`-th symbolic call.
    """

    def __init__(self, shape, dtype=None, name=None, layer=None, inputs=(), call_kwargs=None,
                 node_index=0, tensor_index=0):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = backend.standardize_dtype(dtype).name
        self.name = name
        self.layer = layer            # the layer that produced this tensor (InputLayer for inputs)
        self.inputs = tuple(inputs)   # the KerasTensors that layer was called on
        self.call_kwargs = call_kwargs or {}
        self.node_index, self.tensor_index = node_index, tensor_index

    @property
    def _keras_history(self) -> tuple:
        return self.layer, self.node_index, self.tensor_index

    @property
    def node(self) -> "Node":
        """The layer call that produced this tensor."""
        return self.layer._inbound_nodes[self.node_index]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @classmethod
    def from_layer_call(cls, layer, inputs, kwargs):
        """Record `layer(inputs, **kwargs)` as a Node; return its output KerasTensor(s)."""
        if isinstance(inputs, dict):
            flat, shape_in = list(inputs.values()), {k: t.shape for k, t in inputs.items()}
        elif isinstance(inputs, KerasTensor):
            flat, shape_in = [inputs], inputs.shape
        else:
            flat, shape_in = list(inputs), [t.shape for t in inputs]
        if not layer.built:
            layer._maybe_build(shape_in)
        out_shape = layer.compute_output_shape(shape_in)
        several = isinstance(out_shape, list)
        shapes = out_shape if several else [out_shape]
        nodes = _inbound_nodes(layer)
        outputs = [cls(s, layer.dtype, name=layer.name, layer=layer, inputs=flat,
                       call_kwargs=dict(kwargs), node_index=len(nodes), tensor_index=i)
                   for i, s in enumerate(shapes)]
        Node(layer, inputs, dict(kwargs), outputs)
        return outputs if several else outputs[0]

    def __repr__(self) -> str:
        return f"<KerasTensor shape={shape_str(self.shape)}, dtype={self.dtype}, name={self.name}>"


class Node:
    """One call of a layer on symbolic tensors: `outputs = layer(args, **call_kwargs)`.

    `args` keeps the structure the layer was called with (one KerasTensor, a list or a
    dict); an InputLayer's node has no args. Nodes are appended to
    `layer._inbound_nodes`, so a shared layer has one node per call.
    """

    def __init__(self, layer, args, call_kwargs, outputs):
        self.layer, self.args, self.call_kwargs = layer, args, call_kwargs
        self.outputs = list(outputs)
        nodes = _inbound_nodes(layer)
        self.index = len(nodes)
        nodes.append(self)

    @property
    def input_tensors(self) -> list:
        """The KerasTensors this call consumed, flattened."""
        return flatten(self.args)

    @property
    def is_input(self) -> bool:
        return self.args is None


def flatten(structure) -> list:
    """KerasTensors (or any leaves) of a nested list/tuple/dict structure, in order."""
    if structure is None:
        return []
    if isinstance(structure, dict):
        return [t for v in structure.values() for t in flatten(v)]
    if isinstance(structure, (list, tuple)):
        return [t for v in structure for t in flatten(v)]
    return [structure]


def _inbound_nodes(layer) -> list:
    nodes = layer.__dict__.get("_inbound_nodes")
    if nodes is None:
        nodes = layer.__dict__["_inbound_nodes"] = []
    return nodes


def node_attribute(layer, what: str):
    """`layer.input` / `layer.output`: from the layer's first symbolic call (Keras 3)."""
    nodes = layer.__dict__.get("_inbound_nodes")
    if not nodes:
        for owner in list(getattr(layer, "_owners", ()) or ()):
            ensure = getattr(owner, "_ensure_symbolic_graph", None)
            if ensure is not None:  # a Sequential model builds its graph on demand
                ensure()
                nodes = layer.__dict__.get("_inbound_nodes")
                if nodes:
                    break
    if not nodes:
        raise AttributeError(
            f"Layer {layer.name!r} has never been called on a symbolic input, so it has no "
            f"defined {what}. Call it on `keras.Input(...)` (functional API) or put it in a "
            "model whose input shape is known.")
    node = nodes[0]
    if what == "input":
        return node.outputs[0] if node.is_input else node.args
    return node.outputs[0] if len(node.outputs) == 1 else list(node.outputs)


class InputLayer(Layer):
    """The entry point of a model: holds the expected input shape; passes data through.

    Args:
        shape: shape of one sample, without the batch axis (`input_shape` accepted).
        batch_size: optional fixed batch size.
        dtype: input dtype; defaults to `floatx()`.
        name: layer name.
    """

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None,
                 batch_shape=None, input_shape=None, batch_input_shape=None, sparse=None,
                 ragged=None, optional=False, **kwargs):
        if sparse or ragged or optional:
            raise ValueError(f"InputLayer {name!r}: sparse, ragged and optional inputs are "
                             f"not supported. Received: sparse={sparse!r}, ragged={ragged!r},"
                             f" optional={optional!r}")
        super().__init__(name=name, dtype=dtype, **kwargs)
        if batch_shape is None:
            batch_shape = batch_input_shape
        if batch_shape is None:
            shape = shape if shape is not None else input_shape
            if shape is None:
                raise ValueError(f"InputLayer {self.name!r} needs `shape` (one sample's shape).")
            batch_shape = (batch_size,) + tuple(shape)
        self.batch_shape = tuple(None if d is None else int(d) for d in batch_shape)
        self._batch_input_shape = self.batch_shape
        self.built = True
        self._build_input_shape = self.batch_shape
        Node(self, None, {}, [KerasTensor(self.batch_shape, self.dtype, name=self.name,
                                          layer=self)])

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {"batch_shape": list(self.batch_shape), "dtype": self.dtype, "name": self.name}


def Input(shape=None, batch_size=None, dtype=None, name=None, batch_shape=None, **kwargs):
    """Return a symbolic input tensor of one sample's `shape` (Keras `keras.Input`)."""
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name,
                       batch_shape=batch_shape, **kwargs)
    return layer.output


__all__ = ["Input", "InputLayer", "KerasTensor", "Node"]
_ = np
