"""Utilities, as `keras.utils`: seeding, label encoding, normalisation."""
from __future__ import annotations

import random

import numpy as np

from . import backend


def set_random_seed(seed: int) -> None:
    """Seed every random source glassnet uses (and Python's and NumPy's legacy global ones),
    so that the same seed gives a bit-identical run."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"`seed` must be an int. Received: seed={seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    backend.set_global_seed(int(seed))


def to_categorical(x, num_classes=None, dtype=None) -> np.ndarray:
    """One-hot encode integer class labels: (N,) → (N, num_classes)."""
    x = np.asarray(x)
    if x.ndim > 1 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.size and (np.any(x < 0) or np.any(x != np.round(x))):
        raise ValueError("to_categorical expects non-negative integer labels.")
    x = x.astype(np.int64)
    n = int(num_classes) if num_classes is not None else int(x.max()) + 1 if x.size else 0
    if x.size and x.max() >= n:
        raise ValueError(f"Label {int(x.max())} is out of range for num_classes={n}.")
    out = np.zeros(x.shape + (n,), dtype=backend.standardize_dtype(dtype))
    np.put_along_axis(out, x[..., None], 1, axis=-1)
    return out


def normalize(x, axis=-1, order=2) -> np.ndarray:
    """Scale `x` to unit `order`-norm along `axis`."""
    x = np.asarray(x)
    norm = np.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    return x / np.where(norm == 0, 1, norm)


__all__ = ["set_random_seed", "to_categorical", "normalize"]
