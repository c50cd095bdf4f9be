"""Datasets for training evaluators.

* :mod:`archscout.data.arrays`: :class:`ArrayDataset` (the user's arrays), the registry of named datasets
  (``digits``, ``mnist5k``, ``fashion-mnist``, ``cifar10``; see :func:`list_datasets`) and fixed, seeded,
  stratified :class:`Splits` (:func:`make_splits`, :func:`as_splits`).
* :mod:`archscout.data.files`: datasets read from files with their official test sets (IDX, CIFAR-10 binary,
  ``.npz``) and :func:`load_splits`, the entry point that splits any of them.
* :mod:`archscout.data.augment`: :func:`random_crop_flip` and :class:`Augment`, training-time augmentation
  (torch, imported when it runs).

Images are float32 ``(N, C, H, W)``, labels int64 ``(N,)``. Importing this package needs numpy only.
"""

from __future__ import annotations

from .arrays import (
    DATASETS,
    DEFAULT_FRACTIONS,
    SPLIT_SEED,
    ArrayDataset,
    DatasetInfo,
    Splits,
    as_splits,
    dataset_info,
    list_datasets,
    load_dataset,
    make_splits,
    register_dataset,
)
from .augment import Augment, random_crop_flip
from .files import (
    DEFAULT_VAL_SIZE,
    clear_cache,
    find_dataset,
    load_cifar10,
    load_fashion_mnist,
    load_splits,
    stratified_choice,
)
from .formats import (
    CIFAR10_BINARY_URL,
    DATA_ENV,
    FASHION_MNIST_SYSTEM_DIR,
    IDX_FILES,
    NPZ_KEYS,
    detect_layout,
    load_cifar10_binary,
    load_idx_folder,
    load_npz,
    read_cifar10_batch,
    read_idx,
)

__all__ = [
    "CIFAR10_BINARY_URL",
    "DATASETS",
    "DATA_ENV",
    "DEFAULT_FRACTIONS",
    "DEFAULT_VAL_SIZE",
    "FASHION_MNIST_SYSTEM_DIR",
    "IDX_FILES",
    "NPZ_KEYS",
    "SPLIT_SEED",
    "ArrayDataset",
    "Augment",
    "DatasetInfo",
    "Splits",
    "as_splits",
    "clear_cache",
    "dataset_info",
    "detect_layout",
    "find_dataset",
    "list_datasets",
    "load_cifar10",
    "load_cifar10_binary",
    "load_dataset",
    "load_fashion_mnist",
    "load_idx_folder",
    "load_npz",
    "load_splits",
    "make_splits",
    "random_crop_flip",
    "read_cifar10_batch",
    "read_idx",
    "register_dataset",
    "stratified_choice",
]
