"""Weights in Keras' two HDF5 layouts, and the report of what a load did.

Keras 3 (`model.weights.h5` inside `.keras`, and `.weights.h5`): one group per object,
named by its place in the model, not by its name: `layers/<snake_class>[_n]/vars/<i>`
(`dense`, `dense_1`, ... in the order of `model.layers`; nested models recurse), the
model's own variables in `vars/`, the optimizer's in `optimizer/vars/`. A layer's variables
are its trainable-at-creation ones, then the others (Keras' `save_own_variables`).

Legacy (`.h5`): `model_weights/<layer name>` with attribute `weight_names`, datasets at
`model_weights/<layer name>/<weight name>`, layers matched in order (Keras' topological
loading); optimizer state in `optimizer_weights/`.

Every read checks shapes against the model before any data is read, and nothing is
assigned until every value has been read and checked (a failed load changes nothing).
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np

from ..layers.base import Layer
from .guard import SavingError
from .h5safe import H5Reader, h5py_module


@dataclasses.dataclass
class LoadReport:
    """What `load_weights` did: the variables loaded, and what was skipped and why."""

    loaded: list = dataclasses.field(default_factory=list)   # variable paths
    skipped: list = dataclasses.field(default_factory=list)  # (what, why)

    def __str__(self) -> str:
        lines = [f"Loaded {len(self.loaded)} variable(s), skipped {len(self.skipped)}."]
        lines += [f"  skipped {what}: {why}" for what, why in self.skipped]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<LoadReport loaded={len(self.loaded)} skipped={len(self.skipped)}>"


# ---- the Keras 3 tree ----------------------------------------------------------------------
def keras_snake_case(name: str) -> str:
    """Keras' `naming.to_snake_case` (differs from glassnet's on digits: Conv2D -> conv2d)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


_BASE_ATTRS = None


def _base_attrs() -> set:
    global _BASE_ATTRS
    if _BASE_ATTRS is None:
        _BASE_ATTRS = set(vars(Layer(name="__saving_probe__")))
    return _BASE_ATTRS


def own_variables(layer) -> list:
    """The layer's own variables in Keras order: trainable at creation first, then others."""
    intrinsic = layer.__dict__.get("_intrinsic_store", {})
    own = list(layer._weights)
    return [v for v in own if intrinsic.get(id(v), True)] + \
        [v for v in own if not intrinsic.get(id(v), True)]


def keras_tree(layer, path="") -> list:
    """[(path, layer)] for `layer` and every sublayer, in Keras 3 saving order."""
    out, seen = [], set()
    _walk(layer, path, out, seen)
    return out


def _walk(layer, path, out, seen):
    if id(layer) in seen:
        return
    seen.add(id(layer))
    out.append((path, layer))
    children = []
    if _is_graph_model(layer):  # Keras: Sequential and Functional save `layers` first
        children.append(("layers", list(layer.layers)))
    # Then attributes holding tracked sublayers (subclassed models), public ones first.
    members, skip = {id(sub) for sub in layer._layers}, _base_attrs()
    for attr in sorted(vars(layer), key=lambda a: f"~{a}" if a.startswith("_") else a):
        if attr in skip or attr.startswith("__"):
            continue
        value = vars(layer)[attr]
        if isinstance(value, Layer) and id(value) in members or (
                isinstance(value, (list, tuple)) and value and
                all(isinstance(v, Layer) and id(v) in members for v in value)):
            children.append((attr, value))
    for attr, value in children:
        sub = f"{path}/{attr}" if path else attr
        if isinstance(value, Layer):
            _walk(value, sub, out, seen)
            continue
        used = {}
        for item in value:
            base = keras_snake_case(type(item).__name__)
            used[base] = used.get(base, -1) + 1
            name = base if used[base] == 0 else f"{base}_{used[base]}"
            _walk(item, f"{sub}/{name}", out, seen)


def _is_graph_model(layer) -> bool:
    from .serialize import is_functional, is_sequential
    return is_sequential(layer) or is_functional(layer)


def write_keras_weights(h5file, model, optimizer=None) -> None:
    """Write the Keras 3 layout of `model` (and `optimizer`) into an open h5py File."""
    for path, layer in keras_tree(model):
        group = h5file.require_group(path) if path else h5file
        vars_group = group.create_group("vars")
        vars_group.attrs["name"] = layer.name
        for i, var in enumerate(own_variables(layer)):
            vars_group.create_dataset(str(i), data=np.asarray(var.data))
    if optimizer is not None:
        group = h5file.create_group("optimizer").create_group("vars")
        group.attrs["name"] = optimizer.name
        for i, value in enumerate(optimizer.variables):
            group.create_dataset(str(i), data=np.asarray(value))


def read_keras_weights(reader: H5Reader, model, skip_mismatch=False):
    """Read every layer's variables from the Keras 3 layout: ([(var, value)], LoadReport)."""
    report, pairs = LoadReport(), []
    root = reader.file
    for path, layer in keras_tree(model):
        own = own_variables(layer)
        if not own:
            continue
        where = f"layer {layer.name!r} ({type(layer).__name__}) at '{path or '/'}'"
        group = reader.path(root, f"{path}/vars" if path else "vars", "group")
        if group is None and path.startswith("layers"):  # Keras 2.13 wrote this name
            group = reader.path(root, path.replace("layers", "_layer_checkpoint_dependencies",
                                                   1) + "/vars", "group")
        if group is None:
            _problem(report, where, f"missing from the file (expected {len(own)} "
                                    "variable(s))", skip_mismatch, reader.what)
            continue
        names = reader.names(group)
        if sorted(names) != sorted(str(i) for i in range(len(own))):
            _problem(report, where, f"expected {len(own)} variable(s) "
                                    f"{[v.name for v in own]}, the file holds {len(names)}",
                     skip_mismatch, reader.what)
            continue
        for i, var in enumerate(own):
            ds = reader.child(group, str(i), "dataset")
            shape = reader.shape_of(ds)
            if shape != tuple(var.shape):
                _problem(report, f"{where}, variable {var.name!r}",
                         f"expected shape {tuple(var.shape)}, the file holds {shape}",
                         skip_mismatch, reader.what)
                continue
            pairs.append((var, reader.read(ds, var.shape)))
    return pairs, report


def read_keras_optimizer(reader: H5Reader, model):
    """The optimizer's saved variables {"0": array, ...}, or None when absent."""
    group = reader.path(reader.file, "optimizer/vars", "group")
    if group is None:
        return None
    names = reader.names(group)
    if sorted(names) != sorted(str(i) for i in range(len(names))):
        raise SavingError(f"{reader.what}: optimizer/vars should hold datasets '0'.."
                          f"'{len(names) - 1}'; found {sorted(names)[:10]}.")
    return _optimizer_arrays(reader, model, [(n, reader.child(group, n, "dataset"))
                                             for n in names])


def _optimizer_arrays(reader, model, datasets) -> dict:
    """Read optimizer arrays, refusing (before reading) more arrays, or larger ones, than
    an optimizer of this model can have: its slots mirror the weights."""
    weights = model.weights
    largest = max((w.size for w in weights), default=1)
    if len(datasets) > 8 * len(weights) + 16:
        raise SavingError(f"{reader.what}: {len(datasets)} optimizer arrays for a model "
                          f"with {len(weights)} weights.")
    out = {}
    for key, ds in datasets:
        size = int(np.prod(reader.shape_of(ds), dtype=object))
        if size > largest:
            raise SavingError(f"{reader.what}: optimizer array {ds.name} has {size:,} "
                              f"elements, more than the model's largest weight ({largest:,}).")
        out[key] = reader.read(ds)
    return out


def _problem(report, what, why, skip_mismatch, source=""):
    """Raise (skip_mismatch False; None: loading a whole model, no hint) or record a skip."""
    if not skip_mismatch:
        hint = "" if skip_mismatch is None else \
            " Pass skip_mismatch=True to load the rest and see the report."
        raise SavingError(f"{source}: cannot load weights: {what}: {why}.{hint}")
    report.skipped.append((what, why))


# ---- legacy layout -------------------------------------------------------------------------
def legacy_weights(layer) -> list:
    """Keras' `_legacy_weights`: trainable weights, then non-trainable ones."""
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def _string_attr(values):
    h5py = h5py_module()
    return np.array([str(v) for v in values], dtype=h5py.string_dtype())


def write_legacy_weights(group, model) -> None:
    """Keras' `save_weights_to_hdf5_group`: `layer_names`, one group per layer."""
    from .. import __version__
    group.attrs["layer_names"] = _string_attr(l.name for l in model.layers)
    group.attrs["backend"] = "numpy"
    group.attrs["keras_version"] = f"glassnet-{__version__}"
    for layer in sorted(model.layers, key=lambda l: l.name):
        _write_subset(group.create_group(layer.name), legacy_weights(layer), layer.name)
    _write_subset(group.create_group("top_level_model_weights"), [], "")


def _write_subset(group, weights, layer_name):
    names = [f"{layer_name}/{w.name}" if layer_name else w.name for w in weights]
    if len(set(names)) != len(names):  # nested models can repeat short names
        names = [f"{n}_{i}" for i, n in enumerate(names)]
    group.attrs["weight_names"] = _string_attr(names)
    for name, w in zip(names, weights):
        group.create_dataset(name, data=np.asarray(w.data))


def write_legacy_optimizer(h5file, optimizer) -> None:
    values = optimizer.variables
    names = [f"{optimizer.name}/iteration"] + \
        [f"{optimizer.name}/variable_{i}" for i in range(1, len(values))]
    group = h5file.create_group("optimizer_weights")
    group.attrs["weight_names"] = _string_attr(names)
    for name, value in zip(names, values):
        group.create_dataset(name, data=np.asarray(value))


def read_legacy_weights(reader: H5Reader, group, model, skip_mismatch=False):
    """Keras' topological loading: the file's layers with weights, in order, against the
    model's layers with weights. ([(var, value)], LoadReport)."""
    report, pairs = LoadReport(), []
    saved = []
    for name in reader.name_list(group, "layer_names"):
        layer_group = reader.child(group, name, "group")
        if layer_group is None:
            raise SavingError(f"{reader.what}: layer_names lists {name!r}, but there is no "
                              "such group.")
        weight_names = reader.name_list(layer_group, "weight_names")
        if weight_names:
            saved.append((name, layer_group, weight_names))
    layers = [l for l in model.layers if legacy_weights(l)]
    if len(saved) != len(layers):
        if not skip_mismatch:
            hint = "" if skip_mismatch is None else \
                " Pass skip_mismatch=True to load the layers whose names match."
            raise SavingError(
                f"{reader.what}: cannot load weights: the model has {len(layers)} layer(s) "
                f"with weights ({[l.name for l in layers]}), the file {len(saved)} "
                f"({[s[0] for s in saved]}).{hint}")
        by_name = {s[0]: s for s in saved}
        matched = [(l, by_name.get(l.name)) for l in layers]
        for layer, entry in matched:
            if entry is None:
                report.skipped.append((f"layer {layer.name!r}", "no layer of that name "
                                       "with weights in the file"))
        matched = [(l, e) for l, e in matched if e is not None]
    else:
        matched = list(zip(layers, saved))
    for layer, (name, layer_group, weight_names) in matched:
        symbolic = legacy_weights(layer)
        where = f"layer #{layers.index(layer)} {layer.name!r} (file: {name!r})"
        if len(weight_names) != len(symbolic):
            _problem(report, where, f"expects {len(symbolic)} weight(s), the file holds "
                                    f"{len(weight_names)}", skip_mismatch, reader.what)
            continue
        for var, wname in zip(symbolic, weight_names):
            ds = reader.path(layer_group, wname, "dataset")
            if ds is None:
                raise SavingError(f"{reader.what}: weight {wname!r} of layer {name!r} is "
                                  "listed but missing.")
            shape = reader.shape_of(ds)
            if shape != tuple(var.shape):
                _problem(report, f"{where}, weight {var.name!r}",
                         f"expected shape {tuple(var.shape)}, the file holds {shape}",
                         skip_mismatch, reader.what)
                continue
            pairs.append((var, reader.read(ds, var.shape)))
    return pairs, report


def read_legacy_optimizer(reader: H5Reader, model):
    group = reader.child(reader.file, "optimizer_weights", "group")
    if group is None:
        return None
    datasets = []
    for i, name in enumerate(reader.name_list(group, "weight_names")):
        ds = reader.path(group, name, "dataset")
        if ds is None:
            raise SavingError(f"{reader.what}: optimizer weight {name!r} is listed but "
                              "missing.")
        datasets.append((str(i), ds))
    return _optimizer_arrays(reader, model, datasets)


def assign_all(pairs, report: LoadReport) -> LoadReport:
    """Assign every (variable, value) pair; only called once everything has been read."""
    for var, value in pairs:
        var.assign(value)
        report.loaded.append(var.path)
    return report


__all__ = ["LoadReport", "keras_tree", "own_variables", "write_keras_weights",
           "read_keras_weights", "write_legacy_weights", "read_legacy_weights",
           "assign_all", "keras_snake_case"]
