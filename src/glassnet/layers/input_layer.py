"""Input, InputLayer and KerasTensor: the symbolic placeholders of the functional API."""
from __future__ import annotations

import numpy as np

from .. import backend
from .base import Layer, shape_str


class KerasTensor:
    """A symbolic tensor: a shape, a dtype and the layer call that produced it.

    Returned by `Input(...)` and by calling a layer on a KerasTensor; used to build models
    without data (`glassnet.Model(inputs, outputs)`).
    """

    def __init__(self, shape, dtype=None, name=None, layer=None, inputs=(), call_kwargs=None):
        self.shape = tuple(shape)
        self.dtype = backend.standardize_dtype(dtype).name
        self.name = name
        self.layer = layer            # the layer that produced this tensor (InputLayer for inputs)
        self.inputs = tuple(inputs)   # the KerasTensors that layer was called on
        self.call_kwargs = call_kwargs or {}

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @classmethod
    def from_layer_call(cls, layer, inputs, kwargs) -> "KerasTensor":
        single = isinstance(inputs, KerasTensor)
        in_list = (inputs,) if single else tuple(inputs)
        shape_in = in_list[0].shape if single else [t.shape for t in in_list]
        if not layer.built:
            layer._maybe_build(shape_in)
        out_shape = layer.compute_output_shape(shape_in)
        return cls(out_shape, layer.dtype, name=layer.name, layer=layer, inputs=in_list,
                   call_kwargs=dict(kwargs))

    def __repr__(self) -> str:
        return f"<KerasTensor shape={shape_str(self.shape)}, dtype={self.dtype}, name={self.name}>"


class InputLayer(Layer):
    """The entry point of a model: holds the expected input shape; passes data through.

    Args:
        shape: shape of one sample, without the batch axis (`input_shape` accepted).
        batch_size: optional fixed batch size.
        dtype: input dtype; defaults to `floatx()`.
        name: layer name.
    """

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None,
                 batch_shape=None, input_shape=None, batch_input_shape=None, **kwargs):
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
        self.output = KerasTensor(self.batch_shape, self.dtype, name=self.name, layer=self)

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


__all__ = ["Input", "InputLayer", "KerasTensor"]
_ = np
