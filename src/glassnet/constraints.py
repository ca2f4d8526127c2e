"""Weight constraints with Keras 3 names, formulas, configs and lookup.

A constraint is a projection `c(w: ndarray) -> ndarray` that the optimizer applies to a
weight after each update (`var.assign(var.constraint(var.data))`). Layers take them as
`kernel_constraint=`, `bias_constraint=`. Norms are taken along `axis` (axis=0: each
column of a Dense kernel, i.e. the weights into one unit), with Keras' epsilon (1e-7):

    MaxNorm:    w * clip(n, 0, max_value) / (eps + n)
    NonNeg:     max(w, 0)
    UnitNorm:   w / (eps + n)
    MinMaxNorm: w * (rate * clip(n, min_value, max_value) + (1 - rate) * n) / (eps + n)

Example:
    >>> MaxNorm(1.0)(np.array([[3.0], [4.0]], "float32")).round(3).ravel()
    array([0.6, 0.8], dtype=float32)
"""
from __future__ import annotations

import re

import numpy as np

from . import backend
from .errors import deserialize_registered, serialize_registered, unknown_identifier

__all__ = ["Constraint", "MaxNorm", "NonNeg", "UnitNorm", "MinMaxNorm",
           "max_norm", "non_neg", "unit_norm", "min_max_norm",
           "get", "serialize", "deserialize"]

_REGISTRY: dict = {}  # normalised name -> class
_NAMES: set = set()  # snake_case names, for error messages


def _normalize(name) -> str:
    return str(name).lower().replace("_", "").replace("-", "")


def _snake_case(name: str) -> str:
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _axis(axis):
    """JSON lists become tuples so that NumPy accepts several axes."""
    return tuple(int(a) for a in axis) if isinstance(axis, (list, tuple)) else int(axis)


def _config_axis(axis):
    return list(axis) if isinstance(axis, tuple) else axis


def _norms(w: np.ndarray, axis) -> np.ndarray:
    xp = backend.xp_of(w)
    return xp.sqrt(xp.sum(xp.square(w), axis=axis, keepdims=True))


class Constraint:
    """Base class: a projection `(w: ndarray) -> ndarray` with a config.

    Subclasses register under their class name, its snake_case form and `aliases`. The
    base class returns `w` unchanged; a plain function `fn(w) -> w` works too.

    Example:
        >>> class Clip(Constraint):
        ...     def __call__(self, w):
        ...         return np.clip(w, -1, 1)
    """

    aliases: tuple = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in (cls.__name__, *cls.__dict__.get("aliases", ())):
            key, current = _normalize(name), _REGISTRY.get(_normalize(name))
            # NOTE: a user class never shadows a built-in ("max_norm" stays Keras's).
            if current is None or current.__module__ != __name__ or \
                    cls.__module__ == __name__:
                _REGISTRY[key] = cls
                _NAMES.add(_snake_case(name))

    def __call__(self, w: np.ndarray) -> np.ndarray:
        """Return the projection of `w` (the base class returns it unchanged)."""
        return w

    def get_config(self) -> dict:
        """Return the `__init__` keyword arguments as a JSON-safe dict."""
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Constraint:
        """Rebuild a constraint from the output of `get_config()`."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MaxNorm(Constraint):
    """Caps the norm of the weights into each unit: w * clip(n, 0, max_value) / (eps + n).

    NOTE: as in Keras, a weight already within the bound is still multiplied by
    n / (eps + n), i.e. shrunk by a relative 1e-7 / n.

    Args:
        max_value: the largest norm allowed. Defaults to 2.
        axis: axis (or axes) of the norm; 0 for a Dense kernel (in, out), [0, 1, 2] for
            a Conv2D kernel. Defaults to 0.

    Example:
        >>> w = MaxNorm(2)(np.full((4, 3), 5.0, "float32"))
        >>> bool(np.all(np.linalg.norm(w, axis=0) <= 2))
        True

    Reference:
        Srivastava et al., 2014, https://jmlr.org/papers/v15/srivastava14a.html
    """

    aliases = ("max_norm",)

    def __init__(self, max_value=2, axis=0):
        if max_value is None or max_value < 0:
            raise ValueError(f"MaxNorm `max_value` must be >= 0. Received: "
                             f"max_value={max_value!r}")
        self.max_value = max_value
        self.axis = _axis(axis)

    def __call__(self, w):
        xp = backend.xp_of(w)
        norms = _norms(w, self.axis)
        desired = xp.clip(norms, 0, self.max_value)
        return w * (desired / (backend.epsilon() + norms))

    def get_config(self):
        return {"max_value": self.max_value, "axis": _config_axis(self.axis)}


class NonNeg(Constraint):
    """Clips the weights at zero from below: max(w, 0).

    Example:
        >>> NonNeg()(np.array([-1.0, 2.0], "float32"))
        array([0., 2.], dtype=float32)
    """

    aliases = ("non_neg",)

    def __call__(self, w):
        return backend.xp_of(w).maximum(w, w.dtype.type(0))


class UnitNorm(Constraint):
    """Scales the weights into each unit to norm 1: w / (eps + n).

    Args:
        axis: axis (or axes) of the norm. Defaults to 0.

    Example:
        >>> np.linalg.norm(UnitNorm()(np.array([[3.0], [4.0]], "float32"))).round(5)
        1.0
    """

    aliases = ("unit_norm",)

    def __init__(self, axis=0):
        self.axis = _axis(axis)

    def __call__(self, w):
        return w / (backend.epsilon() + _norms(w, self.axis))

    def get_config(self):
        return {"axis": _config_axis(self.axis)}


class MinMaxNorm(Constraint):
    """Keeps the norm of the weights into each unit in [min_value, max_value].

    w * (rate * clip(n, min_value, max_value) + (1 - rate) * n) / (eps + n); rate = 1
    enforces the bounds at once, rate < 1 moves the norm part of the way each step.

    Args:
        min_value: the smallest norm. Defaults to 0.0.
        max_value: the largest norm. Defaults to 1.0.
        rate: how far to move towards the interval per application. Defaults to 1.0.
        axis: axis (or axes) of the norm. Defaults to 0.

    Example:
        >>> w = MinMaxNorm(1.0, 2.0)(np.array([[0.3], [0.4]], "float32"))
        >>> float(np.linalg.norm(w).round(5))
        1.0
    """

    aliases = ("min_max_norm",)

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        if min_value is None or max_value is None or not 0 <= min_value <= max_value:
            raise ValueError("MinMaxNorm needs 0 <= min_value <= max_value. Received: "
                             f"min_value={min_value!r}, max_value={max_value!r}")
        if rate is None or not 0 <= rate <= 1:
            raise ValueError(f"MinMaxNorm `rate` must be in [0, 1]. Received: rate={rate!r}")
        self.min_value = min_value
        self.max_value = max_value
        self.rate = rate
        self.axis = _axis(axis)

    def __call__(self, w):
        xp = backend.xp_of(w)
        norms = _norms(w, self.axis)
        desired = self.rate * xp.clip(norms, self.min_value, self.max_value) \
            + (1 - self.rate) * norms
        return w * (desired / (backend.epsilon() + norms))

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value,
                "rate": self.rate, "axis": _config_axis(self.axis)}


# Keras 3 exports the classes themselves under the lower-case names.
max_norm, non_neg, unit_norm, min_max_norm = MaxNorm, NonNeg, UnitNorm, MinMaxNorm


def serialize(constraint):
    """Return the Keras 3 serialisation of a constraint.

    {"module": "keras.constraints", "class_name": ..., "config": ...,
    "registered_name": None}; a named function gives class_name "function".

    Args:
        constraint: A `Constraint`, a named function, a string, a dict or None.

    Returns:
        A JSON-safe dict; None, a string or a dict comes back unchanged.

    Example:
        >>> serialize(MaxNorm(3))["config"]
        {'max_value': 3, 'axis': 0}
    """
    return serialize_registered(constraint, Constraint, __name__, "keras.constraints",
                                "constraint")


def deserialize(config, custom_objects=None):
    """Build a constraint from `serialize()` output (or a Keras 2 {class_name, config}).

    Args:
        config: A dict with "class_name" and "config", or a name string.
        custom_objects: Optional dict name -> class or function, searched first.

    Returns:
        A constraint (or the custom function).
    """
    return deserialize_registered(config, lambda name: _REGISTRY.get(_normalize(name)),
                                  _NAMES, "constraint", get, custom_objects)


def get(identifier):
    """Return a constraint for a name, a config dict, an instance, a class or a callable.

    Names match without regard to case or underscores ("max_norm", "MaxNorm").

    Args:
        identifier: None, a string, a dict (`serialize` output), a `Constraint`, a
            constraint class (instantiated with its defaults) or a callable `fn(w)`.

    Returns:
        A constraint, or None for None.

    Example:
        >>> get("max_norm")
        MaxNorm(max_value=2, axis=0)
    """
    if identifier is None:
        return None
    if isinstance(identifier, str):
        cls = _REGISTRY.get(_normalize(identifier))
        if cls is None:
            raise unknown_identifier("constraint", identifier, _NAMES)
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError("Could not interpret constraint identifier: expected None, a "
                     f"string, a dict, a Constraint or a callable. Received: {identifier!r}")
