"""Callbacks, as `keras.callbacks`."""
from .training.callbacks import Callback, CallbackList, History, LambdaCallback, ProgbarLogger

__all__ = ["Callback", "CallbackList", "History", "LambdaCallback", "ProgbarLogger"]
