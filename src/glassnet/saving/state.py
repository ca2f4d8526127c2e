"""Training state beyond the weights: optimizer slots and random generators, as JSON.

Resuming a run bit for bit needs the optimizer's variables (iterations, slots; written in
Keras' layout by the format modules) and the state of every random generator training
reads: the model's shuffle generator, each layer's own generator (Dropout and other noise
layers) and, on request, the process-wide one. Generator states are stored as JSON
(`bit_generator.state`), never pickled, and checked before any of them is applied.
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import backend
from .guard import SavingError
from .weights import keras_tree

FORMAT = "glassnet-training-state"
_BIT_GENERATORS = {"PCG64": np.random.PCG64, "PCG64DXSM": np.random.PCG64DXSM,
                   "MT19937": np.random.MT19937, "Philox": np.random.Philox,
                   "SFC64": np.random.SFC64}


def rng_to_json(generator) -> dict:
    """`generator.bit_generator.state` with arrays as lists (JSON-safe)."""
    return _plain(generator.bit_generator.state)


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def rng_from_json(state, what) -> np.random.Generator:
    """A new Generator in the stored state (only NumPy's own bit generators)."""
    if not isinstance(state, dict) or state.get("bit_generator") not in _BIT_GENERATORS:
        raise SavingError(f"{what}: not a NumPy bit-generator state (expected one of "
                          f"{sorted(_BIT_GENERATORS)}).")
    bitgen = _BIT_GENERATORS[state["bit_generator"]]()
    try:
        bitgen.state = _arrays(state)
    except Exception as exc:
        raise SavingError(f"{what}: invalid random-generator state: {exc}") from None
    return np.random.Generator(bitgen)


def _arrays(state):
    """Lists back to the arrays MT19937/Philox states hold."""
    out = {}
    for k, v in state.items():
        if isinstance(v, dict):
            out[k] = _arrays(v)
        elif isinstance(v, list):
            out[k] = np.asarray(v, dtype=np.uint64 if k in ("counter", "key", "buffer")
                                and state.get("bit_generator") != "MT19937"
                                else np.uint32)
        else:
            out[k] = v
    return out


def collect(model) -> dict:
    """The training state of `model` and of the process, as a JSON-safe dict."""
    layers = {}
    for path, layer in keras_tree(model):
        entry = {}
        rng = layer.__dict__.get("_rng")
        if isinstance(rng, np.random.Generator):
            entry["rng"] = rng_to_json(rng)
        updates = layer.__dict__.get("num_updates")
        if isinstance(updates, int) and not isinstance(updates, bool):
            entry["num_updates"] = updates
        if entry:
            layers[path or "/"] = entry
    shuffle = model.__dict__.get("_shuffle_rng")
    return {"format": FORMAT, "version": 1,
            "shuffle_rng": rng_to_json(shuffle) if isinstance(shuffle, np.random.Generator)
            else None,
            "global_rng": rng_to_json(backend.global_rng()),
            "layers": layers}


def apply(model, state, what, restore_global_rng=False) -> None:
    """Restore what `collect` stored; everything is checked before anything is applied."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise SavingError(f"{what}: the glassnet training state is not in the expected "
                          "format.")
    tree = {path or "/": layer for path, layer in keras_tree(model)}
    plan = []
    entries = state.get("layers") or {}
    if not isinstance(entries, dict):
        raise SavingError(f"{what}: the training state's 'layers' must be a dict.")
    for path, entry in entries.items():
        layer = tree.get(path)
        if layer is None or not isinstance(entry, dict):
            continue  # a layer the model no longer has: nothing to restore
        if "rng" in entry and isinstance(layer.__dict__.get("_rng"), np.random.Generator):
            plan.append((layer, "_rng", rng_from_json(entry["rng"], f"{what}: {path}")))
        updates = entry.get("num_updates")
        if isinstance(updates, int) and not isinstance(updates, bool) and updates >= 0 \
                and "num_updates" in layer.__dict__:
            plan.append((layer, "num_updates", updates))
    if state.get("shuffle_rng") is not None:
        plan.append((model, "_shuffle_rng", rng_from_json(state["shuffle_rng"],
                                                         f"{what}: shuffle_rng")))
    global_state = None
    if restore_global_rng and state.get("global_rng") is not None:
        global_state = rng_from_json(state["global_rng"], f"{what}: global_rng")
    for obj, attr, value in plan:
        obj.__dict__[attr] = value
    if global_state is not None:  # in place: holders of global_rng() see the change
        backend.global_rng().bit_generator.state = global_state.bit_generator.state


def restore_optimizer(model, values, what) -> bool:
    """Build the optimizer on the model's trainable variables and load `values` (a dict
    "0".."n-1", Keras order). A mismatch warns and leaves a fresh optimizer (as Keras)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or values is None:
        return False
    optimizer.build(model.trainable_variables)
    current = optimizer.variables
    saved = [values.get(str(i)) for i in range(len(values))]
    problem = None
    if len(saved) != len(current):
        problem = f"{len(saved)} saved arrays for {len(current)} optimizer variables"
    else:
        for i, (target, value) in enumerate(zip(current, saved)):
            if value is None or np.shape(value) != np.shape(target):
                problem = (f"variable {i} has shape {np.shape(value)}, expected "
                           f"{np.shape(target)}")
                break
    if problem is not None:  # checked first: a mismatch leaves the optimizer untouched
        warnings.warn(f"{what}: the saved optimizer state does not fit this optimizer "
                      f"({problem}); training continues from a fresh optimizer state.",
                      UserWarning, stacklevel=4)
        return False
    optimizer.load_own_variables(values)
    return True


__all__ = ["collect", "apply", "restore_optimizer", "rng_to_json", "rng_from_json"]
