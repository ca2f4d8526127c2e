"""Weight and activity regularizers with Keras 3 names, formulas, configs and lookup.

A regularizer is a callable `reg(x) -> scalar Tensor`, built with the differentiable ops of
`glassnet.autograd`, so that the penalty's gradient reaches the weight through `backward()`.
Layers take them as `kernel_regularizer=`, `bias_regularizer=`, `activity_regularizer=`;
weight penalties are computed on the fly and listed in `model.losses` (as in Keras 3).

    L1:   l1 * sum(|x|)          L2:   l2 * sum(x^2)   (no 1/2, as in Keras)
    L1L2: l1 * sum(|x|) + l2 * sum(x^2)

Example:
    >>> reg = get("l2")
    >>> float(reg(np.ones((5, 5), "float32")).data)   # 0.01 * 25
    0.25
"""
from __future__ import annotations

import math
import re

import numpy as np

from . import backend
from .autograd import Tensor, ops
from .errors import deserialize_registered, serialize_registered, unknown_identifier

__all__ = ["Regularizer", "L1", "L2", "L1L2", "OrthogonalRegularizer",
           "l1", "l2", "l1_l2", "orthogonal_regularizer", "get", "serialize", "deserialize"]

_REGISTRY: dict = {}  # normalised name -> class
_NAMES: set = set()  # snake_case names, for error messages


def _normalize(name) -> str:
    return str(name).lower().replace("_", "").replace("-", "")


def _snake_case(name: str) -> str:
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _check_factor(value, name: str) -> float:
    """A penalty factor: a finite float >= 0 (Keras `validate_float_arg`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating,
                                                         np.integer)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"Regularizer argument `{name}` must be a finite float >= 0. "
                         f"Received: {name}={value!r}")
    return float(value)


def _as_tensor(x) -> Tensor:
    """A Variable/Tensor stays itself (so the penalty is differentiable); arrays become
    constant Tensors of their float dtype."""
    if isinstance(x, Tensor):
        return x
    arr = np.asarray(x)
    return Tensor(arr if arr.dtype.kind == "f" else arr.astype("float32"))


class Regularizer:
    """Base class: a callable `(x) -> scalar Tensor` penalty with a config.

    Subclasses register under their class name, its snake_case form and `aliases`, so
    that `get()` and `deserialize()` find them. A plain function `fn(x) -> scalar` works
    wherever a regularizer is expected, too.

    Example:
        >>> class Square(Regularizer):
        ...     def __call__(self, x):
        ...         return ops.sum(ops.square(x))
    """

    aliases: tuple = ()  # extra lookup names, read from the class body only
    string_defaults: dict = {}  # constructor arguments used when looked up by a string

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in (cls.__name__, *cls.__dict__.get("aliases", ())):
            key, current = _normalize(name), _REGISTRY.get(_normalize(name))
            # NOTE: a user class never shadows a built-in ("l2" stays Keras's).
            if current is None or current.__module__ != __name__ or \
                    cls.__module__ == __name__:
                _REGISTRY[key] = cls
                _NAMES.add(_snake_case(name))

    def __call__(self, x) -> Tensor:
        """Return the penalty of `x` (the base class penalises nothing)."""
        x = _as_tensor(x)
        return Tensor(np.zeros((), dtype=x.dtype))

    def get_config(self) -> dict:
        """Return the `__init__` keyword arguments as a JSON-safe dict."""
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Regularizer:
        """Rebuild a regularizer from the output of `get_config()`."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class L1L2(Regularizer):
    """L1 and L2 penalties together: l1 * sum(|x|) + l2 * sum(x^2).

    Args:
        l1: L1 factor (None means 0). Defaults to 0.0.
        l2: L2 factor (None means 0). Defaults to 0.0.

    The string "l1_l2" (or "l1l2") gives l1 = l2 = 0.01, the values Keras documents for
    it (Keras 3 itself rejects "l1_l2" and gives a zero penalty for "L1L2").

    Example:
        >>> float(L1L2(l1=0.5, l2=0.25)(np.array([1.0, -2.0], "float32")).data)
        2.75

    Reference:
        keras/src/regularizers/regularizers.py
    """

    aliases = ("l1_l2",)
    string_defaults = {"l1": 0.01, "l2": 0.01}

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _check_factor(0.0 if l1 is None else l1, "l1")
        self.l2 = _check_factor(0.0 if l2 is None else l2, "l2")

    def __call__(self, x) -> Tensor:
        x = _as_tensor(x)
        penalty = Tensor(np.zeros((), dtype=x.dtype))
        if self.l1:
            penalty = ops.add(penalty, ops.multiply(ops.sum(ops.abs(x)), self.l1))
        if self.l2:
            penalty = ops.add(penalty, ops.multiply(ops.sum(ops.square(x)), self.l2))
        return penalty

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """L1 penalty: l1 * sum(|x|) (subgradient 0 at x = 0, as `sign`).

    Args:
        l1: the factor (None means 0.01). Defaults to 0.01.

    Example:
        >>> float(L1(0.5)(np.array([1.0, -2.0], "float32")).data)
        1.5
    """

    aliases = ("l1",)

    def __init__(self, l1=0.01):
        self.l1 = _check_factor(0.01 if l1 is None else l1, "l1")

    def __call__(self, x) -> Tensor:
        return ops.multiply(ops.sum(ops.abs(_as_tensor(x))), self.l1)

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(Regularizer):
    """L2 penalty: l2 * sum(x^2) (Keras has no 1/2: the gradient is 2 * l2 * x).

    Args:
        l2: the factor (None means 0.01). Defaults to 0.01.

    Example:
        >>> float(L2(2.0)(np.ones((5, 5), "float32")).data)
        50.0
    """

    aliases = ("l2",)

    def __init__(self, l2=0.01):
        self.l2 = _check_factor(0.01 if l2 is None else l2, "l2")

    def __call__(self, x) -> Tensor:
        return ops.multiply(ops.sum(ops.square(_as_tensor(x))), self.l2)

    def get_config(self) -> dict:
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Pushes the rows (or columns) of a rank-2 weight towards mutual orthogonality.

    u_i = w_i / max(||w_i||, eps);  penalty = factor * 0.5 * sum_{i != j} |u_i . u_j| /
    (n (n - 1) / 2), over the n rows ("rows") or columns ("columns").

    Args:
        factor: the factor. Defaults to 0.01.
        mode: "rows" or "columns". Defaults to "rows".

    Example:
        >>> float(OrthogonalRegularizer(1.0)(np.eye(3, dtype="float32")).data)
        0.0
    """

    aliases = ("orthogonal_regularizer",)

    def __init__(self, factor=0.01, mode="rows"):
        self.factor = _check_factor(factor, "factor")
        if mode not in ("rows", "columns"):
            raise ValueError('OrthogonalRegularizer `mode` must be "rows" or "columns". '
                             f"Received: mode={mode!r}")
        self.mode = mode

    def __call__(self, x) -> Tensor:
        x = _as_tensor(x)
        if x.ndim != 2:
            raise ValueError("OrthogonalRegularizer expects a rank-2 input (a Dense "
                             f"kernel). Received: shape {x.shape}")
        axis = 1 if self.mode == "rows" else 0
        norm = ops.sqrt(ops.sum(ops.square(x), axis=axis, keepdims=True))
        u = ops.divide(x, ops.maximum(norm, backend.epsilon()))
        product = ops.matmul(u, ops.transpose(u)) if axis == 1 else \
            ops.matmul(ops.transpose(u), u)
        size = x.shape[1 - axis]
        off_diagonal = ops.multiply(product, 1.0 - np.eye(size, dtype=x.dtype))
        pairs = size * (size - 1.0) / 2.0
        return ops.multiply(ops.sum(ops.abs(off_diagonal)), self.factor * 0.5 / pairs)

    def get_config(self) -> dict:
        return {"factor": self.factor, "mode": self.mode}


# Keras 3 exports the classes themselves under the lower-case names: l2(0.01) is an L2.
l1, l2, l1_l2, orthogonal_regularizer = L1, L2, L1L2, OrthogonalRegularizer


def serialize(regularizer):
    """Return the Keras 3 serialisation of a regularizer.

    {"module": "keras.regularizers", "class_name": ..., "config": ...,
    "registered_name": None}; a named function gives class_name "function".

    Args:
        regularizer: A `Regularizer`, a named function, a string, a dict or None.

    Returns:
        A JSON-safe dict; None, a string or a dict comes back unchanged.

    Example:
        >>> serialize(L2(0.1))["config"]
        {'l2': 0.1}
    """
    return serialize_registered(regularizer, Regularizer, __name__, "keras.regularizers",
                                "regularizer")


def deserialize(config, custom_objects=None):
    """Build a regularizer from `serialize()` output (or a Keras 2 {class_name, config}).

    Args:
        config: A dict with "class_name" and "config", or a name string.
        custom_objects: Optional dict name -> class or function, searched first.

    Returns:
        A regularizer (or the custom function).
    """
    return deserialize_registered(config, lambda name: _REGISTRY.get(_normalize(name)),
                                  _NAMES, "regularizer", get, custom_objects)


def get(identifier):
    """Return a regularizer for a name, a config dict, an instance, a class or a callable.

    Names match without regard to case or underscores ("l2", "L2", "l1_l2").

    Args:
        identifier: None, a string, a dict (`serialize` output), a `Regularizer`, a
            regularizer class (instantiated with its defaults) or a callable `fn(x)`.

    Returns:
        A regularizer, or None for None.

    Example:
        >>> get("l2")
        L2(l2=0.01)
    """
    if identifier is None:
        return None
    if isinstance(identifier, str):
        cls = _REGISTRY.get(_normalize(identifier))
        if cls is None:
            raise unknown_identifier("regularizer", identifier, _NAMES)
        return cls(**cls.string_defaults)
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError("Could not interpret regularizer identifier: expected None, a "
                     f"string, a dict, a Regularizer or a callable. Received: {identifier!r}")
