"""Few-shot supernets: one supernet split into sub-supernets on the most contested edges.

Zhao et al. (few-shot NAS, 2021) split a one-shot supernet on an edge into one sub-supernet per op of that
edge, each fine-tuned from the parent, so that fewer architectures share each weight. GM-NAS (Hu et al.,
2022) chooses where and how to split by *gradient matching*: on the trained parent, for every edge and op,
the gradient of the shared weights (all but that edge's own ops) is averaged over a few batches, with the
other edges' ops drawn at random and the same for every op; ops whose gradients agree (cosine similarity)
stay together. Each edge's best balanced split into two groups (2 + 3 of five ops, as GM-NAS on NB201) is the
one of least similarity across the groups; the
``split_edges`` edges of least cross similarity are split, giving ``2 ** split_edges`` sub-supernets.
``split_by="exhaustive"`` splits the given ``edges`` (default: the first) into one sub-supernet per op.

The run is one folder: ``parent/`` (an ordinary supernet folder trained with the ``base`` method),
``sub-<i>/`` (each a supernet folder trained from the parent's weights on its region only) and
``supernet.json`` (the settings, the split and its gradient-matching scores). The epochs are one budget:
the parent trains ``epochs - n * sub_epochs`` of them and each of the ``n`` sub-supernets ``sub_epochs =
floor((1 - parent_fraction) * epochs / n)``, so a few-shot run and a one-shot run of the same ``epochs``
train the same number of epochs (``sub_epochs=k`` gives GM-NAS' protocol instead: each sub-supernet trains ``k``
epochs after a parent of ``epochs - k``, so that every path through the split trains ``epochs``). As in GM-NAS,
the parent and each sub-supernet follow one learning-rate
schedule of ``parent + sub_epochs`` epochs: the parent trains its start, and each sub-supernet goes on from
there with the parent's weights and optimizer state. Every part resumes after a kill.

:class:`~archscout.supernet.SupernetEvaluator` scores an architecture with the sub-supernet whose region holds
it; with a differentiable ``base`` each sub-supernet derives a cell and :func:`derive_few_shot` keeps the one
of best validation accuracy.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._validate import check_choice, check_int, check_number
from ..errors import ConfigError, require

__all__ = ["FewShotSettings", "derive_few_shot", "gradient_matching", "region_of"]

BASES = ("spos", "darts", "pc-darts", "proxylessnas", "rarts")


@dataclass(frozen=True)
class FewShotSettings:
    """How a few-shot run splits (stored in ``supernet.json`` under ``"few_shot"``).

    Attributes:
        base: the weight-training method of the parent and the sub-supernets (``spos`` or a differentiable one).
        split_by: ``"gm"`` (gradient matching chooses edges and groups) or ``"exhaustive"`` (one sub-supernet
            per op of each of ``edges``).
        split_edges: edges split by gradient matching (``2 ** split_edges`` sub-supernets).
        edges: the edges split exhaustively (indices into the cell's edges; default ``[0]``).
        parent_fraction: the share of the epochs the parent trains (the rest is shared by the sub-supernets).
        sub_epochs: GM-NAS' protocol instead: each sub-supernet trains this many epochs and the parent
            ``epochs - sub_epochs``, so every path through the split trains ``epochs`` epochs and the whole run
            ``epochs + (n - 1) * sub_epochs`` (None: the equal-total split above).
        gm_batches: batches averaged per gradient in gradient matching.
    """

    base: str = "spos"
    split_by: str = "gm"
    split_edges: int = 1
    edges: tuple[int, ...] | None = None
    parent_fraction: float = 0.5
    gm_batches: int = 4
    sub_epochs: int | None = None

    def __post_init__(self) -> None:
        check_choice("base", self.base, BASES)
        check_choice("split_by", self.split_by, ("gm", "exhaustive"))
        check_int("split_edges", self.split_edges, 1)
        check_number("parent_fraction", self.parent_fraction, 0.0, 1.0, low_open=True, high_open=True)
        check_int("gm_batches", self.gm_batches, 1)
        if self.sub_epochs is not None:
            check_int("sub_epochs", self.sub_epochs, 1)
        if self.edges is not None:
            if not self.edges or any(isinstance(e, bool) or not isinstance(e, int) or e < 0 for e in self.edges):
                raise ConfigError(f"few-shot edges must be edge indices (0, 1, ...), got {self.edges!r}")
            if self.split_by != "exhaustive":
                raise ConfigError("edges= names the edges of an exhaustive split; add split_by='exhaustive'")


def plan(epochs: int, n_subs: int, parent_fraction: float) -> tuple[int, int]:
    """``(parent epochs, epochs per sub-supernet)`` for a budget of ``epochs`` in all."""
    sub = int((1.0 - parent_fraction) * epochs // n_subs)
    if sub < 1:
        need = math.ceil(n_subs / (1.0 - parent_fraction) - 1e-9)
        raise ConfigError(f"{epochs} epochs cannot train {n_subs} sub-supernets for at least one epoch each after "
                          f"the parent ({parent_fraction:g} of them); give at least {need} epochs, a smaller "
                          "parent_fraction, or split fewer edges")
    return epochs - n_subs * sub, sub


def region_of(path: Sequence[int], regions: Sequence[Sequence[Sequence[int]]]) -> int:
    """The index of the region (ops allowed per edge) that holds ``path``.

    Raises:
        ConfigError: no region holds it (the regions do not cover the space).
    """
    for r, region in enumerate(regions):
        if all(int(k) in ops for k, ops in zip(path, region)):
            return r
    raise ConfigError(f"no sub-supernet holds the path {list(path)}")


# --- gradient matching ----------------------------------------------------------------------------------
def _best_bipartition(sim: np.ndarray) -> tuple[list[int], list[int], float]:
    """The balanced split of ``range(n)`` into groups of ``n // 2`` and ``n - n // 2`` ops (as GM-NAS splits
    NB201's five ops 2 + 3) with the least mean similarity across the groups, which for groups of fixed sizes is
    the split of most similarity within them."""
    n = len(sim)
    r = max(1, n // 2)
    best: tuple[list[int], list[int], float] | None = None
    for a in itertools.combinations(range(n), r):
        b = [i for i in range(n) if i not in a]
        if r == n - r and 0 not in a:
            continue  # each split once
        cross = float(np.mean([sim[i, j] for i in a for j in b]))
        if best is None or cross < best[2]:
            best = (list(a), b, cross)
    assert best is not None
    return best


def gradient_matching(net: Any, X: Any, Y: Any, *, batches: int, batch_size: int, seed: int,
                      device: str = "cpu") -> list[dict[str, Any]]:
    """GM-NAS's split scores of every edge of a cell supernet: ``[{"edge", "groups": [[op...], [op...]],
    "cross_similarity", "similarity": matrix}]`` (ops by index into ``net.op_names``)."""
    torch = require("torch", "nn")
    F = require("torch.nn.functional", "nn")
    rng = np.random.default_rng([seed, 31])
    n_edges, n_ops = net.n_edges, len(net.op_names)
    idx = [rng.choice(len(Y), size=min(batch_size, len(Y)), replace=False) for _ in range(batches)]
    paths = [[int(rng.integers(n_ops)) for _ in range(n_edges)] for _ in range(batches)]
    named = list(net.named_parameters())
    net.train()
    out = []
    for e in range(n_edges):
        own = f".candidates.{e}."
        shared = [(n, p) for n, p in named if own not in n]
        grads = []
        for k in range(n_ops):
            total: Any = None
            for b in range(batches):
                path = list(paths[b])
                path[e] = k
                net.set_path(path)
                x = X[np.sort(idx[b])].to(device)
                y = Y[np.sort(idx[b])].to(device)
                g = torch.autograd.grad(F.cross_entropy(net(x), y), [p for _, p in shared], allow_unused=True)
                flat = torch.cat([(gi if gi is not None else torch.zeros_like(p)).reshape(-1)
                                  for gi, (_, p) in zip(g, shared)])
                total = flat if total is None else total + flat
            grads.append(total / batches)
        G = torch.stack(grads)
        G = G / G.norm(dim=1, keepdim=True).clamp_min(1e-12)
        sim = (G @ G.T).detach().cpu().numpy().astype(float)
        ga, gb, cross = _best_bipartition(sim)
        out.append({"edge": e, "groups": [ga, gb], "cross_similarity": cross,
                    "similarity": [[round(float(v), 5) for v in row] for row in sim]})
    return out


# --- training ---------------------------------------------------------------------------------------------
def _regions(split: Sequence[tuple[int, Sequence[Sequence[int]]]], n_edges: int, n_ops: int) -> list[list[list[int]]]:
    """Every combination of one group per split edge, as ops allowed per edge."""
    out = []
    for combo in itertools.product(*[groups for _, groups in split]):
        region = [list(range(n_ops)) for _ in range(n_edges)]
        for (e, _), group in zip(split, combo):
            region[e] = sorted(int(k) for k in group)
        out.append(region)
    return out


def train_few_shot(space: Any, data: Any, out: Any, *, settings: Any, train_subset: Any, val_size: Any,
                   options: Any, accelerator: str, threads: Any, progress: bool, stop_after_epoch: Any,
                   search: Any, latency_model: Any, storage: Any, few_shot: Mapping[str, Any] | None) -> dict[str, Any]:
    """The few-shot method of :func:`~archscout.supernet.train_supernet` (same arguments)."""
    torch = require("torch", "nn")
    from .build import load_supernet
    from .train import FORMAT, VERSION, SupernetError, atomic_json, read_meta, train_supernet

    try:
        given: dict[str, Any] = {k: (tuple(v) if k == "edges" and v is not None else v)
                                 for k, v in (few_shot or {}).items()}
        fs = FewShotSettings(**given)
    except TypeError as e:
        raise ConfigError(f"unknown few-shot setting: {e}") from None
    s = settings
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {os.fspath(out)!r} is a file; give a folder")
    cell = next(iter(space.params.values()))
    n_ops, n_edges = len(cell.ops), len(cell.edges)
    edges = list(fs.edges or (0,))  # the edges of an exhaustive split
    if fs.split_by == "exhaustive":
        if any(e >= n_edges for e in edges) or len(set(edges)) != len(edges):
            raise ConfigError(f"few-shot edges {edges} must be distinct edge indices below {n_edges}")
        n_subs = n_ops ** len(edges)
    else:
        if fs.split_edges > n_edges:
            raise ConfigError(f"split_edges={fs.split_edges} exceeds the cell's {n_edges} edges")
        n_subs = 2 ** fs.split_edges
    if fs.sub_epochs is None:
        parent_epochs, sub_epochs = plan(s.epochs, n_subs, fs.parent_fraction)
    elif fs.sub_epochs >= s.epochs:
        raise ConfigError(f"sub_epochs ({fs.sub_epochs}) must be fewer than epochs ({s.epochs}): the parent trains "
                          "the difference")
    else:
        parent_epochs, sub_epochs = s.epochs - fs.sub_epochs, fs.sub_epochs
    if fs.base != "spos":  # the parent's and the sub-supernets' settings are checked before anything trains
        from .differentiable import make_search_settings
        for n in (parent_epochs, sub_epochs):
            make_search_settings(fs.base, n, search or {})
    common = {"train_subset": train_subset, "val_size": val_size, "options": options, "accelerator": accelerator,
              "threads": threads, "progress": progress, "search": search, "latency_model": latency_model,
              "seed": s.seed}
    base_settings = {k: v for k, v in asdict(s).items() if k not in ("method", "epochs", "seed")}
    if fs.base != "spos":
        base_settings.pop("sampling", None)
    meta: dict[str, Any] = {"format": FORMAT, "version": VERSION, "space": space.to_config(),
                            "settings": asdict(s), "few_shot": asdict(fs), "parent_epochs": parent_epochs,
                            "sub_epochs": sub_epochs, "n_subs": n_subs}
    meta_path = folder / "supernet.json"
    if meta_path.exists():
        old = read_meta(folder)
        if {k: old.get(k) for k in ("space", "settings", "few_shot")} != \
                json.loads(json.dumps({k: meta[k] for k in ("space", "settings", "few_shot")})):
            raise SupernetError(f"{os.fspath(folder)!r} holds a supernet trained with other settings; give the same "
                                "command to resume it, or another --out folder")
        meta.update({k: old[k] for k in ("split", "gm", "regions") if k in old})
    folder.mkdir(parents=True, exist_ok=True)
    budget = [stop_after_epoch if stop_after_epoch is not None else s.epochs]  # epochs this call may still train

    def run(sub_out: Path, epochs: int, **extra: Any) -> dict[str, Any] | None:
        done = read_meta(sub_out).get("epochs_done", 0) if (sub_out / "supernet.json").exists() else 0
        if stop_after_epoch is not None and budget[0] <= 0 and done < epochs:
            return None
        stop = None if stop_after_epoch is None else done + max(0, budget[0])
        m = train_supernet(space, data, sub_out, method=fs.base, epochs=epochs, settings=base_settings,
                           stop_after_epoch=stop, storage=None, **common, **extra)
        if stop_after_epoch is not None:
            budget[0] -= m["epochs_done"] - done
        return m

    atomic_json(meta_path, {**meta, "epochs_done": 0, "finished": False, "history": []})
    schedule = parent_epochs + sub_epochs  # one cosine schedule: the parent its start, each sub-supernet the rest
    parent = run(folder / "parent", parent_epochs, _schedule={"offset": 0, "length": schedule})
    if parent is None or not parent.get("finished"):
        return _write(meta_path, meta, folder)
    if "split" not in meta:
        if fs.split_by == "exhaustive":
            split = [(e, [[k] for k in range(n_ops)]) for e in edges]
        else:
            from ..data import load_splits

            net, pmeta = load_supernet(folder / "parent")
            ds = pmeta["data"]
            sp = load_splits(ds["data"], train_subset=ds["train_subset"], val_size=ds["val_size"],
                             seed=ds["split_seed"])
            scores = gradient_matching(net, torch.from_numpy(np.array(sp.X_train)),
                                       torch.from_numpy(np.array(sp.y_train)), batches=fs.gm_batches,
                                       batch_size=s.batch_size, seed=s.seed)
            chosen = sorted(scores, key=lambda r: r["cross_similarity"])[: fs.split_edges]
            split = [(r["edge"], r["groups"]) for r in sorted(chosen, key=lambda r: r["edge"])]
            meta["gm"] = scores
        meta["split"] = [{"edge": e, "groups": g} for e, g in split]
        meta["regions"] = _regions(split, n_edges, n_ops)
        _write(meta_path, meta, folder)
    for i, region in enumerate(meta["regions"]):
        m = run(folder / f"sub-{i}", sub_epochs, _region=region, init_from=folder / "parent",
                _schedule={"offset": parent_epochs, "length": schedule})
        if m is None or not m.get("finished"):
            return _write(meta_path, meta, folder)
    return _write(meta_path, meta, folder)


def _write(meta_path: Path, meta: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Refresh the few-shot folder's ``supernet.json`` from its parts (epochs done, history, finished)."""
    from .train import atomic_json, read_meta

    history: list[dict[str, Any]] = []
    done = 0
    parts = ["parent"] + [f"sub-{i}" for i in range(len(meta.get("regions") or []))]
    finished = bool(meta.get("regions"))
    for name in parts:
        if not (folder / name / "supernet.json").exists():
            finished = False
            continue
        m = read_meta(folder / name)
        done += int(m.get("epochs_done", 0))
        history += [{**h, "part": name} for h in m.get("history", [])]
        finished = finished and bool(m.get("finished"))
    first: dict[str, Any] = read_meta(folder / "parent") if (folder / "parent" / "supernet.json").exists() else {}
    copied: dict[str, Any] = {k: first[k] for k in ("supernet", "data", "data_sizes", "data_name", "augment")
                              if k in first}
    out: dict[str, Any] = {**meta, **copied, "epochs_done": done, "history": history, "finished": finished}
    atomic_json(meta_path, out)
    return out


# --- reading ---------------------------------------------------------------------------------------------
def load_parts(folder: str | os.PathLike, meta: Mapping[str, Any]) -> list[tuple[list[list[int]], Any]]:
    """``[(region, supernet)]`` of a finished few-shot folder (each sub-supernet on the CPU, eval mode).

    Raises:
        SupernetError: the run has not finished.
    """
    from .build import load_supernet
    from .train import SupernetError

    if not meta.get("finished"):
        raise SupernetError(f"the few-shot supernet in {os.fspath(folder)!r} has not finished training "
                            f"({meta.get('epochs_done', 0)}/{meta['settings']['epochs']} epochs); run the same "
                            "'archscout supernet train' command again to resume it")
    return [(region, load_supernet(Path(folder) / f"sub-{i}")[0]) for i, region in enumerate(meta["regions"])]


def derive_few_shot(folder: str | os.PathLike, meta: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`~archscout.supernet.differentiable.derive` of a few-shot run with a differentiable base: each
    sub-supernet's derived cell, and the best of them by validation accuracy (with its sub-supernet's
    weights)."""
    from .differentiable import summarise
    from .train import SupernetError, read_meta

    if meta["few_shot"]["base"] == "spos":
        raise SupernetError(f"{os.fspath(folder)!r} holds a few-shot spos supernet, which derives nothing: search it "
                            "with 'archscout supernet search' (its sub-supernets score every architecture)")
    subs = []
    for i in range(len(meta.get("regions") or [])):
        sub = Path(folder) / f"sub-{i}"
        if (sub / "supernet.json").exists():
            m = read_meta(sub)
            if m.get("history"):
                subs.append({"sub": i, "region": meta["regions"][i], **summarise(m)})
    if not subs:
        raise SupernetError(f"{os.fspath(folder)!r} has no sub-supernet with a finished epoch yet; run the same "
                            "'archscout supernet train' command to resume it")
    best = max(subs, key=lambda d: d["accuracy"])
    return {**best, "method": "few-shot", "base": meta["few_shot"]["base"], "finished": bool(meta.get("finished")),
            "epochs_done": meta.get("epochs_done"), "split": meta.get("split"), "best_sub": best["sub"],
            "sub_supernets": [{"sub": d["sub"], "region": d["region"], "arch": d["arch"], "accuracy": d["accuracy"]}
                              for d in subs]}
