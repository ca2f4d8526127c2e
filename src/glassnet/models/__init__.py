"""Models: Sequential and Model (Keras-shaped namespace `glassnet.models`)."""
from .cloning import clone_model
from .finetune import fine_tune, set_lr_multiplier
from .model import Model
from .sequential import Sequential


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True, **kwargs):
    """Load a `.keras` or `.h5` model (Keras' own formats); see `glassnet.saving`."""
    from .. import saving  # sanctioned upward call (saving sits above models)
    return saving.load_model(filepath, custom_objects=custom_objects, compile=compile,
                             safe_mode=safe_mode, **kwargs)


def save_model(model, filepath, overwrite=True, **kwargs):
    """Save `model` to `.keras` or `.h5`; see `glassnet.saving.save_model`."""
    from .. import saving
    return saving.save_model(model, filepath, overwrite=overwrite, **kwargs)


def model_from_json(json_string, custom_objects=None):
    """Rebuild a model (fresh weights) from Keras JSON; see `Model.to_json`."""
    from .. import saving
    return saving.model_from_json(json_string, custom_objects=custom_objects)


__all__ = ["Model", "Sequential", "clone_model", "fine_tune", "set_lr_multiplier",
           "load_model", "save_model", "model_from_json"]
