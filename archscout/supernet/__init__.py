"""Weight sharing: supernets built from a space, trained once, searched and specialised without retraining.

* :func:`create_supernet` builds the supernet of a space (cell spaces: every op on every edge; stage spaces:
  elastic depth, kernel, expand ratio and width), see :mod:`archscout.supernet.build` for the shapes.
* :func:`train_supernet` trains it (``spos``, ``sandwich``, ``ofa``) into a folder, resumable after a kill.
* :class:`SupernetEvaluator` scores sub-networks with inherited weights; any strategy searches over it.
* :func:`search_supernet` runs that search and, for a device and latency budget, exports the specialised
  front (:mod:`archscout.supernet.search`).
* ``darts``, ``pc-darts``, ``proxylessnas`` (with a latency term) and ``rarts`` search the cell by gradient
  (:mod:`archscout.supernet.differentiable`); :func:`derive` reads what they chose. ``few-shot`` splits a
  supernet into sub-supernets by gradient matching (:mod:`archscout.supernet.fewshot`).

Needs ``archscout[nn]``.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "ELASTIC_DIMS": "base", "Supernet": "base",
    "SUPPORTED": "build", "create_supernet": "build", "load_supernet": "build", "supernet_kind": "build",
    "ExtractedModel": "evaluator", "SupernetEvaluator": "evaluator", "recalibrate_bn": "evaluator",
    "eval_supernet": "search", "search_supernet": "search",
    "DIFF_METHODS": "differentiable", "LatencyTerm": "differentiable", "SearchSettings": "differentiable",
    "derive": "differentiable", "FewShotSettings": "fewshot",
    "METHODS": "train", "SupernetError": "train", "TrainSettings": "train", "default_settings": "train",
    "read_meta": "train", "train_supernet": "train",
}


def __getattr__(name: str) -> Any:  # torch loads when a name is first used, not on import
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DIFF_METHODS",
    "ELASTIC_DIMS",
    "METHODS",
    "SUPPORTED",
    "ExtractedModel",
    "FewShotSettings",
    "LatencyTerm",
    "SearchSettings",
    "Supernet",
    "SupernetError",
    "SupernetEvaluator",
    "TrainSettings",
    "create_supernet",
    "default_settings",
    "derive",
    "eval_supernet",
    "load_supernet",
    "read_meta",
    "recalibrate_bn",
    "search_supernet",
    "supernet_kind",
    "train_supernet",
]
