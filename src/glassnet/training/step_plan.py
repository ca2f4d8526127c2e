"""The training step of a plain layer stack as a fixed sequence of array calls.

On small batches a step through the autograd graph spends as long on bookkeeping as on
arithmetic: a Tensor and a closure per op, a topological sort, a gradient dictionary (W7,
784-128-128-10 at batch 32: about 165 us of Python per step next to 165 us of matrix
products). For the commonest model of all, a `Sequential` stack of Flatten, Dense, Dropout
and BatchNormalization layers ending in a softmax Dense trained with
sparse_categorical_crossentropy (or a default `SparseCategoricalCrossentropy()`),
`StepPlan` runs the same forward and backward without the graph: the array functions the
graph's nodes call (`fused.dense_forward`/`dense_backward`,
`batch_norm_train_forward`/`_backward`, the sparse cross-entropy's, `Dropout.draw_mask`),
in the same order, with the gradients left in the optimizer's buffers exactly as
`loss.backward()` leaves them; other built-in layers run as small graphs of their own, and
the step's large arrays are kept from one step to the next. It is an optimisation
only (tests compare both paths bit for bit); anything it does not cover, or any change it
cannot see coming (a diagnostics wrapper around a layer's `call`, a penalty, an unusual
input), takes the graph. `GLASSNET_STEP_PLAN=0` or `set_enabled(False)` turns it off.
"""
from __future__ import annotations

import os

import numpy as np

from .. import activations, losses as losses_mod, native
from ..autograd import Tensor, fused, is_grad_enabled, ops
from ..autograd.variable import STRUCTURE_VERSION
from ..layers import activation_layers, regularization
from ..layers.core import Dense, Dropout, Flatten
from ..layers.normalization import BatchNormalization

# Built-in layers the plan runs as a small graph of their own (one `backward()` per layer):
# their call uses only their input and their own weights and adds no loss.
_SMALL_GRAPH_LAYERS = (
    activation_layers.Activation, activation_layers.ReLU, activation_layers.LeakyReLU,
    activation_layers.PReLU, activation_layers.ELU, regularization.AlphaDropout,
    regularization.GaussianNoise, regularization.GaussianDropout, regularization.MCDropout,
    regularization.MCAlphaDropout)
_FLATTEN, _DROPOUT, _DENSE, _BATCH_NORM, _SMALL_GRAPH = range(5)
# The methods the plan stands in for: a patched one (a profiler, a test double) means the
# user wants it called, so the step takes the graph.
_STAND_INS = ((Dense, "call"), (BatchNormalization, "call"), (Dropout, "call"),
              (Flatten, "call"))
_ORIGINALS = tuple(getattr(cls, name) for cls, name in _STAND_INS)
_MODEL_HOOKS = ("call", "compute_loss", "_penalties")

_ENABLED = [os.environ.get("GLASSNET_STEP_PLAN", "1") != "0"]


def enabled() -> bool:
    """Whether training steps may take the plan."""
    return _ENABLED[0]


def set_enabled(flag: bool) -> None:
    """Let training steps take the plan (True, the default) or always the graph (False)."""
    _ENABLED[0] = bool(flag)


def plan_for(model):
    """The model's StepPlan, or None when its step must go through the graph (None while
    the plan or the compiled kernels are switched off; cached until the model's structure
    or loss changes or a Dense layer's activation is reassigned)."""
    if not _ENABLED[0] or native.kernels is None:
        return None
    key = (STRUCTURE_VERSION[0], id(model._loss_fn))
    cached = model.__dict__.get("_step_plan")
    if cached is None or cached[0] != key or (cached[1] is not None and cached[1].stale()):
        cached = model.__dict__["_step_plan"] = (key, StepPlan.build(model))
    return cached[1]


class StepPlan:
    """Forward, loss, backward of one stack; `run` returns None to hand a step back."""

    def __init__(self, ops, dtype, input_tail, model_methods):
        self.ops, self.dtype, self.input_tail = ops, dtype, input_tail
        self.layers = [layer for _, layer in ops]
        self.weights = [w for layer in self.layers for w in layer.weights]
        # what a user may reassign without a structure change
        self.activations = [(layer, layer.activation, layer._fused_activation)
                            for kind, layer in ops if kind == _DENSE]
        self.model_methods = model_methods
        # NOTE: a step's activations and input gradients live in arrays kept from one step
        # to the next (one set, for the last batch shape): a fresh array of a MiB or more
        # is a fresh mmap, and page-faulting it in cost W4 (batch 512) 9 ms of its 103 ms
        # step. Nothing outside the step sees them (y_pred and the loss are new arrays).
        self._buffers = {}  # 4 * op index + 0 (output), 2 (input gradient)

    @staticmethod
    def build(model):
        if type(model).__dict__.get("_plain_layer_stack") is not True or not model.built \
                or "call" in model.__dict__:
            return None
        if model._loss_fn is not losses_mod.sparse_categorical_crossentropy and \
                not _plain_sparse_loss(model._loss_fn):
            return None
        layers = list(model._layers)
        if not layers or type(layers[-1]) is not Dense or len(set(map(id, layers))) < len(
                layers):
            return None
        last = layers[-1]
        if last.activation is not activations.softmax or last._fused_activation is not None:
            return None
        shape = model._input_batch_shape
        if shape is None or any(d is None for d in shape[1:]):
            return None
        # NOTE: everything that could make a step hand back halfway (after a BN layer has
        # updated its moving statistics) is settled here, once.
        dtype, ndim = np.dtype(model.dtype), len(shape)  # the model converts its input
        if dtype not in (np.float32, np.float64):
            return None  # the compiled kernels' dtypes (float16 takes NumPy in the graph)
        ops = []
        for layer in layers:
            kind = type(layer)
            if not layer.built or np.dtype(layer.dtype) != dtype or any(
                    w.data.dtype != dtype for w in layer.weights):
                return None
            if kind is Flatten:
                ops.append((_FLATTEN, layer))
                ndim = 2
            elif kind is Dropout:
                ops.append((_DROPOUT, layer))
            elif kind is Dense and (layer is last or layer._fused_activation is not None
                                    or layer.activation is activations.linear):
                ops.append((_DENSE, layer))
            elif kind is BatchNormalization and ndim == 2 and layer.axis in (-1, 1):
                ops.append((_BATCH_NORM, layer))  # the kernels take (N, C) batches only
            elif kind in _SMALL_GRAPH_LAYERS or (kind is Dense and getattr(
                    activations, getattr(layer.activation, "__name__", ""), None)
                    is layer.activation):
                ops.append((_SMALL_GRAPH, layer))  # e.g. Dense(sigmoid): two nodes
            else:
                return None
        if ndim != 2:
            return None
        methods = tuple(getattr(type(model), name) for name in _MODEL_HOOKS)
        return StepPlan(ops, dtype, tuple(shape[1:]), methods)

    def stale(self) -> bool:
        """Whether a Dense layer's activation was reassigned since the plan was made."""
        for layer, activation, fused_name in self.activations:
            if layer.activation is not activation or layer._fused_activation != fused_name:
                return True
        return False

    def _usable(self, model, x) -> bool:
        """Per-step checks of what may change without a structure change; all of them
        before the first side effect (BN statistics, dropout draws)."""
        if x.shape[1:] != self.input_tail or x.shape[0] < 2 or x.ndim < 2:
            return False
        if not is_grad_enabled() or model.__dict__.get("_regularized_cache") or \
                model.activity_regularizer is not None or model._losses:
            return False
        loss_fn = model._loss_fn
        if loss_fn is not losses_mod.sparse_categorical_crossentropy and \
                not _plain_sparse_loss(loss_fn):
            return False  # e.g. from_logits set on the Loss object after compile
        model_dict, cls = model.__dict__, type(model)
        for name, method in zip(_MODEL_HOOKS, self.model_methods):
            if name in model_dict or getattr(cls, name) is not method:
                return False
        for (cls, name), original in zip(_STAND_INS, _ORIGINALS):
            if getattr(cls, name) is not original:
                return False
        for layer in self.layers:
            if "call" in layer.__dict__ or layer.activity_regularizer is not None or \
                    layer._losses:
                return False
            if type(layer) is BatchNormalization and not layer.trainable:
                return False  # a frozen BN layer normalises with its moving statistics
            if type(layer) is Dropout and layer._mc_sampling:
                return False
        for w in self.weights:  # usually the first one
            if w.requires_grad:
                return True
        return False  # nothing to train: the graph raises the error that says so

    def _buffer(self, key, shape):
        buf = self._buffers.get(key)
        if buf is not None and buf.shape == shape:
            return buf
        buf = self._buffers[key] = np.empty(shape, self.dtype)
        return buf

    def run(self, model, x, y, sample_weight):
        """(loss, y_pred) as Tensors without a graph, the gradients in place; or None."""
        if sample_weight is not None or type(x) is not np.ndarray or \
                x.dtype.kind not in "fiub" or not x.flags.c_contiguous or \
                not self._usable(model, x):
            return None
        labels = np.asarray(y)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.shape != (x.shape[0],):
            return None  # the graph's loss raises the error that names the shapes
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)  # as the model's Layer.__call__ converts its input
        if model._loss_fn is not losses_mod.sparse_categorical_crossentropy:
            labels = losses_mod._true(labels, self.dtype)  # a Loss object's float labels

        saved, h, upstream = [], x, False
        for i, (kind, layer) in enumerate(self.ops):
            if kind == _FLATTEN:
                saved.append((kind, layer, h, upstream, None, i))
                h = h.reshape(h.shape[0], -1)
            elif kind == _DROPOUT:
                mask = layer.draw_mask(h.shape, h.dtype) if layer.rate else None
                saved.append((kind, layer, h, upstream, mask, i))
                h = h if mask is None else h * mask
            elif kind == _DENSE:
                z = self._buffer(4 * i, h.shape[:-1] + (layer.units,))
                out = fused.dense_forward(h, layer.kernel, layer.bias,
                                          layer._fused_activation, z)
                saved.append((kind, layer, h, upstream, out, i))
                upstream = upstream or layer.kernel.requires_grad or (
                    layer.bias is not None and layer.bias.requires_grad)
                h = out
            elif kind == _BATCH_NORM and h.flags.c_contiguous and \
                    h.dtype == self.dtype:
                moving = (layer.moving_mean.data, layer.moving_variance.data, layer.momentum)
                out = fused.batch_norm_train_forward(
                    h, layer.gamma, layer.beta, layer.epsilon, moving,
                    self._buffer(4 * i, h.shape))
                layer.num_updates += 1
                saved.append((kind, layer, h, upstream, out, i))
                upstream = upstream or any(p is not None and p.requires_grad
                                           for p in (layer.gamma, layer.beta))
                h = out[0]
            else:  # a small graph (also BN on an input its kernel cannot take: the graph's)
                inp = Tensor(h, requires_grad=upstream)
                out = layer.call(inp, training=True) if layer._call_has_training \
                    else layer.call(inp)
                saved.append((_SMALL_GRAPH, layer, h, upstream, (inp, out), i))
                upstream = out.requires_grad
                h = out.data
        # NOTE: after the forward pass, as in the graph (BN statistics and dropout draws are
        # spent when a bad label raises)
        # The output layer's logits are `h`: the loss and its probabilities in one pass
        # (the same loop as the softmax activation's, so y_pred is what that layer returns).
        p, per_sample, labels = self._loss_forward(h, labels)
        loss = ops.mean_all_forward(per_sample)

        # backward: the mean's, the cross-entropy's, then each layer's (from backward()'s
        # seed gradient of ones)
        g_rows = ops.mean_all_backward(np.ones((), per_sample.dtype), per_sample)
        g = fused.sparse_softmax_cross_entropy_backward(p, labels, g_rows)
        owned = True
        for kind, layer, inp, needs_gx, kept, i in reversed(saved):
            if kind == _FLATTEN:
                g, owned = g.reshape(inp.shape), False
            elif kind == _DROPOUT:
                if kept is not None:
                    g, owned = g * kept, False
            elif kind == _DENSE:
                g, gk, gb = fused.dense_backward(
                    g, inp, kept, layer.kernel, layer.bias, layer._fused_activation, owned,
                    needs_gx, needs_gx and self._buffer(4 * i + 2, inp.shape))
                _take_gradients((layer.kernel, gk), (layer.bias, gb))
                owned = True
            elif kind == _BATCH_NORM:
                g, dgamma, dbeta = fused.batch_norm_train_backward(
                    g, inp, kept[1], layer.gamma, layer.beta, kept[3], needs_gx,
                    needs_gx and self._buffer(4 * i + 2, inp.shape))
                _take_gradients((layer.gamma, dgamma), (layer.beta, dbeta))
                owned = True
            else:
                g, owned = self._small_graph_backward(kept, g), False
            if not needs_gx:
                break
        return Tensor(loss), Tensor(p)

    def _loss_forward(self, logits, labels):
        """(p, per-sample loss, int64 labels), or the graph's error for a bad label."""
        units = self.layers[-1].units
        if labels.dtype.kind in "iu":
            # NOTE: the kernel checks every label against [0, units) as it reads it (a
            # uint64 label past int64's range turns negative): the NumPy check below runs
            # only to word the error, outside the handler, so the user sees that one alone.
            try:
                return fused.sparse_softmax_cross_entropy_forward(logits, labels)
            except ValueError:
                pass
        labels = losses_mod._check_labels(labels, units)  # float labels: which is no integer
        return fused.sparse_softmax_cross_entropy_forward(logits, labels)

    # ---- other layers: their own graph, walked by backward() -------------------------
    @staticmethod
    def _small_graph_backward(kept, g):
        inp, out = kept
        if out is inp:  # e.g. a linear Activation: no node
            return g
        if out.requires_grad:
            out.backward(g)  # weights (PReLU's alpha) take their gradients here
        return inp.grad


def _plain_sparse_loss(fn) -> bool:
    """`SparseCategoricalCrossentropy()` with Keras' defaults: the same values and
    gradients as the function (its sum / batch size reduction is the function's mean)."""
    return type(fn) is losses_mod.SparseCategoricalCrossentropy and not fn.from_logits and \
        fn.ignore_class is None and fn.axis == -1 and fn._dtype is None and \
        fn.reduction == "sum_over_batch_size" and fn._fn_kwargs == {
            "from_logits": False, "ignore_class": None, "axis": -1}


def _take_gradients(*pairs):
    """What backward() does with a weight's gradient from a VJP."""
    for weight, grad in pairs:
        if grad is not None and weight is not None and weight.requires_grad:
            weight._accumulate_grad(grad)
