"""Merging layers: combine a list of tensors into one (Keras 3 `keras.layers.Concatenate`, …).

They take a list of inputs, so they are what joins the branches of a functional model
(wide & deep, multi-input models, skip connections).
"""
from __future__ import annotations

from ..autograd import ops
from .base import Layer, shape_str


class _Merge(Layer):
    """Base of the merging layers: checks the input list, then folds it with `_merge`."""

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) < 2 or \
                not isinstance(input_shape[0], (list, tuple)):
            raise ValueError(f"Layer {self.name!r} ({type(self).__name__}) must be called on "
                             f"a list of at least 2 inputs. Received input shape: "
                             f"{input_shape!r}")
        self._check_shapes([tuple(s) for s in input_shape])
        super().build(input_shape)

    def _check_shapes(self, shapes):
        first = shapes[0]
        for shape in shapes[1:]:
            if len(shape) != len(first) or any(
                    a is not None and b is not None and a != b
                    for a, b in zip(shape[1:], first[1:])):
                raise ValueError(
                    f"Layer {self.name!r} ({type(self).__name__}) needs inputs of the same "
                    f"shape. Received shapes {[shape_str(s) for s in shapes]}.")

    def call(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = self._merge(out, x)
        return out

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])


class Add(_Merge):
    """Element-wise sum of the inputs: y = x1 + x2 + …

    Example:
        >>> Add()([np.ones((2, 3)), np.ones((2, 3))]).shape
        (2, 3)
    """

    def _merge(self, a, b):
        return ops.add(a, b)


class Subtract(_Merge):
    """Difference of exactly two inputs: y = x1 - x2."""

    def build(self, input_shape):
        if isinstance(input_shape, (list, tuple)) and len(input_shape) != 2:
            raise ValueError(f"Layer {self.name!r} (Subtract) takes exactly 2 inputs. "
                             f"Received {len(input_shape)}.")
        super().build(input_shape)

    def _merge(self, a, b):
        return ops.subtract(a, b)


class Multiply(_Merge):
    """Element-wise product of the inputs: y = x1 * x2 * …"""

    def _merge(self, a, b):
        return ops.multiply(a, b)


class Maximum(_Merge):
    """Element-wise maximum of the inputs."""

    def _merge(self, a, b):
        return ops.maximum(a, b)


class Minimum(_Merge):
    """Element-wise minimum of the inputs."""

    def _merge(self, a, b):
        return ops.minimum(a, b)


class Average(_Merge):
    """Element-wise mean of the inputs: y = (x1 + … + xn) / n."""

    def call(self, inputs):
        return ops.divide(super().call(inputs), float(len(inputs)))

    def _merge(self, a, b):
        return ops.add(a, b)


class Concatenate(_Merge):
    """Concatenation of the inputs along `axis` (all other axes must agree).

    Args:
        axis: the axis to join along. Defaults to -1 (the features).

    Example:
        >>> Concatenate()([np.ones((2, 3)), np.ones((2, 5))]).shape
        (2, 8)
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _check_shapes(self, shapes):
        rank = len(shapes[0])
        axis = self.axis % rank
        for shape in shapes[1:]:
            if len(shape) != rank or any(
                    i != axis and i != 0 and a is not None and b is not None and a != b
                    for i, (a, b) in enumerate(zip(shape, shapes[0]))):
                raise ValueError(
                    f"Layer {self.name!r} (Concatenate, axis={self.axis}) needs inputs whose "
                    f"shapes agree except along the axis. Received shapes "
                    f"{[shape_str(s) for s in shapes]}.")

    def call(self, inputs):
        return ops.concatenate(list(inputs), axis=self.axis)

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        axis = self.axis % len(shapes[0])
        sizes = [s[axis] for s in shapes]
        out = list(shapes[0])
        out[axis] = None if None in sizes else sum(sizes)
        return tuple(out)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


__all__ = ["Add", "Average", "Concatenate", "Maximum", "Minimum", "Multiply", "Subtract"]
