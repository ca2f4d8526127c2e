"""Fashion-MNIST: 70,000 grey 28 x 28 images of clothes, 10 classes (Zalando Research).

`load_data()` matches `keras.datasets.fashion_mnist.load_data()`: same arrays, same
order. The four IDX files (gzipped or not) are looked for, in this order, in:

1. `$GLASSNET_DATA`: a directory holding the four files, or holding `fashion-mnist/`;
2. `~/.glassnet/datasets/fashion-mnist`;
3. `/usr/share/datasets/fashion-mnist` (Debian/Ubuntu:
   `apt-get install dataset-fashion-mnist`).

Only when none has them are they downloaded (into `~/.glassnet/datasets/fashion-mnist`)
and checked against the MD5 of their decompressed content. Set `GLASSNET_OFFLINE=1` to
forbid the download.

IDX format: a 4-byte magic number `0x00 0x00 <type> <ndim>`, then `ndim` big-endian
uint32 sizes, then the values in C order (type 0x08 = uint8, the only one used here).

Reference:
    Xiao, Rasul & Vollgraf (2017). Fashion-MNIST: a novel image dataset for benchmarking
    machine learning algorithms. https://arxiv.org/abs/1708.07747
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from glassnet.errors import GlassnetError

__all__ = [
    "load_data",
    "is_available",
    "find_data_dir",
    "read_idx",
    "CLASS_NAMES",
    "IDXFormatError",
    "DatasetNotFoundError",
]

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_SHAPES = {
    "x_train": (60000, 28, 28),
    "y_train": (60000,),
    "x_test": (10000, 28, 28),
    "y_test": (10000,),
}
# MD5 of the *decompressed* files (Debian recompressed the .gz, the content is equal).
_MD5 = {
    "x_train": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "y_train": "9018921c3c673c538a1fc5bad174d6f9",
    "x_test": "8181f5470baa50b63fa0f6fddb340f0a",
    "y_test": "15d484375f8d13e6eb1aabb0c3f46965",
}
# The official Zalando mirror first, then the copy keras.datasets downloads.
URLS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
)
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
_SUBDIR = "fashion-mnist"

# IDX type code -> big-endian dtype.
_IDX_DTYPES = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}

_HOW_TO_GET = (
    "To get the data: `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu, "
    "installs /usr/share/datasets/fashion-mnist), or put the four files "
    "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
    "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz "
    "(from https://github.com/zalandoresearch/fashion-mnist) in a directory and set "
    "GLASSNET_DATA to it, or copy them to ~/.glassnet/datasets/fashion-mnist."
)


class IDXFormatError(GlassnetError, ValueError):
    """An IDX file is corrupt, truncated or not an IDX file."""


class DatasetNotFoundError(GlassnetError, FileNotFoundError):
    """The dataset is neither on disk nor downloadable."""


def read_idx(path) -> np.ndarray:
    """Reads one IDX file (raw or gzip-compressed) into a NumPy array.

    Gzip is recognised by its magic bytes, not by the file name.

    Args:
        path: Path of the file.

    Returns:
        An array with the shape from the header, in native byte order (uint8 for
        Fashion-MNIST).

    Raises:
        IDXFormatError: if the magic number, the type code or the size is wrong, or the
            gzip stream is damaged.

    Example:
        >>> labels = read_idx(SYSTEM_DIR / "t10k-labels-idx1-ubyte.gz")
        >>> labels.shape, labels.dtype.name
        ((10000,), 'uint8')
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise IDXFormatError(
                f"{path}: damaged or truncated gzip data ({e})."
            ) from None
    return _parse_idx(raw, path)


def _parse_idx(raw: bytes, path) -> np.ndarray:
    """Parse decompressed IDX bytes; every size is checked before any data is read."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise IDXFormatError(
            f"{path}: not an IDX file (magic number {raw[:4].hex() or 'missing'}, "
            f"expected 00 00 <type in {sorted(_IDX_DTYPES)}> <ndim>)."
        )
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXFormatError(
            f"{path}: truncated header ({len(raw)} of {header} bytes)."
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise IDXFormatError(
            f"{path}: {what}: the header announces shape {shape} of {dtype.name} "
            f"({expected} bytes in all) but the file holds {len(raw)} bytes."
        )
    data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # a native, writable copy


def _candidate_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get("GLASSNET_DATA")
    if env:
        root = Path(env).expanduser()
        dirs += [root, root / _SUBDIR]
    dirs += [_cache_dir(), SYSTEM_DIR]
    return dirs


def _cache_dir() -> Path:
    return Path.home() / ".glassnet" / "datasets" / _SUBDIR


def _find_file(directory: Path, name: str) -> Path | None:
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    return None


def _files_in(directory: Path) -> dict[str, Path] | None:
    found = {key: _find_file(directory, name) for key, name in FILES.items()}
    return found if all(found.values()) else None


def find_data_dir() -> Path | None:
    """Returns the first directory holding all four Fashion-MNIST files, or None.

    Looks in `$GLASSNET_DATA`, `$GLASSNET_DATA/fashion-mnist`,
    `~/.glassnet/datasets/fashion-mnist` and `/usr/share/datasets/fashion-mnist`;
    never touches the network.
    """
    for directory in _candidate_dirs():
        if _files_in(directory):
            return directory
    return None


def is_available() -> bool:
    """Returns True when the data is on disk, so `load_data()` needs no download."""
    return find_data_dir() is not None


def load_data():
    """Loads the Fashion-MNIST dataset, as `keras.datasets.fashion_mnist.load_data()`.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: uint8 images of shape (60000, 28, 28)
        and (10000, 28, 28) with values 0-255, and uint8 labels 0-9 (see `CLASS_NAMES`),
        6,000 per class in train and 1,000 per class in test.

    Raises:
        DatasetNotFoundError: if the files are not on disk and cannot be downloaded; the
            message says how to install them.
        IDXFormatError: if a file is corrupt or truncated.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_data()
        >>> x_train.shape, y_train.shape, x_train.dtype.name
        ((60000, 28, 28), (60000,), 'uint8')
    """
    directory = find_data_dir()
    files = _files_in(directory) if directory is not None else _download()
    arrays = {}
    for key, path in files.items():
        array = read_idx(path)
        if array.shape != _SHAPES[key] or array.dtype != np.uint8:
            raise IDXFormatError(
                f"{path}: expected a uint8 array of shape {_SHAPES[key]} for "
                f"Fashion-MNIST {key}, got {array.dtype.name} {array.shape}. "
                f"Replace the file. {_HOW_TO_GET}"
            )
        arrays[key] = array
    train = arrays["x_train"], arrays["y_train"]
    return train, (arrays["x_test"], arrays["y_test"])


def _download() -> dict[str, Path]:
    """Download the four files into the cache, verified; else raise a helpful error."""
    searched = "\n".join(f"  - {d}" for d in _candidate_dirs())
    if os.environ.get("GLASSNET_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise DatasetNotFoundError(
            f"Fashion-MNIST not found in:\n{searched}\nand GLASSNET_OFFLINE forbids "
            f"downloading it. {_HOW_TO_GET}"
        )
    target = _cache_dir()
    files, errors = {}, []
    for key, name in FILES.items():
        for base in URLS:
            try:
                files[key] = _fetch(
                    base + name + ".gz", target / (name + ".gz"), _MD5[key]
                )
                break
            # URLError, HTTPError, BadGzipFile are OSErrors; a cut-off .gz an EOFError.
            except (OSError, EOFError, ValueError, zlib.error) as e:
                errors.append(f"  - {base}{name}.gz: {e}")
        else:
            failures = "\n".join(errors)
            raise DatasetNotFoundError(
                f"Fashion-MNIST not found in:\n{searched}\nand downloading failed:\n"
                f"{failures}\n{_HOW_TO_GET}"
            )
    return files


def _fetch(url: str, dest: Path, md5: str) -> Path:
    """Download `url` to `dest` atomically, after checking the decompressed MD5."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")
    try:
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(url, timeout=30) as resp,
        ):
            shutil.copyfileobj(resp, out)
        with gzip.open(tmp, "rb") as f:
            digest = hashlib.md5(f.read(), usedforsecurity=False).hexdigest()
        if digest != md5:
            raise ValueError(
                f"MD5 of the decompressed file is {digest}, expected {md5}"
            )
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest
