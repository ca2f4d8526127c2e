"""Global configuration, as `keras.config`: float dtype and epsilon."""
from .backend import epsilon, floatx, set_epsilon, set_floatx


def backend() -> str:
    """Name of the array backend ("numpy")."""
    return "numpy"


def image_data_format() -> str:
    return "channels_last"


__all__ = ["floatx", "set_floatx", "epsilon", "set_epsilon", "backend", "image_data_format"]
