"""Fine-tuning helpers beyond Keras: per-layer learning rates and the two-phase recipe.

Transfer learning reuses the layers of a model trained on a large task (the *base*) under
a new output layer (the *head*). The usual recipe (Géron ch. 11; Chollet, "Transfer
learning & fine-tuning"):

1. freeze the base and train the head, so that the large gradients of a random head do
   not wreck the pretrained features;
2. unfreeze the base and continue at a lower learning rate, so the features only adapt.

`fine_tune` runs both phases; `set_lr_multiplier` gives layers their own learning-rate
scale (lr_layer = lr * multiplier), for a gentler version of phase 2 in which the base
moves more slowly than the head.
"""
from __future__ import annotations

from .. import optimizers as optimizers_mod
from ..layers.base import Layer
from ..layers.normalization import BatchNormalization
from ..training.callbacks import History


def set_lr_multiplier(layers, multiplier) -> None:
    """Scale the learning rate of `layers` (and their sublayers) by `multiplier`.

    lr_layer = lr * multiplier, for every weight of the layers (the optimizer reads
    `Variable.lr_multiplier`). A change takes effect at the next optimizer step; no
    re-compile is needed. 0 freezes the weights for the optimizer while gradients still
    flow through them (unlike `trainable = False`, BatchNormalization keeps training mode).

    Args:
        layers: a Layer (a model counts), or a list of them.
        multiplier: a finite number >= 0; 1.0 restores the optimizer's learning rate.

    Example:
        >>> set_lr_multiplier(model.layers[:-1], 0.1)   # the base learns 10x slower
        >>> model.layers[-1].lr_multiplier               # the head: unchanged
        1.0
    """
    for layer in _as_layers(layers, "layers"):
        layer.lr_multiplier = multiplier


def fine_tune(model, base_layers, x, y, head_epochs=4, finetune_epochs=16, head_lr=1e-3,
              finetune_lr=None, optimizer="sgd", loss=None, metrics=None, batch_size=32,
              validation_data=None, base_lr_multiplier=None, keep_batchnorm_frozen=True,
              callbacks=None, verbose=0, **fit_kwargs):
    """Train a new head with the base frozen, then the whole model at a lower learning rate.

    phase 1: base.trainable = False; fit(head_epochs) at head_lr
    phase 2: base.trainable = True;  fit(finetune_epochs) at finetune_lr (epochs numbered on)

    Each phase compiles the model with a fresh optimizer of the class of `optimizer`, so
    no optimizer state (momentum, Adam moments) leaks from the head phase into the base.
    After the call the base stays unfrozen (BatchNormalization excepted, see below).

    Args:
        model: the model to train: base layers + new head, e.g.
            `Sequential(pretrained.layers[:-1] + [Dense(1, activation="sigmoid")])`.
        base_layers: the pretrained layers (a Layer, a model, or a list).
        x, y: training data, as for `fit`.
        head_epochs: epochs of phase 1. Defaults to 4.
        finetune_epochs: epochs of phase 2. Defaults to 16.
        head_lr: learning rate of phase 1. Defaults to 1e-3.
        finetune_lr: learning rate of phase 2. Defaults to head_lr / 10.
        optimizer: optimizer name, class, or instance whose configuration is reused with
            the phase's learning rate. Defaults to "sgd".
        loss: loss for `compile`; defaults to the loss the model is compiled with.
        metrics: metrics for `compile`; defaults to the compiled ones.
        batch_size, validation_data, callbacks, verbose, **fit_kwargs: passed to `fit`.
        base_lr_multiplier: optional `lr_multiplier` for the base in phase 2 (the head
            keeps finetune_lr, the base learns at finetune_lr * base_lr_multiplier).
        keep_batchnorm_frozen: keep BatchNormalization layers of the base frozen (inference
            mode, moving statistics untouched) in phase 2, as Chollet recommends: new
            batch statistics from a small data set would undo the pretrained ones.
            Defaults to True.

    Returns:
        A History of both phases (epochs 0 .. head_epochs + finetune_epochs - 1), with
        `history.head_epochs` marking where phase 2 starts.

    Example:
        >>> model_B_on_A = keras.Sequential(model_A_clone.layers[:-1])
        >>> model_B_on_A.add(keras.layers.Dense(1, activation="sigmoid"))
        >>> history = fine_tune(model_B_on_A, model_B_on_A.layers[:-1], X_B, y_B,
        ...                     head_epochs=4, finetune_epochs=16, head_lr=1e-2,
        ...                     finetune_lr=1e-3, loss="binary_crossentropy",
        ...                     metrics=["accuracy"])

    Reference:
        Géron, Hands-On Machine Learning, 3rd ed., ch. 11 "Reusing pretrained layers";
        Chollet, https://keras.io/guides/transfer_learning/
    """
    base = _as_layers(base_layers, "base_layers")
    if head_epochs < 0 or finetune_epochs < 0:
        raise ValueError("`head_epochs` and `finetune_epochs` must be >= 0. Received: "
                         f"head_epochs={head_epochs}, finetune_epochs={finetune_epochs}")
    finetune_lr = head_lr / 10 if finetune_lr is None else finetune_lr
    if loss is None:
        if not getattr(model, "compiled", False):
            raise ValueError("fine_tune() needs a `loss` (the model is not compiled yet), "
                             "e.g. loss='binary_crossentropy'.")
        loss = model.loss
    if metrics is None and getattr(model, "compiled", False):
        metrics = list(model._metric_specs)
    fit_args = dict(batch_size=batch_size, validation_data=validation_data,
                    callbacks=callbacks, verbose=verbose, **fit_kwargs)
    merged = History()
    merged.head_epochs = head_epochs

    for layer in base:  # phase 1: only the head learns
        layer.trainable = False
    if head_epochs:
        model.compile(optimizer=_fresh_optimizer(optimizer, head_lr), loss=loss,
                      metrics=metrics)
        _merge(merged, model.fit(x, y, epochs=head_epochs, **fit_args))

    for layer in base:  # phase 2: everything learns, more slowly
        layer.trainable = True
        if keep_batchnorm_frozen:
            for sub in _walk(layer):
                if isinstance(sub, BatchNormalization):
                    sub.trainable = False
        if base_lr_multiplier is not None:
            layer.lr_multiplier = base_lr_multiplier
    if finetune_epochs:
        model.compile(optimizer=_fresh_optimizer(optimizer, finetune_lr), loss=loss,
                      metrics=metrics)
        _merge(merged, model.fit(x, y, epochs=head_epochs + finetune_epochs,
                                 initial_epoch=head_epochs, **fit_args))
    model.history = merged
    return merged


def _fresh_optimizer(spec, learning_rate):
    """A new optimizer of the class of `spec` (name, class or instance) at `learning_rate`."""
    if isinstance(spec, type):
        return spec(learning_rate=learning_rate)
    template = optimizers_mod.get(spec)
    config = {**template.get_config(), "learning_rate": learning_rate}
    config.pop("name", None)
    return type(template).from_config(config)


def _as_layers(layers, what) -> list:
    if isinstance(layers, Layer):
        return [layers]
    layers = list(layers)
    bad = [type(l).__name__ for l in layers if not isinstance(l, Layer)]
    if bad:
        raise TypeError(f"`{what}` must be a Layer or a list of Layers. Received items of "
                        f"type {bad}.")
    return layers


def _walk(layer):
    stack = [layer]
    while stack:
        item = stack.pop()
        yield item
        stack.extend(item._layers)


def _merge(merged, history):
    merged.epoch.extend(history.epoch)
    for key, values in history.history.items():
        merged.history.setdefault(key, []).extend(values)


__all__ = ["fine_tune", "set_lr_multiplier"]
