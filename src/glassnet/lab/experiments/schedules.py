"""schedules: learning-rate schedules (Géron ml3) and BN statistics after short training."""
from __future__ import annotations

import warnings


import glassnet as keras
from ..base import Claim, Outcome, Table, group, mean, pick, seeds, stat
from ..common import history_dict
from ..data import fashion

NAME = "schedules"
TITLE = "Learning-rate schedules, and BN statistics after short training"
SETUP = ("(a) Géron's build_model (3 × Dense(100, relu, he_normal)) trained with SGD under "
         "five schedules over the same number of epochs: constant 0.01; power "
         "(InverseTimeDecay, 0.01 / (1 + t / (T/2))); exponential (ExponentialDecay, 0.01 · "
         "0.1^(t/T)); piecewise constant (0.01, then 0.005 after T/2, 0.001 after 3T/4); "
         "1cycle (OneCycle, max 0.1, batch 128 as in Géron). T = the run's number of steps "
         "(Géron fixes decay_steps in absolute steps; we scale them to the run so that "
         "every schedule actually decays). Batch 32 except 1cycle. "
         "(b) Géron's BN MLP (BN → Dense(300) → BN → Dense(100) → BN → softmax, 'sgd') "
         "trained for a few dozen steps: validation accuracy with the moving averages "
         "(momentum 0.99, still close to their initial 0 / 1) vs after "
         "keras.utils.recalibrate_batchnorm(model, x_train) (exact statistics over the "
         "training set).")

SCHEDULES = ("constant", "power", "exponential", "piecewise", "1cycle")
PUBLISHED = {"power": 0.8714, "exponential": 0.8662, "piecewise": 0.8716, "1cycle": 0.8920,
             "constant": "0.8716 (the 'piecewise' run: constant in effect)"}


def _sizes(mode):
    # (images, epochs) for the schedules, (images, steps) for the BN statistics part
    return pick(mode, (1000, 2, 2000, 10), (10000, 5, 10000, 40), (55000, 25, 55000, 100))


def tasks(mode):
    n, epochs, n_bn, steps = _sizes(mode)
    out = [({"part": "schedule", "schedule": k, "n_train": n, "epochs": epochs,
             "cost": n * epochs / 2e4}, s) for k in SCHEDULES for s in seeds(mode)]
    out += [({"part": "bn-stats", "n_train": n_bn, "steps": steps, "cost": 0.3}, s)
            for s in seeds(mode)]
    return out


def _schedule(name, total_steps):
    S = keras.optimizers.schedules
    if name == "constant":
        return 0.01
    if name == "power":
        return S.InverseTimeDecay(0.01, decay_steps=total_steps / 2, decay_rate=1.0)
    if name == "exponential":
        return S.ExponentialDecay(0.01, decay_steps=total_steps, decay_rate=0.1)
    if name == "piecewise":
        return S.PiecewiseConstantDecay([total_steps // 2, 3 * total_steps // 4],
                                        [0.01, 0.005, 0.001])
    return S.OneCycle(max_learning_rate=0.1, total_steps=total_steps)


def _model(bn=False):
    L = keras.layers
    if bn:
        return keras.Sequential([L.Input((784,)), L.BatchNormalization(),
                                 L.Dense(300, activation="relu", kernel_initializer="he_normal"),
                                 L.BatchNormalization(),
                                 L.Dense(100, activation="relu", kernel_initializer="he_normal"),
                                 L.BatchNormalization(), L.Dense(10, activation="softmax")])
    return keras.Sequential([L.Input((784,))] +
                            [L.Dense(100, activation="relu", kernel_initializer="he_normal")
                             for _ in range(3)] + [L.Dense(10, activation="softmax")])


def run(config, seed):
    keras.utils.set_random_seed(seed)
    if config["part"] == "bn-stats":
        return _run_bn_stats(config, seed)
    data = fashion(config["n_train"], n_val=2000, n_test=0)
    batch = 128 if config["schedule"] == "1cycle" else 32
    total = config["epochs"] * -(-len(data.x_train) // batch)
    lr = _schedule(config["schedule"], total)
    optimizer = keras.optimizers.SGD(learning_rate=lr)
    model = _model()
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    rates = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: rates.append(float(optimizer.learning_rate)))
    history = model.fit(data.x_train, data.y_train, batch_size=batch, epochs=config["epochs"],
                        validation_data=(data.x_val, data.y_val), callbacks=[record],
                        verbose=0)
    return {"history": history_dict(history) | {"lr": rates}, "data": data.source,
            "steps": total}


def _run_bn_stats(config, seed):
    data = fashion(config["n_train"], n_val=2000, n_test=0)
    model = _model(bn=True)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    n = config["steps"] * 32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the "moving statistics not converged" advice
        model.fit(data.x_train[:n], data.y_train[:n], batch_size=32, epochs=1, verbose=0)
        moving = model.evaluate(data.x_val, data.y_val, verbose=0, return_dict=True)
        keras.utils.recalibrate_batchnorm(model, data.x_train)
        exact = model.evaluate(data.x_val, data.y_val, verbose=0, return_dict=True)
    return {"moving": float(moving["accuracy"]), "exact": float(exact["accuracy"]),
            "data": data.source}


def summarize(results, mode):
    from ... import plot
    all_seeds = sorted({r.seed for r in results})
    by = group([r for r in results if r.config["part"] == "schedule"], "schedule")
    bn = [r for r in results if r.config["part"] == "bn-stats"]
    val = {k: [r.output["history"]["val_accuracy"][-1] for r in by[k]] for k in SCHEDULES}
    best_other = max(mean(val[k]) for k in SCHEDULES if k != "1cycle")
    moving = [r.output["moving"] for r in bn]
    exact = [r.output["exact"] for r in bn]
    steps = bn[0].config["steps"] if bn else 0
    claims = [
        Claim("1cycle reaches a validation accuracy at least as high as the best of the "
              "other schedules (constant, power, exponential, piecewise).",
              supported=mean(val["1cycle"]) >= best_other,
              metrics={f"final val accuracy, {k}": stat(val[k]) for k in SCHEDULES},
              published={f"final val accuracy, {k}": v for k, v in PUBLISHED.items()},
              seeds=all_seeds,
              note="Published: Géron ml3, 10 epochs (25 for 1cycle) on 55,000 images."),
        Claim(f"After short training ({steps} steps), BN's moving averages are far from the "
              "data's statistics: recomputing them over the whole training set gives a "
              "higher validation accuracy.",
              supported=mean(exact) > mean(moving),
              metrics={"val accuracy, moving averages": stat(moving),
                       "val accuracy, whole-training-set statistics": stat(exact)},
              published={"Ioffe & Szegedy 2015, §3.1":
                         "inference uses population statistics"},
              seeds=all_seeds),
    ]
    table = Table("Final validation accuracy per schedule (mean ± sd over seeds)",
                  ["schedule", "final val accuracy", "final train loss", "published"],
                  [[k, stat(val[k]), stat([r.output["history"]["loss"][-1] for r in by[k]]),
                    str(PUBLISHED.get(k, "–"))] for k in SCHEDULES])
    runs = {k: [r.output["history"] for r in by[k]] for k in SCHEDULES}
    fig = plot.training_curves(runs, ["val_accuracy", "loss"],
                               title="SGD under five learning-rate schedules")
    fig2 = plot.training_curves({k: [by[k][0].output["history"]] for k in SCHEDULES}, "lr",
                                title="Learning rate at the end of each epoch", logy=True)
    return Outcome(claims=claims, tables=[table],
                   figures=[("Validation accuracy and training loss per epoch.", fig),
                            ("The schedules themselves.", fig2)])
