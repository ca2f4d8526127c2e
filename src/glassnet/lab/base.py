"""What an experiment hands back: claims judged on numbers, tables and figures.

An experiment is a module under `glassnet.lab.experiments` with:

    NAME = "optimizers"                 # the CLI name
    TITLE = "Optimizers: ..."           # one line for the report
    SETUP = "..."                       # what is trained on which data (a paragraph)
    def tasks(mode) -> list[(config: dict, seed: int)]   # independent runs
    def run(config, seed) -> dict       # one run, in a worker process; plain values only
    def summarize(results, mode) -> Outcome              # parent process: claims, figures

`results` is a list of `TaskResult` (config, seed, output) for the runs that succeeded.
A task's config and output must be picklable plain values (numbers, strings, lists,
dicts, NumPy arrays), so that any executor (a process pool, a Ray cluster) can carry them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MODES = ("smoke", "quick", "full")


@dataclass
class Claim:
    """A statement the experiment tests, and whether this run's numbers support it.

    Args:
        text: the claim, in words a user can check against the table and the figure.
        supported: the verdict of this run (judged on the mean over the seeds).
        metrics: our numbers behind the verdict ({name: value}).
        published: the numbers of the source where one exists ({name: value or text}).
        seeds: the seeds the verdict averages over.
        note: how the verdict was judged, caveats.
    """

    text: str
    supported: bool
    metrics: dict = field(default_factory=dict)
    published: dict = field(default_factory=dict)
    seeds: list = field(default_factory=list)
    note: str = ""


@dataclass
class Table:
    """A table for the report: a title, column names and rows of values."""

    title: str
    columns: list
    rows: list
    note: str = ""


@dataclass
class Outcome:
    """Everything an experiment's `summarize` returns."""

    claims: list
    tables: list = field(default_factory=list)
    figures: list = field(default_factory=list)  # (caption, matplotlib Figure or PNG bytes)
    notes: list = field(default_factory=list)


@dataclass
class TaskResult:
    """One finished run: the config and seed it was given and what `run` returned."""

    config: dict
    seed: int
    output: dict


# ---- helpers shared by the experiment modules --------------------------------------------
def pick(mode, smoke, quick, full):
    """The value for `mode` ("smoke", "quick" or "full")."""
    if mode not in MODES:
        raise ValueError(f"Unknown lab mode {mode!r}. Expected one of: {MODES}")
    return {"smoke": smoke, "quick": quick, "full": full}[mode]


_SEEDS_OVERRIDE = {"n": None}


def seeds(mode):
    """The seeds of a sweep: 1 in smoke mode (mechanics only), 3 in quick, 5 in full.

    `glassnet lab run ... --seeds N` overrides the count (`set_seed_count`).
    """
    n = _SEEDS_OVERRIDE["n"] or pick(mode, 1, 3, 5)
    return list(range(n))


def set_seed_count(n):
    """Override the number of seeds per configuration (None restores the defaults)."""
    _SEEDS_OVERRIDE["n"] = None if n is None else int(n)


def group(results, *keys):
    """{tuple of config values (or the value, for one key): [TaskResult, ...]}."""
    out = {}
    for r in results:
        k = tuple(r.config.get(key) for key in keys)
        out.setdefault(k[0] if len(keys) == 1 else k, []).append(r)
    return out


def mean(values):
    """Mean of finite values (nan if none)."""
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else float("nan")


def sd(values):
    """Sample standard deviation of finite values (0 for one value, nan for none)."""
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    arr = arr[np.isfinite(arr)]
    if not arr.size:
        return float("nan")
    return float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def stat(values):
    """{"mean", "sd", "values"} of a quantity over seeds (JSON-friendly; shown as m ± sd)."""
    values = [float(v) for v in values]
    return {"mean": mean(values), "sd": sd(values), "values": values}


def fmt(value, digits=3):
    """A number for a table: fixed digits, scientific when tiny or huge; a `stat` dict as
    'mean ± sd'; a list as numbers joined by ' · '."""
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "mean" in value:
        if len(value.get("values", ())) > 1:
            m, s = value["mean"], value["sd"]
            return f"{fmt(m, digits)} ± {_fmt_sd(m, s, digits)}"
        return fmt(value["mean"], digits)
    if isinstance(value, (list, tuple)):
        return " · ".join(fmt(v, digits) for v in value)
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    v = float(value)
    if math.isnan(v):
        return "nan"
    if v == 0:
        return "0"
    if (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.{max(digits - 1, 1)}e}"
    if abs(v) < 0.01:
        return f"{v:.{digits + 1}f}"
    return f"{v:.{digits}f}"


def _fmt_sd(m, s, digits):
    """The sd in the same notation as its mean (so that 'm ± sd' reads as one number)."""
    text = fmt(m, digits)
    if "e" in text or not math.isfinite(s):
        return f"{s:.1e}"
    decimals = len(text.split(".")[1]) if "." in text else 0
    return f"{s:.{decimals}f}"


def pm(values, digits=3):
    """'mean ± sd' of values over seeds."""
    values = list(values)
    return fmt(stat(values), digits)
