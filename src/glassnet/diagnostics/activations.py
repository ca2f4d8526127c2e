"""Per-layer activation statistics, captured from a real forward pass.

`Capture` wraps the `call` of every watched leaf layer (an instance attribute, removed
afterwards), so the statistics come from the very forward pass that training runs: no
second pass, no side effects, and it works for Sequential, functional and subclassed
models alike. Per layer it records the activation mean / std / histogram, the saturated
fraction (sigmoid/tanh outputs within `SATURATION_MARGIN` of a bound), the dead fraction
(ReLU units whose output is 0 for every sample of the batch; None below 8 samples), the
pre-activation mean / std (for Dense with an activation, z = x @ W + b recomputed on the
sampled step; for an activation layer, its input) and, for BatchNormalization, the gap
between the batch and the moving statistics.
"""
from __future__ import annotations

import math

import numpy as np

from .. import activations as activations_mod
from ..layers.activation_layers import ELU, Activation, LeakyReLU, PReLU, ReLU, Softmax
from ..layers.input_layer import InputLayer
from ..layers.normalization import BatchNormalization, LayerNormalization

SATURATION_MARGIN = 0.02  # sigmoid output < 0.02 or > 0.98; tanh output |y| > 0.98
SATURATING = {"sigmoid": (0.0, 1.0), "hard_sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}
ZERO_FAMILY = {"relu", "relu6"}  # outputs exactly 0 below the threshold: units can die
DEAD_MIN_SAMPLES = 8  # fewer values per unit say nothing about death (0.5^8 = 0.4%)
RELU_LIKE = {"relu", "relu6", "leaky_relu", "prelu", "elu"}  # He init (gain 2) fits these
NORMALIZATION = (BatchNormalization, LayerNormalization)
_ACTIVATION_LAYERS = (Activation, ReLU, LeakyReLU, PReLU, ELU, Softmax)
_MISSING = object()


def leaf_layers(model) -> list:
    """Every layer without sublayers, depth first in the model's layer order."""
    out, seen = [], set()

    def visit(layer):
        subs = list(getattr(layer, "_layers", ()))
        if not subs:
            if id(layer) not in seen and not isinstance(layer, InputLayer):
                seen.add(id(layer))
                out.append(layer)
            return
        for sub in subs:
            visit(sub)
    for layer in getattr(model, "layers", model._layers):
        visit(layer)
    return out


def activation_kind(layer) -> str | None:
    """The name of the activation a layer applies ("relu", "sigmoid", ...), or None."""
    if isinstance(layer, ReLU):
        return "relu" if not layer.negative_slope else "leaky_relu"
    if isinstance(layer, LeakyReLU):
        return "leaky_relu"
    if isinstance(layer, PReLU):
        return "prelu"
    if isinstance(layer, ELU):
        return "elu"
    if isinstance(layer, Softmax):
        return "softmax"
    fn = getattr(layer, "activation", None)
    if fn is None or not callable(fn):
        return None
    try:
        name = activations_mod.serialize(fn)
    except TypeError:
        return getattr(fn, "__name__", None)
    return name if isinstance(name, str) else None


def is_activation_layer(layer) -> bool:
    return isinstance(layer, _ACTIVATION_LAYERS)


def _array(value):
    data = getattr(value, "data", value)
    return data if isinstance(data, np.ndarray) else None


def _moments(a: np.ndarray) -> tuple:
    """(mean, std, all_finite) in float64, over the finite values only."""
    finite = bool(np.isfinite(a).all())
    vals = a if finite else a[np.isfinite(a)]
    if vals.size == 0:
        return math.nan, math.nan, finite
    return float(vals.mean(dtype=np.float64)), float(vals.std(dtype=np.float64)), finite


def activation_stats(y: np.ndarray, kind: str | None, bins: int | None) -> dict:
    """Statistics of one layer output `y` (units on the last axis)."""
    mean, std, finite = _moments(y)
    stats = {"act_mean": mean, "act_std": std, "hist": None, "saturated": None,
             "dead": None, "nonfinite": not finite}
    if bins:
        vals = y if finite else y[np.isfinite(y)]
        lo_hi = SATURATING.get(kind)
        if vals.size:
            # NOTE: float64, or the bin arithmetic of a diverging float32 run overflows
            vals = vals.astype(np.float64, copy=False)
            if lo_hi is None:
                lo, hi = float(vals.min()), float(vals.max())
                scale = max(abs(lo), abs(hi))
                if hi - lo <= 1e-12 * scale:  # ~one value: numpy's +-0.5 is lost at 1e30
                    pad = 1e-3 * scale or 0.5
                    lo, hi = lo - pad, hi + pad
                lo_hi = (lo, hi)
            if math.isfinite(lo_hi[1] - lo_hi[0]):
                counts, edges = np.histogram(vals, bins=int(bins), range=lo_hi)
                stats["hist"] = (counts.tolist(), edges.tolist())
    if kind in SATURATING:
        lo, hi = SATURATING[kind]
        m = SATURATION_MARGIN
        stats["saturated"] = float(np.count_nonzero((y < lo + m) | (y > hi - m)) / y.size)
    rows = y.size // y.shape[-1] if y.ndim >= 2 and y.shape[-1] else 0
    if kind in ZERO_FAMILY and rows >= DEAD_MIN_SAMPLES:
        alive = np.any(y.reshape(-1, y.shape[-1]) != 0, axis=0)
        stats["dead"] = float(1.0 - np.count_nonzero(alive) / alive.size)
    return stats


def bn_gap(layer, x: np.ndarray) -> dict:
    """Batch vs moving statistics of a BatchNormalization input `x`, before the update.

    mean_gap = mean over channels of |batch_mean - moving_mean| / sqrt(moving_var + eps);
    var_ratio = geometric mean over channels of (batch_var + eps) / (moving_var + eps).
    """
    axis = layer.axis % x.ndim
    red = tuple(i for i in range(x.ndim) if i != axis)
    mu = x.mean(axis=red, dtype=np.float64)
    var = x.var(axis=red, dtype=np.float64)
    mm = np.asarray(layer.moving_mean.data, np.float64)
    mv = np.asarray(layer.moving_variance.data, np.float64) + layer.epsilon
    with np.errstate(all="ignore"):
        mean_gap = float(np.mean(np.abs(mu - mm) / np.sqrt(mv)))
        var_ratio = float(np.exp(np.mean(np.log((var + layer.epsilon) / mv))))
    return {"mean_gap": mean_gap, "var_ratio": var_ratio,
            "num_updates": int(layer.num_updates),
            "values_per_channel": int(x.size // max(x.shape[axis], 1))}


class Capture:
    """Records statistics of each watched layer during one forward pass.

    Use as a context manager, or `install()` / `remove()` around the forward pass.
    Only the first call of a layer is recorded (a shared layer counts once): each wrapper
    puts the layer's own `call` back as soon as it runs.

    Attributes:
        stats: {layer name: statistics dict}, in call order.
        order: layer names in the order they were called.
    """

    def __init__(self, layers, bins=30):
        self.layers = list(layers)
        self.bins = bins
        self.stats: dict = {}
        self.order: list = []
        self._saved: dict = {}  # id(layer) -> (layer, its previous instance `call`)

    def install(self):
        for layer in self.layers:
            if id(layer) not in self._saved:
                self._saved[id(layer)] = (layer, layer.__dict__.get("call", _MISSING))
                layer.__dict__["call"] = self._wrap(layer, layer.call)
        return self

    def remove(self):
        for key in list(self._saved):
            self._restore(key)

    def _restore(self, key):
        entry = self._saved.pop(key, None)
        if entry is not None:
            layer, previous = entry
            if previous is _MISSING:
                layer.__dict__.pop("call", None)
            else:
                layer.__dict__["call"] = previous

    def __enter__(self):
        return self.install()

    def __exit__(self, *exc):
        self.remove()

    def _wrap(self, layer, original):
        kind = activation_kind(layer)
        name = layer.name

        def call(inputs, *args, **kwargs):
            # NOTE: single use: the wrapper removes itself first, so that nothing stays
            # behind even when the forward pass raises before `remove()` runs.
            self._restore(id(layer))
            x = _array(inputs)
            pre = self._before(layer, kind, x, args, kwargs)
            out = original(inputs, *args, **kwargs)
            y = _array(out)
            stats = {"type": type(layer).__name__, "activation": kind}
            if y is not None:
                stats.update(activation_stats(y, kind, self.bins))
            stats.update(pre)
            self.stats[name] = stats
            self.order.append(name)
            return out
        call.__wrapped__ = original
        return call

    @staticmethod
    def _before(layer, kind, x, args, kwargs) -> dict:
        pre = {"pre_mean": None, "pre_std": None, "bn": None}
        if x is None:
            return pre
        if isinstance(layer, BatchNormalization) and layer.built:
            training = kwargs.get("training", args[0] if args else False)
            pre["bn"] = bn_gap(layer, x)
            pre["bn"]["training"] = bool(training and layer.trainable)
        elif is_activation_layer(layer):
            pre["pre_mean"], pre["pre_std"], _ = _moments(x)
        elif kind not in (None, "linear") and getattr(layer, "kernel", None) is not None \
                and x.shape[-1:] == layer.kernel.shape[:1]:
            with np.errstate(all="ignore"):  # z = x @ W + b, on sampled steps only
                z = np.matmul(x, layer.kernel.data)
                if getattr(layer, "bias", None) is not None:
                    z += layer.bias.data
            pre["pre_mean"], pre["pre_std"], _ = _moments(z)
        return pre
