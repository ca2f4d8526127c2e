"""Batch-norm statistics over a whole data set, and the warning about unconverged ones.

After a short training run, BatchNormalization's moving averages still remember their
initial values (mean 0, variance 1): with momentum m, a fraction m**t of the initial value
remains after t updates, so inference normalises with the wrong statistics.
`recalibrate_batchnorm` replaces them with the exact mean and (biased) variance of each
layer's inputs over the training set, one layer at a time.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ..autograd import Tensor, no_grad
from ..layers.normalization import BatchNormalization
from . import data as data_mod

_ADVICE = "glassnet.utils.recalibrate_batchnorm(model, x_train)"


class _Reached(Exception):
    """Raised by the capture hook to stop the forward pass at the layer being measured."""


class StreamingMoments:
    """Exact per-channel mean and biased variance, merged batch by batch in float64.

    merge (Chan et al.):  d = mean_b - mean;  n' = n + n_b;  mean' = mean + d * n_b / n';
    M2' = M2 + M2_b + d**2 * n * n_b / n';  variance = M2 / n

    Args:
        axis: The feature (channel) axis; every other axis is reduced.

    Reference:
        Chan, Golub & LeVeque, 1979, "Updating formulae and a pairwise algorithm for
        computing sample variances".
    """

    def __init__(self, axis=-1):
        self.axis = axis
        self.count = 0
        self.mean = None
        self.m2 = None

    def update(self, values) -> None:
        values = np.asarray(values)
        channels = values.shape[self.axis]
        flat = np.moveaxis(values, self.axis, -1).reshape(-1, channels).astype(np.float64)
        n_b = flat.shape[0]
        if n_b == 0:
            return
        mean_b = flat.mean(axis=0)
        m2_b = np.square(flat - mean_b).sum(axis=0)
        if self.count == 0:
            self.count, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n = self.count + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + np.square(delta) * (self.count * n_b / n)
        self.count = n

    @property
    def variance(self):
        return self.m2 / self.count


def batchnorm_layers(model) -> list:
    """Every BatchNormalization layer inside `model` (nested ones too), each once."""
    found, seen, stack = [], set(), [model]
    while stack:
        layer = stack.pop()
        for sub in reversed(getattr(layer, "_layers", [])):
            if id(sub) not in seen:
                seen.add(id(sub))
                stack.append(sub)
        if isinstance(layer, BatchNormalization) and layer is not model:
            found.append(layer)
    return found


def _patch_call(layer, hook):
    """Shadow `layer.call` with `hook` (an instance attribute); return the undo function."""
    previous = layer.__dict__.get("call")

    def undo():
        if previous is None:
            layer.__dict__.pop("call", None)
        else:
            layer.__dict__["call"] = previous
    layer.__dict__["call"] = hook
    return undo


def _call_order(model, probe) -> list:
    """The BatchNormalization layers in the order one forward pass calls them."""
    order, undo = [], []
    for layer in batchnorm_layers(model):
        original = layer.call

        def record(inputs, training=False, _layer=layer, _original=original, **kwargs):
            order.append(_layer)
            return _original(inputs, training=training, **kwargs)
        undo.append(_patch_call(layer, record))
    try:
        with no_grad():
            model(probe, training=False)
    finally:
        for fn in undo:
            fn()
    shared = {layer.name for layer in order if order.count(layer) > 1}
    if shared:
        raise ValueError(f"recalibrate_batchnorm needs each BatchNormalization layer to be "
                         f"called once per forward pass; {sorted(shared)} are called more "
                         "than once (shared layers), so their inputs have no single "
                         "distribution.")
    return order


def recalibrate_batchnorm(model, x, batch_size=256) -> dict:
    """Set every BatchNormalization layer's moving statistics to the exact statistics of its
    inputs over `x`, layer by layer, streaming `x` in batches.

    moving_mean = mean(inputs over x);  moving_variance = mean((inputs - moving_mean)**2)

    The layers are visited in the order the forward pass calls them. For each one, `x` is
    passed through the network in inference mode up to that layer (earlier layers use their
    already recalibrated statistics), and per-batch sums are merged exactly in float64
    (`StreamingMoments`), so memory stays at one batch. Works for any model whose layers
    are called through `layer.call` (Sequential, functional, subclassed, nested models).
    Frozen layers (`trainable=False`) are recalibrated too.

    Args:
        model: A built model (or one that builds on its first call).
        x: Input data (array of samples, batch axis first), typically the training set.
        batch_size: Samples per forward pass. Defaults to 256.

    Returns:
        dict: name of each recalibrated BatchNormalization layer -> number of samples used.

    Example:
        >>> model.fit(x_train, y_train, epochs=2)
        >>> glassnet.utils.recalibrate_batchnorm(model, x_train)
        {'batch_normalization': 60000}

    Reference:
        The "population statistics" of Ioffe & Szegedy, 2015, sec. 3.1
        (https://arxiv.org/abs/1502.03167).
    """
    x = data_mod.to_array(x, "x")
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"`x` is empty (shape {x.shape}): recalibrate_batchnorm needs the "
                         "training inputs to measure statistics on.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: "
                         f"batch_size={batch_size!r}")
    order = _call_order(model, x[:min(len(x), 2)])
    from .trainer import _blas_scope  # same tier; imported late (trainer imports us)
    counts = {}
    with _blas_scope(model, int(batch_size)):
        for layer in order:
            moments = StreamingMoments(layer.axis)

            def capture(inputs, training=False, _moments=moments, **kwargs):
                _moments.update(inputs.data if isinstance(inputs, Tensor) else inputs)
                raise _Reached
            undo = _patch_call(layer, capture)
            try:
                for start in range(0, len(x), int(batch_size)):
                    try:
                        with no_grad():
                            model(x[start:start + int(batch_size)], training=False)
                    except _Reached:
                        continue
                    raise RuntimeError(f"The forward pass did not reach layer "
                                       f"{layer.name!r} for the batch at sample {start}.")
            finally:
                undo()
            layer.moving_mean.assign(moments.mean)
            layer.moving_variance.assign(moments.variance)
            layer.__dict__["_recalibrated_samples"] = len(x)
            counts[layer.name] = len(x)
    return counts


def updates_needed(momentum: float) -> float:
    """Updates after which the initial value weighs < e**-3 (5%): about 3 / (1 - momentum)."""
    if momentum >= 1.0:
        return math.inf
    return math.ceil(round(3.0 / (1.0 - momentum), 9))  # round: 3 / (1 - 0.9) = 30.000…04


def warn_unconverged_batchnorm(model) -> None:
    """Warn (once per layer) about BatchNormalization layers whose moving statistics have
    seen fewer than about 3 / (1 - momentum) training updates, and suggest recalibration.

    Layers never updated in this process (fresh, loaded or frozen ones) and recalibrated
    layers are not reported. Called by the trainer at evaluate() and predict().
    """
    for layer in batchnorm_layers(model):
        updates = getattr(layer, "num_updates", 0)
        if updates <= 0 or layer.__dict__.get("_bn_warned") \
                or layer.__dict__.get("_recalibrated_samples"):
            continue
        needed = updates_needed(layer.momentum)
        if updates >= needed:
            continue
        layer.__dict__["_bn_warned"] = True
        warnings.warn(
            f"BatchNormalization layer {layer.name!r} has updated its moving statistics "
            f"only {updates} times, but with momentum={layer.momentum} they need about "
            f"{needed} updates (3 / (1 - momentum)) to forget their initial values "
            "(mean 0, variance 1): inference uses biased statistics. Train longer, lower "
            "the momentum, or compute exact statistics over the training set with "
            f"{_ADVICE}.", UserWarning, stacklevel=3)


__all__ = ["StreamingMoments", "batchnorm_layers", "recalibrate_batchnorm",
           "updates_needed", "warn_unconverged_batchnorm"]
