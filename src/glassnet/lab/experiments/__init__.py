"""The lab's experiments, one module each, in the order of the report.

To add one: write `glassnet/lab/experiments/<name_with_underscores>.py` with NAME, TITLE,
SETUP, `tasks(mode)`, `run(config, seed)` and `summarize(results, mode)` (see
`glassnet.lab.base`), and add its name to `ORDER`.
"""
from __future__ import annotations

import importlib

ORDER = (
    "init-activations",
    "init-training",
    "batchnorm",
    "optimizers",
    "schedules",
    "activations",
    "transfer",
    "pretraining",
    "overfitting",
    "vanishing-gradients",
)


def names():
    """The experiment names, in report order."""
    return list(ORDER)


def get(name):
    """The module of experiment `name` (e.g. "init-activations")."""
    if name not in ORDER:
        raise ValueError(f"Unknown lab experiment {name!r}. Expected one of: {list(ORDER)}")
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}")
