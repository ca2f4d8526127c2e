"""Model: a Layer that can be trained (Trainer mix-in), summarised and saved."""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd.variable import structure_changed
from ..layers.base import Layer, shape_str
from ..training.trainer import Trainer
from . import sharing


class Model(Trainer, Layer):
    """Base class of Sequential (and of user-defined models that override `call`).

    Example (subclassing, as in Keras):
        >>> class MLP(Model):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.hidden = Dense(16, activation="relu")
        ...         self.out = Dense(3, activation="softmax")
        ...     def call(self, x, training=False):
        ...         return self.out(self.hidden(x))
    """

    def __new__(cls, *args, **kwargs):
        if cls is Model and (args or "inputs" in kwargs or "outputs" in kwargs):
            from .functional import Functional  # the functional API (same tier)
            return Functional(*args, **kwargs)
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        if args or "inputs" in kwargs or "outputs" in kwargs:
            raise TypeError(
                f"{type(self).__name__}.__init__ received inputs/outputs: functional-style "
                "subclassing (super().__init__(inputs, outputs)) is not supported. Build "
                "keras.Model(inputs, outputs) directly, or define call() in the subclass.")
        Layer.__init__(self, trainable=kwargs.pop("trainable", True),
                       name=kwargs.pop("name", None), dtype=kwargs.pop("dtype", None),
                       **kwargs)
        backend.tune_allocator()

    def __setattr__(self, name, value):
        # Track sublayers assigned as attributes (subclassed models), as Keras does.
        if isinstance(value, Layer) and name not in ("_parent",) and \
                "_layers" in self.__dict__ and all(value is not l for l in self._layers):
            self._track_layer(value)
            self._layers.append(value)
            structure_changed()
        object.__setattr__(self, name, value)

    def _track_layer(self, layer):
        """Register this model on `layer` (shared-layer tracking) and keep names unique."""
        sharing.claim_name(self, layer, self._layers)
        sharing.track(self, layer)

    def _warn_shared_layers(self):
        """Warn once before fit updates layers that another live model also holds."""
        sharing.warn_shared(self)

    def check_input_shape(self, shape):
        """Each layer checks its own input (so errors name the layer, not the model)."""

    @property
    def layers(self) -> list:
        return list(self._layers)

    def get_layer(self, name=None, index=None):
        """Return a layer by name or by index."""
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No layer named {name!r} in model {self.name!r}. Layers: "
                         f"{[l.name for l in self.layers]}")

    def build(self, input_shape=None):
        if input_shape is None:
            raise ValueError(f"Model {self.name!r}.build() needs an input shape, "
                             "e.g. build((None, 784)).")
        self._build_input_shape = tuple(input_shape)
        self.built = True  # before the dry run, which would otherwise call build again
        with _no_grad():
            self(np.zeros(tuple(1 if d is None else d for d in input_shape), self.dtype))

    # ---- summary ------------------------------------------------------------------------
    def _summary_rows(self):
        rows = []
        shape = self._build_input_shape
        for layer in self.layers:
            out_shape = "?"
            if shape is not None:
                try:
                    shape = layer.compute_output_shape(shape)
                    out_shape = shape_str(shape)
                except Exception:  # a layer without static shape inference
                    shape = None
            params = layer.count_params() if layer.built else 0
            n_train = sum(w.size for w in layer.trainable_weights) if layer.built else 0
            state = "Y" if layer.trainable and n_train else ("frozen" if not layer.trainable
                                                            else "-")
            rows.append((f"{layer.name} ({type(layer).__name__})", out_shape, params, state))
        return rows

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=True, layer_range=None):
        """Print a table of layers: type, output shape, parameter count, trainable state."""
        print_fn = print_fn or print
        rows = self._summary_rows()
        head = ("Layer (type)", "Output Shape", "Param #", "Trainable")
        widths = [max(len(head[0]), *(len(r[0]) for r in rows)) + 2 if rows else 20,
                  max(len(head[1]), *(len(r[1]) for r in rows)) + 2 if rows else 16,
                  max(len(head[2]), *(len(f"{r[2]:,}") for r in rows)) + 2 if rows else 10,
                  len(head[3]) + 2]
        cols = widths if show_trainable else widths[:3]
        total = sum(cols)
        lines = [f'Model: "{self.name}"', "┏" + "━" * total + "┓"]
        fmt = lambda r: "┃" + "".join(  # noqa: E731
            str(v).ljust(w) if i != 2 else f"{v:,}".rjust(w - 2) + "  "
            for i, (v, w) in enumerate(zip(r, cols))) + "┃"
        lines.append("┃" + "".join(str(h).ljust(w) for h, w in zip(head, cols)) + "┃")
        lines.append("┡" + "━" * total + "┩")
        for r in rows:
            lines.append(fmt(r[:len(cols)]) if isinstance(r[2], int) else str(r))
        lines.append("└" + "─" * total + "┘")
        weights = self.weights if self.built else []
        n_all = sum(w.size for w in weights)
        n_train = sum(w.size for w in weights if w.trainable)
        itemsize = np.dtype(self.dtype).itemsize
        lines.append(f" Total params: {n_all:,} ({_bytes(n_all * itemsize)})")
        lines.append(f" Trainable params: {n_train:,} ({_bytes(n_train * itemsize)})")
        lines.append(f" Non-trainable params: {n_all - n_train:,} "
                     f"({_bytes((n_all - n_train) * itemsize)})")
        frozen = [l.name for l in self.layers if not l.trainable]
        if frozen:
            lines.append(f" Frozen layers: {', '.join(frozen)}")
        shared = sharing.summary_line(self)
        if shared:
            lines.append(shared)
        for line in lines:
            print_fn(line)

    def get_config(self):
        return {**Layer.get_config(self)}

    # ---- saving: thin delegations to glassnet.saving (sanctioned upward calls) -----------
    def save(self, filepath, overwrite=True, zipped=None, **kwargs):
        """Save to `.keras` or `.h5`; see `glassnet.saving.save_model`."""
        from .. import saving
        return saving.save_model(self, filepath, overwrite=overwrite, zipped=zipped, **kwargs)

    def save_weights(self, filepath, overwrite=True, max_shard_size=None):
        """Save the weights to `.weights.h5`; see `glassnet.saving.save_weights`."""
        from .. import saving
        return saving.save_weights(self, filepath, overwrite, max_shard_size)

    def load_weights(self, filepath, skip_mismatch=False, **kwargs):
        """Load weights; returns a report. See `glassnet.saving.load_weights`."""
        from .. import saving
        return saving.load_weights(self, filepath, skip_mismatch=skip_mismatch, **kwargs)

    def to_json(self, **kwargs) -> str:
        """The architecture as Keras JSON; see `glassnet.models.model_from_json`."""
        from .. import saving
        return saving.to_json(self, **kwargs)

    def diagnose(self, x, y=None, batch_size=None, **kwargs):
        """One-shot health check on one batch; see `glassnet.diagnostics.diagnose`."""
        from ..diagnostics import diagnose  # sanctioned upward call (DEVELOPERS-NOTES)
        return diagnose(self, x, y, batch_size=batch_size, **kwargs)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        if cls is Model and "input_layers" in config:  # a functional config (Keras 2 "Model")
            from .functional import Functional
            return Functional.from_config(config, custom_objects=custom_objects)
        return cls(**config)


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024


def _no_grad():
    from ..autograd import no_grad
    return no_grad()
