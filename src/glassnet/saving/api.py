"""save_model / load_model / save_weights / load_weights in Keras' own formats.

`.keras` is Keras 3's zip (config.json, metadata.json, model.weights.h5); `.h5` is Keras'
legacy HDF5 file (model_config and training_config attributes, model_weights/,
optimizer_weights/); `.weights.h5` holds weights only, in Keras 3's layout. Files are
recognised by their content, not their name. Saving is atomic; loading is bounded and
safe (see `guard` and `deserialize`) and returns a complete model or raises SavingError.
"""
from __future__ import annotations

import datetime
import io
import json
import os
import zipfile

from .. import __version__
from . import compile_config, deserialize, serialize, state, weights
from .guard import Budget, SavingError, atomic_write, parse_json, read_zip_members
from .h5safe import H5Reader, h5py_module

KERAS_FORMAT_VERSION = "3.15.1"  # the Keras release whose file layout this module writes
_H5_MAGIC, _ZIP_MAGIC = b"\x89HDF\r\n\x1a\n", (b"PK\x03\x04", b"PK\x05\x06")
_CONFIG, _METADATA, _WEIGHTS = "config.json", "metadata.json", "model.weights.h5"


# ---- saving --------------------------------------------------------------------------------
def save_model(model, filepath, overwrite=True, zipped=None, include_optimizer=True):
    """Save the architecture, weights, compile configuration and training state.

    The format follows the extension: `.keras` (Keras 3 zip, recommended) or `.h5`/`.hdf5`
    (Keras' legacy HDF5). A compiled model also stores its optimizer state and its random
    generators (shuffling, dropout), so that training resumes bit for bit. The file is
    written to a temporary file beside `filepath` and renamed over it at the end: an
    interrupted save never leaves a broken file.

    Args:
        model: a glassnet Model (Sequential, functional or a registered subclass).
        filepath: destination path ending in `.keras`, `.h5` or `.hdf5`.
        overwrite: replace an existing file. Defaults to True.
        zipped: accepted for Keras compatibility (`.keras` is always zipped).
        include_optimizer: store the compile configuration and optimizer state.

    Example:
        >>> model.save("model.keras"); restored = glassnet.models.load_model("model.keras")
    """
    path = os.fspath(filepath)
    if zipped is False:
        raise ValueError("glassnet writes .keras files zipped only (zipped=False is not "
                         "supported).")
    if path.endswith((".h5", ".hdf5")):
        writer = _write_h5
    elif path.endswith(".keras"):
        writer = _write_keras
    else:
        raise ValueError("Invalid filepath extension for saving: use `.keras` (the Keras 3 "
                         f"format, recommended) or `.h5` (legacy). Received: filepath={path}")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists and overwrite=False.")
    atomic_write(path, lambda tmp: writer(model, tmp, include_optimizer))


def _optimizer_to_save(model, include_optimizer):
    opt = getattr(model, "optimizer", None)
    if include_optimizer and getattr(model, "compiled", False) and opt is not None \
            and getattr(opt, "built", False):
        variables = model.trainable_variables
        if variables:  # NOTE: layers frozen since the last step: pack as the next step
            opt.build(variables)  # would, so the file matches what loading rebuilds
        return opt
    return None


def _write_keras(model, tmp, include_optimizer):
    entry = serialize.layer_entry(model)
    compile_config = serialize.compile_config(model) if include_optimizer else None
    if compile_config is not None:
        entry["compile_config"] = compile_config
    metadata = {"keras_version": KERAS_FORMAT_VERSION,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
                "glassnet_version": __version__,
                "glassnet_state": state.collect(model)}
    buffer = io.BytesIO()
    with h5py_module().File(buffer, "w") as f:
        weights.write_keras_weights(f, model, _optimizer_to_save(model, include_optimizer))
    with zipfile.ZipFile(tmp, "w") as zf:
        zf.writestr(_METADATA, json.dumps(metadata))
        zf.writestr(_CONFIG, json.dumps(entry))
        zf.writestr(_WEIGHTS, buffer.getvalue())


def _legacy(entry):
    """Keras' legacy .h5 config style: entries without module/registered_name/build_config."""
    if isinstance(entry, list):
        return [_legacy(e) for e in entry]
    if not isinstance(entry, dict):
        return entry
    if "class_name" in entry and "config" in entry:
        out = {k: v for k, v in entry.items()
               if k not in ("module", "registered_name", "build_config")}
        config = out["config"]
        if isinstance(config, dict) and isinstance(config.get("layers"), list):
            out["config"] = {**config, "layers": _legacy(config["layers"])}
        return out
    return entry


def _write_h5(model, tmp, include_optimizer):
    h5py = h5py_module()
    with h5py.File(tmp, "w") as f:
        f.attrs["keras_version"] = KERAS_FORMAT_VERSION
        f.attrs["backend"] = "numpy"
        entry = serialize.layer_entry(model)
        legacy = _legacy(entry)
        if "build_config" in entry:  # subclassed models are built from it before loading
            legacy["build_config"] = entry["build_config"]
        f.attrs["model_config"] = json.dumps(legacy)
        training = serialize.training_config(model) if include_optimizer else None
        if training is not None:
            f.attrs["training_config"] = json.dumps(training)
        weights.write_legacy_weights(f.create_group("model_weights"), model)
        optimizer = _optimizer_to_save(model, include_optimizer)
        if optimizer is not None:
            weights.write_legacy_optimizer(f, optimizer)
        f.attrs["glassnet_state"] = json.dumps(state.collect(model))


def save_weights(model, filepath, overwrite=True, max_shard_size=None):
    """Save the weights only: `.weights.h5` (Keras 3 layout, with the optimizer state of a
    compiled model) or `.h5`/`.hdf5` (Keras 2's save_weights layout)."""
    path = os.fspath(filepath)
    if max_shard_size is not None:
        raise ValueError("Sharded weights (max_shard_size) are not supported by glassnet.")
    if not model.built:
        raise ValueError(f"Model {model.name!r} is not built yet, so it has no weights to "
                         "save. Call it on data or build(input_shape) first.")
    if path.endswith(".weights.h5"):
        def write(tmp):
            with h5py_module().File(tmp, "w") as f:
                weights.write_keras_weights(f, model, _optimizer_to_save(model, True))
    elif path.endswith((".h5", ".hdf5")):
        def write(tmp):
            with h5py_module().File(tmp, "w") as f:
                weights.write_legacy_weights(f, model)
    else:
        raise ValueError("The filename must end in `.weights.h5` (or `.h5` for Keras 2's "
                         f"layout). Received: filepath={path}")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists and overwrite=False.")
    atomic_write(path, write)


# ---- loading -------------------------------------------------------------------------------
def _sniff(path, what) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if head.startswith(_ZIP_MAGIC):
                return "zip"
            offset = 0
            while True:  # the HDF5 superblock sits at 0, 512, 1024, 2048, ...
                if head == _H5_MAGIC:
                    return "h5"
                offset = 512 if offset == 0 else offset * 2
                if offset > 1 << 24:
                    break
                f.seek(offset)
                head = f.read(8)
                if len(head) < 8:
                    break
    except IsADirectoryError:
        raise SavingError(f"{what} is a directory; expected a .keras or .h5 file.") from None
    raise SavingError(f"{what} is neither a .keras (zip) nor an HDF5 (.h5) file "
                      "(corrupt, truncated or another format).")


def _guarded(what, fn):
    """Run a load; any failure that is not already a SavingError becomes one."""
    try:
        return fn()
    except (SavingError, FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception as exc:
        raise SavingError(f"{what}: could not load: {type(exc).__name__}: {exc}") from exc


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True,
               restore_global_rng=False):
    """Load a model saved by glassnet or by Keras (3.x `.keras`, 2.x/3.x `.h5`).

    Args:
        filepath: path of the file (its format is recognised from its content).
        custom_objects: dict name -> class or function for your own layers, activations,
            losses, ... Classes named in a file are never imported.
        compile: compile the model with the saved configuration (and restore the
            optimizer state). Defaults to True.
        safe_mode: accepted for Keras compatibility. glassnet refuses Lambda bytecode in
            both modes: it never executes code from a file, and nothing in the file can
            change that. Defaults to True.
        restore_global_rng: also reset `glassnet.backend.global_rng()` to its state at
            save time (for a bit-exact resume of a whole script). Defaults to False: the
            model's own generators (shuffling, dropout) are always restored.

    Returns:
        The model, complete, or a `SavingError` naming what is wrong with the file.
    """
    path = os.fspath(filepath)
    what = f"'{path}'"
    ctx = deserialize.Context(custom_objects, safe_mode, what)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No file at {path}.")
    return _guarded(what, lambda: _load(path, what, ctx, compile, restore_global_rng))


def _load(path, what, ctx, compile, restore_global_rng):
    if _sniff(path, what) == "zip":
        members = read_zip_members(path, {_CONFIG, _METADATA, _WEIGHTS}, what)
        if _CONFIG not in members:
            raise SavingError(f"{what} has no {_CONFIG}: not a .keras model file.")
        config = parse_json(members[_CONFIG], f"{what}: {_CONFIG}")
        metadata = parse_json(members.get(_METADATA, b"{}"), f"{what}: {_METADATA}")
        if not isinstance(config, dict) or not isinstance(metadata, dict):
            raise SavingError(f"{what}: {_CONFIG} and {_METADATA} must hold JSON objects.")
        model = deserialize.model_from_config(config, ctx)
        optimizer_values, pairs, report = None, [], weights.LoadReport()
        if _WEIGHTS in members:
            with H5Reader(members[_WEIGHTS], f"{what}: {_WEIGHTS}", Budget(what)) as reader:
                pairs, report = weights.read_keras_weights(reader, model, None)
                if compile and config.get("compile_config"):
                    optimizer_values = weights.read_keras_optimizer(reader, model)
        elif model.weights:
            raise SavingError(f"{what} has no {_WEIGHTS} (glassnet does not read the .npz "
                              "weights variant).")
        training, legacy = config.get("compile_config"), False
        saved_state = metadata.get("glassnet_state")
    else:
        with H5Reader(path, what, Budget(what)) as reader:
            text = reader.attr(reader.file, "model_config")
            if text is None:
                hint = " It holds weights only: use model.load_weights()." if (
                    reader.child(reader.file, "layers") is not None or
                    reader.attr(reader.file, "layer_names") is not None) else ""
                raise SavingError(f"{what} has no model_config attribute: not a Keras model "
                                  f"file.{hint}")
            config = parse_json(text, f"{what}: model_config")
            model = deserialize.model_from_config(config, ctx)
            group = reader.child(reader.file, "model_weights", "group")
            if group is None:
                raise SavingError(f"{what} has no model_weights group.")
            pairs, report = weights.read_legacy_weights(reader, group, model, None)
            training_text = reader.attr(reader.file, "training_config")
            training = parse_json(training_text, f"{what}: training_config") \
                if compile and training_text is not None else None
            optimizer_values = None if not training else \
                weights.read_legacy_optimizer(reader, model)
            state_text = reader.attr(reader.file, "glassnet_state")
            saved_state = parse_json(state_text, f"{what}: glassnet_state") \
                if state_text is not None else None
            legacy = True
    weights.assign_all(pairs, report)
    if compile and training:
        model.compile(**compile_config.compile_args(training, ctx, legacy=legacy))
        state.restore_optimizer(model, optimizer_values, what)
    if saved_state is not None:
        state.apply(model, saved_state, what, restore_global_rng)
    return model


def load_weights(model, filepath, skip_mismatch=False, **kwargs):
    """Load weights saved by glassnet or Keras into `model`, all or nothing.

    Reads `.weights.h5` (Keras 3 layout), `.keras` files, and `.h5` files (full models or
    Keras 2 weights files, matched layer by layer in order as Keras does).

    Args:
        model: a built model.
        filepath: the file.
        skip_mismatch: skip variables whose shape or count does not match, instead of
            raising. Defaults to False.

    Returns:
        A `LoadReport`: `.loaded` (variable paths) and `.skipped` ((what, why) pairs).
    """
    if kwargs.get("by_name"):
        raise ValueError("by_name=True is not supported (Keras 3 removed it too).")
    path = os.fspath(filepath)
    what = f"'{path}'"
    if not model.built:
        raise ValueError(f"Model {model.name!r} is not built yet: build it (or call it on "
                         "data) before load_weights, so that its weights exist.")
    if not os.path.exists(path):
        raise FileNotFoundError(f"No file at {path}.")
    return _guarded(what, lambda: _load_weights(model, path, what, skip_mismatch))


def _load_weights(model, path, what, skip_mismatch):
    optimizer_values = None
    if _sniff(path, what) == "zip":
        members = read_zip_members(path, {_WEIGHTS}, what)
        if _WEIGHTS not in members:
            raise SavingError(f"{what} has no {_WEIGHTS}.")
        source, name = members[_WEIGHTS], f"{what}: {_WEIGHTS}"
    else:
        source, name = path, what
    with H5Reader(source, name, Budget(what)) as reader:
        group = reader.child(reader.file, "model_weights", "group")
        if group is None and reader.attr(reader.file, "layer_names") is not None:
            group = reader.file
        if group is not None:
            pairs, report = weights.read_legacy_weights(reader, group, model, skip_mismatch)
        elif reader.child(reader.file, "layers") is not None or \
                reader.child(reader.file, "vars") is not None:
            pairs, report = weights.read_keras_weights(reader, model, skip_mismatch)
            if getattr(model, "compiled", False) and getattr(model, "optimizer", None):
                optimizer_values = weights.read_keras_optimizer(reader, model)
        else:
            raise SavingError(f"{name} holds no weights in a layout glassnet knows (Keras "
                              "3 'layers/.../vars' or Keras 2 'layer_names').")
    weights.assign_all(pairs, report)
    if optimizer_values is not None and not state.restore_optimizer(model, optimizer_values,
                                                                     what):
        report.skipped.append(("optimizer state", "does not fit this optimizer"))
    return report


# ---- JSON ----------------------------------------------------------------------------------
def to_json(model, **kwargs) -> str:
    """The model's architecture as Keras 3 JSON (no weights, no compile configuration)."""
    return json.dumps(serialize.layer_entry(model), **kwargs)


def model_from_json(json_string, custom_objects=None):
    """Rebuild a model (new weights) from `to_json()` output or Keras' JSON."""
    ctx = deserialize.Context(custom_objects, True, "model JSON")
    return _guarded("model JSON", lambda: deserialize.model_from_config(
        parse_json(json_string, "model JSON"), ctx))


__all__ = ["save_model", "load_model", "save_weights", "load_weights", "to_json",
           "model_from_json"]
