"""Plots that make training visible: activation histograms, curves, gradient norms, paths.

Every function returns a `matplotlib.figure.Figure` (object-oriented API: no pyplot state,
nothing to close, safe in worker processes and on machines without a display). Save it
with `fig.savefig("x.png")` or `to_png(fig)`; in Jupyter a returned figure displays itself.
matplotlib is imported only when a function is called: install it with
`pip install glassnet[lab]`.

The inputs are plain values, so the functions read what the rest of glassnet produces:
a Keras `History` (or its `.history` dict), arrays of activations, the `records` of
`glassnet.diagnostics.Monitor` ({"step", "epoch", "layers": {name: {"hist": (counts,
edges), "grad_norm": {...}, ...}}}), and optimizer trajectories from `optimizer_path`.

Example:
    >>> from glassnet import plot
    >>> fig = plot.training_curves({"adam": history_adam, "sgd": history_sgd}, "loss")
    >>> fig.savefig("loss.png")
"""
from __future__ import annotations

import io
import math
import os
import sys
from collections.abc import Mapping

import numpy as np

__all__ = ["activation_histograms", "training_curves", "gradient_norms", "optimizer_paths",
           "optimizer_path", "bar_chart", "new_figure", "saito_optimizers", "saito_function",
           "saito_gradient", "to_png", "save"]

# Colour-blind-safe palette (Okabe & Ito), cycled for runs and layers.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
           "#F0E442")


def new_figure(width, height):
    """A new Figure (width × height inches, constrained layout), with the Agg backend
    selected when no display is available; for custom panels next to these plots."""
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError("glassnet.plot needs matplotlib: pip install 'glassnet[lab]' "
                          "(or pip install matplotlib).") from None
    headless = os.name != "nt" and not os.environ.get("DISPLAY") and \
        not os.environ.get("WAYLAND_DISPLAY") and "MPLBACKEND" not in os.environ
    if headless and "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")  # no GUI toolkit is probed; a user's own choice is kept
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def to_png(fig, dpi=100) -> bytes:
    """The figure as PNG bytes (what the lab embeds, base64-encoded, in its HTML report)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save(fig, path, dpi=100) -> str:
    """Write the figure to `path` (format from the extension); returns the path."""
    fig.savefig(path, dpi=dpi)
    return str(path)


# ---- activation histograms --------------------------------------------------------------
def _as_hist(values, bins, value_range):
    """(counts, edges) from an array, an existing (counts, edges) pair, or a record dict."""
    if isinstance(values, Mapping) and "hist" in values:
        values = values["hist"]
    if isinstance(values, tuple) and len(values) == 2 and np.ndim(values[0]) == 1 and \
            np.size(values[1]) == np.size(values[0]) + 1:
        return np.asarray(values[0], float), np.asarray(values[1], float)
    data = np.asarray(values, dtype=np.float64).ravel()
    data = data[np.isfinite(data)]
    return np.histogram(data, bins=bins, range=value_range)


def activation_histograms(activations, bins=30, value_range=None, title=None,
                          density=False, sharey=False):
    """One histogram panel per layer: the classic figure of a 5-layer, 100-unit network.

    Args:
        activations: {layer_name: values} for one row of panels, or {row_label:
            {layer_name: values}} for a grid (one row per run, e.g. per initialiser).
            `values` is an array of activations, a `(counts, edges)` pair, or a per-layer
            dict of `diagnostics.Monitor` (its `"hist"` is used). A Monitor record
            ({"layers": {...}}) is accepted too.
        bins: number of bins for raw arrays. Defaults to 30 (Saito's figure).
        value_range: (low, high) for raw arrays; defaults to each array's own range.
        title: figure title.
        density: plot densities instead of counts.
        sharey: share the y axis within a row.

    Returns:
        A matplotlib Figure.

    Example:
        >>> acts = {f"layer {i}": a for i, a in enumerate(layer_outputs, 1)}
        >>> activation_histograms(acts, value_range=(0, 1), title="sigmoid, std 1")
    """
    if isinstance(activations, Mapping) and "layers" in activations and \
            isinstance(activations["layers"], Mapping):
        activations = activations["layers"]
    rows = dict(activations)
    grid = bool(rows) and all(isinstance(v, Mapping) and "hist" not in v
                              for v in rows.values())
    if not grid:
        rows = {"": rows}
    from matplotlib.ticker import MaxNLocator
    n_rows = len(rows)
    n_cols = max(len(r) for r in rows.values())
    fig = new_figure(min(2.6 * n_cols + 0.8, 16), 2.1 * n_rows + (0.5 if title else 0.2))
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharey="row" if sharey else False)
    for i, (row_label, layers) in enumerate(rows.items()):
        for j in range(n_cols):
            ax = axes[i][j]
            if j >= len(layers):
                ax.set_axis_off()
                continue
            name, values = list(layers.items())[j]
            counts, edges = _as_hist(values, bins, value_range)
            if density and counts.sum() > 0:
                counts = counts / (counts.sum() * np.diff(edges))
            ax.stairs(counts, edges, fill=True, color=PALETTE[i % len(PALETTE)], alpha=0.85)
            ax.set_title(str(name), fontsize=9)
            ax.tick_params(labelsize=7)
            ax.xaxis.set_major_locator(MaxNLocator(4))
            ax.yaxis.set_major_locator(MaxNLocator(4))
            if j:
                ax.tick_params(labelleft=sharey is False)
            if j == 0 and row_label:
                ax.set_ylabel(str(row_label), fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


# ---- curves ------------------------------------------------------------------------------
def _series(run, metric):
    """A run as a list of curves (one per seed): History, dict, 1-D or 2-D sequence."""
    if hasattr(run, "history") and isinstance(run.history, Mapping):
        run = run.history
    if isinstance(run, Mapping):
        if metric not in run:
            raise KeyError(f"metric {metric!r} not in this run; it has {sorted(run)}")
        run = run[metric]
    run = list(run)
    if run and (isinstance(run[0], Mapping) or hasattr(run[0], "history")):
        return [_series(r, metric)[0] for r in run]  # one History (or dict) per seed
    if run and np.ndim(run[0]) == 1:
        return [np.asarray(r, float) for r in run]
    return [np.asarray(run, float)]


def training_curves(runs, metric="loss", xlabel="epoch", title=None, logy=False,
                    x=None, ylabel=None, ax=None):
    """Curves of several runs on one axis (several seeds of a run: mean, min–max band).

    Args:
        runs: {label: run}; a run is a Keras `History`, a history dict, a list of values,
            or a list of such (one per seed: the mean is drawn with a min–max band).
        metric: the key to plot ("loss", "val_accuracy", …), or a list of keys (one panel
            each).
        xlabel: label of the x axis ("epoch", "step"). Epochs are numbered from 1.
        title: figure (or panel) title.
        logy: logarithmic y axis.
        x: optional x values shared by all runs (default 1..n).
        ylabel: defaults to the metric name.
        ax: draw into this Axes instead of a new figure (one metric only).

    Returns:
        A matplotlib Figure.
    """
    from matplotlib.ticker import MaxNLocator
    metrics = [metric] if isinstance(metric, str) else list(metric)
    outside = len(runs) > 4  # a long legend goes beside the axes, not over the curves
    if ax is None:
        fig = new_figure((4.6 + (1.6 if outside else 0)) * len(metrics) + 0.4, 3.4)
        axes = list(fig.subplots(1, len(metrics), squeeze=False)[0])
    else:
        fig, axes = ax.figure, [ax]
    for ax_, name in zip(axes, metrics):
        for k, (label, run) in enumerate(runs.items()):
            curves = _series(run, name)
            n = min(len(c) for c in curves)
            stack = np.stack([c[:n] for c in curves])
            xs = np.asarray(x[:n], float) if x is not None else np.arange(1, n + 1)
            color = PALETTE[k % len(PALETTE)]
            mean = np.nanmean(stack, axis=0)
            suffix = f" ({len(curves)} seeds)" if len(curves) > 1 else ""
            ax_.plot(xs, mean, color=color, lw=1.8, label=f"{label}{suffix}",
                     marker="o" if n <= 12 else None, ms=3.5)
            if len(curves) > 1:
                ax_.fill_between(xs, np.nanmin(stack, 0), np.nanmax(stack, 0), color=color,
                                 alpha=0.15, lw=0)
        ax_.set_xlabel(xlabel)
        ax_.set_ylabel(ylabel or _pretty(name))
        if x is None:
            ax_.xaxis.set_major_locator(MaxNLocator(integer=True))
        if logy:
            ax_.set_yscale("log")
        ax_.grid(alpha=0.3)
        if outside:
            ax_.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
        else:
            ax_.legend(fontsize=8, frameon=False)
        if title and len(metrics) == 1:
            ax_.set_title(title, fontsize=11)
    if title and len(metrics) > 1:
        fig.suptitle(title, fontsize=11)
    return fig


def _pretty(name):
    """'val_accuracy' -> 'validation accuracy' (axis labels)."""
    name = str(name)
    if name.startswith("val_"):
        name = "validation " + name[4:]
    return name.replace("_", " ")


# ---- gradient norms ----------------------------------------------------------------------
def _pick(norms, weight):
    """One number from a layer's grad_norm entry: the variable whose name ends in `weight`."""
    if not isinstance(norms, Mapping):
        return float(norms)
    for key, value in norms.items():
        if str(key).split("/")[-1] == weight:
            return float(value)
    values = [float(v) for v in norms.values()]
    return math.sqrt(sum(v * v for v in values)) if values else float("nan")


def gradient_norms(records, weight="kernel", title=None, logy=True, xlabel="step",
                   stat="grad_norm", ax=None):
    """Gradient norm of each layer over time, one line per layer (from Monitor records).

    Args:
        records: `diagnostics.Monitor(...).records`, i.e. a list of {"step", "layers":
            {layer_name: {"grad_norm": {weight_name: norm, ...}, ...}}}; a layer's
            "grad_norm" may also be a single number.
        weight: which variable of each layer to plot ("kernel"); if a layer has no
            variable of that name, the norm over all its variables is used.
        title: figure title.
        logy: logarithmic y axis (the natural scale for vanishing gradients).
        xlabel: the x axis label; x values are the records' "step".
        stat: which per-layer statistic to plot; "update_ratio" works the same way.
        ax: draw into this Axes instead of a new figure.

    Returns:
        A matplotlib Figure.
    """
    records = list(records)
    names = []
    for rec in records:
        for name, stats in rec["layers"].items():
            if stat in stats and name not in names:
                names.append(name)
    if ax is None:
        fig = new_figure(6.4, 3.8)
        ax = fig.subplots()
    else:
        fig = ax.figure
    cmap = _layer_colors(len(names))
    for color, name in zip(cmap, names):
        xs, ys = [], []
        for rec in records:
            stats = rec["layers"].get(name)
            if stats is not None and stat in stats:
                xs.append(rec.get("step", len(xs)))
                ys.append(_pick(stats[stat], weight))
        ax.plot(xs, ys, color=color, lw=1.6, marker="o" if len(xs) < 12 else None, ms=3,
                label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{stat.replace('_', ' ')} ({weight})")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False, ncol=2 if len(names) > 6 else 1)
    if title:
        ax.set_title(title, fontsize=11)
    return fig


def _layer_colors(n):
    """n colours from dark (first layer) to light (last layer), readable on white."""
    from matplotlib import colormaps
    cmap = colormaps["viridis"]
    return [cmap(0.9 * i / max(n - 1, 1)) for i in range(n)]


# ---- optimizer paths ---------------------------------------------------------------------
def saito_function(x, y):
    """f(x, y) = x²/20 + y²: a valley 20 times flatter along x (Saito, ch. 6)."""
    return x * x / 20.0 + y * y


def saito_gradient(p):
    """∇f = (x/10, 2y)."""
    return np.array([p[0] / 10.0, 2.0 * p[1]], dtype=p.dtype)


def saito_optimizers():
    """Saito's four optimizers in Keras terms: {label: optimizer}.

    Saito (Deep Learning from Scratch, ch6/optimizer_compare_naive.py) uses SGD(lr=0.95),
    Momentum(lr=0.1, momentum=0.9), AdaGrad(lr=1.5), Adam(lr=0.3). The update rules are
    the same in Keras (v ← μv − ηg; w ← w + v for momentum; Adam with the folded bias
    correction and ε = 1e-7), with one difference: Keras' Adagrad starts its accumulator
    at `initial_accumulator_value=0.1`, Saito's at 0; we pass 0 to draw his figure (with
    Keras' 0.1 the first AdaGrad step is shorter).
    """
    from .optimizers import SGD, Adagrad, Adam
    return {
        "SGD(0.95)": SGD(learning_rate=0.95),
        "Momentum(0.1, 0.9)": SGD(learning_rate=0.1, momentum=0.9),
        "AdaGrad(1.5)": Adagrad(learning_rate=1.5, initial_accumulator_value=0.0),
        "Adam(0.3)": Adam(learning_rate=0.3),
    }


def optimizer_path(optimizer, gradient=saito_gradient, start=(-7.0, 2.0), steps=30):
    """The points an optimizer visits on a 2-D function, with glassnet's own update code.

    A 2-element `Variable` is updated `steps` times with `optimizer.apply_gradients`.

    Args:
        optimizer: a glassnet optimizer (fresh: its slots start empty).
        gradient: p -> ∇f(p) for a float64 array p of shape (2,). Defaults to Saito's.
        start: the starting point. Defaults to (-7, 2).
        steps: number of updates. Defaults to 30.

    Returns:
        Array of shape (steps + 1, 2): the start and every point after it.
    """
    from .autograd import Variable
    p = Variable(np.asarray(start, dtype=np.float64), name="p")
    path = [p.numpy().copy()]
    for _ in range(int(steps)):
        optimizer.apply_gradients([(gradient(np.array(p.numpy())), p)])
        path.append(p.numpy().copy())
    return np.stack(path)


def optimizer_paths(paths=None, function=saito_function, xlim=(-10, 10), ylim=(-5, 5),
                    title=None, ncols=2):
    """Optimizer trajectories over the contours of a 2-D function (Saito's figure 6-8).

    Args:
        paths: {label: (n, 2) array of points}; defaults to Saito's four optimizers run
            by `optimizer_path` from (-7, 2) for 30 steps.
        function: f(x, y) for the contour lines. Defaults to x²/20 + y².
        xlim, ylim: the plotted window.
        title: figure title.
        ncols: panels per row.

    Returns:
        A matplotlib Figure.
    """
    if paths is None:
        paths = {k: optimizer_path(opt) for k, opt in saito_optimizers().items()}
    n = len(paths)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig = new_figure(4.2 * ncols, 2.7 * nrows + (0.4 if title else 0))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    gx, gy = np.meshgrid(np.linspace(*xlim, 200), np.linspace(*ylim, 100))
    gz = function(gx, gy)
    levels = np.quantile(gz, np.linspace(0.02, 0.9, 9))
    for k, (label, pts) in enumerate(paths.items()):
        ax = axes[k // ncols][k % ncols]
        pts = np.asarray(pts, float)
        ax.contour(gx, gy, gz, levels=np.unique(levels), colors="0.75", linewidths=0.8)
        ax.plot(pts[:, 0], pts[:, 1], "-o", color=PALETTE[k % len(PALETTE)], ms=3, lw=1.4)
        ax.plot([0], [0], "+", color="k", ms=10)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_title(label, fontsize=10)
        ax.tick_params(labelsize=7)
    for k in range(n, nrows * ncols):
        axes[k // ncols][k % ncols].set_axis_off()
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def bar_chart(values, ylabel="", title=None, errors=None, reference=None,
              reference_label=None):
    """Bars for {label: value} (with optional {label: error} whiskers and a reference line).

    Used by the lab for per-configuration summaries (e.g. accuracy per regulariser).
    """
    labels = list(values)
    fig = new_figure(max(4.0, 1.15 * len(labels) + 1.5), 3.4)
    ax = fig.subplots()
    xs = np.arange(len(labels))
    err = None if errors is None else [errors.get(k, 0.0) for k in labels]
    ax.bar(xs, [values[k] for k in labels], yerr=err, capsize=3,
           color=[PALETTE[i % len(PALETTE)] for i in range(len(labels))], alpha=0.85)
    ax.set_xticks(xs, [str(k).replace(" (", "\n(") for k in labels], fontsize=8)
    if reference is not None:
        ax.axhline(reference, color="k", ls="--", lw=1, label=reference_label)
        if reference_label:
            ax.legend(fontsize=8, frameon=False)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    if title:
        ax.set_title(title, fontsize=11)
    return fig

