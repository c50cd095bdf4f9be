"""ProxylessNAS on stage supernets (``mbv3`` and other stage spaces): architecture weights over every decision.

The stage supernet (Once-for-All's elastic kernel, expand ratio, depth and width) holds the weights; the
architecture is a factorised categorical distribution with one row of logits per decision: the width
multiplier, each stage's depth, and each layer's kernel size and expand ratio. The elastic choices share their
weights, so the binary gates of the cell version (two ops computed side by side) do not apply; the
architecture step uses ProxylessNAS' REINFORCE form instead (its Section 3.3, for non-differentiable
objectives): two sub-networks are drawn from the distribution, each scored on an architecture batch
(``reward = -loss - latency penalty``), and the logits take the policy-gradient step
``(reward - baseline) * grad log p`` with a moving-average baseline. The latency term may therefore come from
*any* cost model, measured ones included: ``latency_weight * latency_ms``, or with a target the hinge
``latency_weight * max(0, latency / target - 1)``. A weight step trains one sub-network drawn from the
distribution. The derived architecture is the most probable one, or with a target the most probable found at
or under it (greedy, from the most probable: the change that costs least log-probability per ms saved).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import require
from .differentiable import (
    active_accuracy,
    epoch_batches,
    greedy_under,
    latency_penalty,
    peak_rss_mb,
    save_checkpoint,
    save_final,
    start_run,
    sync_study,
)

__all__ = ["StagePolicy", "run_stage_search"]


class StagePolicy:
    """One row of logits per decision of a stage supernet: ``width_mult`` (when it varies), each stage's depth,
    and each layer slot's kernel and expand ratio (slots beyond a stage's depth are ignored)."""

    def __init__(self, net: Any) -> None:
        torch = require("torch", "nn")
        c = net.choices()
        self.net = net
        self.n_stages = int(c["stages"])
        self.kernels, self.expands, self.depths = c["kernel"], c["expand"], c["depth"]
        self.wms = c["width_mult"]
        self.labels: list[str] = []
        self.options: list[list[Any]] = []
        if self.wms is not None and len(self.wms) > 1:
            self._add("width_mult", self.wms)
        for i in range(self.n_stages):
            self._add(f"stage {i + 1} depth", self.depths)
            for j in range(max(self.depths)):
                self._add(f"stage {i + 1} layer {j + 1} kernel", self.kernels)
                self._add(f"stage {i + 1} layer {j + 1} expand", self.expands)
        self.logits = [torch.nn.Parameter(torch.zeros(len(o))) for o in self.options]

    def _add(self, label: str, options: Sequence[Any]) -> None:
        self.labels.append(label)
        self.options.append(list(options))

    def parameters(self) -> list[Any]:
        return list(self.logits)

    def probs(self) -> list[Any]:
        torch = require("torch", "nn")
        return [torch.softmax(v, dim=0) for v in self.logits]

    def sample(self, rng: np.random.Generator) -> list[int]:
        return [int(rng.choice(len(p), p=(q := p.detach().double().numpy()) / q.sum())) for p in self.probs()]

    def argmax(self) -> list[int]:
        return [int(v.detach().argmax()) for v in self.logits]

    def log_prob(self, idx: Sequence[int]) -> Any:
        torch = require("torch", "nn")
        return sum(torch.log_softmax(v, dim=0)[k] for v, k in zip(self.logits, idx))

    def arch(self, idx: Sequence[int]) -> Any:
        pick = {label: self.options[n][k] for n, (label, k) in enumerate(zip(self.labels, idx))}
        wm = pick.get("width_mult", None if self.wms is None else self.wms[0])
        stages = []
        for i in range(self.n_stages):
            d = pick[f"stage {i + 1} depth"]
            stages.append([(pick[f"stage {i + 1} layer {j + 1} kernel"], pick[f"stage {i + 1} layer {j + 1} expand"])
                           for j in range(d)])
        return self.net.make_arch(wm, stages)

    def state_dict(self) -> dict[str, Any]:
        return {"logits": [v.detach().clone() for v in self.logits]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch = require("torch", "nn")
        with torch.no_grad():
            for v, s in zip(self.logits, state["logits"]):
                v.copy_(s)


def derive_index(policy: StagePolicy, search: Any, model: Any) -> list[int]:
    """The most probable architecture, or with a latency target the most probable found at or under it."""
    idx = policy.argmax()
    if model is None or search.latency_target_ms is None:
        return idx
    logp = [np.log(np.clip(p.detach().double().numpy(), 1e-30, None)) for p in policy.probs()]
    memo: dict[tuple[int, ...], float] = {}

    def lat(i: Sequence[int]) -> float:
        key = tuple(i)
        if key not in memo:
            memo[key] = float(model.predict(policy.arch(i)))
        return memo[key]

    found = greedy_under(logp, idx, lat, search.latency_target_ms)
    return idx if found is None else found


def run_stage_search(*, net: Any, opt: Any, meta: dict[str, Any], folder: Path, splits: Any, search: Any,
                     device: str, start: int, ckpt: Any, augment_fn: Any, stop: int, progress: bool,
                     latency_model: Any, storage: str | None, write_meta: Any) -> dict[str, Any]:
    """The epochs of ``proxylessnas`` on a stage supernet (called by
    :func:`~archscout.supernet.train_supernet`)."""
    torch = require("torch", "nn")
    F = require("torch.nn.functional", "nn")
    from .train import SupernetError, cosine_lr, progress_bar

    s = meta["settings"]
    seed, batch, epochs = int(s["seed"]), int(s["batch_size"]), int(s["epochs"])
    policy = StagePolicy(net)
    arch_opt = torch.optim.Adam(policy.parameters(), lr=search.arch_lr, betas=(0.0, 0.999),
                                weight_decay=search.arch_weight_decay)
    baseline = None
    if ckpt is not None:
        try:
            policy.load_state_dict(ckpt["arch"])
            arch_opt.load_state_dict(ckpt["arch_optimizer"])
            baseline = ckpt.get("baseline")
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise SupernetError(f"{os.fspath(folder / 'checkpoint.pt')!r} lacks this method's architecture state "
                                f"({str(e)[:80]}); delete it or use another --out folder") from None
    meta["decisions"] = [{"decision": label, "options": [str(o) for o in opts]}
                         for label, opts in zip(policy.labels, policy.options)]
    run = start_run(meta, folder, splits, search, device, storage, latency_model is not None)
    h, per_epoch, history, study = run.h, run.per_epoch, run.history, run.study
    if meta.get("finished"):
        return meta
    bar = progress_bar(per_epoch * epochs, start * per_epoch, progress)
    net.train()
    try:
        for epoch in range(start, stop):
            rng = np.random.default_rng([seed, epoch, 1])
            search_on = epoch >= search.warmup_epochs
            t0, losses, rewards = time.time(), [], []
            for b, x, y, xa, ya in epoch_batches(h, seed, epoch, batch, augment_fn, device):
                step = epoch * per_epoch + b
                for group in opt.param_groups:
                    group["lr"] = cosine_lr(s["lr"], step, per_epoch, epochs, meta.get("schedule"))
                if search_on:  # REINFORCE over two sampled sub-networks
                    picks = [policy.sample(rng) for _ in range(2)]
                    rs = []
                    with torch.no_grad():
                        for idx in picks:
                            net.set_active(policy.arch(idx))
                            r = -float(F.cross_entropy(net(xa), ya))
                            if latency_model is not None:
                                r -= latency_penalty(float(latency_model.predict(policy.arch(idx))), search)
                            rs.append(r)
                    mean = float(np.mean(rs))
                    baseline = mean if baseline is None else 0.9 * baseline + 0.1 * mean
                    arch_opt.zero_grad(set_to_none=True)
                    loss_pg = -sum((r - baseline) * policy.log_prob(idx) for r, idx in zip(rs, picks)) / len(picks)
                    loss_pg.backward()
                    arch_opt.step()
                    rewards.append(mean)
                opt.zero_grad(set_to_none=True)
                net.set_active(policy.arch(policy.sample(rng)))
                loss = F.cross_entropy(net(x), y)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                opt.step()
                losses.append(float(loss.detach()))
                if not math.isfinite(losses[-1]):
                    from ..training import TrainingDivergedError
                    raise TrainingDivergedError(f"the proxylessnas training loss became {losses[-1]} in epoch "
                                                f"{epoch + 1}; lower --lr or --arch-lr")
                bar.set_description_str(f"epoch {epoch + 1}/{epochs} loss {np.mean(losses[-50:]):.3f}", refresh=False)
                bar.update(1)
            idx = derive_index(policy, search, latency_model)
            arch = policy.arch(idx)
            net.set_active(arch)
            accuracy = active_accuracy(net, h, device)
            probs = [p.detach() for p in policy.probs()]
            ent = float(np.mean([float(-(p.clamp_min(1e-30).log() * p).sum()) for p in probs]))
            metrics = {"accuracy": accuracy, "epoch": float(epoch + 1), "skip_count": 0.0,
                       "entropy": ent}
            if latency_model is not None:
                metrics["latency_ms"] = float(latency_model.predict(arch))
            t1 = time.time()
            history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)),
                            "arch_loss": -float(np.mean(rewards)) if rewards else None, "time_s": round(t1 - t0, 2),
                            "t_start": t0, "t_end": t1, "derived": str(arch), "metrics": metrics,
                            "weights": [[round(float(v), 6) for v in p] for p in probs], "edge_weights": None,
                            "search": search_on, "peak_rss_mb": round(peak_rss_mb(), 1)})
            save_checkpoint(folder, net, opt, epoch + 1, arch=policy.state_dict(),
                            arch_optimizer=arch_opt.state_dict(), baseline=baseline)
            meta.update(epochs_done=epoch + 1, history=history, finished=epoch + 1 >= epochs, derived=str(arch))
            write_meta(meta)
            sync_study(study, history)
    finally:
        bar.close()
    if meta["finished"]:
        save_final(folder, net, policy.state_dict())
    return meta
