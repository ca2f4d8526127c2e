"""Model builders and probes shared by the experiments (public glassnet API only)."""
from __future__ import annotations

import numpy as np

import glassnet as keras


def mlp(hidden, activation="relu", kernel_initializer="he_normal", n_in=784, n_out=10,
        out_activation="softmax", batch_norm=None, use_bias=True, **dense_kwargs):
    """A Sequential MLP: Input → hidden Dense layers (+ optional BN) → output Dense.

    Args:
        hidden: list of hidden widths.
        activation: hidden activation name.
        kernel_initializer: hidden initializer (name or instance; a callable
            `f(i) -> initializer` gives layer i its own).
        batch_norm: None, "after" (Dense(act) → BN, Géron's ml3 default) or "before"
            (Dense(linear, no bias) → BN → Activation).
        dense_kwargs: extra Dense arguments (regularizers, constraints).
    """
    layers = [keras.layers.Input((n_in,))]
    for i, units in enumerate(hidden):
        init = kernel_initializer(i) if callable(kernel_initializer) and \
            not hasattr(kernel_initializer, "get_config") else kernel_initializer
        if batch_norm == "before":
            layers += [keras.layers.Dense(units, use_bias=False, kernel_initializer=init,
                                          **dense_kwargs),
                       keras.layers.BatchNormalization(),
                       keras.layers.Activation(activation)]
        else:
            layers.append(keras.layers.Dense(units, activation=activation, use_bias=use_bias,
                                             kernel_initializer=init, **dense_kwargs))
            if batch_norm == "after":
                layers.append(keras.layers.BatchNormalization())
    layers.append(keras.layers.Dense(n_out, activation=out_activation))
    return keras.Sequential(layers)


def layer_outputs(model, x, training=False):
    """[(layer name, output array)] for each layer of a Sequential model on batch x."""
    out = []
    with keras.no_grad():
        h = x
        for layer in model.layers:
            h = layer(h, training=training)
            out.append((layer.name, np.asarray(h.data if hasattr(h, "data") else h)))
    return out


def gradient_norms(model, x, y):
    """{layer name: {weight name: L2 norm of d loss / d weight}} on one batch.

    The model must be compiled (its loss is used). BN moving statistics are restored after
    the training-mode forward pass, and every gradient is cleared, so training can go on.
    """
    frozen = [(v, np.array(v.numpy())) for v in model.non_trainable_variables]
    variables = model.trainable_variables
    for v in variables:
        v.grad = None
    y_pred = model(x, training=True)
    loss = model.compute_loss(x, y, y_pred)
    loss.backward()
    norms = {}
    for layer in model.layers:
        for w in layer.trainable_weights:
            g = w.grad
            if g is not None:
                norms.setdefault(layer.name, {})[w.name] = float(np.linalg.norm(g))
    for v in variables:
        v.grad = None
    for v, value in frozen:
        v.assign(value)
    return norms


class BatchLoss(keras.callbacks.Callback):
    """Records the loss of every training batch (fit's logs hold the epoch's running mean,
    from which the batch's own loss is recovered)."""

    def __init__(self):
        super().__init__()
        self.losses = []
        self._prev = (0, 0.0)

    def on_epoch_begin(self, epoch, logs=None):
        self._prev = (0, 0.0)

    def on_train_batch_end(self, batch, logs=None):
        n, running = batch + 1, float(logs["loss"])
        k, prev = self._prev
        # running mean over n batches (sample-weighted: exact for equal batches)
        self.losses.append(running * n - prev * k)
        self._prev = (n, running)


def history_dict(history):
    """A History's per-epoch values as {key: [float, ...]}."""
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def data_label(split):
    return split.source
