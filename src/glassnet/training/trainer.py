"""Trainer: compile / fit / evaluate / predict and the *_on_batch methods (Keras 3 API).

Mixed into Model. A training step is: forward with training=True (one graph), loss,
backward (gradients land in the optimizer's packed buffer), one vectorised optimizer step.
Prediction and evaluation run under no_grad with training=False.
"""
from __future__ import annotations

import contextlib
import sys
import time
import warnings

import numpy as np

from .. import backend, losses as losses_mod, metrics as metrics_mod, optimizers
from ..autograd import Tensor, no_grad, ops
from ..autograd.variable import STRUCTURE_VERSION
from . import data as data_mod, step_plan
from .bn_stats import warn_unconverged_batchnorm
from .callbacks import Callback, CallbackList, History, ProgbarLogger


class _EpochLineLogger(ProgbarLogger):
    """ProgbarLogger that listens to no batch hook (logs, or verbose=2)."""

    on_train_batch_end = Callback.on_train_batch_end


def _resolve_verbose(verbose):
    if verbose == "auto":
        return 1
    return int(verbose)


class Trainer:
    """Training-loop mix-in for Model; expects `self.__call__`, `trainable_variables`."""

    compiled = False
    _steps_per_epoch = None

    # ---- compile ------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True, **kwargs):
        """Configure the model for training.

        Args:
            optimizer: name ("sgd", "adam", "rmsprop", …) or Optimizer instance.
            loss: name, Loss instance, or function fn(y_true, y_pred) → per-sample loss.
            metrics: list of names ("accuracy", "mae", …) or Metric instances; "loss" is
                accepted and ignored (the loss is always reported).
            weighted_metrics: metrics that also receive sample weights.
            run_eagerly, steps_per_execution, jit_compile, auto_scale_loss: accepted for
                Keras compatibility; glassnet always runs eagerly.
        """
        if kwargs:
            from ..errors import check_kwargs
            check_kwargs("compile()", kwargs, ())
        self.optimizer = optimizers.get(optimizer)
        if loss is None:
            raise ValueError("compile() needs a `loss`, e.g. loss='sparse_categorical_"
                             "crossentropy' for integer class labels.")
        self.loss = loss
        self._loss_fn = losses_mod.get(loss)
        self._metric_specs = list(_as_list(metrics)) + list(_as_list(weighted_metrics))
        self._weighted_count = len(_as_list(weighted_metrics))
        self._metrics = None  # built at the first batch, when y shapes are known
        self.compiled = True
        self.stop_training = False

    def _build_metrics(self, y_true, y_pred):
        built, weighted = [], []
        first_weighted = len(self._metric_specs) - self._weighted_count
        for i, spec in enumerate(self._metric_specs):
            if isinstance(spec, str) and spec.lower() == "loss":
                continue
            metric = metrics_mod.get(spec, loss=self.loss, y_true_shape=np.shape(y_true),
                                     y_pred_shape=np.shape(y_pred))
            if metric is not None:
                built.append(metric)
                weighted.append(i >= first_weighted)
        self._metrics = built
        self._metric_weighted = weighted
        self._loss_tracker = metrics_mod.Mean(name="loss")

    @property
    def metrics(self) -> list:
        out = [self._loss_tracker] if getattr(self, "_loss_tracker", None) else []
        return out + list(self._metrics or [])

    @property
    def metrics_names(self) -> list:
        return [m.name for m in self.metrics]

    def reset_metrics(self):
        for m in self.metrics:
            m.reset_state()

    # ---- loss ---------------------------------------------------------------------------
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Return the scalar loss Tensor: compiled loss (weighted) + regularisation losses."""
        fn = self._loss_fn
        if isinstance(fn, losses_mod.Loss):
            loss = fn(y, y_pred, sample_weight=sample_weight)
        else:
            per_sample = fn(y, y_pred)
            if not isinstance(per_sample, Tensor):
                per_sample = ops.tensor(per_sample)
            if sample_weight is not None:
                # Keras "sum_over_batch_size": sum(w * loss) / number of loss values.
                per_sample = ops.multiply(per_sample,
                                          data_mod.align_sample_weight(sample_weight,
                                                                       per_sample))
            elif per_sample.ndim > 1:
                per_sample = ops.mean(per_sample, axis=tuple(range(1, per_sample.ndim)))
            loss = ops.mean(per_sample) if per_sample.ndim else per_sample
        extra = self._penalties()
        if extra:
            for penalty in extra:
                loss = ops.add(loss, penalty)
        return loss

    def _penalties(self) -> list:
        """Regularisation terms, the same as `self.losses` (Keras 3): the activity losses of
        the last forward of every layer (each layer once), then each regularised trainable
        variable's penalty. Not `self.losses` itself: the variable list is cached per epoch."""
        regularized = self.__dict__.get("_regularized_cache")
        if regularized is None:
            regularized = [v for v in self.trainable_variables
                           if v.regularizer is not None and callable(v.regularizer)]
        layers = _self_and_sublayers(self)
        out = [loss for layer in layers for loss in layer._losses]
        out.extend(var.regularizer(var) for var in regularized)
        return out

    # ---- one step -----------------------------------------------------------------------
    def _train_batch(self, x, y, sample_weight, variables):
        plan = step_plan.plan_for(self)
        done = plan.run(self, x, y, sample_weight) if plan is not None else None
        if done is not None:  # the same step without the graph (see step_plan.py)
            self.optimizer.step(variables)
            return done
        y_pred = self(x, training=True)
        loss = self.compute_loss(x, y, y_pred, sample_weight, training=True)
        if not loss.requires_grad:
            raise ValueError("The loss does not depend on any trainable weight: every layer "
                             "is frozen (trainable=False) or the loss ignores the output.")
        loss.backward()
        self.optimizer.step(variables)
        return loss, y_pred

    def _update_metrics(self, loss, y, y_pred, sample_weight, n):
        if self._metrics is None:
            self._build_metrics(y, y_pred.data)
        self._loss_tracker.update_state(float(loss.data), sample_weight=n)
        pred = y_pred.data
        for metric, weighted in zip(self._metrics, self._metric_weighted):
            metric.update_state(y, pred, sample_weight=sample_weight if weighted else None)

    def _logs(self, prefix="") -> dict:
        # Keras 3 names: a repeated name gets "_1", "_2", ...; a weighted metric whose name
        # is taken gets "weighted_" in front ("accuracy" and "weighted_accuracy").
        if self._metrics is None:
            return {prefix + m.name: m.result() for m in self.metrics}
        logs, seen = {prefix + "loss": self._loss_tracker.result()}, {"loss": 1}
        for metric, weighted in zip(self._metrics, self._metric_weighted):
            name = metric.name
            if name in seen and weighted:
                name = "weighted_" + name
            if name in seen:
                seen[name] += 1
                name = f"{name}_{seen[name] - 1}"
            seen.setdefault(name, 1)
            logs[prefix + name] = metric.result()
        return logs

    def _check_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(f"You must call compile() before {what}(), e.g. "
                               "model.compile(optimizer='adam', loss='mse').")

    def _trainable_for_step(self):
        variables = self.trainable_variables
        self._regularized_cache = [v for v in variables
                                   if v.regularizer is not None and callable(v.regularizer)]
        if not variables:
            raise ValueError(
                f"Model {self.name!r} has no trainable weights: every layer is frozen "
                "(trainable=False). Unfreeze at least one layer before fit().")
        return variables

    # ---- fit ----------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Train for `epochs` epochs over (x, y) in batches; return a History."""
        self._check_compiled("fit")
        if y is None:
            raise ValueError("fit() needs targets `y` (glassnet trains on arrays).")
        x, y, sample_weight = data_mod.check_xy(x, y, sample_weight)
        if validation_data is None and validation_split:
            (x, y, sample_weight), validation_data = data_mod.split_validation(
                x, y, sample_weight, validation_split)
        if class_weight:
            cw = data_mod.class_weights_to_sample_weights(y, class_weight)
            sample_weight = cw if sample_weight is None else sample_weight * cw
        batch_size = _check_batch_size(batch_size)
        self._steps_per_epoch = None if steps_per_epoch is None else int(steps_per_epoch)
        if self._steps_per_epoch is not None and self._steps_per_epoch < 1:
            raise ValueError(f"`steps_per_epoch` must be positive. Received: {steps_per_epoch}")
        y = _as_float_targets(y, self)
        verbose = _resolve_verbose(verbose)
        if not self.built:
            self._build_from_data(x)
        rng = self.__dict__.setdefault("_shuffle_rng", backend.make_rng(None))
        n = len(x)
        steps = -(-n // batch_size)
        if steps > 1 and n - (steps - 1) * batch_size == 1:
            steps -= 1
        history = History()
        cbs = list(_as_list(callbacks))
        if verbose:
            tty = hasattr(sys.stdout, "isatty") and sys.stdout.isatty()
            cbs.append(ProgbarLogger(verbose) if verbose == 1 and tty
                       else _EpochLineLogger(verbose))
        cbs.append(history)
        params = {"epochs": epochs, "steps": steps, "verbose": verbose,
                  "batch_size": batch_size, "samples": n}
        cb = CallbackList(cbs, model=self, params=params)
        self.history = history
        self.stop_training = False
        self._warn_shared_layers()
        with _blas_scope(self, batch_size) as scope:
            self._run_step = scope.step
            return self._fit_epochs(x, y, sample_weight, batch_size, epochs, initial_epoch,
                                    shuffle, validation_data, validation_batch_size,
                                    validation_freq, cb, rng, n, history)

    def _fit_epochs(self, x, y, sample_weight, batch_size, epochs, initial_epoch, shuffle,
                    validation_data, validation_batch_size, validation_freq, cb, rng, n,
                    history):
        cb.call("on_train_begin", {})
        want_batch = cb.wants("on_train_batch_end")
        want_batch_begin = cb.wants("on_train_batch_begin")
        logs = {}
        for epoch in range(initial_epoch, epochs):
            self.reset_metrics()
            cb.call("on_epoch_begin", epoch, {})
            variables = self._trainable_for_step()
            # NOTE: packed before the first backward, so that it writes its gradients straight
            # into the flat buffer: packing after it briefly holds weights and gradients twice.
            self.optimizer.build(variables)
            batches = data_mod.batch_slices(n, batch_size, shuffle and shuffle != "batch", rng)
            if self._steps_per_epoch:  # Keras: an epoch ends after this many batches
                batches = batches[:self._steps_per_epoch]
            for step, idx in enumerate(batches):
                if want_batch_begin:
                    cb.call("on_train_batch_begin", step, {})
                xb, yb = x[idx], y[idx]
                swb = None if sample_weight is None else sample_weight[idx]
                loss, y_pred = self._run_step(self._train_batch, xb, yb, swb, variables)
                self._update_metrics(loss, yb, y_pred, swb, len(xb))
                if want_batch:
                    cb.call("on_train_batch_end", step, self._logs())
                if self.stop_training:
                    break
            logs = self._logs()
            if validation_data is not None and (epoch + 1) % validation_freq == 0:
                val = self._evaluate_arrays(*_unpack_validation(validation_data),
                                            validation_batch_size or batch_size)
                logs.update({"val_" + k: v for k, v in val.items()})
            cb.call("on_epoch_end", epoch, logs)
            if self.stop_training:
                break
        cb.call("on_train_end", logs)
        return history

    def _build_from_data(self, x):
        self.build((None,) + tuple(x.shape[1:]))

    def _warn_shared_layers(self):
        """Hook for the transfer-learning machinery (warns about shared layers)."""

    # ---- evaluate / predict -------------------------------------------------------------
    def _evaluate_arrays(self, x, y, sample_weight, batch_size):
        x, y, sample_weight = data_mod.check_xy(x, y, sample_weight)
        y = _as_float_targets(y, self)
        saved = (self._loss_tracker, self._metrics) if self._metrics is not None else None
        if saved:
            self._metrics = [m.__class__.from_config(m.get_config()) for m in self._metrics]
            self._loss_tracker = metrics_mod.Mean(name="loss")
        try:
            with no_grad():
                for a in range(0, len(x), batch_size):
                    xb, yb = x[a:a + batch_size], y[a:a + batch_size]
                    swb = None if sample_weight is None else sample_weight[a:a + batch_size]
                    y_pred = self(xb, training=False)
                    loss = self.compute_loss(xb, yb, y_pred, swb, training=False)
                    self._update_metrics(loss, yb, y_pred, swb, len(xb))
            return self._logs()
        finally:
            if saved:
                self._loss_tracker, self._metrics = saved

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False, **kwargs):
        """Return the loss (and metrics) on (x, y) in inference mode."""
        self._check_compiled("evaluate")
        warn_unconverged_batchnorm(self)
        if y is None:
            raise ValueError("evaluate() needs targets `y`.")
        cb = CallbackList(_as_list(callbacks), model=self)
        cb.call("on_test_begin", {})
        batch_size = _check_batch_size(batch_size)
        with _blas_scope(self, batch_size):
            logs = self._evaluate_arrays(x, y, sample_weight, batch_size)
        cb.call("on_test_end", logs)
        if _resolve_verbose(verbose):
            from .progbar import format_logs
            print(format_logs(logs), flush=True)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Return the model's outputs for `x` (inference mode, computed in batches)."""
        warn_unconverged_batchnorm(self)
        x = data_mod.to_array(x, "x")
        if x.ndim == 0 or len(x) == 0:
            raise ValueError(f"`x` is empty (shape {x.shape}): nothing to predict.")
        batch_size = _check_batch_size(batch_size)
        cb = CallbackList(_as_list(callbacks), model=self)
        cb.call("on_predict_begin", {})
        n, out, outs = len(x), None, []
        with no_grad(), _blas_scope(self, batch_size):
            for i, a in enumerate(range(0, n, batch_size)):
                yb = self(x[a:a + batch_size], training=False).data
                if i == 0 and n > batch_size and yb.ndim and len(yb) == batch_size:
                    # NOTE: one output array filled batch by batch; a list of batches and
                    # np.concatenate would hold the whole output twice.
                    out = np.empty((n,) + yb.shape[1:], yb.dtype)
                if out is not None:
                    out[a:a + len(yb)] = yb
                else:
                    outs.append(yb)
                cb.call("on_predict_batch_end", i, {})
        cb.call("on_predict_end", {})
        if out is not None:
            return out
        return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=0)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict=False):
        """One gradient step on one batch; returns the loss (and metrics) of that batch."""
        self._check_compiled("train_on_batch")
        x, y, sample_weight = data_mod.check_xy(x, y, sample_weight)
        y = _as_float_targets(y, self)
        if class_weight:
            cw = data_mod.class_weights_to_sample_weights(y, class_weight)
            sample_weight = cw if sample_weight is None else sample_weight * cw
        if not self.built:
            self._build_from_data(x)
        self.reset_metrics()
        with _blas_scope(self, len(x)) as scope:
            loss, y_pred = scope.step(self._train_batch, x, y, sample_weight,
                                      self._trainable_for_step())
        self._update_metrics(loss, y, y_pred, sample_weight, len(x))
        return self._return(self._logs(), return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """Loss (and metrics) on one batch, in inference mode."""
        self._check_compiled("test_on_batch")
        return self._return(self._evaluate_arrays(x, y, sample_weight, len(x)), return_dict)

    def predict_on_batch(self, x):
        """Outputs for one batch, in inference mode."""
        with no_grad():
            return self(_as_float(data_mod.to_array(x, "x"), self), training=False).data

    @staticmethod
    def _return(logs, return_dict):
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values


def _median(values) -> float:
    """Median of a few Python floats. NOTE: not np.median, which imports numpy.ma (1.6 MB
    of RSS and ~10 ms) the first time, in the middle of the user's first epoch."""
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


class _BlasThreadTuner:
    """Picks the BLAS thread count for one (model, batch size) by measuring it.

    Small products always get 1 thread. For larger ones, the steps run the library default
    and 1 thread in alternating runs (default, 1, default, 1; RUN steps each); the first
    step of a run is not counted, since it pays for the switch (waking or parking the
    worker threads) and, for the very first step, for building the model. One thread is
    kept only when it is clearly faster (median below MARGIN x the default's): noise must
    not flip the choice, while a real competitor for the cores makes the default 2-50x
    slower. Measuring beats guessing: idle thread pools of other programs use CPU time
    without slowing a second BLAS thread down, and on a virtual machine two threads can be
    slower than one for small products (waking a parked worker costs tens of us).

    Long steps (the first one of a measurement takes LONG_STEP_S or more) on a machine that
    no other process keeps busy (`backend.machine_busy`) skip the measurement and keep the
    default: their large products always gain from a second thread there, and a measurement
    would cost several long steps at one thread.

    The choice is reconsidered after PROBE_EVERY steps at it (and at least MIN_INTERVAL_S),
    so that a measurement (RUN * 2 steps at the slower setting, at most about twice as
    slow) costs under 0.5 % of the steps; and at once when the steps at the chosen setting
    run SLOWER x slower than just after it was chosen (a moving average): a competitor that
    starts later is noticed within a few steps. Measuring small steps
    often matters: on a virtual machine the second thread's speed changes over minutes
    (measured here: W1 at batch 32 took 0.85 ms or 1.4 ms a step with 2 threads, 1.1 ms
    with one, in different minutes of the same process).
    """

    RUN, MARGIN, SLOWER, AVERAGE, LONG_STEP_S = 4, 0.9, 1.5, 0.2, 0.02
    PROBE_EVERY, MIN_INTERVAL_S = 2000, 5.0
    PLAN = (0, 1, 0, 1)  # thread settings of the probe runs (0: the library default)

    def __init__(self, largest_product_macs):
        self.fixed = 1 if largest_product_macs < backend.BLAS_SINGLE_THREAD_BELOW else None
        self.samples = {1: [], 0: []}
        self.choice, self.decided_at, self.probe_step = None, 0.0, 0
        self.reference, self.recent, self.seen = None, 0.0, 0

    def next_threads(self, now):
        """Thread count for the next step: 1, or 0 for the library default."""
        if self.fixed is not None:
            return self.fixed
        if self.choice is not None:
            slowed = self.reference is not None and self.recent > self.SLOWER * self.reference
            due = self.seen >= self.PROBE_EVERY and now - self.decided_at >= self.MIN_INTERVAL_S
            if not (due or slowed):
                return self.choice
            self.choice, self.probe_step = None, 0
        # a measurement starts with the default: a first step at 1 thread would make a large
        # model's first step (the one users wait for) up to twice as slow
        return self.PLAN[self.probe_step // self.RUN]

    def record(self, threads, seconds, now):
        if self.fixed is not None:
            return
        if self.choice is not None:  # watch the chosen setting for a slow-down
            self.seen += 1
            self.recent += self.AVERAGE * (seconds - self.recent) if self.seen > 1 else seconds
            if self.reference is None and self.seen == self.RUN:
                self.reference = self.recent
            return
        if self.probe_step == 0 and seconds >= self.LONG_STEP_S and not backend.machine_busy():
            self._decide(0, now)
            return
        if self.probe_step % self.RUN:
            self.samples[threads].append(seconds)
        self.probe_step += 1
        if self.probe_step == self.RUN * len(self.PLAN):
            one, default = (_median(self.samples[k]) for k in (1, 0))
            self._decide(1 if one < self.MARGIN * default else 0, now)

    def _decide(self, choice, now):
        self.choice, self.decided_at, self.samples = choice, now, {1: [], 0: []}
        self.reference, self.recent, self.seen = None, 0.0, 0


class _BlasScope:
    """Applies a tuner's choice around each step and restores the user's setting after."""

    def __init__(self, model, batch_size):
        largest = batch_size * _largest_matrix(model)
        tuners = model.__dict__.setdefault("_blas_tuners", {})
        key = (batch_size, largest)
        self.tuner = tuners.get(key) or tuners.setdefault(key, _BlasThreadTuner(largest))
        self.default = backend.get_blas_threads()
        self.current = self.default

    def step(self, fn, *args):
        if self.default is None:  # BLAS not controllable here
            return fn(*args)
        now = time.perf_counter()
        threads = self.tuner.next_threads(now)
        wanted = threads or self.default
        if wanted != self.current:
            backend.set_blas_threads(wanted)
            self.current = wanted
        out = fn(*args)
        self.tuner.record(threads, time.perf_counter() - now, now)
        return out

    def __enter__(self):
        known = self.tuner.fixed if self.tuner.fixed is not None else self.tuner.choice
        if known is not None and self.default is not None:
            self.current = known or self.default
            if self.current != self.default:
                backend.set_blas_threads(self.current)
        return self

    def __exit__(self, *exc):
        if self.default is not None and self.current != self.default:
            backend.set_blas_threads(self.default)
        return False


def _blas_scope(model, batch_size):
    return _BlasScope(model, batch_size)


def _largest_matrix(model) -> int:
    """The size of the model's largest 2-D weight (cached until its structure changes)."""
    cached = model.__dict__.get("_largest_matrix")
    if cached is None or cached[0] != STRUCTURE_VERSION[0]:
        largest = max((w.shape[0] * w.shape[1] for w in model.weights if w.ndim == 2),
                      default=0)
        cached = model.__dict__["_largest_matrix"] = (STRUCTURE_VERSION[0], largest)
    return cached[1]


def _self_and_sublayers(layer) -> list:
    """`layer` and every nested sublayer, each once (cached until the structure changes)."""
    cached = layer.__dict__.get("_sublayers_cache")
    if cached is not None and cached[0] == STRUCTURE_VERSION[0]:
        return cached[1]
    stack, out = list(layer._layers), {id(layer): layer}
    while stack:
        sub = stack.pop()
        out.setdefault(id(sub), sub)
        stack.extend(sub._layers)
    unique = list(out.values())
    layer.__dict__["_sublayers_cache"] = (STRUCTURE_VERSION[0], unique)
    return unique


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _check_batch_size(batch_size) -> int:
    if batch_size is None:
        return 32
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: "
                         f"batch_size={batch_size!r}")
    return int(batch_size)


def _as_float_targets(y, model):
    """Float targets take the model's dtype once, so a float64 `y` cannot leak float64 into
    a custom loss and its gradients (integer labels stay integers)."""
    if y is not None and y.dtype.kind == "f":
        dtype = np.dtype(getattr(model, "dtype", None) or backend.floatx())
        if y.dtype != dtype:
            return y.astype(dtype)
    return y


def _as_float(x, model):
    """Cast integer/bool/float64 inputs to the model's float dtype once per call."""
    dtype = np.dtype(getattr(model, "dtype", None) or backend.floatx())
    if x.dtype != dtype:
        x = x.astype(dtype)
    return x


def _unpack_validation(validation_data):
    if not isinstance(validation_data, (list, tuple)) or len(validation_data) not in (2, 3):
        raise ValueError("`validation_data` must be a tuple (x_val, y_val) or "
                         "(x_val, y_val, val_sample_weight).")
    x, y = validation_data[0], validation_data[1]
    sw = validation_data[2] if len(validation_data) == 3 else None
    return x, y, sw


_ = warnings
