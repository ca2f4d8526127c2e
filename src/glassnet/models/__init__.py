"""Models: Sequential and Model (Keras-shaped namespace `glassnet.models`)."""
from .cloning import clone_model
from .finetune import fine_tune, set_lr_multiplier
from .model import Model
from .sequential import Sequential

__all__ = ["Model", "Sequential", "clone_model", "fine_tune", "set_lr_multiplier"]
