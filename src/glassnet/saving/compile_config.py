"""Compile configuration from a file: optimizer, loss and metrics (Keras 2 and 3 dialects).

Keras 3 writes `compile_config` (the optimizer under "optimizer"); Keras' legacy `.h5`
writes `training_config` (under "optimizer_config"). Keras 2 spellings are translated:
`lr`, `decay`, "auto" reductions, `MeanMetricWrapper` metrics, "Custom>Adam" names.
Classes come from glassnet or `custom_objects` only, as for layers.
"""
from __future__ import annotations

import warnings

from .. import losses, optimizers
from ..optimizers import schedules
from .deserialize import Context, _refuse_lambdas, _short
from .guard import SavingError


def compile_args(config, ctx: Context, legacy: bool) -> dict:
    """`compile()` keyword arguments from a Keras compile_config / legacy training_config."""
    if not isinstance(config, dict):
        raise SavingError(f"{ctx.what}: the training config must be a dict.")
    opt = config.get("optimizer_config" if legacy else "optimizer")
    if opt is None and legacy:
        opt = config.get("optimizer")
    return {"optimizer": optimizer_from_config(opt, ctx),
            "loss": _loss(config.get("loss"), ctx),
            "metrics": _metrics(config.get("metrics"), ctx),
            "weighted_metrics": _metrics(config.get("weighted_metrics"), ctx)}


def optimizer_from_config(spec, ctx: Context):
    if isinstance(spec, str):
        spec = {"class_name": spec, "config": {}}
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str):
        raise SavingError(f"{ctx.what}: cannot read the optimizer config {_short(spec)}.")
    name = spec["class_name"].split(">")[-1]  # "Custom>Adam" (Keras 2.11 legacy names)
    config = spec.get("config") or {}
    if not isinstance(config, dict):
        raise SavingError(f"{ctx.what}: the optimizer config must be a dict.")
    config = dict(config)
    for key in ("is_legacy_optimizer", "jit_compile", "epsilon_decay"):
        config.pop(key, None)
    if "lr" in config:  # Keras 2 name of learning_rate
        lr = config.pop("lr")
        config.setdefault("learning_rate", lr)
    if not config.get("decay"):  # Keras 2 wrote decay=0.0 everywhere
        config.pop("decay", None)
    lr = config.get("learning_rate")
    if isinstance(lr, dict):
        _refuse_lambdas(lr, f"{ctx.what}: learning-rate schedule", ctx)
        sname = lr.get("class_name")
        custom = ctx.lookup(lr.get("registered_name"), sname)
        if custom is None:
            cls = schedules._REGISTRY.get(sname) if isinstance(sname, str) else None
            if cls is not None and not cls.__module__.startswith("glassnet."):
                raise SavingError(f"{ctx.what}: schedule class {sname!r} is not a glassnet "
                                  "built-in; pass it in custom_objects to load it.")
    cls = ctx.lookup(spec.get("registered_name"), name) or \
        optimizers.base._REGISTRY.get(name.lower())
    if cls is None:
        raise SavingError(f"{ctx.what}: unknown optimizer {name!r}. Known: "
                          f"{', '.join(sorted(optimizers.base._REGISTRY))}.")
    if not cls.__module__.startswith("glassnet.") and ctx.lookup(
            spec.get("registered_name"), name) is None:
        raise SavingError(f"{ctx.what}: optimizer class {name!r} is not a glassnet built-in; "
                          "pass it in custom_objects to load it.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return cls.from_config(config, custom_objects=ctx.objects())
    except Exception as exc:
        raise SavingError(f"{ctx.what}: cannot rebuild optimizer {name!r}: "
                          f"{type(exc).__name__}: {exc}. Load with compile=False to skip "
                          "the training configuration.") from None


def _loss(spec, ctx):
    if spec is None:
        return None
    if isinstance(spec, list) and len(spec) == 1:
        spec = spec[0]
    if isinstance(spec, str):
        return ctx.lookup(spec) or spec
    if isinstance(spec, dict):
        _refuse_lambdas(spec, f"{ctx.what}: the loss", ctx)
        try:
            inner = spec.get("config")
            if isinstance(inner, dict) and inner.get("reduction") == "auto":  # Keras 2
                spec = {**spec, "config": {**inner, "reduction": "sum_over_batch_size"}}
            return losses.deserialize(spec, custom_objects=ctx.objects())
        except Exception as exc:
            raise SavingError(f"{ctx.what}: cannot rebuild the loss {_short(spec)}: {exc}. "
                              "Load with compile=False to skip it.") from None
    raise SavingError(f"{ctx.what}: glassnet models have one loss; received "
                      f"{_short(spec)}. Load with compile=False to skip it.")


def _metrics(spec, ctx):
    if spec is None:
        return None
    if isinstance(spec, dict) or (isinstance(spec, list) and spec
                                  and all(isinstance(s, list) for s in spec)):
        spec = [m for group in (spec.values() if isinstance(spec, dict) else spec)
                for m in (group if isinstance(group, list) else [group])]
    out = []
    for m in spec if isinstance(spec, list) else [spec]:
        if isinstance(m, str):
            out.append(ctx.lookup(m) or m)
        elif isinstance(m, dict):
            inner = m.get("config") if isinstance(m.get("config"), dict) else {}
            fn = inner.get("fn")
            if m.get("class_name") == "MeanMetricWrapper" and isinstance(fn, str):
                out.append(fn)
            elif isinstance(inner.get("name"), str) and m.get("class_name") in (
                    "MeanMetricWrapper", None):
                out.append(inner["name"])
            else:
                try:
                    from .. import metrics as metrics_mod
                    out.append(metrics_mod.deserialize(m, custom_objects=ctx.objects()))
                except Exception as exc:
                    warnings.warn(f"{ctx.what}: metric {_short(m)} is left out: {exc}",
                                  stacklevel=4)
    return out or None


__all__ = ["compile_args", "optimizer_from_config"]
