"""Monte-Carlo tree search over the space's decision tree (DeepArchitect's MCTS, AgentSwift).

Every architecture is a path of discrete decisions (:class:`~archscout.strategies.decisions.DecisionSpace`):
the root is the empty path, a node's children are the options of its next decision and the leaves are
architectures. Each ``ask``:

1. *Selection*: from the root, while every live child of the node has been visited, move to the child
   with the largest ``Q + exploration * sqrt(ln N_parent / N_child)`` (UCT), where ``N`` counts told
   results under a node plus candidates asked but not yet told, and ``Q`` is the sum of the told
   values under the node divided by ``N`` (a pending candidate is a visit of value 0, so a batch of
   asks spreads over the tree; this holds for candidates noted as evaluated elsewhere too).
2. *Expansion and completion*: move to one unvisited child and make the remaining decisions at random
   (over unexplored options). Before ``_WARMUP`` results were told that is one random walk; after, it
   is the best of ``rollouts`` such walks (each with its own unvisited child and completion, skipping
   architectures already seen) as scored by a ridge model fitted on the one-hot / thermometer
   encoding of the decisions of every told architecture, to their values. While candidates are pending,
   the model is refitted for that ask with each pending architecture added at value 0 (a constant liar,
   the same value as its visit in the tree), so that completions resembling what is already running
   score lower.
3. *Backup* (on ``tell``): the result's value is the rank of its score among all scores told so far,
   in ``[0, 1]`` (failed and infeasible results rank lowest), and counts as one visit of every node on
   the architecture's path. Values are re-ranked as scores arrive, so ``Q`` is always the mean current
   rank of the results under a node.

Leaves that were proposed or told (or whose function was seen) are marked explored, and so is every
node whose children are all explored; selection and completion skip explored nodes, so the search
keeps finding new architectures until the tree is exhausted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validate import check_int, check_number
from ..errors import ConfigError
from ..results import Candidate, Result
from ..space import Architecture
from .base import Capabilities, Strategy, score_from_json, score_to_json
from .decisions import DecisionSpace, Step, fit_ridge, normalized_scores

__all__ = ["STRATEGY_CLASSES", "DecisionSpace", "MonteCarloTreeSearch"]

_WARMUP = 10  # told results before the value model guides completions
_RIDGE_ALPHA = 1.0
_TRIES = 20  # selections per ask before leaving a seen proposal to the base's fallback
_VALUE_MODELS = ("ridge", "none")


class MonteCarloTreeSearch(Strategy):
    """Monte-Carlo tree search with UCT selection over the decision tree and model-guided completions.

    Args:
        exploration: UCT exploration constant ``c`` (>= 0) on values that are ranks in ``[0, 1]``.
        rollouts: random completions scored by the value model per ask (>= 1).
        value_model: ``"ridge"`` (a ridge regression on the decisions picks the best completion) or
            ``"none"`` (one random completion).

    The defaults come from a sweep on NAS-Bench-201 CIFAR-10 (``valid_acc_200ep``, 300 queries, 30
    seeds): a smaller exploration stalls in a subtree, a larger one explores too long; fewer rollouts
    reach the optimum sooner on average but less reliably (``benchmarks/so_sweep.py --seeds 0-30 --budget
    300 CONFIGS``).

    Raises:
        ConfigError: a parameter is out of range.
    """

    name = "mcts"
    capabilities = Capabilities()

    def __init__(self, space, objectives=None, constraints=(), seed=None, dedup=True,
                 exploration: float = 0.4, rollouts: int = 32, value_model: str = "ridge") -> None:
        super().__init__(space, objectives, constraints, seed, dedup)
        self.exploration = check_number("exploration", exploration, 0.0, math.inf, False, True)
        self.rollouts = check_int("rollouts", rollouts, 1)
        if value_model not in _VALUE_MODELS:
            raise ConfigError(f"value_model must be one of {list(_VALUE_MODELS)}, got {value_model!r}")
        self.value_model = value_model
        self._dec = DecisionSpace(space)
        self._reset()

    def _reset(self) -> None:
        # the tree: node 0 is the root; per node its parent, children {option: node}, number of allowed
        # options (-1 until known), explored children, explored flag, told visits
        self._parent: list[int] = [-1]
        self._children: list[dict[int, int]] = [{}]
        self._n_kids: list[int] = [-1]
        self._n_expl: list[int] = [0]
        self._explored: list[bool] = [False]
        self._visits: list[int] = [0]
        self._explored_paths: list[list[int]] = []  # the leaves marked explored, as option indices
        # observations: every told score; the decision path of those that have one
        self._scores: list[float] = []
        self._paths: list[list[int] | None] = []
        self._new: list[tuple[int, list[int], np.ndarray]] = []  # (obs, nodes, features) not yet stacked
        self._obs_of = np.zeros(0, dtype=np.int64)  # per (observation, node on its path) pair
        self._node_of = np.zeros(0, dtype=np.int64)
        self._x_obs = np.zeros(0, dtype=np.int64)  # observations that have features, in row order
        self._x = np.zeros((0, self._dec.n_features))
        self._sums: np.ndarray | None = None  # sum of current ranks per node (None: stale)
        self._tables: list[list[float]] | None = None  # value model contributions per slot and option
        self._pending_nodes: dict[int, list[int] | None] = {}
        self._last: tuple[Architecture, list[int]] | None = None

    # --- tree -----------------------------------------------------------------------------------------
    def _path_nodes(self, steps: Sequence[Step]) -> list[int]:
        """The nodes on a decision path, root first (created as needed), shape ``len(steps) + 1``."""
        cur, nodes = 0, [0]
        for slot, i, allowed in steps:
            self._n_kids[cur] = self._dec.sizes[slot] if allowed is None else len(allowed)
            nxt = self._children[cur].get(i)
            if nxt is None:
                nxt = len(self._parent)
                self._children[cur][i] = nxt
                self._parent.append(cur)
                self._children.append({})
                self._n_kids.append(-1)
                self._n_expl.append(0)
                self._explored.append(False)
                self._visits.append(0)
            cur = nxt
            nodes.append(cur)
        self._n_kids[cur] = 0
        return nodes

    def _mark_explored(self, steps: Sequence[Step], nodes: list[int] | None = None) -> list[int]:
        """Mark the leaf of ``steps`` explored, and every ancestor whose children all are."""
        nodes = self._path_nodes(steps) if nodes is None else nodes
        node = nodes[-1]
        if not self._explored[node]:
            self._explored_paths.append([i for _, i, _ in steps])
            self._explored[node] = True
            while node > 0:
                node = self._parent[node]
                self._n_expl[node] += 1
                if self._n_expl[node] < self._n_kids[node]:
                    break
                self._explored[node] = True
        return nodes

    def _replay(self, path: Sequence[int]) -> list[Step]:
        """The steps of a path of option indices (raises ConfigError when it is not one of this space)."""
        try:
            _, steps = self._dec.run(lambda slot, n, allowed, st: path[len(st)])
        except (IndexError, ValueError, TypeError, KeyError) as err:
            raise ConfigError(f"the saved MCTS path {list(path)} does not fit this space's decisions") from err
        if len(steps) != len(path):
            raise ConfigError(f"the saved MCTS path {list(path)} does not fit this space's decisions")
        return steps

    def _refresh(self) -> np.ndarray:
        """Sums of the current ranks of the told results under each node, shape ``(n_nodes_then,)``."""
        if self._new:
            self._obs_of = np.concatenate([self._obs_of] + [np.full(len(nd), k) for k, nd, _ in self._new])
            self._node_of = np.concatenate([self._node_of] + [np.asarray(nd) for _, nd, _ in self._new])
            self._x_obs = np.concatenate([self._x_obs, [k for k, _, _ in self._new]]).astype(np.int64)
            self._x = np.vstack([self._x] + [x for _, _, x in self._new])
            self._new = []
        if self._sums is None:
            ranks = normalized_scores(self._scores)
            self._sums = np.bincount(self._node_of, weights=ranks[self._obs_of], minlength=len(self._parent))
            if self.value_model == "ridge" and len(self._x_obs) >= _WARMUP:
                coef, _ = fit_ridge(self._x, ranks[self._x_obs], _RIDGE_ALPHA)
                self._tables = self._dec.tables(coef)
        return self._sums

    def node_stats(self, choices: Sequence[int] = ()) -> tuple[int, float]:
        """Told visits and mean value (current rank in ``[0, 1]``, NaN without visits) of the node reached
        by the option indices ``choices`` from the root (e.g. ``[2]``: the third option of the first
        decision); ``(0, nan)`` for a node not in the tree."""
        sums, node = self._refresh(), 0
        for i in choices:
            node = self._children[node].get(int(i), -1)
            if node < 0:
                return 0, math.nan
        n = self._visits[node]
        return n, (float(sums[node]) / n if n else math.nan)

    # --- proposals ------------------------------------------------------------------------------------
    def _pending_counts(self) -> dict[int, int]:
        """Pending candidates under each node (their leaves are marked explored)."""
        cache = self._pending_nodes
        counts: dict[int, int] = {}
        for cid, cand in self._pending.items():
            if cid not in cache:
                if self._last is not None and self._last[0] is cand.arch:
                    cache[cid] = self._last[1]
                else:
                    steps = self._dec.decode(cand.arch)
                    cache[cid] = None if steps is None else self._mark_explored(steps)
            for node in cache[cid] or ():
                counts[node] = counts.get(node, 0) + 1
        if len(cache) > len(self._pending):
            self._pending_nodes = {cid: cache[cid] for cid in self._pending}
        return counts

    def _walk(self, prefix: Sequence[int], draws: np.ndarray, pending: dict[int, int] | None,
              fresh: Sequence[int] = ()) -> tuple[Architecture, list[Step], int, list[int]]:
        """One walk down the tree: replay ``prefix``; then, when ``pending`` is given, select by UCT while
        every live child was visited and expand one unvisited child; complete at random over unexplored
        options, the first of them among ``fresh`` when given (``draws``: uniform numbers, one per
        decision). Returns the architecture, its steps, the depth of the expanded node's parent and the
        unvisited children it chose from."""
        # node (-1: off the tree), completing, depth, fresh
        state: list[Any] = [0, pending is None, len(prefix), fresh]
        sums = self._sums if self._sums is not None else np.zeros(0)
        pending = pending or {}
        visits, log, sqrt, c = self._visits, math.log, math.sqrt, self.exploration

        def choose(slot: int, n: int, allowed: tuple[int, ...] | None, steps: list[Step]) -> int:
            d, cur = len(steps), state[0]
            opts: Sequence[int] = range(n) if allowed is None else allowed
            kids = self._children[cur] if cur >= 0 else {}
            if d < len(prefix):
                i = prefix[d]
            else:
                if d == len(prefix) and fresh:
                    opts = fresh
                elif cur >= 0 and self._n_expl[cur]:
                    opts = [o for o in opts if o not in kids or not self._explored[kids[o]]]
                if not state[1]:
                    new = [o for o in opts if o not in kids or visits[kids[o]] + pending.get(kids[o], 0) == 0]
                    if new:
                        opts, state[1], state[2], state[3] = new, True, d, new
                    else:
                        log_n = log(visits[cur] + pending.get(cur, 0))
                        best, i = -math.inf, opts[0]
                        for o in opts:
                            k = kids[o]
                            nk = visits[k] + pending.get(k, 0)
                            u = (sums[k] if k < len(sums) else 0.0) / nk + c * sqrt(log_n / nk)
                            if u > best:
                                best, i = u, o
                        state[0] = kids[i]
                        return i
                i = opts[min(int(draws[d] * len(opts)), len(opts) - 1)]
            state[0] = kids.get(i, -1)
            return i

        arch, steps = self._dec.run(choose)
        return arch, steps, state[2], state[3]

    def _propose(self) -> Architecture:
        self._refresh()
        pending = self._pending_counts()
        guided = self._tables is not None and self.rollouts > 1
        tables = self._liar_tables() if guided and self._pending else self._tables
        arch = None
        for _ in range(_TRIES):
            if self._explored[0]:
                break
            draws = self.rng.random((self.rollouts if guided else 1, self._dec.n_slots + 1))
            arch, steps, depth, fresh = self._walk((), draws[0], pending)
            options = [(arch, steps)]
            if guided and (len(fresh) > 1 or depth + 1 < len(steps)):
                prefix = [i for _, i, _ in steps[:depth]]
                options += [self._walk(prefix, u, None, fresh)[:2] for u in draws[1:]]
                assert tables is not None
                values = [-sum(tables[slot][i] for slot, i, _ in st) for _, st in options]
                options = [options[k] for k in np.argsort(values, kind="stable")]
            for arch, steps in options:
                if not self.is_seen(arch):
                    self._last = (arch, self._mark_explored(steps))
                    return arch
                self._mark_explored(steps)
        return arch if arch is not None else self.space.sample(self.rng)

    def _liar_tables(self) -> list[list[float]] | None:
        """Value-model tables fitted on the told results plus every pending architecture at value 0 (the
        worst rank: a constant liar); the stored model is left as it is. ``None`` without a value model."""
        rows = [self._dec.decode(c.arch) for c in self._pending.values()]
        xp = [self._dec.features(steps) for steps in rows if steps is not None]
        if self._tables is None or not xp:
            return self._tables
        ranks = normalized_scores(self._scores)
        x = np.vstack([self._x, np.array(xp)])
        y = np.concatenate([ranks[self._x_obs], np.zeros(len(xp))])
        coef, _ = fit_ridge(x, y, _RIDGE_ALPHA)
        return self._dec.tables(coef)

    # --- learning -------------------------------------------------------------------------------------
    def _observe(self, candidate: Candidate, result: Result) -> None:
        self._pending_nodes.pop(candidate.id, None)
        self._add(self.score(result), self._dec.decode(candidate.arch))

    def _add(self, score: float, steps: list[Step] | None) -> None:
        k = len(self._scores)
        self._scores.append(score)
        self._paths.append(None if steps is None else [i for _, i, _ in steps])
        self._sums = self._tables = None
        if steps is not None:
            nodes = self._mark_explored(steps)
            for node in nodes:
                self._visits[node] += 1
            self._new.append((k, nodes, self._dec.features(steps)))

    # --- config and state -----------------------------------------------------------------------------
    def _params(self) -> dict[str, Any]:
        return {"exploration": self.exploration, "rollouts": self.rollouts, "value_model": self.value_model}

    def _state(self) -> dict[str, Any]:
        return {
            "observations": [[p, score_to_json(s)] for p, s in zip(self._paths, self._scores)],
            "explored": [list(p) for p in self._explored_paths],
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self._reset()
        for path, score in state["observations"]:
            self._add(score_from_json(score), None if path is None else self._replay(path))
        for path in state["explored"]:
            self._mark_explored(self._replay(path))


STRATEGY_CLASSES = [MonteCarloTreeSearch]
