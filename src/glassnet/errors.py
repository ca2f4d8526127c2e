"""Error helpers: messages that name what was expected, what was received, and a fix."""
from __future__ import annotations


class GlassnetError(Exception):
    """Base class of glassnet-specific errors."""


def did_you_mean(name: str, choices) -> str:
    """Return ' Did you mean "x"?' for the closest choice, or '' when none is close."""
    import difflib  # NOTE: here, not at import time: only a mistyped name needs it
    norm = str(name).lower().replace("-", "_")
    lowered = {str(c).lower(): c for c in choices}
    close = difflib.get_close_matches(norm, list(lowered), n=1, cutoff=0.6)
    return f' Did you mean "{lowered[close[0]]}"?' if close else ""


def unknown_identifier(kind: str, name, choices) -> ValueError:
    """A ValueError for an unknown string identifier, with a suggestion and the valid names."""
    valid = ", ".join(sorted({str(c) for c in choices if not str(c).startswith("_")}))
    return ValueError(
        f"Unknown {kind}: {name!r}.{did_you_mean(name, choices)} Valid names: {valid}."
    )


def check_kwargs(owner: str, kwargs: dict, allowed=()) -> None:
    """Raise a TypeError for keyword arguments `owner` does not accept."""
    unknown = [k for k in kwargs if k not in allowed]
    if unknown:
        hints = "".join(did_you_mean(k, allowed) for k in unknown)
        raise TypeError(
            f"{owner} got unexpected keyword argument(s): {', '.join(map(repr, unknown))}."
            f"{hints}"
        )


# ---- shared (de)serialisation of small registered objects (regularizers, constraints) ----
def serialize_registered(obj, base_cls, owner_module: str, keras_module: str, kind: str):
    """Keras 3 form of a registered object: {"module", "class_name", "config",
    "registered_name"}; a named function gives class_name "function". None, a string or a
    dict comes back unchanged."""
    if obj is None or isinstance(obj, (str, dict)):
        return obj
    if isinstance(obj, base_cls):
        cls = type(obj)
        builtin = cls.__module__ == owner_module
        return {"module": keras_module if builtin else cls.__module__,
                "class_name": cls.__name__, "config": obj.get_config(),
                "registered_name": None if builtin else cls.__name__}
    name = getattr(obj, "__name__", None)
    if callable(obj) and name and name != "<lambda>":
        return {"module": getattr(obj, "__module__", None),
                "class_name": "function", "config": name, "registered_name": name}
    raise TypeError(f"Cannot serialize {kind}: expected a {base_cls.__name__}, a named "
                    f"function, a string or None. Received: {obj!r}")


def deserialize_registered(config, lookup, names, kind: str, get, custom_objects=None):
    """Inverse of `serialize_registered`; `lookup(name)` finds a built-in class or None."""
    if isinstance(config, str):
        return get(config)
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError('Expected a dict with "class_name" and "config" keys. '
                         f"Received: config={config!r}")
    custom = dict(custom_objects or {})
    class_name, inner = config["class_name"], config.get("config") or {}
    if class_name == "function":
        class_name = config.get("registered_name") or inner
    obj = custom.get(class_name) or lookup(class_name)
    if obj is None:
        raise unknown_identifier(kind, class_name, set(names) | set(custom))
    if not isinstance(obj, type):
        return obj
    return obj.from_config(dict(inner)) if isinstance(inner, dict) else obj()
