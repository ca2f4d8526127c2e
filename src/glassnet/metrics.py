"""Metrics: running statistics over plain NumPy arrays, updated batch by batch (Keras 3 API).

A metric keeps its state in Python floats or small float64 arrays, never builds a graph, and
reads Tensors through `.data`. `update_state(y_true, y_pred, sample_weight=None)` folds in a
batch, `result()` returns a Python float, `reset_state()` starts over. `get()` resolves the
strings given to `compile(metrics=[...])`, including "accuracy" as Keras does.
"""
from __future__ import annotations

import inspect

import numpy as np

from . import backend, losses
from .autograd import Tensor, no_grad
from .autograd.ops import stable_sigmoid
from .errors import unknown_identifier

_REGISTRY: dict = {}  # class name and its snake-case name -> Metric subclass
NEG_INF = -1e10  # Keras' stand-in for -inf when filtering to the top k


def _np(x, dtype=None) -> np.ndarray:
    return np.asarray(x.data if isinstance(x, Tensor) else x, dtype=dtype)


def _divide_no_nan(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.where(b != 0, a / np.where(b != 0, b, 1.0), 0.0)


_align = losses.squeeze_or_expand_to_same_rank


# ---- per-sample metric functions -----------------------------------------------------------
def accuracy(y_true, y_pred):
    """1.0 where y_true == y_pred, elementwise (after Keras' rank alignment)."""
    y_true, y_pred = _align(_np(y_true), _np(y_pred))
    return (y_true == y_pred).astype(backend.floatx())


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """1.0 where (y_pred > threshold) equals the 0/1 label, elementwise.

    Example:
        >>> binary_accuracy([[1], [0]], [[0.7], [0.6]])
        array([[1.],
               [0.]], dtype=float32)
    """
    y_true, y_pred = _align(_np(y_true), _np(y_pred))
    return (y_true == (y_pred > threshold)).astype(backend.floatx())


def categorical_accuracy(y_true, y_pred):
    """1.0 where argmax(y_true) == argmax(y_pred) over the last axis; one value per sample."""
    return (np.argmax(_np(y_true), -1) == np.argmax(_np(y_pred), -1)).astype(backend.floatx())


def _sparse_labels(y_true, y_pred):
    labels = _np(y_true)
    if labels.ndim == y_pred.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    return labels


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where the integer label equals argmax(y_pred, -1); labels (N,) or (N, 1).

    Example:
        >>> sparse_categorical_accuracy([2, 1], [[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]])
        array([1., 0.], dtype=float32)
    """
    y_pred = _np(y_pred)
    return (_sparse_labels(y_true, y_pred) == np.argmax(y_pred, -1)).astype(backend.floatx())


def _in_top_k(labels, y_pred, k):
    """Whether each label's score is >= the k-th largest score (ties count, as Keras)."""
    num_classes = y_pred.shape[-1]
    if k >= num_classes:
        return np.ones(labels.shape, dtype=bool)
    kth = np.partition(y_pred, num_classes - k, axis=-1)[..., num_classes - k]
    target = np.take_along_axis(y_pred, labels.astype(np.intp)[..., None], axis=-1)[..., 0]
    return target >= kth


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1.0 where the one-hot target's class is among the k highest scores."""
    y_pred = _np(y_pred)
    return _in_top_k(np.argmax(_np(y_true), -1), y_pred, k).astype(backend.floatx())


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5, from_sorted_ids=False):
    """1.0 where the integer label is among the k highest scores (or the first k ids of a
    sorted-ids y_pred when `from_sorted_ids=True`)."""
    y_pred = _np(y_pred)
    labels = _sparse_labels(y_true, y_pred)
    if from_sorted_ids:
        return np.any(y_pred[..., :k] == labels[..., None], -1).astype(backend.floatx())
    return _in_top_k(labels, y_pred, k).astype(backend.floatx())


def _squared_error(y_true, y_pred):
    y_true, y_pred = _align(_np(y_true), _np(y_pred))
    return np.square(y_pred - y_true)


def mean_squared_error(y_true, y_pred):
    """mean(square(y_true - y_pred), axis=-1), in NumPy."""
    return np.mean(_squared_error(y_true, y_pred), axis=-1)


def mean_absolute_error(y_true, y_pred):
    """mean(abs(y_true - y_pred), axis=-1), in NumPy."""
    y_true, y_pred = _align(_np(y_true), _np(y_pred))
    return np.mean(np.abs(y_pred - y_true), axis=-1)


def cosine_similarity(y_true, y_pred, axis=-1):
    """sum(l2_normalize(y_true) * l2_normalize(y_pred), axis) (positive, unlike the loss)."""
    with no_grad():
        return -losses.cosine_similarity(y_true, y_pred, axis=axis).data


# ---- base classes --------------------------------------------------------------------------
class Metric:
    """Base class of stateful metrics.

    Subclasses implement `update_state`, `result` and `reset_state`; calling a metric
    updates it and returns the result.

    Args:
        name: Name reported in logs. Defaults to the snake-case class name.
        dtype: Nominal dtype (kept for config); state is accumulated in float64.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            _REGISTRY[cls.__name__] = cls
            _REGISTRY.setdefault(losses._snake(cls.__name__), cls)

    def __init__(self, name=None, dtype=None):
        self.name = name or losses._snake(type(self).__name__)
        self._dtype = None if dtype is None else np.dtype(dtype).name

    @property
    def dtype(self) -> str:
        return self._dtype or backend.floatx()

    def update_state(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement update_state")

    def result(self):
        raise NotImplementedError(f"{type(self).__name__} must implement result")

    def reset_state(self):
        raise NotImplementedError(f"{type(self).__name__} must implement reset_state")

    def __call__(self, *args, **kwargs):
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} result={self.result()!r}>"


def _samplewise(values, sample_weight, reduce_fn):
    """Weight values and reduce them to one value per sample, as Keras' reduction metrics."""
    weight = None
    if sample_weight is not None:
        weight = _np(sample_weight, np.float64)
        values, weight = _align(values, weight)
        if values.ndim > weight.ndim:
            values = reduce_fn(values, axis=tuple(range(weight.ndim, values.ndim)))
        weight = np.broadcast_to(weight, values.shape)
        values = values * weight
        if weight.ndim > 1:
            weight = reduce_fn(weight, axis=tuple(range(1, weight.ndim)))
    if values.ndim > 1:
        values = reduce_fn(values, axis=tuple(range(1, values.ndim)))
    return values, weight


class Sum(Metric):
    """Running weighted sum: total += sum(values * sample_weight)."""

    def __init__(self, name="sum", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.reset_state()

    def update_state(self, values, sample_weight=None):
        values, _ = _samplewise(_np(values, np.float64), sample_weight, np.sum)
        self.total += float(np.sum(values))

    def reset_state(self):
        self.total = 0.0

    def result(self) -> float:
        return self.total


class Mean(Metric):
    """Running weighted mean: sum(w * values) / sum(w), with per-sample w (default 1).

    Example:
        >>> m = Mean()
        >>> m.update_state([1, 3]); m.update_state([5], sample_weight=[2]); m.result()
        3.5
    """

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.reset_state()

    def update_state(self, values, sample_weight=None):
        if isinstance(values, float) and isinstance(sample_weight, (int, float, type(None))):
            # NOTE: the training loop's loss tracker: a scalar per batch, weighted by the batch
            # size; plain Python arithmetic, ~20x cheaper than the array path below.
            weight = 1.0 if sample_weight is None else float(sample_weight)
            self.total += values * weight
            self.count += weight
            return
        if sample_weight is None and type(values) is np.ndarray and values.ndim == 1:
            # NOTE: per-batch accuracy in fit: one value per sample, summed in float64
            # without a float64 copy
            self.total += float(np.add.reduce(values, dtype=np.float64))
            self.count += values.shape[0]
            return
        values, weight = _samplewise(_np(values, np.float64), sample_weight, np.mean)
        self.total += float(np.sum(values))
        if weight is not None:
            self.count += float(np.sum(weight))
        else:
            self.count += values.shape[0] if values.ndim else 1

    def reset_state(self):
        self.total, self.count = 0.0, 0.0

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0


class MeanMetricWrapper(Mean):
    """The running mean of `fn(y_true, y_pred, **kwargs)` (per-sample values).

    `fn` receives NumPy arrays; it may be a glassnet loss function (it then runs without a
    graph) or any function of arrays.

    Example:
        >>> m = MeanMetricWrapper(losses.mean_absolute_error, name="mae")
        >>> m([[0.0, 2.0]], [[1.0, 1.0]])
        1.0
    """

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        super().__init__(name=name or losses._snake(getattr(fn, "__name__", "metric")),
                         dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        with no_grad():
            values = self._fn(_np(y_true), _np(y_pred), **self._fn_kwargs)
        super().update_state(_np(values), sample_weight)

    def get_config(self) -> dict:
        config = {**super().get_config(), **self._fn_kwargs}
        if type(self) is MeanMetricWrapper:  # presets rebuild their own fn
            config["fn"] = losses.serialize(self._fn)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "fn" in config:
            config["fn"] = _deserialize_fn(config["fn"])
        return cls(**config)


def _wrapper(class_name, fn, **defaults):
    """A MeanMetricWrapper preset with Keras' signature (name, dtype, *defaults)."""
    name_default = losses._snake(class_name)

    def __init__(self, name=name_default, dtype=None, **kwargs):
        unknown = set(kwargs) - set(defaults)
        if unknown:
            raise TypeError(f"{class_name}() got unexpected arguments {sorted(unknown)}. "
                            f"Accepted: name, dtype, {', '.join(defaults)}")
        params = {**defaults, **kwargs}
        MeanMetricWrapper.__init__(self, fn, name=name, dtype=dtype, **params)
        for key, value in params.items():
            setattr(self, key, value)

    P = inspect.Parameter
    __init__.__signature__ = inspect.Signature(
        [P("self", P.POSITIONAL_OR_KEYWORD), P("name", P.POSITIONAL_OR_KEYWORD,
                                              default=name_default),
         P("dtype", P.POSITIONAL_OR_KEYWORD, default=None)]
        + [P(k, P.KEYWORD_ONLY, default=v) for k, v in defaults.items()])
    doc = f"Running mean of `{fn.__name__}` (see that function); name defaults to " \
          f"{name_default!r}.{''.join(f' {k} defaults to {v!r}.' for k, v in defaults.items())}"
    return type(class_name, (MeanMetricWrapper,), {"__init__": __init__, "__doc__": doc,
                                                   "__module__": __name__})


Accuracy = _wrapper("Accuracy", accuracy)
BinaryAccuracy = _wrapper("BinaryAccuracy", binary_accuracy, threshold=0.5)
CategoricalAccuracy = _wrapper("CategoricalAccuracy", categorical_accuracy)
SparseCategoricalAccuracy = _wrapper("SparseCategoricalAccuracy", sparse_categorical_accuracy)
MeanSquaredError = _wrapper("MeanSquaredError", mean_squared_error)
MeanAbsoluteError = _wrapper("MeanAbsoluteError", mean_absolute_error)
CosineSimilarity = _wrapper("CosineSimilarity", cosine_similarity, axis=-1)
BinaryCrossentropy = _wrapper("BinaryCrossentropy", losses.binary_crossentropy,
                              from_logits=False, label_smoothing=0.0)
CategoricalCrossentropy = _wrapper("CategoricalCrossentropy", losses.categorical_crossentropy,
                                   from_logits=False, label_smoothing=0.0, axis=-1)
SparseCategoricalCrossentropy = _wrapper("SparseCategoricalCrossentropy",
                                         losses.sparse_categorical_crossentropy,
                                         from_logits=False, axis=-1)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot target's class is among the `k` highest scores.

    Args:
        k: Number of top classes that count as a hit. Defaults to 5.
        name: Defaults to "top_k_categorical_accuracy".
        dtype: As in Metric.
    """

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer label is among the `k` highest scores.

    Args:
        k: Number of top classes that count as a hit. Defaults to 5.
        name: Defaults to "sparse_top_k_categorical_accuracy".
        dtype: As in Metric.
        from_sorted_ids: y_pred holds class ids sorted by score. Defaults to False.
    """

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None,
                 from_sorted_ids=False):
        super().__init__(sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k,
                         from_sorted_ids=from_sorted_ids)
        self.k, self.from_sorted_ids = k, from_sorted_ids


class RootMeanSquaredError(Mean):
    """sqrt(weighted mean of squared errors), accumulated over batches."""

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(_squared_error(y_true, y_pred), sample_weight)

    def result(self) -> float:
        return float(np.sqrt(super().result()))


# ---- confusion-matrix metrics --------------------------------------------------------------
def _prepare_counts(y_true, y_pred, sample_weight, top_k=None, class_id=None):
    """(labels as bool, predictions, weights) aligned as Keras' confusion-matrix update."""
    y_pred, y_true = _align(_np(y_pred, np.float64), _np(y_true, np.float64))
    weight = None
    if sample_weight is not None:
        weight = _np(sample_weight, np.float64)[..., None]
        if weight.ndim == y_true.ndim + 1:
            weight = weight[..., 0]
    if top_k is not None:  # exactly k entries per row stay, the rest drop to NEG_INF
        top = np.argpartition(-y_pred, min(top_k, y_pred.shape[-1]) - 1, axis=-1)[..., :top_k]
        keep = np.zeros(y_pred.shape, dtype=bool)
        np.put_along_axis(keep, top, True, axis=-1)
        y_pred = np.where(keep, y_pred, NEG_INF)
    if class_id is not None:
        if y_pred.ndim < 2:
            raise ValueError("With class_id, y_pred must have shape (num_samples, "
                             f"num_classes). Received: y_pred.shape={y_pred.shape}")
        y_true, y_pred = y_true[..., class_id, None], y_pred[..., class_id, None]
    weight = np.ones(y_pred.shape) if weight is None else np.broadcast_to(weight, y_pred.shape)
    return y_true.astype(bool), y_pred, weight


def _counts(labels, preds, weight, thresholds, evenly=False, axis=None):
    """Weighted (tp, fp, tn, fn) per threshold; a prediction is positive iff > threshold.

    With evenly spaced thresholds (Keras' AUC default), buckets are ceil(p * (T - 1)) - 1 as in
    Keras' fast path; otherwise searchsorted. Either way O(N) memory, never N x T.
    `axis=None` pools every entry; `axis=-1` keeps one column per label (multi-label AUC).
    """
    t = len(thresholds)
    if evenly:
        bucket = np.ceil(np.clip(preds, 0.0, 1.0) * (t - 1)).astype(np.intp)  # = bucket + 1
        bucket = np.maximum(bucket, 1) if thresholds[0] < 0 else bucket
    else:
        bucket = np.searchsorted(np.asarray(thresholds), preds, side="left")
    pos_w, neg_w = weight * labels, weight * ~labels
    if axis is None:
        bucket, pos_w, neg_w, cols = bucket.ravel(), pos_w.ravel(), neg_w.ravel(), 1
    else:
        cols = preds.shape[-1]
        bucket = (bucket.reshape(-1, cols) + (t + 1) * np.arange(cols)).ravel()
        pos_w, neg_w = pos_w.reshape(-1, cols).ravel(), neg_w.reshape(-1, cols).ravel()

    def above(w):  # sum of weights whose bucket index (1-based) exceeds each threshold index
        hist = np.bincount(bucket, weights=w, minlength=(t + 1) * cols).reshape(cols, t + 1)
        return np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:].T  # (t, cols)

    tp, fp = above(pos_w), above(neg_w)
    fn = pos_w.reshape(-1, cols).sum(0) - tp
    tn = neg_w.reshape(-1, cols).sum(0) - fp
    squeeze = axis is None
    return tuple(c[:, 0] if squeeze else c for c in (tp, fp, tn, fn))


def _parse_thresholds(thresholds, default):
    values = [default] if thresholds is None else np.atleast_1d(thresholds).tolist()
    if thresholds is not None and any(v is None or not 0 <= v <= 1 for v in values):
        raise ValueError(f"Threshold values must be in [0, 1]. Received: {thresholds!r}")
    return np.asarray(values, dtype=np.float64)


class _ConfusionRate(Metric):
    """Shared body of Precision and Recall: tp / (tp + `_other`), per threshold."""
    _other = "fp"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds, self.top_k, self.class_id = thresholds, top_k, class_id
        self.thresholds = _parse_thresholds(thresholds, 0.5 if top_k is None else NEG_INF)
        self.reset_state()

    def reset_state(self):
        self.true_positives = np.zeros(len(self.thresholds))
        self.other = np.zeros(len(self.thresholds))

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels, preds, weight = _prepare_counts(y_true, y_pred, sample_weight,
                                                    self.top_k, self.class_id)
        order = np.argsort(self.thresholds)
        tp, fp, _, fn = _counts(labels, preds, weight, self.thresholds[order])
        inverse = np.argsort(order)
        self.true_positives += tp[inverse]
        self.other += (fp if self._other == "fp" else fn)[inverse]

    def result(self):
        value = _divide_no_nan(self.true_positives, self.true_positives + self.other)
        return float(value[0]) if len(self.thresholds) == 1 else value

    def get_config(self) -> dict:
        return {**super().get_config(), "thresholds": self.init_thresholds,
                "top_k": self.top_k, "class_id": self.class_id}


class Precision(_ConfusionRate):
    """Precision = tp / (tp + fp), a prediction being positive when y_pred > threshold.

    Args:
        thresholds: A float or list of floats in [0, 1]. Defaults to 0.5; with a list,
            result() returns one value per threshold.
        top_k: Only the top k scores of each sample can be positive. Defaults to None.
        class_id: Restrict to one class column. Defaults to None.
        name, dtype: As in Metric; name defaults to "precision".

    Example:
        >>> Precision()([0, 1, 1, 1], [1, 0, 1, 1])
        0.6666666666666666
    """
    _other = "fp"


class Recall(_ConfusionRate):
    """Recall = tp / (tp + fn); arguments as Precision, name defaults to "recall".

    Example:
        >>> Recall()([0, 1, 1, 1], [1, 0, 1, 1])
        0.6666666666666666
    """
    _other = "fn"


class AUC(Metric):
    """Area under the ROC or PR curve, from confusion counts at fixed thresholds.

    Thresholds: -eps, 1/(T-1), ..., (T-2)/(T-1), 1+eps (T = num_thresholds). The area is a
    Riemann sum; "interpolation" uses trapezoids for ROC and Davis & Goadrich's interpolation
    for PR, as Keras does.

    Args:
        num_thresholds: Number of thresholds, > 1. Defaults to 200.
        curve: "ROC" or "PR". Defaults to "ROC".
        summation_method: "interpolation", "minoring" or "majoring".
        name, dtype: As in Metric; name defaults to "auc".
        thresholds: Explicit thresholds in [0, 1] (overrides num_thresholds).
        multi_label: One curve per label column, averaged. Defaults to False.
        num_labels: Number of label columns (multi_label only; else read from data).
        label_weights: Per-label weights (counts weighting, or the average for multi_label).
        from_logits: Apply a sigmoid to y_pred first. Defaults to False.

    Reference:
        Davis & Goadrich, 2006, https://www.biostat.wisc.edu/~page/rocpr.pdf
    """

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name=None, dtype=None, thresholds=None, multi_label=False, num_labels=None,
                 label_weights=None, from_logits=False):
        super().__init__(name=name, dtype=dtype)
        if str(curve).upper() not in ("ROC", "PR"):
            raise ValueError(f'Invalid AUC curve value: "{curve}". Expected one of: ROC, PR')
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(f"Invalid `summation_method` {summation_method!r}. Expected one "
                             "of: interpolation, minoring, majoring")
        if num_labels and not multi_label:
            raise ValueError("`num_labels` is needed only when `multi_label` is True.")
        self._init_from_thresholds = thresholds is not None
        eps = backend.epsilon()
        if thresholds is not None:
            inner = sorted(_parse_thresholds(thresholds, 0.5).tolist())
            self.num_thresholds = len(inner) + 2
            even = np.linspace(0.0, 1.0, self.num_thresholds)
            self._evenly = bool(np.allclose([0.0, *inner, 1.0], even, atol=eps))
        else:
            if num_thresholds <= 1:
                raise ValueError("Argument `num_thresholds` must be an integer > 1. "
                                 f"Received: num_thresholds={num_thresholds}")
            self.num_thresholds = int(num_thresholds)
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._evenly = True
        self._thresholds = np.array([0.0 - eps, *inner, 1.0 + eps])
        self.curve, self.summation_method = str(curve).upper(), summation_method
        self.multi_label, self.num_labels = multi_label, num_labels
        self.from_logits = from_logits
        self._num_labels = num_labels or 1
        self.label_weights = None if label_weights is None else np.asarray(label_weights, float)
        self.reset_state()

    @property
    def thresholds(self) -> list:
        return list(self._thresholds)

    def reset_state(self):
        shape = (self.num_thresholds, self._num_labels) if self.multi_label else \
            (self.num_thresholds,)
        self.true_positives, self.false_positives, self.true_negatives, \
            self.false_negatives = (np.zeros(shape) for _ in range(4))

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = _np(y_pred, np.float64)
        if self.from_logits:
            y_pred = stable_sigmoid(y_pred)
        labels, preds, weight = _prepare_counts(y_true, y_pred, sample_weight)
        if self.label_weights is not None and not self.multi_label:
            weight = weight * self.label_weights
        counts = _counts(labels, preds, weight, self._thresholds, self._evenly,
                         axis=-1 if self.multi_label else None)
        if self.multi_label and self.true_positives.shape[1] != counts[0].shape[1]:
            if self.true_positives.any() or self.false_positives.any():
                raise ValueError(f"AUC(multi_label=True) was built for "
                                 f"{self.true_positives.shape[1]} labels; received "
                                 f"{counts[0].shape[1]}.")
            self._num_labels = counts[0].shape[1]
            self.reset_state()
        self.true_positives += counts[0]
        self.false_positives += counts[1]
        self.true_negatives += counts[2]
        self.false_negatives += counts[3]

    def _interpolate_pr_auc(self):
        """PR-AUC with precision interpolated between thresholds (Davis & Goadrich)."""
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        prec_slope = _divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - prec_slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        safe_p_ratio = np.where(both, _divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
        return _divide_no_nan(prec_slope * (dtp + intercept * np.log(safe_p_ratio)),
                              np.maximum(tp[1:] + fn[1:], 0))

    def result(self) -> float:
        tp, fp, tn, fn = (self.true_positives, self.false_positives, self.true_negatives,
                          self.false_negatives)
        if self.curve == "PR" and self.summation_method == "interpolation":
            terms = self._interpolate_pr_auc()
        else:
            recall = _divide_no_nan(tp, tp + fn)
            if self.curve == "ROC":
                x, y = _divide_no_nan(fp, fp + tn), recall
            else:
                x, y = recall, _divide_no_nan(tp, tp + fp)
            if self.summation_method == "interpolation":
                heights = (y[:-1] + y[1:]) / 2.0
            elif self.summation_method == "minoring":
                heights = np.minimum(y[:-1], y[1:])
            else:
                heights = np.maximum(y[:-1], y[1:])
            terms = (x[:-1] - x[1:]) * heights
        by_label = terms.sum(axis=0)
        if not self.multi_label:
            return float(by_label)
        if self.label_weights is None:
            return float(np.mean(by_label))
        return float(_divide_no_nan(np.sum(by_label * self.label_weights),
                                    np.sum(self.label_weights)))

    def get_config(self) -> dict:
        config = {**super().get_config(), "num_thresholds": self.num_thresholds,
                  "curve": self.curve, "summation_method": self.summation_method,
                  "multi_label": self.multi_label, "num_labels": self.num_labels,
                  "label_weights": None if self.label_weights is None
                  else self.label_weights.tolist(), "from_logits": self.from_logits}
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config


# ---- lookup --------------------------------------------------------------------------------
_LOSS_KINDS = {losses.binary_crossentropy: "binary",
               losses.sparse_categorical_crossentropy: "sparse",
               losses.categorical_crossentropy: "categorical"}


def _loss_kind(loss):
    """'binary', 'sparse' or 'categorical' for a cross-entropy loss in any form, else None."""
    if isinstance(loss, str):
        try:
            loss = losses.get(loss)
        except ValueError:
            return None
    if inspect.isclass(loss) and issubclass(loss, losses.Loss):
        loss = loss()
    fn = getattr(loss, "fn", loss)
    return _LOSS_KINDS.get(fn) if callable(fn) else None


def _kind_from_shapes(y_true_shape, y_pred_shape):
    if y_pred_shape is None or len(y_pred_shape) == 0:
        return None
    if y_pred_shape[-1] == 1:
        return "binary"
    if y_true_shape is not None and (len(y_true_shape) < len(y_pred_shape) or
                                     (len(y_true_shape) and y_true_shape[-1] == 1)):
        return "sparse"
    return "categorical" if y_true_shape is not None else None


def _by_shape(choices):
    """A per-batch function that picks binary/sparse/categorical from the batch's shapes."""
    def fn(y_true, y_pred):
        kind = _kind_from_shapes(np.shape(y_true), np.shape(y_pred)) or "categorical"
        return choices[kind](y_true, y_pred)
    return fn


_ACCURACY = {"binary": binary_accuracy, "sparse": sparse_categorical_accuracy,
             "categorical": categorical_accuracy}
_CROSSENTROPY = {"binary": losses.binary_crossentropy,
                 "sparse": losses.sparse_categorical_crossentropy,
                 "categorical": losses.categorical_crossentropy}


def _resolve_family(identifier, family, loss, y_true_shape, y_pred_shape):
    """Accuracy or cross-entropy of the right kind, named `identifier` (Keras' rule)."""
    kind = _loss_kind(loss)
    if kind not in ("binary", "sparse"):
        kind = _kind_from_shapes(y_true_shape, y_pred_shape) or kind
    if kind is None:  # nothing known yet: decide per batch from the data's shapes
        return MeanMetricWrapper(_by_shape(family), name=identifier)
    if family is _ACCURACY:
        cls = {"binary": BinaryAccuracy, "sparse": SparseCategoricalAccuracy,
               "categorical": CategoricalAccuracy}[kind]
        return cls(name=identifier)
    cls = {"binary": BinaryCrossentropy, "sparse": SparseCategoricalCrossentropy,
           "categorical": CategoricalCrossentropy}[kind]
    return cls(name=identifier, from_logits=bool(getattr(loss, "from_logits", False)))


def get(identifier, loss=None, y_true_shape=None, y_pred_shape=None):
    """Resolve a metric identifier to a Metric, as `compile(metrics=[...])` does in Keras.

    "accuracy"/"acc" (and "crossentropy"/"ce") become the binary version if the loss is
    binary cross-entropy or y_pred's last dim is 1, the sparse version if the loss is sparse
    categorical cross-entropy or y_true has one fewer dim (or last dim 1 while y_pred's is
    > 1), else the categorical version; each keeps the given name. Other strings name a
    metric class ("auc", "AUC", "mse") or a loss function (a running mean of it), and keep
    that name. "loss" gives None: the trainer always reports the loss.

    Args:
        identifier: A string, config dict, Metric (class or instance), Loss or callable.
        loss: The compiled loss (string, function or Loss), used for "accuracy".
        y_true_shape, y_pred_shape: Shapes of the targets and outputs, when known.

    Returns:
        A Metric, or None for None and "loss".

    Example:
        >>> get("accuracy", loss="binary_crossentropy").__class__.__name__
        'BinaryAccuracy'
    """
    if identifier is None or identifier == "loss":
        return None
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if inspect.isclass(identifier) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, losses.Loss):
        return MeanMetricWrapper(identifier.call, name=identifier.name)
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in ("accuracy", "acc", "crossentropy", "ce"):
            family = _ACCURACY if key in ("accuracy", "acc") else _CROSSENTROPY
            return _resolve_family(identifier, family, loss, y_true_shape, y_pred_shape)
        cls = _REGISTRY.get(identifier) or _REGISTRY.get(key)
        if cls is not None and cls is not MeanMetricWrapper:
            return cls(name=identifier)
        alias = {"mse": MeanSquaredError, "mae": MeanAbsoluteError}.get(key)
        if alias is not None:
            return alias(name=identifier)
        try:
            fn = losses.get(identifier)
        except ValueError:
            names = [n for n in _REGISTRY if n not in ("MeanMetricWrapper",
                                                       "mean_metric_wrapper")]
            choices = dict.fromkeys(names + list(losses._FUNCTIONS)
                                    + ["accuracy", "acc", "crossentropy", "ce"])
            raise unknown_identifier("metric", identifier, list(choices)) from None
        if isinstance(fn, losses.Loss):
            return MeanMetricWrapper(fn.fn, name=identifier, **fn._fn_kwargs)
        return MeanMetricWrapper(fn, name=identifier)
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise TypeError(f"Could not interpret metric identifier: {identifier!r}. Expected a "
                    "string, a config dict, a Metric or a callable.")


def _deserialize_fn(config):
    """A function from serialize output: a metric function here, else a loss function."""
    name = config.get("config") if isinstance(config, dict) else config
    return globals().get(name) if callable(globals().get(name)) else losses.deserialize(config)


def serialize(metric) -> dict:
    """Return {"module", "class_name", "config", "registered_name"} for a Metric."""
    if not isinstance(metric, Metric):
        return losses.serialize(metric)
    return {"module": "keras.metrics", "class_name": type(metric).__name__,
            "config": metric.get_config(), "registered_name": None}


def deserialize(config, custom_objects=None):
    """Rebuild a Metric from `serialize` output (or a bare {class_name, config} dict)."""
    if isinstance(config, str):
        return get(config)
    class_name = config.get("class_name") if isinstance(config, dict) else None
    cls = (custom_objects or {}).get(class_name) or _REGISTRY.get(class_name)
    if cls is None:
        raise unknown_identifier("metric", class_name, list(_REGISTRY))
    return cls.from_config(config.get("config", {}))
