"""Callbacks, as `keras.callbacks`."""
from .training.callbacks import Callback, CallbackList, History, LambdaCallback, ProgbarLogger
from .training.callbacks_extra import CSVLogger, LearningRateScheduler, TerminateOnNaN
from .training.monitor_callbacks import (EarlyStopping, ModelCheckpoint, MonitorCallback,
                                         ReduceLROnPlateau)

__all__ = ["Callback", "CallbackList", "History", "LambdaCallback", "ProgbarLogger",
           "EarlyStopping", "ModelCheckpoint", "MonitorCallback", "ReduceLROnPlateau",
           "LearningRateScheduler", "TerminateOnNaN", "CSVLogger"]
