"""Monitor: a callback that samples per-layer statistics every N training steps.

On a sampled step it wraps the watched layers' `call` and `optimizer.step` for the length
of that one step (see `Capture` and `StepProbe`), so the statistics come from the training
step itself; other steps cost one float comparison (the loss is checked for NaN/inf).
"""
from __future__ import annotations

import math

from ..training.callbacks import Callback
from . import detectors
from .activations import Capture, leaf_layers
from .gradients import StepProbe, buffer_grad_norms, first_nonfinite_weight, weights_by_layer
from .report import Report, emit

_EMPTY = {"type": None, "activation": None, "act_mean": None, "act_std": None, "hist": None,
          "saturated": None, "dead": None, "nonfinite": False, "pre_mean": None,
          "pre_std": None, "bn": None}


def make_record(layers, capture, grad_norm, update_ratio, **meta) -> dict:
    """One record: {"step", "epoch", "batch", "loss", "layers": {name: stats}} with the
    layers in call order (layers that were not called come last)."""
    names = list(capture.order) + [l.name for l in layers if l.name not in capture.stats]
    by_name = {l.name: l for l in layers}
    out = {}
    for name in names:
        stats = dict(capture.stats.get(name) or _EMPTY)
        if stats["type"] is None:
            stats["type"] = type(by_name[name]).__name__ if name in by_name else None
        stats["grad_norm"] = dict(grad_norm.get(name, {}))
        stats["update_ratio"] = dict(update_ratio.get(name, {}))
        out[name] = stats
    return {**meta, "layers": out}


class Monitor(Callback):
    """Records per-layer training statistics every `every` steps and warns about problems.

    Per sampled step and layer: activation mean / std / histogram, saturated fraction
    (sigmoid or tanh outputs within 0.02 of a bound), dead fraction (ReLU units that output
    0 for the whole batch), pre-activation mean / std, the gradient norm of each weight,
    the update-to-weight ratio ||dw|| / ||w|| and, for BatchNormalization, the gap between
    batch and moving statistics. Detectors turn them into `DiagnosticWarning`s with advice
    (see `glassnet.diagnostics.detectors.THRESHOLDS`); all findings also go to `report`.

    Args:
        every: sample one training step in `every` (steps counted over all epochs and
            fits, the first one included). Defaults to 50.
        layers: names (or Layer objects) of the layers to watch; None watches every leaf
            layer. Defaults to None.
        histogram_bins: bins of the activation histograms; 0 or None skips them.
            Defaults to 30.
        advice: add plain-words advice to the warnings and the report. Defaults to True.
        verbose: 0 = findings only go to `report`; 1 = each new error or warning is also
            emitted once through `warnings`; 2 = also print the report when training ends.
            Defaults to 1.
        thresholds: overrides of `detectors.THRESHOLDS` keys. Defaults to None.

    Attributes:
        records: one dict per sampled step (format in the `glassnet.diagnostics` docstring).
        report: a `Report` with the findings and `records`.

    Example:
        >>> monitor = Monitor(every=20)
        >>> model.fit(x, y, epochs=3, callbacks=[monitor])
        >>> print(monitor.report)
        >>> [r["layers"]["dense"]["act_std"] for r in monitor.records]
    """

    def __init__(self, every=50, layers=None, histogram_bins=30, advice=True, verbose=1,
                 thresholds=None):
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"`every` must be an integer >= 1. Received: every={every!r}")
        if verbose not in (0, 1, 2):
            raise ValueError(f"`verbose` must be 0, 1 or 2. Received: verbose={verbose!r}")
        self.every = every
        self.layer_names = None if layers is None else [getattr(l, "name", l) for l in layers]
        self.histogram_bins = histogram_bins
        self.advice = bool(advice)
        self.verbose = verbose
        self.thresholds = detectors.thresholds(thresholds)
        self.records: list = []
        self.report = Report(records=self.records, thresholds=self.thresholds,
                             advice=self.advice)
        self.steps_seen = 0
        self._epoch = 0
        self._capture = self._probe = None
        self._nonfinite_done = False

    # ---- setup --------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._uninstall()
        model = self.model
        self._all = leaf_layers(model)
        if self.layer_names is None:
            self._watched = self._all
        else:
            by_name = {l.name: l for l in self._all}
            missing = [n for n in self.layer_names if n not in by_name]
            if missing:
                raise ValueError(f"Monitor(layers=...) names unknown layers {missing}. "
                                 f"Layers of {model.name!r}: {sorted(by_name)}")
            self._watched = [by_name[n] for n in self.layer_names]
        self._weights = weights_by_layer(self._watched)
        self.report.model_name = model.name
        self._add(detectors.check_init(self._all, self.thresholds))
        self._add(detectors.check_batch_size(self._all, self.params.get("batch_size"),
                                             self.thresholds))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    # ---- sampled steps ------------------------------------------------------------------
    def on_train_batch_begin(self, batch, logs=None):
        if self.steps_seen % self.every == 0:
            self._capture = Capture(self._watched, self.histogram_bins).install()
            optimizer = getattr(self.model, "optimizer", None)
            self._probe = StepProbe(optimizer, self._weights).install() \
                if optimizer is not None else None

    def on_train_batch_end(self, batch, logs=None):
        step = self.steps_seen
        self.steps_seen += 1
        loss = logs.get("loss") if logs else None
        if self._capture is None:  # an unsampled step: one NaN check of the loss
            if loss is not None and not self._nonfinite_done and not math.isfinite(loss):
                self._check_nonfinite(None, float(loss), self._where(batch, step))
            return
        where = self._where(batch, step)
        loss = float(loss) if loss is not None else None
        capture, probe = self._capture, self._probe
        self._uninstall()
        if probe is not None and probe.fired:
            grads, updates = probe.grad_norm, probe.update_ratio
        else:  # a custom step that bypassed optimizer.step: the optimizer's grad buffer
            grads, updates = buffer_grad_norms(self._weights), {}
        record = make_record(self._watched, capture, grads, updates, **where, loss=loss)
        previous = self.records[-1] if self.records else None
        self.records.append(record)
        self._check_nonfinite(record, loss, where)
        self._add(detectors.check_record(record, self.thresholds, previous))

    def on_train_end(self, logs=None):
        self._uninstall()
        self._add(detectors.check_bn_convergence(
            self._all, self.thresholds, {"epoch": self._epoch, "step": self.steps_seen}))
        if self.verbose == 2:
            print(self.report, flush=True)

    # ---- helpers ------------------------------------------------------------------------
    def _where(self, batch, step) -> dict:
        return {"epoch": self._epoch, "batch": batch, "step": step}

    def _uninstall(self):
        if self._capture is not None:
            self._capture.remove()
        if self._probe is not None:
            self._probe.remove()
        self._capture = self._probe = None

    def _check_nonfinite(self, record, loss, where):
        """Name the first layer and batch where a NaN or inf shows up, once."""
        if self._nonfinite_done:
            return
        hit = detectors.nonfinite_in_record(record) if record is not None else None
        if hit is None:
            w = first_nonfinite_weight(self._all)
            if w is not None:
                hit = (w[0], f"weights ({w[1]}) after the update")
        if hit is None and (loss is None or math.isfinite(loss)):
            return
        self._nonfinite_done = True
        layer, what = hit or (None, "loss, while every weight is still finite (check the "
                                    "data of this batch)")
        self._add([detectors.nonfinite_finding(layer, what, where, loss)])

    def _add(self, findings):
        for finding in findings:
            if self.report.add(finding) and self.verbose:
                emit(finding, advice=self.advice)
