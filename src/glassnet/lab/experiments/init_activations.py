"""init-activations: Saito's histograms of a 5-layer, 100-unit net on random inputs."""
from __future__ import annotations

import numpy as np

import glassnet as keras
from ..base import Claim, Outcome, Table, fmt, group, mean, seeds, stat
from ..common import layer_outputs

NAME = "init-activations"
TITLE = "Initialisation and activations: where the signal goes in a 5 × 100 net"
SETUP = ("1,000 inputs x ~ N(0, 1) of 100 features pass through 5 Dense(100) layers without "
         "bias (no training), as in Saito's ch6/weight_init_activation_histogram.py. Sigmoid "
         "with weights N(0, 1), N(0, 0.01²) and Glorot (Xavier: glorot_normal, std √(1/100) "
         "here); ReLU with N(0, 0.01²), Glorot and He (he_normal, std √(2/100)). Keras' "
         "glorot_normal and he_normal are truncated normals with the same variance as "
         "Saito's plain normals.")

CONFIGS = {
    "sigmoid, std 1": ("sigmoid", {"class_name": "RandomNormal", "stddev": 1.0}),
    "sigmoid, std 0.01": ("sigmoid", {"class_name": "RandomNormal", "stddev": 0.01}),
    "sigmoid, Glorot": ("sigmoid", "glorot_normal"),
    "ReLU, std 0.01": ("relu", {"class_name": "RandomNormal", "stddev": 0.01}),
    "ReLU, Glorot": ("relu", "glorot_normal"),
    "ReLU, He": ("relu", "he_normal"),
}
BINS = 30


def tasks(mode):
    return [({"config": name}, s) for name in CONFIGS for s in seeds(mode)]


def _initializer(spec):
    if isinstance(spec, str):
        return spec
    return keras.initializers.RandomNormal(stddev=spec["stddev"])


def run(config, seed):
    activation, init = CONFIGS[config["config"]]
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.layers.Input((100,))] +
        [keras.layers.Dense(100, activation=activation, use_bias=False,
                            kernel_initializer=_initializer(init)) for _ in range(5)])
    x = np.random.default_rng(seed).standard_normal((1000, 100)).astype(np.float32)
    outputs = [a for _, a in layer_outputs(model, x)]
    if activation == "sigmoid":
        hist_range = (0.0, 1.0)
    else:  # one range per row, so that shrinking or growing spreads show; zeros left out
        top = max(float(np.quantile(a[a > 0], 0.995)) if np.any(a > 0) else 0.0
                  for a in outputs)
        hist_range = (0.0, max(top, 1e-12))
    layers = []
    for a in outputs:
        values = a if activation == "sigmoid" else a[a > 0]
        counts, edges = np.histogram(values, bins=BINS, range=hist_range)
        layers.append({
            "mean": float(a.mean()), "std": float(a.std()),
            "near_0_or_1": float(np.mean((a < 0.02) | (a > 0.98))),
            "outside_0.05": float(np.mean((a < 0.05) | (a > 0.95))),
            "near_half": float(np.mean(np.abs(a - 0.5) < 0.1)),
            "zero": float(np.mean(a <= 0)),
            "dead_units": float(np.mean(np.all(a <= 0, axis=0))),
            "hist": (counts.tolist(), edges.tolist()),
        })
    return {"layers": layers, "data": "N(0,1) random inputs"}


def _per_layer(runs, key):
    """Mean over seeds of `key` for each of the 5 layers."""
    return [mean(r.output["layers"][i][key] for r in runs) for i in range(5)]


def summarize(results, mode):
    by = group(results, "config")
    all_seeds = sorted({r.seed for r in results})
    sat = _per_layer(by["sigmoid, std 1"], "near_0_or_1")
    sat05 = _per_layer(by["sigmoid, std 1"], "outside_0.05")
    half = _per_layer(by["sigmoid, std 0.01"], "near_half")
    xav_sat = _per_layer(by["sigmoid, Glorot"], "outside_0.05")
    he_std = _per_layer(by["ReLU, He"], "std")
    gl_std = _per_layer(by["ReLU, Glorot"], "std")
    tiny_std = _per_layer(by["ReLU, std 0.01"], "std")
    he_ratio = [r.output["layers"][4]["std"] / r.output["layers"][0]["std"]
                for r in by["ReLU, He"]]
    gl_ratio = [r.output["layers"][4]["std"] / r.output["layers"][0]["std"]
                for r in by["ReLU, Glorot"]]
    claims = [
        Claim("Sigmoid with std-1 weights saturates: most activations (> 50 %) lie within "
              "0.02 of 0 or 1, in every layer.",
              supported=min(sat) > 0.5,
              metrics={f"share within 0.02 of 0/1, layer {i + 1}": v
                       for i, v in enumerate(sat)} |
              {"share < 0.05 or > 0.95 (Saito's view), layers 1/3/5":
               [sat05[0], sat05[2], sat05[4]]},
              published={"share < 0.05 or > 0.95 (Saito's view), layers 1/3/5":
                         "0.768 / 0.651 / 0.668 (NumPy re-run, 20 seeds)",
                         "Saito, fig. 6-10": "activations pile up at 0 and 1"},
              seeds=all_seeds, note="Judged on the least saturated layer (mean over seeds)."),
        Claim("Tiny weights (std 0.01) squeeze every sigmoid activation to 0.5 ± 0.1 "
              "(no saturation, but no expressiveness either), while Glorot keeps < 1 % of "
              "them beyond 0.05 of 0 or 1.",
              supported=min(half) > 0.99 and max(xav_sat) < 0.01,
              metrics={"std 0.01: share in 0.5 ± 0.1 (worst layer)": min(half),
                       "Glorot: share < 0.05 or > 0.95 (worst layer)": max(xav_sat)},
              published={"std 0.01: share in 0.5 ± 0.1 (worst layer)": 1.0,
                         "Glorot: share < 0.05 or > 0.95 (worst layer)": 0.004},
              seeds=all_seeds),
        Claim("He initialisation keeps the ReLU activation std roughly constant across the "
              "5 layers (ratio layer 5 / layer 1 within [0.5, 2]), while Glorot lets it "
              "shrink (ratio < 0.45) and std 0.01 makes it vanish.",
              supported=0.5 <= mean(he_ratio) <= 2.0 and mean(gl_ratio) < 0.45 and
              tiny_std[4] < 1e-3 * tiny_std[0],
              metrics={"He: std ratio layer 5 / layer 1": stat(he_ratio),
                       "Glorot: std ratio layer 5 / layer 1": stat(gl_ratio),
                       "He: std, layers 1..5": he_std,
                       "Glorot: std, layers 1..5": gl_std,
                       "std 0.01: std, layer 5": tiny_std[4]},
              published={"He: std ratio layer 5 / layer 1": "0.98 (median, 500 seeds)",
                         "Glorot: std ratio layer 5 / layer 1": "0.25 (median, 500 seeds)",
                         "He: std, layers 1..5": "0.83 · 0.84 · 0.85 (layers 1, 3, 5)",
                         "Glorot: std, layers 1..5": "0.59 · 0.30 · 0.15 (layers 1, 3, 5)",
                         "std 0.01: std, layer 5": 1.5e-6},
              seeds=all_seeds,
              note="Published column: the NumPy re-run of Saito's script "
                   "(research note §3); Saito's own figure shows the same shapes."),
    ]
    rows = []
    for name in CONFIGS:
        runs = by[name]
        rows.append([name] + [stat([r.output["layers"][i]["std"] for r in runs])
                              for i in range(5)]
                    + [fmt(_per_layer(runs, "near_0_or_1")[4]) if "sigmoid" in name
                       else fmt(_per_layer(runs, "dead_units")[4])])
    table = Table("Activation std per layer (mean ± sd over seeds)",
                  ["configuration", "layer 1", "layer 2", "layer 3", "layer 4", "layer 5",
                   "layer 5: saturated (sigmoid) / dead units (ReLU)"], rows)
    figures = _figures(by, mode)
    return Outcome(claims=claims, tables=[table], figures=figures)


def _figures(by, mode):
    from ... import plot
    figures = []
    for kind in ("sigmoid", "ReLU"):
        grid = {}
        for name in CONFIGS:
            if not name.startswith(kind):
                continue
            first = min(by[name], key=lambda r: r.seed)
            grid[name] = {
                (f"layer {i + 1}" if kind == "sigmoid" else
                 f"layer {i + 1} (zeros: {100 * layer['zero']:.0f} %)"):
                tuple(map(np.asarray, layer["hist"]))
                for i, layer in enumerate(first.output["layers"])}
        what = ("count of 100,000" if kind == "sigmoid" else
                "count of the non-zero values; one x range per row")
        title = f"{kind} activations per layer (seed 0; x: activation value, y: {what})"
        figures.append((f"{kind}: histograms of the activations of layers 1–5 "
                        "(one row per initialisation), as in Saito's figures 6-10 to 6-14.",
                        plot.activation_histograms(grid, title=title)))
    return figures
