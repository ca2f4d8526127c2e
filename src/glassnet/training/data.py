"""Array batching for fit/evaluate/predict: validation, splitting, shuffled index batches."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..autograd import Tensor


def to_array(value, what: str) -> np.ndarray:
    """Convert user data to an ndarray, refusing non-numeric data with a clear message."""
    if isinstance(value, Tensor):
        value = value.data
    try:
        arr = np.asarray(value)
    except ValueError as exc:
        raise ValueError(f"`{what}` could not be converted to an array ({exc}). Ragged "
                         "lists are not supported: pad them to a common length.") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"`{what}` must be numeric, received an array of dtype {arr.dtype} "
            f"(first value: {arr.reshape(-1)[:1].tolist()!r}). Encode strings or objects as "
            "numbers first (e.g. labels → integer ids)."
        )
    return arr


def check_xy(x, y, sample_weight=None):
    """Validate lengths; return arrays. Empty data and length mismatches are errors."""
    if x is None:
        raise ValueError("`x` is required: pass the input data as a NumPy array.")
    x = to_array(x, "x")
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"`x` is empty (shape {x.shape}): there is nothing to train or "
                         "evaluate on.")
    if y is not None:
        y = to_array(y, "y")
        if y.ndim == 0 or len(y) != len(x):
            raise ValueError(
                f"`x` and `y` must have the same number of samples: received x with "
                f"{len(x)} samples (shape {x.shape}) and y with "
                f"{len(y) if y.ndim else 0} (shape {y.shape})."
            )
    if sample_weight is not None:
        sample_weight = to_array(sample_weight, "sample_weight")
        if sample_weight.shape[:1] != x.shape[:1]:
            raise ValueError(f"`sample_weight` must have one weight per sample ({len(x)}); "
                             f"received shape {sample_weight.shape}.")
    return x, y, sample_weight


def batch_slices(n: int, batch_size: int, shuffle: bool, rng) -> Batches:
    """Index batches covering range(n): contiguous slices, or a fresh permutation.

    A last batch of a single sample is merged into the one before it, because a batch of
    one gives batch normalisation a zero variance.
    """
    order = None
    if shuffle:
        # NOTE: the same permutation as rng.permutation(n) (same draws), in half the memory.
        order = np.arange(n, dtype=np.int32 if n < 2**31 else np.intp)
        rng.shuffle(order)
    return Batches(n, batch_size, order)


class Batches(Sequence):
    """The batches of one epoch, each made when asked for: a slice, or a view of `order`.

    A list of them would cost about 200 bytes per batch (a whole small model's worth over a
    Fashion-MNIST epoch at batch 32). Slicing gives the first k batches (steps_per_epoch).
    """

    def __init__(self, n: int, batch_size: int, order=None, steps=None):
        count = -(-n // batch_size)
        if count > 1 and n - (count - 1) * batch_size == 1:
            count -= 1  # merge a last batch of one sample into the one before
        self.n, self.batch_size, self.order, self._last = n, batch_size, order, count - 1
        self._steps = range(count) if steps is None else steps

    def __len__(self) -> int:
        return len(self._steps)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Batches(self.n, self.batch_size, self.order, self._steps[i])
        return self._batch(self._steps[i])

    def __iter__(self):
        return map(self._batch, self._steps)

    def _batch(self, k: int):
        a = k * self.batch_size
        b = self.n if k == self._last else a + self.batch_size
        return slice(a, b) if self.order is None else self.order[a:b]


def split_validation(x, y, sample_weight, validation_split: float):
    """Keras semantics: the LAST `validation_split` fraction of the samples (before shuffling)."""
    if not 0.0 < validation_split < 1.0:
        raise ValueError(f"`validation_split` must be in (0, 1). "
                         f"Received: validation_split={validation_split!r}")
    n = len(x)
    cut = int(n * (1.0 - validation_split))
    if cut == 0 or cut == n:
        raise ValueError(f"validation_split={validation_split} leaves an empty training or "
                         f"validation set with {n} samples.")
    sw = (sample_weight[:cut], sample_weight[cut:]) if sample_weight is not None else (None, None)
    return (x[:cut], y[:cut], sw[0]), (x[cut:], y[cut:], sw[1])


def class_weights_to_sample_weights(y: np.ndarray, class_weight: dict) -> np.ndarray:
    """Map `class_weight` {class: weight} to a weight per sample, as Keras 3 does.

    The class of a sample is its label (sparse y, rounded), the argmax of a one-hot /
    probability row, or the single column of a (N, 1) y; classes missing from the dict
    weigh 1.0.
    """
    if not isinstance(class_weight, dict):
        raise TypeError("`class_weight` must be a dict mapping class indices to weights, "
                        f"e.g. {{0: 1.0, 1: 5.0}}. Received: {type(class_weight).__name__}")
    labels = y
    if y.ndim > 1 and y.shape[-1] > 1:
        labels = np.argmax(y, axis=-1)
    elif y.ndim > 1:
        labels = y[..., 0]
    labels = np.asarray(labels).round().astype(np.int64)
    classes, inverse = np.unique(labels, return_inverse=True)
    table = np.array([float(class_weight.get(int(c), 1.0)) for c in classes],
                     dtype=np.float32)
    return table[inverse.reshape(labels.shape)]


def align_sample_weight(sample_weight, values):
    """Sample weights shaped to broadcast over loss `values` of shape (N, ...) (Keras'
    rule: a trailing axis of 1 is dropped; (N,) weights repeat over the other axes)."""
    w = np.asarray(sample_weight, dtype=values.dtype)
    if w.ndim > values.ndim and w.shape[-1] == 1:
        w = w.reshape(w.shape[:-1])
    if w.ndim > values.ndim or tuple(w.shape) != tuple(values.shape[:w.ndim]):
        raise ValueError(f"`sample_weight` of shape {w.shape} does not match the loss "
                         f"values of shape {tuple(values.shape)}: expected one weight per "
                         f"sample {tuple(values.shape[:1])} or per loss value "
                         f"{tuple(values.shape)}.")
    return w.reshape(w.shape + (1,) * (values.ndim - w.ndim))
