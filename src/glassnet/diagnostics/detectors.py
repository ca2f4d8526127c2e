"""Detectors: turn the recorded statistics (and the model's configuration) into findings.

Static checks read the layers' configuration: the kernel initializer against the activation
that follows it, the BatchNormalization update counts, the batch size. Record checks read
one sampled step: saturation, dead units, vanishing and exploding gradients, large updates.
Every threshold lives in `THRESHOLDS` and can be overridden per Monitor / diagnose() call.
"""
from __future__ import annotations

import math

import numpy as np

from .. import initializers as inits
from ..layers.normalization import BatchNormalization
from .activations import (NORMALIZATION, RELU_LIKE, SATURATING, ZERO_FAMILY,
                          activation_kind, is_activation_layer)
from .gradients import combined
from .report import Finding

THRESHOLDS = {
    # saturation: share of a hidden sigmoid/tanh layer's outputs within 0.02 of a bound
    "saturated_fraction": 0.25,
    # dead units: share of a ReLU layer's units that output 0 for the whole batch
    "dead_fraction": 0.4,
    # vanishing: grad norm of the first weighted layer / that of the last one
    "vanishing_ratio": 1e-3,
    # exploding: that ratio above this, or a global grad norm above `exploding_norm`, or a
    # global grad norm `exploding_growth` times larger than at the previous sampled step
    "exploding_ratio": 1e3,
    "exploding_norm": 1e4,
    "exploding_growth": 100.0,
    # large updates: ||dw|| / ||w|| of a kernel in one step (healthy: about 1e-3)
    "update_ratio": 1.0,
    # init: E[w^2] * fan_in / gain(activation), for one layer and over a stack of layers
    "init_layer_ratio": 8.0,
    "init_stack_ratio": 16.0,
    "init_min_depth": 3,
    # BN: moving statistics count as converged after bn_convergence / (1 - momentum) updates
    # (the initial value then weighs momentum^n < e^-3 = 5%)
    "bn_convergence": 3.0,
    "bn_small_batch": 8,
}

ADVICE = {
    "saturation": "Initialise sigmoid/tanh layers with Glorot (kernel_initializer="
                  "'glorot_uniform'), standardise the inputs (mean 0, std 1), add "
                  "BatchNormalization before the activation, or use ReLU with He init in "
                  "hidden layers: a saturated unit has a slope near 0 and stops learning.",
    "dead_units": "Lower the learning rate, use He init (kernel_initializer='he_normal') "
                  "with a zero or small positive bias, or use LeakyReLU/ELU, which never "
                  "output a constant 0: a dead ReLU gets no gradient and never recovers.",
    "vanishing_gradients": "Use ReLU-family activations with He init (or SELU with "
                           "lecun_normal) in hidden layers, add BatchNormalization, or make "
                           "the net shallower: each sigmoid layer multiplies the gradient "
                           "by its slope, at most 0.25.",
    "exploding_gradients": "Lower the learning rate (try 10x smaller), clip gradients "
                           "(e.g. SGD(learning_rate=..., clipnorm=1.0)), check the init "
                           "scale and standardise the inputs and regression targets.",
    "large_updates": "Lower the learning rate: a healthy step changes a weight by about "
                     "1/1000 of its size.",
    "nonfinite": "The run diverged: lower the learning rate, clip gradients (clipnorm=1.0), "
                 "check the data for NaN/inf and use the library's losses (stable with "
                 "logits). The TerminateOnNaN callback stops at the first NaN.",
    "init_scale": "Use kernel_initializer='he_normal' for ReLU-family layers, "
                  "'glorot_uniform' for tanh/sigmoid/linear and 'lecun_normal' for SELU: "
                  "they set std = sqrt(gain / fan_in) so the signal keeps its scale.",
    "init_mismatch": "Match the initializer to the activation: kernel_initializer="
                     "'he_normal' for ReLU-family layers, 'glorot_uniform' for tanh/sigmoid/"
                     "linear, 'lecun_normal' for SELU; or add BatchNormalization between "
                     "layers.",
    "init_symmetric": "A constant kernel makes every unit of the layer compute the same "
                      "thing, forever: use a random initializer such as 'he_normal'.",
    "bn_unconverged": "Train longer, lower `momentum` (0.9 needs about 30 updates), or "
                      "recompute the statistics on training data in one inference pass "
                      "before evaluating: until then inference uses mostly the initial "
                      "statistics (mean 0, variance 1).",
    "bn_batch_of_one": "BatchNormalization needs at least 2 values per channel in "
                       "training: use batch_size >= 2 (better >= 16), or "
                       "LayerNormalization, which does not depend on the batch.",
    "bn_small_batch": "Batches smaller than 8 give noisy batch statistics: use larger "
                      "batches, a smaller momentum, or LayerNormalization.",
}


def thresholds(overrides=None) -> dict:
    out = dict(THRESHOLDS)
    for key, value in (overrides or {}).items():
        if key not in THRESHOLDS:
            raise ValueError(f"Unknown diagnostics threshold {key!r}. Valid keys: "
                             f"{sorted(THRESHOLDS)}")
        out[key] = value
    return out


def _f(code, severity, message, layer=None, where=None, **kw) -> Finding:
    where = where or {}
    return Finding(code, severity, message, ADVICE.get(code, ""), layer=layer,
                   epoch=where.get("epoch"), batch=where.get("batch"),
                   step=where.get("step"), **kw)


# ---- static checks: initialisation ------------------------------------------------------
def init_gain(init, shape) -> float | None:
    """E[w^2] * fan_in implied by an initializer for a kernel of `shape` (2 = He, ReLU's
    ideal; 1 = LeCun, the ideal of tanh/linear/SELU), or None when unknown."""
    fan_in, fan_out = inits.compute_fans(tuple(shape))
    fan_in = max(1.0, float(fan_in))
    if isinstance(init, inits.VarianceScaling):
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}
        return init.scale / max(1.0, n[init.mode]) * fan_in
    if isinstance(init, inits.RandomNormal):  # TruncatedNormal keeps 0.8796 of the std
        std = init.stddev * (0.8796 if isinstance(init, inits.TruncatedNormal) else 1.0)
        return (init.mean ** 2 + std ** 2) * fan_in
    if isinstance(init, inits.RandomUniform):
        a, b = init.minval, init.maxval
        return (a * a + a * b + b * b) / 3.0 * fan_in
    if isinstance(init, inits.Orthogonal):
        return init.gain ** 2 * fan_in / max(fan_in, fan_out)
    if isinstance(init, inits.Constant) and np.ndim(init.value) == 0:
        return float(init.value) ** 2 * fan_in
    return None


def _effective_activation(layers, i) -> str:
    """The activation applied to layer i's output: its own, or that of the activation layer
    that follows it; "normalized" when a normalization layer comes first."""
    kind = activation_kind(layers[i])
    if kind not in (None, "linear"):
        return kind
    for nxt in layers[i + 1:]:
        if isinstance(nxt, NORMALIZATION):
            return "normalized"
        if is_activation_layer(nxt):
            return activation_kind(nxt) or "linear"
        if nxt.weights:  # the next weighted layer: no activation in between
            break
    return "linear"


def check_init(layers, th) -> list:
    """Kernel initializers that do not fit the activation that follows them."""
    findings, chain = [], []

    def close_chain():
        if len(chain) >= th["init_min_depth"]:
            product = math.prod(r for _, r, _, _ in chain)
            limit = th["init_stack_ratio"]
            if product < 1 / limit or product > limit:
                bad = [c for c in chain if (c[1] < 1 / 1.5 if product < 1 else c[1] > 1.5)]
                bad = bad or chain
                names = sorted({type(c[2]).__name__ for c in bad})
                acts = sorted({c[3] for c in bad})
                per = math.exp(sum(math.log(c[1]) for c in bad) / len(bad))
                way = "shrink" if product < 1 else "grow"
                findings.append(_f(
                    "init_mismatch", "warning",
                    f"{len(chain)} stacked layers ({chain[0][0]} … {chain[-1][0]}); "
                    f"{', '.join(names)} on {'/'.join(acts)} scales the activation "
                    f"variance by about x{per:.3g} per layer, x{product:.3g} over the "
                    f"stack, so activations and gradients {way} with depth.",
                    layer=bad[0][0], value=product, threshold=limit))
        chain.clear()

    for i, layer in enumerate(layers):
        if isinstance(layer, NORMALIZATION):
            close_chain()
            continue
        kernel, init = getattr(layer, "kernel", None), getattr(layer, "kernel_initializer",
                                                               None)
        if kernel is None or init is None:
            continue
        act = _effective_activation(layers, i)
        if isinstance(init, inits.Constant) and kernel.shape[-1] > 1:
            findings.append(_f("init_symmetric", "warning",
                               f"kernel initializer {type(init).__name__} gives every one "
                               f"of the {kernel.shape[-1]} units the same weights.",
                               layer=layer.name))
            close_chain()
            continue
        if act == "selu" and not (isinstance(init, inits.VarianceScaling) and init.scale == 1
                                  and init.mode == "fan_in"):
            findings.append(_f("init_mismatch", "warning",
                               f"SELU self-normalises only with LeCun normal init; the "
                               f"kernel uses {type(init).__name__}.", layer=layer.name))
        gain = init_gain(init, kernel.shape)
        if gain is None or act == "normalized":
            close_chain()
            continue
        target = 2.0 if act in RELU_LIKE else 1.0
        ratio = max(gain / target, 1e-30)
        if ratio >= th["init_layer_ratio"]:
            std = math.sqrt(gain / max(1, kernel.shape[0]))
            ideal = math.sqrt(target / max(1, kernel.shape[0]))
            findings.append(_f(
                "init_scale", "warning",
                f"{_describe(init)} gives weights of std {std:.3g}, {std / ideal:.3g}x the "
                f"{ideal:.3g} that {act} needs for fan_in={kernel.shape[0]}: pre-activations"
                f" {'saturate' if act in SATURATING else 'explode'}.",
                layer=layer.name, value=ratio, threshold=th["init_layer_ratio"]))
            ratio = 1.0  # reported once: keep it out of the stack product
        chain.append((layer.name, ratio, init, act))
    close_chain()
    return findings


def _describe(init) -> str:
    if isinstance(init, inits.RandomNormal):
        return f"{type(init).__name__}(stddev={init.stddev:g})"
    if isinstance(init, inits.RandomUniform):
        return f"RandomUniform({init.minval:g}, {init.maxval:g})"
    return type(init).__name__


# ---- static checks: batch normalization -----------------------------------------------
def bn_layers(layers) -> list:
    return [l for l in layers if isinstance(l, BatchNormalization)]


def bn_needed_updates(layer, th) -> float:
    m = layer.momentum
    return math.inf if m >= 1 else math.ceil(th["bn_convergence"] / (1.0 - m))


def check_bn_convergence(layers, th, where=None) -> list:
    """BN layers whose moving statistics still weigh their initial values (momentum^n)."""
    findings = []
    for layer in bn_layers(layers):
        if not layer.built or not layer.trainable:
            continue  # frozen statistics come from elsewhere (pretraining, a file)
        n, needed = layer.num_updates, bn_needed_updates(layer, th)
        if n == 0 and not (np.all(layer.moving_mean.data == 0)
                           and np.all(layer.moving_variance.data == 1)):
            continue  # statistics were loaded or set, not trained here
        if n < needed:
            left = layer.momentum ** n
            findings.append(_f(
                "bn_unconverged", "warning",
                f"the moving statistics have had {n} update(s) with momentum="
                f"{layer.momentum:g}; they need about {needed} (3 / (1 - momentum)) before "
                f"the initial values weigh < 5% (now {100 * left:.0f}%).",
                layer=layer.name, where=where, value=n, threshold=needed))
    return findings


def check_batch_size(layers, batch_size, th, where=None) -> list:
    """Batches of one (an error in training) or of fewer than 8 samples into BN."""
    findings = []
    for layer in bn_layers(layers):
        if not layer.trainable or batch_size is None:
            continue
        shape = layer._build_input_shape or ()
        spatial = math.prod(d or 1 for i, d in enumerate(shape[1:], 1)
                            if i != layer.axis % max(len(shape), 1))
        per_channel = batch_size * spatial
        if per_channel < 2:
            findings.append(_f(
                "bn_batch_of_one", "error",
                f"a batch of {batch_size} gives {per_channel} value per channel in "
                "training: the batch variance is 0 and the output is just beta.",
                layer=layer.name, where=where, value=batch_size, threshold=2))
        elif batch_size < th["bn_small_batch"]:
            findings.append(_f(
                "bn_small_batch", "info", f"batch size {batch_size} is below "
                f"{th['bn_small_batch']}: the batch statistics are noisy.",
                layer=layer.name, where=where, value=batch_size,
                threshold=th["bn_small_batch"]))
    return findings


# ---- record checks ----------------------------------------------------------------------
def check_record(record, th, previous=None) -> list:
    """Findings of one sampled step; `previous` is the record sampled before it."""
    findings, layers = [], record["layers"]
    where = {k: record.get(k) for k in ("epoch", "batch", "step")}
    names = list(layers)
    output = names[-1] if names else None
    for name, s in layers.items():
        sat, dead = s.get("saturated"), s.get("dead")
        if sat is not None and name != output and sat > th["saturated_fraction"]:
            findings.append(_f(
                "saturation", "warning",
                f"{100 * sat:.0f}% of the {s.get('activation')} outputs lie within 0.02 of "
                f"a bound (activation std {s.get('act_std', math.nan):.3g}).",
                layer=name, where=where, value=sat, threshold=th["saturated_fraction"]))
        if dead is not None and s.get("activation") in ZERO_FAMILY \
                and dead > th["dead_fraction"]:
            findings.append(_f(
                "dead_units", "warning",
                f"{100 * dead:.0f}% of the units output 0 for every sample of the batch "
                f"(pre-activation mean {_g(s.get('pre_mean'))}).",
                layer=name, where=where, value=dead, threshold=th["dead_fraction"]))
        for wname, ratio in (s.get("update_ratio") or {}).items():
            if ratio is not None and math.isfinite(ratio) and ratio > th["update_ratio"] \
                    and wname == "kernel":
                findings.append(_f(
                    "large_updates", "warning",
                    f"one step changed {wname} by {ratio:.3g}x its own norm.",
                    layer=name, where=where, value=ratio, threshold=th["update_ratio"]))
    findings.extend(_gradient_findings(record, th, previous, where))
    return findings


def _g(v) -> str:
    return "-" if v is None else f"{v:.3g}"


def global_grad_norm(record) -> float | None:
    return combined({n: combined(s.get("grad_norm") or {})
                     for n, s in record["layers"].items()})


def _gradient_findings(record, th, previous, where) -> list:
    per_layer = [(n, combined(s.get("grad_norm") or {})) for n, s in record["layers"].items()]
    per_layer = [(n, g) for n, g in per_layer if g is not None and math.isfinite(g)]
    out = []
    if len(per_layer) >= 2:
        (first, g0), (last, g1) = per_layer[0], per_layer[-1]
        ratio = g0 / g1 if g1 > 0 else None
        if ratio is not None and ratio < th["vanishing_ratio"]:
            out.append(_f(
                "vanishing_gradients", "warning",
                f"the gradient norm of the first layer is {ratio:.2e} times that of the "
                f"last layer {last!r} ({g0:.2e} vs {g1:.2e}): early layers barely learn.",
                layer=first, where=where, value=ratio, threshold=th["vanishing_ratio"]))
        elif ratio is not None and ratio > th["exploding_ratio"]:
            out.append(_f(
                "exploding_gradients", "warning",
                f"the gradient norm of the first layer is {ratio:.2e} times that of the "
                f"last layer {last!r}: gradients grow toward the input.",
                layer=first, where=where, value=ratio, threshold=th["exploding_ratio"]))
    total = global_grad_norm(record)
    if total is not None and math.isfinite(total):
        before = global_grad_norm(previous) if previous is not None else None
        biggest = max(per_layer, key=lambda p: p[1])[0] if per_layer else None
        if total > th["exploding_norm"]:
            out.append(_f("exploding_gradients", "warning",
                          f"the global gradient norm is {total:.3g} (largest in "
                          f"{biggest!r}).", layer=None, where=where, value=total,
                          threshold=th["exploding_norm"]))
        elif before and math.isfinite(before) and total > th["exploding_growth"] * before:
            out.append(_f("exploding_gradients", "warning",
                          f"the global gradient norm grew {total / before:.3g}x since the "
                          f"previous sampled step ({before:.3g} -> {total:.3g}).",
                          layer=None, where=where, value=total / before,
                          threshold=th["exploding_growth"]))
    return out


def nonfinite_in_record(record) -> tuple | None:
    """(layer name, what) of the first layer, in call order, with a non-finite activation
    or gradient; None when everything recorded is finite."""
    for name, s in record["layers"].items():
        if s.get("nonfinite"):
            return name, "activations"
    for name, s in record["layers"].items():
        for wname, g in (s.get("grad_norm") or {}).items():
            if g is not None and not math.isfinite(g):
                return name, f"gradient of {wname}"
    return None


def nonfinite_finding(layer, what, where, loss=None) -> Finding:
    loss_text = f" (loss {loss})" if loss is not None else ""
    return _f("nonfinite", "error",
              f"first non-finite value (NaN or inf) in the {what}{loss_text}.",
              layer=layer, where=where)
