"""Optimizers (Keras 3 names, defaults and update rules), looked up with `get()`.

Every optimizer packs its variables into one flat buffer per dtype and updates them all with
a constant number of NumPy calls (see `base`).
"""
from __future__ import annotations

from ..errors import unknown_identifier
from .adaptive import *  # noqa: F403
from .adaptive import __all__ as _adaptive_all
from . import schedules
from .base import _REGISTRY, Optimizer
from .sgd import *  # noqa: F403
from .sgd import __all__ as _sgd_all

__all__ = ["Optimizer", "get", "serialize", "deserialize", "schedules", *_sgd_all,
           *_adaptive_all]


def serialize(optimizer) -> dict:
    """Return `{"module", "class_name", "config", "registered_name"}` as Keras 3 does."""
    return {"module": "keras.optimizers", "class_name": type(optimizer).__name__,
            "config": optimizer.get_config(), "registered_name": None}


def deserialize(config, custom_objects=None) -> Optimizer:
    """Rebuild an optimizer from `serialize()` output (class name case-insensitive)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError("An optimizer config must be a dict with 'class_name' and 'config'. "
                         f"Received: {config!r}")
    name = config["class_name"]
    cls = (custom_objects or {}).get(name) or _REGISTRY.get(str(name).lower())
    if cls is None:
        raise unknown_identifier("optimizer", name, _REGISTRY)
    return cls.from_config(config.get("config") or {}, custom_objects=custom_objects)


def get(identifier) -> Optimizer:
    """Return an optimizer from a name ("adam", "RMSprop", ...), a config dict or an instance.

    Example:
        >>> get("sgd").learning_rate
        0.01
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = _REGISTRY.get(identifier.lower())
        if cls is None:
            raise unknown_identifier("optimizer", identifier, _REGISTRY)
        return cls()
    raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}. Pass a name "
                     "such as 'adam', a config dict or an Optimizer instance.")
