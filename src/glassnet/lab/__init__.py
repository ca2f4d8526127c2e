"""The lab: one-command experiments that show why initialisation, normalisation,
activations, optimizers, schedules and regularisation matter, on real data.

Each experiment trains real glassnet models, states the claim it tests (with the
published number beside ours where one exists), judges it on the mean over several seeds,
and writes figures and tables into a self-contained `report/index.html` plus
`report/results.json`.

Command line::

    glassnet lab list
    glassnet lab run optimizers --quick --out report --jobs 2
    glassnet lab all --quick          # every experiment, small subsets, a few minutes

Python::

    from glassnet import lab
    entries = lab.run(["init-activations"], mode="quick", out="report")

Runs of a sweep are independent tasks `(experiment, config, seed)` executed by the
top-level function `execute_task`; `run(..., executor=...)` takes any object with a
`map` method (see `glassnet.lab.runner` for Ray). Data: Fashion-MNIST when its files are
found (see `glassnet.datasets.fashion_mnist`), otherwise a generated stand-in
(`glassnet.lab.data`); set GLASSNET_LAB_DATA=generated to force the latter.
"""
from __future__ import annotations

from .base import Claim, Outcome, Table, TaskResult
from .experiments import get, names
from .runner import execute_task, make_tasks, run, run_tasks

__all__ = ["run", "names", "get", "execute_task", "make_tasks", "run_tasks", "Claim",
           "Outcome", "Table", "TaskResult"]
