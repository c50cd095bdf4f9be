"""A :class:`Cell` written with one digit per edge, as TransNAS-Bench-101's micro cells are.

The string form is ``prefix`` followed by the op indices of each node's incoming edges, node by node,
separated by ``_``. For TransNAS-Bench-101 (prefix ``"64-41414-"``) the cell ``a_bc_def`` reads:
node 1 = op a (node 0); node 2 = op b (node 0) + op c (node 1); node 3 = op d (node 0) + op e (node 1) +
op f (node 2), e.g. ``64-41414-3_13_020``. The edges are in the same order as :class:`Cell`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError, InvalidArchitectureError
from .cell import Cell
from .params import RESERVED_CHARS

__all__ = ["DigitCell"]


class DigitCell(Cell):
    """A cell DAG whose string form writes each edge's op as its index (a single digit).

    Args:
        nodes, ops, zero, identity, hash_rule, when: as for :class:`Cell` (at most 10 ops).
        prefix: text written before the digits (e.g. ``"64-41414-"``: the channels and the fixed
            skeleton of TransNAS-Bench-101's micro networks); parsing requires it.
        input_identity: whether the identity op on an edge leaving the input node (node 0) is a true
            identity for the functional hash. ``False`` when the same cell is also used as a reduction
            cell, where such an edge must change the resolution and width and so becomes a learned
            factorised reduction (as in TransNAS-Bench-101, DARTS): the hash then treats it as an op of
            its own, while the identity on the other edges still collapses.

    Raises:
        ConfigError: more than 10 ops, or a prefix with characters reserved for architecture strings.
    """

    kind = "digit_cell"

    def __init__(
        self,
        nodes: int,
        ops: Sequence[str],
        prefix: str = "",
        zero: str | None = None,
        identity: str | None = None,
        hash_rule: str = "nb201",
        input_identity: bool = True,
        when: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(nodes, ops, zero=zero, identity=identity, hash_rule=hash_rule, when=when)
        if len(self.ops) > 10:
            raise ConfigError(f"a DigitCell writes one digit per op, so it takes at most 10 ops, got {len(self.ops)}")
        if not isinstance(prefix, str):
            raise ConfigError(f"DigitCell prefix must be a string, got {prefix!r}")
        bad = sorted(set(prefix) & RESERVED_CHARS)
        if bad or prefix != prefix.strip():
            raise ConfigError(
                f"DigitCell prefix {prefix!r} has surrounding spaces or characters reserved for architecture "
                f"strings ({''.join(bad)!r}); rename it"
            )
        if not isinstance(input_identity, bool):
            raise ConfigError(f"DigitCell input_identity must be True or False, got {input_identity!r}")
        self.prefix = prefix
        self.input_identity = input_identity
        # a token no real op can have ('~' is reserved), so it never collides with an op name
        self._input_skip = f"{self.identity}~reduce"

    # --- string form ---------------------------------------------------------------------------
    def format(self, value: Any) -> str:
        groups, k = [], 0
        for j in range(1, self.nodes):
            groups.append("".join(str(self._op_index[value[k + i]]) for i in range(j)))
            k += j
        return self.prefix + "_".join(groups)

    def parse(self, text: str) -> tuple[str, ...]:
        text = text.strip()
        example = self.prefix + "_".join("0" * j for j in range(1, self.nodes))
        hint = (
            f"expected {example!r}-like text: {self.prefix!r}, then per node the digits (0 to {len(self.ops) - 1}) "
            f"of its incoming edges' ops {list(self.ops)}, nodes separated by '_'"
        )
        if not text.startswith(self.prefix):
            raise InvalidArchitectureError(f"malformed cell string {text!r}: {hint}")
        groups = text[len(self.prefix):].split("_")
        if len(groups) != self.nodes - 1:
            raise InvalidArchitectureError(
                f"malformed cell string {text!r}: {len(groups)} node groups instead of {self.nodes - 1}; {hint}"
            )
        ops: list[str] = []
        for j, g in enumerate(groups, start=1):
            if len(g) != j or not g.isdigit() or not g.isascii():
                raise InvalidArchitectureError(
                    f"malformed cell string {text!r}: node {j} needs {j} digits, got {g!r}; {hint}"
                )
            for d in g:
                if int(d) >= len(self.ops):
                    raise InvalidArchitectureError(
                        f"unknown op digit {d} in {text!r}; "
                        f"the digits 0 to {len(self.ops) - 1} stand for {list(self.ops)}"
                    )
                ops.append(self.ops[int(d)])
        return tuple(ops)

    # --- functional form -----------------------------------------------------------------------
    def canonical(self, value: Any) -> str:
        """As :meth:`Cell.canonical`; with ``input_identity=False`` the identity op on edges leaving node 0
        counts as an op of its own."""
        if not self.input_identity and self.identity is not None:
            value = tuple(
                self._input_skip if (i == 0 and op == self.identity) else op for (i, _), op in zip(self.edges, value)
            )
        return super().canonical(value)

    def _config(self) -> dict:
        return {**super()._config(), "prefix": self.prefix, "input_identity": self.input_identity}
