"""Float64 central-difference gradient checker with a readable failure report."""
from __future__ import annotations

import numpy as np

from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised when an analytic gradient disagrees with finite differences."""


def numerical_grad(fn, inputs, index, eps=1e-6, weights=None) -> np.ndarray:
    """d sum(weights * fn(*inputs)) / d inputs[index] by central differences."""
    x = inputs[index].data
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        plus = np.array(fn(*inputs).data)
        x[i] = old - eps
        minus = np.array(fn(*inputs).data)
        x[i] = old
        diff = plus - minus if weights is None else (plus - minus) * weights
        grad[i] = diff.sum() / (2 * eps)
    return grad


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-6, rtol=1e-4, seed=0) -> bool:
    """Check the VJPs of `fn(*inputs)` against finite differences, in float64.

    Every float input (Tensor or array) is made a float64 leaf that requires a gradient.
    The output is contracted with fixed random weights, so every output element matters.
    Raises GradcheckError with the worst mismatch; returns True otherwise.
    """
    leaves = []
    for value in inputs:
        data = value.data if isinstance(value, Tensor) else np.asarray(value)
        if data.dtype.kind == "f":
            leaves.append(Tensor(data.astype(np.float64), requires_grad=True))
        else:
            leaves.append(Tensor(data))
    out = fn(*leaves)
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(weights.astype(out.dtype))
    for k, leaf in enumerate(leaves):
        if not leaf.requires_grad:
            continue
        analytic = leaf.grad if leaf.grad is not None else np.zeros_like(leaf.data)
        numeric = numerical_grad(fn, leaves, k, eps=eps, weights=weights)
        if not np.allclose(analytic, numeric, atol=atol, rtol=rtol):
            err = np.abs(analytic - numeric)
            worst = np.unravel_index(np.argmax(err), err.shape) if err.ndim else ()
            raise GradcheckError(
                f"gradient of input {k} (shape {leaf.shape}) is wrong: max |analytic - "
                f"numeric| = {err.max():.3e} at index {worst} (analytic "
                f"{analytic[worst]:.6g}, numeric {numeric[worst]:.6g})"
            )
    return True
