"""Utilities, as `keras.utils`: seeding, label encoding, normalisation."""
from __future__ import annotations

import random
import warnings

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


def recalibrate_batchnorm(model, x, batch_size=256) -> dict:
    """Set every BatchNormalization layer's moving mean and variance to the exact
    statistics of its inputs over `x` (streamed, layer by layer); returns
    {layer name: samples used}. See `glassnet.training.bn_stats.recalibrate_batchnorm`.

    Example:
        >>> glassnet.utils.recalibrate_batchnorm(model, x_train, batch_size=512)
    """
    from .training.bn_stats import recalibrate_batchnorm as recalibrate  # keeps import light
    return recalibrate(model, x, batch_size=batch_size)


def mc_dropout(model):
    """Context manager: inside it the dropout-family layers of `model` drop at inference
    too, every other layer (BatchNormalization included) stays in inference mode. See
    `glassnet.layers.regularization.mc_dropout`.

    Example:
        >>> with glassnet.utils.mc_dropout(model):
        ...     y1, y2 = model.predict(x), model.predict(x)   # two stochastic passes
    """
    from .layers.regularization import mc_dropout as scope  # keeps import light
    return scope(model)


def mc_predict(model, x, n_samples=30, batch_size=None):
    """Monte-Carlo dropout: the mean and spread of `n_samples` stochastic predictions.

    mean = (1/N) sum_i f_i(x),  std = sqrt((1/N) sum_i (f_i(x) - mean)^2), where f_i keeps
    its dropout-family layers on (new masks each pass) and runs everything else in
    inference mode: BatchNormalization uses and keeps its moving statistics. A model
    without dropout gives std == 0 exactly (and a warning).

    Args:
        model: a built Model.
        x: inputs, as for `model.predict`.
        n_samples: number of stochastic passes. Defaults to 30.
        batch_size: batch size of each pass. Defaults to None (32, as `predict`).

    Returns:
        `(mean, std)`, arrays of the model's output shape and dtype.

    Example:
        >>> mean, std = glassnet.utils.mc_predict(model, x_test[:3], n_samples=100)

    Reference:
        Gal & Ghahramani, 2016, https://arxiv.org/abs/1506.02142
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) \
            or n_samples < 1:
        raise ValueError("`n_samples` must be a positive int. "
                         f"Received: n_samples={n_samples!r}")
    with mc_dropout(model) as stochastic:
        if not stochastic:
            warnings.warn(f"mc_predict: model {getattr(model, 'name', model)!r} has no "
                          "Dropout, AlphaDropout or GaussianDropout layer, so every sample "
                          "is the same and the spread is 0.", stacklevel=2)
        samples = np.stack([model.predict(x, batch_size=batch_size, verbose=0)
                            for _ in range(int(n_samples))])
    # NOTE: float64 accumulation makes the mean of identical samples exact, so std is 0.
    mean = samples.mean(axis=0, dtype=np.float64)
    std = np.sqrt(np.mean(np.square(samples - mean), axis=0))
    return mean.astype(samples.dtype), std.astype(samples.dtype)


__all__ = ["set_random_seed", "to_categorical", "normalize", "recalibrate_batchnorm",
           "mc_dropout", "mc_predict"]
