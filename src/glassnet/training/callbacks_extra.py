"""Callbacks that act every epoch or batch without monitoring a quantity:
LearningRateScheduler, TerminateOnNaN, CSVLogger (Keras 3 semantics)."""
from __future__ import annotations

import collections.abc
import math
import os

import numpy as np

from .callbacks import Callback


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of every epoch from a function of the epoch.

    lr_epoch = schedule(epoch, lr_current)     (or schedule(epoch), the Keras 1 form)

    `epoch` is 0-based. The rate used during the epoch is added to the epoch logs as
    "learning_rate" (so History and CSVLogger record it), as Keras 3 does.

    Args:
        schedule: function (epoch: int, lr: float) -> float.
        verbose: 1 prints the new rate each epoch. Defaults to 0.

    Example:
        >>> def schedule(epoch, lr):
        ...     return lr if epoch < 10 else lr * 0.9
        >>> model.fit(x, y, epochs=20, callbacks=[LearningRateScheduler(schedule)])

    Reference:
        keras/src/callbacks/learning_rate_scheduler.py (Keras 3).
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError("`schedule` must be a function (epoch, lr) -> float. "
                            f"Received: {schedule!r}")
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None or not hasattr(optimizer, "learning_rate"):
            raise ValueError('Optimizer must have a "learning_rate" attribute: compile the '
                             "model with an optimizer before fit().")
        try:
            lr = self.schedule(epoch, float(optimizer.learning_rate))
        except TypeError:  # the one-argument form schedule(epoch), as Keras accepts
            lr = self.schedule(epoch)
        if not isinstance(lr, (float, np.floating)):
            raise ValueError("The output of the `schedule` function should be a float. "
                             f"Got: {lr!r} (type {type(lr).__name__})")
        optimizer.learning_rate = float(lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{float(lr)}.", flush=True)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class TerminateOnNaN(Callback):
    """Stop training at the first batch whose loss is NaN or infinite.

    Prints "Epoch E, batch B: invalid loss <value>, terminating training" (E 1-based, B the
    0-based batch index within the epoch, as Keras numbers batches) and sets
    `model.stop_training`, so fit stops right after that batch. `stopped_epoch` and
    `stopped_batch` keep where it happened (None when it never did).

    Args:
        raise_error: Raise a RuntimeError instead of stopping quietly. Defaults to False.

    Example:
        >>> model.fit(x, y, epochs=5, callbacks=[TerminateOnNaN()])

    Reference:
        keras/src/callbacks/terminate_on_nan.py (Keras 3).
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error
        self._epoch = 0
        self.stopped_epoch = None
        self.stopped_batch = None

    def on_train_begin(self, logs=None):
        self.stopped_epoch = self.stopped_batch = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        message = (f"Epoch {self._epoch + 1}, batch {batch}: invalid loss {float(loss)}, "
                   "terminating training")
        self.stopped_epoch, self.stopped_batch = self._epoch, batch
        if self.raise_error:
            raise RuntimeError(f"NaN or Inf loss encountered at epoch {self._epoch + 1}, "
                               f"batch {batch}. Loss value: {loss}. Terminating training "
                               "immediately.")
        print(message, flush=True)
        self.model.stop_training = True


class CSVLogger(Callback):
    """Stream the epoch logs to a CSV file: one row per epoch, "epoch" (0-based) first.

    Columns are the sorted log keys of the first epoch; when that epoch has no validation
    keys, "val_<key>" columns are added for each (filled with "NA" while missing), as Keras.

    Args:
        filename: Path of the CSV file.
        separator: Column separator. Defaults to ",".
        append: Append to an existing file (no second header) instead of overwriting it.
            Defaults to False.

    Example:
        >>> model.fit(x, y, epochs=3, callbacks=[CSVLogger("training.log")])

    Reference:
        keras/src/callbacks/csv_logger.py (Keras 3).
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.sep = separator
        self.filename = os.fspath(filename)
        self.append = append
        self.writer = None
        self.keys = None
        self.append_header = True
        self.csv_file = None

    def on_train_begin(self, logs=None):
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename, encoding="utf-8") as f:
                    self.append_header = not bool(len(f.readline()))
            mode = "a"
        else:
            mode = "w"
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, mode, newline="", encoding="utf-8")
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys.extend(f"val_{k}" for k in list(self.keys))
        if self.writer is None:
            import csv  # NOTE: on first use, not with every `import glassnet.callbacks`
            dialect = type("_Dialect", (csv.excel,), {"delimiter": self.sep})
            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys,
                                         dialect=dialect)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((key, _csv_value(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


def _csv_value(value):
    if isinstance(value, str) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value
    if isinstance(value, collections.abc.Iterable):
        return f'"[{", ".join(map(str, value))}]"'
    return value


__all__ = ["LearningRateScheduler", "TerminateOnNaN", "CSVLogger"]
