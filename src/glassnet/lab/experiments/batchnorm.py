"""batchnorm: with vs without BN over init scales (Saito), and BN before vs after (Géron)."""
from __future__ import annotations

import numpy as np

import glassnet as keras
from ..base import Claim, Outcome, Table, fmt, group, mean, pick, seeds, stat
from ..common import history_dict
from ..data import fashion

NAME = "batchnorm"
TITLE = "Batch normalisation: faster training, at any init scale, before or after ReLU"
SETUP = ("(a) Saito's ch6/batch_norm_test.py on Fashion-MNIST: 5 × Dense(100) ReLU, hidden "
         "kernels N(0, scale²) for scales from 1 to 1e-4, with BN between Dense and ReLU "
         "(epsilon 1e-6 as Saito's 10e-7: Keras' default 1e-3 swamps the variance of the "
         "tiny pre-activations at scale 1e-4 and that net does not train) or without; "
         "SGD(0.01), batch 100, on the first 1,000 training images; training accuracy per "
         "epoch (training mode, as fit reports it). "
         "(b) Géron's ml3 MLP: Flatten → BN → Dense(300, relu, he_normal) → BN → "
         "Dense(100, relu, he_normal) → BN → Dense(10, softmax), optimizer 'sgd' "
         "(SGD 0.01), batch 32; the same net without BN, and with BN before the "
         "activation (Dense without bias → BN → ReLU).")

PLACEMENTS = ("no BN", "BN after activation", "BN before activation")


def _sizes(mode):
    # sweep: (scales, images, epochs); placement: (images, epochs)
    return pick(mode, ((1.0, 0.01), 300, 2, 1000, 1),
                (tuple(np.logspace(0, -4, 5)), 1000, 12, 10000, 2),
                (tuple(np.logspace(0, -4, 9)), 1000, 20, 55000, 2))


def tasks(mode):
    scales, n_sweep, e_sweep, n_place, e_place = _sizes(mode)
    out = []
    for s in seeds(mode):
        for scale in scales:
            for bn in (False, True):
                out.append(({"part": "sweep", "scale": float(scale), "bn": bn,
                             "n_train": n_sweep, "epochs": e_sweep,
                             "cost": n_sweep * e_sweep / 2e4}, s))
        for placement in PLACEMENTS:
            out.append(({"part": "placement", "placement": placement, "n_train": n_place,
                         "epochs": e_place, "cost": n_place * e_place * 3 / 1e4}, s))
    return out


def _sweep_model(scale, bn):
    init = keras.initializers.RandomNormal(stddev=scale)
    layers = [keras.layers.Input((784,))]
    for _ in range(5):
        if bn:
            layers += [keras.layers.Dense(100, kernel_initializer=init),
                       keras.layers.BatchNormalization(epsilon=1e-6),
                       keras.layers.Activation("relu")]
        else:
            layers.append(keras.layers.Dense(100, activation="relu", kernel_initializer=init))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return keras.Sequential(layers)


def _geron_model(placement):
    L = keras.layers
    layers = [L.Input((784,))]
    if placement == "BN after activation":
        layers.append(L.BatchNormalization())
    for units in (300, 100):
        if placement == "BN before activation":
            layers += [L.Dense(units, kernel_initializer="he_normal", use_bias=False),
                       L.BatchNormalization(), L.Activation("relu")]
        else:
            layers.append(L.Dense(units, activation="relu", kernel_initializer="he_normal"))
            if placement == "BN after activation":
                layers.append(L.BatchNormalization())
    layers.append(L.Dense(10, activation="softmax"))
    return keras.Sequential(layers)


def run(config, seed):
    keras.utils.set_random_seed(seed)
    if config["part"] == "sweep":
        data = fashion(config["n_train"], n_val=0, n_test=0)
        model = _sweep_model(config["scale"], config["bn"])
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        with np.errstate(all="ignore"):
            history = model.fit(data.x_train, data.y_train, batch_size=100,
                                epochs=config["epochs"], verbose=0)
        h = history_dict(history)
        h["accuracy"] = [acc if np.isfinite(loss) else 0.1
                         for acc, loss in zip(h["accuracy"], h["loss"])]
        return {"history": h, "data": data.source}
    data = fashion(config["n_train"], n_val=2000, n_test=0)
    model = _geron_model(config["placement"])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(data.x_train, data.y_train, epochs=config["epochs"],
                        validation_data=(data.x_val, data.y_val), verbose=0)
    return {"history": history_dict(history), "data": data.source,
            "params": model.count_params()}


def summarize(results, mode):
    from ... import plot
    all_seeds = sorted({r.seed for r in results})
    sweep = group([r for r in results if r.config["part"] == "sweep"], "scale", "bn")
    place = group([r for r in results if r.config["part"] == "placement"], "placement")
    scales = sorted({k[0] for k in sweep}, reverse=True)
    acc = {(s, bn): mean(r.output["history"]["accuracy"][-1] for r in sweep[(s, bn)])
           for s in scales for bn in (False, True)}
    wins = sum(acc[(s, True)] >= acc[(s, False)] for s in scales)
    learn_bn = sum(acc[(s, True)] > 0.5 for s in scales)
    learn_plain = sum(acc[(s, False)] > 0.5 for s in scales)
    loss1 = {p: [r.output["history"]["loss"][0] for r in place[p]] for p in PLACEMENTS}
    val = {p: [r.output["history"]["val_accuracy"][-1] for r in place[p]] for p in PLACEMENTS}
    epochs = len(place["no BN"][0].output["history"]["loss"])
    claims = [
        Claim("At the same initialisation (he_normal), the BN net trains faster than the "
              "net without BN: lower training loss over the first epoch and higher "
              f"validation accuracy after {epochs} epoch(s).",
              supported=mean(loss1["BN after activation"]) < mean(loss1["no BN"]) and
              mean(val["BN after activation"]) > mean(val["no BN"]),
              metrics={"train loss, epoch 1, no BN": stat(loss1["no BN"]),
                       "train loss, epoch 1, BN": stat(loss1["BN after activation"]),
                       f"val accuracy, epoch {epochs}, no BN": stat(val["no BN"]),
                       f"val accuracy, epoch {epochs}, BN": stat(val["BN after activation"])},
              published={"val accuracy, epoch 2, BN": "0.8650 (Géron ml3, 55,000 images)",
                         "val accuracy, epoch 2, no BN":
                         "not printed (ml2, 10 epochs SGD 1e-3: BN 0.8750)"},
              seeds=all_seeds),
        Claim("Over a sweep of init scales, the BN net trains at least as fast as the plain "
              "net at (almost) every scale, and it learns (train accuracy > 0.5) at more "
              "scales: too large or too small weights stop the plain net.",
              supported=wins >= len(scales) - 1 and learn_bn > learn_plain,
              metrics={"scales where BN ≥ no BN (final train accuracy)":
                       f"{wins} of {len(scales)}",
                       "scales where the net learns, BN": f"{learn_bn} of {len(scales)}",
                       "scales where the net learns, no BN":
                       f"{learn_plain} of {len(scales)}"},
              published={"scales where BN ≥ no BN (final train accuracy)":
                         "almost all of 16 (Saito, MNIST, fig. 6-19)"},
              seeds=all_seeds),
        Claim("BN before or after the activation makes little difference (validation "
              "accuracy within 2 points).",
              supported=abs(mean(val["BN before activation"]) -
                            mean(val["BN after activation"])) < 0.02,
              metrics={f"val accuracy, epoch {epochs}, BN after": stat(val["BN after activation"]),
                       f"val accuracy, epoch {epochs}, BN before":
                       stat(val["BN before activation"])},
              published={"val accuracy, epoch 2, BN after": 0.8650,
                         "val accuracy, epoch 2, BN before": 0.8646},
              seeds=all_seeds, note="Published: Géron ml3, 2 epochs on 55,000 images."),
    ]
    tab_sweep = Table("Final training accuracy by init scale (mean over seeds)",
                      ["weight std", "without BN", "with BN"],
                      [[fmt(s, 4), acc[(s, False)], acc[(s, True)]] for s in scales])
    tab_place = Table("Géron's MLP (mean ± sd over seeds)",
                      ["model", "train loss, epoch 1", f"val accuracy, epoch {epochs}",
                       "parameters"],
                      [[p, stat(loss1[p]), stat(val[p]), place[p][0].output["params"]]
                       for p in PLACEMENTS])
    fig = _sweep_figure(sweep, scales)
    fig2 = plot.training_curves({p: [r.output["history"] for r in place[p]]
                                 for p in PLACEMENTS}, ["loss", "val_accuracy"],
                                title="Géron's 300-100 MLP with and without BN")
    return Outcome(claims=claims, tables=[tab_sweep, tab_place],
                   figures=[("Training accuracy per epoch, with BN (solid) and without "
                             "(dashed), one panel per init scale (Saito's figure 6-19).",
                             fig),
                            ("Géron's MLP: loss and validation accuracy per epoch.", fig2)])


def _sweep_figure(sweep, scales):
    from ... import plot
    n = len(scales)
    fig = plot.new_figure(min(3.0 * n, 15), 3.0)
    axes = fig.subplots(1, n, squeeze=False, sharey=True)[0]
    for ax, s in zip(axes, scales):
        for bn, style, color in ((True, "-", plot.PALETTE[0]), (False, "--", plot.PALETTE[1])):
            curves = np.array([r.output["history"]["accuracy"] for r in sweep[(s, bn)]])
            xs = np.arange(1, curves.shape[1] + 1)
            ax.plot(xs, curves.mean(0), style, color=color, lw=1.8,
                    label="with BN" if bn else "without BN")
        ax.set_title(f"weight std {fmt(s, 4)}", fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("train accuracy")
    axes[0].legend(fontsize=8, frameon=False)
    return fig
