"""The optional C kernels (`_native.c`): fused element-wise loops, one pass over memory.

The NumPy code next to each call site is the reference; the kernels do the same float
operations in the same order and tests compare both. One deliberate difference: the
optimizer updates flush subnormal floats to zero on x86 (decayed slots of always-zero
gradients; see `_native.c`), where NumPy keeps them. They are used when the extension was
built (`pip install` compiles it when a C compiler is present) and not switched off with
the environment variable `GLASSNET_NATIVE=0` or `set_enabled(False)`.
"""
from __future__ import annotations

import contextlib
import os

# The kernels' calling conventions this Python code expects (`KERNELS_VERSION` in _native.c).
KERNELS_VERSION = 2

try:
    from . import _native as _module
except ImportError:  # no compiler at install time, or a source checkout never built
    _module = None
if _module is not None and getattr(_module, "KERNELS_VERSION", 0) != KERNELS_VERSION:
    # NOTE: a stale build (an editable install not rebuilt after an update) would be called
    # with the wrong arguments: NumPy, with a word on how to get the kernels back.
    import warnings
    warnings.warn("glassnet's compiled kernels were built from an older _native.c; running "
                  "on NumPy alone. Rebuild them with `pip install -e .`.", RuntimeWarning,
                  stacklevel=2)
    _module = None

_ENABLED = os.environ.get("GLASSNET_NATIVE", "1") != "0"

# NOTE: call sites read `native.kernels` (None when off) once per call: one attribute load.
kernels = _module if _ENABLED else None


def available() -> bool:
    """Whether the compiled kernels were built and can be imported."""
    return _module is not None


def enabled() -> bool:
    """Whether glassnet currently uses the compiled kernels."""
    return kernels is not None


def compiled():
    """The compiled module even while switched off, or None when not built: a backward pass
    finishes with the kernels its forward pass began with."""
    return _module


def set_enabled(flag: bool) -> None:
    """Use (True) or bypass (False) the compiled kernels; True needs `available()`."""
    global kernels
    if flag and _module is None:
        raise RuntimeError("glassnet's compiled kernels are not built: reinstall with a C "
                           "compiler available (`pip install -e .`).")
    kernels = _module if flag else None


@contextlib.contextmanager
def disabled():
    """Run a block on the NumPy code alone (tests compare it with the kernels)."""
    before = kernels is not None
    set_enabled(False)
    try:
        yield
    finally:
        set_enabled(before)
