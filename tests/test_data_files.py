"""Image datasets read from files (IDX, CIFAR-10 binary, npz), the named datasets found on disk, load_splits,
and the crop-and-flip augmentation. Tiny synthetic files are written into tmp_path; the real Fashion-MNIST and
CIFAR-10 (JPEG) archives beside the repository are read when they are there."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from archscout.data import (
    DEFAULT_FRACTIONS,
    ArrayDataset,
    Augment,
    Splits,
    as_splits,
    clear_cache,
    dataset_info,
    detect_layout,
    find_dataset,
    list_datasets,
    load_cifar10_binary,
    load_dataset,
    load_idx_folder,
    load_npz,
    load_splits,
    make_splits,
    read_cifar10_batch,
    read_idx,
    stratified_choice,
)
from archscout.data import files as data_files
from archscout.errors import ConfigError, DataError, UnknownNameError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FASHION_NPZ = SHARED / "fashion-mnist" / "fashion_mnist.npz"
CIFAR_JPEG_NPZ = SHARED / "cifar10-jpeg" / "cifar10_jpeg.npz"

IDX_CODES = {"u1": 0x08, "i1": 0x09, ">i2": 0x0B, ">i4": 0x0C, ">f4": 0x0D, ">f8": 0x0E}


# --- writers of tiny files -----------------------------------------------------------------------
def idx_bytes(a: np.ndarray, dtype: str = "u1") -> bytes:
    a = np.asarray(a, dtype=dtype)
    head = bytes([0, 0, IDX_CODES[dtype], a.ndim]) + np.asarray(a.shape, ">u4").tobytes()
    return head + a.tobytes()


def write_idx(path: Path, a: np.ndarray, dtype: str = "u1") -> Path:
    raw = idx_bytes(a, dtype)
    path.write_bytes(gzip.compress(raw, compresslevel=1) if path.suffix == ".gz" else raw)
    return path


def labels_for(n: int, k: int = 10) -> np.ndarray:
    """n labels, every class of k present, a little imbalanced (class c gets more the smaller c is)."""
    y = np.arange(n) % k
    y[: n // 5] = np.arange(n // 5) % max(1, k // 2)  # the first classes are overrepresented
    return y.astype(np.uint8)


def images_for(y: np.ndarray, hw: tuple[int, int] = (28, 28), offset: int = 0) -> np.ndarray:
    """uint8 images whose first two pixels encode their index (so each image can be recognised) and whose
    third pixel is the label."""
    x = np.zeros((len(y), *hw), np.uint8)
    idx = np.arange(len(y)) + offset
    x[:, 0, 0], x[:, 0, 1], x[:, 0, 2] = idx % 256, idx // 256, y
    return x


def write_idx_folder(folder: Path, n_train: int = 60, n_test: int = 20, hw: tuple[int, int] = (28, 28),
                     gz: bool = True, k: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    y_tr, y_te = labels_for(n_train, k), labels_for(n_test, k)
    x_tr, x_te = images_for(y_tr, hw), images_for(y_te, hw, offset=n_train)
    write_idx(folder / f"train-images-idx3-ubyte{ext}", x_tr)
    write_idx(folder / f"train-labels-idx1-ubyte{ext}", y_tr)
    write_idx(folder / f"t10k-images-idx3-ubyte{ext}", x_te)
    write_idx(folder / f"t10k-labels-idx1-ubyte{ext}", y_te)
    return x_tr, y_tr, x_te, y_te


def cifar_records(n: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(start)
    y = ((np.arange(n) + start) % 10).astype(np.uint8)
    x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    return x, y


def write_cifar_batch(path: Path, x: np.ndarray, y: np.ndarray) -> Path:
    path.write_bytes(np.concatenate([y[:, None], x.reshape(len(y), -1)], axis=1).astype(np.uint8).tobytes())
    return path


def write_cifar_folder(folder: Path, per_batch: int = 10, n_test: int = 10) -> tuple[np.ndarray, ...]:
    folder.mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for i in range(1, 6):
        x, y = cifar_records(per_batch, start=i * per_batch)
        write_cifar_batch(folder / f"data_batch_{i}.bin", x, y)
        xs.append(x)
        ys.append(y)
    x_te, y_te = cifar_records(n_test, start=1000)
    write_cifar_batch(folder / "test_batch.bin", x_te, y_te)
    return np.concatenate(xs), np.concatenate(ys), x_te, y_te


def write_npz(path: Path, **arrays: np.ndarray) -> Path:
    with path.open("wb") as f:
        np.savez(f, **arrays)
    return path


def official_npz(path: Path, n_train: int = 200, n_test: int = 50, k: int = 10) -> Path:
    """An npz whose images encode their index: train image i has pixel (0, 0) = i, test image j has -1 - j."""
    y_tr, y_te = labels_for(n_train, k).astype(np.int64), labels_for(n_test, k).astype(np.int64)
    x_tr = np.zeros((n_train, 1, 4, 4), np.float32)
    x_te = np.zeros((n_test, 1, 4, 4), np.float32)
    x_tr[:, 0, 0, 0] = np.arange(n_train)
    x_te[:, 0, 0, 0] = -1 - np.arange(n_test)
    return write_npz(path, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


# --- read_idx ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", list(IDX_CODES))
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips_every_type_plain_and_gzip(tmp_path, dtype, gz):
    a = (np.arange(2 * 3 * 5).reshape(2, 3, 5) - 7).astype(dtype) if dtype not in ("u1",) else \
        np.arange(30, dtype=np.uint8).reshape(2, 3, 5)
    out = read_idx(write_idx(tmp_path / ("f.idx" + (".gz" if gz else "")), a, dtype))
    assert out.shape == (2, 3, 5) and out.dtype == np.dtype(dtype).newbyteorder("=")
    assert np.array_equal(out, a)
    out[0, 0, 0] = 1  # a new, writable array


def test_read_idx_reads_gzip_data_whatever_the_suffix(tmp_path):
    p = tmp_path / "labels-idx1-ubyte"
    p.write_bytes(gzip.compress(idx_bytes(np.array([3, 1, 2], np.uint8))))
    assert read_idx(p).tolist() == [3, 1, 2]


@pytest.mark.parametrize("raw, match", [
    (None, "no such file"),
    (b"\x00\x00", "too short for an IDX header"),
    (b"\x01\x02\x08\x01" + np.array([2], ">u4").tobytes() + b"ab", r"wrong IDX magic number 0x01020801.*two zero"),
    (b"\x00\x00\x07\x01" + np.array([2], ">u4").tobytes() + b"ab", "unknown IDX type code 0x07"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x03" + np.array([2], ">u4").tobytes(), r"truncated.*header"),
    (b"\x00\x00\x08\x02" + np.array([2, 3], ">u4").tobytes() + b"abcd", r"truncated: .*\(2, 3\) \(6 bytes.*only 4"),
    (b"\x00\x00\x0b\x01" + np.array([2], ">u4").tobytes() + b"abc", r"truncated: .*4 bytes of data.*only 3"),
    (b"\x00\x00\x08\x01" + np.array([2], ">u4").tobytes() + b"abcd", r"2 bytes more than its dimensions \(2,\)"),
    (gzip.compress(b"\x00\x00\x08\x01" + b"\x00" * 50)[:-12], "corrupt or truncated gzip"),
])
def test_read_idx_malformed_files_raise_one_line_data_errors(tmp_path, raw, match):
    p = tmp_path / "train-images-idx3-ubyte"
    if raw is not None:
        p.write_bytes(raw)
    with pytest.raises(DataError, match=match) as e:
        read_idx(p)
    assert str(p) in one_line(e)


# --- IDX folders -----------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_folder_gives_scaled_nchw_train_and_test(tmp_path, gz):
    x_tr, y_tr, x_te, y_te = write_idx_folder(tmp_path, n_train=40, n_test=20, hw=(5, 7), gz=gz)
    train, test = load_idx_folder(tmp_path, name="tiny")
    assert isinstance(train, ArrayDataset) and train.name == test.name == "tiny"
    assert train.X.shape == (40, 1, 5, 7) and test.X.shape == (20, 1, 5, 7)
    assert train.X.dtype == np.float32 and train.y.dtype == np.int64
    assert np.array_equal(train.X[:, 0], x_tr.astype(np.float32) / 255.0)
    assert np.array_equal(test.X[:, 0], x_te.astype(np.float32) / 255.0)
    assert np.array_equal(test.y, y_te) and np.array_equal(train.y, y_tr)
    assert train.X.min() >= 0.0 and train.X.max() <= 1.0


def test_load_idx_folder_mixed_plain_and_gzip(tmp_path):
    write_idx_folder(tmp_path, gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(gzip.decompress((tmp_path / "t10k-labels-idx1-ubyte.gz")
                                                                      .read_bytes()))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    train, test = load_idx_folder(tmp_path)
    assert len(train) == 60 and len(test) == 20 and train.name == "fashion-mnist"


def test_load_idx_folder_errors(tmp_path):
    with pytest.raises(DataError, match="no such folder") as e:
        load_idx_folder(tmp_path / "nope")
    one_line(e)
    write_idx_folder(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"missing IDX file\(s\) train-labels-idx1-ubyte\[.gz\], "
                                        r"t10k-images-idx3-ubyte\[.gz\]") as e:
        load_idx_folder(tmp_path)
    assert str(tmp_path) in one_line(e)


@pytest.mark.parametrize("break_it, match", [
    (lambda d: write_idx(d / "train-labels-idx1-ubyte.gz", np.arange(59) % 10), "60 images but .* 59 labels"),
    (lambda d: write_idx(d / "train-images-idx3-ubyte.gz", np.zeros((60, 28 * 28), np.uint8)),
     r"IDX images of 2 dimensions \(60, 784\); expected 3"),
    (lambda d: write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros((60, 2), np.uint8)),
     "IDX labels of 2 dimensions"),
    (lambda d: write_idx(d / "t10k-labels-idx1-ubyte.gz", np.arange(20) % 11), "test labels out of range: 10"),
    (lambda d: write_idx(d / "train-labels-idx1-ubyte.gz", (np.arange(60) % 10) * 2), "class 1 has no samples"),
    (lambda d: (d / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x08\x03" * 10), "wrong IDX magic number"),
])
def test_load_idx_folder_malformed_contents(tmp_path, break_it, match):
    write_idx_folder(tmp_path)
    break_it(tmp_path)
    with pytest.raises(DataError, match=match) as e:
        load_idx_folder(tmp_path)
    assert str(tmp_path) in one_line(e)


# --- CIFAR-10 binary -------------------------------------------------------------------------------
@pytest.mark.parametrize("sub", ["", "cifar-10-batches-bin"])
def test_load_cifar10_binary_reads_channel_major_records(tmp_path, sub):
    x_tr, y_tr, x_te, y_te = write_cifar_folder(tmp_path / sub if sub else tmp_path)
    train, test = load_cifar10_binary(tmp_path)
    assert train.X.shape == (50, 3, 32, 32) and test.X.shape == (10, 3, 32, 32) and train.name == "cifar10"
    assert np.array_equal(train.X, x_tr.astype(np.float32) / 255.0) and np.array_equal(train.y, y_tr)
    assert np.array_equal(test.X, x_te.astype(np.float32) / 255.0) and np.array_equal(test.y, y_te)
    # byte 1 of a record is the red pixel (0, 0), byte 1 + 1024 the green one, byte 1 + 32 red (1, 0)
    raw = (tmp_path / sub / "test_batch.bin").read_bytes() if sub else (tmp_path / "test_batch.bin").read_bytes()
    x, _ = read_cifar10_batch(tmp_path / sub / "test_batch.bin")
    assert x[0, 0, 0, 0] == raw[1] and x[0, 1, 0, 0] == raw[1 + 1024] and x[0, 0, 1, 0] == raw[1 + 32]


def test_cifar10_missing_batches_are_listed(tmp_path):
    write_cifar_folder(tmp_path)
    (tmp_path / "data_batch_2.bin").unlink()
    (tmp_path / "test_batch.bin").unlink()
    with pytest.raises(DataError, match=r"missing CIFAR-10 binary batch\(es\) data_batch_2.bin, test_batch.bin; "
                                        r"download the binary version from https://www.cs.toronto.edu") as e:
        load_cifar10_binary(tmp_path)
    one_line(e)
    empty = tmp_path / "py"
    empty.mkdir()
    (empty / "data_batch_1").write_bytes(b"pickle")
    with pytest.raises(DataError, match=r"Python \(pickle\) version"):
        load_cifar10_binary(empty)
    with pytest.raises(DataError, match="no such folder"):
        load_cifar10_binary(tmp_path / "none")


def test_cifar10_malformed_batches(tmp_path):
    write_cifar_folder(tmp_path)
    p = tmp_path / "data_batch_3.bin"
    p.write_bytes(p.read_bytes()[:-5])
    with pytest.raises(DataError, match=r"data_batch_3.bin: 30725 bytes, not a positive multiple of 3073") as e:
        load_cifar10_binary(tmp_path)
    assert "CIFAR-100" in one_line(e)
    p.write_bytes(b"")
    with pytest.raises(DataError, match="0 bytes, not a positive multiple"):
        load_cifar10_binary(tmp_path)
    x, y = cifar_records(10)
    y[4] = 12
    write_cifar_batch(p, x, y)
    with pytest.raises(DataError, match="labels out of range: record 4 has label 12") as e:
        load_cifar10_binary(tmp_path)
    assert "data_batch_3.bin" in one_line(e)


# --- npz ---------------------------------------------------------------------------------------------
def test_detect_layout():
    assert detect_layout((5, 28, 28)) == "NHW"
    assert detect_layout((5, 32, 32, 3)) == "NHWC"
    assert detect_layout((5, 28, 28, 1)) == "NHWC"
    assert detect_layout((5, 3, 32, 32)) == "NCHW"
    assert detect_layout((5, 4, 8, 8)) == "NCHW"
    assert detect_layout((5, 3, 3, 3)) == "NCHW"  # ambiguous: channels first
    assert detect_layout((5, 1, 1, 1)) == "NCHW"
    assert detect_layout((5, 8, 8, 8)) is None
    assert detect_layout((5, 64)) is None and detect_layout((5, 1, 2, 3, 4)) is None


def test_load_npz_layouts_and_dtypes(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(12) % 3
    nhwc = rng.integers(0, 256, (12, 6, 5, 3), dtype=np.uint8)
    train, test = load_npz(write_npz(tmp_path / "a.npz", x_train=nhwc, y_train=y, x_test=nhwc[:6], y_test=y[:6]))
    assert train.X.shape == (12, 3, 6, 5) and train.name == "a" and test.X.shape == (6, 3, 6, 5)
    assert np.array_equal(train.X, nhwc.transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
    nchw = rng.random((12, 3, 6, 5)).astype(np.float64) * 7  # float pixels: kept, not rescaled
    train, _ = load_npz(write_npz(tmp_path / "b.npz", x_train=nchw, y_train=y[:, None], x_test=nchw, y_test=y))
    assert train.X.shape == (12, 3, 6, 5) and np.allclose(train.X, nchw) and train.y.shape == (12,)
    nhw = rng.integers(0, 256, (12, 4, 4), dtype=np.uint8)
    train, _ = load_npz(write_npz(tmp_path / "c.npz", x_train=nhw, y_train=y, x_test=nhw, y_test=y))
    assert train.X.shape == (12, 1, 4, 4) and train.X.max() <= 1.0
    gray = rng.integers(0, 256, (12, 7, 7, 1), dtype=np.uint8)
    train, _ = load_npz(write_npz(tmp_path / "d.npz", x_train=gray, y_train=y, x_test=gray, y_test=y))
    assert train.X.shape == (12, 1, 7, 7)


@pytest.mark.parametrize("arrays, match", [
    ({"x_train": np.zeros((4, 3, 3)), "y_train": np.arange(4) % 2, "x_test": np.zeros((2, 3, 3))},
     r"lacks y_test \(it holds x_train, y_train, x_test\); save the arrays with np.savez"),
    ({"x_train": np.zeros((4, 3, 3)), "y_train": np.arange(5) % 2, "x_test": np.zeros((2, 3, 3)),
      "y_test": np.arange(2)}, "x_train has 4 images but y_train has 5 labels"),
    ({"x_train": np.zeros((4, 3, 3)), "y_train": np.arange(4) % 2, "x_test": np.zeros((3, 3, 3)),
      "y_test": np.arange(2)}, "x_test has 3 images but y_test has 2 labels"),
    ({"x_train": np.zeros((4, 8, 8, 8)), "y_train": np.arange(4) % 2, "x_test": np.zeros((2, 8, 8, 8)),
      "y_test": np.arange(2)}, r"x_train has shape \(4, 8, 8, 8\), an unrecognised layout"),
    ({"x_train": np.zeros((4, 64)), "y_train": np.arange(4) % 2, "x_test": np.zeros((2, 64)),
      "y_test": np.arange(2)}, "unrecognised layout.*reshape flat vectors"),
    ({"x_train": np.zeros((4, 3, 3)), "y_train": np.arange(4) % 2, "x_test": np.zeros((2, 3, 3)),
      "y_test": np.array([0, 2])}, r"test labels out of range: 2.*0 \.\. 1"),
    ({"x_train": np.zeros((4, 3, 3)), "y_train": np.arange(4) % 2, "x_test": np.zeros((2, 3, 4)),
      "y_test": np.arange(2)}, r"x_test holds images of shape \(1, 3, 4\)"),
    ({"x_train": np.zeros((4, 3, 3)), "y_train": np.arange(4) - 1, "x_test": np.zeros((2, 3, 3)),
      "y_test": np.arange(2)}, "labels must be"),
    ({"x_train": np.array([None] * 4), "y_train": np.arange(4) % 2, "x_test": np.zeros((2, 3, 3)),
      "y_test": np.arange(2)}, r"cannot be read as an .npz archive of plain arrays \(Object arrays"),
])
def test_load_npz_malformed(tmp_path, arrays, match):
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    with pytest.raises(DataError, match=match) as e:
        load_npz(p)
    assert str(p) in one_line(e)


def test_load_npz_missing_or_not_an_archive(tmp_path):
    with pytest.raises(DataError, match="no such file; give an .npz file with arrays x_train"):
        load_npz(tmp_path / "none.npz")
    p = tmp_path / "text.npz"
    p.write_text("hello")
    with pytest.raises(DataError, match="cannot be read as an .npz archive") as e:
        load_npz(p)
    one_line(e)
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(DataError, match=r"a single .npy array, not an .npz archive"):
        load_npz(tmp_path / "one.npy")


# --- load_splits ------------------------------------------------------------------------------------
def ids(X: np.ndarray) -> np.ndarray:
    return X[:, 0, 0, 0].astype(np.int64)


def test_load_splits_official_test_val_and_subset(tmp_path):
    p = official_npz(tmp_path / "toy.npz", n_train=200, n_test=50)
    y_all = np.load(p)["y_train"]
    s = load_splits(p, train_subset=60, val_size=40, seed=3)
    assert isinstance(s, Splits) and s.name == "toy" and s.seed == 3
    assert s.sizes() == {"train": 60, "val": 40, "test": 50}
    assert s.input_shape == (1, 4, 4) and s.num_classes == 10
    # the official test set, in file order; train and val are disjoint and come from the training set
    assert np.array_equal(ids(s.X_test), -1 - np.arange(50))
    tr, va = ids(s.X_train), ids(s.X_val)
    assert len(set(tr)) == 60 and len(set(va)) == 40 and not set(tr) & set(va) and min(tr.min(), va.min()) >= 0
    assert np.array_equal(s.y_train, y_all[tr]) and np.array_equal(s.y_val, y_all[va])
    # stratified: each class within one image of its proportional share
    share = np.bincount(y_all, minlength=10) / len(y_all)
    for y, n in ((s.y_train, 60), (s.y_val, 40)):
        assert np.abs(np.bincount(y, minlength=10) - share * n).max() < 1.0
    # read-only arrays, fractions as shares
    with pytest.raises(ValueError):
        s.X_train[0, 0, 0, 0] = 1.0
    assert abs(sum(s.fractions) - 1.0) < 1e-5 and s.to_config()["sizes"] == s.sizes()


def test_load_splits_is_deterministic_and_seeded(tmp_path):
    p = official_npz(tmp_path / "toy.npz")
    a, b = load_splits(p, train_subset=50, val_size=30, seed=0), load_splits(p, train_subset=50, val_size=30, seed=0)
    for k in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"):
        assert np.array_equal(getattr(a, k), getattr(b, k))
    c = load_splits(p, train_subset=50, val_size=30, seed=1)
    assert not np.array_equal(ids(a.X_val), ids(c.X_val)) and not np.array_equal(ids(a.X_train), ids(c.X_train))
    assert np.array_equal(a.X_test, c.X_test)
    # the validation split does not depend on train_subset
    d = load_splits(p, train_subset=10, val_size=30, seed=0)
    assert np.array_equal(ids(d.X_val), ids(a.X_val))


def test_load_splits_all_of_train_and_fractional_val(tmp_path):
    p = official_npz(tmp_path / "toy.npz", n_train=200)
    s = load_splits(p, val_size=0.1)
    assert s.sizes() == {"train": 180, "val": 20, "test": 50}
    assert sorted(ids(s.X_train).tolist() + ids(s.X_val).tolist()) == list(range(200))
    assert not np.array_equal(ids(s.X_train), np.sort(ids(s.X_train)))  # shuffled, classes mixed
    assert load_splits(p, val_size=0.001).sizes()["val"] == 1  # at least one image


def test_load_splits_is_cached_and_reloads_changed_files(tmp_path):
    p = official_npz(tmp_path / "toy.npz", n_train=100)
    a, b = load_splits(p, val_size=10), load_splits(str(p), val_size=10, seed=5)
    assert a.X_test is b.X_test  # one load
    official_npz(p, n_train=120)
    assert load_splits(p, val_size=10).sizes()["train"] == 110


@pytest.mark.parametrize("kwargs, match", [
    ({"train_subset": 0}, "train_subset must be None"), ({"train_subset": 2.5}, "train_subset"),
    ({"train_subset": True}, "train_subset"), ({"val_size": 0}, "val_size must be >= 1"),
    ({"val_size": 1.0}, r"val_size as a fraction.*\(0, 1\)"), ({"val_size": "5"}, "val_size must be"),
    ({"val_size": True}, "val_size must be"), ({"seed": -1}, "seed must be an integer >= 0"),
    ({"seed": 1.5}, "seed"),
])
def test_load_splits_bad_arguments_are_config_errors(tmp_path, kwargs, match):
    p = official_npz(tmp_path / "toy.npz")
    with pytest.raises(ConfigError, match=match):
        load_splits(p, **kwargs)


def test_load_splits_sizes_larger_than_the_data(tmp_path):
    p = official_npz(tmp_path / "toy.npz", n_train=200)
    with pytest.raises(DataError, match=r"asks for 200 validation images but the training set holds only 200") as e:
        load_splits(p, val_size=200)
    one_line(e)
    with pytest.raises(DataError, match=r"train_subset=181 but only 180 training images are left \(200 in the "
                                        r"training set, 20 for validation\)"):
        load_splits(p, val_size=20, train_subset=181)
    assert load_splits(p, val_size=20, train_subset=180).sizes()["train"] == 180


def test_load_splits_sources_and_bad_sources(tmp_path):
    rng = np.random.default_rng(0)
    d = ArrayDataset(rng.random((100, 1, 4, 4)), np.arange(100) % 4, name="mine")
    s = load_splits(d, seed=2)
    ref = make_splits(d, DEFAULT_FRACTIONS, 2)
    assert s.name == "mine" and np.array_equal(s.X_test, ref.X_test) and np.array_equal(s.X_train, ref.X_train)
    sub = load_splits(d, seed=2, train_subset=20)
    assert sub.sizes() == {"train": 20, "val": ref.sizes()["val"], "test": ref.sizes()["test"]}
    assert np.array_equal(sub.X_val, ref.X_val) and np.bincount(sub.y_train).tolist() == [5, 5, 5, 5]
    assert {r.tobytes() for r in sub.X_train} <= {r.tobytes() for r in ref.X_train}
    with pytest.raises(DataError, match=r"train_subset=61 but its train split holds only 60 images"):
        load_splits(d, train_subset=61)
    assert load_splits(ref) is ref
    with pytest.raises(ConfigError, match="data must be a dataset name"):
        load_splits(3)
    with pytest.raises(UnknownNameError, match="did you mean 'fashion-mnist'"):
        load_splits("fashion-mnst")
    with pytest.raises(DataError, match="no such file or folder"):
        load_splits(str(tmp_path / "none.npz"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="unrecognised dataset layout") as e:
        load_splits(tmp_path / "empty")
    one_line(e)


def test_load_splits_on_folders_names_them_by_stem(tmp_path):
    write_idx_folder(tmp_path / "mnistish", n_train=100, n_test=20, hw=(6, 6))
    s = load_splits(tmp_path / "mnistish", val_size=20, train_subset=50)
    assert s.name == "mnistish" and s.sizes() == {"train": 50, "val": 20, "test": 20} and s.input_shape == (1, 6, 6)
    write_cifar_folder(tmp_path / "c10" / "cifar-10-batches-bin")
    s = load_splits(tmp_path / "c10", val_size=10)
    assert s.name == "c10" and s.sizes() == {"train": 40, "val": 10, "test": 10} and s.input_shape == (3, 32, 32)
    assert np.bincount(s.y_val).tolist() == [1] * 10


def test_stratified_choice_is_exact_and_proportional():
    y = np.array([0] * 50 + [1] * 30 + [2] * 20)
    chosen, rest = stratified_choice(y, 10, np.random.default_rng(0))
    assert np.bincount(y[chosen]).tolist() == [5, 3, 2] and len(rest) == 90
    assert sorted(chosen.tolist() + rest.tolist()) == list(range(100))
    chosen, _ = stratified_choice(y, 7, np.random.default_rng(0))  # 3.5, 2.1, 1.4: remainders decide
    assert np.bincount(y[chosen], minlength=3).tolist() == [4, 2, 1]
    with pytest.raises(ConfigError):
        stratified_choice(y, 101, np.random.default_rng(0))


def test_digits_go_through_make_splits():
    pytest.importorskip("sklearn")
    s = load_splits("digits")
    ref = as_splits("digits")
    assert s.sizes() == ref.sizes() and np.array_equal(s.X_test, ref.X_test) and s.name == "digits"
    assert load_splits("digits", train_subset=100).sizes()["train"] == 100


# --- named datasets found on disk -------------------------------------------------------------------
def test_registry_lists_the_file_datasets():
    assert {"digits", "mnist5k", "fashion-mnist", "cifar10"} <= set(list_datasets())
    fm, c10 = dataset_info("fashion-mnist"), dataset_info("cifar10")
    assert (fm.input_shape, fm.num_classes, fm.size, fm.official_test) == ((1, 28, 28), 10, 70000, True)
    assert (c10.input_shape, c10.num_classes, c10.size) == ((3, 32, 32), 10, 60000)
    assert not dataset_info("digits").official_test


@pytest.mark.parametrize("sub", ["", "fashion-mnist"])
def test_fashion_mnist_found_through_the_environment(tmp_path, monkeypatch, sub):
    _, _, x_te, y_te = write_idx_folder(tmp_path / sub if sub else tmp_path, n_train=5100, n_test=30)
    monkeypatch.setenv("ARCHSCOUT_DATA", str(tmp_path))
    assert find_dataset("fashion-mnist") == (tmp_path / sub if sub else tmp_path)
    train = load_dataset("fashion-mnist")  # the official training set
    assert len(train) == 5100 and train.input_shape == (1, 28, 28) and train.name == "fashion-mnist"
    s = as_splits("fashion-mnist", seed=1)  # through load_splits: 10 % for validation, the official test
    assert s.name == "fashion-mnist" and s.sizes() == {"train": 4590, "val": 510, "test": 30}
    assert np.array_equal(s.X_test[:, 0], x_te / np.float32(255.0)) and np.array_equal(s.y_test, y_te)
    s2 = load_splits("fashion-mnist", val_size=100, train_subset=500, seed=1)
    assert s2.sizes() == {"train": 500, "val": 100, "test": 30}
    with pytest.raises(ConfigError, match="official test split, so fractions do not apply"):
        as_splits("fashion-mnist", fractions=(0.8, 0.1, 0.1))


def test_fashion_mnist_npz_and_explicit_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("ARCHSCOUT_DATA", raising=False)
    monkeypatch.setattr(data_files, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "usr-share")
    write_idx_folder(tmp_path / "usr-share", n_train=30, n_test=10)
    assert find_dataset("fashion-mnist") == tmp_path / "usr-share"  # Debian's place, last resort
    y = np.arange(40) % 10
    write_npz(tmp_path / "fashion_mnist.npz", x_train=np.zeros((40, 28, 28, 1), np.uint8), y_train=y,
              x_test=np.zeros((20, 28, 28, 1), np.uint8), y_test=y[:20])
    monkeypatch.setenv("ARCHSCOUT_DATA", str(tmp_path))
    assert find_dataset("fashion-mnist") == tmp_path / "fashion_mnist.npz"
    train, test = data_files.load_fashion_mnist()
    assert len(train) == 40 and len(test) == 20 and train.name == test.name == "fashion-mnist"
    train, _ = data_files.load_fashion_mnist(tmp_path / "usr-share")  # explicit: only there
    assert len(train) == 30
    write_idx_folder(tmp_path / "small", n_train=30, n_test=10, hw=(8, 8))
    with pytest.raises(DataError, match=r"shape \(1, 8, 8\) .*fashion-mnist has \(1, 28, 28\).*right folder"):
        data_files.load_fashion_mnist(tmp_path / "small")


def test_named_datasets_not_found_say_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOUT_DATA", str(tmp_path))
    monkeypatch.setattr(data_files, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "no-system-dir")
    with pytest.raises(DataError, match="fashion-mnist not found: looked in") as e:
        load_splits("fashion-mnist")
    msg = one_line(e)
    assert str(tmp_path / "fashion-mnist") in msg and str(tmp_path / "no-system-dir") in msg
    assert "--data PATH" in msg and "ARCHSCOUT_DATA" in msg and "apt-get install dataset-fashion-mnist" in msg
    with pytest.raises(DataError, match="cifar10 not found: looked in") as e:
        load_dataset("cifar10")
    msg = one_line(e)
    assert str(tmp_path / "cifar10") in msg and "cifar-10-binary.tar.gz" in msg and "--data PATH" in msg
    monkeypatch.delenv("ARCHSCOUT_DATA")
    with pytest.raises(DataError, match=r"looked in nowhere \(\$ARCHSCOUT_DATA is not set\)"):
        find_dataset("cifar10")


@pytest.mark.parametrize("layout", ["cifar10", "cifar-10-batches-bin", "", "cifar10/cifar-10-batches-bin"])
def test_cifar10_found_through_the_environment(tmp_path, monkeypatch, layout):
    _, _, x_te, y_te = write_cifar_folder(tmp_path / layout if layout else tmp_path)
    monkeypatch.setenv("ARCHSCOUT_DATA", str(tmp_path))
    s = load_splits("cifar10", val_size=20, seed=4)
    assert s.name == "cifar10" and s.sizes() == {"train": 30, "val": 20, "test": 10}
    assert np.array_equal(s.y_test, y_te) and np.array_equal(s.X_test, x_te / np.float32(255.0))


def test_partial_named_folder_is_an_error_not_skipped(tmp_path, monkeypatch):
    write_cifar_folder(tmp_path / "cifar10")
    (tmp_path / "cifar10" / "data_batch_5.bin").unlink()
    monkeypatch.setenv("ARCHSCOUT_DATA", str(tmp_path))
    with pytest.raises(DataError, match=r"missing CIFAR-10 binary batch\(es\) data_batch_5.bin"):
        load_splits("cifar10")


def test_import_archscout_data_does_not_import_torch():
    code = ("import sys, archscout.data as d\nassert 'torch' not in sys.modules\n"
            "assert d.Augment.from_config(d.Augment().to_config()) == d.Augment()\nprint('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


# --- augmentation ------------------------------------------------------------------------------------
def test_random_crop_flip_matches_some_crop_and_flip_of_each_image():
    torch = pytest.importorskip("torch")
    from archscout.data import random_crop_flip

    B, C, H, W, p = 200, 2, 6, 5, 1
    x = torch.rand(B, C, H, W, generator=torch.Generator().manual_seed(0)) + 0.5  # no zeros inside
    out = random_crop_flip(x, torch.Generator().manual_seed(1), padding=p)
    assert out.shape == x.shape and out.dtype == x.dtype and out.data_ptr() != x.data_ptr()
    padded = torch.nn.functional.pad(x, (p, p, p, p))
    moves = [(dy, dx, f) for dy in range(2 * p + 1) for dx in range(2 * p + 1) for f in (False, True)]
    crops = torch.stack([(lambda c, f: c.flip(-1) if f else c)(padded[:, :, dy:dy + H, dx:dx + W], f)
                         for dy, dx, f in moves], dim=1)  # (B, moves, C, H, W)
    hits = (crops == out[:, None]).flatten(2).all(dim=2)  # (B, moves)
    assert hits.any(dim=1).all(), "some image is no crop of its padded image"
    corner = moves.index((0, 0, False))
    at_corner = hits[:, corner]
    assert at_corner.any()
    for i in torch.nonzero(at_corner).flatten().tolist():  # cropped at the top-left corner: the padding shows, zero
        assert (out[i, :, :p] == 0).all() and (out[i, :, :, :p] == 0).all() and (out[i, :, p:, p:] > 0).all()
    seen = {moves[j] for j in torch.nonzero(hits.any(dim=0)).flatten().tolist()}
    assert len({m[:2] for m in seen}) == (2 * p + 1) ** 2 and {m[2] for m in seen} == {False, True}


def test_random_crop_flip_is_deterministic_and_flips():
    torch = pytest.importorskip("torch")
    from archscout.data import random_crop_flip

    x = torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    a = random_crop_flip(x, torch.Generator().manual_seed(7))
    b = random_crop_flip(x, torch.Generator().manual_seed(7))
    c = random_crop_flip(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    g = torch.Generator().manual_seed(3)
    only_flip = random_crop_flip(x, g, padding=0)
    flipped = [torch.equal(only_flip[i], x[i].flip(-1)) for i in range(64)]
    kept = [torch.equal(only_flip[i], x[i]) for i in range(64)]
    assert all(f or k for f, k in zip(flipped, kept)) and 10 < sum(flipped) < 54
    assert torch.equal(random_crop_flip(x, g, padding=0, flip=False), x)
    assert random_crop_flip(x[:0], g).shape == (0, 3, 8, 8)
    with pytest.raises(ConfigError, match=r"float images \(B, C, H, W\)"):
        random_crop_flip(x[0], g)
    with pytest.raises(ConfigError, match="float images"):
        random_crop_flip((x * 255).to(torch.uint8), g)
    with pytest.raises(ConfigError, match="padding must be an integer >= 0"):
        random_crop_flip(x, g, padding=-1)


def test_augment_config_round_trip():
    aug = Augment(padding=2, flip=False)
    assert aug.to_config() == {"kind": "crop-flip", "padding": 2, "flip": False}
    assert Augment.from_config(aug.to_config()) == aug
    assert Augment.from_config(None) is None and Augment.from_config("crop-flip") == Augment()
    with pytest.raises(ConfigError, match="unknown augmentation kind 'cutout'"):
        Augment.from_config({"kind": "cutout"})
    with pytest.raises(ConfigError, match="unknown key"):
        Augment.from_config({"kind": "crop-flip", "size": 3})
    with pytest.raises(ConfigError, match="padding"):
        Augment(padding=1.5)  # type: ignore[arg-type]
    torch = pytest.importorskip("torch")
    x = torch.rand(4, 1, 5, 5)
    assert torch.equal(Augment(padding=1)(x, torch.Generator().manual_seed(0)),
                       Augment(padding=1)(x, torch.Generator().manual_seed(0)))


# --- the real files beside the repository ------------------------------------------------------------
@pytest.fixture
def forget_loaded():
    yield
    clear_cache()  # the real datasets take hundreds of MB


def test_real_fashion_mnist_npz(forget_loaded):
    if not FASHION_NPZ.is_file():
        pytest.skip(f"{FASHION_NPZ} not found")
    full = load_splits(FASHION_NPZ, val_size=1)
    assert full.sizes() == {"train": 59999, "val": 1, "test": 10000} and full.input_shape == (1, 28, 28)
    assert full.X_test.shape == (10000, 1, 28, 28) and full.X_train.dtype == np.float32
    assert full.y_test[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]  # the official test set, in file order
    assert np.bincount(full.y_test).tolist() == [1000] * 10 and full.X_test.max() == 1.0
    assert abs(float(full.X_test.mean()) - 0.2868) < 0.001
    s = load_splits(FASHION_NPZ, train_subset=1000, val_size=500)
    assert s.sizes() == {"train": 1000, "val": 500, "test": 10000} and s.name == "fashion_mnist"
    assert np.bincount(s.y_train).tolist() == [100] * 10 and np.bincount(s.y_val).tolist() == [50] * 10


def test_real_cifar10_jpeg_npz(forget_loaded):
    if not CIFAR_JPEG_NPZ.is_file():
        pytest.skip(f"{CIFAR_JPEG_NPZ} not found")
    s = load_splits(CIFAR_JPEG_NPZ, train_subset=1000, val_size=500)
    assert s.sizes() == {"train": 1000, "val": 500, "test": 10000} and s.input_shape == (3, 32, 32)
    assert s.X_test.dtype == np.float32 and np.bincount(s.y_test).tolist() == [1000] * 10
    assert np.bincount(s.y_train).tolist() == [100] * 10 and np.bincount(s.y_val).tolist() == [50] * 10
    assert load_splits(CIFAR_JPEG_NPZ, val_size=5000).sizes() == {"train": 20000, "val": 5000, "test": 10000}
    assert abs(float(s.X_test[:, 0].mean()) - 0.4941) < 0.001  # red channel, scaled to [0, 1]


def test_debian_fashion_mnist_idx_files_match_the_official_arrays():
    """The IDX files of Debian's dataset-fashion-mnist package (installed by CI) read as the official arrays."""
    folder = Path("/usr/share/datasets/fashion-mnist")
    npz = Path(__file__).resolve().parents[2] / "shared/data/fashion-mnist/fashion_mnist.npz"
    if not (folder / "train-images-idx3-ubyte.gz").exists() or not npz.exists():
        pytest.skip("needs /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist) and the npz")
    from archscout.data import load_idx_folder
    train, test = load_idx_folder(folder)
    ref = np.load(npz)
    assert train.X.shape == (60000, 1, 28, 28) and test.X.shape == (10000, 1, 28, 28)
    assert np.array_equal(train.y, ref["y_train"]) and np.array_equal(test.y, ref["y_test"])
    assert np.array_equal(np.rint(test.X[:, 0] * 255).astype(np.uint8), ref["x_test"].reshape(10000, 28, 28))


def test_default_validation_is_a_tenth_of_training_at_most_5000(tmp_path):
    from archscout.data import load_splits
    rng = np.random.default_rng(0)
    p = tmp_path / "small.npz"
    np.savez(p, x_train=rng.integers(0, 255, (300, 8, 8, 3), dtype=np.uint8), y_train=np.arange(300) % 3,
             x_test=rng.integers(0, 255, (30, 8, 8, 3), dtype=np.uint8), y_test=np.arange(30) % 3)
    s = load_splits(p)
    assert s.sizes() == {"train": 270, "val": 30, "test": 30}


def test_training_evaluator_takes_a_path(tmp_path):
    pytest.importorskip("torch")
    import pickle

    import archscout as asc
    from archscout.training import TrainingEvaluator
    rng = np.random.default_rng(0)
    p = tmp_path / "small.npz"
    np.savez(p, x_train=rng.integers(0, 255, (120, 8, 8), dtype=np.uint8), y_train=np.arange(120) % 3,
             x_test=rng.integers(0, 255, (30, 8, 8), dtype=np.uint8), y_test=np.arange(30) % 3)
    ev = TrainingEvaluator(str(p), epochs=1, factory={"C": 4, "N": 1})
    assert ev.input_shape == (1, 8, 8) and ev.num_classes == 3 and ev.splits.sizes()["test"] == 30
    assert ev.to_config()["dataset"] == str(p)
    ev2 = pickle.loads(pickle.dumps(ev))
    arch = asc.create_space("nb201").sample(np.random.default_rng(0))
    a, b = ev2.evaluate(arch), ev.evaluate(arch)
    assert (a["accuracy"], a["val_accuracy"]) == (b["accuracy"], b["val_accuracy"])
    assert TrainingEvaluator.from_config(ev.to_config()).splits.sizes() == ev.splits.sizes()
