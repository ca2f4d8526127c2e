"""The array backend: which array module, which float dtype, which random generator.

This is the only module that decides between NumPy and (later) CuPy. Everything else asks
`xp_of(array)` for the module that owns an array, `floatx()` for the default float dtype,
and `make_rng(seed)` / `global_rng()` for random numbers.
"""
from __future__ import annotations

import numpy as np

_FLOATX = "float32"
_EPSILON = 1e-7
_GLOBAL_SEED: int | None = None
# NOTE: made on first use: `numpy.random` (with the hashlib chain it imports) is 13 ms of
# `import glassnet`'s 40 on top of NumPy, and nothing needs it before a layer draws weights.
_GLOBAL_RNG = None

_VALID_FLOATX = ("float16", "float32", "float64")


def xp_of(array) -> object:
    """Return the array module (numpy, later cupy) that owns `array`."""
    # NOTE: CuPy slots in here: `cupy.get_array_module(array)` when it is importable.
    return np


def to_numpy(array) -> np.ndarray:
    """Return `array` as a host NumPy array (a no-op for NumPy arrays)."""
    return np.asarray(array)


def floatx() -> str:
    """Return the default float dtype name, 'float32' unless `set_floatx` changed it."""
    return _FLOATX


def set_floatx(value: str) -> None:
    """Set the default float dtype: one of 'float16', 'float32', 'float64'."""
    global _FLOATX
    value = str(np.dtype(value)) if not isinstance(value, str) else value
    if value not in _VALID_FLOATX:
        raise ValueError(
            f"Unknown floatx {value!r}. Expected one of: {', '.join(_VALID_FLOATX)}"
        )
    _FLOATX = value


def epsilon() -> float:
    """Return the fuzz factor used in numeric expressions (Keras default 1e-7)."""
    return _EPSILON


def set_epsilon(value: float) -> None:
    """Set the fuzz factor returned by `epsilon()`."""
    global _EPSILON
    _EPSILON = float(value)


def standardize_dtype(dtype) -> np.dtype:
    """Return `dtype` as a NumPy dtype, `floatx()` when it is None."""
    return np.dtype(floatx() if dtype is None else dtype)


def set_global_seed(seed: int | None) -> None:
    """Reseed the process-wide generator that unseeded random consumers draw from."""
    global _GLOBAL_SEED, _GLOBAL_RNG
    _GLOBAL_SEED = None if seed is None else int(seed)
    _GLOBAL_RNG = np.random.default_rng(seed)


def global_seed() -> int | None:
    """Return the seed given to the last `set_global_seed` call (None if never set)."""
    return _GLOBAL_SEED


def global_rng() -> np.random.Generator:
    """Return the process-wide generator (reseeded by `utils.set_random_seed`)."""
    global _GLOBAL_RNG
    if _GLOBAL_RNG is None:
        _GLOBAL_RNG = np.random.default_rng()
    return _GLOBAL_RNG


def make_rng(seed=None) -> np.random.Generator:
    """Return a generator: new from an int seed, the given one, or drawn from the global one.

    An unseeded consumer gets a child of the global generator, so that
    `utils.set_random_seed(n)` makes a whole run reproducible bit for bit.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng(global_rng().integers(0, 2**63 - 1))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(
            f"`seed` must be an int, a numpy Generator or None. Received: seed={seed!r}"
        )
    return np.random.default_rng(int(seed))


# ---- BLAS threads ---------------------------------------------------------------------------
# NOTE: OpenBLAS worker threads busy-wait. On a laptop where anything else wants a core, a
# 2-thread GEMM on a small batch can run 50x slower than a 1-thread one (measured here:
# 5 ms instead of 0.06 ms for 32x784 @ 784x128). The training loop therefore picks the
# thread count from the size of the model's matrix products (see `blas_threads_for`).
_BLAS_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                 "openblas_set_num_threads64_", "openblas_set_num_threads",
                 "MKL_Set_Num_Threads")
_BLAS_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                 "openblas_get_num_threads64_", "openblas_get_num_threads",
                 "MKL_Get_Max_Threads")
_blas_api = None


def _find_blas():
    """Return (setter, getter) ctypes functions of the BLAS NumPy loaded, or (None, None)."""
    global _blas_api
    if _blas_api is not None:
        return _blas_api
    _blas_api = (None, None)
    try:
        import ctypes
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps
                     if ("blas" in line.lower() or "mkl" in line.lower()) and "/" in line}
        for path in sorted(paths):
            lib = ctypes.CDLL(path)
            setter = next((getattr(lib, n) for n in _BLAS_SETTERS if hasattr(lib, n)), None)
            getter = next((getattr(lib, n) for n in _BLAS_GETTERS if hasattr(lib, n)), None)
            if setter is not None and getter is not None:
                getter.restype = ctypes.c_int
                _blas_api = (setter, getter)
                break
    except (OSError, AttributeError, ValueError):  # no /proc (macOS, Windows) or no symbol
        pass
    return _blas_api


def get_blas_threads() -> int | None:
    """Threads the BLAS library uses now, or None when it cannot be controlled."""
    getter = _find_blas()[1]
    return None if getter is None else int(getter())


def set_blas_threads(n: int) -> int | None:
    """Set the BLAS thread count; return the previous one (None when not controllable)."""
    setter, getter = _find_blas()
    if setter is None:
        return None
    previous = int(getter())
    if int(n) != previous:
        setter(int(n))
    return previous


# ---- allocator -------------------------------------------------------------------------------
# NOTE: a training step allocates its activations and gradients and frees them all at its end.
# glibc then hands the freed top of the heap back to the OS (trim threshold 2x the largest
# freed block, i.e. hundreds of KB), so the next step page-faults and zeroes every page again:
# measured here, a batch-norm forward on 256x256 beside a 20-layer step's worth of live arrays
# took 335 us instead of 33 us, and W6 (20 BN layers, batch 256) lost a third of its step.
# Keeping up to _TRIM_KEEP of freed heap (and serving arrays under _MMAP_BELOW from the heap,
# not from fresh mmaps) makes the next step reuse warm pages. Larger arrays still get their
# own mmap, returned when freed: with 32 MiB here instead, W4's peak RSS went from 1.19x to
# 1.54x its need (heap fragmentation, the initializers' float64 draws kept), and a page
# fault per 4 KiB is small next to the products that make arrays of a MiB and more.
_MMAP_BELOW = 1 << 20
_TRIM_KEEP = 64 << 20
_allocator_state = {"tuned": None}


def tune_allocator() -> bool:
    """Make glibc keep freed activation memory for the next step (once per process).

    Skipped (returns False) off glibc, when GLASSNET_MALLOC=default, or when the user set
    MALLOC_TRIM_THRESHOLD_ / MALLOC_MMAP_THRESHOLD_ (their choice wins). Called when a
    model is created; `import glassnet` alone changes nothing.
    """
    if _allocator_state["tuned"] is not None:
        return _allocator_state["tuned"]
    import os
    _allocator_state["tuned"] = False
    if os.environ.get("GLASSNET_MALLOC", "").lower() == "default" or any(
            k in os.environ for k in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")):
        return False
    try:
        import ctypes
        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
            return False  # musl, macOS, Windows: their allocators behave differently
        m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
        ok = libc.mallopt(m_mmap_threshold, _MMAP_BELOW) == 1
        ok = libc.mallopt(m_trim_threshold, _TRIM_KEEP) == 1 and ok
    except (OSError, AttributeError, ValueError):
        return False
    _allocator_state["tuned"] = ok
    return ok


# Below this many multiply-adds per matrix product a second BLAS thread costs more than it
# saves, even on an idle machine (measured on 2 cores: at 32x784x128, 3.2M, two threads
# still make a Fashion-MNIST MLP step 20 % faster; at 32x128x128 they do not).
BLAS_SINGLE_THREAD_BELOW = 2 ** 20
_busy_state = {"t": None, "machine": 0.0, "ours": 0.0, "busy": False}


def _cpu_seconds():
    """(CPU seconds the whole machine has been busy, CPU seconds of this process)."""
    import os
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:9]]
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    times = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), times[0] + times[1]


def machine_busy() -> bool:
    """Whether OTHER processes kept nearly a whole core busy since the last look (>= 1 s).

    Measured as the machine's busy CPU time minus this process's own (all its threads,
    OpenBLAS spinners included), so our own training never makes the machine look busy.
    Falls back to "not busy" where /proc/stat does not exist.
    """
    import time
    state, now = _busy_state, time.monotonic()
    if state["t"] is not None and now - state["t"] < 1.0:
        return state["busy"]
    try:
        machine, ours = _cpu_seconds()
    except (OSError, ValueError, AttributeError):
        return False
    if state["t"] is not None:
        others = ((machine - state["machine"]) - (ours - state["ours"])) / (now - state["t"])
        # NOTE: 0.9, not 0.5: other frameworks' idle thread pools spin-wait and yield the
        # core at once (measured: 2 BLAS threads still win beside them); a real competitor
        # holds a whole core.
        state["busy"] = others > 0.9
    state.update(t=now, machine=machine, ours=ours)
    return state["busy"]


try:  # the first reference sample, so that the first fit() already has a measurement
    machine_busy()
except Exception:  # noqa: BLE001 - never fail an import over a heuristic
    pass


def blas_threads_for(largest_product_macs: int) -> int | None:
    """BLAS threads for products of this size: 1 when they are small or the machine is
    busy, None (the library's default) otherwise."""
    if largest_product_macs < BLAS_SINGLE_THREAD_BELOW or machine_busy():
        return 1
    return None
