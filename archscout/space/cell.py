"""Cells: a DAG of nodes where each edge carries an operation and incoming edges are summed.

Node 0 is the cell input and node ``nodes - 1`` its output. Every pair ``i < j`` is an edge, listed in
the NB201 order: the incoming edges of node 1, then of node 2, and so on. The string form is the
official NB201 one, e.g. ``|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|...|``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, InvalidArchitectureError
from .decisions import Decisions, ProductDecisions
from .params import Param, check_token

__all__ = ["Cell"]

_ZERO_NAMES = ("none", "zero")
_IDENTITY_NAMES = ("skip_connect", "skip", "identity")
HASH_RULES = ("nb201", "strict", "none")
MAX_NODES = 64  # 2,016 edges; larger values are typos, and the edge list grows with nodes**2
_MAX_PATH_BITS = 18  # path encodings enumerate 2**(nodes - 2) paths: up to 20 nodes
_MAX_ENCODING = 2**24  # entries of a path encoding vector


class Cell(Param):
    """A cell DAG with one operation per edge.

    Args:
        nodes: number of nodes including input and output (>= 2).
        ops: candidate operation names (distinct tokens).
        zero: the op that outputs zeros (default: ``"none"`` or ``"zero"`` if listed, else no zero op).
        identity: the op that passes its input through (default: ``"skip_connect"``/``"skip"``/``"identity"``
            if listed).
        hash_rule: how :meth:`canonical` collapses equivalent cells. ``"nb201"`` (default) is NB201's
            zero-aware unique-string rule (15,625 NB201 cells give 6,466 classes); ``"strict"`` also drops
            zero terms and ops applied to zero inputs and flattens identity sums (4,930 classes); ``"none"``
            keeps every cell distinct. Use ``"none"`` when a cost such as latency is an objective: cells of one
            functional class still differ in cost where dead branches are executed on the device.
    """

    kind = "cell"

    def __init__(
        self,
        nodes: int,
        ops: Sequence[str],
        zero: str | None = None,
        identity: str | None = None,
        hash_rule: str = "nb201",
        when: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(when)
        if isinstance(nodes, bool) or not isinstance(nodes, int) or not 2 <= nodes <= MAX_NODES:
            raise ConfigError(f"a Cell needs an integer number of nodes from 2 to {MAX_NODES}, got {nodes!r}")
        if isinstance(ops, str) or not isinstance(ops, Sequence) or not ops:
            raise ConfigError(f"a Cell needs a non-empty list of op names, got {ops!r}")
        self.ops: tuple[str, ...] = tuple(str(o) for o in ops)
        if len(set(self.ops)) != len(self.ops):
            raise ConfigError(f"Cell ops {list(self.ops)} are not distinct")
        for o in self.ops:
            check_token(o, "op name")
        self.nodes = nodes
        self.zero = zero if zero is not None else next((o for o in _ZERO_NAMES if o in self.ops), None)
        self.identity = identity if identity is not None else next((o for o in _IDENTITY_NAMES if o in self.ops), None)
        for name, v in (("zero", self.zero), ("identity", self.identity)):
            if v is not None and v not in self.ops:
                raise ConfigError(f"Cell {name} op {v!r} is not one of the ops {list(self.ops)}")
        if hash_rule not in HASH_RULES:
            raise ConfigError(f"unknown Cell hash_rule {hash_rule!r}; use one of {HASH_RULES}")
        self.hash_rule = hash_rule
        self.edges: tuple[tuple[int, int], ...] = tuple((i, j) for j in range(1, nodes) for i in range(j))
        self._op_index = {o: k for k, o in enumerate(self.ops)}
        self._live_ops = [o for o in self.ops if o != self.zero]
        self._path_list: list[tuple[int, ...]] | None = None  # built on the first path encoding

    # --- basic operations ----------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> tuple[str, ...]:
        idx = rng.integers(len(self.ops), size=len(self.edges))
        return tuple(self.ops[k] for k in idx)

    def mutate(self, value: Any, rng: np.random.Generator) -> tuple[str, ...]:
        if len(self.ops) < 2:
            return value
        e = int(rng.integers(len(self.edges)))
        k = self._op_index[value[e]]
        new = (k + 1 + int(rng.integers(len(self.ops) - 1))) % len(self.ops)
        return value[:e] + (self.ops[new],) + value[e + 1:]

    def neighbors(self, value: Any) -> list[tuple[str, ...]]:
        return [value[:e] + (o,) + value[e + 1:] for e in range(len(self.edges)) for o in self.ops if o != value[e]]

    def crossover(self, a: Any, b: Any, rng: np.random.Generator) -> tuple[str, ...]:
        mask = rng.random(len(self.edges)) < 0.5
        return tuple(x if m else y for x, y, m in zip(a, b, mask))

    def validate(self, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            return self.parse(value)
        if not isinstance(value, (tuple, list)) or len(value) != len(self.edges):
            raise InvalidArchitectureError(
                f"a {self.nodes}-node cell needs {len(self.edges)} edge ops, got {value!r}"
            )
        for o in value:
            if not isinstance(o, str) or o not in self._op_index:
                raise InvalidArchitectureError(f"unknown op {o!r}; the cell's ops are {list(self.ops)}")
        return tuple(value)

    def size(self) -> float:
        return len(self.ops) ** len(self.edges)

    def values(self) -> Iterator[tuple[str, ...]]:
        return itertools.product(self.ops, repeat=len(self.edges))

    def n_dims(self) -> int:
        return len(self.edges)

    # --- string form ---------------------------------------------------------------------------
    def format(self, value: Any) -> str:
        parts, k = [], 0
        for j in range(1, self.nodes):
            parts.append("|" + "|".join(f"{value[k + i]}~{i}" for i in range(j)) + "|")
            k += j
        return "+".join(parts)

    def parse(self, text: str) -> tuple[str, ...]:
        text = text.strip()
        groups = text.split("+")
        hint = f"expected {self.nodes - 1} groups like '|op~0|+|op~0|op~1|...' with ops from {list(self.ops)}"
        if len(groups) != self.nodes - 1:
            raise InvalidArchitectureError(f"malformed cell string {text!r}: {hint}")
        ops: list[str] = []
        for j, g in enumerate(groups, start=1):
            if not (g.startswith("|") and g.endswith("|")) or len(g) < 2:
                raise InvalidArchitectureError(f"malformed cell string {text!r}: group {g!r}; {hint}")
            items = g[1:-1].split("|")
            if len(items) != j:
                raise InvalidArchitectureError(
                    f"malformed cell string {text!r}: node {j} needs {j} incoming edges, got {len(items)}; {hint}"
                )
            for i, item in enumerate(items):
                op, sep, src = item.rpartition("~")
                if not sep or src != str(i):
                    raise InvalidArchitectureError(
                        f"malformed cell string {text!r}: edge {item!r} should read 'op~{i}'; {hint}"
                    )
                if op not in self._op_index:
                    raise InvalidArchitectureError(
                        f"unknown op {op!r} in {text!r}; the cell's ops are {list(self.ops)}"
                    )
                ops.append(op)
        return tuple(ops)

    # --- functional form -----------------------------------------------------------------------
    def canonical(self, value: Any) -> str:
        """A string equal for cells that compute the same function (see ``hash_rule``)."""
        if self.hash_rule == "none":
            return self.format(value)
        return self._canonical_nb201(value) if self.hash_rule == "nb201" else self._canonical_strict(value)

    def _canonical_nb201(self, value: Sequence[str]) -> str:
        # NB201's ``to_unique_str(consider_zero=True)``, reproduced exactly: a term is '#' when the op is
        # the zero op or its input node's string is exactly '#'; identity passes the input string through.
        node = ["0"]
        k = 0
        for j in range(1, self.nodes):
            terms = []
            for i in range(j):
                op = value[k + i]
                if op == self.zero or node[i] == "#":
                    terms.append("#")
                elif op == self.identity:
                    terms.append(node[i])
                else:
                    terms.append(f"({node[i]})@{op}")
            node.append("+".join(sorted(terms)))
            k += j
        return node[-1]

    def _canonical_strict(self, value: Sequence[str]) -> str:
        # zero terms vanish, identity splices its input's terms into the sum, ops on zero inputs vanish.
        node: list[tuple[str, ...]] = [("x",)]
        k = 0
        for j in range(1, self.nodes):
            terms: list[str] = []
            for i in range(j):
                op = value[k + i]
                if op == self.zero or not node[i]:
                    continue
                if op == self.identity:
                    terms.extend(node[i])
                else:
                    terms.append("(" + "+".join(node[i]) + ")@" + op)
            node.append(tuple(sorted(terms)))
            k += j
        return "+".join(node[-1]) if node[-1] else "#"

    # --- encodings ---------------------------------------------------------------------------------
    @property
    def _paths(self) -> list[tuple[int, ...]]:
        """Every input-to-output path, as a tuple of edge indices (``2**(nodes - 2)`` of them).

        Raises:
            ConfigError: the cell has too many paths for a path encoding (use ``"onehot"``).
        """
        if self._path_list is None:
            if self.nodes - 2 > _MAX_PATH_BITS:
                raise ConfigError(
                    f"a {self.nodes}-node cell has 2**{self.nodes - 2} input-to-output paths, too many for the "
                    f"path encodings; use encoding 'onehot' or at most {_MAX_PATH_BITS + 2} nodes"
                )
            self._path_list = self._all_paths()
        return self._path_list

    def _all_paths(self) -> list[tuple[int, ...]]:
        """Every input-to-output path, as a tuple of edge indices."""
        edge_id = {e: k for k, e in enumerate(self.edges)}
        paths: list[tuple[int, ...]] = []

        def walk(node: int, acc: tuple[int, ...]) -> None:
            if node == self.nodes - 1:
                paths.append(acc)
                return
            for nxt in range(node + 1, self.nodes):
                walk(nxt, acc + (edge_id[(node, nxt)],))

        walk(0, ())
        return paths

    def encoding_size(self, kind: str = "onehot") -> int:
        """Length of :meth:`encode`'s vector.

        Raises:
            ConfigError: a path encoding longer than 2**24 (too many ops and nodes; use ``"onehot"``).
        """
        if kind == "onehot" or kind not in ("path", "functional"):
            return len(self.edges) * len(self.ops)
        if kind == "path":
            n = len(self._live_ops)
            size = sum(n**length for length in range(1, self.nodes))
        else:
            n = len(self._effective_ops())
            size = sum(n**length for length in range(self.nodes))
        if size > _MAX_ENCODING:
            raise ConfigError(
                f"the {kind} encoding of a {self.nodes}-node cell with {len(self.ops)} ops has {size} entries, "
                "too many; use encoding 'onehot'"
            )
        return size

    def _effective_ops(self) -> list[str]:
        return [o for o in self.ops if o not in (self.zero, self.identity)]

    def _encode_functional(self, value: Any, out: np.ndarray) -> np.ndarray:
        eff = {o: k for k, o in enumerate(self._effective_ops())}
        n = len(eff)
        offsets = [0]
        for length in range(self.nodes - 1):
            offsets.append(offsets[-1] + n**length)
        for path in self._paths:
            ops = [value[e] for e in path]
            if any(o == self.zero for o in ops):
                continue
            code, length = 0, 0
            for o in ops:
                if o != self.identity:
                    code = code * n + eff[o]
                    length += 1
            out[offsets[length] + code] += 1.0
        return out

    def encode(self, value: Any, kind: str = "onehot") -> np.ndarray:
        """One-hot per edge (``"onehot"``); BANANAS path encoding (``"path"``): one bit per sequence of
        non-zero ops along an input-to-output path; or the functional path encoding (``"functional"``): per
        input-to-output path that no zero op cuts, a count of its sequence of ops with identities removed,
        so that paths computing the same composition (e.g. ``skip`` then ``skip`` and a direct ``skip``)
        share a feature."""
        out = np.zeros(self.encoding_size(kind))
        if value is None:
            return out
        if kind == "functional":
            return self._encode_functional(value, out)
        if kind == "path":
            n = len(self._live_ops)
            live = {o: k for k, o in enumerate(self._live_ops)}
            offsets = [0]
            for length in range(1, self.nodes):
                offsets.append(offsets[-1] + n**length)
            for path in self._paths:
                ops = [value[e] for e in path]
                if any(o == self.zero for o in ops):
                    continue
                code = 0
                for o in ops:
                    code = code * n + live[o]
                out[offsets[len(ops) - 1] + code] = 1.0
            return out
        for e, o in enumerate(value):
            out[e * len(self.ops) + self._op_index[o]] = 1.0
        return out

    def decisions(self) -> Decisions:
        """One decision per edge over the ops (slots named ``[i~j]``)."""
        return ProductDecisions([self.ops] * len(self.edges), [f"[{i}~{j}]" for i, j in self.edges])

    def encoding_kind(self, kind: str) -> str:
        """Cells have all three encodings (one-hot, path, functional path)."""
        return kind

    def _config(self) -> dict:
        return {
            "nodes": self.nodes,
            "ops": list(self.ops),
            "zero": self.zero,
            "identity": self.identity,
            "hash_rule": self.hash_rule,
        }
