"""init-training: Saito's weight_init_compare on Fashion-MNIST (std 0.01 vs Glorot vs He)."""
from __future__ import annotations

import glassnet as keras
from ..base import Claim, Outcome, Table, group, mean, pick, seeds, stat
from ..common import history_dict, mlp
from ..data import fashion

NAME = "init-training"
TITLE = "Initialisation and training: a 5 × 100 ReLU MLP with std 0.01, Glorot or He"
SETUP = ("Saito's ch6/weight_init_compare.py on Fashion-MNIST instead of MNIST: "
         "784-100-100-100-100-100-10 ReLU MLP, SGD(learning_rate=0.01), batch 128; hidden "
         "kernels from N(0, 0.01²), glorot_normal (Xavier) or he_normal (He); output layer "
         "Keras' default glorot_uniform. Training loss per epoch; validation accuracy on "
         "held-out images.")

INITS = {"std 0.01": "small", "Glorot": "glorot_normal", "He": "he_normal"}


def _sizes(mode):
    # (training images, epochs): quick = 5,000 images x 16 epochs = 640 steps of 128
    return pick(mode, (1000, 3), (5000, 16), (20000, 20))


def tasks(mode):
    n, epochs = _sizes(mode)
    return [({"init": name, "n_train": n, "epochs": epochs, "cost": n * epochs / 1e4}, s)
            for name in INITS for s in seeds(mode)]


def run(config, seed):
    n, epochs = config["n_train"], config["epochs"]
    data = fashion(n, n_val=2000, n_test=0)
    keras.utils.set_random_seed(seed)
    spec = INITS[config["init"]]
    init = keras.initializers.RandomNormal(stddev=0.01) if spec == "small" else spec
    model = mlp([100] * 5, "relu", init)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(data.x_train, data.y_train, batch_size=128, epochs=epochs,
                        validation_data=(data.x_val, data.y_val), verbose=0)
    return {"history": history_dict(history), "data": data.source,
            "steps_per_epoch": -(-n // 128)}


def summarize(results, mode):
    from ... import plot
    by = group(results, "init")
    all_seeds = sorted({r.seed for r in results})
    final = {k: [r.output["history"]["loss"][-1] for r in v] for k, v in by.items()}
    val = {k: [r.output["history"]["val_accuracy"][-1] for r in v] for k, v in by.items()}
    mid = {k: [r.output["history"]["loss"][len(r.output["history"]["loss"]) // 4]
               for r in v] for k, v in by.items()}
    claims = [
        Claim("With std-0.01 weights the 5-layer ReLU net does not learn (training loss "
              "stays near ln 10 = 2.30), while Glorot and He initialisation train it.",
              supported=mean(final["std 0.01"]) > 2.2 and
              max(mean(final["Glorot"]), mean(final["He"])) < 1.5,
              metrics={f"final train loss, {k}": stat(v) for k, v in final.items()},
              published={"final train loss, std 0.01": "≈ 2.30 (Saito, MNIST, fig. 6-15)",
                         "final train loss, He": "lowest (Saito: He learns fastest)"},
              seeds=all_seeds),
        Claim("He initialisation learns at least as fast as Glorot for ReLU (lower mean "
              "training loss a quarter of the way through training).",
              supported=mean(mid["He"]) <= mean(mid["Glorot"]),
              metrics={f"train loss at 1/4 of training, {k}": stat(mid[k])
                       for k in ("Glorot", "He")},
              published={"Saito, MNIST, 2,000 iterations": "He below Xavier throughout"},
              seeds=all_seeds),
    ]
    steps = results[0].output["steps_per_epoch"] if results else 0
    table = Table("Final numbers (mean ± sd over seeds)",
                  ["initialisation", "train loss", "val accuracy"],
                  [[k, stat(final[k]), stat(val[k])] for k in INITS])
    curves = {k: [r.output["history"] for r in by[k]] for k in INITS}
    fig = plot.training_curves(curves, ["loss", "val_accuracy"],
                               title=f"5 × 100 ReLU MLP, SGD 0.01 ({steps} steps per epoch)")
    return Outcome(claims=claims, tables=[table],
                   figures=[("Training loss and validation accuracy per epoch (mean of "
                             "the seeds, band = min–max).", fig)])
