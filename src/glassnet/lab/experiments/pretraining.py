"""pretraining: unsupervised pretraining (autoencoder, GAN) then few labels, vs scratch."""
from __future__ import annotations

import warnings

import numpy as np

import glassnet as keras
from ..base import Claim, Outcome, Table, mean, pick, seeds, stat
from ..data import fashion

NAME = "pretraining"
TITLE = "Unsupervised pretraining: an autoencoder and a GAN, then only a few labels"
SETUP = ("Unlabelled Fashion-MNIST images train (1) an autoencoder: encoder = Sequential("
         "Dense(256), Dense(64), ReLU + he_normal), decoder = its mirror with a sigmoid "
         "output, autoencoder = Sequential([encoder, decoder]), MSE, Adam(1e-3), batch 64; "
         "(2) a small GAN as in Géron ch. 17: generator Dense(100, 150, selu) → Dense(784, "
         "sigmoid) from 30-d codings, discriminator Dense(150, 100, selu) → Dense(1, "
         "sigmoid), gan = Sequential([generator, discriminator]), RMSprop, alternating "
         "train_on_batch with the discriminator frozen for the generator's step. Then a "
         "classifier reuses the encoder's (or the discriminator's hidden) layers plus "
         "Dense(10, softmax) and is trained on the first few labelled images (Adam 1e-3, "
         "30 epochs, all layers trainable); the baseline is the same architecture from "
         "scratch on the same labels, with the same classifier seed. Each pretraining seed "
         "is paired with 3 classifier seeds. Test accuracy on held-out test images.")


def _sizes(mode):
    # (unlabelled images, AE epochs, GAN epochs, labelled images)
    return pick(mode, (600, 1, 1, 50), (6000, 6, 2, 100), (55000, 10, 5, 100))


def _classifier_seeds(mode):
    return pick(mode, 1, 3, 3)


def tasks(mode):
    n_u, e_ae, e_gan, n_l = _sizes(mode)
    return [({"n_unlabelled": n_u, "ae_epochs": e_ae, "gan_epochs": e_gan, "n_labels": n_l,
              "classifier_seeds": _classifier_seeds(mode),
              "cost": n_u * (e_ae + 2 * e_gan) / 1e4 + 1}, s) for s in seeds(mode)]


def _dense_stack(widths, activation, init, n_in):
    L = keras.layers
    return keras.Sequential([L.Input((n_in,))] +
                            [L.Dense(w, activation=activation, kernel_initializer=init)
                             for w in widths])


def _classify(hidden, data, n_labels, seed):
    """Train hidden layers + softmax on the first n_labels images; test accuracy."""
    L = keras.layers
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([L.Input((784,))] + list(hidden) +
                             [L.Dense(10, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy",
                  optimizer=keras.optimizers.Adam(learning_rate=1e-3), metrics=["accuracy"])
    model.fit(data.x_train[:n_labels], data.y_train[:n_labels], epochs=30, verbose=0)
    return float(model.evaluate(data.x_test, data.y_test, verbose=0,
                                return_dict=True)["accuracy"])


def _copy_layers(model):
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    for layer in clone.layers:
        layer.trainable = True
    return clone.layers


def _train_gan(x, epochs, seed, batch_size=32, codings=30):
    L = keras.layers
    generator = keras.Sequential([L.Input((codings,)), L.Dense(100, activation="selu"),
                                  L.Dense(150, activation="selu"),
                                  L.Dense(784, activation="sigmoid")])
    discriminator = keras.Sequential([L.Input((784,)), L.Dense(150, activation="selu"),
                                      L.Dense(100, activation="selu"),
                                      L.Dense(1, activation="sigmoid")])
    gan = keras.Sequential([generator, discriminator])
    discriminator.compile(loss="binary_crossentropy", optimizer="rmsprop")
    discriminator.trainable = False
    gan.compile(loss="binary_crossentropy", optimizer="rmsprop")
    rng = np.random.default_rng(seed)
    y_d = np.concatenate([np.zeros((batch_size, 1)), np.ones((batch_size, 1))]).astype(
        np.float32)
    y_g = np.ones((batch_size, 1), np.float32)
    losses = []
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x) - batch_size + 1, batch_size):
            real = x[order[start:start + batch_size]]
            noise = rng.standard_normal((batch_size, codings)).astype(np.float32)
            fake = generator.predict_on_batch(noise)
            discriminator.trainable = True          # phase 1: train the discriminator
            d_loss = discriminator.train_on_batch(np.concatenate([fake, real]), y_d)
            discriminator.trainable = False         # phase 2: train the generator
            noise = rng.standard_normal((batch_size, codings)).astype(np.float32)
            g_loss = gan.train_on_batch(noise, y_g)
        losses.append((float(d_loss), float(g_loss)))
    samples = generator.predict_on_batch(
        rng.standard_normal((8, codings)).astype(np.float32))
    return discriminator, losses, samples


def run(config, seed):
    data = fashion(config["n_unlabelled"], n_val=0, n_test=2000)
    x_u = data.x_train  # the labels of these images are never used for pretraining
    keras.utils.set_random_seed(seed)
    encoder = _dense_stack((256, 64), "relu", "he_normal", 784)
    decoder = keras.Sequential([keras.layers.Input((64,)),
                                keras.layers.Dense(256, activation="relu",
                                                   kernel_initializer="he_normal"),
                                keras.layers.Dense(784, activation="sigmoid")])
    autoencoder = keras.Sequential([encoder, decoder])
    autoencoder.compile(loss="mse", optimizer=keras.optimizers.Adam(learning_rate=1e-3))
    ae_history = autoencoder.fit(x_u, x_u, epochs=config["ae_epochs"], batch_size=64,
                                 verbose=0)
    reconstructions = autoencoder.predict(data.x_test[:8], verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the GAN shares its layers on purpose
        discriminator, gan_losses, samples = _train_gan(x_u, config["gan_epochs"], seed)
    n = config["n_labels"]
    acc = {k: [] for k in ("scratch (AE shape)", "autoencoder", "scratch (GAN shape)",
                           "GAN discriminator")}
    for k in range(config.get("classifier_seeds", 3)):  # paired: same seed, same labels
        cls_seed = 100 + 10 * seed + k
        acc["scratch (AE shape)"].append(_classify(
            _dense_stack((256, 64), "relu", "he_normal", 784).layers, data, n, cls_seed))
        acc["autoencoder"].append(_classify(_copy_layers(encoder), data, n, cls_seed))
        acc["scratch (GAN shape)"].append(_classify(
            _dense_stack((150, 100), "selu", "glorot_uniform", 784).layers, data, n,
            cls_seed))
        acc["GAN discriminator"].append(
            _classify(_copy_layers(discriminator)[:-1], data, n, cls_seed))
    return {"accuracy": acc, "ae_loss": [float(v) for v in ae_history.history["loss"]],
            "gan_losses": gan_losses, "data": data.source,
            "images": {"originals": data.x_test[:8].tolist(),
                       "reconstructions": np.asarray(reconstructions).tolist(),
                       "gan samples": np.asarray(samples).tolist()} if seed == 0 else None}


def summarize(results, mode):
    all_seeds = sorted(r.seed for r in results)
    # every (pretraining seed, classifier seed) pair, flattened
    acc = {k: [a for r in results for a in r.output["accuracy"][k]]
           for k in results[0].output["accuracy"]}
    n_labels = results[0].config["n_labels"]
    n_u = results[0].config["n_unlabelled"]
    gain_ae = [a - b for a, b in zip(acc["autoencoder"], acc["scratch (AE shape)"])]
    gain_gan = [a - b for a, b in zip(acc["GAN discriminator"], acc["scratch (GAN shape)"])]
    claims = [
        Claim(f"With only {n_labels} labels, a classifier built on an autoencoder's encoder "
              f"(pretrained on {n_u:,} unlabelled images) beats the same net trained from "
              "scratch on those labels.",
              supported=mean(acc["autoencoder"]) > mean(acc["scratch (AE shape)"]),
              metrics={"test accuracy, from scratch": stat(acc["scratch (AE shape)"]),
                       "test accuracy, AE-pretrained": stat(acc["autoencoder"]),
                       "gain, paired": stat(gain_ae)},
              published={"Géron ch. 17 (text)": "pretraining on unlabelled data helps when "
                         "labels are scarce; no number printed"},
              seeds=all_seeds),
        Claim(f"With only {n_labels} labels, reusing a GAN discriminator's hidden layers "
              "beats training the same net from scratch.",
              supported=mean(acc["GAN discriminator"]) > mean(acc["scratch (GAN shape)"]),
              metrics={"test accuracy, from scratch": stat(acc["scratch (GAN shape)"]),
                       "test accuracy, GAN-pretrained": stat(acc["GAN discriminator"]),
                       "gain, paired": stat(gain_gan)},
              published={"Radford et al. 2016 (DCGAN)": "discriminator features classify "
                         "well (CNNs on CIFAR-10; no MLP number)"},
              seeds=all_seeds,
              note="A small dense GAN trained for a few epochs; its discriminator "
                   "learns whatever separates real from generated images, which need not "
                   "be what separates the classes."),
    ]
    pairs = len(acc["autoencoder"])
    table = Table(f"Test accuracy with {n_labels} labels (mean ± sd over {pairs} pairs of "
                  "pretraining and classifier seeds)",
                  ["classifier", "test accuracy"], [[k, stat(v)] for k, v in acc.items()])
    figures = [("Test accuracy with few labels (whiskers: sd over seeds).",
                _bars(acc, n_labels))]
    first = min(results, key=lambda r: r.seed).output
    if first.get("images"):
        figures.append(("Top: test images; middle: the autoencoder's reconstructions; "
                        "bottom: GAN samples (seed 0).", _images(first["images"])))
    return Outcome(claims=claims, tables=[table], figures=figures)


def _bars(acc, n_labels):
    from ... import plot
    fig = plot.bar_chart({k: mean(v) for k, v in acc.items()},
                         errors={k: float(np.std(v)) for k, v in acc.items()},
                         ylabel="test accuracy", title=f"{n_labels} labelled images")
    lo = min(min(v) for v in acc.values())
    fig.axes[0].set_ylim(max(0.0, lo - 0.1), min(1.0, max(max(v) for v in acc.values()) + 0.05))
    return fig


def _images(images):
    from ... import plot
    rows = list(images.items())
    fig = plot.new_figure(8, 3.3)
    axes = fig.subplots(len(rows), 8, squeeze=False)
    for i, (label, batch) in enumerate(rows):
        for j in range(8):
            ax = axes[i][j]
            ax.imshow(np.asarray(batch[j]).reshape(28, 28), cmap="binary", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i][0].set_ylabel(label, fontsize=8)
    return fig
