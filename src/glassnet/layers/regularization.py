"""Noise layers for regularisation: AlphaDropout, GaussianNoise, GaussianDropout (Keras 3),
the always-on MCDropout / MCAlphaDropout (Géron) and the `mc_dropout` scope.

Each layer adds noise only while training and is the identity at inference. It owns a
generator (`seed`: an int gives the same noise sequence on every run). The VJP multiplies
by the same noise the forward drew, so a gradient check with a fixed seed passes.

Monte-Carlo dropout (Gal & Ghahramani, 2016) averages N stochastic predictions. Running
the model with `training=True` would also switch BatchNormalization to batch statistics
and update its moving averages, so glassnet has a scope instead: inside
`mc_dropout(model)` the dropout-family layers of `model` (Dropout, AlphaDropout,
GaussianDropout) drop at inference too, while every other layer stays in inference mode.
The scope sets a flag on those layer instances only and restores it on exit (no global
state). `glassnet.utils.mc_predict` uses it.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

from .. import backend
from ..autograd import Tensor
from .base import Layer
from .core import Dropout

# SELU constants (Klambauer et al., 2017), as in Keras.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _check_rate(layer: str, rate) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) \
            or not 0 <= rate < 1:
        raise ValueError(f"{layer} `rate` must be a float in [0, 1). Received: rate={rate!r}")
    return float(rate)


def _normal(rng, shape, dtype) -> np.ndarray:
    """Standard normal draws in `dtype` (float32 draws are cast for other dtypes)."""
    dtype = np.dtype(dtype)
    draw_dtype = dtype if dtype in (np.float32, np.float64) else np.float32
    return rng.standard_normal(shape, dtype=draw_dtype).astype(dtype, copy=False)


class _Noise:
    """Mix-in (not a Layer, so the registry skips it): output shape = input shape."""

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


class AlphaDropout(_Noise, Layer):
    """Dropout that keeps the mean and variance of SELU-normalised inputs.

    Dropped units are set to alpha' = -scale * alpha (SELU's negative saturation), then
    y = a * (x * k + alpha' * (1 - k)) + b with k ~ Bernoulli(1 - rate),
    a = ((1 - rate) * (1 + rate * alpha'^2))^-1/2 and b = -a * alpha' * rate.

    Args:
        rate: fraction of units to drop, in [0, 1).
        noise_shape: optional shape of the mask, broadcast against the input (None entries
            take the input's size). Defaults to None.
        seed: int seed of the layer's generator. Defaults to None.
        **kwargs: base layer arguments.

    Example:
        >>> layer = AlphaDropout(0.1, seed=0)
        >>> layer(np.ones((2, 3)), training=False).numpy()
        array([[1., 1., 1.],
               [1., 1., 1.]], dtype=float32)

    Reference:
        Klambauer et al., 2017, https://arxiv.org/abs/1706.02515
    """

    _mc_sampling = False  # set per instance by mc_dropout()

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _check_rate("AlphaDropout", rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self._rng = backend.make_rng(seed)

    def call(self, inputs, training=False):
        if not (training or self._mc_sampling) or self.rate == 0:
            return inputs
        shape = inputs.shape if self.noise_shape is None else tuple(
            s if n is None else n for n, s in zip(self.noise_shape, inputs.shape))
        kept = (self._rng.random(shape, dtype=np.float32) >= self.rate).astype(inputs.dtype)
        alpha_p = -_SELU_ALPHA * _SELU_SCALE
        a = ((1 - self.rate) * (1 + self.rate * alpha_p**2)) ** -0.5
        b = -a * alpha_p * self.rate
        scale = (a * kept).astype(inputs.dtype)                        # dy/dx = a * k
        shift = (a * alpha_p * (1 - kept) + b).astype(inputs.dtype)
        return Tensor.from_op(inputs.data * scale + shift, (inputs,),
                              lambda g: (g * scale,), "alpha_dropout")

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed,
                "noise_shape": None if self.noise_shape is None else list(self.noise_shape)}


class GaussianNoise(_Noise, Layer):
    """Adds zero-centred Gaussian noise while training: y = x + n, n ~ N(0, stddev^2).

    Not part of Monte-Carlo dropout (`mc_dropout` leaves it off at inference).

    Args:
        stddev: standard deviation of the noise, in [0, 1] (Keras' range).
        seed: int seed of the layer's generator. Defaults to None.
        **kwargs: base layer arguments.

    Example:
        >>> y = GaussianNoise(0.1, seed=0)(np.zeros((1000, 10)), training=True)
        >>> round(float(y.numpy().std()), 1)
        0.1
    """

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(stddev, bool) or not isinstance(
                stddev, (int, float, np.integer, np.floating)) or not 0 <= stddev <= 1:
            raise ValueError("GaussianNoise `stddev` must be a float in [0, 1]. "
                             f"Received: stddev={stddev!r}")
        self.stddev = float(stddev)
        self.seed = seed
        self._rng = backend.make_rng(seed)

    def call(self, inputs, training=False):
        if not training or self.stddev == 0:
            return inputs
        noise = _normal(self._rng, inputs.shape, inputs.dtype) * inputs.dtype.type(self.stddev)
        return Tensor.from_op(inputs.data + noise, (inputs,), lambda g: (g,),
                              "gaussian_noise")

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(_Noise, Layer):
    """Multiplicative 1-centred Gaussian noise while training: y = x * n,
    n ~ N(1, rate / (1 - rate)) (the variance of inverted Bernoulli dropout).

    Args:
        rate: drop probability of the equivalent dropout, in [0, 1).
        seed: int seed of the layer's generator. Defaults to None.
        **kwargs: base layer arguments.

    Example:
        >>> y = GaussianDropout(0.5, seed=0)(np.ones((1000, 10)), training=True)
        >>> round(float(y.numpy().std()), 1)
        1.0

    Reference:
        Srivastava et al., 2014, https://jmlr.org/papers/v15/srivastava14a.html
    """

    _mc_sampling = False  # set per instance by mc_dropout()

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _check_rate("GaussianDropout", rate)
        self.seed = seed
        self._rng = backend.make_rng(seed)

    def call(self, inputs, training=False):
        if not (training or self._mc_sampling) or self.rate == 0:
            return inputs
        stddev = inputs.dtype.type(math.sqrt(self.rate / (1.0 - self.rate)))
        noise = _normal(self._rng, inputs.shape, inputs.dtype) * stddev + inputs.dtype.type(1)
        return Tensor.from_op(inputs.data * noise, (inputs,), lambda g: (g * noise,),
                              "gaussian_dropout")

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class MCDropout(Dropout):
    """Dropout that is always on, at inference too (Monte-Carlo dropout, as in Géron).

    Same arguments as Dropout. Prefer `glassnet.utils.mc_predict`, which makes the plain
    Dropout layers of a trained model stochastic without changing the model.

    Example:
        >>> layer = MCDropout(0.5, seed=0)
        >>> bool((layer(np.ones((4, 4)), training=False).numpy() == 0).any())
        True

    Reference:
        Gal & Ghahramani, 2016, https://arxiv.org/abs/1506.02142
    """

    def call(self, inputs, training=False):
        return super().call(inputs, training=True)


class MCAlphaDropout(AlphaDropout):
    """AlphaDropout that is always on, at inference too (Monte-Carlo dropout for SELU nets).

    Same arguments as AlphaDropout.
    """

    def call(self, inputs, training=False):
        return super().call(inputs, training=True)


def _all_layers(root) -> list:
    """`root` and every sublayer, each once."""
    out, seen, stack = [], set(), [root]
    while stack:
        layer = stack.pop(0)
        if id(layer) not in seen:
            seen.add(id(layer))
            out.append(layer)
            stack.extend(getattr(layer, "_layers", ()))
    return out


@contextlib.contextmanager
def mc_dropout(model):
    """Scope in which the dropout-family layers of `model` also drop at inference.

    Dropout, AlphaDropout and GaussianDropout (any layer class with an `_mc_sampling`
    attribute) become stochastic with `training=False`; BatchNormalization and the rest
    stay in inference mode, so moving statistics are neither used in batch mode nor
    updated. The previous flags are restored on exit; scopes nest.

    Args:
        model: a Model or Layer.

    Yields:
        The list of layers made stochastic (empty when the model has no dropout).

    Example:
        >>> with mc_dropout(model):
        ...     samples = [model.predict(x, verbose=0) for _ in range(30)]
    """
    layers = [layer for layer in _all_layers(model) if hasattr(type(layer), "_mc_sampling")]
    saved = [(layer, layer.__dict__.get("_mc_sampling")) for layer in layers]
    for layer in layers:
        layer._mc_sampling = True
    try:
        yield layers
    finally:
        for layer, previous in saved:
            if previous is None:
                layer.__dict__.pop("_mc_sampling", None)
            else:
                layer._mc_sampling = previous


__all__ = ["AlphaDropout", "GaussianNoise", "GaussianDropout", "MCDropout",
           "MCAlphaDropout"]
