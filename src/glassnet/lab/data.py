"""Data for the lab: Fashion-MNIST subsets, or a generated stand-in when it is absent.

`fashion(n_train, n_val, n_test)` follows Géron's split (ml3): validation = the last
5,000 training images, training = the first `n_train` of the others, test = the first
`n_test` test images; pixels scaled to [0, 1] and flattened to 784 features.

When the Fashion-MNIST files are not found (`glassnet.datasets.fashion_mnist.is_available`)
or GLASSNET_LAB_DATA=generated, `generated_clothes` draws a procedural 28 x 28, 10-class
set with the same class ids (tops 0/2/4/6 alike, footwear 5/7/9 alike, as in the real
data); its numbers are not comparable with the published ones and the report says so.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")


@dataclass
class Split:
    """Train / validation / test arrays (float32 features, int64 labels) and their source."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


def source() -> str:
    """"fashion-mnist" when its files are found (and not overridden), else "generated"."""
    wanted = os.environ.get("GLASSNET_LAB_DATA", "auto").lower()
    if wanted == "generated":
        return "generated"
    from ..datasets import fashion_mnist
    if fashion_mnist.is_available():
        return "fashion-mnist"
    if wanted == "fashion-mnist":
        raise FileNotFoundError("GLASSNET_LAB_DATA=fashion-mnist but the files were not "
                                "found: apt-get install dataset-fashion-mnist, or set "
                                "GLASSNET_DATA to their directory.")
    return "generated"


@functools.lru_cache(maxsize=2)
def _raw(src):
    """((x_train, y_train), (x_test, y_test)) as uint8 28x28 (Fashion-MNIST) or float."""
    if src == "fashion-mnist":
        from ..datasets import fashion_mnist
        return fashion_mnist.load_data()
    return (generated_clothes(12_000, seed=1), generated_clothes(3_000, seed=2))


def fashion(n_train, n_val=1000, n_test=1000, flatten=True) -> Split:
    """A Fashion-MNIST subset (or the generated stand-in) in Géron's split.

    Args:
        n_train: training images (the first ones, after removing the validation block).
        n_val: validation images, taken from the last 5,000 training images.
        n_test: test images (the first ones of the test set).
        flatten: return (n, 784) instead of (n, 28, 28).
    """
    src = source()
    (x_full, y_full), (x_test, y_test) = _raw(src)
    hold = min(5000, len(x_full) // 5)
    x_tr, y_tr = x_full[:-hold], y_full[:-hold]
    x_va, y_va = x_full[-hold:], y_full[-hold:]

    def prep(x, n):
        x = np.asarray(x[:n], dtype=np.float32)
        if src == "fashion-mnist":
            x = x / np.float32(255.0)
        return x.reshape(len(x), int(np.prod(x.shape[1:]))) if flatten else x

    return Split(prep(x_tr, n_train), np.asarray(y_tr[:n_train], np.int64),
                 prep(x_va, n_val), np.asarray(y_va[:n_val], np.int64),
                 prep(x_test, n_test), np.asarray(y_test[:n_test], np.int64), src)


# ---- the generated stand-in --------------------------------------------------------------
def _templates():
    """Ten 28 x 28 silhouettes, one per Fashion-MNIST class (values in [0, 1])."""
    t = np.zeros((10, 28, 28), np.float32)
    rows, cols = np.mgrid[0:28, 0:28]
    torso = (rows >= 5) & (rows <= 25) & (cols >= 8) & (cols <= 19)
    short_sleeves = (rows >= 5) & (rows <= 11) & (cols >= 3) & (cols <= 24)
    long_sleeves = (rows >= 5) & (rows <= 23) & (((cols >= 3) & (cols <= 7)) |
                                                 ((cols >= 20) & (cols <= 24)))
    t[0] = torso | short_sleeves                                        # T-shirt/top
    t[1] = (rows >= 2) & (rows <= 26) & (((cols >= 8) & (cols <= 12)) |
                                         ((cols >= 15) & (cols <= 19)) |
                                         ((rows <= 8) & (cols >= 8) & (cols <= 19)))  # Trouser
    t[2] = torso | long_sleeves | ((rows <= 7) & (cols >= 5) & (cols <= 22))    # Pullover
    half_width = 3 + (rows - 2) * 0.35
    t[3] = (rows >= 2) & (rows <= 26) & (np.abs(cols - 13.5) <= half_width)     # Dress
    t[4] = (torso | long_sleeves | ((rows >= 5) & (cols >= 6) & (cols <= 21) &
                                    (rows <= 26))) & ~((cols == 13) & (rows >= 9))  # Coat
    t[5] = ((rows >= 17) & (rows <= 23) & (cols >= 2) & (cols <= 25) &
            ((rows % 3 == 0) | (cols % 6 == 0)))                                # Sandal
    t[6] = torso | long_sleeves | ((rows >= 5) & (rows <= 8) & (np.abs(cols - 13.5) <= 2))
    t[6] = t[6] * (0.75 + 0.25 * (cols % 4 < 2))                                # Shirt
    t[7] = (rows >= 16) & (rows <= 23) & (cols >= 2) & (cols <= 25) & \
        ((rows >= 20) | (cols >= 2 + (23 - rows) * 2.5))                        # Sneaker
    t[8] = ((rows >= 10) & (rows <= 25) & (cols >= 4) & (cols <= 23)) | \
        ((np.abs(np.hypot(rows - 10, cols - 13.5) - 6) < 1.2) & (rows < 10))    # Bag
    t[9] = ((rows >= 5) & (rows <= 24) & (cols >= 13) & (cols <= 22)) | \
        ((rows >= 18) & (rows <= 24) & (cols >= 3) & (cols <= 24))              # Ankle boot
    return t


def generated_clothes(n, seed=0, noise=0.3):
    """n procedural 28 x 28 "clothes" images in [0, 1] and their labels 0..9 (balanced).

    Each image is its class silhouette, blended with a look-alike class, shifted by up
    to 2 pixels, scaled in brightness, multiplied by a smooth random texture and blurred
    by pixel noise. An MLP reaches
    roughly Fashion-MNIST's accuracies on it, and the look-alike classes (T-shirt,
    pullover, coat, shirt) are the confusable ones, as in the real data.
    """
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 10).astype(np.int64)
    templates = _templates()
    # Blend in a look-alike class (tops with tops, shoes with shoes): the confusions of
    # the real data, and no class is perfectly separable.
    groups = {0: (2, 4, 6, 3), 2: (0, 4, 6), 4: (2, 6, 0), 6: (4, 2, 0), 3: (0, 4, 1),
              5: (7, 9), 7: (5, 9), 9: (7, 5), 1: (3, 8), 8: (4, 9)}
    other = np.array([groups[int(c)][k] for c, k in
                      zip(y, rng.integers(0, 6, size=n) % np.array(
                          [len(groups[int(c)]) for c in y]))])
    alpha = rng.uniform(0.0, 0.4, size=(n, 1, 1)).astype(np.float32)
    base = (1 - alpha) * templates[y] + alpha * templates[other]
    shifts = rng.integers(-2, 3, size=(n, 2))
    x = np.empty_like(base)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            idx = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
            x[idx] = np.roll(base[idx], (dy, dx), axis=(1, 2))
    coarse = rng.uniform(0.3, 1.0, size=(n, 7, 7)).astype(np.float32)
    texture = np.kron(coarse, np.ones((4, 4), np.float32))
    bright = rng.uniform(0.5, 1.0, size=(n, 1, 1)).astype(np.float32)
    x = x * texture * bright + rng.normal(0, noise, size=x.shape).astype(np.float32) * \
        (x > 0) + np.abs(rng.normal(0, noise / 3, size=x.shape)).astype(np.float32)
    return np.clip(x, 0, 1).astype(np.float32), y
