"""Error helpers: messages that name what was expected, what was received, and a fix."""
from __future__ import annotations

import difflib


class GlassnetError(Exception):
    """Base class of glassnet-specific errors."""


def did_you_mean(name: str, choices) -> str:
    """Return ' Did you mean "x"?' for the closest choice, or '' when none is close."""
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
