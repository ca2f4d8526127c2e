"""`glassnet.ops`: the common math on Tensors, named as `keras.ops` (all differentiable)."""
from __future__ import annotations

import numpy as np

from .autograd import Tensor
from .autograd.ops import (abs, add, broadcast_to, cast, clip, concatenate, divide, exp,  # noqa
                           expand_dims, log, log1p, log_softmax, logsumexp, matmul, max,
                           maximum, mean, min, minimum, multiply, negative, power, relu,
                           reshape, sigmoid, sign, softmax, softplus, sqrt, square, squeeze,
                           stack, std, subtract, sum, tanh, transpose, var, where)
from .autograd.ops import tensor as _tensor

dot = matmul
true_divide = divide


def convert_to_tensor(x, dtype=None, sparse=None) -> Tensor:
    """Return `x` as a Tensor (Python floats become floatx())."""
    return _tensor(x, dtype=dtype)


def convert_to_numpy(x) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def argmax(x, axis=None, keepdims=False) -> Tensor:
    return Tensor(np.argmax(convert_to_numpy(x), axis=axis, keepdims=keepdims))


def argmin(x, axis=None, keepdims=False) -> Tensor:
    return Tensor(np.argmin(convert_to_numpy(x), axis=axis, keepdims=keepdims))


def shape(x) -> tuple:
    return tuple(np.shape(convert_to_numpy(x)))


def zeros(shape, dtype=None) -> Tensor:
    from .backend import standardize_dtype
    return Tensor(np.zeros(shape, standardize_dtype(dtype)))


def ones(shape, dtype=None) -> Tensor:
    from .backend import standardize_dtype
    return Tensor(np.ones(shape, standardize_dtype(dtype)))


def equal(a, b) -> Tensor:
    return Tensor(np.equal(convert_to_numpy(a), convert_to_numpy(b)))


def one_hot(x, num_classes, dtype=None) -> Tensor:
    from .backend import standardize_dtype
    labels = np.asarray(convert_to_numpy(x)).astype(np.int64)
    return Tensor((labels[..., None] == np.arange(num_classes)).astype(
        standardize_dtype(dtype)))


def stop_gradient(x) -> Tensor:
    return Tensor(convert_to_numpy(x))


def norm(x, ord=None, axis=None, keepdims=False) -> Tensor:
    """Euclidean norm (ord None/2/'fro') along `axis`, differentiable."""
    if ord not in (None, 2, "fro", "euclidean"):
        raise ValueError(f"ops.norm supports the 2-norm only. Received: ord={ord!r}")
    return sqrt(sum(square(x), axis=axis, keepdims=keepdims))
