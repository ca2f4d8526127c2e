"""Gradient norms, update-to-weight ratios and non-finite checks, per weight.

`StepProbe` wraps `optimizer.step` (an instance attribute, only on sampled steps): it reads
each watched weight's gradient just before the update, i.e. the raw gradient of the loss
before any clipping or loss scaling, copies the weights, lets the optimizer step, then
measures the update:

    grad_norm = ||g||_2          update_ratio = ||w_after - w_before||_2 / ||w_before||_2

A healthy update ratio is around 1e-3 (Karpathy's rule of thumb); the ratio is None for a
weight whose norm is 0 (a bias initialised to zeros). When the probe did not fire (a
custom training step that bypasses `optimizer.step`), `buffer_grad_norms` reads the last
gradient that the optimizer left in its flat buffer (`Variable._grad_buffer`).
"""
from __future__ import annotations

import math

import numpy as np

_MISSING = object()


def l2(a) -> float | None:
    """The L2 norm of an array in float64 (so that float32 overflow shows as inf, not as
    a wrong finite value), or None for no array."""
    if a is None:
        return None
    a = np.asarray(getattr(a, "data", a), dtype=np.float64).ravel()
    with np.errstate(all="ignore"):
        return float(math.sqrt(float(np.dot(a, a)))) if a.size else 0.0


def weights_by_layer(layers) -> dict:
    """{layer name: [trainable Variables of that layer]} for the layers that have some."""
    out = {}
    for layer in layers:
        ws = [w for w in getattr(layer, "_weights", ()) if w.trainable]
        if ws:
            out[layer.name] = ws
    return out


def combined(norms: dict) -> float | None:
    """sqrt of the sum of squares of the non-None norms in {name: norm}, or None."""
    vals = [v for v in norms.values() if v is not None]
    return math.sqrt(sum(v * v for v in vals)) if vals else None


class StepProbe:
    """Measures gradient norms and update ratios around one `optimizer.step` call.

    Attributes:
        fired: whether `optimizer.step` ran while the probe was installed.
        grad_norm, update_ratio: {layer name: {weight name: float or None}}.
    """

    def __init__(self, optimizer, weights: dict):
        self.optimizer, self.weights = optimizer, weights
        self.fired = False
        self.grad_norm: dict = {}
        self.update_ratio: dict = {}
        self._previous = _MISSING
        self._installed = False

    def install(self):
        opt = self.optimizer
        self._installed = True
        self._previous = opt.__dict__.get("step", _MISSING)
        original = opt.step

        def step(variables, *args, **kwargs):
            self.remove()  # single use, like Capture's wrappers
            self.fired = True
            before = {}
            for layer, ws in self.weights.items():
                self.grad_norm[layer] = {w.name: l2(w.grad) for w in ws}
                before[layer] = [(w, np.array(w.data, copy=True)) for w in ws]
            result = original(variables, *args, **kwargs)
            for layer, pairs in before.items():
                self.update_ratio[layer] = {w.name: _ratio(w.data, old) for w, old in pairs}
            return result
        step.__wrapped__ = original
        opt.__dict__["step"] = step
        return self

    def remove(self):
        if not self._installed:
            return
        self._installed = False
        if self._previous is _MISSING:
            self.optimizer.__dict__.pop("step", None)
        else:
            self.optimizer.__dict__["step"] = self._previous
        self._previous = _MISSING


def _ratio(new, old) -> float | None:
    base = l2(old)
    if not base:
        return None
    with np.errstate(all="ignore"):
        return l2(np.asarray(new, np.float64) - old) / base


def buffer_grad_norms(weights: dict) -> dict:
    """Gradient norms from each weight's slot of the optimizer's flat gradient buffer (the
    last step's gradient, after clipping), or from `.grad` when it is not packed."""
    return {layer: {w.name: l2(w._grad_buffer if w._grad_buffer is not None else w.grad)
                    for w in ws} for layer, ws in weights.items()}


def first_nonfinite_weight(layers) -> tuple | None:
    """(layer name, weight name) of the first weight, in layer order, holding a NaN or an
    infinity; None when every weight is finite."""
    for layer in layers:
        for w in getattr(layer, "_weights", ()):
            if not np.isfinite(w.data).all():
                return layer.name, w.name
    return None
