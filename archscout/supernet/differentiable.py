"""Differentiable architecture search on cell supernets: DARTS, PC-DARTS, ProxylessNAS and RARTS.

These methods train the supernet's weights *and* architecture weights ``alpha`` (one row of op logits per edge,
shared by every cell, as in NAS-Bench-201's DARTS), and derive the cell from ``alpha``: on each edge the op of
largest weight. The training images are split in two, seeded: ``arch_fraction`` of them train ``alpha``
(the "validation" half of the bi-level problem), the others the weights; the supernet's own validation split
stays out of both and scores the derived cell after every epoch.

``darts``         Liu et al. 2019: each edge computes the softmax(alpha)-weighted sum of its ops. Per step, alpha
                  takes an Adam step on the architecture half, then the weights an SGD step on the weight half.
                  ``order=2`` uses the unrolled (second-order) gradient: one virtual SGD step of the weights and
                  a finite-difference Hessian-vector product (four more passes per step).
``pc-darts``      Xu et al. 2020: the ops of an edge see ``1/K`` of the channels (``partial_k``; the others
                  bypass it, then the channels are shuffled) and edge normalisation weighs each node's incoming
                  edges by a softmax of their own parameters ``beta``; alpha waits ``warmup_epochs``. On NB201's
                  cell (every edge kept) the normalisation changes the training, not the choice per edge.
``proxylessnas``  Cai et al. 2019: binary gates. A weight step trains one path drawn from softmax(alpha); an
                  architecture step draws two ops per edge, runs the one its gate picks, and gives both ops'
                  alpha the gate's gradient (BinaryConnect); without a latency term the two logits are then
                  shifted so that the other ops keep their probabilities. The optional latency term adds the
                  *expected* latency of the architecture distribution, exact over every cell (see
                  :class:`LatencyTerm`), either weighted (``latency_weight`` per ms) or as a hinge above a target
                  (``latency_target_ms``); with a target, derivation picks the most probable cell at or under
                  it.
``rarts``         Xue, Qi & Xin 2021 (relaxed architecture search): two copies of the weights, ``w`` on the weight
                  half and ``y`` on the architecture half, coupled by a proximal term; one step descends
                  ``L_w(w, alpha) + lam * L_a(y, alpha) + beta / 2 * ||w - y||^2`` in ``w``, ``y`` and alpha at
                  once (first order, no approximation of the bi-level problem).

DARTS' known failure on NAS-Bench-201 (alpha drifts to parameter-free ops, ending at the all-skip cell) is
reported, not hidden: the derived cell and its skip count are recorded per epoch. The remedies are options,
off by default for ``darts``: ``skip_limit`` (DARTS+'s early stopping: stop once the derived cell holds that
many skip connections and keep the last cell before), and ``edge_norm`` (PC-DARTS's edge normalisation).

Each epoch's derived cell, its validation accuracy with the supernet's weights and the architecture weights
are recorded in a study storage (``study.db`` in the folder, or ``storage``), so ``archscout show`` and the
study reports read a differentiable search as any other; :func:`derive` reads the result. ``proxylessnas`` on
stage spaces is :mod:`archscout.supernet.stage_search`.
"""

from __future__ import annotations

import copy
import math
import os
import resource
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._validate import check_choice, check_int, check_number
from ..errors import ConfigError, require

__all__ = ["DIFF_METHODS", "ArchParameters", "LatencyTerm", "SearchSettings", "derive", "search_defaults"]

DIFF_METHODS = ("darts", "pc-darts", "proxylessnas", "rarts")
ENUMERATE_LIMIT = 1 << 17
"""Spaces of at most this many cells get the exact expected latency (a table of every cell's latency)."""


@dataclass(frozen=True)
class SearchSettings:
    """Settings of a differentiable method (stored in ``supernet.json`` under ``"search"``).

    Attributes:
        arch_lr: Adam learning rate of the architecture weights.
        arch_weight_decay: L2 penalty of the architecture weights.
        arch_fraction: the share of the training images that trains the architecture weights.
        order: 1 (first-order) or 2 (DARTS' unrolled gradient; ``darts`` and ``pc-darts``).
        partial_k: PC-DARTS' channel fraction ``1/K`` (1: every channel).
        edge_norm: PC-DARTS' edge normalisation.
        warmup_epochs: epochs that train the weights only (architecture weights uniform) before alpha moves.
        skip_limit: DARTS+ early stopping: end the search when the derived cell holds this many skip
            connections, keeping the cell of the epoch before (None: off).
        latency_weight: ProxylessNAS's latency term, loss per ms of expected latency (or, with a target, the
            weight of the hinge ``max(0, E[lat] / target - 1)``).
        latency_target_ms: ProxylessNAS's latency target (ms).
        rarts_lam: RARTS' weight of the architecture half's loss.
        rarts_beta: RARTS' proximal coupling of the two weight copies.
    """

    arch_lr: float = 3e-4
    arch_weight_decay: float = 1e-3
    arch_fraction: float = 0.5
    order: int = 1
    partial_k: int = 1
    edge_norm: bool = False
    warmup_epochs: int = 0
    skip_limit: int | None = None
    latency_weight: float | None = None
    latency_target_ms: float | None = None
    rarts_lam: float = 1.0
    rarts_beta: float = 0.01

    def __post_init__(self) -> None:
        check_number("arch_lr", self.arch_lr, 0.0, low_open=True)
        check_number("arch_weight_decay", self.arch_weight_decay, 0.0)
        check_number("arch_fraction", self.arch_fraction, 0.0, 1.0, low_open=True, high_open=True)
        check_choice("order", self.order, (1, 2))
        check_int("partial_k", self.partial_k, 1)
        if not isinstance(self.edge_norm, bool):
            raise ConfigError(f"edge_norm must be true or false, got {self.edge_norm!r}")
        check_int("warmup_epochs", self.warmup_epochs, 0)
        if self.skip_limit is not None:
            check_int("skip_limit", self.skip_limit, 1)
        if self.latency_weight is not None:
            check_number("latency_weight", self.latency_weight, 0.0, low_open=True)
        if self.latency_target_ms is not None:
            check_number("latency_target_ms", self.latency_target_ms, 0.0, low_open=True)
        check_number("rarts_lam", self.rarts_lam, 0.0, low_open=True)
        check_number("rarts_beta", self.rarts_beta, 0.0)


def search_defaults(method: str, epochs: int) -> dict[str, Any]:
    """Each method's defaults. The architecture learning rates are 10x the papers' (DARTS 3e-4, PC-DARTS 6e-4,
    ProxylessNAS 6e-4) because a default CPU run takes about 12x fewer steps than theirs (25 epochs of
    4,000 images against 50 of 25,000 at batch 64); PC-DARTS' channel
    fraction is 1/2 so that, at the default C=8, each op sees 4 channels as the paper's 1/4 of C=16 does; the
    weights of ``pc-darts`` and ``proxylessnas`` warm up for half the epochs (the papers: 15 of 50, and 40 of
    120 on ImageNet) because the supernet sees far fewer images."""
    if method == "darts":
        return {"arch_lr": 3e-3, "arch_weight_decay": 1e-3}
    if method == "pc-darts":
        return {"arch_lr": 6e-3, "arch_weight_decay": 1e-3, "partial_k": 2, "edge_norm": True,
                "warmup_epochs": epochs // 2}
    if method == "proxylessnas":  # Adam(beta1=0), no decay
        return {"arch_lr": 6e-3, "arch_weight_decay": 0.0, "warmup_epochs": epochs // 2}
    if method == "rarts":
        return {"arch_lr": 3e-3, "arch_weight_decay": 1e-3}
    raise ConfigError(f"unknown differentiable method {method!r}; use one of {list(DIFF_METHODS)}")


def make_search_settings(method: str, epochs: int, given: Mapping[str, Any]) -> SearchSettings:
    """Method defaults overridden by ``given`` (None values ignored), checked.

    Raises:
        ConfigError: an unknown or bad setting, or one that does not fit the method.
    """
    values = search_defaults(method, epochs)
    values.update({k: v for k, v in given.items() if v is not None})
    try:
        s = SearchSettings(**values)
    except TypeError as e:
        raise ConfigError(f"unknown differentiable search setting: {e}") from None
    if s.order == 2 and method not in ("darts", "pc-darts"):
        raise ConfigError(f"order=2 (the unrolled gradient) is DARTS'; method {method!r} is first order")
    if (s.latency_weight is not None or s.latency_target_ms is not None) and method != "proxylessnas":
        raise ConfigError(f"a latency term (latency weight or target) is ProxylessNAS's; use --method proxylessnas, "
                          f"not {method!r}")
    if s.partial_k > 1 and method not in ("pc-darts", "darts"):
        raise ConfigError(f"partial channels (partial_k={s.partial_k}) belong to pc-darts, not {method!r}")
    if s.edge_norm and method not in ("pc-darts", "darts"):
        raise ConfigError(f"edge normalisation belongs to pc-darts (and darts as a remedy), not {method!r}")
    if s.warmup_epochs >= epochs:
        raise ConfigError(f"warmup_epochs ({s.warmup_epochs}) must be fewer than epochs ({epochs}), or the "
                          "architecture never moves")
    return s


# --- architecture weights --------------------------------------------------------------------------------
def _torch() -> Any:
    return require("torch", "nn")


class ArchParameters:
    """The architecture weights of a cell supernet: ``alpha`` ``(edges, ops)`` and, with edge normalisation,
    ``beta`` ``(edges,)``; ``mask`` (``(edges, ops)`` booleans) removes ops (few-shot sub-supernets)."""

    def __init__(self, n_edges: int, n_ops: int, heads: Sequence[int], *, edge_norm: bool, seed: int,
                 mask: Any = None) -> None:
        torch = _torch()
        g = torch.Generator().manual_seed(seed)
        self.alpha = torch.nn.Parameter(1e-3 * torch.randn(n_edges, n_ops, generator=g))
        self.beta = torch.nn.Parameter(1e-3 * torch.randn(n_edges, generator=g)) if edge_norm else None
        self.heads = [int(h) for h in heads]  # the node each edge enters
        self.mask = (torch.ones(n_edges, n_ops, dtype=torch.bool) if mask is None
                     else torch.as_tensor(np.asarray(mask, dtype=bool)))
        if not bool(self.mask.any(dim=1).all()):
            raise ConfigError("every edge needs at least one op left by the mask")

    def parameters(self) -> list[Any]:
        return [self.alpha] + ([self.beta] if self.beta is not None else [])

    def logits(self) -> Any:
        return self.alpha.masked_fill(~self.mask, float("-inf"))

    def probs(self) -> Any:
        """softmax(alpha) per edge (masked ops weigh 0); differentiable."""
        return _torch().softmax(self.logits(), dim=-1)

    def edge_weights(self) -> Any:
        """Edge normalisation: softmax of ``beta`` over the edges entering each node, or None."""
        if self.beta is None:
            return None
        torch = _torch()
        out = torch.zeros_like(self.beta)
        heads = torch.tensor(self.heads)
        for h in sorted(set(self.heads)):
            sel = heads == h
            out = out.masked_scatter(sel, torch.softmax(self.beta[sel], dim=0))
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"alpha": self.alpha.detach().clone(), "mask": self.mask.clone(),
                **({"beta": self.beta.detach().clone()} if self.beta is not None else {})}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        with _torch().no_grad():
            self.alpha.copy_(state["alpha"])
            if self.beta is not None:
                self.beta.copy_(state["beta"])


def cell_heads(net: Any) -> list[int]:
    """The node each edge of the supernet's cells enters."""
    return [j for (_, j) in net.mixed_cells()[0].edges]


# --- the latency term ---------------------------------------------------------------------------------------
class LatencyTerm:
    """A cheap latency model made differentiable over the architecture weights.

    ``expected(p)`` is the expected latency of a cell drawn edge by edge from ``p`` (``(edges, ops)``): exact
    for spaces of at most :data:`ENUMERATE_LIMIT` cells (every cell's latency is read once into a tensor and
    contracted with ``p`` one edge at a time), otherwise the first-order expansion around the most probable
    cell ``c``: ``lat(c) + sum_e sum_k p[e, k] (lat(c with op k on edge e) - lat(c))``, exact for additive
    models such as a lookup table of ops.

    Args:
        model: any cost model with ``predict(arch) -> ms`` (table, LUT, learned predictor...).
        space: the cell space; net: its supernet (op order).
    """

    def __init__(self, model: Any, space: Any, cell_name: str, op_names: Sequence[str], n_edges: int) -> None:
        if not callable(getattr(model, "predict", None)):
            raise ConfigError(f"the latency model needs a predict(arch) method, got {model!r}")
        if getattr(model, "cheap", True) is False:
            raise ConfigError(f"the latency term of a cell search reads every cell's latency once, so it needs a cheap "
                              f"latency model (table, lut-latency, learned-latency); {getattr(model, 'name', model)!r} "
                              "measures: fit a lut-latency or learned-latency model to it first")
        self.model, self.space, self.cell_name = model, space, cell_name
        self.op_names, self.n_edges = tuple(op_names), int(n_edges)
        self._memo: dict[tuple[int, ...], float] = {}  # spaces too large for the table
        self.table: Any = None
        if len(self.op_names) ** self.n_edges <= ENUMERATE_LIMIT:
            torch = _torch()
            import itertools

            vals = [self._predict(p) for p in itertools.product(range(len(self.op_names)), repeat=self.n_edges)]
            self.table = torch.tensor(vals, dtype=torch.float64).reshape((len(self.op_names),) * self.n_edges)

    def arch(self, path: Sequence[int]) -> Any:
        return self.space.make({self.cell_name: tuple(self.op_names[int(k)] for k in path)})

    def _predict(self, path: Sequence[int]) -> float:
        v = float(self.model.predict(self.arch(path)))
        if not math.isfinite(v):
            raise ConfigError(f"the latency model gives {v} for {str(self.arch(path))!r}; it needs finite "
                              "latencies for every cell of the space")
        return v

    def of_path(self, path: Sequence[int]) -> float:
        """The latency (ms) of the cell of op indices ``path``."""
        key = tuple(int(k) for k in path)
        if self.table is not None:
            return float(self.table[key])
        if key not in self._memo:
            self._memo[key] = self._predict(key)
        return self._memo[key]

    def expected(self, p: Any) -> Any:
        """The expected latency (ms) under ``p``; differentiable in ``p``."""
        torch = _torch()
        p = p.to(torch.float64)
        if self.table is not None:
            out = self.table
            for e in range(self.n_edges):
                out = torch.tensordot(p[e], out, dims=([0], [0]))
            return out
        centre = [int(k) for k in p.detach().argmax(dim=1)]
        base = self.of_path(centre)
        delta = torch.zeros_like(p)
        for e in range(self.n_edges):
            for k in range(len(self.op_names)):
                if k != centre[e]:
                    alt = list(centre)
                    alt[e] = k
                    delta[e, k] = self.of_path(alt) - base
        return base + (p * delta).sum()

    def best_under(self, p: Any, target: float) -> tuple[int, ...] | None:
        """The most probable cell (sum of log p) whose latency is at most ``target``; None if none is."""
        torch = _torch()
        logp = torch.log(p.detach().to(torch.float64).clamp_min(1e-30))
        if self.table is not None:
            score = torch.zeros(self.table.shape, dtype=torch.float64)
            for e in range(self.n_edges):
                shape = [1] * self.n_edges
                shape[e] = -1
                score = score + logp[e].reshape(shape)
            score = score.masked_fill(self.table > target, float("-inf"))
            best = int(score.flatten().argmax())
            if not math.isfinite(float(score.flatten()[best])):
                return None
            return tuple(int(i) for i in np.unravel_index(best, self.table.shape))
        rows = [row.numpy() for row in logp]
        best_path = greedy_under(rows, [int(np.argmax(r)) for r in rows], self.of_path, target)
        return None if best_path is None else tuple(best_path)


def greedy_under(logp: Sequence[Any], start: Sequence[int], latency: Any, target: float) -> list[int] | None:
    """From ``start`` (one option index per decision), change one decision at a time, each time the change that
    loses least log-probability (``logp[decision][option]``) per ms saved, until ``latency(choice) <= target``;
    None when no change saves any more time."""
    choice = [int(k) for k in start]
    while latency(choice) > target:
        base, best, best_rate = latency(choice), None, -math.inf
        for n, row in enumerate(logp):
            for k in range(len(row)):
                if k == choice[n]:
                    continue
                alt = list(choice)
                alt[n] = k
                saved = base - latency(alt)
                if saved > 0:
                    rate = saved / (float(row[choice[n]] - row[k]) + 1e-9)
                    if rate > best_rate:
                        best, best_rate = (n, k), rate
        if best is None:
            return None
        choice[best[0]] = best[1]
    return choice


def latency_penalty(latency: Any, s: SearchSettings) -> Any:
    """ProxylessNAS' latency term for a latency in ms (a float or a tensor): ``latency_weight * latency``, or with a
    target the hinge ``w * max(0, latency / target - 1)`` (``w``: ``latency_weight``, default 1)."""
    if s.latency_target_ms is None:
        return float(s.latency_weight or 0.0) * latency
    w = 1.0 if s.latency_weight is None else s.latency_weight
    over = latency / s.latency_target_ms - 1.0
    return w * (over.clamp(min=0.0) if hasattr(over, "clamp") else max(0.0, over))


# --- one step of each method -----------------------------------------------------------------------------
@dataclass
class _Searcher:
    net: Any
    arch: ArchParameters
    arch_opt: Any
    method: str
    s: SearchSettings
    latency: LatencyTerm | None = None
    twin: Any = None  # RARTS' y copy of the weights
    twin_opt: Any = None
    _after: Any = None  # ProxylessNAS: the logits before the step and the sampled pairs, for the rescaling

    def latency_loss(self, p: Any) -> Any:
        assert self.latency is not None
        return latency_penalty(self.latency.expected(p).to(p.dtype), self.s)

    def _set_grads(self, params: Sequence[Any], grads: Sequence[Any]) -> None:
        for p, g in zip(params, grads):
            p.grad = None if g is None else g.detach().clone()

    def weight_path(self, rng: np.random.Generator) -> list[int]:
        p = self.arch.probs().detach().double().numpy()
        return [int(rng.choice(p.shape[1], p=row / row.sum())) for row in p]

    def step(self, x: Any, y: Any, xa: Any, ya: Any, rng: np.random.Generator, lr: float, search: bool,
             opt: Any) -> tuple[float, float]:
        """One step: the architecture (when ``search``) then the weights; returns (weight loss, arch loss)."""
        torch = _torch()
        F = require("torch.nn.functional", "nn")
        net, ap, m = self.net, self.arch, self.method
        arch_loss = float("nan")
        if m == "rarts":
            return self._rarts(x, y, xa, ya, search, opt)
        if search:
            self.arch_opt.zero_grad(set_to_none=True)
            if m == "proxylessnas":
                arch_loss = self._proxyless_arch(xa, ya, rng)
            elif self.s.order == 2:
                arch_loss = self._unrolled(x, y, xa, ya, lr)
            else:
                net.set_mixture(ap.probs(), None, ap.edge_weights())
                loss = F.cross_entropy(net(xa), ya)
                self._set_grads(ap.parameters(), torch.autograd.grad(loss, ap.parameters(), allow_unused=True))
                arch_loss = float(loss.detach())
            self.arch_opt.step()
        opt.zero_grad(set_to_none=True)
        if m == "proxylessnas":  # one binarised path per step
            net.set_mixture(None)
            net.set_path(self.weight_path(rng))
        else:
            with torch.no_grad():
                ew = ap.edge_weights()
                net.set_mixture(ap.probs().detach(), None, None if ew is None else ew.detach())
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        return float(loss.detach()), arch_loss

    def _proxyless_arch(self, xa: Any, ya: Any, rng: np.random.Generator) -> float:
        torch = _torch()
        F = require("torch.nn.functional", "nn")
        ap = self.arch
        p = ap.probs()
        pn = p.detach().double().numpy()
        pairs: list[list[int]] = []
        for row in pn:
            live = int((row > 0).sum())
            pairs.append([int(i) for i in rng.choice(len(row), size=min(2, live), replace=False, p=row / row.sum())])
        logits = ap.logits()
        gates = torch.zeros_like(p)
        rows = []
        for e, pair in enumerate(pairs):
            q = torch.softmax(logits[e, pair], dim=0)
            qn = q.detach().double().numpy()
            pick = int(rng.choice(len(pair), p=qn / qn.sum()))
            onehot = torch.zeros(len(pair))
            onehot[pick] = 1.0
            rows.append((e, pair, onehot - q.detach() + q))
        for e, pair, g in rows:
            gates = gates.index_put((torch.tensor([e] * len(pair)), torch.tensor(pair)), g)
        self.net.set_mixture(gates, pairs)
        loss = F.cross_entropy(self.net(xa), ya)
        total = loss + (self.latency_loss(p) if self.latency is not None else 0.0)
        old = ap.alpha.detach().clone()
        self._set_grads([ap.alpha], torch.autograd.grad(total, [ap.alpha]))
        if self.latency is None:
            self._after = (old, pairs)  # rescale after the optimizer step
        return float(loss.detach())

    def rescale(self) -> None:
        """ProxylessNAS: shift the two updated logits so that the other ops keep their probabilities."""
        after = self._after
        if after is None:
            return
        torch = _torch()
        old, pairs = after
        with torch.no_grad():
            a = self.arch.alpha
            for e, pair in enumerate(pairs):
                if len(pair) > 1:
                    offset = torch.logsumexp(old[e, pair], 0) - torch.logsumexp(a[e, pair], 0)
                    a[e, pair] += offset
        self._after = None

    def _unrolled(self, x: Any, y: Any, xa: Any, ya: Any, lr: float) -> float:
        """DARTS' second-order gradient of the architecture loss after one virtual SGD step of the weights."""
        torch = _torch()
        F = require("torch.nn.functional", "nn")
        net, ap = self.net, self.arch
        weights = [p for p in net.parameters() if p.requires_grad]
        with torch.no_grad():
            ew = ap.edge_weights()
            net.set_mixture(ap.probs().detach(), None, None if ew is None else ew.detach())
        g = torch.autograd.grad(F.cross_entropy(net(x), y), weights, allow_unused=True)
        backup = [p.detach().clone() for p in weights]

        def restore() -> None:
            with torch.no_grad():
                for p, b in zip(weights, backup):
                    p.copy_(b)

        with torch.no_grad():
            for p, gi in zip(weights, g):
                if gi is not None:
                    p.sub_(lr * gi)
        net.set_mixture(ap.probs(), None, ap.edge_weights())
        loss = F.cross_entropy(net(xa), ya)
        grads = torch.autograd.grad(loss, ap.parameters() + weights, allow_unused=True)
        d_arch, d_w = grads[:len(ap.parameters())], grads[len(ap.parameters()):]
        restore()
        norm = torch.sqrt(sum((d * d).sum() for d in d_w if d is not None))
        eps = 0.01 / float(norm.clamp_min(1e-12))

        def arch_grad(sign: float) -> Any:
            with torch.no_grad():
                for p, d in zip(weights, d_w):
                    if d is not None:
                        p.add_(sign * eps * d)
            net.set_mixture(ap.probs(), None, ap.edge_weights())
            out = torch.autograd.grad(F.cross_entropy(net(x), y), ap.parameters(), allow_unused=True)
            restore()
            return out

        plus, minus = arch_grad(1.0), arch_grad(-1.0)
        total = []
        for da, gp, gm in zip(d_arch, plus, minus):
            hv = (gp - gm) / (2 * eps) if gp is not None and gm is not None else 0.0
            total.append(None if da is None else da - lr * hv)
        self._set_grads(ap.parameters(), total)
        return float(loss.detach())

    def _rarts(self, x: Any, y: Any, xa: Any, ya: Any, search: bool, opt: Any) -> tuple[float, float]:
        torch = _torch()
        F = require("torch.nn.functional", "nn")
        net, twin, ap, s = self.net, self.twin, self.arch, self.s
        w = list(net.parameters())
        v = list(twin.parameters())
        mix = ap.probs() if search else ap.probs().detach()
        net.set_mixture(mix)
        twin.set_mixture(mix)
        loss_w = F.cross_entropy(net(x), y)
        loss_y = F.cross_entropy(twin(xa), ya)
        prox = sum(((a - b) ** 2).sum() for a, b in zip(w, v))
        total = loss_w + s.rarts_lam * loss_y + 0.5 * s.rarts_beta * prox
        targets = w + v + (ap.parameters() if search else [])
        grads = torch.autograd.grad(total, targets, allow_unused=True)
        opt.zero_grad(set_to_none=True)
        self.twin_opt.zero_grad(set_to_none=True)
        self._set_grads(targets, grads)
        torch.nn.utils.clip_grad_norm_(w, 5.0)
        torch.nn.utils.clip_grad_norm_(v, 5.0)
        opt.step()
        self.twin_opt.step()
        if search:
            self.arch_opt.step()
            self.arch_opt.zero_grad(set_to_none=True)
        return float(loss_w.detach()), float(loss_y.detach())


# --- the training loop --------------------------------------------------------------------------------------
def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass
class Halves:
    """The training images cut in two (``w``: the weights' half, ``a``: the architecture's), the validation
    split, and fixed batches of the weights' half that recalibrate batch norm."""

    Xw: Any
    Yw: Any
    Xa: Any
    Ya: Any
    Xv: Any
    Yv: Any
    recal: list[Any]


def split_halves(splits: Any, meta: Mapping[str, Any], arch_fraction: float, batch: int, device: str) -> Halves:
    """Cut the training images in two, fixed by the split seed.

    Raises:
        ConfigError: too few images for two halves of at least one batch.
    """
    torch = _torch()
    n_all = len(splits.y_train)
    perm = np.random.default_rng([int(meta["data"]["split_seed"]), 17]).permutation(n_all)
    n_arch = max(batch, round(arch_fraction * n_all))
    if n_all - n_arch < batch:
        raise ConfigError(f"{n_all} training images are too few to split for {meta['settings']['method']} with batch "
                          f"size {batch}; give more images (--train-subset) or a smaller batch")
    idx_w, idx_a = np.sort(perm[n_arch:]), np.sort(perm[:n_arch])
    X = torch.from_numpy(np.array(splits.X_train))
    Y = torch.from_numpy(np.array(splits.y_train))
    Xw, Yw = X[idx_w], Y[idx_w]
    rec = np.random.default_rng(0).permutation(len(Yw))[: 2 * 256]
    recal = [Xw[np.sort(rec[i:i + 256])].to(device) for i in range(0, len(rec), 256) if len(rec[i:i + 256]) >= 2]
    return Halves(Xw, Yw, X[idx_a], Y[idx_a], torch.from_numpy(np.array(splits.X_val)),
                  torch.from_numpy(np.array(splits.y_val)), recal)


def epoch_batches(h: Halves, seed: int, epoch: int, batch: int, augment_fn: Any, device: str) -> Any:
    """The epoch's batches ``(step in epoch, x, y, xa, ya)``: the weights' half in a seeded order, the
    architecture's half cycled in its own; augmented with a generator seeded by ``(seed, epoch)``."""
    torch = _torch()
    order = np.random.default_rng([seed, epoch]).permutation(len(h.Yw))
    order_a = np.random.default_rng([seed, epoch, 2]).permutation(len(h.Ya))
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    for b in range(max(1, len(h.Yw) // batch)):
        i = torch.from_numpy(order[b * batch:(b + 1) * batch])
        j = torch.from_numpy(order_a[[(b * batch + k) % len(h.Ya) for k in range(batch)]])
        x, y, xa, ya = h.Xw[i], h.Yw[i], h.Xa[j], h.Ya[j]
        if augment_fn is not None:
            x, xa = augment_fn(x, gen), augment_fn(xa, gen)
        yield (b, *(t.to(device) for t in (x, y, xa, ya)))


def save_checkpoint(folder: Path, net: Any, opt: Any, epoch: int, **extra: Any) -> None:
    """``folder/checkpoint.pt`` (model, optimizer, epoch and ``extra``), written atomically."""
    torch = _torch()
    state = {"model": {k: v.detach().cpu() for k, v in net.state_dict().items()}, "optimizer": opt.state_dict(),
             "epoch": epoch, **extra}
    tmp = folder / "checkpoint.pt.tmp"
    torch.save(state, tmp)
    os.replace(tmp, folder / "checkpoint.pt")


def save_final(folder: Path, net: Any, arch_state: Mapping[str, Any] | None = None) -> None:
    """``folder/supernet.pt`` (and ``arch.pt``: the architecture weights), written atomically."""
    torch = _torch()
    files = [("supernet.pt", {k: v.detach().cpu() for k, v in net.state_dict().items()})]
    if arch_state is not None:
        files.append(("arch.pt", dict(arch_state)))
    for name, obj in files:
        torch.save(obj, folder / f"{name}.tmp")
        os.replace(folder / f"{name}.tmp", folder / name)


def derived_path(ap: ArchParameters, s: SearchSettings, latency: LatencyTerm | None) -> tuple[int, ...]:
    """The derived cell: the op of largest weight per edge; with a latency target, the most probable cell at
    or under it (the unconstrained one when none is)."""
    p = ap.probs().detach()
    if latency is not None and s.latency_target_ms is not None:
        best = latency.best_under(p, s.latency_target_ms)
        if best is not None:
            return best
    return tuple(int(k) for k in p.argmax(dim=1))


def skip_count(arch_ops: Sequence[str], identity: str | None) -> int:
    """Skip connections in a cell: edges holding the cell's identity op."""
    return sum(o == identity for o in arch_ops)


def active_accuracy(net: Any, h: Halves, device: str) -> float:
    """Validation accuracy of the supernet's active sub-network with its weights, batch norm recalibrated on the
    fixed batches; the supernet is left in training mode."""
    torch = _torch()
    from .evaluator import recalibrate_bn

    recalibrate_bn(net, h.recal)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(h.Yv), 1000):
            out = net(h.Xv[i:i + 1000].to(device))
            correct += int((out.argmax(1) == h.Yv[i:i + 1000].to(device)).sum())
    net.train()
    return correct / max(1, len(h.Yv))


@dataclass
class RunStart:
    """What every epoch loop of a search needs: the data halves, steps per epoch, the history so far and the
    study recording it."""

    h: Halves
    per_epoch: int
    history: list[dict[str, Any]]
    study: Any


def start_run(meta: Mapping[str, Any], folder: Path, splits: Any, search: SearchSettings, device: str,
              storage: str | None, latency: bool) -> RunStart:
    """Split the data, open the study and record in it every epoch of the history it lacks (a resumed run)."""
    batch = int(meta["settings"]["batch_size"])
    h = split_halves(splits, meta, search.arch_fraction, batch, device)
    history = list(meta["history"])
    study = open_study(folder, meta, storage, latency)
    sync_study(study, history)
    return RunStart(h, max(1, len(h.Yw) // batch), history, study)


def open_study(folder: Path, meta: Mapping[str, Any], storage: str | None, latency: bool) -> Any:
    """The study that records the search curve (created, or joined on resume)."""
    from .. import Objective, create_study
    from ..space import Space

    sp = Space.from_config(meta["space"])
    objectives = [Objective("accuracy", "max")] + ([Objective("latency_ms", "min")] if latency else [])
    return create_study(sp, objectives=objectives, strategy={"name": "replay", "dedup": False},
                        storage=storage or os.fspath(folder / "study.db"), seed=None,  # the trainer decides
                        name=f"supernet-{meta['settings']['method']}", load_if_exists=True,
                        metadata={"supernet": os.path.abspath(os.fspath(folder)), "method": meta["settings"]["method"],
                                  "record": "the cell derived after each epoch"})


def sync_study(study: Any, history: Sequence[Mapping[str, Any]]) -> None:
    """Record every epoch of ``history`` the study lacks (idempotent: a resumed run records each epoch once)."""
    from ..results import TrialState

    done = {int(t.metrics.get("epoch", -1)) for t in study.trials if t.state == TrialState.COMPLETE}
    for h in history:
        if int(h["epoch"]) in done:
            continue
        arch = study.space.parse(h["derived"])
        for _ in range(3):
            study.strategy.queue(arch)
            t = study.ask()
            if str(t.arch) == str(arch):
                study.tell(t, h["metrics"], started_at=h["t_start"], finished_at=h["t_end"])
                break
            study.tell(t, state="failed", error="a trial of an interrupted run, superseded", failure="driver_died")


def run_search(*, net: Any, opt: Any, meta: dict[str, Any], folder: Path, splits: Any, search: SearchSettings,
               device: str, start: int, ckpt: Mapping[str, Any] | None, augment_fn: Any, stop: int,
               progress: bool, latency_model: Any, storage: str | None, write_meta: Any) -> dict[str, Any]:
    """The epochs of a differentiable method (called by :func:`~archscout.supernet.train_supernet`)."""
    torch = _torch()
    from .train import SupernetError, cosine_lr, load_state, progress_bar

    s = meta["settings"]
    method, seed, batch = s["method"], int(s["seed"]), int(s["batch_size"])
    epochs = int(s["epochs"])
    n_edges, n_ops = len(net.mixed_cells()[0].edges), len(net.op_names)
    identity = net.space.params[net.cell_name].identity
    mask = None
    if meta.get("region") is not None:  # a few-shot sub-supernet: only its region's ops
        mask = np.zeros((n_edges, n_ops), dtype=bool)
        for e, ops in enumerate(meta["region"]):
            mask[e, ops] = True
    ap = ArchParameters(n_edges, n_ops, cell_heads(net), edge_norm=search.edge_norm, seed=seed + 7, mask=mask)
    if ckpt is None and meta.get("init") and (Path(meta["init"]) / "arch.pt").exists():
        ap.load_state_dict(load_state(Path(meta["init"]) / "arch.pt", "architecture weights"))  # the parent's
    betas = (0.0, 0.999) if method == "proxylessnas" else (0.5, 0.999)
    arch_opt = torch.optim.Adam(ap.parameters(), lr=search.arch_lr, betas=betas, weight_decay=search.arch_weight_decay)
    latency = None
    if latency_model is not None:
        latency = LatencyTerm(latency_model, net.space, net.cell_name, net.op_names, n_edges)
    twin: Any = None
    twin_opt: Any = None
    if method == "rarts":
        twin = copy.deepcopy(net)
        twin_opt = torch.optim.SGD(twin.parameters(), lr=s["lr"], momentum=0.9, nesterov=True,
                                   weight_decay=s["weight_decay"])
    if ckpt is not None:
        try:
            ap.load_state_dict(ckpt["arch"])
            arch_opt.load_state_dict(ckpt["arch_optimizer"])
            if twin is not None:
                twin.load_state_dict(ckpt["twin"])
                twin_opt.load_state_dict(ckpt["twin_optimizer"])
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise SupernetError(f"{os.fspath(folder / 'checkpoint.pt')!r} lacks this method's architecture state "
                                f"({str(e)[:80]}); delete it or use another --out folder") from None
    searcher = _Searcher(net, ap, arch_opt, method, search, latency, twin, twin_opt)

    run = start_run(meta, folder, splits, search, device, storage, latency is not None)
    h, per_epoch, history, study = run.h, run.per_epoch, run.history, run.study
    if meta.get("finished"):
        return meta

    bar = progress_bar(per_epoch * epochs, start * per_epoch, progress)
    net.train()
    if twin is not None:
        twin.train()
    try:
        for epoch in range(start, stop):
            rng = np.random.default_rng([seed, epoch, 1])
            search_on = epoch >= search.warmup_epochs
            t0, losses, arch_losses = time.time(), [], []
            for b, x, y, xa, ya in epoch_batches(h, seed, epoch, batch, augment_fn, device):
                step = epoch * per_epoch + b
                lr = cosine_lr(s["lr"], step, per_epoch, epochs, meta.get("schedule"))
                for o in [opt] + ([twin_opt] if twin_opt is not None else []):
                    for group in o.param_groups:
                        group["lr"] = lr
                loss, aloss = searcher.step(x, y, xa, ya, rng, lr, search_on, opt)
                searcher.rescale()
                if not math.isfinite(loss):
                    from ..training import TrainingDivergedError
                    raise TrainingDivergedError(f"the {method} training loss became {loss} in epoch {epoch + 1}; "
                                                "lower --lr or --arch-lr")
                losses.append(loss)
                if math.isfinite(aloss):
                    arch_losses.append(aloss)
                bar.set_description_str(f"epoch {epoch + 1}/{epochs} loss {np.mean(losses[-50:]):.3f}", refresh=False)
                bar.update(1)
            path = derived_path(ap, search, latency)
            arch = net.arch_of(path)
            skips = skip_count(arch[net.cell_name], identity)
            probs = ap.probs().detach()
            ent = float(-(probs.clamp_min(1e-30).log() * probs).sum(dim=1).mean())
            net.set_mixture(None)
            net.set_path(path)
            metrics = {"accuracy": active_accuracy(net, h, device), "epoch": float(epoch + 1),
                       "skip_count": float(skips), "entropy": ent}
            if latency is not None:
                metrics["latency_ms"] = latency.of_path(path)
                metrics["expected_latency_ms"] = float(latency.expected(probs))
            ew = ap.edge_weights()
            t1 = time.time()
            history.append({
                "epoch": epoch + 1, "loss": float(np.mean(losses)),
                "arch_loss": float(np.mean(arch_losses)) if arch_losses else None, "time_s": round(t1 - t0, 2),
                "t_start": t0, "t_end": t1, "derived": str(arch), "metrics": metrics,
                "weights": [[round(float(v), 6) for v in row] for row in probs],
                "edge_weights": None if ew is None else [round(float(v), 6) for v in ew.detach()],
                "search": search_on, "peak_rss_mb": round(peak_rss_mb(), 1),
            })
            stopped = None
            if search.skip_limit is not None and search_on and skips >= search.skip_limit:
                before = [r for r in history[:-1] if r.get("search")]
                stopped = {"epoch": epoch + 1, "reason": f"the derived cell holds {skips} skip connections "
                           f"(skip_limit {search.skip_limit})",
                           "kept": before[-1]["derived"] if before else str(arch)}
            extra: dict[str, Any] = {"arch": ap.state_dict(), "arch_optimizer": arch_opt.state_dict()}
            if twin is not None:
                extra["twin"] = {k: v.detach().cpu() for k, v in twin.state_dict().items()}
                extra["twin_optimizer"] = twin_opt.state_dict()
            save_checkpoint(folder, net, opt, epoch + 1, **extra)
            done = epoch + 1 >= epochs or stopped is not None
            meta.update(epochs_done=epoch + 1, history=history, finished=done)
            if stopped is not None:
                meta["stopped_early"] = stopped
            meta["derived"] = stopped["kept"] if stopped is not None else str(arch)
            write_meta(meta)
            sync_study(study, history)
            if done:
                break
    finally:
        bar.close()
        net.set_mixture(None)
    if meta["finished"]:
        save_final(folder, net, ap.state_dict())
    return meta


# --- reading the result -----------------------------------------------------------------------------------
def derive(folder: str | os.PathLike) -> dict[str, Any]:
    """What a differentiable (or few-shot) run in ``folder`` has derived.

    Returns:
        ``{"arch": the derived cell's string, "method", "epochs_done", "finished", "edges": [{"edge": "i->j",
        "weights": {op: weight}}, ...] (the last epoch's architecture weights), "history": [{"epoch", "arch",
        "accuracy", "weights": [[...]]}, ...], "ops", "stopped_early"?, "latency_ms"?, "sub_supernets"?}``.

    Raises:
        SupernetError: the folder holds no differentiable run (spos / sandwich / ofa runs are searched with
            ``archscout supernet search``) or has no finished epoch yet.
    """
    from .train import SupernetError, read_meta

    meta = read_meta(folder)
    method = meta["settings"]["method"]
    if method == "few-shot":
        from .fewshot import derive_few_shot
        return derive_few_shot(folder, meta)
    if method not in DIFF_METHODS:
        raise SupernetError(f"{os.fspath(folder)!r} holds a {method} supernet, which derives nothing: search it with "
                            "'archscout supernet search' (derive reads darts, pc-darts, proxylessnas, rarts and "
                            "few-shot runs)")
    hist = meta.get("history") or []
    if not hist:
        raise SupernetError(f"{os.fspath(folder)!r} has no finished epoch yet; run the same 'archscout supernet train' "
                            "command to resume it")
    return summarise(meta)


def summarise(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The derive dictionary of one differentiable run's ``supernet.json``."""
    from ..space import Space

    hist = meta["history"]
    last = hist[-1]
    if meta.get("decisions"):  # a stage supernet: one row per decision (depth, kernel, expand, width)
        labels = [d["decision"] for d in meta["decisions"]]
        options = [d["options"] for d in meta["decisions"]]
        ops: list[str] | None = None
    else:
        sp = Space.from_config(meta["space"])
        cell = next(iter(sp.params.values()))
        ops = list(cell.ops)  # type: ignore[attr-defined]
        pairs = [(i, j) for j in range(1, cell.nodes) for i in range(j)]  # type: ignore[attr-defined]
        labels = [f"{i}->{j}" for i, j in pairs]
        options = [ops] * len(pairs)
    out: dict[str, Any] = {
        "arch": meta.get("derived", last["derived"]), "method": meta["settings"]["method"],
        "epochs_done": meta["epochs_done"], "finished": bool(meta.get("finished")), "ops": ops,
        "edges": [{"edge": label, "weights": dict(zip(opts, row))}
                  for label, opts, row in zip(labels, options, last["weights"])],
        "accuracy": last["metrics"]["accuracy"],
        "history": [{"epoch": h["epoch"], "arch": h["derived"], "accuracy": h["metrics"]["accuracy"],
                     "skip_count": h["metrics"]["skip_count"], "weights": h["weights"],
                     **({"edge_weights": h["edge_weights"]} if h.get("edge_weights") else {}),
                     **({"latency_ms": h["metrics"]["latency_ms"]} if "latency_ms" in h["metrics"] else {})}
                    for h in hist],
        "search_time_s": round(sum(h["time_s"] for h in hist), 2),
        "peak_rss_mb": max(h.get("peak_rss_mb", 0.0) for h in hist),
        "search": dict(meta.get("search") or {}),
    }
    if meta.get("stopped_early"):
        out["stopped_early"] = meta["stopped_early"]
    if "latency_ms" in last["metrics"]:
        kept = [h for h in hist if h["derived"] == out["arch"]]
        out["latency_ms"] = (kept[-1] if kept else last)["metrics"]["latency_ms"]
    return out


def plot_weights(summary: Mapping[str, Any], path: str | os.PathLike) -> str:
    """A heat map per edge of each op's weight over the epochs (the derive summary's history)."""
    from ..reports import require_matplotlib

    plt = require_matplotlib()
    hist, edges = summary["history"], summary["edges"]
    n = len(edges)
    cols = min(3 if n <= 12 else 6, n)
    rows = math.ceil(n / cols)
    most = max(len(e["weights"]) for e in edges)
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 0.45 * most * rows + 1.6 * rows), squeeze=False,
                             constrained_layout=True)
    epochs = [h["epoch"] for h in hist]
    flat = [v for h in hist for row in h["weights"] for v in row]
    lo, hi = min(flat), max(max(flat), min(flat) + 1e-3)  # the colours span the weights' range
    for e in range(rows * cols):
        ax = axes[e // cols][e % cols]
        if e >= n:
            ax.axis("off")
            continue
        ops = list(edges[e]["weights"])
        data = np.array([h["weights"][e] for h in hist])  # (epochs, options)
        im = ax.imshow(data.T, aspect="auto", cmap="viridis", vmin=lo, vmax=hi,
                       extent=(epochs[0] - 0.5, epochs[-1] + 0.5, len(ops) - 0.5, -0.5))
        ax.set_yticks(range(len(ops)))
        ax.set_yticklabels(ops, fontsize=7)
        label = edges[e]["edge"]
        ax.set_title(f"edge {label}" if summary.get("ops") else label, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="op weight")
    fig.suptitle(f"{summary['method']}: architecture weights per {'edge' if summary.get('ops') else 'decision'}; "
                 f"derived {summary['arch']}", fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return os.fspath(path)


def settings_dict(s: SearchSettings) -> dict[str, Any]:
    return asdict(s)
