"""Core layers: Dense, Flatten, Reshape, Dropout (Keras 3 semantics and arguments)."""
from __future__ import annotations

import numpy as np

from .. import activations, backend, constraints, initializers, regularizers
from ..autograd import Tensor, fused, ops
from .base import Layer, shape_str


def _serialize_initializer(init):
    return initializers.serialize(init) if init is not None else None


class Dense(Layer):
    """Densely connected layer: output = activation(inputs @ kernel + bias).

    The kernel has shape (input_dim, units). Inputs of rank > 2 are multiplied along their
    last axis. relu/tanh/elu/selu are applied in place inside one fused graph node; sigmoid
    and softmax are separate nodes that remember their logits for a stable cross-entropy.

    Args:
        units: dimensionality of the output space.
        activation: activation function or name. Defaults to None (linear).
        use_bias: whether to add a bias vector. Defaults to True.
        kernel_initializer: defaults to "glorot_uniform" (Keras' default).
        bias_initializer: defaults to "zeros".
        kernel_regularizer, bias_regularizer, activity_regularizer: optional penalties.
        kernel_constraint, bias_constraint: optional projections applied after updates.

    Example:
        >>> layer = Dense(3, activation="relu")
        >>> layer(np.ones((2, 4))).shape
        (2, 3)
    """

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(
                f"Dense `units` must be a positive integer. Received: units={units!r}"
            )
        self.units = int(units)
        self.activation = activations.get(activation)
        self._fused_activation = activations.fused_name(self.activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.kernel = None
        self.bias = None

    def build(self, input_shape):
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(
                f"Layer {self.name!r} (Dense) needs inputs with a known last axis and a "
                f"batch axis; received input shape {shape_str(input_shape)}."
            )
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units), initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
            name="kernel")
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.units,), initializer=self.bias_initializer,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                name="bias")
        self.built = True

    def check_input_shape(self, shape):
        expected = self.kernel.shape[0]
        if len(shape) < 2 or shape[-1] != expected:
            raise ValueError(
                f"Input to layer {self.name!r} (Dense) is incompatible: expected the last "
                f"axis to have size {expected}, i.e. shape (None, {expected}), received "
                f"shape {shape_str(shape)}."
            )

    def call(self, inputs):
        if self._fused_activation is not None:
            return fused.dense(inputs, self.kernel, self.bias, self._fused_activation)
        z = fused.dense(inputs, self.kernel, self.bias, None)
        return self.activation(z)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": _serialize_initializer(self.kernel_initializer),
            "bias_initializer": _serialize_initializer(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        }


class Flatten(Layer):
    """Flattens every axis but the batch axis: (N, d1, d2, …) → (N, d1·d2·…)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format

    def call(self, inputs):
        return ops.reshape(inputs, (inputs.shape[0], -1))

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else int(np.prod(rest, dtype=np.int64))
        return (input_shape[0], size)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    """Reshapes each sample to `target_shape` (batch axis kept; one entry may be -1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in self.target_shape) > 1:
            raise ValueError(f"Reshape target_shape may contain at most one -1. "
                             f"Received: target_shape={self.target_shape}")

    def call(self, inputs):
        try:
            return ops.reshape(inputs, (inputs.shape[0],) + self.target_shape)
        except ValueError:
            raise ValueError(
                f"Layer {self.name!r} (Reshape) cannot reshape samples of shape "
                f"{shape_str(inputs.shape[1:])} ({int(np.prod(inputs.shape[1:]))} values) "
                f"into {shape_str(self.target_shape)}."
            ) from None

    def compute_output_shape(self, input_shape):
        shape = list(self.target_shape)
        if -1 in shape and all(d is not None for d in input_shape[1:]):
            known = int(np.prod([d for d in shape if d != -1]))
            shape[shape.index(-1)] = int(np.prod(input_shape[1:])) // known
        return (input_shape[0],) + tuple(None if d == -1 else d for d in shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Dropout(Layer):
    """Zeroes each input unit with probability `rate` while training, scaling the kept
    units by 1 / (1 - rate) (inverted dropout); the identity at inference.

    Args:
        rate: fraction of units to drop, in [0, 1).
        noise_shape: optional shape of the binary mask (broadcast against the input).
        seed: int seed for the layer's own generator.

    Inside `glassnet.utils.mc_dropout(model)` (and `mc_predict`) it also drops at
    inference: Monte-Carlo dropout (Gal & Ghahramani, 2016).
    """

    _mc_sampling = False  # set per instance by utils.mc_dropout, for Monte-Carlo dropout

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= float(rate) < 1:
            raise ValueError(f"Dropout `rate` must be in [0, 1). Received: rate={rate!r}")
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self._rng = backend.make_rng(seed)

    def call(self, inputs, training=False):
        if not (training or self._mc_sampling) or self.rate == 0:
            return inputs
        mask = self.draw_mask(inputs.shape, inputs.dtype)
        return Tensor.from_op(inputs.data * mask, (inputs,), lambda g: (g * mask,), "dropout")

    def draw_mask(self, input_shape, dtype) -> np.ndarray:
        """The next mask from the layer's generator: 0 for dropped units, 1 / (1 - rate)
        for kept ones, of `noise_shape` (None entries from `input_shape`)."""
        shape = input_shape if self.noise_shape is None else tuple(
            n if n is not None else s for n, s in zip(self.noise_shape, input_shape))
        keep = self._rng.random(shape, dtype=np.float32) >= self.rate
        return keep * np.asarray(1.0 / (1.0 - self.rate), dtype=dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate,
                "noise_shape": None if self.noise_shape is None else list(self.noise_shape),
                "seed": self.seed}


__all__ = ["Dense", "Flatten", "Reshape", "Dropout"]
