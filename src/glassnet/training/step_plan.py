"""The training step of a plain layer stack as a fixed sequence of array calls.

On small batches a step through the autograd graph spends as long on bookkeeping as on
arithmetic: a Tensor and a closure per op, a topological sort, a gradient dictionary (W7,
784-128-128-10 at batch 32: about 165 us of Python per step next to 165 us of matrix
products). For the commonest model of all, a `Sequential` stack of Flatten, Dense, Dropout
and BatchNormalization layers ending in a softmax Dense trained with
sparse_categorical_crossentropy, `StepPlan` runs the same forward and backward without the
graph: the same kernels, on the same arrays, in the same order, with the gradients left
in the optimizer's buffers exactly as `loss.backward()` leaves them. It is an optimisation
only (tests compare both paths bit for bit); anything it does not cover, or any change it
cannot see coming (a diagnostics wrapper around a layer's `call`, a penalty, an unusual
input), takes the graph. `GLASSNET_STEP_PLAN=0` or `set_enabled(False)` turns it off.
"""
from __future__ import annotations

import os

import numpy as np

from .. import activations, losses as losses_mod, native
from ..autograd import Tensor, fused, is_grad_enabled
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
_MODEL_HOOKS = ("call", "compute_loss", "_penalties", "_train_batch")

_ENABLED = [os.environ.get("GLASSNET_STEP_PLAN", "1") != "0"]


def enabled() -> bool:
    """Whether training steps may take the plan."""
    return _ENABLED[0]


def set_enabled(flag: bool) -> None:
    """Let training steps take the plan (True, the default) or always the graph (False)."""
    _ENABLED[0] = bool(flag)


def plan_for(model):
    """The model's StepPlan, or None when its step must go through the graph (cached until
    the model's structure, loss or the kernels' switch change)."""
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
        self._buffers = {}  # 4 * op index + 0 (output), 1 (BN's xhat), 2 (input gradient)

    @staticmethod
    def build(model):
        if type(model).__dict__.get("_plain_layer_stack") is not True or not model.built \
                or "call" in model.__dict__:
            return None
        if model._loss_fn is not losses_mod.sparse_categorical_crossentropy:
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

        saved, h, upstream = [], x, False
        for i, (kind, layer) in enumerate(self.ops):
            if kind == _FLATTEN:
                saved.append((kind, layer, h, upstream, None, i))
                h = h.reshape(h.shape[0], -1)
            elif kind == _DROPOUT:
                mask = self._dropout_mask(layer, h)
                saved.append((kind, layer, h, upstream, mask, i))
                h = h if mask is None else h * mask
            elif kind == _DENSE:
                out = self._dense_forward(layer, h, self._buffer(
                    4 * i, h.shape[:-1] + (layer.kernel.shape[1],)))
                saved.append((kind, layer, h, upstream, out, i))
                upstream = upstream or layer.kernel.requires_grad or (
                    layer.bias is not None and layer.bias.requires_grad)
                h = out
            elif kind == _BATCH_NORM and h.flags.c_contiguous and h.dtype == self.dtype:
                out = self._batch_norm_forward(layer, h, self._buffer(4 * i, h.shape),
                                               self._buffer(4 * i + 1, h.shape))
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
        labels = losses_mod._check_labels(labels, self.layers[-1].units)
        # The output layer's logits are `h`: the loss and its probabilities in one pass
        # (the same loop as softmax_rows, so y_pred is what the softmax layer returns).
        kernels = native.kernels
        labels64 = np.ascontiguousarray(labels, dtype=np.int64)
        p, per_sample = np.empty_like(h), np.empty(h.shape[0], h.dtype)
        kernels.xent_forward(h, labels64, p, per_sample)
        loss = np.add.reduce(per_sample, axis=None) / per_sample.dtype.type(per_sample.size)

        # backward: ops.mean's VJP, the cross-entropy's, then each layer's
        g_rows = np.empty(per_sample.shape, per_sample.dtype)
        g_rows.fill(np.ones((), per_sample.dtype) / per_sample.size)
        g = np.empty_like(p)
        kernels.xent_backward(p, labels64, g_rows, g)
        owned = True
        for kind, layer, inp, needs_gx, kept, i in reversed(saved):
            if kind == _FLATTEN:
                g, owned = g.reshape(inp.shape), False
            elif kind == _DROPOUT:
                if kept is not None:
                    g, owned = g * kept, False
            elif kind == _DENSE:
                gx_out = needs_gx and self._buffer(4 * i + 2, inp.shape)
                g = self._dense_backward(layer, inp, kept, g, owned, gx_out)
                owned = True
            elif kind == _BATCH_NORM:
                gx_out = needs_gx and self._buffer(4 * i + 2, inp.shape)
                g = self._batch_norm_backward(layer, inp, kept, g, gx_out)
                owned = True
            else:
                g, owned = self._small_graph_backward(kept, g), False
            if not needs_gx:
                break
        return Tensor(loss), Tensor(p)

    # ---- other layers: their own graph, walked by backward() -------------------------
    @staticmethod
    def _small_graph_backward(kept, g):
        inp, out = kept
        if out is inp:  # e.g. a linear Activation: no node
            return g
        if out.requires_grad:
            out.backward(g)  # weights (PReLU's alpha) take their gradients here
        return inp.grad

    # ---- Dropout: its call, the same draws from its generator ---------------------------
    @staticmethod
    def _dropout_mask(layer, h):
        if layer.rate == 0:
            return None
        shape = h.shape if layer.noise_shape is None else tuple(
            n if n is not None else s for n, s in zip(layer.noise_shape, h.shape))
        keep = layer._rng.random(shape, dtype=np.float32) >= layer.rate
        return keep * np.asarray(1.0 / (1.0 - layer.rate), dtype=h.dtype)

    # ---- Dense: fused.dense without its node -------------------------------------------
    @staticmethod
    def _dense_forward(layer, h, z):
        kernel, bias = layer.kernel, layer.bias
        activation = layer._fused_activation
        np.matmul(h, kernel.data, out=z)
        if activation == "relu" and bias is not None:
            return fused._bias_relu(z, bias.data)
        if bias is not None:
            z += bias.data
        return fused.INPLACE_ACTIVATIONS[activation][0](z) if activation else z

    @staticmethod
    def _dense_backward(layer, inp, y, g, owned, gx_out):
        """The gradients of the layer's weights; returns the input's, written into `gx_out`
        (False: the input needs none)."""
        kernel, bias = layer.kernel, layer.bias
        activation = layer._fused_activation
        want_gb = bias is not None and bias.requires_grad
        gb = None
        if activation == "relu":
            g, gb = fused._relu_backward(g, y, owned, bias if want_gb else None)
        elif activation is not None:
            g = fused.INPLACE_ACTIVATIONS[activation][1](g, y)
        g2 = g.reshape(-1, g.shape[-1])
        gx = np.matmul(g, kernel.data.T, out=gx_out) if gx_out is not False else None
        if kernel.requires_grad:
            kernel._accumulate_grad(np.matmul(inp.reshape(-1, inp.shape[-1]).T, g2,
                                              out=fused._grad_target(kernel)))
        if want_gb:
            if gb is None:
                gb = np.add.reduce(g2, axis=0, out=fused._grad_target(bias))
            bias._accumulate_grad(gb)
        return gx

    # ---- BatchNormalization in training mode: fused._batch_norm_train_native ------------
    @staticmethod
    def _batch_norm_forward(layer, h, y, xhat):
        moving_mean, moving_var = layer.moving_mean.data, layer.moving_variance.data
        gamma, beta = layer.gamma, layer.beta
        rows, channels = h.shape
        mean, var, inv_std = np.empty((3, channels), h.dtype)
        native.kernels.bn_forward(h, rows, None if gamma is None else gamma.data,
                                  None if beta is None else beta.data, layer.epsilon,
                                  y, xhat, mean, var, inv_std, moving_mean, moving_var,
                                  layer.momentum)
        layer.num_updates += 1
        return y, xhat, inv_std

    @staticmethod
    def _batch_norm_backward(layer, inp, saved, g, gx_out):
        _, xhat, inv_std = saved
        gamma, beta = layer.gamma, layer.beta
        channels = inp.shape[1]
        sum_gx = fused._grad_target(gamma) if gamma is not None else None
        sum_g = fused._grad_target(beta) if beta is not None else None
        scale = np.empty(channels, inp.dtype)
        sum_gx = np.empty_like(scale) if sum_gx is None else sum_gx
        sum_g = np.empty_like(scale) if sum_g is None else sum_g
        gx = gx_out if gx_out is not False else None
        if not g.flags.c_contiguous:
            g = np.ascontiguousarray(g)
        native.kernels.bn_backward(g, xhat, None if gamma is None else gamma.data, inv_std,
                                   gx, sum_g, sum_gx, scale)
        if gamma is not None and gamma.requires_grad:
            gamma._accumulate_grad(sum_gx)
        if beta is not None and beta.requires_grad:
            beta._accumulate_grad(sum_g)
        return gx
