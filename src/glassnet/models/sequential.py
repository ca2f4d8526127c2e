"""Sequential: a plain stack of layers, each with one input and one output."""
from __future__ import annotations

from ..autograd import Tensor
from ..autograd.variable import structure_changed
from ..layers.base import Layer, shape_str
from ..layers.input_layer import Input, InputLayer, KerasTensor
from . import sharing
from .model import Model


class Sequential(Model):
    """A linear stack of layers (Keras `Sequential`).

    The model is built as soon as the input shape is known: from an `Input`/`InputLayer`
    first element, from `input_shape=` on the first layer, from `build((None, …))`, or from
    the first batch of data.

    Args:
        layers: optional list of layers to add.
        trainable: whether the model's layers are trainable.
        name: model name.

    Example:
        >>> model = Sequential([Dense(64, input_shape=(4,), activation="relu"),
        ...                     Dense(3, activation="softmax")])
        >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
        ...               metrics=["accuracy"])
    """

    # The training loop may run this class's steps as a fixed sequence of array calls
    # (training/step_plan.py); a subclass, which may override `call`, never.
    _plain_layer_stack = True

    def __init__(self, layers=None, trainable=True, name=None, **kwargs):
        super().__init__(trainable=trainable, name=name, **kwargs)
        self._input_batch_shape = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer, rebuild=True):
        """Append a layer (or an `Input(...)` tensor / InputLayer as the first element)."""
        if isinstance(layer, KerasTensor) and isinstance(layer.layer, InputLayer):
            layer = layer.layer
        if isinstance(layer, InputLayer):
            if self._layers:
                raise ValueError("An Input/InputLayer can only be the first element of a "
                                 "Sequential model.")
            self._input_batch_shape = layer.batch_shape
            if rebuild:
                self._maybe_build_now()
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add() expects a Layer instance; received "
                            f"{type(layer).__name__}: {layer!r}.")
        if not self._layers and self._input_batch_shape is None and \
                layer._batch_input_shape is not None:
            self._input_batch_shape = layer._batch_input_shape
        self._track_layer(layer)
        self._layers.append(layer)
        structure_changed()
        if self.built or self._input_batch_shape is not None:
            self.built = False
            if rebuild:  # rebuild=False: the caller builds once after the last add
                self._maybe_build_now()

    def pop(self, rebuild=True):
        """Remove and return the last layer."""
        if not self._layers:
            raise IndexError(f"Sequential model {self.name!r} has no layers to pop.")
        layer = self._layers.pop()
        structure_changed()
        sharing.untrack(self, layer)
        self.built = False
        self._maybe_build_now()
        return layer

    def _ensure_symbolic_graph(self):
        """Run the layers on an `Input` once (for `model.inputs`, `layer.output`, ...)."""
        key = (tuple(map(id, self._layers)), self._input_batch_shape)
        if self.__dict__.get("_graph_key") == key:
            return
        if self._input_batch_shape is None:
            raise AttributeError(f"Sequential model {self.name!r} has no defined input yet: "
                                 "give it an Input(shape=...) first or build it.")
        x = inp = Input(batch_shape=self._input_batch_shape)
        for layer in self._layers:
            x = layer(x)
        self._graph_key, self._graph = key, ([inp], [x])

    @property
    def inputs(self) -> list:
        self._ensure_symbolic_graph()
        return list(self._graph[0])

    @property
    def outputs(self) -> list:
        self._ensure_symbolic_graph()
        return list(self._graph[1])

    @property
    def input(self):
        return self.inputs[0]

    @property
    def output(self):
        return self.outputs[0]

    def _maybe_build_now(self):
        if self._input_batch_shape is not None and self._layers:
            self.build(self._input_batch_shape)

    def build(self, input_shape=None):
        """Create every layer's weights for inputs of `input_shape` (batch axis first)."""
        if input_shape is None:
            input_shape = self._input_batch_shape
        if input_shape is None:
            raise ValueError(f"Sequential model {self.name!r} does not know its input shape:"
                             " pass build((None, features)) or give the first layer "
                             "input_shape=(features,).")
        input_shape = tuple(input_shape)
        if self._input_batch_shape is None:
            self._input_batch_shape = input_shape
        shape = input_shape
        for layer in self._layers:
            if not layer.built:
                layer._maybe_build(shape)
            else:
                layer.check_input_shape(tuple(1 if d is None else d for d in shape))
            shape = layer.compute_output_shape(shape)
        self._build_input_shape = input_shape
        self.built = bool(self._layers)

    def call(self, inputs, training=False):
        layers = self._layers
        if not layers:
            return inputs
        x = layers[0](inputs, training=training)
        # NOTE: inside a built stack each layer's input shape was checked at build time, so
        # later layers skip Layer.__call__'s conversion and checks: a third of the Python
        # overhead of a small-batch step. A layer with an activity_regularizer takes the full
        # path, which records its penalty in `losses`.
        for layer in layers[1:]:
            if layer.built and type(x) is Tensor and layer.activity_regularizer is None:
                x = layer.call(x, training=training) if layer._call_has_training \
                    else layer.call(x)
            else:
                x = layer(x, training=training)
        return x

    def check_input_shape(self, shape):
        expected = self._input_batch_shape
        if expected is not None and (len(shape) != len(expected) or any(
                e is not None and s != e for s, e in zip(shape[1:], expected[1:]))):
            first = self._layers[0].name if self._layers else self.name
            raise ValueError(
                f"Input to model {self.name!r} (first layer {first!r}) is incompatible: "
                f"expected shape {shape_str((None,) + tuple(expected[1:]))}, received shape "
                f"{shape_str(shape)}."
            )

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self._layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def get_config(self):
        from .. import layers as layers_mod  # noqa: F401  (registry is filled on import)
        return {
            "name": self.name, "trainable": self.trainable, "dtype": self.dtype,
            "layers": [{"module": "keras.layers", "class_name": type(l).__name__,
                        "config": l.get_config()} for l in self._layers],
            "build_input_shape": None if self._input_batch_shape is None
            else list(self._input_batch_shape),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from .functional import deserialize_layer  # same tier; passes custom_objects down
        model = cls(name=config.get("name"))
        for spec in config.get("layers", []):
            # NOTE: one build after the last layer: a rebuild per add is quadratic.
            model.add(deserialize_layer(spec, custom_objects), rebuild=False)
        shape = config.get("build_input_shape") or model._input_batch_shape
        if shape is not None and model._layers and not model.built:
            model.build(tuple(shape))
        if not config.get("trainable", True):
            model.trainable = False
        return model
