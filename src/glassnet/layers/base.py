"""Layer: the Keras 3 layer lifecycle (init → build(input_shape) → call(inputs, training)).

`__init__` stores configuration only; `build` creates every weight through `add_weight`;
`call` computes with Tensors. Classes register themselves by name for deserialisation.
"""
from __future__ import annotations

import contextvars
import inspect
import re

import numpy as np

from .. import backend, regularizers
from ..autograd import Tensor, Variable, no_grad
from ..autograd.variable import STRUCTURE_VERSION, structure_changed
from ..autograd import ops
from ..errors import check_kwargs, unknown_identifier

_REGISTRY: dict = {}
_NAME_COUNTS: dict = {}
# Set by glassnet.saving while it builds a model from a file: an object whose
# `charge(layer_name, weight_name, shape, dtype)` raises before an absurd weight is allocated.
WEIGHT_BUDGET: contextvars.ContextVar = contextvars.ContextVar("weight_budget", default=None)

# Keyword arguments every layer accepts (Keras' base-layer kwargs, legacy ones included).
_BASE_KWARGS = ("trainable", "name", "dtype", "input_shape", "input_dim",
                "batch_input_shape", "batch_size", "autocast", "input_dtype")


def to_snake_case(name: str) -> str:
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def unique_name(base: str) -> str:
    """Return `base`, then `base_1`, `base_2`, … (process-wide, as Keras does)."""
    count = _NAME_COUNTS.get(base, 0)
    _NAME_COUNTS[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def reserve_name(name: str) -> None:
    """Tell the name counter that `name` exists, so automatic names will not reuse it."""
    match = re.fullmatch(r"(.*?)(?:_(\d+))?", name)
    base, number = match.group(1), match.group(2)
    nxt = int(number) + 1 if number is not None else 1
    if _NAME_COUNTS.get(base, 0) < nxt:
        _NAME_COUNTS[base] = nxt


def get_layer_class(name: str):
    """Look up a registered layer class by its class name."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise unknown_identifier("layer class", name, _REGISTRY) from None


def shape_str(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


class Layer:
    """Base class of all layers.

    Args:
        trainable: whether the layer's weights are updated by training. Setting it to False
            also switches BatchNormalization to inference mode (Keras 3 semantics).
        name: unique name; defaults to the snake-cased class name plus a counter.
        dtype: dtype of the weights; defaults to `floatx()`.
        input_shape: shape of one sample (without the batch axis), for the first layer of a
            Sequential model (`input_dim=n` is accepted as `input_shape=(n,)`).
        activity_regularizer: optional regularizer of the layer's output; each call adds
            penalty(output) / batch_size to `losses` (Keras 3). Defaults to None.
    """

    activity_regularizer = None  # class default: the Sequential fast path reads it cheaply

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    def __init__(self, trainable=True, name=None, dtype=None, activity_regularizer=None,
                 **kwargs):
        if any(k not in _BASE_KWARGS for k in kwargs):
            check_kwargs(f"{type(self).__name__}()", kwargs,
                         _BASE_KWARGS + _init_parameters(type(self)))
        self.name = name if name is not None else unique_name(to_snake_case(type(self).__name__))
        self._auto_named = name is None  # a model may rename an automatic name on a clash
        if name is not None:
            reserve_name(name)
        self.dtype = backend.standardize_dtype(dtype).name if not _is_policy(dtype) else \
            backend.floatx()
        self._trainable = bool(trainable)
        self.built = False
        self._weights: list[Variable] = []
        self._layers: list[Layer] = []
        self._build_input_shape = None
        self._call_has_training = "training" in inspect.signature(self.call).parameters
        self._losses: list = []
        if activity_regularizer is not None:
            self.activity_regularizer = regularizers.get(activity_regularizer)
        batch_shape = kwargs.get("batch_input_shape")
        if batch_shape is None and kwargs.get("input_shape") is not None:
            batch_shape = (kwargs.get("batch_size"),) + tuple(kwargs["input_shape"])
        if batch_shape is None and kwargs.get("input_dim") is not None:
            batch_shape = (kwargs.get("batch_size"), int(kwargs["input_dim"]))
        self._batch_input_shape = None if batch_shape is None else tuple(batch_shape)

    # ---- weights ------------------------------------------------------------------------
    def add_weight(self, shape=None, initializer=None, dtype=None, trainable=True,
                   regularizer=None, constraint=None, name=None, **kwargs) -> Variable:
        """Create a weight (Keras 3 signature; a leading string is taken as the name)."""
        if isinstance(shape, str):  # Keras 2 style: add_weight(name, shape, ...)
            shape, name = initializer if initializer is not None else kwargs.pop("shape"), shape
            initializer = kwargs.pop("initializer", None)
        from .. import initializers as initializers_mod  # lower tier, imported lazily
        init = initializers_mod.get(initializer if initializer is not None else
                                    ("zeros" if not trainable else "glorot_uniform"))
        name = name or f"weight_{len(self._weights)}"
        budget = WEIGHT_BUDGET.get()
        if budget is not None:  # loading an untrusted file: refuse absurd shapes first
            budget.charge(self.name, name, shape, dtype or self.dtype)
        var = Variable(init, shape=tuple(int(d) for d in shape),
                       dtype=dtype or self.dtype, trainable=trainable and self._trainable,
                       name=name, path=f"{self.name}/{name}")
        self._intrinsic[id(var)] = bool(trainable)
        var.regularizer = regularizer
        var.constraint = constraint
        var.lr_multiplier = self.__dict__.get("_lr_multiplier", 1.0)
        self._weights.append(var)
        structure_changed()
        return var

    @property
    def _intrinsic(self) -> dict:
        d = self.__dict__.get("_intrinsic_store")
        if d is None:
            d = self.__dict__["_intrinsic_store"] = {}
        return d

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for var in self._weights:
            var.trainable = self._trainable and self._intrinsic.get(id(var), True)
        for layer in self._layers:
            layer.trainable = value

    @property
    def lr_multiplier(self) -> float:
        """Scale of this layer's learning rate (glassnet extra, for fine-tuning).

        lr_layer = lr * lr_multiplier. Setting it writes `Variable.lr_multiplier` on the
        layer's weights and sublayers (weights created later inherit it); the optimizer
        picks a change up at its next step. Defaults to 1.0.
        """
        return self.__dict__.get("_lr_multiplier", 1.0)

    @lr_multiplier.setter
    def lr_multiplier(self, value) -> None:
        ok = isinstance(value, (int, float, np.integer, np.floating)) and \
            not isinstance(value, bool) and value >= 0 and np.isfinite(value)
        if not ok:
            raise ValueError(f"Layer {self.name!r}: `lr_multiplier` must be a finite number "
                             f">= 0. Received: lr_multiplier={value!r}")
        self.__dict__["_lr_multiplier"] = float(value)
        for var in self._weights:
            var.lr_multiplier = float(value)
        for layer in self._layers:
            layer.lr_multiplier = value

    @property
    def weights(self) -> list:
        """All weights, in creation order (Keras order: Dense [kernel, bias]; BN [gamma,
        beta, moving_mean, moving_variance])."""
        cached = self.__dict__.get("_weights_cache")
        if cached is not None and cached[0] == STRUCTURE_VERSION[0]:
            return list(cached[1])
        out = list(self._weights)
        if self._layers:
            seen = set(map(id, out))  # a layer shared twice contributes its weights once
            for layer in self._layers:
                for w in layer.weights:
                    if id(w) not in seen:
                        seen.add(id(w))
                        out.append(w)
        self.__dict__["_weights_cache"] = (STRUCTURE_VERSION[0], out)
        return list(out)

    @property
    def variables(self) -> list:
        return self.weights

    @property
    def trainable_weights(self) -> list:
        cached = self.__dict__.get("_trainable_cache")
        if cached is not None and cached[0] == STRUCTURE_VERSION[0]:
            return list(cached[1])
        out = [w for w in self.weights if w.trainable]
        self.__dict__["_trainable_cache"] = (STRUCTURE_VERSION[0], out)
        return list(out)

    @property
    def trainable_variables(self) -> list:
        return self.trainable_weights

    @property
    def non_trainable_weights(self) -> list:
        return [w for w in self.weights if not w.trainable]

    @property
    def non_trainable_variables(self) -> list:
        return self.non_trainable_weights

    def get_weights(self) -> list:
        """Return copies of the weights as NumPy arrays, in `weights` order."""
        return [np.array(w.data) for w in self.weights]

    def set_weights(self, weights) -> None:
        """Set the weights from a list of arrays in `weights` order."""
        own = self.weights
        weights = list(weights)
        if len(weights) != len(own):
            raise ValueError(
                f"Layer {self.name!r} expects {len(own)} weight arrays "
                f"({[w.name for w in own]}), received {len(weights)}."
            )
        for var, value in zip(own, weights):
            value = np.asarray(value)
            if value.shape != var.shape:
                raise ValueError(
                    f"Layer {self.name!r}, weight {var.name!r}: expected shape "
                    f"{var.shape}, received shape {value.shape}."
                )
        for var, value in zip(own, weights):
            var.assign(value)

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(
                f"Layer {self.name!r} is not built yet, so it has no weights to count. "
                "Call it on data or call build(input_shape) first."
            )
        return int(sum(w.size for w in self.weights))

    @property
    def losses(self) -> list:
        """Scalar penalty Tensors, as Keras 3 `layer.losses`: the activity penalties of the
        last call of this layer and of every sublayer (each once), then the penalty
        `var.regularizer(var)` of each trainable weight, computed now."""
        out = list(self._losses)
        seen, stack = {id(self)}, list(self._layers)
        while stack:
            layer = stack.pop(0)
            if id(layer) not in seen:
                seen.add(id(layer))
                out.extend(layer._losses)
                stack.extend(layer._layers)
        out.extend(var.regularizer(var) for var in self.trainable_weights
                   if var.regularizer is not None)
        return out

    def _record_activity_loss(self, outputs) -> None:
        """Append activity_regularizer(output) / batch_size for each output (Keras 3: the
        division keeps the weighting against weight penalties independent of batch size)."""
        for out in outputs if isinstance(outputs, (list, tuple)) else (outputs,):
            if isinstance(out, Tensor):
                loss = self.activity_regularizer(out)
                loss = loss if isinstance(loss, Tensor) else ops.tensor(loss, out.dtype)
                if out.ndim > 0 and out.shape[0] > 0:
                    loss = ops.divide(loss, float(out.shape[0]))
                self._losses.append(loss)

    # ---- functional API -----------------------------------------------------------------
    @property
    def input(self):
        """Symbolic input(s) of this layer's first call on symbolic tensors (Keras 3)."""
        from .input_layer import node_attribute  # same tier
        return node_attribute(self, "input")

    @property
    def output(self):
        """Symbolic output(s) of this layer's first call on symbolic tensors (Keras 3)."""
        from .input_layer import node_attribute  # same tier
        return node_attribute(self, "output")

    # ---- lifecycle ----------------------------------------------------------------------
    def build(self, input_shape) -> None:
        """Create the layer's weights for inputs of `input_shape` (batch axis included)."""
        self._build_input_shape = tuple(input_shape)
        self.built = True

    def _maybe_build(self, input_shape) -> None:
        if not self.built:
            input_shape = input_shape if isinstance(input_shape, dict) else tuple(input_shape)
            self.build(input_shape)
            self._build_input_shape = input_shape
            self.built = True

    def call(self, inputs, training=False):
        """Compute the output from `inputs` (Tensors); subclasses override."""
        return inputs

    def check_input_shape(self, shape: tuple) -> None:
        """Raise a ValueError naming this layer when `shape` does not fit its built shape."""
        expected = self._build_input_shape
        if expected is None:
            return
        if len(shape) != len(expected) or any(
            e is not None and s != e for s, e in zip(shape[1:], expected[1:])
        ):
            raise ValueError(
                f"Input to layer {self.name!r} ({type(self).__name__}) is incompatible: "
                f"expected shape {shape_str((None,) + tuple(expected[1:]))}, "
                f"received shape {shape_str(shape)}."
            )

    def __call__(self, inputs, training=None, **kwargs):
        if type(inputs) is not Tensor and type(inputs) is not np.ndarray:
            symbolic = _symbolic_call(self, inputs, training, kwargs)
            if symbolic is not None:
                return symbolic
            if _is_structure(inputs):  # several inputs: merge layers, multi-input models
                return self._call_structure(inputs, training, kwargs)
        if not isinstance(inputs, Tensor):
            inputs = _to_input_tensor(inputs, self.dtype, self.name)
        if not self.built:
            self._maybe_build(inputs.shape)
        else:
            self.check_input_shape(inputs.shape)
        training = bool(training) if training is not None else False
        if self._losses:
            self._losses = []  # losses describe the last call only
        if self._call_has_training:
            outputs = self.call(inputs, training=training, **kwargs)
        else:
            outputs = self.call(inputs, **kwargs)
        if self.activity_regularizer is not None:
            self._record_activity_loss(outputs)
        return outputs

    def _call_structure(self, inputs, training, kwargs):
        """`__call__` for a list/tuple/dict of inputs: convert each, build, call."""
        def convert(x):
            return x if isinstance(x, Tensor) else _to_input_tensor(x, self.dtype, self.name)
        if isinstance(inputs, dict):
            inputs = {k: convert(v) for k, v in inputs.items()}
            shapes = {k: v.shape for k, v in inputs.items()}
        else:
            inputs = [convert(x) for x in inputs]
            shapes = [x.shape for x in inputs]
        if not self.built:
            self._maybe_build(shapes)
        training = bool(training) if training is not None else False
        if self._losses:
            self._losses = []
        if self._call_has_training:
            outputs = self.call(inputs, training=training, **kwargs)
        else:
            outputs = self.call(inputs, **kwargs)
        if self.activity_regularizer is not None:
            self._record_activity_loss(outputs)
        return outputs

    def compute_output_shape(self, input_shape) -> tuple:
        """Output shape for `input_shape` (None batch allowed), by a dry run on zeros.

        A list (or dict) of shapes describes several inputs; a layer with several outputs
        returns a list of shapes.
        """
        def zeros(shape):
            return np.zeros(tuple(1 if d is None else d for d in shape), dtype=self.dtype)
        if isinstance(input_shape, dict):
            x = {k: zeros(s) for k, s in input_shape.items()}
            batch = next(iter(input_shape.values()))[0]
        elif _is_shape_list(input_shape):
            x, batch = [zeros(s) for s in input_shape], input_shape[0][0]
        else:
            x, batch = zeros(input_shape), input_shape[0]
        with no_grad():
            out = self(x, training=False)
        if isinstance(out, (list, tuple)):
            return [(batch,) + tuple(o.shape[1:]) for o in out]
        return (batch,) + tuple(out.shape[1:])

    # ---- config -------------------------------------------------------------------------
    def get_config(self) -> dict:
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = list(self._batch_input_shape)
        if self.activity_regularizer is not None:  # Keras 3 writes it only when set
            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def _init_parameters(cls) -> tuple:
    """Keyword names of every __init__ in the class hierarchy (for "did you mean")."""
    names = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            names.extend(p for p in inspect.signature(init).parameters
                         if p not in ("self", "kwargs", "args"))
    return tuple(names)


def _is_policy(dtype) -> bool:
    return isinstance(dtype, dict) or (isinstance(dtype, str) and "mixed" in dtype)


def _to_input_tensor(inputs, dtype, layer_name) -> Tensor:
    try:
        arr = np.asarray(inputs)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"Layer {layer_name!r} received input it cannot convert to an array: "
                        f"{type(inputs).__name__} ({exc}).") from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(
            f"Layer {layer_name!r} expects numeric input, received an array of dtype "
            f"{arr.dtype} (e.g. strings or objects). Convert it with np.asarray(x, "
            f"dtype='float32') after encoding non-numeric values."
        )
    if arr.dtype.kind != "f" or arr.dtype != np.dtype(dtype):
        arr = arr.astype(dtype)
    return Tensor(arr)


def _symbolic_call(layer, inputs, training, kwargs):
    """Hook for the functional API (symbolic KerasTensor inputs); None for real data."""
    from .input_layer import KerasTensor  # same tier
    values = inputs.values() if isinstance(inputs, dict) else inputs
    if isinstance(inputs, KerasTensor) or (
        isinstance(inputs, (list, tuple, dict)) and inputs
        and all(isinstance(t, KerasTensor) for t in values)
    ):
        if training is not None:  # an explicit training= is kept and honoured at run time
            kwargs = {**kwargs, "training": training}
        return KerasTensor.from_layer_call(layer, inputs, kwargs)
    return None


def _is_structure(inputs) -> bool:
    """True for a dict, or a list/tuple of arrays/Tensors (several inputs, not one array)."""
    if isinstance(inputs, dict):
        return bool(inputs)
    return isinstance(inputs, (list, tuple)) and bool(inputs) and all(
        isinstance(x, (Tensor, np.ndarray)) for x in inputs)


def _is_shape_list(shape) -> bool:
    """True for a list of shapes (several inputs), False for one shape."""
    return isinstance(shape, (list, tuple)) and bool(shape) and all(
        isinstance(s, (list, tuple)) for s in shape)


__all__ = ["Layer"]
_ = ops  # re-exported helper namespace for subclasses
