"""Tests of glassnet.datasets: the embedded Iris data and the Fashion-MNIST loader."""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import urllib.error

import numpy as np
import pytest

from glassnet import datasets
from glassnet.datasets import fashion_mnist, iris

# ---------------------------------------------------------------------------- iris


def test_iris_shapes_dtypes_and_counts():
    (x_train, y_train), (x_test, y_test) = iris.load_data()
    assert x_train.shape == (120, 4) and x_test.shape == (30, 4)
    assert y_train.shape == (120,) and y_test.shape == (30,)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert np.bincount(y_train).tolist() == [40, 40, 40]  # stratified
    assert np.bincount(y_test).tolist() == [10, 10, 10]
    assert np.isfinite(x_train).all() and np.isfinite(x_test).all()


def test_iris_is_fishers_data():
    (x_train, y_train), (x_test, y_test) = iris.load_data(test_split=0.0)
    x = np.concatenate([x_train, x_test])
    y = np.concatenate([y_train, y_test])
    assert x.shape == (150, 4) and np.bincount(y).tolist() == [50, 50, 50]
    np.testing.assert_allclose(x.mean(axis=0), [5.843, 3.057, 3.758, 1.199], atol=5e-4)
    # Rows 35 and 38 of Fisher's table (the two that the UCI file mistypes).
    rows = {tuple(np.round(r, 1)) for r in x[y == 0].astype(np.float64)}
    assert (4.9, 3.1, 1.5, 0.2) in rows and (4.9, 3.6, 1.4, 0.1) in rows


def test_iris_split_is_deterministic_and_a_partition():
    first = iris.load_data(test_split=0.3, seed=7)
    second = iris.load_data(test_split=0.3, seed=7)
    for a, b in zip(first[0] + first[1], second[0] + second[1], strict=True):
        np.testing.assert_array_equal(a, b)
    other = iris.load_data(test_split=0.3, seed=8)
    assert not np.array_equal(first[0][0], other[0][0])
    (x_train, y_train), (x_test, y_test) = first
    assert len(x_train) + len(x_test) == 150 and len(x_test) == 45
    # Train and test together hold every row exactly once.
    all_rows = np.concatenate([np.c_[x_train, y_train], np.c_[x_test, y_test]])
    full = iris.load_data(test_split=0.0)[0]
    key = np.lexsort(all_rows.T)
    full_rows = np.c_[full[0], full[1]]
    np.testing.assert_array_equal(all_rows[key], full_rows[np.lexsort(full_rows.T)])
    # Shuffled, not sorted by class.
    assert not np.all(np.diff(y_train) >= 0)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2])
def test_iris_rejects_bad_split(bad):
    with pytest.raises(ValueError, match="test_split"):
        iris.load_data(test_split=bad)


def test_datasets_package_exposes_submodules():
    assert datasets.iris is iris
    assert datasets.fashion_mnist is fashion_mnist
    assert {"iris", "fashion_mnist"} <= set(dir(datasets))
    with pytest.raises(AttributeError):
        datasets.cifar10  # noqa: B018


# ---------------------------------------------------------------------------- IDX


def _idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_uint8_roundtrip(tmp_path, compress):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = _idx_bytes(array)
    path = tmp_path / "images.idx"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    out = fashion_mnist.read_idx(path)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, array)
    out[0, 0, 0] = 99  # writable, as Keras' arrays are


def test_read_idx_big_endian_types(tmp_path):
    array = np.array([[1.5, -2.0], [3.25, 1e6]], dtype=np.float32)
    path = tmp_path / "floats.idx"
    path.write_bytes(_idx_bytes(array, type_code=0x0D))
    out = fashion_mnist.read_idx(path)
    assert out.dtype == np.float32 and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_read_idx_rejects_bad_magic(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x12\x34\x08\x01" + struct.pack(">I", 3) + b"abc")
    with pytest.raises(fashion_mnist.IDXFormatError, match="not an IDX file"):
        fashion_mnist.read_idx(path)
    path.write_bytes(
        b"\x00\x00\x07\x01" + struct.pack(">I", 3) + b"abc"
    )  # unknown type
    with pytest.raises(ValueError, match="magic number"):
        fashion_mnist.read_idx(path)
    path.write_bytes(b"")
    with pytest.raises(fashion_mnist.IDXFormatError, match="missing"):
        fashion_mnist.read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_rejects_truncated_data(tmp_path, compress):
    raw = _idx_bytes(np.zeros((5, 4, 4), np.uint8))[:-7]
    path = tmp_path / "short.idx"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    with pytest.raises(fashion_mnist.IDXFormatError, match="truncated"):
        fashion_mnist.read_idx(path)


def test_read_idx_rejects_truncated_header_trailing_bytes_and_cut_gzip(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">I", 5))  # 1 of 3 dims
    with pytest.raises(fashion_mnist.IDXFormatError, match="truncated header"):
        fashion_mnist.read_idx(path)
    path.write_bytes(_idx_bytes(np.zeros(3, np.uint8)) + b"\x00")
    with pytest.raises(fashion_mnist.IDXFormatError, match="trailing"):
        fashion_mnist.read_idx(path)
    path.write_bytes(gzip.compress(_idx_bytes(np.zeros(1000, np.uint8)))[:-12])
    with pytest.raises(fashion_mnist.IDXFormatError, match="gzip"):
        fashion_mnist.read_idx(path)


# ------------------------------------------------------------ Fashion-MNIST lookup


def _write_fake_fmnist(directory, n_train=20, n_test=10, compress=True):
    """Four small IDX files with Fashion-MNIST's names (not its shapes)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for key, name in fashion_mnist.FILES.items():
        raw = _idx_bytes(arrays[key])
        if compress:
            (directory / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (directory / name).write_bytes(raw)
    return arrays


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """empty HOME, no system dir, no GLASSNET_DATA, no network."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GLASSNET_DATA", raising=False)
    monkeypatch.delenv("GLASSNET_OFFLINE", raising=False)
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", tmp_path / "nonexistent")

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(fashion_mnist.urllib.request, "urlopen", no_network)
    return tmp_path


@pytest.mark.parametrize("subdir", ["", "fashion-mnist"])
@pytest.mark.parametrize("compress", [True, False])
def test_glassnet_data_lookup(isolated, monkeypatch, subdir, compress):
    root = isolated / "data"
    _write_fake_fmnist(root / subdir if subdir else root, compress=compress)
    assert not fashion_mnist.is_available()
    monkeypatch.setenv("GLASSNET_DATA", str(root))
    assert fashion_mnist.is_available()
    assert fashion_mnist.find_data_dir() == (root / subdir if subdir else root)


def test_load_data_reads_found_files_and_checks_shapes(isolated, monkeypatch):
    root = isolated / "data"
    _write_fake_fmnist(root)
    monkeypatch.setenv("GLASSNET_DATA", str(root))
    # Valid IDX files but not Fashion-MNIST-sized: a clear error, not a bad array.
    with pytest.raises(fashion_mnist.IDXFormatError, match=r"\(60000, 28, 28\)"):
        fashion_mnist.load_data()
    monkeypatch.setattr(
        fashion_mnist,
        "_SHAPES",
        {
            "x_train": (20, 28, 28),
            "y_train": (20,),
            "x_test": (10, 28, 28),
            "y_test": (10,),
        },
    )
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    assert x_train.shape == (20, 28, 28) and x_train.dtype == np.uint8
    assert y_test.tolist() == list(range(10))


def test_lookup_order_prefers_glassnet_data_then_home(isolated, monkeypatch):
    home_dir = isolated / "home" / ".glassnet" / "datasets" / "fashion-mnist"
    _write_fake_fmnist(home_dir)
    assert fashion_mnist.find_data_dir() == home_dir
    env_dir = isolated / "env"
    _write_fake_fmnist(env_dir)
    monkeypatch.setenv("GLASSNET_DATA", str(env_dir))
    assert fashion_mnist.find_data_dir() == env_dir


def test_incomplete_directory_is_skipped(isolated, monkeypatch):
    root = isolated / "data"
    _write_fake_fmnist(root)
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setenv("GLASSNET_DATA", str(root))
    assert not fashion_mnist.is_available()


def test_missing_data_offline_error_says_how_to_get_it(isolated, monkeypatch):
    with pytest.raises(fashion_mnist.DatasetNotFoundError) as info:
        fashion_mnist.load_data()  # download attempted, network refused
    message = str(info.value)
    assert (
        "apt-get install dataset-fashion-mnist" in message
        and "GLASSNET_DATA" in message
    )
    assert "network disabled" in message
    assert isinstance(info.value, FileNotFoundError)
    monkeypatch.setenv("GLASSNET_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="GLASSNET_OFFLINE"):
        fashion_mnist.load_data()


def test_download_verifies_md5_and_caches(isolated, monkeypatch):
    arrays = _write_fake_fmnist(isolated / "server")
    served = {}
    for name in fashion_mnist.FILES.values():
        served[name + ".gz"] = (isolated / "server" / f"{name}.gz").read_bytes()
    md5 = {
        k: hashlib.md5(gzip.decompress(served[n + ".gz"])).hexdigest()
        for k, n in fashion_mnist.FILES.items()
    }
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append(url)
        if url.startswith(fashion_mnist.URLS[0]):  # first mirror down
            raise urllib.error.URLError("mirror down")
        return io.BytesIO(served[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(fashion_mnist.urllib.request, "urlopen", fake_urlopen)
    monkeypatch.setattr(fashion_mnist, "_MD5", md5)
    files = fashion_mnist._download()
    cache = isolated / "home" / ".glassnet" / "datasets" / "fashion-mnist"
    assert all(p.parent == cache for p in files.values()) and len(calls) == 8
    np.testing.assert_array_equal(
        fashion_mnist.read_idx(files["x_train"]), arrays["x_train"]
    )
    assert fashion_mnist.find_data_dir() == cache
    # A corrupted download is rejected and leaves nothing behind.
    for p in files.values():
        p.unlink()
    monkeypatch.setattr(fashion_mnist, "_MD5", {k: "0" * 32 for k in md5})
    with pytest.raises(fashion_mnist.DatasetNotFoundError, match="MD5"):
        fashion_mnist._download()
    assert list(cache.iterdir()) == []


# ------------------------------------------------------------ real Fashion-MNIST

_real_missing = not fashion_mnist.is_available()


@pytest.mark.skipif(
    _real_missing,
    reason="Fashion-MNIST not found: `sudo apt-get install dataset-fashion-mnist` "
    "or set GLASSNET_DATA to a directory with the four IDX files",
)
def test_real_fashion_mnist():
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert np.bincount(y_train, minlength=10).tolist() == [6000] * 10
    assert np.bincount(y_test, minlength=10).tolist() == [1000] * 10
    assert len(fashion_mnist.CLASS_NAMES) == 10
    assert abs(x_train.mean() / 255 - 0.2860) < 1e-3
    # The decompressed content is the standard one (whatever the .gz compression).
    directory = fashion_mnist.find_data_dir()
    for key, name in fashion_mnist.FILES.items():
        path = fashion_mnist._find_file(directory, name)
        raw = path.read_bytes()
        raw = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        assert hashlib.md5(raw).hexdigest() == fashion_mnist._MD5[key], path
