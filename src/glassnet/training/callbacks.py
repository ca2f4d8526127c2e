"""Callback protocol (the full Keras hook set), CallbackList, History, LambdaCallback,
ProgbarLogger. More callbacks live in `glassnet.callbacks`."""
from __future__ import annotations

from .progbar import Progbar


class Callback:
    """Base class: override any hook. `self.model` is set before training starts.

    Hooks: on_train_begin/end, on_epoch_begin/end, on_train_batch_begin/end,
    on_test_begin/end, on_test_batch_begin/end, on_predict_begin/end,
    on_predict_batch_begin/end (on_batch_begin/end are aliases of the train batch hooks).
    """

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)


_HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
          "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
          "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
          "on_predict_batch_begin", "on_predict_batch_end")


class CallbackList:
    """Dispatches each hook to the callbacks that override it (batch hooks cost nothing when
    no callback listens)."""

    def __init__(self, callbacks=None, model=None, params=None):
        self.callbacks = list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be Callback instances; received "
                                f"{type(cb).__name__}.")
            cb.set_model(model)
            cb.set_params(params or {})
        self._listeners = {
            hook: [getattr(cb, hook) for cb in self.callbacks if _overrides(cb, hook)]
            for hook in _HOOKS
        }

    def wants(self, hook: str) -> bool:
        return bool(self._listeners[hook])

    def call(self, hook: str, *args):
        for fn in self._listeners[hook]:
            fn(*args)


def _overrides(cb, hook: str) -> bool:
    # NOTE: a LambdaCallback's hooks live on the instance: check them before the class.
    if isinstance(cb, LambdaCallback) and hook in cb._lambda_hooks:
        return True
    fn = getattr(type(cb), hook, None)
    if fn is not getattr(Callback, hook):
        return True
    if hook in ("on_train_batch_begin", "on_train_batch_end"):
        legacy = hook.replace("train_", "")
        return getattr(type(cb), legacy) is not getattr(Callback, legacy)
    return False


class History(Callback):
    """Records every epoch's logs: `history.history["loss"]` is a list, one per epoch."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class LambdaCallback(Callback):
    """A callback built from plain functions: LambdaCallback(on_epoch_end=lambda e, logs: …).

    Accepts on_epoch_begin/end(epoch, logs), on_batch_begin/end(batch, logs) (train batches),
    on_train_begin/end(logs), and any other hook name."""

    def __init__(self, **hooks):
        super().__init__()
        self._lambda_hooks = set()
        for name, fn in hooks.items():
            if name in ("on_batch_begin", "on_batch_end"):
                name = name.replace("on_", "on_train_")
            if name not in _HOOKS:
                raise TypeError(f"LambdaCallback got an unknown hook {name!r}; hooks: "
                                f"{', '.join(_HOOKS)}.")
            setattr(self, name, fn)
            self._lambda_hooks.add(name)


class ProgbarLogger(Callback):
    """Prints progress: verbose 1 = a bar per epoch, 2 = one line per epoch."""

    def __init__(self, verbose=1):
        super().__init__()
        self.verbose = verbose
        self._bar = None

    def on_epoch_begin(self, epoch, logs=None):
        epochs = self.params.get("epochs", 1)
        if self.verbose:
            print(f"Epoch {epoch + 1}/{epochs}", flush=True)
        self._bar = Progbar(self.params.get("steps", 0), verbose=self.verbose)

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None and self.verbose == 1:
            self._bar.update(batch + 1, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self._bar is not None:
            self._bar.update(self.params.get("steps", 0), logs, finalize=True)
