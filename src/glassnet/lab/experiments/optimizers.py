"""optimizers: Géron's optimizer comparison on Fashion-MNIST, and Saito's 2-D paths."""
from __future__ import annotations

import numpy as np

import glassnet as keras
from ..base import Claim, Outcome, Table, group, mean, pick, seeds, stat
from ..common import BatchLoss, history_dict
from ..data import fashion

NAME = "optimizers"
TITLE = "Optimizers: SGD, Momentum, Nesterov, AdaGrad, RMSProp, Adam"
SETUP = ("Géron's build_model (ml3): 784 → 3 × Dense(100, relu, he_normal) → Dense(10, "
         "softmax), batch 32, every optimizer at learning_rate 0.001 with Keras' defaults "
         "otherwise (Momentum and Nesterov: momentum 0.9; RMSprop: rho 0.9; Adam: β 0.9, "
         "0.999). Plain SGD is included although Géron's notebook has no run of it (its "
         "'SGD' log is the momentum run). Below: Saito's optimizer paths on "
         "f(x, y) = x²/20 + y², run with glassnet's own optimizers (apply_gradients).")

OPTIMIZERS = {
    "SGD": lambda: keras.optimizers.SGD(learning_rate=0.001),
    "Momentum": lambda: keras.optimizers.SGD(learning_rate=0.001, momentum=0.9),
    "Nesterov": lambda: keras.optimizers.SGD(learning_rate=0.001, momentum=0.9,
                                             nesterov=True),
    "AdaGrad": lambda: keras.optimizers.Adagrad(learning_rate=0.001),
    "RMSProp": lambda: keras.optimizers.RMSprop(learning_rate=0.001, rho=0.9),
    "Adam": lambda: keras.optimizers.Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999),
}
# Géron ml3, 10 epochs on 55,000 images: final training loss (and best val accuracy).
PUBLISHED_LOSS = {"Momentum": 0.3097, "Nesterov": 0.3081, "AdaGrad": 0.4511,
                  "RMSProp": 0.3437, "Adam": 0.2428}
PUBLISHED_VAL = {"Momentum": 0.8672, "Nesterov": 0.8708, "AdaGrad": 0.8424,
                 "RMSProp": 0.8636, "Adam": 0.8696}


def _sizes(mode):
    return pick(mode, (1000, 1), (10000, 3), (55000, 10))


def tasks(mode):
    n, epochs = _sizes(mode)
    return [({"optimizer": k, "n_train": n, "epochs": epochs, "cost": n * epochs / 2e4}, s)
            for k in OPTIMIZERS for s in seeds(mode)]


def run(config, seed):
    data = fashion(config["n_train"], n_val=2000, n_test=0)
    keras.utils.set_random_seed(seed)
    L = keras.layers
    model = keras.Sequential([L.Input((784,))] +
                             [L.Dense(100, activation="relu", kernel_initializer="he_normal")
                              for _ in range(3)] + [L.Dense(10, activation="softmax")])
    model.compile(optimizer=OPTIMIZERS[config["optimizer"]](),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    batches = BatchLoss()
    history = model.fit(data.x_train, data.y_train, epochs=config["epochs"], batch_size=32,
                        validation_data=(data.x_val, data.y_val), callbacks=[batches],
                        verbose=0)
    # the batch losses, averaged over windows of 20 steps (a readable early-training curve)
    losses = np.asarray(batches.losses)
    k = len(losses) // 20 * 20
    return {"history": history_dict(history), "data": data.source,
            "batch_loss": losses[:k].reshape(-1, 20).mean(1).tolist()}


def summarize(results, mode):
    from ... import plot
    by = group(results, "optimizer")
    all_seeds = sorted({r.seed for r in results})
    loss1 = {k: [r.output["history"]["loss"][0] for r in v] for k, v in by.items()}
    final = {k: [r.output["history"]["loss"][-1] for r in v] for k, v in by.items()}
    val = {k: [r.output["history"]["val_accuracy"][-1] for r in v] for k, v in by.items()}
    others = ("Momentum", "Nesterov", "AdaGrad", "RMSProp", "Adam")
    claims = [
        Claim("Adam and RMSProp beat plain SGD early: a lower mean training loss over the "
              "first epoch, at the same learning rate 0.001.",
              supported=max(mean(loss1["Adam"]), mean(loss1["RMSProp"])) <
              mean(loss1["SGD"]),
              metrics={f"train loss, epoch 1, {k}": stat(loss1[k])
                       for k in ("SGD", "RMSProp", "Adam")},
              published={"Kingma & Ba 2015, fig. 2 (MNIST MLP)":
                         "Adam converges faster than SGD-Nesterov, AdaGrad, RMSProp",
                         "Saito, fig. 6-9 (MNIST)": "SGD slowest of the four"},
              seeds=all_seeds),
        Claim("AdaGrad (Keras defaults) trains slowest of the momentum and adaptive methods: "
              "the highest final training loss among Momentum, Nesterov, AdaGrad, RMSProp "
              "and Adam.",
              supported=max(others, key=lambda k: mean(final[k])) == "AdaGrad",
              metrics={f"final train loss, {k}": stat(final[k]) for k in others},
              published={f"final train loss, {k}": v for k, v in PUBLISHED_LOSS.items()},
              seeds=all_seeds,
              note="Published: Géron ml3, 10 epochs on 55,000 images (ours: the epochs and "
                   "images of this mode)."),
    ]
    table = Table("Per optimizer (mean ± sd over seeds)",
                  ["optimizer", "train loss, epoch 1", "final train loss",
                   "final val accuracy", "published final loss", "published val acc."],
                  [[k, stat(loss1[k]), stat(final[k]), stat(val[k]),
                    str(PUBLISHED_LOSS.get(k, "–")), str(PUBLISHED_VAL.get(k, "–"))]
                   for k in OPTIMIZERS],
                  note="Published: Géron ml3, 10 epochs on 55,000 images; no plain-SGD run.")
    paths = {k: plot.optimizer_path(opt) for k, opt in plot.saito_optimizers().items()}
    path_table = Table("Saito's 2-D function: where each optimizer is after 30 steps",
                       ["optimizer", "x", "y", "f(x, y)"],
                       [[k, float(p[-1, 0]), float(p[-1, 1]),
                         float(plot.saito_function(p[-1, 0], p[-1, 1]))]
                        for k, p in paths.items()],
                       note="Keras conventions match Saito's update rules; Keras' Adagrad "
                            "starts its accumulator at 0.1 (Saito: 0), so "
                            "initial_accumulator_value=0 is passed to draw his figure.")
    curves = {k: [r.output["batch_loss"] for r in by[k]] for k in OPTIMIZERS}
    fig1 = plot.training_curves(curves, "loss", xlabel="training step (× 20)",
                                title="Training loss, batch means over 20 steps", logy=True)
    fig2 = plot.training_curves({k: [r.output["history"] for r in by[k]] for k in OPTIMIZERS},
                                "val_accuracy", title="Validation accuracy per epoch")
    fig3 = plot.optimizer_paths(paths, title="f(x, y) = x²/20 + y², start (−7, 2), 30 steps")
    return Outcome(claims=claims, tables=[table, path_table],
                   figures=[("Training loss early in training (every optimizer at "
                             "learning rate 0.001).", fig1),
                            ("Validation accuracy per epoch.", fig2),
                            ("Saito's figure 6-8: the optimizers' paths to the minimum at "
                             "(0, 0).", fig3)])
