"""vanishing-gradients: gradient norm per layer in deep sigmoid, ReLU + He and BN nets."""
from __future__ import annotations

import math

import numpy as np

import glassnet as keras
from ..base import Claim, Outcome, Table, group, mean, pick, seeds, stat
from ..common import gradient_norms, history_dict
from ..data import fashion

NAME = "vanishing-gradients"
TITLE = "Vanishing gradients: a deep sigmoid net vs ReLU + He vs sigmoid + BN"
SETUP = ("Deep MLPs of Dense(100) layers trained with SGD(0.01), batch 32: sigmoid with "
         "Keras' default glorot_uniform (Glorot & Bengio's failing case); ReLU + he_normal; "
         "sigmoid with BatchNormalization between each Dense and its sigmoid. "
         "glassnet.diagnostics.Monitor(every=25) records the gradient norm of every "
         "kernel on the sampled training steps (the first step included) and runs its "
         "detectors.")

NETS = ("sigmoid", "ReLU + He", "sigmoid + BN")


def _sizes(mode):
    # (hidden layers, images, epochs)
    return pick(mode, (5, 500, 1), (10, 5000, 3), (20, 20000, 5))


def tasks(mode):
    depth, n, epochs = _sizes(mode)
    return [({"net": k, "depth": depth, "n_train": n, "epochs": epochs,
              "cost": depth * n * epochs / 1e5}, s) for k in NETS for s in seeds(mode)]


def _model(net, depth):
    L = keras.layers
    layers = [L.Input((784,))]
    for _ in range(depth):
        if net == "sigmoid":
            layers.append(L.Dense(100, activation="sigmoid"))
        elif net == "ReLU + He":
            layers.append(L.Dense(100, activation="relu", kernel_initializer="he_normal"))
        else:
            layers += [L.Dense(100), L.BatchNormalization(), L.Activation("sigmoid")]
    return keras.Sequential(layers + [L.Dense(10, activation="softmax")])


def _monitor():
    try:
        from ...diagnostics import Monitor
    except ImportError:  # diagnostics not available: probe at epoch ends instead
        return None
    return Monitor(every=25, verbose=0, histogram_bins=0)


class _Probe(keras.callbacks.Callback):
    """Fallback recorder: kernel gradient norms on a fixed batch at each epoch's start."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y, self.records, self.step = x, y, [], 0

    def on_epoch_begin(self, epoch, logs=None):
        norms = gradient_norms(self.model, self.x, self.y)
        self.records.append({"step": self.step, "epoch": epoch, "layers": {
            name: {"type": "Dense", "grad_norm": g} for name, g in norms.items()
            if "kernel" in g}})

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1


def run(config, seed):
    data = fashion(config["n_train"], n_val=2000, n_test=0)
    keras.utils.set_random_seed(seed)
    model = _model(config["net"], config["depth"])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    monitor = _monitor() or _Probe(data.x_train[:256], data.y_train[:256])
    with np.errstate(all="ignore"):
        history = model.fit(data.x_train, data.y_train, epochs=config["epochs"],
                            validation_data=(data.x_val, data.y_val), callbacks=[monitor],
                            verbose=0)
    dense = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    records = [{"step": r["step"], "layers": {
        f"dense {i + 1}" if i < len(dense) - 1 else "output":
        {"grad_norm": {"kernel": r["layers"][name]["grad_norm"].get("kernel")}}
        for i, name in enumerate(dense) if name in r["layers"]}} for r in monitor.records]
    report = getattr(monitor, "report", None)
    return {"records": records, "history": history_dict(history), "data": data.source,
            "findings": sorted(report.codes) if report is not None else None}


def _ratios(records, depth):
    """log10(first / last hidden kernel gradient norm) for each record."""
    out = []
    for r in records:
        first = r["layers"]["dense 1"]["grad_norm"]["kernel"]
        last = r["layers"][f"dense {depth}"]["grad_norm"]["kernel"]
        if first and last and math.isfinite(first) and math.isfinite(last):
            out.append(math.log10(first / last))
    return out


def summarize(results, mode):
    from ... import plot
    by = group(results, "net")
    depth = results[0].config["depth"]
    all_seeds = sorted({r.seed for r in results})
    at_init = {k: [_ratios(r.output["records"][:1], depth)[0] for r in by[k]] for k in NETS}
    over_run = {k: [mean(_ratios(r.output["records"], depth)) for r in by[k]] for k in NETS}
    val = {k: [r.output["history"]["val_accuracy"][-1] for r in by[k]] for k in NETS}
    findings = {k: [r.output["findings"] for r in by[k]] for k in NETS}
    flagged = {k: sum("vanishing_gradients" in (f or ()) for f in findings[k]) for k in NETS}
    claims = [
        Claim(f"In a {depth}-layer sigmoid net (glorot_uniform) the gradient vanishes on its "
              "way down: the first layer's kernel gradient is more than 100 times smaller "
              "than the last hidden layer's, at initialisation and throughout training.",
              supported=mean(at_init["sigmoid"]) < -2 and mean(over_run["sigmoid"]) < -2,
              metrics={"log10(first / last) at init, sigmoid": stat(at_init["sigmoid"]),
                       "log10(first / last) over training, sigmoid":
                       stat(over_run["sigmoid"]),
                       "final val accuracy, sigmoid": stat(val["sigmoid"])},
              published={"Glorot & Bengio 2010": "back-propagated gradients shrink toward "
                         "the input with sigmoid and standard init; 5-layer sigmoid "
                         "Shapeset error 82.6 %"},
              seeds=all_seeds),
        Claim("ReLU + He and sigmoid + BN keep the gradient flowing: the first / last "
              "hidden-layer gradient ratio stays within a factor of 10 throughout training.",
              supported=all(abs(mean(over_run[k])) < 1 and abs(mean(at_init[k])) < 1
                            for k in ("ReLU + He", "sigmoid + BN")),
              metrics={f"log10(first / last) over training, {k}": stat(over_run[k])
                       for k in ("ReLU + He", "sigmoid + BN")} |
              {f"final val accuracy, {k}": stat(val[k]) for k in ("ReLU + He", "sigmoid + BN")},
              published={"He et al. 2015; Ioffe & Szegedy 2015":
                         "He init and BN keep gradient magnitudes comparable across layers"},
              seeds=all_seeds),
    ]
    if all(f is not None for fs in findings.values() for f in fs):
        claims.append(Claim(
            "glassnet.diagnostics.Monitor flags vanishing gradients in the sigmoid net, "
            "and not in the ReLU + He or sigmoid + BN nets.",
            supported=flagged["sigmoid"] == len(by["sigmoid"]) and
            flagged["ReLU + He"] == 0 and flagged["sigmoid + BN"] == 0,
            metrics={f"runs flagged, {k}": f"{flagged[k]} of {len(by[k])}" for k in NETS},
            seeds=all_seeds))
    table = Table("log10 of (first / last hidden-layer kernel gradient norm), mean ± sd",
                  ["net", "at initialisation", "over training", "final val accuracy",
                   "Monitor findings (seed 0)"],
                  [[k, stat(at_init[k]), stat(over_run[k]), stat(val[k]),
                    ", ".join(findings[k][0] or ["none"]) if findings[k][0] is not None
                    else "–"] for k in NETS])
    first = {k: min(by[k], key=lambda r: r.seed).output["records"] for k in NETS}
    fig = plot.new_figure(15, 4.0)
    axes = fig.subplots(1, 3, sharey=True)
    for ax, k in zip(axes, NETS):
        plot.gradient_norms(first[k], title=k, ax=ax)
        ax.legend(fontsize=6, frameon=False, ncol=2)
    profile = {k: [[r.output["records"][0]["layers"][f"dense {i + 1}"]["grad_norm"]["kernel"]
                    for i in range(depth)] for r in by[k]] for k in NETS}
    fig2 = plot.training_curves(profile, "gradient norm", xlabel="hidden layer (1 = input "
                                "side)", logy=True, ylabel="kernel gradient norm",
                                title="Gradient norm by layer on the first training step")
    return Outcome(claims=claims, tables=[table],
                   figures=[("Kernel gradient norm of every layer over training (seed 0; "
                             "log scale; dark = input side).", fig),
                            ("Gradient norm per layer at initialisation (mean of the seeds, "
                             "band = min–max).", fig2)])
