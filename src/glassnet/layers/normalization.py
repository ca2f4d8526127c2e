"""Normalization layers: BatchNormalization and LayerNormalization (Keras 3 semantics)."""
from __future__ import annotations

import numpy as np

from .. import constraints, initializers, regularizers
from ..autograd import fused, ops
from .base import Layer, shape_str


def _ser(init):
    return initializers.serialize(init)


class BatchNormalization(Layer):
    """Normalizes each feature with batch statistics while training, moving statistics otherwise.

    y = gamma * (x - mean) / sqrt(var + epsilon) + beta
    moving_mean = momentum * moving_mean + (1 - momentum) * batch_mean   (same for variance)

    Training mode (`training=True` and `trainable`) uses the batch's mean and biased
    variance and updates the moving statistics; inference uses the moving statistics.
    A layer with `trainable=False` always runs in inference mode and never updates its
    statistics (Keras 3 semantics, the right thing for fine-tuning).

    Args:
        axis: the feature axis (normalised separately). Defaults to -1.
        momentum: retention of the moving averages (Keras convention: 0.99 here is PyTorch's
            momentum=0.01). Defaults to 0.99.
        epsilon: added to the variance. Defaults to 1e-3.
        center: learn an offset beta. Defaults to True.
        scale: learn a scale gamma. Defaults to True.
        beta_initializer, gamma_initializer, moving_mean_initializer,
        moving_variance_initializer: defaults "zeros", "ones", "zeros", "ones".

    Reference:
        Ioffe & Szegedy, 2015, https://arxiv.org/abs/1502.03167
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, synchronized=False, **kwargs):
        kwargs.pop("renorm", None)
        kwargs.pop("fused", None)
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            if len(axis) != 1:
                raise ValueError(f"BatchNormalization supports one feature axis. "
                                 f"Received: axis={axis!r}")
            axis = axis[0]
        self.axis = int(axis)
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"`momentum` must be in [0, 1]. Received: momentum={momentum!r}")
        if float(epsilon) <= 0:
            raise ValueError(f"`epsilon` must be positive. Received: epsilon={epsilon!r}")
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.synchronized = synchronized
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None
        self.num_updates = 0  # how many batches the moving statistics have seen

    def build(self, input_shape):
        ndim = len(input_shape)
        if not -ndim <= self.axis < ndim:
            raise ValueError(f"Layer {self.name!r}: axis {self.axis} is out of range for "
                             f"inputs of shape {shape_str(input_shape)}.")
        channels = input_shape[self.axis]
        if channels is None:
            raise ValueError(f"Layer {self.name!r}: the feature axis {self.axis} must have "
                             f"a known size; received {shape_str(input_shape)}.")
        shape = (channels,)
        if self.scale:
            self.gamma = self.add_weight(shape=shape, initializer=self.gamma_initializer,
                                         regularizer=self.gamma_regularizer,
                                         constraint=self.gamma_constraint, name="gamma")
        if self.center:
            self.beta = self.add_weight(shape=shape, initializer=self.beta_initializer,
                                        regularizer=self.beta_regularizer,
                                        constraint=self.beta_constraint, name="beta")
        self.moving_mean = self.add_weight(shape=shape, initializer=self.moving_mean_initializer,
                                           trainable=False, name="moving_mean")
        self.moving_variance = self.add_weight(
            shape=shape, initializer=self.moving_variance_initializer, trainable=False,
            name="moving_variance")
        self.built = True

    def call(self, inputs, training=False):
        if training and self.trainable:
            per_channel = inputs.size // max(inputs.shape[self.axis], 1)
            if per_channel < 2:
                raise ValueError(
                    f"Layer {self.name!r} (BatchNormalization) received {per_channel} value per "
                    f"channel in training mode (input shape {shape_str(inputs.shape)}): the "
                    "batch variance is 0 and the output would be just beta. Use batches of at "
                    "least 2 samples (fit merges a last batch of 1 into the one before)."
                )
            out, _, _ = fused.batch_norm_train(
                inputs, self.gamma, self.beta, axis=self.axis, epsilon=self.epsilon,
                moving=(self.moving_mean.data, self.moving_variance.data, self.momentum))
            self.num_updates += 1
            return out
        return fused.batch_norm_inference(inputs, self.gamma, self.beta, self.moving_mean,
                                          self.moving_variance, axis=self.axis,
                                          epsilon=self.epsilon)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(), "axis": self.axis, "momentum": self.momentum,
            "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
            "beta_initializer": _ser(self.beta_initializer),
            "gamma_initializer": _ser(self.gamma_initializer),
            "moving_mean_initializer": _ser(self.moving_mean_initializer),
            "moving_variance_initializer": _ser(self.moving_variance_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": constraints.serialize(self.beta_constraint),
            "gamma_constraint": constraints.serialize(self.gamma_constraint),
            "synchronized": self.synchronized,
        }


class LayerNormalization(Layer):
    """Normalizes each sample over `axis`: y = gamma * (x - mean) / sqrt(var + epsilon) + beta.

    Statistics are per sample (no batch dependence, same in training and inference).

    Args:
        axis: axis or axes to normalise over. Defaults to -1.
        epsilon: defaults to 1e-3 (Keras).
        center, scale: learn beta / gamma. Default True.

    Reference:
        Ba, Kiros & Hinton, 2016, https://arxiv.org/abs/1607.06450
    """

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, rms_scaling=False,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.axis = tuple(axis) if isinstance(axis, (list, tuple)) else int(axis)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.rms_scaling = bool(rms_scaling)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.gamma = self.beta = None

    def _axes(self, ndim):
        axes = self.axis if isinstance(self.axis, tuple) else (self.axis,)
        return tuple(sorted(a % ndim for a in axes))

    def build(self, input_shape):
        axes = self._axes(len(input_shape))
        shape = tuple(input_shape[a] for a in axes)
        if self.scale:
            self.gamma = self.add_weight(shape=shape, initializer=self.gamma_initializer,
                                         name="gamma")
        if self.center and not self.rms_scaling:
            self.beta = self.add_weight(shape=shape, initializer=self.beta_initializer,
                                        name="beta")
        self.built = True

    def call(self, inputs):
        axes = self._axes(inputs.ndim)
        pshape = tuple(inputs.shape[a] if a in axes else 1 for a in range(inputs.ndim))
        eps = np.asarray(self.epsilon, dtype=inputs.dtype)
        if self.rms_scaling:
            ms = ops.mean(ops.square(inputs), axis=axes, keepdims=True)
            y = ops.divide(inputs, ops.sqrt(ops.add(ms, eps)))
        else:
            mu = ops.mean(inputs, axis=axes, keepdims=True)
            xc = ops.subtract(inputs, mu)
            var = ops.mean(ops.square(xc), axis=axes, keepdims=True)
            y = ops.divide(xc, ops.sqrt(ops.add(var, eps)))
        if self.gamma is not None:
            y = ops.multiply(y, ops.reshape(self.gamma, pshape))
        if self.beta is not None:
            y = ops.add(y, ops.reshape(self.beta, pshape))
        return y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(),
                "axis": list(self.axis) if isinstance(self.axis, tuple) else self.axis,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "rms_scaling": self.rms_scaling,
                "beta_initializer": _ser(self.beta_initializer),
                "gamma_initializer": _ser(self.gamma_initializer)}


__all__ = ["BatchNormalization", "LayerNormalization"]
