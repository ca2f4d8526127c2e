"""overfitting: a deep net memorises a small training set; Dropout, l2, max-norm, EarlyStopping."""
from __future__ import annotations

import numpy as np

import glassnet as keras
from ..base import Claim, Outcome, Table, group, mean, pick, seeds, stat
from ..common import history_dict
from ..data import fashion

NAME = "overfitting"
TITLE = "Overfitting: memorising a small training set, and four ways to close the gap"
SETUP = ("A deep MLP (4 × Dense(128, relu, he_normal) + softmax) trained with SGD(0.01, "
         "momentum 0.9) (Géron's optimizer for his Dropout and max-norm runs), batch 32, on "
         "a small training set for many epochs; validation on 2,000 other images. Variants, "
         "at Géron's strengths: none; Dropout(0.2) before every Dense; l2(0.01) on every "
         "kernel (kernel_regularizer=keras.regularizers.l2); max_norm(1.0) on every kernel "
         "(kernel_constraint=keras.constraints.max_norm); EarlyStopping(monitor='val_loss', "
         "patience=10, restore_best_weights=True). Validation cross-entropy is computed "
         "without the l2 penalty, so that the variants compare.")

VARIANTS = ("none", "Dropout", "l2", "max-norm", "EarlyStopping")
PUBLISHED = {"Dropout": "val 0.8732 (Géron ml3: Dropout 0.2, 55,000 images, 10 epochs)",
             "max-norm": "val 0.8578 (Géron ml3: max_norm(1.0))",
             "l2": "val 0.8182 after 2 epochs (Géron ml3: l2(0.01), SGD 0.02)"}


def _sizes(mode):
    return pick(mode, (200, 10), (500, 50), (1000, 200))


def tasks(mode):
    n, epochs = _sizes(mode)
    return [({"variant": v, "n_train": n, "epochs": epochs, "cost": n * epochs / 5e4}, s)
            for v in VARIANTS for s in seeds(mode)]


def _model(variant, dropout=0.2, l2=0.01, max_norm=1.0):
    L = keras.layers
    kwargs = {}
    if variant == "l2":
        kwargs["kernel_regularizer"] = keras.regularizers.l2(l2)
    if variant == "max-norm":
        kwargs["kernel_constraint"] = keras.constraints.max_norm(max_norm)
    layers = [L.Input((784,))]
    for _ in range(4):
        if variant == "Dropout":
            layers.append(L.Dropout(dropout))
        layers.append(L.Dense(128, activation="relu", kernel_initializer="he_normal",
                              **kwargs))
    if variant == "Dropout":
        layers.append(L.Dropout(dropout))
    layers.append(L.Dense(10, activation="softmax", **kwargs))
    return keras.Sequential(layers)


def run(config, seed):
    data = fashion(config["n_train"], n_val=2000, n_test=0)
    keras.utils.set_random_seed(seed)
    model = _model(config["variant"], **config.get("strength", {}))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    callbacks = []
    if config["variant"] == "EarlyStopping":
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=10,
                                                       restore_best_weights=True))
    history = model.fit(data.x_train, data.y_train, epochs=config["epochs"],
                        validation_data=(data.x_val, data.y_val), callbacks=callbacks,
                        validation_batch_size=1000, verbose=0)
    # final numbers in inference mode (dropout off, restored weights for EarlyStopping)
    p_train = model.predict(data.x_train, batch_size=1000, verbose=0)
    p_val = model.predict(data.x_val, batch_size=1000, verbose=0)
    ce = -np.mean(np.log(np.clip(p_val[np.arange(len(p_val)), data.y_val], 1e-7, 1)))
    return {"history": history_dict(history), "data": data.source,
            "train_accuracy": float(np.mean(p_train.argmax(1) == data.y_train)),
            "val_accuracy": float(np.mean(p_val.argmax(1) == data.y_val)),
            "val_loss": float(ce), "epochs_run": len(history.history["loss"])}


def summarize(results, mode):
    from ... import plot
    by = group(results, "variant")
    all_seeds = sorted({r.seed for r in results})
    train = {k: [r.output["train_accuracy"] for r in by[k]] for k in VARIANTS}
    val = {k: [r.output["val_accuracy"] for r in by[k]] for k in VARIANTS}
    gap = {k: [t - v for t, v in zip(train[k], val[k])] for k in VARIANTS}
    val_loss = {k: [r.output["val_loss"] for r in by[k]] for k in VARIANTS}
    n, epochs = by["none"][0].config["n_train"], by["none"][0].config["epochs"]
    stopped = [r.output["epochs_run"] for r in by["EarlyStopping"]]
    claims = [
        Claim(f"Without regularisation the deep net memorises its {n} training images: "
              "training accuracy above 0.98 while validation accuracy trails by more than "
              "15 points.",
              supported=mean(train["none"]) > 0.98 and mean(gap["none"]) > 0.15,
              metrics={"train accuracy, none": stat(train["none"]),
                       "val accuracy, none": stat(val["none"]),
                       "train − val gap, none": stat(gap["none"])},
              seeds=all_seeds),
        Claim("Dropout shrinks the train–validation accuracy gap of the unregularised net.",
              supported=mean(gap["Dropout"]) < mean(gap["none"]),
              metrics={f"train − val gap, {k}": stat(gap[k]) for k in VARIANTS[:4]},
              published={k: v for k, v in PUBLISHED.items()},
              seeds=all_seeds,
              note="Published numbers are Géron's on the full training set (no "
                   "memorisation there); they are shown for scale only."),
        Claim("Dropout, l2 and max-norm each curb the memorising net's overconfidence: a "
              "lower validation cross-entropy than the unregularised net.",
              supported=all(mean(val_loss[k]) < mean(val_loss["none"])
                            for k in ("Dropout", "l2", "max-norm")),
              metrics={f"val cross-entropy, {k}": stat(val_loss[k]) for k in VARIANTS[:4]},
              seeds=all_seeds),
        Claim(f"EarlyStopping (patience 10, restore_best_weights) stops well before the "
              f"{epochs}-epoch budget and ends with a lower validation cross-entropy than training "
              "to the end.",
              supported=mean(stopped) < epochs and
              mean(val_loss["EarlyStopping"]) < mean(val_loss["none"]),
              metrics={"epochs run, EarlyStopping": stat(stopped),
                       "val cross-entropy, none (end of training)": stat(val_loss["none"]),
                       "val cross-entropy, EarlyStopping (restored best)":
                       stat(val_loss["EarlyStopping"])},
              seeds=all_seeds),
    ]
    table = Table("Final numbers, inference mode (mean ± sd over seeds)",
                  ["variant", "train accuracy", "val accuracy", "gap", "val cross-entropy",
                   "epochs run"],
                  [[k, stat(train[k]), stat(val[k]), stat(gap[k]), stat(val_loss[k]),
                    stat([r.output["epochs_run"] for r in by[k]])] for k in VARIANTS])
    fig = plot.training_curves({k: [r.output["history"] for r in by[k]]
                                for k in VARIANTS[:4]}, ["accuracy", "val_accuracy"],
                               title=f"{n} training images: training (left) vs validation "
                                     "(right) accuracy")
    fig2 = plot.bar_chart({k: mean(gap[k]) for k in VARIANTS},
                          errors={k: float(np.std(gap[k])) for k in VARIANTS},
                          ylabel="train − validation accuracy", title="The generalisation gap")
    weak = [k for k in ("l2", "max-norm") if mean(gap[k]) > mean(gap["none"]) - 0.02]
    notes = [f"{' and '.join(weak)} at Géron's strength{'s' if len(weak) > 1 else ''} "
             "hardly change(s) the accuracy gap here: the net still fits its few images "
             "perfectly; what they curb is its confidence (validation cross-entropy)."
             .replace("(s)", "" if len(weak) > 1 else "s")] if weak else []
    return Outcome(claims=claims, tables=[table], notes=notes,
                   figures=[("Accuracy per epoch (training accuracy as fit reports it: "
                             "with dropout active).", fig),
                            ("Gap between training and validation accuracy at the end "
                             "(inference mode).", fig2)])
