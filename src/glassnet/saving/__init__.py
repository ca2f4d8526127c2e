"""Saving and loading in Keras' own formats (`keras.saving` namespace).

`.keras` (Keras 3 zip), `.h5` (Keras' legacy HDF5, including files written by Keras 2)
and `.weights.h5`. Loading is safe (no pickle, marshal or eval; classes come from glassnet,
`custom_objects` or `register_keras_serializable`), bounded (`limits`) and all-or-nothing;
saving is atomic.

Example:
    >>> model.save("model.keras")
    >>> same = glassnet.saving.load_model("model.keras")
    >>> report = model.load_weights("old.weights.h5", skip_mismatch=True); print(report)
"""
from __future__ import annotations

from .api import load_model, load_weights, model_from_json, save_model, save_weights, to_json
from .deserialize import _CUSTOM_REGISTRY
from .guard import Limits, SavingError, limits
from .weights import LoadReport


def register_keras_serializable(package="Custom", name=None):
    """Class decorator: make a custom class loadable by name without `custom_objects`.

    Registers it as "package>name" (Keras' registered name) and as its class name.

    Example:
        >>> @register_keras_serializable(package="my_pkg")
        ... class Scale(glassnet.layers.Layer): ...
    """
    def decorator(obj):
        key = name or getattr(obj, "__name__", None)
        if not key:
            raise ValueError(f"Cannot register {obj!r}: it has no __name__; pass `name`.")
        _CUSTOM_REGISTRY[f"{package}>{key}"] = obj
        _CUSTOM_REGISTRY[key] = obj
        return obj
    return decorator


def get_custom_objects() -> dict:
    """The registry filled by `register_keras_serializable` (a live dict, as in Keras)."""
    return _CUSTOM_REGISTRY


__all__ = ["save_model", "load_model", "save_weights", "load_weights", "model_from_json",
           "to_json", "SavingError", "LoadReport", "Limits", "limits",
           "register_keras_serializable", "get_custom_objects"]
