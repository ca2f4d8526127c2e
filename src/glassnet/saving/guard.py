"""Limits and errors for untrusted files; bounded JSON and zip reading; atomic writing.

Everything that touches bytes from a file goes through here or `h5safe`: JSON documents
(size-capped), zip members (declared sizes checked, then streamed with a cap), and the
weight budget that stops a config from allocating absurd weights while the model is built.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import tempfile
import zipfile

import numpy as np

from ..errors import GlassnetError
from ..layers.base import WEIGHT_BUDGET


class SavingError(GlassnetError, ValueError):
    """A model or weights file is corrupt, truncated, hostile, unsupported or does not fit
    the model: raised instead of crashing, hanging or returning a partial model."""


@dataclasses.dataclass
class Limits:
    """Caps applied while loading (raise them only for files you trust).

    Args:
        max_array_elements: largest single weight or dataset, in elements.
        max_total_bytes: all weights and arrays read in one load, in bytes.
        max_json_bytes: largest JSON document (config, metadata).
        max_member_bytes: largest zip member read (uncompressed).
        max_layers: most layers in one model config.
        max_sample_elements: most elements of one sample of the declared input shape.
        max_names: most names in one HDF5 name list (layer_names, weight_names).
    """

    max_array_elements: int = 2**31 - 1
    max_total_bytes: int = 4 * 2**30
    max_json_bytes: int = 64 * 2**20
    max_member_bytes: int = 4 * 2**30
    max_layers: int = 20_000
    max_sample_elements: int = 2**28
    max_names: int = 100_000


limits = Limits()


# ---- weight budget -----------------------------------------------------------------------
class Budget:
    """Counts the bytes a load allocates; raises SavingError past the limits."""

    def __init__(self, source: str):
        self.source, self.total = source, 0

    def charge(self, layer_name, weight_name, shape, dtype) -> None:
        """Account for one array of `shape` and `dtype` (checked before it is created)."""
        dims = _shape_tuple(shape, f"weight {weight_name!r} of layer {layer_name!r}")
        n = math.prod(dims)
        nbytes = n * np.dtype(dtype).itemsize
        what = f"layer {layer_name!r} weight {weight_name!r} of shape {dims}"
        if n > limits.max_array_elements:
            raise SavingError(f"{self.source}: refusing to create {what}: {n:,} elements, "
                              f"more than the limit of {limits.max_array_elements:,} "
                              "(glassnet.saving.limits.max_array_elements).")
        self.total += nbytes
        if self.total > limits.max_total_bytes:
            raise SavingError(f"{self.source}: refusing to create {what}: the model would "
                              f"need more than {limits.max_total_bytes:,} bytes of weights "
                              "(glassnet.saving.limits.max_total_bytes).")

    @contextlib.contextmanager
    def active(self):
        """Make layers charge this budget in `add_weight` while the block runs."""
        token = WEIGHT_BUDGET.set(self)
        try:
            yield self
        finally:
            WEIGHT_BUDGET.reset(token)


def _shape_tuple(shape, what) -> tuple:
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise SavingError(f"{what}: shape {shape!r} is not a tuple of integers.") from None
    if any(d < 0 for d in dims):
        raise SavingError(f"{what}: negative dimension in shape {dims}.")
    return dims


def check_batch_shape(shape, what) -> tuple:
    """Validate a declared (batch) input shape: ints or None, a bounded sample size."""
    if not isinstance(shape, (list, tuple)) or not 1 <= len(shape) <= 32:
        raise SavingError(f"{what}: expected a list of 1 to 32 dimensions (batch axis "
                          f"first), received {_short(shape)}.")
    dims = []
    for d in shape:
        if d is None:
            dims.append(None)
            continue
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d) \
                or d != int(d) or d < 0:
            raise SavingError(f"{what}: dimension {_short(d)} is not a non-negative integer "
                              f"or null (shape {_short(shape)}).")
        dims.append(int(d))
    sample = math.prod(1 if d is None else d for d in dims[1:])
    if sample > limits.max_sample_elements:
        raise SavingError(f"{what}: a sample of shape {tuple(dims[1:])} has {sample:,} "
                          f"elements, more than the limit of {limits.max_sample_elements:,}.")
    return tuple(dims)


def _short(value, n=80) -> str:
    text = repr(value)
    return text if len(text) <= n else text[:n] + "…"


# ---- JSON --------------------------------------------------------------------------------
def parse_json(data, what: str):
    """Parse a JSON document of bounded size; any defect becomes a SavingError."""
    if isinstance(data, (bytes, bytearray, np.bytes_)):
        if len(data) > limits.max_json_bytes:
            raise SavingError(f"{what} is {len(data):,} bytes, more than the limit of "
                              f"{limits.max_json_bytes:,}.")
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SavingError(f"{what} is not valid UTF-8 text ({exc}).") from None
    if not isinstance(data, str):
        raise SavingError(f"{what} must be JSON text; received {type(data).__name__}.")
    if len(data) > limits.max_json_bytes:
        raise SavingError(f"{what} is {len(data):,} characters, more than the limit of "
                          f"{limits.max_json_bytes:,}.")
    try:
        return json.loads(data)
    except RecursionError:
        raise SavingError(f"{what} is nested too deeply to be a model config.") from None
    except ValueError as exc:  # JSONDecodeError, int digit limits
        raise SavingError(f"{what} is not valid JSON: {exc}") from None


# ---- zip -----------------------------------------------------------------------------------
def read_zip_members(data_or_path, names, what: str) -> dict:
    """Return {name: bytes} for the wanted members of a zip (missing ones left out).

    Declared sizes are checked first; each member is then streamed with a hard cap, so a
    member that inflates beyond its declared size (a zip bomb) is stopped early.
    """
    try:
        with zipfile.ZipFile(data_or_path) as zf:
            infos = zf.infolist()
            if len(infos) > 10_000:
                raise SavingError(f"{what}: the archive lists {len(infos):,} members.")
            found = {}
            for info in infos:
                if info.filename in names:
                    if info.filename in found:
                        raise SavingError(f"{what}: the archive holds {info.filename!r} "
                                          "twice.")
                    found[info.filename] = info
            out, total = {}, 0
            for name, info in found.items():
                if info.flag_bits & 0x1:
                    raise SavingError(f"{what}: member {name!r} is encrypted.")
                cap = limits.max_json_bytes if name.endswith(".json") else \
                    limits.max_member_bytes
                if info.file_size > cap:
                    raise SavingError(f"{what}: member {name!r} declares {info.file_size:,} "
                                      f"bytes, more than the limit of {cap:,}.")
                total += info.file_size
                if total > limits.max_total_bytes:
                    raise SavingError(f"{what}: the members declare more than "
                                      f"{limits.max_total_bytes:,} bytes in all.")
                out[name] = _read_capped(zf, info, min(cap, info.file_size), what)
            return out
    except SavingError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
            NotImplementedError, RuntimeError, OverflowError, MemoryError) as exc:
        raise SavingError(f"{what} is not a readable .keras (zip) archive: "
                          f"{type(exc).__name__}: {exc}") from None


def _read_capped(zf, info, cap, what) -> bytes:
    chunks, size = [], 0
    with zf.open(info) as stream:
        while True:
            chunk = stream.read(1 << 20)
            if not chunk:
                break
            size += len(chunk)
            if size > cap:
                raise SavingError(f"{what}: member {info.filename!r} inflates past its "
                                  f"declared size of {info.file_size:,} bytes.")
            chunks.append(chunk)
    return b"".join(chunks)


# ---- atomic writes -----------------------------------------------------------------------
_TMP_RE = re.compile(r"^\.(?P<base>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.glassnet-tmp$")


def atomic_write(filepath, write) -> None:
    """Call `write(tmp_path)` on a temporary file beside `filepath`, then rename it over
    `filepath` (os.replace is atomic). On any error, or an interrupt, the temporary file is
    removed and the previous `filepath`, if any, is untouched. Temporary files left by a
    killed process (whose pid no longer runs) are removed on the next save."""
    filepath = os.fspath(filepath)
    directory = os.path.dirname(os.path.abspath(filepath)) or "."
    base = os.path.basename(filepath)
    _remove_stale_temporaries(directory, base)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.{os.getpid()}.", suffix=".glassnet-tmp",
                               dir=directory)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode(filepath))
        os.replace(tmp, filepath)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _file_mode(filepath) -> int:
    try:
        return os.stat(filepath).st_mode & 0o777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _remove_stale_temporaries(directory, base) -> None:
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            match = _TMP_RE.match(name)
            if match and match.group("base") == base and not _alive(int(match.group("pid"))):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(directory, name))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True
    return True


__all__ = ["SavingError", "Limits", "limits", "Budget", "parse_json", "read_zip_members",
           "atomic_write", "check_batch_shape"]
