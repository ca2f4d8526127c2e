"""Callbacks that watch one logged quantity: EarlyStopping, ReduceLROnPlateau,
ModelCheckpoint (Keras 3 semantics, argument for argument).

All three share `MonitorCallback`: `mode` ("auto", "min" or "max") picks the comparison,
and a value counts as an improvement when it beats the best one by more than `min_delta`.
"""
from __future__ import annotations

import contextlib
import os
import warnings

import numpy as np

from .callbacks import Callback

# Keras metric classes that are maximised (Keras 3 sets `_direction = "up"` on them); any
# other class listed in _DOWN, or a running mean of a loss function, is minimised.
_UP = {"Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy",
       "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "Precision", "Recall",
       "AUC", "CosineSimilarity", "R2Score", "F1Score", "FBetaScore", "IoU", "MeanIoU",
       "OneHotIoU", "OneHotMeanIoU", "BinaryIoU", "PearsonCorrelation",
       "ConcordanceCorrelation", "PrecisionAtRecall", "RecallAtPrecision",
       "SensitivityAtSpecificity", "SpecificityAtSensitivity"}
_DOWN = {"MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
         "MeanSquaredLogarithmicError", "RootMeanSquaredError", "LogCoshError",
         "KLDivergence", "Poisson", "BinaryCrossentropy", "CategoricalCrossentropy",
         "SparseCategoricalCrossentropy", "Hinge", "SquaredHinge", "CategoricalHinge"}


def _print(message: str) -> None:
    print(message, flush=True)


def metric_direction(metric):
    """"up", "down" or None: whether a compiled metric is maximised or minimised."""
    direction = getattr(metric, "_direction", None)
    if direction in ("up", "down"):
        return direction
    name = type(metric).__name__
    if name in _UP:
        return "up"
    if name in _DOWN:
        return "down"
    fn = getattr(metric, "_fn", None)  # a MeanMetricWrapper of a loss function
    if fn is not None and getattr(fn, "__module__", "") == "glassnet.losses":
        return "down"
    return None


class MonitorCallback(Callback):
    """Base of the callbacks that monitor one quantity of the epoch logs.

    improvement:  current - min_delta < best  ("min");  current + min_delta > best  ("max")

    Args:
        monitor: Key of the logs to watch. Defaults to "val_loss".
        mode: "min", "max" or "auto" (minimise losses; follow the metric's direction
            otherwise; an error when it cannot be told). Defaults to "auto".
        baseline: Initial best value; None means the first value seen. Defaults to None.
        min_delta: Smallest absolute change that counts as an improvement. Defaults to 0.

    Reference:
        keras/src/callbacks/monitor_callback.py (Keras 3).
    """

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"{type(self).__name__} mode {mode!r} is unknown (expected "
                          "'auto', 'min' or 'max'); falling back to 'auto'.", stacklevel=3)
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.monitor_op = None

    def _set_monitor_op(self):
        if self.mode == "min":
            self.monitor_op = np.less
        elif self.mode == "max":
            self.monitor_op = np.greater
        else:
            name = self.monitor.removeprefix("val_")
            if name == "loss":
                self.monitor_op = np.less
            for metric in getattr(self.model, "metrics", None) or []:
                if getattr(metric, "name", None) == name and metric_direction(metric):
                    self.monitor_op = np.greater if metric_direction(metric) == "up" \
                        else np.less
            if self.monitor_op is None:
                raise ValueError(
                    f"{type(self).__name__} callback received monitor={self.monitor!r}, "
                    "but cannot tell whether that metric should be maximised or "
                    "minimised. Pass mode='max' to keep the highest value or mode='min' "
                    "to keep the lowest.")
        if self.monitor_op is np.less:
            self.min_delta *= -1

    def _is_improvement(self, monitor_value, reference_value) -> bool:
        if reference_value is None:
            return True
        return bool(self.monitor_op(monitor_value - self.min_delta, reference_value))


class EarlyStopping(MonitorCallback):
    """Stop training when a monitored quantity has stopped improving.

    stop after epoch e when  e >= start_from_epoch, e > 0  and  wait >= patience,
    where `wait` counts the monitored epochs since the last improvement.

    Args:
        monitor: Quantity to watch. Defaults to "val_loss".
        min_delta: Smallest absolute change that counts as an improvement. Defaults to 0.
        patience: Epochs without improvement after which training stops. Defaults to 0.
        verbose: 1 prints a message when the callback acts. Defaults to 0.
        mode: "auto", "min" or "max" (see MonitorCallback). Defaults to "auto".
        baseline: Training stops unless the quantity beats this value within `patience`
            epochs. Defaults to None.
        restore_best_weights: At the end of training, set the weights of the best epoch
            (best among the monitored ones, even when none beats `baseline`). Defaults to
            False.
        start_from_epoch: Epochs of warm-up that are not monitored. Defaults to 0.

    Example:
        >>> stop = EarlyStopping(monitor="loss", patience=3, restore_best_weights=True)
        >>> model.fit(x, y, epochs=100, callbacks=[stop], verbose=0)

    Reference:
        keras/src/callbacks/early_stopping.py (Keras 3).
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta=min_delta)
        if int(patience) < 0:
            raise ValueError(f"`patience` must be >= 0. Received: patience={patience!r}")
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # The first monitored epoch is the best so far, even below the baseline.
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        # NOTE: Keras never stops after epoch 0, even with patience=0.
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            _print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                _print("Restoring model weights from the end of the best epoch: "
                       f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs):
        """The monitored value from `logs`, or None (with a warning) when it is missing."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is "
                          f"not available. Available metrics are: {','.join(logs)}",
                          stacklevel=2)
        return value


class ReduceLROnPlateau(MonitorCallback):
    """Multiply the learning rate by `factor` when a quantity stops improving.

    after `patience` epochs without improvement:  lr ← max(lr * factor, min_lr),
    then `cooldown` epochs during which nothing is counted.

    Adds "learning_rate" (the rate used during the epoch) to the epoch logs, as Keras 3.

    Args:
        monitor: Quantity to watch. Defaults to "val_loss".
        factor: Multiplier of the rate, < 1. Defaults to 0.1.
        patience: Epochs without improvement before the rate is lowered. Defaults to 10.
        verbose: 1 prints a message when the rate changes. Defaults to 0.
        mode: "auto", "min" or "max" (see MonitorCallback). Defaults to "auto".
        min_delta: Smallest change that counts as an improvement. Defaults to 1e-4.
        cooldown: Epochs to wait after a reduction before counting again. Defaults to 0.
        min_lr: Lower bound of the rate. Defaults to 0.0.

    Example:
        >>> model.fit(x, y, validation_split=0.2, epochs=50,
        ...           callbacks=[ReduceLROnPlateau(factor=0.5, patience=5)])

    Reference:
        keras/src/callbacks/reduce_lr_on_plateau.py (Keras 3).
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, **kwargs):
        if "epsilon" in kwargs:  # the Keras 2 name of min_delta
            warnings.warn("`epsilon` is deprecated, use `min_delta` instead.",
                          DeprecationWarning, stacklevel=2)
            min_delta = kwargs.pop("epsilon")
        if kwargs:
            from ..errors import check_kwargs
            check_kwargs("ReduceLROnPlateau()", kwargs, ("epsilon",))
        super().__init__(monitor, mode, min_delta=min_delta)
        if factor >= 1.0:
            raise ValueError("ReduceLROnPlateau does not support a factor >= 1.0. "
                             f"Received: factor={factor!r}")
        self.factor = factor
        self.min_lr = min_lr
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.cooldown_counter = 0
        self.wait = 0

    def _reset(self):
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _reduce_lr(self, epoch) -> bool:
        optimizer = self.model.optimizer
        old_lr = float(optimizer.learning_rate)
        # NOTE: compared in float32, as Keras stores the rate in a float32 variable.
        if old_lr > np.float32(self.min_lr):
            new_lr = max(old_lr * self.factor, self.min_lr)
            optimizer.learning_rate = new_lr
            if self.verbose > 0:
                _print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                       f"{new_lr}.")
            return True
        return False

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(self.model.optimizer.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric "
                          f"`{self.monitor}` which is not available. Available metrics "
                          f"are: {','.join(logs)}.", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce_lr(epoch):
                self.cooldown_counter = self.cooldown
                self.wait = 0


_SUFFIXES = (".weights.h5", ".keras", ".h5")


class ModelCheckpoint(MonitorCallback):
    """Save the model (or its weights) during training, every epoch or every N batches.

    `filepath` may hold format fields filled from the epoch (1-based) and the logs, e.g.
    "ckpt/{epoch:02d}-{val_loss:.2f}.keras". Each save is atomic: the model is written to a
    temporary file in the target directory, then renamed over the target (`os.replace`), so
    a crash never leaves a truncated checkpoint, and the temporary file is removed on error.

    Args:
        filepath: Path ending in ".keras" (or legacy ".h5"); ".weights.h5" when
            `save_weights_only`.
        monitor: Quantity compared when `save_best_only`. Defaults to "val_loss".
        verbose: 1 prints a line at each save decision. Defaults to 0.
        save_best_only: Save only when the monitored quantity improves. Defaults to False.
        save_weights_only: `model.save_weights(path)` instead of `model.save(path)`.
            Defaults to False.
        mode: "auto", "min" or "max" (see MonitorCallback). Defaults to "auto".
        save_freq: "epoch", or an int: save after every that many batches. Defaults to
            "epoch".
        initial_value_threshold: Initial best value for `save_best_only`. Defaults to None.

    Example:
        >>> ckpt = ModelCheckpoint("best.keras", monitor="val_accuracy", save_best_only=True)
        >>> model.fit(x, y, validation_split=0.2, epochs=10, callbacks=[ckpt])

    Reference:
        keras/src/callbacks/model_checkpoint.py (Keras 3).
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__(monitor, mode, initial_value_threshold)
        self.verbose = verbose
        self.filepath = os.fspath(filepath)
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = None
        self._current_epoch = 0
        if save_freq != "epoch" and (isinstance(save_freq, bool)
                                     or not isinstance(save_freq, int)):
            raise ValueError(f"Unrecognized save_freq: {save_freq!r}. Expected 'epoch' or "
                             "a positive integer (a number of batches).")
        if save_weights_only and not self.filepath.endswith(".weights.h5"):
            raise ValueError("When using `save_weights_only=True` in `ModelCheckpoint`, "
                             "the filepath provided must end in `.weights.h5` (Keras "
                             f"weights format). Received: filepath={self.filepath}")
        if not save_weights_only and not self.filepath.endswith((".keras", ".h5")):
            raise ValueError("The filepath provided must end in `.keras` (Keras model "
                             f"format). Received: filepath={self.filepath}")

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        if self.save_freq == "epoch":
            self._save_model(epoch, None, logs)

    def _should_save_on_batch(self, batch) -> bool:
        if self.save_freq == "epoch":
            return False
        if self._last_batch_seen is None or batch <= self._last_batch_seen:
            added = batch + 1  # a new epoch started: batches are 0-based
        else:
            added = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += added
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _should_save_model(self, epoch, logs, filepath) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                _print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.",
                          stacklevel=2)
            return True
        if np.ndim(current) > 0:
            warnings.warn("Can save best model only when `monitor` is a scalar value. "
                          f"Received: {current}. Falling back to `save_best_only=False`.",
                          stacklevel=2)
            return True
        best = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                _print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to "
                       f"{current:.5f}, saving model to {filepath}")
            self.best = current
            return True
        if self.verbose > 0:
            _print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False

    def _save_model(self, epoch, batch, logs):
        if self.monitor_op is None:
            self._set_monitor_op()
        filepath = self._get_file_path(epoch, batch, logs or {})
        if not self._should_save_model(epoch, logs, filepath):
            return
        if os.path.isdir(filepath):
            raise IsADirectoryError("Please specify a non-directory filepath for "
                                    f"ModelCheckpoint. Filepath used is an existing "
                                    f"directory: {filepath}")
        if self.save_weights_only:
            atomic_write(filepath, lambda tmp: self.model.save_weights(tmp, overwrite=True))
        else:
            atomic_write(filepath, lambda tmp: self.model.save(tmp, overwrite=True))
        if self.verbose > 0:
            _print(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")

    def _get_file_path(self, epoch, batch, logs) -> str:
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as exc:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". '
                           f"Reason: {exc}. Available keys: epoch, "
                           f"{'' if batch is None else 'batch, '}{', '.join(logs)}") from None


def atomic_write(filepath, write) -> None:
    """Call `write(tmp)` on a temporary path beside `filepath`, then rename it over
    `filepath`; on any error the temporary file is removed and the error re-raised.

    The temporary name keeps the target's suffix (".keras", ".weights.h5", ...), so savers
    that pick the format from the extension see the right one.
    """
    filepath = os.fspath(filepath)
    directory = os.path.dirname(os.path.abspath(filepath))
    os.makedirs(directory, exist_ok=True)
    base = os.path.basename(filepath)
    suffix = next((s for s in _SUFFIXES if base.endswith(s)), os.path.splitext(base)[1])
    import tempfile  # NOTE: here: it pulls in random, shutil, bz2 and lzma (6 ms of import)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp" + suffix, dir=directory)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, filepath)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


__all__ = ["MonitorCallback", "EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint"]
