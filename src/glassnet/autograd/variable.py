"""Variable: a named, assignable leaf Tensor; the state that layers and optimizers share."""
from __future__ import annotations

import numpy as np

from .. import backend
from .tensor import Tensor, as_array


# Bumped when a Variable's `trainable` flag changes or a layer gains or loses a weight or a
# sublayer (`structure_changed()`): layers cache their weight lists under this number, so the
# training step does not walk the layer tree every call.
STRUCTURE_VERSION = [0]


def structure_changed() -> None:
    STRUCTURE_VERSION[0] += 1


class Variable(Tensor):
    """A persistent array with a name, a path and a `trainable` flag (Keras 3 `keras.Variable`).

    Its gradient is computed only while `trainable` is True. Optimizers may re-home
    `.data` into a view of one contiguous buffer (see `optimizers.base`): always go through
    `.assign` or in-place writes, never keep a reference to an old `.data` array.

    Args:
        initializer: an array-like, or a callable `init(shape, dtype)` used with `shape`.
        shape: shape for a callable initializer.
        dtype: defaults to the array's float dtype or `floatx()`.
        trainable: whether optimizers update it. Defaults to True.
        name: short name ("kernel"); `path` adds the owner ("dense/kernel").

    Example:
        >>> v = Variable(np.zeros((2, 3)), name="w")
        >>> v.assign(np.ones((2, 3))); v.numpy().sum()
        6.0
    """

    __slots__ = ("name", "path", "_trainable", "_grad_buffer", "_grad_claimed", "constraint",
                 "regularizer", "lr_multiplier")

    def __init__(self, initializer=None, shape=None, dtype=None, trainable=True,
                 name="variable", path=None, value=None):
        if value is not None and initializer is None:
            initializer = value
        if callable(initializer) and not isinstance(initializer, (np.ndarray, Tensor)):
            if shape is None:
                raise ValueError(f"Variable {name!r}: a callable initializer needs `shape`.")
            data = initializer(tuple(shape), dtype=backend.standardize_dtype(dtype))
            data = as_array(data)
        else:
            # NOTE: as keras.Variable, the dtype defaults to floatx() whatever the value's
            # dtype (a float64 NumPy array becomes a float32 Variable).
            dtype = backend.floatx() if dtype is None else dtype
            data = np.array(as_array(initializer), dtype=dtype)  # never alias user data
        if dtype is not None and data.dtype != np.dtype(dtype):
            data = data.astype(dtype)
        super().__init__(np.ascontiguousarray(data))
        self.name = name
        self.path = path or name
        self._trainable = bool(trainable)
        self.requires_grad = self._trainable
        self._grad_buffer = None
        self._grad_claimed = False
        self.constraint = None
        self.regularizer = None
        self.lr_multiplier = 1.0

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        self.requires_grad = self._trainable
        structure_changed()

    @property
    def value(self) -> np.ndarray:
        return self.data

    def grad_out(self):
        """The packed gradient buffer, if a VJP may write this variable's gradient straight
        into it (no gradient yet, buffer not already claimed in this backward pass)."""
        buf = self._grad_buffer
        if buf is None or self.grad is not None or self._grad_claimed:
            return None
        self._grad_claimed = True
        return buf

    def _accumulate_grad(self, g: np.ndarray) -> None:
        buf = self._grad_buffer
        self._grad_claimed = False
        if buf is None:
            self.grad = g if self.grad is None else self.grad + g
        elif self.grad is None:
            if g is not buf:  # a fused VJP may already have written into the buffer
                np.copyto(buf, g)
            self.grad = buf
        else:
            buf += g

    def assign(self, value) -> "Variable":
        """Write `value` into this variable in place (shape must match)."""
        value = as_array(value)
        if value.shape != self.data.shape:
            raise ValueError(
                f"Cannot assign to variable {self.path!r}: expected shape "
                f"{self.data.shape}, received shape {value.shape}."
            )
        np.copyto(self.data, value, casting="unsafe")
        return self

    def assign_add(self, value) -> "Variable":
        self.data += as_array(value)
        return self

    def assign_sub(self, value) -> "Variable":
        self.data -= as_array(value)
        return self

    def __repr__(self) -> str:
        return (f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype}, "
                f"trainable={self.trainable}>")
