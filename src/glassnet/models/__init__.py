"""Models: Sequential and Model (Keras-shaped namespace `glassnet.models`)."""
from .model import Model
from .sequential import Sequential

__all__ = ["Model", "Sequential"]
