"""glassnet: deep learning you can see through — a Keras-compatible library on NumPy.

`import glassnet as keras` runs Keras code unchanged. Submodules load on first use, so
`import glassnet` stays fast.
"""
import importlib

__version__ = "0.1.0"

_SUBMODULES = ("activations", "backend", "callbacks", "config", "datasets", "diagnostics",
               "initializers", "layers", "losses", "metrics", "models", "ops", "optimizers",
               "utils", "autograd", "saving", "lab", "plot", "regularizers", "constraints")

# Top-level names (as in `keras.Sequential`) and the module that defines each.
_ATTRIBUTES = {
    "Sequential": "models", "Model": "models", "Input": "layers", "Layer": "layers",
    "Variable": "autograd", "Tensor": "autograd", "no_grad": "autograd",
    "load_model": "saving", "save_model": "saving",
}


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f"glassnet.{name}")
        globals()[name] = module
        return module
    if name in _ATTRIBUTES:
        value = getattr(importlib.import_module(f"glassnet.{_ATTRIBUTES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'glassnet' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES) + list(_ATTRIBUTES))


__all__ = ["Sequential", "Model", "Input", "Variable", "Tensor", "no_grad", "activations",
           "backend", "callbacks", "config", "datasets", "initializers", "layers", "losses",
           "metrics", "models", "ops", "optimizers", "utils"]
