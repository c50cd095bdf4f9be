"""Link-and-ops macro DAGs, as in NAS-Bench-Graph: computing nodes with one input each.

Node ``k`` (1-based) takes the output of node ``link[k-1]`` (0 is the input of the network, ``j`` the
``j``-th computing node, always an earlier one) and applies its op. Nodes without successors are summed
into the output. A value is ``(link, ops)``, e.g. ``("0012", ("gcn", "gat", "skip", "fc"))``; the string
form is ``0012:gcn-gat-skip-fc``.

Functional form: the identity op (``skip``) passes its input through, so identity nodes are spliced out
(their successors hang from the identity's own input; an identity without successors feeds its input to
the output once more). What remains is a rooted tree of op nodes, each with the number of times it feeds
the output; its canonical string (children sorted) is equal for isomorphic architectures. Copies of the raw
input that reach the output only through identities are not counted. This reproduces NAS-Bench-Graph's own
equivalence (``Arch.valid_hash``) exactly: the 9 links x (9^4 - 1) op choices fall into its 26,206
classes, and its 5-op ogbn-proteins space into 2,021.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, InvalidArchitectureError
from .decisions import Decisions, enumerated_decisions
from .params import Param, check_token

__all__ = ["NBGRAPH_LINKS", "NBGRAPH_OPS", "NBGRAPH_PROTEINS_OPS", "LinkOps"]

NBGRAPH_LINKS = ("0000", "0001", "0011", "0012", "0013", "0111", "0112", "0122", "0123")
NBGRAPH_OPS = ("gat", "gcn", "gin", "cheb", "sage", "arma", "graph", "fc", "skip")
NBGRAPH_PROTEINS_OPS = ("gcn", "sage", "arma", "fc", "skip")

_EXACT_PATH_LEN = 3  # path encoding: exact op sequences up to this length, per-position bags beyond


class LinkOps(Param):
    """A DAG of computing nodes with one input link and one op each (see the module docstring).

    Args:
        links: the allowed link patterns, strings of one digit per node (digit ``k`` of node ``i`` must be
            below ``i``, 1-based), all of one length.
        ops: the candidate ops (distinct tokens without ``-`` or ``:``).
        identity: the op that passes its input through (default ``"skip"`` when listed); architectures
            whose every op is the identity compute nothing and are not part of the space.

    Raises:
        ConfigError: bad links or ops.
    """

    kind = "link_ops"

    def __init__(
        self,
        links: Sequence[str] = NBGRAPH_LINKS,
        ops: Sequence[str] = NBGRAPH_OPS,
        identity: str | None = None,
        when: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(when)
        if isinstance(links, str) or not links:
            raise ConfigError(f"LinkOps needs a non-empty list of link patterns such as '0012', got {links!r}")
        self.links: tuple[str, ...] = tuple(str(lk) for lk in links)
        if len(set(self.links)) != len(self.links):
            raise ConfigError(f"LinkOps links {list(self.links)} are not distinct")
        self.n = len(self.links[0])
        for lk in self.links:
            if len(lk) != self.n or not lk.isdigit() or not lk.isascii() or self.n == 0:
                raise ConfigError(
                    f"link {lk!r} must have one digit per node ({self.n} digits, as the first link "
                    f"{self.links[0]!r}), such as '0012'"
                )
            for i, d in enumerate(lk):
                if int(d) > i:
                    raise ConfigError(f"link {lk!r}: node {i + 1} cannot take its input from node {d} (not earlier)")
        if isinstance(ops, str) or not ops:
            raise ConfigError(f"LinkOps needs a non-empty list of op names, got {ops!r}")
        self.ops: tuple[str, ...] = tuple(str(o) for o in ops)
        if len(set(self.ops)) != len(self.ops):
            raise ConfigError(f"LinkOps ops {list(self.ops)} are not distinct")
        for o in self.ops:
            check_token(o, "op name")
            if "-" in o or ":" in o:
                raise ConfigError(f"op name {o!r} cannot contain '-' or ':' (they separate the string form)")
        if identity is None and "skip" in self.ops:
            identity = "skip"
        if identity is not None and identity not in self.ops:
            raise ConfigError(f"LinkOps identity op {identity!r} is not one of the ops {list(self.ops)}")
        if identity is not None and len(self.ops) == 1:
            raise ConfigError("LinkOps needs an op besides the identity")
        self.identity = identity
        self._op_index = {o: k for k, o in enumerate(self.ops)}
        self._link_index = {lk: k for k, lk in enumerate(self.links)}
        self._live = [o for o in self.ops if o != identity]
        self._live_index = {o: k for k, o in enumerate(self._live)}
        self._exact = min(self.n, _EXACT_PATH_LEN)
        # per link: the parent of each node (index 0 unused) and whether each node (0 = input) has a successor
        self._structure: dict[str, tuple[list[int], list[bool]]] = {}
        for lk in self.links:
            parents = [0] + [int(d) for d in lk]
            has_child = [False] * (self.n + 1)
            for p in parents[1:]:
                has_child[p] = True
            self._structure[lk] = (parents, has_child)

    def _all_identity(self, ops: Sequence[str]) -> bool:
        return self.identity is not None and all(o == self.identity for o in ops)

    # --- basic operations ----------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> tuple[str, tuple[str, ...]]:
        """Uniform over the space (a draw whose ops are all identities is redrawn)."""
        link = self.links[int(rng.integers(len(self.links)))]
        while True:
            ops = tuple(self.ops[k] for k in rng.integers(len(self.ops), size=self.n))
            if not self._all_identity(ops):
                return link, ops

    def neighbors(self, value: Any) -> list[tuple[str, tuple[str, ...]]]:
        """Every architecture with another link, or with one op changed."""
        link, ops = value
        out = [(lk, ops) for lk in self.links if lk != link]
        for i in range(self.n):
            for o in self.ops:
                if o != ops[i]:
                    new = ops[:i] + (o,) + ops[i + 1:]
                    if not self._all_identity(new):
                        out.append((link, new))
        return out

    def crossover(self, a: Any, b: Any, rng: np.random.Generator) -> tuple[str, tuple[str, ...]]:
        """The link and each node's op from either parent (a parent when the mix has only identities)."""
        mask = rng.random(self.n + 1) < 0.5
        link = a[0] if mask[0] else b[0]
        ops = tuple(x if m else y for x, y, m in zip(a[1], b[1], mask[1:]))
        if self._all_identity(ops):
            return a if rng.random() < 0.5 else b
        return link, ops

    def validate(self, value: Any) -> tuple[str, tuple[str, ...]]:
        if isinstance(value, str):
            return self.parse(value)
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise InvalidArchitectureError(
                f"expected (link, ops), e.g. ('0012', ('gcn', 'gat', 'skip', 'fc')), got {value!r}"
            )
        link, ops = value
        if not isinstance(link, str) or link not in self._link_index:
            raise InvalidArchitectureError(f"link {link!r} is not one of {list(self.links)}")
        if isinstance(ops, str) or not isinstance(ops, (tuple, list)) or len(ops) != self.n:
            raise InvalidArchitectureError(f"expected {self.n} ops, one per node, got {ops!r}")
        for o in ops:
            if not isinstance(o, str) or o not in self._op_index:
                raise InvalidArchitectureError(f"unknown op {o!r}; the ops are {list(self.ops)}")
        if self._all_identity(ops):
            raise InvalidArchitectureError(
                f"every op is {self.identity!r}, so the network computes nothing; use at least one other op"
            )
        return link, tuple(ops)

    def size(self) -> float:
        return len(self.links) * (len(self.ops) ** self.n - (1 if self.identity is not None else 0))

    def values(self) -> Iterator[tuple[str, tuple[str, ...]]]:
        for link in self.links:
            for ops in itertools.product(self.ops, repeat=self.n):
                if not self._all_identity(ops):
                    yield link, ops

    def n_dims(self) -> int:
        return self.n + 1

    # --- string form ---------------------------------------------------------------------------
    def format(self, value: Any) -> str:
        return f"{value[0]}:{'-'.join(value[1])}"

    def parse(self, text: str) -> tuple[str, tuple[str, ...]]:
        text = text.strip()
        link, sep, ops = text.partition(":")
        if not sep:
            example = f"{self.links[-1]}:{'-'.join(self._live[:1] * self.n)}"
            raise InvalidArchitectureError(
                f"malformed architecture {text!r}: expected 'LINK:OP-OP-...', e.g. {example!r}, with a link from "
                f"{list(self.links)} and {self.n} ops from {list(self.ops)}"
            )
        return self.validate((link.strip(), tuple(o.strip() for o in ops.split("-"))))

    # --- functional form -----------------------------------------------------------------------
    def _tree(self, value: Any) -> tuple[list[int], list[int], list[int]]:
        """Per node (0 = input): its parent, its nearest op (non-identity) ancestor-or-self, and how often it
        feeds the output. Identity nodes resolve to their input's entry."""
        link, ops = value
        parents, has_child = self._structure[link]
        ident = self.identity
        eff = [0] * (self.n + 1)
        outs = [0] * (self.n + 1)
        for k in range(1, self.n + 1):
            e = eff[parents[k]] if ops[k - 1] == ident else k
            eff[k] = e
            if not has_child[k]:
                outs[e] += 1
        return parents, eff, outs

    def canonical(self, value: Any) -> str:
        """Canonical string of the op tree (see the module docstring)."""
        ops = value[1]
        parents, eff, outs = self._tree(value)
        kids: list[list[str]] = [[] for _ in range(self.n + 1)]
        for k in range(self.n, 0, -1):  # children have larger indices, so they are complete first
            if ops[k - 1] != self.identity:
                below = kids[k]
                below.sort()
                kids[eff[parents[k]]].append(f"{ops[k - 1]}[{','.join(below)}]x{outs[k]}")
        kids[0].sort()
        return ",".join(kids[0])

    # --- encodings -----------------------------------------------------------------------------
    def _paths(self, value: Any) -> list[tuple[tuple[str, ...], int]]:
        """(ops from the input to an op node, identities left out; times that node feeds the output), for
        every op node that feeds the output."""
        ops = value[1]
        parents, eff, outs = self._tree(value)
        path: list[tuple[str, ...]] = [()] * (self.n + 1)
        for k in range(1, self.n + 1):
            p = path[parents[k]]
            path[k] = p if ops[k - 1] == self.identity else p + (ops[k - 1],)
        return [(path[k], outs[k]) for k in range(1, self.n + 1) if outs[k] and eff[k] == k]

    def encoding_size(self, kind: str = "onehot") -> int:
        if kind == "path":
            m = len(self._live)
            exact = sum(m**length for length in range(1, self._exact + 1))
            return exact + (m * self.n if self.n > self._exact else 0)
        return len(self.links) + self.n * len(self.ops)

    def encode(self, value: Any, kind: str = "onehot") -> np.ndarray:
        """``"onehot"``: the link, then each node's op, one-hot. ``"path"`` (equal for functionally equal
        architectures): for every op node feeding the output, the sequence of ops on its path from the
        input, counted with that node's output multiplicity; sequences up to 3 ops get one entry each,
        longer ones count each op at its position in a separate block."""
        out = np.zeros(self.encoding_size(kind))
        if value is None:
            return out
        if kind != "path":
            out[self._link_index[value[0]]] = 1.0
            base = len(self.links)
            for i, o in enumerate(value[1]):
                out[base + i * len(self.ops) + self._op_index[o]] = 1.0
            return out
        m = len(self._live)
        offsets = [0]
        for length in range(1, self._exact + 1):
            offsets.append(offsets[-1] + m**length)
        for seq, count in self._paths(value):
            if len(seq) <= self._exact:
                code = 0
                for o in seq:
                    code = code * m + self._live_index[o]
                out[offsets[len(seq) - 1] + code] += count
            else:
                for pos, o in enumerate(seq):
                    out[offsets[-1] + pos * m + self._live_index[o]] += count
        return out

    def decisions(self) -> Decisions:
        """The link pattern (slot ``.link``), then each node's op (slots ``[k]``); combinations the space
        excludes (every op the identity) are never allowed."""
        return enumerated_decisions(self, labels={0: ".link", **{2 + k: f"[{k}]" for k in range(self.n)}})

    def _config(self) -> dict:
        return {"links": list(self.links), "ops": list(self.ops), "identity": self.identity}
