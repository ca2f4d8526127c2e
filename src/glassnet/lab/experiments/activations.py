"""activations: dead ReLUs vs LeakyReLU, and self-normalising SELU in a deep net."""
from __future__ import annotations

import numpy as np

import glassnet as keras
from ..base import Claim, Outcome, Table, group, mean, pick, seeds, stat
from ..common import history_dict, layer_outputs
from ..data import fashion

NAME = "activations"
TITLE = "Activations: dead ReLUs, LeakyReLU, ELU and self-normalising SELU"
SETUP = ("(a) 4 × Dense(100, he_normal) with ReLU, or with LeakyReLU(negative_slope=0.2) "
         "(Géron's choice), trained with a large step (Adam, learning rate 0.01, 5 epochs); "
         "a unit is dead when its output is 0 for every training image (ReLU: no gradient "
         "ever again); for LeakyReLU the same test on the pre-activation counts units that "
         "are dormant but still receive 0.2 × the gradient. "
         "(b) Géron's self-normalising net: a deep stack of Dense(100) with SELU + "
         "lecun_normal, ReLU + he_normal or ELU + he_normal on standardised inputs (per-pixel "
         "mean and std of the training images), SGD(0.001), batch 32.")

DEEP = {"SELU": ("selu", "lecun_normal"), "ReLU": ("relu", "he_normal"),
        "ELU": ("elu", "he_normal")}


def _sizes(mode):
    # dead units: (images, epochs); deep nets: (depth, images, epochs)
    return pick(mode, ((1000, 1), (10, 500, 1)), ((5000, 5), (30, 5000, 3)),
                ((20000, 10), (100, 55000, 5)))


def tasks(mode):
    (n_dead, e_dead), (depth, n_deep, e_deep) = _sizes(mode)
    out = [({"part": "dead", "activation": a, "n_train": n_dead, "epochs": e_dead,
             "cost": n_dead * e_dead / 2e4}, s) for a in ("ReLU", "LeakyReLU")
           for s in seeds(mode)]
    out += [({"part": "deep", "activation": a, "depth": depth, "n_train": n_deep,
              "epochs": e_deep, "cost": depth * n_deep * e_deep / 5e4}, s)
            for a in DEEP for s in seeds(mode)]
    return out


def run(config, seed):
    keras.utils.set_random_seed(seed)
    L = keras.layers
    if config["part"] == "dead":
        data = fashion(config["n_train"], n_val=2000, n_test=0)
        layers = [L.Input((784,))]
        for _ in range(4):
            if config["activation"] == "ReLU":
                layers.append(L.Dense(100, activation="relu", kernel_initializer="he_normal"))
            else:
                layers += [L.Dense(100, kernel_initializer="he_normal"),
                           L.LeakyReLU(negative_slope=0.2)]
        model = keras.Sequential(layers + [L.Dense(10, activation="softmax")])
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        with np.errstate(all="ignore"):
            history = model.fit(data.x_train, data.y_train, epochs=config["epochs"],
                                validation_data=(data.x_val, data.y_val), verbose=0)
        dead = [float(np.mean(np.all(a <= 0, axis=0)))
                for (name, a), layer in zip(layer_outputs(model, data.x_train), model.layers)
                if isinstance(layer, L.Dense) and layer.units == 100]
        return {"dead": dead, "history": history_dict(history), "data": data.source}
    data = fashion(config["n_train"], n_val=2000, n_test=0)
    mu = data.x_train.mean(axis=0, keepdims=True)
    sigma = data.x_train.std(axis=0, keepdims=True) + 1e-7
    x_train, x_val = (data.x_train - mu) / sigma, (data.x_val - mu) / sigma
    act, init = DEEP[config["activation"]]
    model = keras.Sequential([L.Input((784,))] +
                             [L.Dense(100, activation=act, kernel_initializer=init)
                              for _ in range(config["depth"])] +
                             [L.Dense(10, activation="softmax")])
    outs = layer_outputs(model, x_train[:1000])[:-1]
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.001),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    with np.errstate(all="ignore"):
        history = model.fit(x_train, data.y_train, epochs=config["epochs"],
                            validation_data=(x_val, data.y_val), verbose=0)
    return {"history": history_dict(history), "data": data.source,
            "init_mean": [float(a.mean()) for _, a in outs],
            "init_std": [float(a.std()) for _, a in outs]}


def summarize(results, mode):
    from ... import plot
    all_seeds = sorted({r.seed for r in results})
    dead = group([r for r in results if r.config["part"] == "dead"], "activation")
    deep = group([r for r in results if r.config["part"] == "deep"], "activation")
    depth = deep["SELU"][0].config["depth"]
    dead_frac = {k: [mean(r.output["dead"]) for r in v] for k, v in dead.items()}
    dead_val = {k: [r.output["history"]["val_accuracy"][-1] for r in v]
                for k, v in dead.items()}
    val = {k: [r.output["history"]["val_accuracy"][-1] for r in deep[k]] for k in DEEP}
    selu_mean = np.mean([r.output["init_mean"] for r in deep["SELU"]], axis=0)
    selu_std = np.mean([r.output["init_std"] for r in deep["SELU"]], axis=0)
    relu_std = np.mean([r.output["init_std"] for r in deep["ReLU"]], axis=0)
    epochs = len(deep["SELU"][0].output["history"]["loss"])
    claims = [
        Claim("A large step kills ReLU units: a sizeable share (> 5 %) of the ReLU net's "
              "hidden units output 0 on every training image (they get no gradient any "
              "more), while fewer LeakyReLU units are even dormant, and those still learn.",
              supported=mean(dead_frac["ReLU"]) > 0.05 and
              mean(dead_frac["LeakyReLU"]) < mean(dead_frac["ReLU"]),
              metrics={"dead units, ReLU (share of hidden units)": stat(dead_frac["ReLU"]),
                       "dormant units, LeakyReLU": stat(dead_frac["LeakyReLU"]),
                       "val accuracy, ReLU": stat(dead_val["ReLU"]),
                       "val accuracy, LeakyReLU": stat(dead_val["LeakyReLU"])},
              published={"val accuracy, LeakyReLU":
                         "0.8396 (Géron ml2: 300-100 net, SGD 1e-3, 10 epochs)"},
              seeds=all_seeds),
        Claim(f"SELU self-normalises: in a {depth}-layer SELU net (lecun_normal, standardised "
              "inputs) every hidden layer starts with mean within ±0.2 and std within "
              "[0.7, 1.3].",
              supported=bool(np.all(np.abs(selu_mean) < 0.2) and
                             np.all((selu_std > 0.7) & (selu_std < 1.3))),
              metrics={"SELU: largest |mean| over layers": float(np.abs(selu_mean).max()),
                       "SELU: std range over layers":
                       [float(selu_std.min()), float(selu_std.max())],
                       "ReLU + He: std range over layers":
                       [float(relu_std.min()), float(relu_std.max())]},
              published={"SELU: largest |mean| over layers":
                         "≤ 0.05 (Géron ml2, 1,000 layers, random data)",
                         "SELU: std range over layers": "0.83 – 1.00 (same)"},
              seeds=all_seeds),
        Claim(f"The deep ({depth}-layer) SELU net trains better than the same net with "
              f"ReLU + He: higher validation accuracy after {epochs} epochs.",
              supported=mean(val["SELU"]) > mean(val["ReLU"]),
              metrics={f"val accuracy, {k}": stat(val[k]) for k in DEEP},
              published={"val accuracy, SELU": "0.8046 (Géron ml3, 100 layers, 5 epochs)",
                         "val accuracy, ReLU": "0.7054 (same)"},
              seeds=all_seeds),
    ]
    table = Table("Dead (ReLU) or dormant (LeakyReLU) units per hidden layer, mean over seeds",
                  ["activation", "layer 1", "layer 2", "layer 3", "layer 4",
                   "val accuracy"],
                  [[k] + list(np.mean([r.output["dead"] for r in v], axis=0))
                   + [stat(dead_val[k])] for k, v in dead.items()])
    layer_ix = list(range(0, depth, max(1, depth // 6))) + [depth - 1]
    table2 = Table(f"Activation std at initialisation, {depth}-layer nets (seed mean)",
                   ["activation"] + [f"layer {i + 1}" for i in layer_ix],
                   [[k] + [float(np.mean([r.output["init_std"][i] for r in deep[k]]))
                           for i in layer_ix] for k in DEEP])
    fig = plot.training_curves({k: [r.output["history"] for r in deep[k]] for k in DEEP},
                               ["val_accuracy", "loss"],
                               title=f"{depth}-layer nets, SGD 0.001, standardised inputs")
    stds = {k: [r.output["init_std"] for r in deep[k]] for k in DEEP}
    fig2 = plot.training_curves(stds, "std", xlabel="layer", logy=True,
                                ylabel="activation std at init",
                                title="Signal propagation at initialisation")
    return Outcome(claims=claims, tables=[table, table2],
                   figures=[(f"Training of the {depth}-layer nets.", fig),
                            ("Std of each layer's activations before training (SELU stays "
                             "near 1).", fig2)])
