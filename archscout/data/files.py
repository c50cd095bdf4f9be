"""Image datasets read from files, with their official train / test splits: IDX files (MNIST, Fashion-MNIST),
CIFAR-10's binary batches and ``.npz`` archives; and :func:`load_splits`, which turns any of them (or a named
or in-memory dataset) into seeded, stratified train / validation / test :class:`~archscout.data.Splits`.

numpy only: no torch. Images come out as float32 ``(N, C, H, W)``, scaled to [0, 1] when the file holds uint8
pixels (other dtypes are kept as they are, as float32); labels as int64 class indices. Every malformed input
raises :class:`~archscout.errors.DataError` with a one-line message naming the file, what is wrong and how to
fix it.

Where the named datasets are looked for:

* ``fashion-mnist``: the folder given, else ``$ARCHSCOUT_DATA`` itself or ``$ARCHSCOUT_DATA/fashion-mnist``
  (the four IDX files, plain or ``.gz``, or a ``fashion_mnist.npz``), else ``/usr/share/datasets/fashion-mnist``
  (where Debian's ``dataset-fashion-mnist`` package installs the IDX files).
* ``cifar10``: the folder given, else ``$ARCHSCOUT_DATA/cifar10``, ``$ARCHSCOUT_DATA/cifar-10-batches-bin`` or
  ``$ARCHSCOUT_DATA`` itself (``data_batch_1.bin`` .. ``data_batch_5.bin`` and ``test_batch.bin``, directly or in
  a ``cifar-10-batches-bin`` subfolder).

Loaded datasets are cached per process by resolved path and the files' modification times and sizes.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from .arrays import (
    DATASETS,
    DEFAULT_FRACTIONS,
    ArrayDataset,
    DatasetInfo,
    Splits,
    dataset_info,
    load_dataset,
    make_splits,
    readonly,
    register_dataset,
)

__all__ = [
    "CIFAR10_BINARY_URL",
    "DATA_ENV",
    "FASHION_MNIST_SYSTEM_DIR",
    "IDX_FILES",
    "NPZ_KEYS",
    "clear_cache",
    "detect_layout",
    "find_dataset",
    "load_cifar10",
    "load_cifar10_binary",
    "load_fashion_mnist",
    "load_idx_folder",
    "load_npz",
    "load_splits",
    "read_cifar10_batch",
    "read_idx",
    "stratified_choice",
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
_ZIP_MAGIC = b"PK\x03\x04"
_CHANNELS = (1, 3, 4)
_FASHION_NPZ = "fashion_mnist.npz"


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


def _has_idx(folder: Path) -> bool:
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


def _has_cifar(folder: Path) -> bool:
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


# --- named datasets, found on disk ------------------------------------------------------------------
def _env_dir() -> Path | None:
    value = os.environ.get(DATA_ENV, "")
    return Path(value).expanduser() if value else None


def find_dataset(name: str, folder: str | os.PathLike[str] | None = None) -> Path:
    """Where the files of the named dataset (``"fashion-mnist"`` or ``"cifar10"``) are: a folder (or, for
    Fashion-MNIST, possibly a ``fashion_mnist.npz`` file). See the module docstring for the places looked in.

    Args:
        name: ``"fashion-mnist"`` or ``"cifar10"``.
        folder: look only here (a folder, or a ``.npz`` file for Fashion-MNIST).

    Raises:
        ConfigError: another name.
        DataError: the files are in none of the places; the message lists them and how to get the data.
    """
    if name not in ("fashion-mnist", "cifar10"):
        raise ConfigError(f"find_dataset knows 'fashion-mnist' and 'cifar10', got {name!r}")
    env = _env_dir()
    if folder is not None:
        candidates = [Path(folder).expanduser()]
    elif name == "fashion-mnist":
        candidates = ([env, env / "fashion-mnist"] if env else []) + [FASHION_MNIST_SYSTEM_DIR]
    else:
        candidates = [env / "cifar10", env / CIFAR10_SUBFOLDER, env] if env else []
    for c in candidates:
        if name == "fashion-mnist":
            if c.is_file() and c.suffix == ".npz":
                return c
            if _has_idx(c):
                return c
            if (c / _FASHION_NPZ).is_file():
                return c / _FASHION_NPZ
        elif _has_cifar(c):
            return c
    looked = ", ".join(str(c) for c in candidates) or "nowhere"
    unset = "" if env or folder is not None else f" (${DATA_ENV} is not set)"
    if name == "fashion-mnist":
        how = (f"pass --data PATH (a folder with the four IDX files or a {_FASHION_NPZ}), set {DATA_ENV} to the "
               "folder holding them (or its parent holding fashion-mnist/), or run apt-get install "
               "dataset-fashion-mnist")
    else:
        how = (f"download the binary version from {CIFAR10_BINARY_URL}, extract it, and pass --data PATH or set "
               f"{DATA_ENV} to the folder holding {CIFAR10_SUBFOLDER}/")
    raise DataError(f"{name} not found: looked in {looked}{unset}; {how}")


_LOADED: OrderedDict[tuple, tuple[ArrayDataset, ArrayDataset]] = OrderedDict()
_LOADED_MAX = 3


def clear_cache() -> None:
    """Forget the datasets loaded from files so far (frees their memory; the next load reads the files)."""
    _LOADED.clear()


def _signature(path: Path) -> tuple:
    """Names, modification times and sizes of the files a dataset at ``path`` is read from."""
    files = [path] if path.is_file() else [
        f for d in (path, path / CIFAR10_SUBFOLDER) if d.is_dir() for f in sorted(d.iterdir()) if f.is_file()]
    out = []
    for f in files:
        st = f.stat()
        out.append((f.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


def _cached(kind: str, path: Path, load: Callable[[Path], tuple[ArrayDataset, ArrayDataset]]) \
        -> tuple[ArrayDataset, ArrayDataset]:
    """``load(path)``, cached per process by (kind, resolved path, the files' mtimes and sizes)."""
    key = (kind, str(path.resolve()), _signature(path))
    if key in _LOADED:
        _LOADED.move_to_end(key)
        return _LOADED[key]
    pair = load(path)
    _LOADED[key] = pair
    while len(_LOADED) > _LOADED_MAX:
        _LOADED.popitem(last=False)
    return pair


def _check_info(pair: tuple[ArrayDataset, ArrayDataset], name: str, where: Path) -> tuple[ArrayDataset, ArrayDataset]:
    info, train = dataset_info(name), pair[0]
    if train.input_shape != info.input_shape or train.num_classes != info.num_classes:
        raise DataError(f"{where}: holds images of shape {train.input_shape} in {train.num_classes} classes, but "
                        f"{name} has {info.input_shape} in {info.num_classes}; is this the right folder?")
    return pair


def _renamed(pair: tuple[ArrayDataset, ArrayDataset], name: str) -> tuple[ArrayDataset, ArrayDataset]:
    for d in pair:
        d.name = name
    return pair


def load_fashion_mnist(folder: str | os.PathLike[str] | None = None) -> tuple[ArrayDataset, ArrayDataset]:
    """Fashion-MNIST's official training (60,000) and test (10,000) sets: float32 ``(N, 1, 28, 28)`` in [0, 1],
    int64 labels 0 .. 9, named ``"fashion-mnist"``; from ``folder`` or the places :func:`find_dataset` looks.

    Raises:
        DataError: not found (the message says where it looked and how to get it), or malformed files.
    """
    where = find_dataset("fashion-mnist", folder)
    if where.is_file():
        pair = _cached("fashion-mnist-npz", where, lambda p: _renamed(load_npz(p), "fashion-mnist"))
    else:
        pair = _cached("idx", where, lambda p: load_idx_folder(p, name="fashion-mnist"))
    return _check_info(pair, "fashion-mnist", where)


def load_cifar10(folder: str | os.PathLike[str] | None = None) -> tuple[ArrayDataset, ArrayDataset]:
    """CIFAR-10's official training (50,000) and test (10,000) sets from the binary batches: float32
    ``(N, 3, 32, 32)`` in [0, 1], int64 labels 0 .. 9; from ``folder`` or the places :func:`find_dataset` looks.

    Raises:
        DataError: not found (the message says where it looked and how to get it), or malformed files.
    """
    where = find_dataset("cifar10", folder)
    return _check_info(_cached("cifar", where, load_cifar10_binary), "cifar10", where)


@register_dataset(DatasetInfo("fashion-mnist", (1, 28, 28), 10, 70000,
                             "Zalando Fashion-MNIST (IDX files; official 60,000 / 10,000 split), 1x28x28, 10 classes",
                             official_test=True))
def _fashion_mnist_train() -> ArrayDataset:
    return load_fashion_mnist()[0]


@register_dataset(DatasetInfo("cifar10", (3, 32, 32), 10, 60000,
                             "CIFAR-10 (binary batches; official 50,000 / 10,000 split), 3x32x32, 10 classes",
                             official_test=True))
def _cifar10_train() -> ArrayDataset:
    return load_cifar10()[0]


_NAMED_LOADERS: dict[str, Callable[[], tuple[ArrayDataset, ArrayDataset]]] = {
    "fashion-mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
}


# --- splits -----------------------------------------------------------------------------------------
def stratified_choice(y: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``n`` of the indices ``0 .. len(y) - 1``, stratified by class.

    Each class gets ``floor(n * n_class / len(y))`` picks, and the classes with the largest remainders one
    more (ties to the lower class), so the total is exactly ``n``; inside a class the picks are a random
    draw from ``rng``.

    Args:
        y: int labels ``(N,)``, values >= 0.
        n: how many to pick, ``0 <= n <= N``.
        rng: numpy Generator (advanced by the draw).

    Returns:
        ``(chosen, rest)``: int64 index arrays; ``chosen`` (n indices, classes mixed in random order) and
        ``rest`` (the others, ascending).

    Raises:
        ConfigError: ``n`` out of range.
    """
    y = np.asarray(y)
    total = len(y)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n <= total:
        raise ConfigError(f"n must be an integer in 0 .. {total}, got {n!r}")
    counts = np.bincount(y) if total else np.zeros(0, np.int64)
    share = int(n) * counts
    quota, remainder = share // max(total, 1), share % max(total, 1)
    short = int(n) - int(quota.sum())
    if short:
        quota[np.argsort(-remainder, kind="stable")[:short]] += 1
    picked = [rng.permutation(np.flatnonzero(y == c))[:q] for c, q in enumerate(quota) if q]
    chosen = np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)
    chosen = chosen[rng.permutation(len(chosen))]  # mix the classes
    mask = np.ones(total, bool)
    mask[chosen] = False
    return chosen.astype(np.int64), np.flatnonzero(mask).astype(np.int64)


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _check_args(train_subset: Any, val_size: Any, seed: Any) -> None:
    if not _is_int(seed) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    if train_subset is not None and (not _is_int(train_subset) or train_subset < 1):
        raise ConfigError(f"train_subset must be None (every training image) or an integer >= 1, got "
                          f"{train_subset!r}")
    if _is_int(val_size):
        if val_size < 1:
            raise ConfigError(f"val_size must be >= 1 (a count) or a fraction in (0, 1), got {val_size!r}")
    elif isinstance(val_size, (float, np.floating)):
        if not 0.0 < val_size < 1.0:
            raise ConfigError(f"val_size as a fraction of the training set must be in (0, 1), got {val_size!r}")
    else:
        raise ConfigError(f"val_size must be an integer count or a float fraction, got {val_size!r}")


def _source(data: Any) -> tuple[str, ArrayDataset, ArrayDataset | None]:
    """``(name, train, official test or None)`` of a dataset name, path or ArrayDataset."""
    if isinstance(data, ArrayDataset):
        return data.name, data, None
    if not isinstance(data, (str, os.PathLike)):
        raise ConfigError(f"data must be a dataset name ({', '.join(DATASETS.names())}), a path, an ArrayDataset "
                          f"or Splits, got {type(data).__name__}")
    if isinstance(data, str) and data in DATASETS:
        if data in _NAMED_LOADERS:
            train, test = _NAMED_LOADERS[data]()
            return data, train, test
        return data, load_dataset(data), None
    text = os.fspath(data)
    p = Path(text).expanduser()
    if not p.exists():
        if isinstance(data, str) and os.sep not in text and "/" not in text and not p.suffix:
            DATASETS.get(data)  # UnknownNameError, with "did you mean" and the names
        raise DataError(f"{p}: no such file or folder; give a dataset name ({', '.join(DATASETS.names())}), an "
                        ".npz file or a folder with IDX files or CIFAR-10 binary batches")
    if p.is_file():
        with p.open("rb") as f:
            is_zip = f.read(4) == _ZIP_MAGIC
        if p.suffix == ".npz" or is_zip:
            return p.stem, *_cached("npz", p, load_npz)
    elif _has_idx(p):
        return p.name, *_cached("idx", p, lambda q: load_idx_folder(q, name=q.name))
    elif _has_cifar(p):
        return p.name, *_cached("cifar", p, load_cifar10_binary)
    raise DataError(f"{p}: unrecognised dataset layout; give an .npz file with {', '.join(NPZ_KEYS)}, a folder with "
                    f"the IDX files {', '.join(IDX_FILES.values())} (plain or .gz), or a folder with CIFAR-10's "
                    f"binary batches ({CIFAR10_TRAIN_FILES[0]} .. {CIFAR10_TEST_FILE})")


def load_splits(data: Any, *, train_subset: int | None = None, val_size: int | float = 5000,
                seed: int = 0) -> Splits:
    """Train / validation / test splits of a dataset, stratified by class and fixed by ``seed``.

    ``data`` is a registered name (``digits``, ``mnist5k``, ``fashion-mnist``, ``cifar10``, ...), a path (an
    ``.npz`` file, a folder with IDX files, a folder with CIFAR-10 binary batches), an
    :class:`~archscout.data.ArrayDataset`, or :class:`~archscout.data.Splits` (returned as it is; the other
    arguments are then ignored).

    With an official test set (``fashion-mnist``, ``cifar10``, paths): ``test`` is the official test set, in
    its file order; ``val`` is ``val_size`` images drawn from the official training set; ``train`` is
    ``train_subset`` images drawn from the training images left (all of them, shuffled, when None). Without
    one (``digits``, ``mnist5k``, an ArrayDataset): :func:`~archscout.data.make_splits` with
    :data:`~archscout.data.DEFAULT_FRACTIONS` and ``seed`` (``val_size`` does not apply), then
    ``train_subset`` images drawn from its train split. Every draw is stratified by class (see
    :func:`stratified_choice`) from ``numpy.random.default_rng(seed)``, validation first, so the validation
    split does not depend on ``train_subset``. The same arguments always give the same splits.

    Args:
        data: what to split (see above).
        train_subset: how many training images to keep; None keeps them all.
        val_size: validation images: a count (int >= 1) or a fraction in (0, 1) of the official training set
            (at least one image).
        seed: integer >= 0.

    Returns:
        :class:`~archscout.data.Splits` named after the dataset (a path: the file's or folder's stem); its
        ``fractions`` are the splits' shares of the images used (rounded to 6 digits) when there is an
        official test set.

    Raises:
        ConfigError: an argument of the wrong type or out of range.
        UnknownNameError: an unknown dataset name.
        DataError: files missing or malformed, or ``train_subset`` / ``val_size`` larger than the images there
            (the message says how many there are).
    """
    _check_args(train_subset, val_size, seed)
    if isinstance(data, Splits):
        return data
    name, train, test = _source(data)
    rng = np.random.default_rng(int(seed))
    if test is None:
        s = make_splits(train, DEFAULT_FRACTIONS, int(seed))
        if train_subset is None:
            return s
        if train_subset > len(s.y_train):
            raise DataError(f"dataset {name!r}: train_subset={train_subset} but its train split holds only "
                            f"{len(s.y_train)} images ({len(train)} in all, split {DEFAULT_FRACTIONS}); pick "
                            f"train_subset <= {len(s.y_train)}")
        keep, _ = stratified_choice(s.y_train, int(train_subset), rng)
        return Splits(readonly(s.X_train[keep]), readonly(s.y_train[keep]), s.X_val, s.y_val, s.X_test, s.y_test,
                      name=name, fractions=s.fractions, seed=int(seed))
    n = len(train)
    n_val = int(val_size) if _is_int(val_size) else max(1, round(float(val_size) * n))
    if n_val >= n:
        raise DataError(f"dataset {name!r}: val_size={val_size!r} asks for {n_val} validation images but the "
                        f"training set holds only {n}; pick val_size < {n} and leave some for training")
    if train_subset is not None and train_subset > n - n_val:
        raise DataError(f"dataset {name!r}: train_subset={train_subset} but only {n - n_val} training images "
                        f"are left ({n} in the training set, {n_val} for validation); pick train_subset <= "
                        f"{n - n_val} or a smaller val_size")
    val_idx, rest = stratified_choice(train.y, n_val, rng)
    if train_subset is None:
        train_idx = rest[rng.permutation(len(rest))]
    else:
        pick, _ = stratified_choice(train.y[rest], int(train_subset), rng)
        train_idx = rest[pick]
    sizes = (len(train_idx), n_val, len(test))
    fractions = tuple(round(k / sum(sizes), 6) for k in sizes)
    return Splits(readonly(train.X[train_idx]), readonly(train.y[train_idx]),
                  readonly(train.X[val_idx]), readonly(train.y[val_idx]), test.X, test.y,
                  name=name, fractions=fractions, seed=int(seed))  # type: ignore[arg-type]
