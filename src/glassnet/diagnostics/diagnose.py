"""diagnose(model, x, y): a one-shot health check on one batch, without training.

It runs one training-mode forward pass (and, given targets, one backward pass) on the first
`batch_size` samples, records the same per-layer statistics as `Monitor`, and runs every
detector. The model is left as it was: BatchNormalization moving statistics and update
counts, Dropout generators and the gradients are restored afterwards; no weight changes.
"""
from __future__ import annotations

import copy

import numpy as np

from .. import losses as losses_mod
from ..autograd import Tensor, no_grad, ops
from ..layers.core import Dropout
from ..layers.normalization import BatchNormalization
from . import detectors
from .activations import Capture, leaf_layers
from .gradients import first_nonfinite_weight, l2, weights_by_layer
from .monitor import make_record
from .report import Report, emit


def diagnose(model, x, y=None, batch_size=None, loss=None, histogram_bins=30, advice=True,
             verbose=1, thresholds=None) -> Report:
    """Check a model on one batch and return a `Report` of findings with advice.

    Records per layer the activation statistics (mean, std, histogram, saturated and
    dead fractions, pre-activation statistics, BN batch vs moving statistics) of one
    training-mode forward pass; with `y` (and a compiled model, or `loss=`) also the
    gradient norm of each weight. Then runs the detectors: init that does not fit the
    activation, saturation, dead ReLUs, vanishing/exploding gradients, unconverged BN
    statistics, a batch of one into BN, non-finite values.

    Args:
        model: a built model, or one that can be built from `x`.
        x: inputs; the first `batch_size` samples are used.
        y: targets, for the gradient checks. Defaults to None (activations only).
        batch_size: samples to use. Defaults to min(len(x), 256).
        loss: loss for an uncompiled model (a name or function). Defaults to the compiled
            loss.
        histogram_bins: bins of the activation histograms. Defaults to 30.
        advice: include plain-words advice. Defaults to True.
        verbose: 0 = silent; 1 = emit each error or warning as a `DiagnosticWarning`;
            2 = also print the report. Defaults to 1.
        thresholds: overrides of `detectors.THRESHOLDS`. Defaults to None.

    Returns:
        A `Report`; `report.records` holds the one record.

    Example:
        >>> report = model.diagnose(x_train, y_train)
        >>> print(report)
    """
    th = detectors.thresholds(thresholds)
    # NOTE: not `model.inputs`, which makes a Sequential model build a symbolic graph.
    multi = len(model.__dict__.get("_inputs") or ()) > 1
    n = _num_samples(x, multi)
    if n == 0:
        raise ValueError("diagnose() needs a non-empty batch `x`.")
    if not model.built:
        model.build((None,) + tuple(np.shape(x)[1:]))
    if batch_size is not None and int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be positive. Received: batch_size={batch_size}")
    bs = min(n, int(batch_size or 256))
    xb, yb = _head(x, bs, model.dtype, multi), (None if y is None else _head(y, bs, None,
                                                                               multi))
    layers = leaf_layers(model)
    report = Report(model.name, thresholds=th, advice=advice)
    found = detectors.check_init(layers, th)
    found += detectors.check_bn_convergence(layers, th)
    found += detectors.check_batch_size(layers, bs, th)
    training = not any(f.code == "bn_batch_of_one" for f in found)
    loss_fn = _loss_function(model, loss) if yb is not None else None
    weights = weights_by_layer(layers)
    grads, loss_value, gap = {}, None, None
    saved = _save_state(layers)
    capture = Capture(layers, histogram_bins)
    try:
        with capture:
            if loss_fn is not None and weights:
                y_pred = model(xb, training=training)
            else:
                with no_grad():
                    y_pred = model(xb, training=training)
        if loss_fn is not None and weights:
            loss_t = loss_fn(xb, yb, y_pred)
            loss_value = float(loss_t.data)
            loss_t.backward()
            grads = {name: {w.name: l2(w.grad) for w in ws} for name, ws in weights.items()}
        if _has_modes(layers):
            with no_grad():
                y_inf = model(xb, training=False).data
            gap = _relative_gap(y_pred.data, y_inf)
    finally:
        for w in model.weights:
            w.grad = None
        _restore_state(saved)
    record = make_record(layers, capture, grads, {}, step=None, epoch=None, batch=None,
                         loss=loss_value, batch_size=bs, train_inference_gap=gap)
    report.records.append(record)
    hit = detectors.nonfinite_in_record(record)
    if hit is None and first_nonfinite_weight(layers) is not None:
        hit = first_nonfinite_weight(layers)
        hit = (hit[0], f"weights ({hit[1]})")
    if hit is not None or (loss_value is not None and not np.isfinite(loss_value)):
        layer, what = hit or (None, "loss")
        found.append(detectors.nonfinite_finding(layer, what, {}, loss_value))
    found += detectors.check_record(record, th)
    for finding in found:
        if report.add(finding) and verbose:
            emit(finding, advice=advice)
    if verbose == 2:
        print(report, flush=True)
    return report


def _head(x, n, dtype, multi):
    """The first `n` samples of `x`, or of each input when `multi` (a list or dict of
    inputs of a multi-input model); integer inputs are cast to `dtype`."""
    if isinstance(x, dict):
        return {k: _head(v, n, dtype, False) for k, v in x.items()}
    if multi and isinstance(x, (list, tuple)):
        return [_head(a, n, dtype, False) for a in x]
    arr = np.asarray(x)[:n]
    return arr.astype(dtype) if dtype is not None and arr.dtype.kind in "iub" else arr


def _num_samples(x, multi) -> int:
    if isinstance(x, dict) or (multi and isinstance(x, (list, tuple))):
        x = next(iter(x.values())) if isinstance(x, dict) else x[0]
    return 0 if np.ndim(x) == 0 else len(x)


def _loss_function(model, loss):
    """fn(x, y, y_pred) -> scalar loss Tensor, or None when no loss is known."""
    if loss is None:
        if getattr(model, "compiled", False):
            return lambda xb, yb, yp: model.compute_loss(xb, yb, yp, training=True)
        return None
    fn = losses_mod.get(loss)

    def compute(xb, yb, yp):
        out = fn(yb, yp)
        out = out if isinstance(out, Tensor) else ops.tensor(out)
        return ops.mean(out) if out.ndim else out
    return compute


def _has_modes(layers) -> bool:
    """Whether training and inference mode differ (BatchNormalization, Dropout)."""
    return any(isinstance(l, (BatchNormalization, Dropout)) for l in layers)


def _relative_gap(a, b) -> float | None:
    base = l2(b)
    return None if not base else l2(np.asarray(a, np.float64) - b) / base


def _save_state(layers) -> list:
    """What a training-mode forward pass changes: BN statistics, Dropout generators."""
    saved = []
    for layer in layers:
        if isinstance(layer, BatchNormalization) and layer.built:
            saved.append((layer, "bn", (np.array(layer.moving_mean.data),
                                        np.array(layer.moving_variance.data),
                                        layer.num_updates)))
        rng = layer.__dict__.get("_rng")
        if isinstance(rng, np.random.Generator):
            saved.append((layer, "rng", copy.deepcopy(rng.bit_generator.state)))
    return saved


def _restore_state(saved) -> None:
    for layer, kind, state in saved:
        if kind == "bn":
            layer.moving_mean.assign(state[0])
            layer.moving_variance.assign(state[1])
            layer.num_updates = state[2]
        else:
            layer._rng.bit_generator.state = state
