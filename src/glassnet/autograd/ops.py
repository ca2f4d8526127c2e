"""Differentiable primitives: each forward and its vector-Jacobian product side by side.

Every op takes Tensors (or array-likes / Python numbers, which become constants) and
returns a Tensor. A VJP maps the output gradient `g` to one gradient per parent (or None)
and mutates nothing; the engine sums and unbroadcasts.
"""
from __future__ import annotations

import builtins

import numpy as np

from .. import native
from .tensor import Tensor, as_array, is_scalar


def tensor(value, dtype=None) -> Tensor:
    """Return `value` as a Tensor (the same object if it already is one)."""
    if isinstance(value, Tensor):
        if dtype is not None and value.dtype != np.dtype(dtype):
            return cast(value, dtype)
        return value
    return Tensor(value, dtype=dtype)


def _pair(a, b):
    """Lift two operands; a Python number adopts the dtype of the other operand."""
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):
            return a, b
        if is_scalar(b):
            return a, Tensor(np.asarray(b, dtype=a.dtype if a.dtype.kind in "fc" else None))
        return a, Tensor(b)
    if isinstance(b, Tensor):
        if is_scalar(a):
            return Tensor(np.asarray(a, dtype=b.dtype if b.dtype.kind in "fc" else None)), b
        return Tensor(a), b
    return Tensor(a), Tensor(b)


# ---- arithmetic -------------------------------------------------------------------------
def add(a, b) -> Tensor:
    a, b = _pair(a, b)
    return Tensor.from_op(a.data + b.data, (a, b), lambda g: (g, g), "add")


def subtract(a, b) -> Tensor:
    a, b = _pair(a, b)
    return Tensor.from_op(a.data - b.data, (a, b), lambda g: (g, -g), "subtract")


def multiply(a, b) -> Tensor:
    a, b = _pair(a, b)
    return Tensor.from_op(a.data * b.data, (a, b),
                          lambda g: (g * b.data, g * a.data), "multiply")


def divide(a, b) -> Tensor:
    a, b = _pair(a, b)
    y = a.data / b.data
    return Tensor.from_op(y, (a, b), lambda g: (g / b.data, -g * y / b.data), "divide")


def negative(x) -> Tensor:
    x = tensor(x)
    return Tensor.from_op(-x.data, (x,), lambda g: (-g,), "negative")


def power(a, b) -> Tensor:
    a, b = _pair(a, b)
    y = a.data ** b.data

    def vjp(g):
        ga = g * b.data * a.data ** (b.data - 1) if a.requires_grad else None
        gb = None
        if b.requires_grad:
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = g * y * np.where(a.data > 0, np.log(np.where(a.data > 0, a.data, 1)), 0)
        return ga, gb
    return Tensor.from_op(y, (a, b), vjp, "power")


def square(x) -> Tensor:
    x = tensor(x)
    return Tensor.from_op(x.data * x.data, (x,), lambda g: (2 * g * x.data,), "square")


def sqrt(x) -> Tensor:
    x = tensor(x)
    y = np.sqrt(x.data)
    return Tensor.from_op(y, (x,), lambda g: (g / (2 * y),), "sqrt")


def exp(x) -> Tensor:
    x = tensor(x)
    y = np.exp(x.data)
    return Tensor.from_op(y, (x,), lambda g: (g * y,), "exp")


def log(x) -> Tensor:
    x = tensor(x)
    return Tensor.from_op(np.log(x.data), (x,), lambda g: (g / x.data,), "log")


def log1p(x) -> Tensor:
    x = tensor(x)
    return Tensor.from_op(np.log1p(x.data), (x,), lambda g: (g / (1 + x.data),), "log1p")


def abs(x) -> Tensor:  # noqa: A001 - mirrors keras.ops.abs
    x = tensor(x)
    return Tensor.from_op(np.abs(x.data), (x,), lambda g: (g * np.sign(x.data),), "abs")


def sign(x) -> Tensor:
    x = tensor(x)
    return Tensor.from_op(np.sign(x.data), (x,), lambda g: (None,), "sign")


def matmul(a, b) -> Tensor:
    a, b = _pair(a, b)

    def vjp(g):
        ga = gb = None
        if a.requires_grad:
            ga = g @ np.swapaxes(b.data, -1, -2) if b.ndim > 1 else np.multiply.outer(g, b.data)
        if b.requires_grad:
            if a.ndim == 1:
                gb = np.multiply.outer(a.data, g)
            elif b.ndim == 1:
                gb = (np.swapaxes(a.data, -1, -2) @ g[..., None])[..., 0]
            else:
                gb = np.swapaxes(a.data, -1, -2) @ g
        return ga, gb
    return Tensor.from_op(a.data @ b.data, (a, b), vjp, "matmul")


def maximum(a, b) -> Tensor:
    a, b = _pair(a, b)
    mask = a.data >= b.data
    return Tensor.from_op(np.maximum(a.data, b.data), (a, b),
                          lambda g: (g * mask, g * ~mask), "maximum")


def minimum(a, b) -> Tensor:
    a, b = _pair(a, b)
    mask = a.data <= b.data
    return Tensor.from_op(np.minimum(a.data, b.data), (a, b),
                          lambda g: (g * mask, g * ~mask), "minimum")


def where(condition, a, b) -> Tensor:
    cond = as_array(condition).astype(bool, copy=False)
    a, b = _pair(a, b)
    return Tensor.from_op(np.where(cond, a.data, b.data), (a, b),
                          lambda g: (np.where(cond, g, 0), np.where(cond, 0, g)), "where")


def clip(x, min_value, max_value) -> Tensor:
    x = tensor(x)
    inside = (x.data >= min_value) & (x.data <= max_value)
    return Tensor.from_op(np.clip(x.data, min_value, max_value), (x,),
                          lambda g: (g * inside,), "clip")


def cast(x, dtype) -> Tensor:
    x = tensor(x)
    source = x.dtype
    return Tensor.from_op(x.data.astype(dtype), (x,),
                          lambda g: (g.astype(source),), "cast")


# ---- elementwise nonlinearities -----------------------------------------------------------
def unary(x, y: np.ndarray, dy_dx, op: str) -> Tensor:
    """Build an elementwise op from its output `y` and `dy_dx()` (called only on backward)."""
    x = tensor(x)
    return Tensor.from_op(y, (x,), lambda g: (g * dy_dx(),), op)


def stable_sigmoid(z: np.ndarray) -> np.ndarray:
    """sigmoid(z) = 1 / (1 + exp(-z)) without overflow for large |z|."""
    # NOTE: 0.5 * tanh(z/2) + 0.5 is exact sigmoid and never overflows, in one pass.
    y = np.multiply(z, 0.5)
    np.tanh(y, out=y)
    y *= 0.5
    y += 0.5
    return y


def sigmoid(x) -> Tensor:
    x = tensor(x)
    y = stable_sigmoid(x.data)
    return Tensor.from_op(y, (x,), lambda g: (g * y * (1 - y),), "sigmoid")


def tanh(x) -> Tensor:
    x = tensor(x)
    y = np.tanh(x.data)
    return Tensor.from_op(y, (x,), lambda g: (g * (1 - y * y),), "tanh")


def relu(x) -> Tensor:
    x = tensor(x)
    y = np.maximum(x.data, 0)
    # NOTE: the subgradient at 0 is 0, as in TF and PyTorch.
    return Tensor.from_op(y, (x,), lambda g: (g * (x.data > 0),), "relu")


def softplus(x) -> Tensor:
    """softplus(x) = log(1 + exp(x)), computed as max(x, 0) + log1p(exp(-|x|))."""
    x = tensor(x)
    y = np.maximum(x.data, 0) + np.log1p(np.exp(-np.abs(x.data)))
    return Tensor.from_op(y, (x,), lambda g: (g * stable_sigmoid(x.data),), "softplus")


def logsumexp(x, axis=-1, keepdims=False) -> Tensor:
    x = tensor(x)
    m = np.max(x.data, axis=axis, keepdims=True)
    e = np.exp(x.data - m)
    s = e.sum(axis=axis, keepdims=True)
    y = np.log(s) + m

    def vjp(g):
        gk = g if keepdims else np.expand_dims(g, axis)
        return (gk * e / s,)
    return Tensor.from_op(y if keepdims else np.squeeze(y, axis), (x,), vjp, "logsumexp")


def softmax(x, axis=-1) -> Tensor:
    """softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x)."""
    x = tensor(x)
    y = _softmax_native(x.data, axis) if native.kernels is not None else None
    if y is None:
        y = x.data - np.max(x.data, axis=axis, keepdims=True)
        np.exp(y, out=y)
        y /= y.sum(axis=axis, keepdims=True)

    def vjp(g):
        gy = g * y
        return (gy - y * gy.sum(axis=axis, keepdims=True),)
    return Tensor.from_op(y, (x,), vjp, "softmax")


def _softmax_native(data, axis):
    """Softmax over the last axis in one compiled pass, or None where it does not apply."""
    if axis not in (-1, data.ndim - 1) or data.dtype.kind != "f":
        return None
    out = np.empty_like(data)
    try:
        native.kernels.softmax_rows(data, data.shape[-1], out)
        return out
    except (TypeError, ValueError, BufferError):  # float16, strided or empty
        return None


def log_softmax(x, axis=-1) -> Tensor:
    """log_softmax(x) = x - logsumexp(x), stable for any magnitude."""
    x = tensor(x)
    shifted = x.data - np.max(x.data, axis=axis, keepdims=True)
    y = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

    def vjp(g):
        return (g - np.exp(y) * g.sum(axis=axis, keepdims=True),)
    return Tensor.from_op(y, (x,), vjp, "log_softmax")


# ---- reductions -------------------------------------------------------------------------
def _expand(g, shape, axis, keepdims):
    if axis is None:
        return np.broadcast_to(g, shape)
    if not keepdims:
        axes = (axis,) if np.isscalar(axis) else tuple(axis)
        axes = tuple(a % len(shape) for a in axes)
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape)


def sum(x, axis=None, keepdims=False) -> Tensor:  # noqa: A001
    x = tensor(x)
    return Tensor.from_op(np.sum(x.data, axis=axis, keepdims=keepdims), (x,),
                          lambda g: (_expand(g, x.shape, axis, keepdims),), "sum")


def mean(x, axis=None, keepdims=False) -> Tensor:
    x = tensor(x)
    if axis is None and not keepdims and x.data.dtype.kind == "f" and x.data.itemsize >= 4 \
            and x.data.size:
        return _mean_all(x)
    y = np.mean(x.data, axis=axis, keepdims=keepdims)
    count = x.data.size // builtins.max(np.size(y), 1) if x.data.size else 1
    return Tensor.from_op(y, (x,),
                          lambda g: (_expand(g / count, x.shape, axis, keepdims),), "mean")


def _mean_all(x) -> Tensor:
    """mean over every element (the loss reduction), as np.mean but a third of the calls;
    its VJP is a contiguous array, which the fused loss VJPs take without a copy."""
    data = x.data
    return Tensor.from_op(mean_all_forward(data), (x,),
                          lambda g: (mean_all_backward(g, data),), "mean")


def mean_all_forward(data: np.ndarray):
    """The mean of every element of a float array (`mean`'s loss reduction)."""
    return np.add.reduce(data, axis=None) / data.dtype.type(data.size)


def mean_all_backward(g, data: np.ndarray) -> np.ndarray:
    """The gradient of `mean_all_forward(data)` for the output gradient g: g / size."""
    out = np.empty(data.shape, np.result_type(g, data.dtype))
    out.fill(g / data.size)
    return out


def var(x, axis=None, keepdims=False) -> Tensor:
    """Biased variance (divides by N), as keras.ops.var."""
    mu = mean(x, axis=axis, keepdims=True)
    return mean(square(subtract(x, mu)), axis=axis, keepdims=keepdims)


def std(x, axis=None, keepdims=False) -> Tensor:
    return sqrt(var(x, axis=axis, keepdims=keepdims))


def max(x, axis=None, keepdims=False) -> Tensor:  # noqa: A001
    x = tensor(x)
    y = np.max(x.data, axis=axis, keepdims=True)
    mask = x.data == y
    counts = mask.sum(axis=axis, keepdims=True)

    def vjp(g):
        gk = g if keepdims else _expand(g, y.shape, axis, False)
        return (mask * gk / counts,)
    out = y if keepdims else (np.squeeze(y, axis) if axis is not None else y.reshape(()))
    return Tensor.from_op(out, (x,), vjp, "max")


def min(x, axis=None, keepdims=False) -> Tensor:  # noqa: A001
    return negative(max(negative(x), axis=axis, keepdims=keepdims))


# ---- shape ------------------------------------------------------------------------------
def reshape(x, shape) -> Tensor:
    x = tensor(x)
    return Tensor.from_op(x.data.reshape(shape), (x,),
                          lambda g: (g.reshape(x.shape),), "reshape")


def transpose(x, axes=None) -> Tensor:
    x = tensor(x)
    inverse = None if axes is None else tuple(np.argsort(axes))
    return Tensor.from_op(np.transpose(x.data, axes), (x,),
                          lambda g: (np.transpose(g, inverse),), "transpose")


def expand_dims(x, axis) -> Tensor:
    x = tensor(x)
    return Tensor.from_op(np.expand_dims(x.data, axis), (x,),
                          lambda g: (g.reshape(x.shape),), "expand_dims")


def squeeze(x, axis=None) -> Tensor:
    x = tensor(x)
    return Tensor.from_op(np.squeeze(x.data, axis), (x,),
                          lambda g: (g.reshape(x.shape),), "squeeze")


def broadcast_to(x, shape) -> Tensor:
    x = tensor(x)
    return Tensor.from_op(np.broadcast_to(x.data, shape), (x,), lambda g: (g,), "broadcast_to")


def getitem(x, index) -> Tensor:
    x = tensor(x)
    if isinstance(index, Tensor):
        index = index.data

    def vjp(g):
        out = np.zeros_like(x.data)
        np.add.at(out, index, g)
        return (out,)
    return Tensor.from_op(x.data[index], (x,), vjp, "getitem")


def concatenate(tensors, axis=0) -> Tensor:
    tensors = tuple(tensor(t) for t in tensors)
    bounds = np.cumsum([t.shape[axis] for t in tensors])[:-1]
    return Tensor.from_op(np.concatenate([t.data for t in tensors], axis=axis), tensors,
                          lambda g: tuple(np.split(g, bounds, axis=axis)), "concatenate")


def stack(tensors, axis=0) -> Tensor:
    tensors = tuple(tensor(t) for t in tensors)
    n = len(tensors)
    return Tensor.from_op(np.stack([t.data for t in tensors], axis=axis), tensors,
                          lambda g: tuple(np.squeeze(p, axis) for p in
                                          np.split(g, n, axis=axis)), "stack")


# ---- operator dunders (the sanctioned cycle with tensor.py) -------------------------------
def _install_operators():
    T = Tensor
    T.__add__ = lambda a, b: add(a, b)
    T.__radd__ = lambda a, b: add(b, a)
    T.__sub__ = lambda a, b: subtract(a, b)
    T.__rsub__ = lambda a, b: subtract(b, a)
    T.__mul__ = lambda a, b: multiply(a, b)
    T.__rmul__ = lambda a, b: multiply(b, a)
    T.__truediv__ = lambda a, b: divide(a, b)
    T.__rtruediv__ = lambda a, b: divide(b, a)
    T.__pow__ = lambda a, b: power(a, b)
    T.__rpow__ = lambda a, b: power(b, a)
    T.__matmul__ = lambda a, b: matmul(a, b)
    T.__rmatmul__ = lambda a, b: matmul(b, a)
    T.__neg__ = lambda a: negative(a)
    T.__abs__ = lambda a: abs(a)
    T.__getitem__ = lambda a, i: getitem(a, i)
    T.__lt__ = lambda a, b: Tensor(a.data < as_array(b))
    T.__le__ = lambda a, b: Tensor(a.data <= as_array(b))
    T.__gt__ = lambda a, b: Tensor(a.data > as_array(b))
    T.__ge__ = lambda a, b: Tensor(a.data >= as_array(b))
    T.sum = lambda a, axis=None, keepdims=False: sum(a, axis, keepdims)
    T.mean = lambda a, axis=None, keepdims=False: mean(a, axis, keepdims)
    T.reshape = lambda a, *shape: reshape(a, shape[0] if len(shape) == 1 else shape)
    T.T = property(lambda a: transpose(a))
    T.exp = lambda a: exp(a)
    T.log = lambda a: log(a)


_install_operators()
