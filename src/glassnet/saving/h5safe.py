"""Read-only access to untrusted HDF5 files: hard links only, bounded reads.

Every link is checked to be a hard link before it is followed (external and soft links
are refused, so nothing outside the file is ever opened); virtual datasets, external raw
storage and unknown filters are refused; shapes, dtypes and sizes are checked before any
array or attribute is read; heap structures known to hang libhdf5 are refused first.
"""
from __future__ import annotations

import contextlib
import io
import math
import os

import numpy as np

from .guard import Budget, SavingError, _short, limits

_ALLOWED_FILTERS = {1, 2, 3, 32000}  # deflate, shuffle, fletcher32, lzf


def h5py_module():
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a dependency
        raise ImportError("Reading and writing .h5/.keras files needs h5py: "
                          "pip install h5py") from None
    return h5py


class H5Reader:
    """Read-only access to an untrusted HDF5 file: hard links only, bounded reads.

    Args:
        source: a path, or the bytes of an HDF5 file.
        what: how errors name the file.
        budget: the Budget that datasets read are charged to.
    """

    def __init__(self, source, what: str, budget: Budget):
        h5py = h5py_module()
        self.what, self.budget = what, budget
        check_global_heaps(source, what)
        try:
            target = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
            self.file = h5py.File(target, "r")
        except Exception as exc:  # OSError for anything libhdf5 cannot parse
            raise SavingError(f"{what} is not a readable HDF5 file: "
                              f"{type(exc).__name__}: {exc}") from None

    def close(self):
        with contextlib.suppress(Exception):
            self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- navigation --
    def child(self, group, name: str, kind=None):
        """The member `name` of `group` (one path component), or None when absent.

        Only hard links are followed; `kind` is "group" or "dataset" when required.
        """
        h5py = h5py_module()
        if not name or "/" in name or name in (".", ".."):
            raise SavingError(f"{self.what}: invalid HDF5 member name {name!r}.")
        key = name.encode("utf-8")
        try:
            if not group.id.links.exists(key):
                return None
            link_type = group.id.links.get_info(key).type
        except Exception as exc:
            raise SavingError(f"{self.what}: cannot read link {name!r}: {exc}") from None
        if link_type == h5py.h5l.TYPE_EXTERNAL:
            raise SavingError(f"{self.what}: {group.name}/{name} is an external link to "
                              "another file; glassnet does not follow links out of a file.")
        if link_type != h5py.h5l.TYPE_HARD:
            raise SavingError(f"{self.what}: {group.name}/{name} is a soft or user-defined "
                              "link; only plain (hard-linked) groups and datasets are read.")
        try:
            obj = group[name]
        except Exception as exc:
            raise SavingError(f"{self.what}: cannot open {group.name}/{name}: {exc}") from None
        if kind == "group" and not isinstance(obj, h5py.Group):
            raise SavingError(f"{self.what}: {obj.name} should be a group, found a "
                              f"{type(obj).__name__}.")
        if kind == "dataset" and not isinstance(obj, h5py.Dataset):
            raise SavingError(f"{self.what}: {obj.name} should be a dataset, found a "
                              f"{type(obj).__name__}.")
        return obj

    def path(self, group, path: str, kind=None):
        """Follow a '/'-separated `path` below `group` (each step checked); None if absent."""
        parts = [p for p in str(path).split("/") if p]
        if not parts:
            return group
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            group = self.child(group, part, kind if last else "group")
            if group is None:
                return None
        return group

    def names(self, group) -> list:
        """Member names of `group` (links are listed, not followed)."""
        try:
            names = []
            for name in group.id.__iter__():
                names.append(name.decode("utf-8", "replace") if isinstance(name, bytes)
                             else str(name))
                if len(names) > limits.max_names:
                    raise SavingError(f"{self.what}: {group.name} has more than "
                                      f"{limits.max_names:,} members.")
            return names
        except SavingError:
            raise
        except Exception as exc:
            raise SavingError(f"{self.what}: cannot list {group.name}: {exc}") from None

    # -- attributes --
    def attr(self, obj, name: str, default=None):
        """An attribute as str / list of str / number; `default` when absent."""
        try:
            if name not in obj.attrs:
                return default
            aid = obj.attrs.get_id(name)
            count = math.prod(aid.shape or ())
            if count > limits.max_names:
                raise SavingError(f"{self.what}: attribute {name!r} of {obj.name} holds "
                                  f"{count:,} values.")
            # NOTE: checked before reading: a corrupt type can declare gigabyte strings.
            if count * aid.dtype.itemsize > limits.max_json_bytes:
                raise SavingError(f"{self.what}: attribute {name!r} of {obj.name} declares "
                                  f"{count * aid.dtype.itemsize:,} bytes, more than the "
                                  f"limit of {limits.max_json_bytes:,}.")
            value = obj.attrs[name]
        except SavingError:
            raise
        except Exception as exc:
            raise SavingError(f"{self.what}: cannot read attribute {name!r} of {obj.name}: "
                              f"{exc}") from None
        return _plain(value)

    def name_list(self, obj, name: str) -> list:
        """A list of names stored in attribute `name` (or chunks `name0`, `name1`, ...)."""
        value = self.attr(obj, name)
        if value is None:
            value, i = [], 0
            while True:
                chunk = self.attr(obj, f"{name}{i}")
                if chunk is None:
                    break
                value.extend(chunk if isinstance(chunk, list) else [chunk])
                i += 1
                if len(value) > limits.max_names:
                    raise SavingError(f"{self.what}: too many entries in {name!r}.")
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            if isinstance(value, list) and not value:
                return []
            raise SavingError(f"{self.what}: attribute {name!r} of {obj.name} should be a "
                              f"list of names, received {_short(value)}.")
        return value

    # -- datasets --
    def read(self, ds, expected_shape=None, what=None):
        """Read a numeric dataset after checking its storage, dtype and size.

        With `expected_shape`, a different declared shape raises before any data is read.
        """
        h5py = h5py_module()
        what = what or f"{self.what}: dataset {ds.name}"
        if not isinstance(ds, h5py.Dataset):
            raise SavingError(f"{what} is not a dataset.")
        try:
            if ds.is_virtual:
                raise SavingError(f"{what} is a virtual dataset (its data lives in other "
                                  "files); refused.")
            if ds.external:
                raise SavingError(f"{what} keeps its data in external raw files; refused.")
            plist = ds.id.get_create_plist()
            filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
            shape, dtype = tuple(ds.shape or ()), ds.dtype
        except SavingError:
            raise
        except Exception as exc:
            raise SavingError(f"{what} cannot be inspected: {exc}") from None
        bad = [f for f in filters if f not in _ALLOWED_FILTERS]
        if bad:
            raise SavingError(f"{what} uses HDF5 filter(s) {bad}; only deflate, shuffle, "
                              "fletcher32 and lzf are read.")
        if dtype.kind not in "fiub" or dtype.fields is not None or dtype.subdtype is not None:
            raise SavingError(f"{what} has dtype {dtype}; weights must be numeric arrays.")
        if expected_shape is not None and shape != tuple(expected_shape):
            raise SavingError(f"{what} has shape {shape}, expected {tuple(expected_shape)}.")
        self.budget.charge("(file)", ds.name, shape, dtype)
        try:
            return np.asarray(ds[()])
        except Exception as exc:
            raise SavingError(f"{what} cannot be read (corrupt or truncated file): "
                              f"{type(exc).__name__}: {exc}") from None

    def shape_of(self, ds) -> tuple:
        try:
            return tuple(ds.shape or ())
        except Exception as exc:
            raise SavingError(f"{self.what}: cannot read the shape of {ds.name}: {exc}") \
                from None


def check_global_heaps(source, what) -> None:
    """Refuse HDF5 global heaps (where variable-length strings live) that libhdf5 would
    parse forever.

    NOTE: found by tests/test_saving_fuzz.py: libhdf5 (2.0.0 and earlier) walks a heap
    collection object by object, advancing by each object's size; a corrupt free-space
    object of size 0 makes it loop forever inside C, where no timeout can reach. The walk
    is replayed here first, with the same rules, on every "GCOL" collection of the file.
    """
    if isinstance(source, (bytes, bytearray)):
        _check_heaps(memoryview(source).tobytes() if isinstance(source, bytearray)
                     else source, what)
        return
    import mmap
    try:
        with open(source, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                _check_heaps(buf, what)
    except OSError as exc:
        raise SavingError(f"{what} cannot be read: {exc}") from None


def _check_heaps(buf, what) -> None:
    n = len(buf)
    lengths = 8
    for base in (0, 512, 1024, 2048, 4096):  # superblock: its "size of lengths" field
        if buf[base:base + 8] == b"\x89HDF\r\n\x1a\n" and base + 16 <= n:
            lengths = buf[base + 14] if buf[base + 8] in (0, 1) else buf[base + 10]
            break
    if lengths not in (2, 4, 8):
        return  # libhdf5 refuses such a file by itself
    header = obj_header = 8 + lengths
    pos, found = buf.find(b"GCOL"), 0
    while pos != -1:
        found += 1
        if found > 1_000_000:
            raise SavingError(f"{what}: implausibly many HDF5 heap collections.")
        if buf[pos + 4:pos + 8] == b"\x01\x00\x00\x00" and pos + header <= n:
            size = int.from_bytes(buf[pos + 8:pos + 8 + lengths], "little")
            end = pos + size
            if header <= size and end <= n:
                p = pos + header
                while p < end and p + obj_header <= end:
                    index = int.from_bytes(buf[p:p + 2], "little")
                    obj = int.from_bytes(buf[p + 8:p + 8 + lengths], "little")
                    need = obj_header + -(-obj // 8) * 8 if index else obj
                    if need == 0:
                        raise SavingError(f"{what}: corrupt HDF5 global heap at byte {pos} "
                                          "(an empty free-space record).")
                    p += need
        pos = buf.find(b"GCOL", pos + 4)


def _plain(value):
    """h5py attribute values as plain Python: str, list of str, int, float."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return _plain(value[()])
        return [_plain(v) for v in value.tolist()] if value.dtype.kind in "OSU" \
            else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value



__all__ = ["H5Reader", "h5py_module", "check_global_heaps"]
