"""Losses: per-sample loss functions, and the `Loss` classes that weight and reduce them.

A loss function maps `(y_true, y_pred)` to one value per sample (reduced over the last axis,
as Keras 3 does). A `Loss` object calls it, applies `sample_weight` and reduces to a scalar
Tensor. `y_pred` is a Tensor that gradients flow into; `y_true` is a constant, cast to
`y_pred`'s dtype (float32 stays float32).

Cross-entropies take the fused logits kernels whenever they can: with `from_logits=True`, and
also when `y_pred` is the output of a softmax or sigmoid activation, which records its logits
in `Tensor._logits` (what tf.keras does with `_keras_logits`). Otherwise they use Keras'
probability formula with clipping to [epsilon, 1 - epsilon].
"""
from __future__ import annotations

import inspect
import re
import warnings

import numpy as np

from . import backend
from .autograd import Tensor, ops
from .autograd.fused import sigmoid_binary_cross_entropy, softmax_cross_entropy
from .errors import unknown_identifier

_FUNCTIONS: dict = {}  # snake-case name or alias -> loss function
_CLASSES: dict = {}  # class name -> Loss subclass (filled by Loss.__init_subclass__)
_WARNED_FROM_LOGITS: set = set()  # loss names that already warned about probabilities
REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


def _register(*aliases):
    """Register a loss function under its own name and `aliases` (used by `get`)."""
    def deco(fn):
        for key in (fn.__name__, *aliases):
            _FUNCTIONS[key] = fn
        return fn
    return deco


def _snake(name: str) -> str:
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


# ---- input preparation ---------------------------------------------------------------------
def _pred(y_pred) -> Tensor:
    """y_pred as a float Tensor; integer input becomes floatx()."""
    t = y_pred if isinstance(y_pred, Tensor) else Tensor(y_pred)
    return t if t.dtype.kind == "f" else ops.cast(t, backend.floatx())


def _true(y_true, dtype) -> np.ndarray:
    data = y_true.data if isinstance(y_true, Tensor) else y_true
    return np.asarray(data).astype(dtype, copy=False)


def _carry(out, src, fn):
    """Give `out` the `_logits` record of `src`, with `fn` applied to the logits too."""
    record = getattr(src, "_logits", None)
    if record is not None and isinstance(out, Tensor):
        out._logits = (record[0], fn(record[1]), *record[2:])
    return out


def _squeeze(x):
    if isinstance(x, Tensor):
        return _carry(ops.squeeze(x, -1), x, lambda z: ops.squeeze(z, -1))
    return x[..., 0]


def _expand(x):
    if isinstance(x, Tensor):
        return _carry(ops.expand_dims(x, -1), x, lambda z: ops.expand_dims(z, -1))
    return x[..., None]


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1=True):
    """Squeeze (or, for rank 1, expand) a trailing size-1 axis when ranks differ by one."""
    r1, r2 = np.ndim(x1), np.ndim(x2)
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        return (x1, _expand(x2)) if r2 == 1 and expand_rank_1 else (_squeeze(x1), x2)
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        return (_expand(x1), x2) if r1 == 1 and expand_rank_1 else (x1, _squeeze(x2))
    return x1, x2


def _shape_error(name, y_true, y_pred, hint=""):
    return ValueError(f"`{name}`: y_true and y_pred have incompatible shapes. Received: "
                      f"y_true.shape={tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}"
                      f".{hint}")


def _prepare(name, y_true, y_pred):
    """Cast, align ranks as Keras does, and check y_true broadcasts to y_pred's shape."""
    y_pred = _pred(y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(_true(y_true, y_pred.dtype), y_pred)
    if y_true.ndim != y_pred.ndim or any(a not in (1, b) for a, b in
                                         zip(y_true.shape, y_pred.shape)):
        raise _shape_error(name, y_true, y_pred)
    return y_true, y_pred


def _logits_of(y_pred, kind, axis=-1):
    """The logits behind a softmax/sigmoid output, or None (also if the axis differs)."""
    record = getattr(y_pred, "_logits", None)
    if record is None or record[0] != kind:
        return None
    # NOTE: a record without an axis means the last one (the softmax default). A recorded
    # axis that differs from the loss's class axis (or a tuple of axes) rules out the kernel.
    recorded = record[2] if len(record) > 2 else -1
    if kind == "softmax" and (not isinstance(recorded, (int, np.integer))
                              or recorded % y_pred.ndim != axis % y_pred.ndim):
        return None
    return record[1]


def _warn_if_probabilities(name, y_pred):
    record = getattr(y_pred, "_logits", None)
    if record is not None and name not in _WARNED_FROM_LOGITS:
        _WARNED_FROM_LOGITS.add(name)
        warnings.warn(
            f"`{name}` received from_logits=True but the output is already a probability: "
            f"y_pred was produced by a {record[0]} activation, so it does not represent "
            "logits. Was this intended? Use from_logits=False, or drop the activation.",
            UserWarning, stacklevel=3)


def _class_axis_last(y_pred, z, axis):
    """Move the class axis of y_pred (and its logits z) to the end; return the new axis."""
    ax = axis % y_pred.ndim
    if ax == y_pred.ndim - 1:
        return y_pred, z
    perm = tuple(i for i in range(y_pred.ndim) if i != ax) + (ax,)
    return ops.transpose(y_pred, perm), None if z is None else ops.transpose(z, perm)


def _probability_ce(y_true, y_pred, axis=-1):
    """Keras' formula: -sum(y * log(clip(p / sum(p), eps, 1 - eps)))."""
    eps = backend.epsilon()
    p = ops.clip(y_pred / ops.sum(y_pred, axis=axis, keepdims=True), eps, 1.0 - eps)
    return -ops.sum(y_true * ops.log(p), axis=axis)


# ---- probabilistic losses ------------------------------------------------------------------
@_register("bce", "BCE")
def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Binary cross-entropy, averaged over `axis`.

    loss = mean(-(y * log(p) + (1 - y) * log(1 - p)), axis), p = clip(y_pred, eps, 1 - eps)

    Args:
        y_true: 0/1 targets; shape (N,) against y_pred (N, 1) is expanded, as in Keras.
        y_pred: probabilities, or logits when `from_logits=True`.
        from_logits: Whether y_pred holds logits. Defaults to False.
        label_smoothing: y -> y * (1 - label_smoothing) + 0.5 * label_smoothing.
        axis: The axis averaged over. Defaults to -1.

    Returns:
        A Tensor of shape y_pred.shape without `axis` (as every loss function here).

    Example:
        >>> binary_crossentropy([[0., 1.]], Tensor([[0.4, 0.9]])).data.round(4)
        array([0.3081], dtype=float32)
    """
    y_true, y_pred = _prepare("binary_crossentropy", y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        _warn_if_probabilities("binary_crossentropy", y_pred)
    z = y_pred if from_logits else _logits_of(y_pred, "sigmoid")
    if z is not None:
        return ops.mean(sigmoid_binary_cross_entropy(z, y_true), axis=axis)
    eps = backend.epsilon()
    p = ops.clip(y_pred, eps, 1.0 - eps)
    return -ops.mean(y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p), axis=axis)


@_register()
def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Cross-entropy between one-hot (or soft) targets and predicted class probabilities.

    loss = -sum(y * log(clip(p / sum(p), eps, 1 - eps)), axis); with logits,
    loss = logsumexp(z) * sum(y) - sum(y * z), from the fused kernel.

    Args:
        y_true: Targets shaped as y_pred (integer labels: sparse_categorical_crossentropy).
        y_pred, from_logits: As in binary_crossentropy.
        label_smoothing: y -> y * (1 - label_smoothing) + label_smoothing / num_classes.
        axis: The class axis. Defaults to -1.

    Example:
        >>> categorical_crossentropy([[0., 1.]], Tensor([[0.2, 0.8]])).data.round(4)
        array([0.2231], dtype=float32)
    """
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"`axis` must be an int. Received: axis={axis!r}")
    y_pred = _pred(y_pred)
    y_true = _true(y_true, y_pred.dtype)
    if y_true.shape != y_pred.shape:
        raise _shape_error("categorical_crossentropy", y_true, y_pred,
                           " For integer class labels use sparse_categorical_crossentropy.")
    if y_pred.shape[axis] == 1:
        warnings.warn("categorical_crossentropy expects y_pred of shape (batch_size, "
                      f"num_classes) with num_classes > 1. Received: y_pred.shape="
                      f"{y_pred.shape}. Use binary_crossentropy for 2 classes.", stacklevel=2)
    if label_smoothing:
        k = y_true.shape[axis]
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / k
    if from_logits:
        _warn_if_probabilities("categorical_crossentropy", y_pred)
    z = y_pred if from_logits else _logits_of(y_pred, "softmax", axis)
    if z is None:
        return _probability_ce(y_true, y_pred, axis)
    _, z = _class_axis_last(y_pred, z, axis)
    return softmax_cross_entropy(z, np.moveaxis(y_true, axis, -1), sparse=False)


def _check_labels(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Integer labels in [0, num_classes), or a ValueError that names the offending one."""
    if labels.dtype.kind == "f":
        bad = ~np.isfinite(labels) | (labels != np.floor(labels))
        if bad.any():
            raise ValueError(
                "sparse_categorical_crossentropy expects integer class labels. Received "
                f"label {labels[bad].flat[0]!r}. One-hot targets go to "
                "categorical_crossentropy.")
    elif labels.dtype.kind not in "iub":
        raise ValueError(f"Labels must be integers. Received dtype {labels.dtype}.")
    if labels.dtype.kind == "i":
        # NOTE: one reduction instead of min and max: read as unsigned, a negative label is
        # larger than any class index.
        unsigned = labels.view(labels.dtype.str.replace("i", "u"))
        out_of_range = labels.size and np.maximum.reduce(unsigned, axis=None) >= num_classes
    else:
        out_of_range = labels.size and (labels.min() < 0 or labels.max() >= num_classes)
    if out_of_range:
        bad = labels[(labels < 0) | (labels >= num_classes)].flat[0]
        raise ValueError(
            f"sparse_categorical_crossentropy expects labels in [0, {num_classes}) "
            f"(num_classes = y_pred.shape[axis] = {num_classes}). Received label {bad.item() if hasattr(bad, 'item') else bad!r}.")
    return labels.astype(np.intp, copy=False)


@_register()
def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None,
                                    axis=-1):
    """Categorical cross-entropy with integer class labels.

    loss = -log(clip(p[label] / sum(p), eps, 1 - eps)); with logits, logsumexp(z) - z[label].

    Args:
        y_true: Integer labels (ints or integral floats), shape (N,) or (N, 1), each in
            [0, num_classes); a ValueError names any label out of range.
        y_pred, from_logits, axis: As in categorical_crossentropy.
        ignore_class: A label (e.g. -1 or 255) whose samples get loss 0 and are left out of
            the "sum_over_batch_size" count by the Loss class. Defaults to None.

    Example:
        >>> sparse_categorical_crossentropy([1], Tensor([[0.2, 0.8]])).data.round(4)
        array([0.2231], dtype=float32)
    """
    y_pred = _pred(y_pred)
    labels = np.asarray(y_true.data if isinstance(y_true, Tensor) else y_true)
    ax = axis % y_pred.ndim
    if labels.ndim == y_pred.ndim and labels.shape[ax] == 1:
        labels = np.squeeze(labels, ax)
    if labels.shape != y_pred.shape[:ax] + y_pred.shape[ax + 1:]:
        raise _shape_error("sparse_categorical_crossentropy", labels, y_pred,
                           " y_true must hold one integer label per sample (one-hot targets"
                           " go to categorical_crossentropy).")
    num_classes = y_pred.shape[ax]
    valid = None
    if ignore_class is not None:
        valid = labels != ignore_class
        labels = np.where(valid, labels, 0)
    labels = _check_labels(labels, num_classes)
    if from_logits:
        _warn_if_probabilities("sparse_categorical_crossentropy", y_pred)
    z = y_pred if from_logits else _logits_of(y_pred, "softmax", axis)
    y_pred, z = _class_axis_last(y_pred, z, axis)
    if z is not None:
        loss = softmax_cross_entropy(z, labels, sparse=True)
    else:
        one_hot = (labels[..., None] == np.arange(num_classes)).astype(y_pred.dtype)
        loss = _probability_ce(one_hot, y_pred)
    return loss if valid is None else loss * valid.astype(y_pred.dtype)


@_register("kld", "KLD", "kullback_leibler_divergence")
def kl_divergence(y_true, y_pred):
    """Kullback-Leibler divergence; both inputs are clipped to [eps, 1].

    loss = sum(y * log(y / p), axis=-1), y = clip(y_true, eps, 1), p = clip(y_pred, eps, 1)
    """
    y_true, y_pred = _prepare("kl_divergence", y_true, y_pred)
    eps = backend.epsilon()
    y = np.clip(y_true, eps, 1.0)
    return ops.sum(y * (np.log(y) - ops.log(ops.clip(y_pred, eps, 1.0))), axis=-1)


@_register()
def poisson(y_true, y_pred):
    """Poisson negative log-likelihood: loss = mean(p - y * log(p + eps), axis=-1)."""
    y_true, y_pred = _prepare("poisson", y_true, y_pred)
    return ops.mean(y_pred - y_true * ops.log(y_pred + backend.epsilon()), axis=-1)


# ---- regression losses ---------------------------------------------------------------------
@_register("mse", "MSE")
def mean_squared_error(y_true, y_pred):
    """Mean squared error: loss = mean(square(y_true - y_pred), axis=-1).

    Example:
        >>> mean_squared_error([[0., 1.]], Tensor([[1., 1.]])).data
        array([0.5], dtype=float32)
    """
    y_true, y_pred = _prepare("mean_squared_error", y_true, y_pred)
    return ops.mean(ops.square(y_pred - y_true), axis=-1)


@_register("mae", "MAE")
def mean_absolute_error(y_true, y_pred):
    """Mean absolute error: loss = mean(abs(y_true - y_pred), axis=-1)."""
    y_true, y_pred = _prepare("mean_absolute_error", y_true, y_pred)
    return ops.mean(ops.abs(y_pred - y_true), axis=-1)


@_register("mape", "MAPE")
def mean_absolute_percentage_error(y_true, y_pred):
    """loss = 100 * mean(abs((y_true - y_pred) / max(abs(y_true), eps)), axis=-1)."""
    y_true, y_pred = _prepare("mean_absolute_percentage_error", y_true, y_pred)
    scale = 100.0 / np.maximum(np.abs(y_true), backend.epsilon())
    return ops.mean(ops.abs(y_pred - y_true) * scale.astype(y_pred.dtype), axis=-1)


@_register("msle", "MSLE")
def mean_squared_logarithmic_error(y_true, y_pred):
    """loss = mean(square(log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1)), axis=-1)."""
    y_true, y_pred = _prepare("mean_squared_logarithmic_error", y_true, y_pred)
    eps = backend.epsilon()
    log_true = np.log(np.maximum(y_true, eps) + 1.0)
    return ops.mean(ops.square(ops.log(ops.maximum(y_pred, eps) + 1.0) - log_true), axis=-1)


@_register()
def huber(y_true, y_pred, delta=1.0):
    """Huber loss: quadratic for |error| <= delta, linear beyond.

    loss = mean(0.5 * e^2 if |e| <= delta else delta * |e| - 0.5 * delta^2, axis=-1)

    Reference:
        https://en.wikipedia.org/wiki/Huber_loss
    """
    y_true, y_pred = _prepare("huber", y_true, y_pred)
    error = y_pred - y_true
    abs_error = ops.abs(error)
    quadratic = 0.5 * ops.square(error)
    linear = delta * abs_error - 0.5 * delta * delta
    return ops.mean(ops.where(abs_error.data <= delta, quadratic, linear), axis=-1)


@_register("logcosh")
def log_cosh(y_true, y_pred):
    """loss = mean(log(cosh(e)), axis=-1), computed as e + softplus(-2e) - log(2)."""
    y_true, y_pred = _prepare("log_cosh", y_true, y_pred)
    error = y_pred - y_true
    return ops.mean(error + ops.softplus(-2.0 * error) - float(np.log(2.0)), axis=-1)


@_register()
def cosine_similarity(y_true, y_pred, axis=-1):
    """Negative cosine similarity: loss = -sum(l2_normalize(y) * l2_normalize(p), axis).

    l2_normalize(x) = x / sqrt(max(sum(x^2), eps^2)), so a zero vector gives 0.
    """
    y_true, y_pred = _prepare("cosine_similarity", y_true, y_pred)
    eps2 = backend.epsilon() ** 2
    y = y_true / np.sqrt(np.maximum(np.sum(y_true * y_true, axis, keepdims=True), eps2))
    norm = ops.sqrt(ops.maximum(ops.sum(ops.square(y_pred), axis=axis, keepdims=True), eps2))
    return -ops.sum(y_pred * y.astype(y_pred.dtype) / norm, axis=axis)


# ---- hinge losses --------------------------------------------------------------------------
def _hinge_labels(y_true):
    """Map {0, 1} labels to {-1, 1}; other labels pass unchanged (as Keras)."""
    return 2.0 * y_true - 1.0 if np.all((y_true == 0) | (y_true == 1)) else y_true


@_register()
def hinge(y_true, y_pred):
    """Hinge loss: loss = mean(maximum(1 - y * p, 0), axis=-1), y in {-1, 1} (or {0, 1})."""
    y_true, y_pred = _prepare("hinge", y_true, y_pred)
    return ops.mean(ops.relu(1.0 - _hinge_labels(y_true) * y_pred), axis=-1)


@_register()
def squared_hinge(y_true, y_pred):
    """loss = mean(square(maximum(1 - y * p, 0)), axis=-1), y in {-1, 1} (or {0, 1})."""
    y_true, y_pred = _prepare("squared_hinge", y_true, y_pred)
    return ops.mean(ops.square(ops.relu(1.0 - _hinge_labels(y_true) * y_pred)), axis=-1)


@_register()
def categorical_hinge(y_true, y_pred):
    """loss = maximum(max((1 - y) * p) - sum(y * p) + 1, 0) over the last axis."""
    y_true, y_pred = _prepare("categorical_hinge", y_true, y_pred)
    pos = ops.sum(y_true * y_pred, axis=-1)
    neg = ops.max((1.0 - y_true) * y_pred, axis=-1)
    return ops.relu(neg - pos + 1.0)


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kullback_leibler_divergence = kl_divergence
logcosh = log_cosh
bce = binary_crossentropy


# ---- reduction -----------------------------------------------------------------------------
def standardize_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"Invalid value for argument `reduction`. Expected one of "
                         f"{list(REDUCTIONS)}. Received: reduction={reduction!r}")
    return reduction


def reduce_weighted_values(values, sample_weight=None, mask=None,
                           reduction="sum_over_batch_size") -> Tensor:
    """Weight per-sample losses and reduce them as Keras 3 does.

    "sum_over_batch_size"/"mean": sum(w * loss) / number of elements (not sum(w));
    "sum": sum(w * loss); "mean_with_sample_weight": sum(w * loss) / sum(w);
    None/"none": the weighted values. A boolean `mask` (from ignore_class) weights valid
    entries by total/valid for the averaging reductions, so they average over valid ones.
    """
    reduction = standardize_reduction(reduction)
    values = values if isinstance(values, Tensor) else Tensor(values)
    dtype = values.dtype
    weight = None
    if sample_weight is not None:
        sw = sample_weight.data if isinstance(sample_weight, Tensor) else sample_weight
        weight = np.asarray(sw, dtype=dtype)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if reduction in ("mean", "sum_over_batch_size"):
            valid = mask.sum()
            float_mask = np.where(mask, mask.size / valid if valid else 0.0, 0.0).astype(dtype)
        else:
            float_mask = mask.astype(dtype)
        if weight is not None:
            float_mask, weight = squeeze_or_expand_to_same_rank(float_mask, weight)
            weight = weight * float_mask
        else:
            weight = float_mask
    if weight is not None:
        values, weight = squeeze_or_expand_to_same_rank(values, weight)
        values = values * weight
    if reduction in (None, "none") or values.shape in ((), (0,)):
        return values
    total = ops.sum(values)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and weight is not None:
        divisor = float(np.sum(weight))
    else:
        divisor = values.size
    return total / divisor if divisor else total * 0.0  # divide_no_nan


# ---- Loss classes --------------------------------------------------------------------------
class Loss:
    """Base class of losses: `call` gives per-sample values, `__call__` weights and reduces.

    Args:
        name: Name of the loss. Defaults to the snake-case class name.
        reduction: One of "sum_over_batch_size" (default), "sum", "mean",
            "mean_with_sample_weight", "none" or None.
        dtype: Compute dtype. Defaults to None: y_pred's own float dtype.

    Example:
        >>> class Cube(Loss):
        ...     def call(self, y_true, y_pred):
        ...         return ops.mean((y_pred - y_true) ** 3, axis=-1)
        >>> float(Cube()([[1.0]], Tensor([[3.0]])))
        8.0
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _CLASSES[cls.__name__] = cls

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        self.name = name or _snake(type(self).__name__)
        self.reduction = standardize_reduction(reduction)
        self._dtype = None if dtype is None else np.dtype(dtype).name

    @property
    def dtype(self) -> str:
        return self._dtype or backend.floatx()

    def __call__(self, y_true, y_pred, sample_weight=None) -> Tensor:
        """Return the reduced loss (a scalar Tensor unless reduction is None/"none")."""
        y_pred = _pred(y_pred)
        if self._dtype is not None and y_pred.dtype != self._dtype:
            y_pred = _carry(ops.cast(y_pred, self._dtype), y_pred,
                            lambda z: ops.cast(z, self._dtype))
        y_true = Tensor(_true(y_true, y_pred.dtype))
        values = self.call(y_true, y_pred)
        return reduce_weighted_values(values, sample_weight, self._mask(y_true, values),
                                      self.reduction)

    def call(self, y_true, y_pred) -> Tensor:
        """Return the per-sample losses; subclasses implement this."""
        raise NotImplementedError(f"{type(self).__name__} must implement call(y_true, y_pred)")

    def _mask(self, y_true, values):
        """Boolean mask of the entries that count in the reduction, or None (all count)."""
        return None

    def get_config(self) -> dict:
        config = {"name": self.name, "reduction": self.reduction}
        if self._dtype is not None:
            config["dtype"] = self._dtype
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} reduction={self.reduction!r}>"


class LossFunctionWrapper(Loss):
    """A Loss made from a function `fn(y_true, y_pred, **kwargs)` -> per-sample values.

    Example:
        >>> loss = LossFunctionWrapper(mean_absolute_error, reduction="sum")
        >>> float(loss([[0.0, 2.0]], Tensor([[1.0, 1.0]])))
        1.0
    """

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        super().__init__(name=name or _snake(getattr(fn, "__name__", "loss")),
                         reduction=reduction, dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true, y_pred) -> Tensor:
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        values = self.fn(y_true, y_pred, **self._fn_kwargs)
        return values if isinstance(values, Tensor) else Tensor(np.asarray(values))

    def get_config(self) -> dict:
        config = {**super().get_config(), **self._fn_kwargs}
        if type(self) is LossFunctionWrapper:  # presets rebuild their own fn
            config["fn"] = serialize(self.fn)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "fn" in config:
            config["fn"] = deserialize(config["fn"])
        return cls(**config)


def _class(class_name, fn, summary, default_name=None, **defaults):
    """Make a LossFunctionWrapper preset whose __init__ has Keras' signature and defaults."""
    name_default = default_name or fn.__name__

    def __init__(self, *args, **kwargs):
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{class_name}(): {e}. Accepted arguments: "
                            f"{list(signature.parameters)[1:]}") from None
        bound.apply_defaults()
        params = dict(bound.arguments)
        del params["self"]
        base = {k: params.pop(k) for k in ("reduction", "name", "dtype")}
        LossFunctionWrapper.__init__(self, fn, **base, **params)
        for key, value in params.items():  # e.g. self.from_logits, self.delta
            setattr(self, key, value)

    P = inspect.Parameter
    signature = inspect.Signature(
        [P("self", P.POSITIONAL_OR_KEYWORD)]
        + [P(k, P.POSITIONAL_OR_KEYWORD, default=v) for k, v in defaults.items()]
        + [P("reduction", P.POSITIONAL_OR_KEYWORD, default="sum_over_batch_size"),
           P("name", P.POSITIONAL_OR_KEYWORD, default=name_default),
           P("dtype", P.POSITIONAL_OR_KEYWORD, default=None)])
    __init__.__signature__ = signature
    args = "".join(f"\n        {k}: Defaults to {v!r}." for k, v in defaults.items())
    doc = (f"{summary}\n\n    Per sample: `{fn.__name__}(y_true, y_pred)`; see that function."
           f"\n\n    Args:{args}\n        reduction: As in Loss. Defaults to "
           f"'sum_over_batch_size'.\n        name: Defaults to {name_default!r}.\n"
           "        dtype: As in Loss.\n")
    cls = type(class_name, (LossFunctionWrapper,), {"__init__": __init__, "__doc__": doc,
                                                    "__module__": __name__})
    return cls


BinaryCrossentropy = _class("BinaryCrossentropy", binary_crossentropy,
                            "Binary cross-entropy between 0/1 targets and probabilities.",
                            from_logits=False, label_smoothing=0.0, axis=-1)
CategoricalCrossentropy = _class("CategoricalCrossentropy", categorical_crossentropy,
                                 "Cross-entropy between one-hot targets and class scores.",
                                 from_logits=False, label_smoothing=0.0, axis=-1)
MeanSquaredError = _class("MeanSquaredError", mean_squared_error, "Mean squared error.")
MeanAbsoluteError = _class("MeanAbsoluteError", mean_absolute_error, "Mean absolute error.")
MeanAbsolutePercentageError = _class("MeanAbsolutePercentageError",
                                     mean_absolute_percentage_error,
                                     "Mean absolute percentage error.")
MeanSquaredLogarithmicError = _class("MeanSquaredLogarithmicError",
                                     mean_squared_logarithmic_error,
                                     "Mean squared logarithmic error.")
CosineSimilarity = _class("CosineSimilarity", cosine_similarity,
                          "Negative cosine similarity along `axis`.", axis=-1)
Huber = _class("Huber", huber, "Huber loss.", default_name="huber_loss", delta=1.0)
LogCosh = _class("LogCosh", log_cosh, "Logarithm of the hyperbolic cosine of the error.")
Hinge = _class("Hinge", hinge, "Hinge loss.")
SquaredHinge = _class("SquaredHinge", squared_hinge, "Squared hinge loss.")
CategoricalHinge = _class("CategoricalHinge", categorical_hinge, "Categorical hinge loss.")
KLDivergence = _class("KLDivergence", kl_divergence, "Kullback-Leibler divergence.")
Poisson = _class("Poisson", poisson, "Poisson loss.")


class SparseCategoricalCrossentropy(LossFunctionWrapper):
    """Cross-entropy with integer labels; `ignore_class` samples count for nothing.

    Per sample: `sparse_categorical_crossentropy(y_true, y_pred)`. With ignore_class, the
    "sum_over_batch_size" reduction divides by the number of valid labels (as Keras).

    Args:
        from_logits: Whether y_pred holds logits. Defaults to False.
        ignore_class: Label value to ignore (e.g. -1 or 255). Defaults to None.
        reduction: As in Loss. Defaults to "sum_over_batch_size".
        axis: The class axis. Defaults to -1.
        name: Defaults to "sparse_categorical_crossentropy".
        dtype: As in Loss.

    Example:
        >>> scce = SparseCategoricalCrossentropy(from_logits=True)
        >>> round(float(scce([0, 1], Tensor([[2.0, 0.0], [0.0, 2.0]]))), 4)
        0.1269
    """

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 axis=-1, name="sparse_categorical_crossentropy", dtype=None):
        super().__init__(sparse_categorical_crossentropy, reduction=reduction, name=name,
                         dtype=dtype, from_logits=from_logits, ignore_class=ignore_class,
                         axis=axis)
        self.from_logits = from_logits
        self.ignore_class = ignore_class
        self.axis = axis

    def _mask(self, y_true, values):
        if self.ignore_class is None:
            return None
        return (y_true.data != self.ignore_class).reshape(values.shape)


# ---- lookup and serialisation --------------------------------------------------------------
def get(identifier):
    """Resolve a loss: a name, a config dict, a Loss class or instance, or a callable.

    Snake-case names and aliases ("mse", "kld", "logcosh", ...) give the function;
    class names ("MeanSquaredError") give an instance, as keras.losses.get does.
    A custom `fn(y_true, y_pred)` (computing with glassnet ops on Tensors) is returned as is.

    Example:
        >>> get("mse") is mean_squared_error, type(get("Huber")).__name__
        (True, 'Huber')
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        if identifier in _CLASSES:
            return _CLASSES[identifier]()
        fn = _FUNCTIONS.get(identifier) or _FUNCTIONS.get(identifier.lower())
        if fn is None:
            names = [*_FUNCTIONS, *(c for c in _CLASSES if c != "LossFunctionWrapper")]
            raise unknown_identifier("loss", identifier, names)
        return fn
    if inspect.isclass(identifier) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        return identifier
    raise TypeError(f"Could not interpret loss identifier: {identifier!r}. Expected a "
                    "string, a config dict, a Loss instance or a callable.")


def serialize(loss):
    """Return a Keras-style config: {"module", "class_name", "config", "registered_name"}."""
    if loss is None or isinstance(loss, str):
        return loss
    if isinstance(loss, Loss):
        return {"module": "keras.losses", "class_name": type(loss).__name__,
                "config": loss.get_config(), "registered_name": None}
    name = getattr(loss, "__name__", None)
    if name is None:
        raise TypeError(f"Cannot serialize loss {loss!r}: not a Loss and has no __name__.")
    return {"module": "keras.losses", "class_name": "function", "config": name,
            "registered_name": "function"}


def deserialize(config, custom_objects=None):
    """Rebuild a loss from `serialize` output (also a bare name or {class_name, config})."""
    custom_objects = custom_objects or {}
    if isinstance(config, str):
        return custom_objects[config] if config in custom_objects else get(config)
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Could not deserialize loss config: {config!r}")
    class_name, inner = config["class_name"], config.get("config", {})
    if class_name == "function":
        return custom_objects[inner] if inner in custom_objects else get(inner)
    cls = custom_objects.get(class_name) or _CLASSES.get(class_name)
    if cls is None:
        raise unknown_identifier("loss", class_name, list(_CLASSES))
    return cls.from_config(inner)
