"""Activation layers: Activation, ReLU, LeakyReLU, PReLU, ELU, Softmax (Keras 3).

Each layer is a thin shell around a function of `glassnet.activations`; only PReLU has
a weight. The output shape is always the input shape.
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import activations, constraints, initializers, regularizers
from ..autograd import Tensor
from .base import Layer


def _check_non_negative(layer: str, **values) -> None:
    for key, value in values.items():
        if value is None or value < 0:
            raise ValueError(f"`{key}` of a {layer} layer must be a float >= 0. "
                             f"Received: {key}={value!r}")


class _SameShape:
    """Mix-in: output shape = input shape. (Not a Layer, so the registry skips it.)"""

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


class Activation(_SameShape, Layer):
    """Applies an activation function to its input: output = activation(inputs).

    Args:
        activation: a function, or the name of one in `glassnet.activations`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Example:
        >>> Activation("relu")(np.array([[-3.0, 2.0]])).numpy()
        array([[0., 2.]], dtype=float32)
    """

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs):
        return self.activation(inputs)

    def get_config(self):
        return {**super().get_config(),
                "activation": activations.serialize(self.activation)}


class ReLU(_SameShape, Layer):
    """Rectified linear unit layer.

    f(x) = min(x, max_value) if x > threshold, else negative_slope * (x - threshold)

    Args:
        max_value: float >= 0, the largest output, or None for no cap. Defaults to
            None.
        negative_slope: float >= 0, slope below the threshold. Defaults to 0.0.
        threshold: float >= 0; inputs at or below it are damped. Defaults to 0.0.
        **kwargs: base layer arguments.

    Example:
        >>> layer = ReLU(max_value=10, negative_slope=0.5)
        >>> layer(np.array([[-10.0, 5.0, 20.0]])).numpy()
        array([[-5.,  5., 10.]], dtype=float32)
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None:
            _check_non_negative("ReLU", max_value=max_value)
        _check_non_negative("ReLU", negative_slope=negative_slope, threshold=threshold)
        self.max_value = max_value
        self.negative_slope = negative_slope
        self.threshold = threshold

    def call(self, inputs):
        return activations.relu(inputs, negative_slope=self.negative_slope,
                                max_value=self.max_value, threshold=self.threshold)

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}


class _DefaultSlope(float):
    """LeakyReLU's untouched default `negative_slope`, unlike an explicit 0.3."""


_LEAKY_DEFAULT = _DefaultSlope(0.3)


class LeakyReLU(_SameShape, Layer):
    """Leaky rectified linear unit layer: f(x) = x if x >= 0 else negative_slope * x.

    Args:
        negative_slope: float >= 0, slope for negative inputs. Defaults to 0.3 (the
            layer's Keras default; the function `activations.leaky_relu` uses 0.2).
        **kwargs: base layer arguments. The Keras 2 name `alpha=` is still accepted
            with a UserWarning (shown once per call site by Python's default warning
            filter); `alpha` together with a different `negative_slope` is an error.

    Example:
        >>> LeakyReLU(negative_slope=0.5)(np.array([[-10.0, 5.0]])).numpy()
        array([[-5.,  5.]], dtype=float32)
    """

    def __init__(self, negative_slope=_LEAKY_DEFAULT, **kwargs):
        if "alpha" in kwargs:
            alpha = kwargs.pop("alpha")
            explicit = not isinstance(negative_slope, _DefaultSlope)
            if explicit and negative_slope != alpha:
                raise ValueError(
                    "LeakyReLU received both `negative_slope` and its deprecated alias "
                    f"`alpha`, with different values. Received: negative_slope="
                    f"{negative_slope!r}, alpha={alpha!r}. Pass only `negative_slope`.")
            warnings.warn("LeakyReLU: the argument `alpha` is deprecated (Keras 3). "
                          "Use `negative_slope` instead.", UserWarning, stacklevel=2)
            negative_slope = alpha
        super().__init__(**kwargs)
        _check_non_negative("LeakyReLU", negative_slope=negative_slope)
        self.negative_slope = float(negative_slope)

    def call(self, inputs):
        return activations.leaky_relu(inputs, negative_slope=self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class PReLU(_SameShape, Layer):
    """Parametric ReLU: f(x) = x if x > 0 else alpha * x, with `alpha` learned.

    alpha has the shape of one sample (`input_shape[1:]`), with size 1 along
    `shared_axes`; df/dalpha = min(x, 0), summed over the batch and the shared axes.

    Args:
        alpha_initializer: initializer of alpha. Defaults to "Zeros".
        alpha_regularizer: optional regularizer of alpha. Defaults to None.
        alpha_constraint: optional constraint on alpha. Defaults to None.
        shared_axes: axes (1 = first axis after the batch) along which alpha is
            shared, e.g. [1, 2] for one alpha per channel of (batch, height, width,
            channels) maps. Defaults to None.
        **kwargs: base layer arguments.

    Example:
        >>> layer = PReLU(alpha_initializer=initializers.Constant(0.25))
        >>> layer(np.array([[-4.0, 2.0]])).numpy()
        array([[-1.,  2.]], dtype=float32)

    Reference:
        He et al., 2015, https://arxiv.org/abs/1502.01852
    """

    def __init__(self, alpha_initializer="Zeros", alpha_regularizer=None,
                 alpha_constraint=None, shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes = None
        elif isinstance(shared_axes, (list, tuple)):
            self.shared_axes = [int(a) for a in shared_axes]
        else:
            self.shared_axes = [int(shared_axes)]
        self.alpha = None

    def build(self, input_shape):
        rank = len(input_shape)
        param_shape = list(input_shape[1:])
        for axis in self.shared_axes or ():
            if not 1 <= axis < rank:
                raise ValueError(
                    f"PReLU `shared_axes` must lie in [1, {rank - 1}] for inputs of "
                    f"rank {rank}. Received: shared_axes={self.shared_axes}")
            param_shape[axis - 1] = 1
        if any(d is None for d in param_shape):
            raise ValueError(
                "PReLU needs a known size on every axis it does not share; received "
                f"input shape {tuple(input_shape)}, shared_axes={self.shared_axes}.")
        self.alpha = self.add_weight(
            shape=param_shape, initializer=self.alpha_initializer,
            regularizer=self.alpha_regularizer, constraint=self.alpha_constraint,
            name="alpha")
        self.built = True

    def call(self, inputs):
        x, alpha = inputs, self.alpha
        pos = x.data > 0
        y = np.where(pos, x.data, alpha.data * x.data)

        def vjp(g):  # dy/dx = 1 or alpha; dy/dalpha = min(x, 0), summed by the engine
            gx = np.where(pos, g, g * alpha.data) if x.requires_grad else None
            return gx, np.where(pos, 0, g * x.data)
        return Tensor.from_op(y, (x, alpha), vjp, "prelu")

    def get_config(self):
        return {**super().get_config(),
                "alpha_initializer": initializers.serialize(self.alpha_initializer),
                "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
                "alpha_constraint": constraints.serialize(self.alpha_constraint),
                "shared_axes": self.shared_axes}


class ELU(_SameShape, Layer):
    """Exponential linear unit layer: f(x) = x if x > 0 else alpha * (exp(x) - 1).

    Args:
        alpha: scale of the negative part. Defaults to 1.0.
        **kwargs: base layer arguments.

    Reference:
        Clevert et al., 2016, https://arxiv.org/abs/1511.07289
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha

    def call(self, inputs):
        return activations.elu(inputs, alpha=self.alpha)

    def get_config(self):
        # NOTE: Keras 3's ELU leaves `alpha` out of its config; we keep it (round trip).
        return {**super().get_config(), "alpha": self.alpha}


class Softmax(_SameShape, Layer):
    """Softmax layer: f(x) = exp(x - max x) / sum(exp(x - max x)) along `axis`.

    Args:
        axis: axis, or list of axes, to normalise over. Defaults to -1.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: the logits.
        mask: optional boolean array broadcastable to `inputs`; masked-out (False)
            positions get a large negative logit (-1e9, -3e4 in float16), hence ~0.

    Example:
        >>> Softmax()(np.array([[1.0, 2.0, 1.0]])).numpy().round(6)
        array([[0.211942, 0.576117, 0.211942]], dtype=float32)
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs, mask=None):
        if mask is not None:
            big = -3e4 if inputs.dtype == np.float16 else -1e9
            inputs = inputs + (1.0 - np.asarray(mask, dtype=inputs.dtype)) * big
        return activations.softmax(inputs, axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


__all__ = ["Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax"]
