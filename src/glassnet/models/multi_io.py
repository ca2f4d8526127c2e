"""Several inputs and outputs through the array-based Trainer (mixed into Functional).

The Trainer batches one `x` array and one `y` array. For a model with several inputs
(or outputs) the arrays are flattened and laid side by side in one float matrix for the
batching loop; `call` splits the input matrix again, and while training it returns the
outputs laid side by side too. The compiled loss and the metrics are wrappers that cut
their output's columns out of those matrices:

    loss = sum_i loss_weight_i * loss_i(y_i, y_pred_i)      (Keras 3 multi-output loss)
    logs: loss, <output>_loss, <output>_<metric>             (Keras 3 names)

Integer targets (sparse labels) survive the float32 round trip exactly up to 2**24.
"""
from __future__ import annotations

import numpy as np

from .. import backend, losses as losses_mod, metrics as metrics_mod
from ..autograd import Tensor, no_grad, ops
from ..layers.base import shape_str
from ..layers.input_layer import flatten
from .graph import _restructure


class MultiIOTraining:
    """fit/evaluate/predict/*_on_batch/compile for lists and dicts of inputs and outputs."""

    _packed_layout = None   # inputs: [(sample shape, dtype)] while a Trainer method runs
    _y_layout = None        # targets: the same, for multi-output training
    _pack_outputs = False   # call() returns the outputs side by side

    # ---- compile --------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, **kwargs):
        """Keras `compile`; with several outputs, `loss`, `loss_weights` and `metrics` may
        be one value for all outputs, a list (one per output) or a dict by output name."""
        names = self.output_names
        if len(names) == 1:
            unwrap = _single if loss is not None else (lambda v, n: v)
            return super().compile(optimizer, unwrap(loss, names), loss_weights=None,
                                   metrics=_single_metrics(metrics, names),
                                   weighted_metrics=_single_metrics(weighted_metrics, names),
                                   **kwargs)
        if loss is None:
            raise ValueError("compile() needs a `loss`: one for all outputs, a list or a "
                             f"dict keyed by output name {names}.")
        fns = [losses_mod.get(spec) for spec in _per_output(loss, names, "loss")]
        weights = [1.0 if w is None else float(w) for w in _per_output(
            1.0 if loss_weights is None else loss_weights, names, "loss_weights")]
        specs = _per_output(loss, names, "loss")
        trackers = [_OutputMetric(self, i, fn, name=f"{names[i]}_loss", is_loss=True)
                    for i, fn in enumerate(fns)]
        plain = [_OutputMetric(self, i, spec, name=None, loss=specs[i])
                 for i, group in enumerate(_per_output_metrics(metrics, names))
                 for spec in group]
        weighted = [_OutputMetric(self, i, spec, name=None, loss=specs[i])
                    for i, group in enumerate(_per_output_metrics(weighted_metrics, names))
                    for spec in group]
        super().compile(optimizer, _MultiOutputLoss(self, fns, weights),
                        metrics=trackers + plain, weighted_metrics=weighted or None, **kwargs)
        self._multi_compile = {"loss": loss, "loss_weights": loss_weights,
                               "metrics": metrics, "weighted_metrics": weighted_metrics}

    # ---- the Trainer entry points ---------------------------------------------------------
    def fit(self, x=None, y=None, *args, **kwargs):
        return self._packed(super().fit, x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        return self._packed(super().evaluate, x, y, *args, **kwargs)

    def train_on_batch(self, x, y=None, *args, **kwargs):
        return self._packed(super().train_on_batch, x, y, *args, **kwargs)

    def test_on_batch(self, x, y=None, *args, **kwargs):
        return self._packed(super().test_on_batch, x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        if len(self._outputs) == 1:
            return self._packed(super().predict, x, None, *args, predicting=True, **kwargs)
        batch_size = int(kwargs.get("batch_size") or (args[0] if args else None) or 32)
        packed = self._pack_x(x)
        try:  # NOTE: one array per output, concatenated over batches
            parts = []
            for a in range(0, len(packed), batch_size):
                with no_grad():
                    out = self(packed[a:a + batch_size], training=False)
                parts.append([np.asarray(o.data) for o in flatten(out)])
        finally:
            self._packed_layout = None
        return _restructure(self._output_struct, self._outputs,
                            [np.concatenate(p, axis=0) for p in zip(*parts)])

    def predict_on_batch(self, x):
        n = len(flatten(x)[0]) if isinstance(x, (list, tuple, dict)) else len(x)
        return self.predict(x, batch_size=max(n, 1))

    def _packed(self, method, x, y=None, *args, predicting=False, **kwargs):
        packed_x = self._pack_x(x)
        several = len(self._outputs) > 1
        if several and y is not None:
            self._y_layout, y = _pack(self._bind_targets(y), "targets", self.name,
                                      self.output_names, [t.shape for t in self._outputs])
        validation = kwargs.get("validation_data")
        if validation is not None:
            validation = list(validation)
            validation[0] = self._pack_x(validation[0])
            if several:
                layout, validation[1] = _pack(self._bind_targets(validation[1]), "targets",
                                              self.name, self.output_names,
                                              [t.shape for t in self._outputs])
                if layout != self._y_layout:
                    raise ValueError(f"Model {self.name!r}: validation targets must have the "
                                     "shapes and dtypes of the training targets.")
            kwargs["validation_data"] = tuple(validation)
        self._pack_outputs = several
        try:
            if predicting:
                return method(packed_x, *args, **kwargs)
            return method(packed_x, y, *args, **kwargs)
        finally:
            self._packed_layout, self._pack_outputs = None, False

    # ---- packing ----------------------------------------------------------------------------
    def _pack_x(self, x):
        if len(self._inputs) == 1 or x is None or not isinstance(x, (list, tuple, dict)):
            if isinstance(x, (list, tuple)) and len(x) == 1:
                return x[0]
            if isinstance(x, dict) and len(x) == 1:
                return next(iter(x.values()))
            return x
        layout, packed = _pack(self._bind_arrays(x), "inputs", self.name, self.input_names,
                               [t.shape for t in self._inputs])
        self._packed_layout = layout
        return packed

    def _bind_arrays(self, x) -> list:
        keys = list(self._input_struct) if isinstance(self._input_struct, dict) \
            else self.input_names
        return _bind(x, keys, "inputs", self.name)

    def _bind_targets(self, y) -> list:
        keys = list(self._output_struct) if isinstance(self._output_struct, dict) \
            else self.output_names
        return _bind(y, keys, "targets", self.name)

    def _packed_outputs(self, outs):
        """The outputs side by side (training with several outputs)."""
        n = outs[0].shape[0]
        return ops.concatenate([ops.reshape(o, (n, -1)) for o in outs], axis=1)


def _bind(values, keys, what, model_name) -> list:
    if isinstance(values, dict):
        missing = [k for k in keys if k not in values]
        if missing:
            raise ValueError(f"Model {model_name!r} expects {what} named {keys}; the dict "
                             f"passed has keys {list(values)} (missing {missing}).")
        return [values[k] for k in keys]
    if not isinstance(values, (list, tuple)) or len(values) != len(keys):
        got = len(values) if isinstance(values, (list, tuple)) else f"one {type(values).__name__}"
        raise ValueError(f"Model {model_name!r} expects {len(keys)} {what} {keys} (a list or "
                         f"a dict), received {got}.")
    return list(values)


def _pack(arrays, what, model_name, names, shapes):
    """([(sample shape, dtype)], one float matrix) for arrays laid side by side."""
    arrays = [np.asarray(a.data if isinstance(a, Tensor) else a) for a in arrays]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"All {what} of model {model_name!r} must have the same number of "
                         f"samples; received {[len(a) for a in arrays]} for {names}.")
    layout = []
    for name, shape, a in zip(names, shapes, arrays):
        if what == "inputs" and (len(a.shape) != len(shape) or any(
                e is not None and s != e for s, e in zip(a.shape[1:], shape[1:]))):
            raise ValueError(f"Input {name!r} of model {model_name!r} is incompatible: "
                             f"expected shape {shape_str(shape)}, received shape "
                             f"{shape_str(a.shape)}.")
        layout.append((tuple(a.shape[1:]), a.dtype if a.dtype.kind != "f" else
                       np.dtype(backend.floatx())))
    dtype = np.dtype(backend.floatx())
    return layout, np.concatenate([a.reshape(n, -1).astype(dtype, copy=False)
                                   for a in arrays], axis=1)


def split_arrays(data, layout) -> list:
    """Inverse of `_pack` for arrays (or Tensors: differentiable column slices)."""
    out, start, n = [], 0, data.shape[0]
    for shape, dtype in layout:
        size = int(np.prod(shape)) if shape else 1
        if isinstance(data, Tensor):
            part = ops.reshape(ops.getitem(data, (slice(None), slice(start, start + size))),
                               (n,) + tuple(shape))
        else:
            part = data[:, start:start + size].reshape((n,) + tuple(shape)).astype(
                dtype, copy=False)
        out.append(part)
        start += size
    return out


def _output_layout(model):
    return [(tuple(t.shape[1:]), np.dtype(backend.floatx())) for t in model._outputs]


class _MultiOutputLoss(losses_mod.Loss):
    """sum_i w_i * loss_i(y_i, y_pred_i) over the column blocks of packed y and y_pred."""

    def __init__(self, model, fns, weights):
        super().__init__(name="multi_output_loss")
        self.model, self.fns, self.weights = model, fns, weights

    def __call__(self, y_true, y_pred, sample_weight=None):
        ys = split_arrays(np.asarray(y_true), self.model._y_layout)
        preds = split_arrays(y_pred, _output_layout(self.model))
        total = None
        for fn, w, y, p in zip(self.fns, self.weights, ys, preds):
            term = _loss_value(fn, y, p, sample_weight)
            term = term if w == 1.0 else ops.multiply(term, w)
            total = term if total is None else ops.add(total, term)
        return total


def _loss_value(fn, y, y_pred, sample_weight):
    if isinstance(fn, losses_mod.Loss):
        return fn(y, y_pred, sample_weight=sample_weight)
    per_sample = fn(y, y_pred)
    if not isinstance(per_sample, Tensor):
        per_sample = ops.tensor(per_sample)
    if per_sample.ndim > 1:
        per_sample = ops.mean(per_sample, axis=tuple(range(1, per_sample.ndim)))
    if sample_weight is not None:
        per_sample = ops.multiply(per_sample, np.asarray(sample_weight, per_sample.dtype))
    return ops.mean(per_sample) if per_sample.ndim else per_sample


class _OutputMetric(metrics_mod.Metric):
    """A metric (or an output's loss) computed on one output's columns."""

    def __init__(self, model, index, spec, name=None, loss=None, is_loss=False, dtype=None):
        out_name = model.output_names[index]
        if name is None:
            base = spec if isinstance(spec, str) else getattr(spec, "name", None) or \
                getattr(spec, "__name__", "metric")
            name = f"{out_name}_{base}"
        super().__init__(name=name, dtype=dtype)
        self.model, self.index, self.spec, self.loss, self.is_loss = \
            model, index, spec, loss, is_loss
        self.inner = None

    def update_state(self, y_true, y_pred, sample_weight=None):
        y = split_arrays(np.asarray(y_true), self.model._y_layout)[self.index]
        p = split_arrays(np.asarray(y_pred), _output_layout(self.model))[self.index]
        if self.inner is None:
            if self.is_loss:
                fn = self.spec
                self.inner = metrics_mod.MeanMetricWrapper(
                    fn.call if isinstance(fn, losses_mod.Loss) else fn, name=self.name)
            else:
                self.inner = metrics_mod.get(self.spec, loss=self.loss, y_true_shape=y.shape,
                                             y_pred_shape=p.shape)
        self.inner.update_state(y, p, sample_weight=sample_weight)

    def result(self):
        return 0.0 if self.inner is None else self.inner.result()

    def reset_state(self):
        if self.inner is not None:
            self.inner.reset_state()

    def get_config(self):  # in-process copies only (evaluate() works on fresh copies)
        return {"model": self.model, "index": self.index, "spec": self.spec,
                "name": self.name, "loss": self.loss, "is_loss": self.is_loss}


def _per_output(value, names, what) -> list:
    if isinstance(value, dict):
        unknown = [k for k in value if k not in names]
        if unknown:
            raise ValueError(f"`{what}` has keys {unknown} that are not output names "
                             f"{names}.")
        return [value.get(n) for n in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(f"`{what}` has {len(value)} entries for {len(names)} outputs "
                             f"{names}: give one per output, or a dict keyed by output name.")
        return list(value)
    return [value] * len(names)


def _per_output_metrics(metrics, names) -> list:
    """[[specs of output 0], ...]: dict by name, list of lists, or one list for all."""
    if metrics is None:
        return [[] for _ in names]
    if isinstance(metrics, dict):
        groups = _per_output(metrics, names, "metrics")
    elif isinstance(metrics, (list, tuple)) and metrics and all(
            isinstance(m, (list, tuple)) or m is None for m in metrics):
        groups = _per_output(list(metrics), names, "metrics")
    else:
        groups = [list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]] * \
            len(names)
    return [[m for m in (g if isinstance(g, (list, tuple)) else [g] if g else [])
             if not (isinstance(m, str) and m.lower() == "loss")] for g in groups]


def _single(value, names):
    """A one-output model accepts [loss] and {name: loss} as well (Keras)."""
    if isinstance(value, dict):
        return _per_output(value, names, "loss")[0]
    if isinstance(value, (list, tuple)) and len(value) == 1:
        return value[0]
    return value


def _single_metrics(metrics, names):
    if isinstance(metrics, dict):
        group = _per_output(metrics, names, "metrics")[0]
        return group if isinstance(group, (list, tuple)) else [group]
    if isinstance(metrics, (list, tuple)) and len(metrics) == 1 and \
            isinstance(metrics[0], (list, tuple)):
        return list(metrics[0])
    return metrics


__all__ = ["MultiIOTraining", "split_arrays"]
