"""Layers shared between models: ownership, unique names, and the warnings about both.

`Sequential(model_A.layers[:-1])` shares layer objects with `model_A`, as in Keras:
training the new model changes the old one. Each model registers itself (a weak
reference) on every layer it adds, so a model can tell which of its layers also live in
another model that is still alive; `summary()` lists them and `fit` warns once before it
updates them.

Names: inside one model every layer name is unique. A layer whose name was chosen
automatically (`dense_3`) is renamed on a clash; two explicitly named layers with the same
name are an error, because renaming either would surprise its author.
"""
from __future__ import annotations

import gc
import warnings
import weakref

from ..layers.base import to_snake_case, unique_name


class _Owners(weakref.WeakSet):
    """The models holding a layer, as weak references (they never keep a model alive)."""

    def __deepcopy__(self, memo):
        # A copied layer belongs to the copied models only, not to the originals.
        return _Owners(memo[id(m)] for m in self if id(m) in memo)


def track(model, layer) -> None:
    """Record that `model` holds `layer`."""
    owners = layer.__dict__.get("_owners")
    if owners is None:
        owners = layer.__dict__["_owners"] = _Owners()
    owners.add(model)


def untrack(model, layer) -> None:
    owners = layer.__dict__.get("_owners")
    if owners is not None:
        owners.discard(model)


def claim_name(model, layer, others) -> None:
    """Make `layer.name` unique among `others` (the model's other layers).

    An automatic name is changed (the new layer's first, else the old one's, with a
    warning since that layer may be known by its name elsewhere); two explicit names that
    clash raise a ValueError naming both layers.
    """
    clash = next((o for o in others if o is not layer and o.name == layer.name), None)
    if clash is None:
        return
    taken = {o.name for o in others} | {layer.name}
    if getattr(layer, "_auto_named", False):
        rename(layer, _fresh_name(layer, taken))
    elif getattr(clash, "_auto_named", False):
        old = clash.name
        rename(clash, _fresh_name(clash, taken))
        warnings.warn(f"Layer {layer.name!r} added to model {model.name!r} has the same name "
                      f"as the automatically named layer already there; that layer was "
                      f"renamed {old!r} -> {clash.name!r}.", UserWarning, stacklevel=4)
    else:
        raise ValueError(
            f"All layers added to model {model.name!r} must have unique names: the new "
            f"layer {layer.name!r} ({type(layer).__name__}) has the same name as the layer "
            f"{clash.name!r} ({type(clash).__name__}) already in the model, and both names "
            f"were given explicitly (or loaded from a file). Rename one of them, e.g. "
            f"`layer.name = {layer.name + '_new'!r}` before adding it.")


def _fresh_name(layer, taken) -> str:
    base = to_snake_case(type(layer).__name__)
    name = unique_name(base)
    while name in taken:
        name = unique_name(base)
    return name


def rename(layer, new_name: str) -> None:
    """Rename `layer` and the paths of its weights (`old/kernel` -> `new/kernel`)."""
    old = layer.name
    layer.name = new_name
    for var in layer._weights:
        if var.path == old or var.path.startswith(old + "/"):
            var.path = new_name + var.path[len(old):]


def _subtree(model) -> list:
    """`model` and every layer nested in it (models included)."""
    out, stack = [], [model]
    while stack:
        layer = stack.pop()
        out.append(layer)
        stack.extend(layer._layers)
    return out


def shared_layers(model, trainable_only=False, collect=True) -> dict:
    """{layer: [names of the other live models holding it]} for layers of `model`.

    Only layers with weights count (sharing an InputLayer or a Flatten changes nothing).
    Models nested inside `model` do not count as "other". A model that is unreachable but
    not yet collected (reference cycles) would be reported, so when anything is found the
    garbage collector runs once and the search is repeated.
    """
    layers = _subtree(model)
    inside = {id(layer) for layer in layers}
    found = {}
    for layer in layers[1:]:
        weights = layer.weights
        if not weights or (trainable_only and not any(w.trainable for w in weights)):
            continue  # sharing an InputLayer or a Flatten changes nothing
        owners = layer.__dict__.get("_owners")
        others = [m for m in (owners or ()) if id(m) not in inside]
        if others:
            found[layer] = sorted(m.name for m in others)
    if found and collect:
        gc.collect()
        return shared_layers(model, trainable_only, collect=False)
    return found


def warn_shared(model) -> None:
    """Warn once per model (and set of shared layers) before fit updates shared layers."""
    shared = shared_layers(model, trainable_only=True, collect=False)
    seen = model.__dict__.setdefault("_shared_warned", set())
    if not shared or frozenset(map(id, shared)) in seen:
        return  # (checked before the garbage collection below, which costs a little)
    shared = shared_layers(model, trainable_only=True)
    key = frozenset(map(id, shared))
    if not shared or key in seen:
        return
    seen.add(key)
    listing = ", ".join(f"{layer.name} (also in {', '.join(map(repr, names))})"
                        for layer, names in shared.items())
    warnings.warn(
        f"fit() on model {model.name!r} will update layers that are shared with other "
        f"models: {listing}. Training changes those models too (Keras semantics). To train "
        "a copy instead, use keras.models.clone_model(model, copy_weights=True).",
        UserWarning, stacklevel=4)


def summary_line(model) -> str | None:
    shared = shared_layers(model)
    if not shared:
        return None
    return " Shared with other models: " + ", ".join(
        f"{layer.name} (also in {', '.join(map(repr, names))})"
        for layer, names in shared.items())
