"""What the dashboard draws of an architecture, and the axes of its parallel-coordinates plot.

Everything here returns plain, JSON-safe values (strings, numbers, lists, dicts); the browser turns them into
SVG with DOM calls, so no text of a study is ever parsed as markup.

* :func:`describe_arch`: the parts of an architecture to draw: ``{"kind": "graph"}`` for a cell (nodes, and
  edges labelled with their ops) or a link-and-ops DAG (nodes labelled with their ops), ``{"kind": "blocks"}`` for
  stages of layers or a macro skeleton (rows of blocks), ``{"kind": "values"}`` for the scalar parameters.
* :class:`ParamAxes`: one axis per decision of the space (a cell edge, a stage's depth, a
  layer's kernel, ...; see :meth:`~archscout.space.Param.decisions`) or per number parameter, and the position of
  an architecture on each.
"""

from __future__ import annotations

from typing import Any

from ..space import Architecture, Cell, LinkOps, Skeleton, Space, Stages
from ..space.decisions import Decisions, decisions_of

__all__ = ["MAX_AXES", "ParamAxes", "describe_arch"]

MAX_AXES = 40
"""At most this many parameter axes in the parallel-coordinates plot (the first ones in declaration order)."""

_SKELETON_KINDS = {1: "keep", 2: "channels x2", 3: "resolution /2", 4: "channels x2, resolution /2"}


# --- drawing ----------------------------------------------------------------------------------------
def describe_arch(space: Space, arch: Architecture) -> list[dict[str, Any]]:
    """The parts of ``arch`` to draw, in the space's declaration order (the scalar parameters first, together).

    Returns:
        a list of dicts: ``{"kind": "values", "items": [{"name", "value"}]}``; ``{"kind": "graph", "name",
        "nodes": [{"id", "label"}], "edges": [{"src", "dst", "label", "dead"}]}``; ``{"kind": "blocks", "name",
        "rows": [{"label", "blocks": [str]}]}``.
    """
    values: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for name, p in space.params.items():
        v = arch[name]
        if v is None:
            values.append({"name": name, "value": "(inactive)"})
        elif isinstance(p, Cell):
            parts.append(_cell(name, p, v))
        elif isinstance(p, LinkOps):
            parts.append(_link_ops(name, p, v))
        elif isinstance(p, Stages):
            parts.append(_stages(name, p, v))
        elif isinstance(p, Skeleton):
            parts.append(_skeleton(name, p, v))
        else:
            values.append({"name": name, "value": p.format(v)})
    if values:
        parts.insert(0, {"kind": "values", "name": "parameters", "items": values})
    return parts


def _cell(name: str, p: Cell, value: tuple[str, ...]) -> dict[str, Any]:
    """A cell: node 0 is the input, the last node the output; each edge carries its op (zero ops marked dead)."""
    last = p.nodes - 1
    nodes = [{"id": i, "label": "in" if i == 0 else "out" if i == last else str(i)} for i in range(p.nodes)]
    edges = [{"src": i, "dst": j, "label": op, "dead": op == p.zero} for (i, j), op in zip(p.edges, value)]
    return {"kind": "graph", "name": name, "nodes": nodes, "edges": edges}


def _link_ops(name: str, p: LinkOps, value: tuple[str, tuple[str, ...]]) -> dict[str, Any]:
    """A link-and-ops DAG: node ``k`` applies its op to the output of node ``link[k-1]``; nodes without
    successors are summed into the output."""
    link, ops = value
    n = len(ops)
    nodes = [{"id": 0, "label": "in"}] + [{"id": k, "label": f"{k}: {ops[k - 1]}"} for k in range(1, n + 1)]
    nodes.append({"id": n + 1, "label": "out"})
    parents = [int(d) for d in link]
    edges = [{"src": parents[k - 1], "dst": k, "label": "", "dead": False} for k in range(1, n + 1)]
    has_child = set(parents)
    edges += [{"src": k, "dst": n + 1, "label": "", "dead": False} for k in range(1, n + 1) if k not in has_child]
    return {"kind": "graph", "name": name, "nodes": nodes, "edges": edges}


def _stages(name: str, p: Stages, value: tuple) -> dict[str, Any]:
    """Stages as rows; each active layer one block listing its choices."""
    keys = list(p.layer)
    rows = []
    for s, stage in enumerate(value):
        blocks = [", ".join(f"{k}={p.layer[k].format(v)}" for k, v in zip(keys, layer)) for layer in stage]
        rows.append({"label": f"stage {s} (depth {len(stage)})", "blocks": blocks})
    return {"kind": "blocks", "name": name, "rows": rows}


def _skeleton(name: str, p: Skeleton, value: tuple[int, ...]) -> dict[str, Any]:
    """A macro skeleton: one row of modules, each with what it does to channels and resolution."""
    blocks = [f"{d}: {_SKELETON_KINDS.get(int(d), str(d))}" for d in value]
    return {"kind": "blocks", "name": name,
            "rows": [{"label": f"{p.base_channels} channels, {p.block} blocks", "blocks": blocks}]}


# --- parallel coordinates ------------------------------------------------------------------------
class ParamAxes:
    """The parameter axes of a space's parallel-coordinates plot (at most :data:`MAX_AXES`): one per decision
    (see :meth:`~archscout.space.Param.decisions`) of each categorical or structured parameter, one per number
    parameter. A parameter whose decisions cannot be built gets no axis.

    Attributes:
        axes: ``[{"label": str, "ticktext": [str] | None}]``: a categorical axis (positions
            ``0..len(ticktext)-1``, ``-1`` where the decision is not taken, e.g. a layer beyond a stage's depth)
            or a numeric one (``ticktext`` ``None``).
    """

    def __init__(self, space: Space) -> None:
        self._parts: list[tuple[str, Decisions | None]] = []
        self.axes: list[dict[str, Any]] = []
        for name, p in space.params.items():
            dec: Decisions | None = None
            if p.numeric_range() is None:
                try:
                    dec = decisions_of(p)
                except Exception:  # noqa: BLE001 - e.g. a plug-in parameter without decisions: no axis
                    continue
            self._parts.append((name, dec))
            if dec is None:
                self.axes.append({"label": name, "ticktext": None})
            else:
                self.axes += [{"label": name + dec.label(k), "ticktext": list(dec.tokens(k))}
                              for k in range(len(dec.sizes))]
        del self.axes[MAX_AXES:]

    def values(self, arch: Architecture) -> list[float | None]:
        """``arch``'s position on each axis (``None``: unknown, e.g. an inactive number parameter)."""
        out: list[float | None] = []
        for name, dec in self._parts:
            if len(out) >= MAX_AXES:
                break
            v = arch[name]
            if dec is None:
                out.append(None if v is None else float(v))
                continue
            chosen = dict(dec.decode(v) or []) if v is not None else {}
            out += [float(chosen.get(k, 0 if n == 1 else -1)) for k, n in enumerate(dec.sizes)]
        return out[:MAX_AXES]
