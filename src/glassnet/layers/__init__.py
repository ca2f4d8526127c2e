"""Layers, Keras-shaped: `glassnet.layers.Dense` and `from glassnet.layers import Dense`."""
from .activation_layers import *  # noqa: F401,F403
from .activation_layers import __all__ as _activation_all
from .base import Layer, get_layer_class
from .core import *  # noqa: F401,F403
from .core import __all__ as _core_all
from .input_layer import Input, InputLayer, KerasTensor
from .merging import *  # noqa: F401,F403
from .merging import __all__ as _merging_all
from .normalization import *  # noqa: F401,F403
from .normalization import __all__ as _norm_all
from .regularization import *  # noqa: F401,F403
from .regularization import __all__ as _regularization_all

__all__ = ["Layer", "Input", "InputLayer", "KerasTensor", "get_layer_class",
           *_core_all, *_norm_all, *_activation_all, *_regularization_all,
           *_merging_all]
