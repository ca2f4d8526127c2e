"""Fisher's Iris data, embedded in the package: 150 flowers, 4 measurements, 3 species.

The file `glassnet/datasets/data/iris.csv` ships with the package (read through
`importlib.resources`, so it also works from an installed wheel or zip), so loading
needs no network and no dependency beyond NumPy.

Columns (cm): sepal length, sepal width, petal length, petal width. Labels: 0 = setosa,
1 = versicolor, 2 = virginica, 50 of each. Rows 35 and 38 follow Fisher's paper (as in
scikit-learn), not the two mistyped rows of the UCI file; the column means are
5.843, 3.057, 3.758 and 1.199.

Reference:
    Fisher, R. A. (1936). The use of multiple measurements in taxonomic problems.
    Annals of Eugenics, 7(2), 179-188.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

__all__ = ["load_data", "FEATURE_NAMES", "CLASS_NAMES"]

FEATURE_NAMES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
CLASS_NAMES = ("setosa", "versicolor", "virginica")

_NUM_SAMPLES = 150


def _read_csv() -> tuple[np.ndarray, np.ndarray]:
    """Return all 150 rows as (float32 features, int64 labels), in file order."""
    text = resources.files(__package__).joinpath("data", "iris.csv").read_text("utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    header, rows = lines[0], lines[1:]
    table = np.loadtxt(rows, delimiter=",", dtype=np.float64, ndmin=2)
    # A damaged install, never user input: say so plainly instead of training on junk.
    if header.split(",")[:4] != list(FEATURE_NAMES) or table.shape != (_NUM_SAMPLES, 5):
        raise RuntimeError(
            f"glassnet's embedded iris.csv is damaged (header {header!r}, shape "
            f"{table.shape}); reinstall glassnet."
        )
    return table[:, :4].astype(np.float32), table[:, 4].astype(np.int64)


def load_data(test_split: float = 0.2, seed: int = 113):
    """Loads the Iris data, split into a stratified, shuffled train and test set.

    Each class gives `round(50 * test_split)` rows to the test set; both sets are then
    shuffled. The split depends only on `seed`, so the same seed gives the same arrays.

    Args:
        test_split: Fraction of each class held out for testing, in [0, 1).
            Defaults to 0.2 (120 train / 30 test rows).
        seed: Seed of the NumPy generator that draws the split. Defaults to 113 (the
            Keras datasets' default).

    Returns:
        `((x_train, y_train), (x_test, y_test))`: float32 features of shape `(n, 4)` and
        int64 labels of shape `(n,)` with values 0, 1, 2.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_data(test_split=0.2, seed=0)
        >>> x_train.shape, y_test.shape, x_train.dtype.name, y_train.dtype.name
        ((120, 4), (30,), 'float32', 'int64')
    """
    if isinstance(test_split, bool) or not isinstance(test_split, (int, float)):
        raise TypeError(
            f"`test_split` must be a float in [0, 1). Received: {test_split!r}"
        )
    if not 0.0 <= test_split < 1.0:
        raise ValueError(
            f"`test_split` must be in [0, 1). Received: test_split={test_split!r}"
        )
    x, y = _read_csv()
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for label in range(len(CLASS_NAMES)):
        rows = rng.permutation(np.flatnonzero(y == label))
        n_test = int(round(len(rows) * test_split))
        test_idx.append(rows[:n_test])
        train_idx.append(rows[n_test:])
    # NOTE: shuffle after concatenating, otherwise batches would arrive sorted by class.
    train_idx = rng.permutation(np.concatenate(train_idx))
    test_idx = rng.permutation(np.concatenate(test_idx))
    return (x[train_idx], y[train_idx]), (x[test_idx], y[test_idx])
