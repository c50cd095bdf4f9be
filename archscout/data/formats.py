"""Readers of the file formats image datasets come in: IDX (MNIST, Fashion-MNIST), CIFAR-10's binary batches
and ``.npz`` archives, each giving the official train and test sets as :class:`~archscout.data.ArrayDataset`.

numpy only: no torch. Images come out as float32 ``(N, C, H, W)``, scaled to [0, 1] when the file holds uint8
pixels (other dtypes are kept as they are, as float32); labels as int64 class indices. Every malformed input
raises :class:`~archscout.errors.DataError` with a one-line message naming the file, what is wrong and how to
fix it.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from .arrays import (
    ArrayDataset,
)

__all__ = [
    "CIFAR10_BINARY_URL",
    "CIFAR10_SUBFOLDER",
    "CIFAR10_TEST_FILE",
    "CIFAR10_TRAIN_FILES",
    "DATA_ENV",
    "FASHION_MNIST_SYSTEM_DIR",
    "FASHION_NPZ",
    "IDX_FILES",
    "NPZ_KEYS",
    "ZIP_MAGIC",
    "detect_layout",
    "has_cifar_batches",
    "has_idx_files",
    "load_cifar10_binary",
    "load_idx_folder",
    "load_npz",
    "read_cifar10_batch",
    "read_idx",
]

DATA_ENV = "ARCHSCOUT_DATA"
"""Environment variable naming the folder where datasets (and benchmark tables) are kept."""
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where ``apt-get install dataset-fashion-mnist`` (Debian, Ubuntu) puts the Fashion-MNIST IDX ``.gz`` files."""
CIFAR10_BINARY_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
"""The official CIFAR-10 binary version (extracts to ``cifar-10-batches-bin/``)."""
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
"""The four IDX files of an MNIST-style dataset (each plain or with ``.gz``)."""
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
"""The arrays an ``.npz`` dataset must hold."""

CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch.bin"
CIFAR10_SUBFOLDER = "cifar-10-batches-bin"
CIFAR10_RECORD = 1 + 3 * 32 * 32  # one label byte, then 3,072 pixel bytes (R, G, B planes of 32 x 32)

# IDX type codes (the third byte of the magic number); multi-byte types are big-endian
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
_CHANNELS = (1, 3, 4)
FASHION_NPZ = "fashion_mnist.npz"


# --- low-level readers -----------------------------------------------------------------------------
def _read_bytes(path: Path, what: str) -> bytes:
    """The file's bytes, gunzipped when they are gzip data (whatever the file's suffix)."""
    if not path.is_file():
        raise DataError(f"{path}: no such file; check the path (it should be {what})")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e}); check its permissions") from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: corrupt or truncated gzip data ({str(e).splitlines()[0][:80]}); "
                            "download the file again") from None
    return raw


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one file in the IDX format of MNIST and Fashion-MNIST, plain or gzip-compressed.

    The header is a magic number (two zero bytes, a type code, the number of dimensions ``d``) and ``d``
    big-endian uint32 sizes; the data follow in C order. Type codes: ``0x08`` uint8, ``0x09`` int8, ``0x0B``
    int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64 (big-endian in the file).

    Returns:
        A new, native-endian array of the declared shape and type, e.g. uint8 ``(60000, 28, 28)`` for
        ``train-images-idx3-ubyte``.

    Raises:
        DataError: the file is missing or unreadable, the magic number or type code is wrong, or the file is
            truncated or longer than its dimensions say.
    """
    p = Path(path)
    raw = _read_bytes(p, "an IDX file")
    if len(raw) < 4:
        raise DataError(f"{p}: {len(raw)} bytes, too short for an IDX header; the file is truncated or empty: "
                        "download it again")
    magic = f"0x{raw[:4].hex().upper()}"
    if raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{p}: wrong IDX magic number {magic} (an IDX file starts with two zero bytes, a type "
                        "code and the number of dimensions, e.g. 0x00000803); give an IDX file such as "
                        "train-images-idx3-ubyte[.gz]")
    if raw[2] not in _IDX_DTYPES:
        raise DataError(f"{p}: unknown IDX type code 0x{raw[2]:02X} in magic number {magic}; expected 0x08 "
                        "(uint8), 0x09, 0x0B, 0x0C, 0x0D or 0x0E: is this an IDX file?")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    if ndim == 0:
        raise DataError(f"{p}: the IDX header (magic number {magic}) declares 0 dimensions; give an IDX file "
                        "with at least one dimension")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{p}: truncated: {len(raw)} bytes, fewer than the {header}-byte header of {ndim} "
                        "dimensions; download the file again")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    count = math.prod(dims)
    need, have = count * dtype.itemsize, len(raw) - header
    if have < need:
        raise DataError(f"{p}: truncated: the header declares dimensions {dims} ({need} bytes of data) but only "
                        f"{have} bytes follow; download the file again")
    if have > need:
        raise DataError(f"{p}: {have - need} bytes more than its dimensions {dims} declare ({need} bytes of "
                        "data); the header is wrong or this is not an IDX file")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_cifar10_batch(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read one batch file of CIFAR-10's binary version (e.g. ``data_batch_1.bin``).

    Each record is 3,073 bytes: the label (0 .. 9), then the 1,024 red, 1,024 green and 1,024 blue pixels of
    a 32 x 32 image, row by row.

    Returns:
        ``(images, labels)``: uint8 ``(n, 3, 32, 32)`` and int64 ``(n,)``.

    Raises:
        DataError: the file is missing, empty, not a whole number of 3,073-byte records, or holds a label
            above 9.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file; download CIFAR-10's binary version from {CIFAR10_BINARY_URL} "
                        "and extract it")
    try:
        raw = np.fromfile(p, dtype=np.uint8)
    except OSError as e:
        raise DataError(f"{p}: cannot be read ({e.strerror or e}); check its permissions") from None
    if raw.size == 0 or raw.size % CIFAR10_RECORD:
        raise DataError(f"{p}: {raw.size} bytes, not a positive multiple of {CIFAR10_RECORD} (one label byte and "
                        "3,072 pixel bytes per image); the file is truncated or not CIFAR-10's binary version "
                        f"(CIFAR-100's records are 3,074 bytes): download it again from {CIFAR10_BINARY_URL}")
    records = raw.reshape(-1, CIFAR10_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        i = int(np.argmax(labels > 9))
        raise DataError(f"{p}: labels out of range: record {i} has label {int(labels[i])}, but CIFAR-10's labels "
                        "are 0 .. 9; the file is corrupt or not CIFAR-10's binary version: download it again")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def detect_layout(shape: tuple[int, ...]) -> str | None:
    """The layout of a stack of images of this shape: ``"NHW"``, ``"NHWC"``, ``"NCHW"``, or None when it is
    none of them.

    Four dimensions are channel-last when the last one is 1, 3 or 4 and the second is not; else channels-first
    when the second is 1, 3 or 4 (so ``(N, 3, 3, 3)`` is NCHW); anything else is not recognised.
    """
    if len(shape) == 3:
        return "NHW"
    if len(shape) != 4:
        return None
    if shape[3] in _CHANNELS and shape[1] not in _CHANNELS:
        return "NHWC"
    if shape[1] in _CHANNELS:
        return "NCHW"
    return None


def _scaled(x: np.ndarray) -> np.ndarray:
    """uint8 pixels as float32 / 255 (one new array); anything else unchanged."""
    if x.dtype != np.uint8:
        return x
    out = x.astype(np.float32)
    out /= np.float32(255.0)
    return out


def _dataset(X: np.ndarray, y: np.ndarray, name: str, source: Path) -> ArrayDataset:
    """:class:`ArrayDataset`, with its DataError prefixed by the file it came from."""
    try:
        return ArrayDataset(X, y, name=name)
    except DataError as e:
        raise DataError(f"{source}: {e}") from None


def _check_test_labels(y_test: np.ndarray, num_classes: int, source: Path) -> None:
    bad = (y_test < 0) | (y_test >= num_classes)
    if bad.any():
        raise DataError(f"{source}: test labels out of range: {y_test[bad][0].item()!r}, but the training labels are "
                        f"0 .. {num_classes - 1}; the train and test files do not belong together")


# --- IDX folders ------------------------------------------------------------------------------------
def _idx_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def has_idx_files(folder: Path) -> bool:
    return folder.is_dir() and any(_idx_file(folder, stem) is not None for stem in IDX_FILES.values())


def _idx_pair(images_path: Path, labels_path: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim not in (3, 4):
        raise DataError(f"{images_path}: IDX images of {images.ndim} dimensions {images.shape}; expected 3 "
                        "(N, rows, columns): is this an image file?")
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: IDX labels of {labels.ndim} dimensions {labels.shape}; expected 1 (N,): "
                        "is this a label file?")
    if len(images) != len(labels):
        raise DataError(f"{images_path}: {len(images)} images but {labels_path.name} holds {len(labels)} labels; "
                        "the files do not belong together: download them again")
    return images, labels


def load_idx_folder(folder: str | os.PathLike[str], name: str = "fashion-mnist") -> tuple[ArrayDataset, ArrayDataset]:
    """Load an MNIST-style dataset from its four IDX files in ``folder`` (see :data:`IDX_FILES`; each plain
    or ``.gz``).

    Returns:
        ``(train, test)``: the official training and test sets, float32 ``(N, 1, H, W)`` images (uint8 pixels
        scaled to [0, 1]) and int64 labels, both named ``name``.

    Raises:
        DataError: the folder or one of the files is missing, a file is malformed (see :func:`read_idx`), or
            the images and labels do not match (counts, labels out of range).
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; give the folder that holds the IDX files "
                        f"{', '.join(IDX_FILES.values())} (plain or .gz)")
    found = {key: _idx_file(root, stem) for key, stem in IDX_FILES.items()}
    missing = [f"{IDX_FILES[key]}[.gz]" for key, p in found.items() if p is None]
    if missing:
        raise DataError(f"{root}: missing IDX file(s) {', '.join(missing)}; put all four files "
                        f"({', '.join(IDX_FILES.values())}, plain or .gz) in this folder")
    paths = {key: p for key, p in found.items() if p is not None}
    X, y = _idx_pair(paths["train_images"], paths["train_labels"], name)
    train = _dataset(_scaled(X), y, name, paths["train_images"])
    del X
    X, y = _idx_pair(paths["test_images"], paths["test_labels"], name)
    _check_test_labels(y, train.num_classes, paths["test_labels"])
    test = _dataset(_scaled(X), y, name, paths["test_images"])
    if test.input_shape != train.input_shape:
        raise DataError(f"{paths['test_images']}: images of shape {test.input_shape}, but the training images are "
                        f"{train.input_shape}; the files do not belong together")
    return train, test


# --- CIFAR-10 binary --------------------------------------------------------------------------------
def _cifar_base(folder: Path) -> Path:
    """``folder`` when it holds CIFAR-10 batches, else its ``cifar-10-batches-bin`` subfolder if there is one."""
    names = CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE,)
    if any((folder / n).is_file() for n in names):
        return folder
    sub = folder / CIFAR10_SUBFOLDER
    return sub if sub.is_dir() else folder


def has_cifar_batches(folder: Path) -> bool:
    base = _cifar_base(folder)
    return base.is_dir() and any((base / n).is_file() for n in CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE,))


def load_cifar10_binary(folder: str | os.PathLike[str]) -> tuple[ArrayDataset, ArrayDataset]:
    """Load CIFAR-10's binary version: ``data_batch_1.bin`` .. ``data_batch_5.bin`` and ``test_batch.bin``,
    in ``folder`` or in ``folder/cifar-10-batches-bin`` (see :func:`read_cifar10_batch`).

    Returns:
        ``(train, test)``: 50,000 and 10,000 images for the official files, float32 ``(N, 3, 32, 32)`` in
        [0, 1], int64 labels 0 .. 9, both named ``"cifar10"``.

    Raises:
        DataError: the folder or some batches are missing (all the missing ones are listed), or a batch is
            malformed.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; download CIFAR-10's binary version from {CIFAR10_BINARY_URL} "
                        "and give the folder it extracts to")
    base = _cifar_base(root)
    missing = [n for n in CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE,) if not (base / n).is_file()]
    if missing:
        if (base / "data_batch_1").is_file():
            how = (f"this looks like the Python (pickle) version: download the binary version from "
                   f"{CIFAR10_BINARY_URL} instead")
        else:
            how = f"download the binary version from {CIFAR10_BINARY_URL} and extract it (tar xzf) here"
        raise DataError(f"{base}: missing CIFAR-10 binary batch(es) {', '.join(missing)}; {how}")
    parts = [read_cifar10_batch(base / n) for n in CIFAR10_TRAIN_FILES]
    X = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    del parts
    train = _dataset(_scaled(X), y, "cifar10", base / CIFAR10_TRAIN_FILES[0])
    del X
    X, y = read_cifar10_batch(base / CIFAR10_TEST_FILE)
    test = _dataset(_scaled(X), y, "cifar10", base / CIFAR10_TEST_FILE)
    return train, test


# --- npz --------------------------------------------------------------------------------------------
def _npz_images(x: np.ndarray, path: Path, key: str) -> np.ndarray:
    layout = detect_layout(x.shape)
    if layout is None:
        hint = "; reshape flat vectors into images first" if x.ndim == 2 else ""
        raise DataError(f"{path}: {key} has shape {x.shape}, an unrecognised layout; give images as (N, H, W), "
                        f"(N, H, W, C) or (N, C, H, W) with C in 1, 3, 4{hint}")
    if layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # transposed while still uint8: less to copy
    return _scaled(x)


def _npz_labels(y: np.ndarray, n: int, path: Path, key: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]  # (N, 1) column of labels, as Keras saves them
    if y.ndim == 1 and len(y) != n:
        raise DataError(f"{path}: x_{key[2:]} has {n} images but {key} has {len(y)} labels; give one label per "
                        "image")
    return y


def load_npz(path: str | os.PathLike[str]) -> tuple[ArrayDataset, ArrayDataset]:
    """Load a dataset saved as an ``.npz`` archive with arrays ``x_train, y_train, x_test, y_test``.

    Images may be ``(N, H, W)``, channel-last ``(N, H, W, C)`` or channels-first ``(N, C, H, W)`` with
    ``C`` in 1, 3, 4 (see :func:`detect_layout`); uint8 pixels are scaled to [0, 1], float pixels kept. Labels
    are class indices ``(N,)`` or ``(N, 1)``. The file is read with ``allow_pickle=False``.

    Returns:
        ``(train, test)``: float32 ``(N, C, H, W)`` images and int64 labels, both named after the file's stem.

    Raises:
        DataError: the file is missing or is not an ``.npz`` archive of plain arrays, lacks one of the four
            arrays, or the arrays are malformed (unrecognised layout, x / y lengths that differ, test labels
            out of the training labels' range, train and test images of different shapes).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file; give an .npz file with arrays {', '.join(NPZ_KEYS)}")
    how = f"save the arrays with np.savez(path, {', '.join(f'{k}=...' for k in NPZ_KEYS)})"
    try:
        loaded = np.load(p, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DataError(f"{p}: a single .npy array, not an .npz archive; {how}")
        with loaded as z:
            missing = [k for k in NPZ_KEYS if k not in z.files]
            if missing:
                raise DataError(f"{p}: lacks {', '.join(missing)} (it holds {', '.join(z.files) or 'nothing'}); "
                                f"{how}")
            arrays = {k: z[k] for k in NPZ_KEYS}
    except DataError:
        raise
    except (OSError, ValueError, EOFError) as e:  # zipfile.BadZipFile is an OSError; pickles are ValueErrors
        reason = str(e).splitlines()[0][:100] if str(e) else type(e).__name__
        raise DataError(f"{p}: cannot be read as an .npz archive of plain arrays ({reason}); {how}") from None
    name = p.stem
    out: list[ArrayDataset] = []
    for split in ("train", "test"):
        x, y = arrays.pop(f"x_{split}"), arrays.pop(f"y_{split}")
        if x.ndim >= 1 and y.ndim >= 1:
            y = _npz_labels(y, len(x), p, f"y_{split}")
        if out and y.ndim == 1 and np.issubdtype(y.dtype, np.number):
            _check_test_labels(y, out[0].num_classes, p)
        out.append(_dataset(_npz_images(x, p, f"x_{split}"), y, name, p))
        del x
    train, test = out
    if test.input_shape != train.input_shape:
        raise DataError(f"{p}: x_test holds images of shape {test.input_shape} (C, H, W) but x_train "
                        f"{train.input_shape}; save both in one layout and size")
    return train, test


