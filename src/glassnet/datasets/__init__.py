"""Small datasets with the Keras `load_data()` contract.

Each submodule exposes `load_data()` returning `((x_train, y_train), (x_test, y_test))`:

- `iris`: Fisher's Iris data, embedded in the package (150 x 4, 3 classes).
- `fashion_mnist`: Zalando's Fashion-MNIST (70,000 images of 28 x 28), read from
  local IDX files (`$GLASSNET_DATA`, `~/.glassnet/datasets/fashion-mnist`, or the Debian
  package `dataset-fashion-mnist`), downloaded only as a last resort.

Example:
    >>> from glassnet.datasets import iris
    >>> (x_train, y_train), (x_test, y_test) = iris.load_data()
    >>> x_train.shape, x_test.shape
    ((120, 4), (30, 4))
"""

from __future__ import annotations

import importlib

__all__ = ["iris", "fashion_mnist"]


def __getattr__(name: str):
    # Submodules load on first access, so `import glassnet.datasets` costs nothing.
    if name in __all__:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
