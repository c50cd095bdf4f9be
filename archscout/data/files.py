"""Named image datasets found on disk (the readers of their formats are in :mod:`archscout.data.formats`), and
:func:`load_splits`, which turns any of them (or a named
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

import os
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
from .formats import (
    CIFAR10_BINARY_URL,
    CIFAR10_SUBFOLDER,
    CIFAR10_TEST_FILE,
    CIFAR10_TRAIN_FILES,
    DATA_ENV,
    FASHION_MNIST_SYSTEM_DIR,
    FASHION_NPZ,
    IDX_FILES,
    NPZ_KEYS,
    ZIP_MAGIC,
    has_cifar_batches,
    has_idx_files,
    load_cifar10_binary,
    load_idx_folder,
    load_npz,
)

__all__ = [
    "DEFAULT_VAL_SIZE",
    "clear_cache",
    "find_dataset",
    "load_cifar10",
    "load_fashion_mnist",
    "load_splits",
    "stratified_choice",
]


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
            if has_idx_files(c):
                return c
            if (c / FASHION_NPZ).is_file():
                return c / FASHION_NPZ
        elif has_cifar_batches(c):
            return c
    looked = ", ".join(str(c) for c in candidates) or "nowhere"
    unset = "" if env or folder is not None else f" (${DATA_ENV} is not set)"
    if name == "fashion-mnist":
        how = (f"pass --data PATH (a folder with the four IDX files or a {FASHION_NPZ}), set {DATA_ENV} to the "
               "folder holding them (or its parent holding fashion-mnist/), or run apt-get install "
               "dataset-fashion-mnist")
    else:
        how = (f"download the binary version from {CIFAR10_BINARY_URL}, extract it, and pass --data PATH or set "
               f"{DATA_ENV} to the folder holding {CIFAR10_SUBFOLDER}/")
    raise DataError(f"{name} not found: looked in {looked}{unset}; {how}")


DEFAULT_VAL_SIZE = 5000
"""At most this many validation images by default (10 % of the training set when that is fewer)."""

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
    if val_size is None:
        return
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
            is_zip = f.read(4) == ZIP_MAGIC
        if p.suffix == ".npz" or is_zip:
            return p.stem, *_cached("npz", p, load_npz)
    elif has_idx_files(p):
        return p.name, *_cached("idx", p, lambda q: load_idx_folder(q, name=q.name))
    elif has_cifar_batches(p):
        return p.name, *_cached("cifar", p, load_cifar10_binary)
    raise DataError(f"{p}: unrecognised dataset layout; give an .npz file with {', '.join(NPZ_KEYS)}, a folder with "
                    f"the IDX files {', '.join(IDX_FILES.values())} (plain or .gz), or a folder with CIFAR-10's "
                    f"binary batches ({CIFAR10_TRAIN_FILES[0]} .. {CIFAR10_TEST_FILE})")


def load_splits(data: Any, *, train_subset: int | None = None, val_size: int | float | None = None,
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
            (at least one image); None: 10 % of the training set, at most 5,000.
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
    if val_size is None:
        n_val = min(DEFAULT_VAL_SIZE, max(1, round(0.1 * n)))
    else:
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
