"""Lookup-table latency (ProxylessNAS / Once-for-All style): the sum of per-layer latencies plus a fitted overhead.

A network is decomposed into *units*: starting from the root module, containers (``Sequential``,
``ModuleList``, ``ModuleDict`` by default, see ``transparent``) are opened and every other child module is a
unit (an MBConv block, a cell, a stem convolution...). A unit configuration is its structure (class, every
setting, every child's settings: op type, channels, stride, kernel, expand ratio...) together with its input
shape. Each configuration is measured once on the device and kept in the table; the prediction for a network
is ``scale * sum(unit latencies) + per_unit_ms * n_units + intercept``, where the three overhead terms are
fitted by least squares on a few measured whole networks. They absorb what isolated units miss: the fixed
cost of one runtime call that every unit pays when timed alone, the glue between modules, caching effects.

Once the table covers a space's configurations the model is cheap (no measurement at prediction time). The
table round-trips through :meth:`LUTLatency.to_config`, so a study can store and rebuild it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._torch import torch_threads
from ..errors import BuildError, ConfigError, DataError, require
from ..space import Architecture
from .base import (
    CostModel,
    factory_config,
    register_cost_model,
)
from .devices import DeviceProfile, get_device
from .measure import LatencyMeter, check_reference, reference_arch, reference_config

__all__ = ["LUTLatency", "Unit", "decompose", "module_signature"]

DEFAULT_TRANSPARENT = ("Sequential", "ModuleList", "ModuleDict")
_SIMPLE = (bool, int, float, str, type(None))


@dataclass(frozen=True)
class Unit:
    """One unit call of a network.

    Attributes:
        key: digest of the unit's configuration (structure and per-sample input shape); the table key.
        op: readable description, e.g. ``"MBConv in=(24, 16, 16)"``.
        name: qualified module name inside the network.
        input_shape: per-sample input shape (batch excluded).
    """

    key: str
    op: str
    name: str
    input_shape: tuple[int, ...]


def _simple(v: Any) -> bool:
    if isinstance(v, _SIMPLE):
        return True
    return isinstance(v, tuple) and all(isinstance(x, _SIMPLE) for x in v)


def module_signature(module: Any) -> str:
    """A string equal for modules with the same structure and settings (class, ``extra_repr``, plain public
    attributes such as ``stride`` or ``use_residual``, and the same for every child); weights are ignored."""
    attrs = sorted((k, repr(v)) for k, v in vars(module).items()
                   if not k.startswith("_") and k != "training" and _simple(v))
    parts = [type(module).__module__ + "." + type(module).__qualname__, module.extra_repr(), repr(attrs)]
    parts.extend(f"{n}:{module_signature(c)}" for n, c in module.named_children())
    return "(" + ";".join(parts) + ")"


def decompose(module: Any, input_shape: Sequence[int], transparent: Sequence[str] = DEFAULT_TRANSPARENT) -> list[Unit]:
    """The units of ``module`` in call order, found by one forward pass at batch 1.

    Args:
        module: a ``torch.nn.Module``. A ``torch.fx.GraphModule`` (what ``archscout.nn`` builds) is split by
            the module stack its graph nodes record; other modules by forward hooks on their units.
        input_shape: per-sample input shape, e.g. ``(3, 32, 32)``.
        transparent: class names of containers to open (the root is always opened when it has children).

    Raises:
        BuildError: a unit takes other than one tensor input, or the forward pass fails.
    """
    with torch_threads(1):
        return [u for u, _ in _decompose(module, input_shape, tuple(transparent))]


def _decompose(module: Any, input_shape: Sequence[int], transparent: tuple[str, ...]) -> list[tuple[Unit, Any]]:
    """Units with a runnable module each (taking the unit's input tensor)."""
    torch = require("torch", "nn")
    module.eval()
    if isinstance(module, torch.fx.GraphModule) and any(n.meta.get("nn_module_stack") for n in module.graph.nodes):
        return _fx_units(module, tuple(input_shape), transparent, torch)
    return _hook_units(module, tuple(input_shape), transparent, torch)


def _forward(module: Any, input_shape: tuple[int, ...], torch, run: Callable[[Any], Any] | None = None) -> None:
    x = torch.zeros((1, *input_shape))
    try:
        with torch.no_grad():
            (run or module)(x)
    except Exception as e:
        raise BuildError(f"forward pass on input {tuple(x.shape)} failed: {type(e).__name__}: {e}") from e


def _unit_of(node: Any, transparent: tuple[str, ...]) -> tuple[str, str] | None:
    """(module path, class name) of the outermost non-transparent module a graph node belongs to."""
    for value in (node.meta.get("nn_module_stack") or {}).values():
        path, typ = value[0], value[1]
        tname = typ.__name__ if isinstance(typ, type) else str(typ).rsplit(".", 1)[-1].strip("'>")
        if tname not in transparent:
            return str(path), tname
    return None


def _fx_units(gm: Any, input_shape: tuple[int, ...], transparent: tuple[str, ...],
              torch) -> list[tuple[Unit, Any]]:
    from torch.fx.node import map_arg
    from torch.fx.passes.shape_prop import ShapeProp

    _forward(gm, input_shape, torch, lambda x: ShapeProp(gm).propagate(x))
    groups: dict[str, tuple[str, list[Any]]] = {}
    for node in gm.graph.nodes:
        if node.op in ("placeholder", "output", "get_attr"):
            continue
        owner = _unit_of(node, transparent)
        if owner is not None:  # nodes outside every unit are glue, left to the fitted overhead
            groups.setdefault(owner[0], (owner[1], []))[1].append(node)
    out: list[tuple[Unit, Any]] = []
    for path, (tname, nodes) in groups.items():
        members = set(nodes)
        graph = torch.fx.Graph()
        env: dict[Any, Any] = {}
        inputs: list[Any] = []

        def arg(n: Any, env: dict[Any, Any] = env, graph: Any = graph, inputs: list[Any] = inputs) -> Any:
            if n not in env:
                if n.op == "get_attr":
                    env[n] = graph.node_copy(n, arg)
                else:
                    env[n] = graph.placeholder(f"input_{len(inputs)}")
                    inputs.append(n)
            return env[n]

        for n in nodes:
            env[n] = graph.node_copy(n, arg)
        outs = [n for n in nodes if any(u not in members for u in n.users)] or [nodes[-1]]
        graph.output(env[outs[0]] if len(outs) == 1 else tuple(env[o] for o in outs))
        metas = [n.meta.get("tensor_meta") for n in inputs]
        if len(inputs) != 1 or not hasattr(metas[0], "shape"):
            raise BuildError(f"unit {path!r} ({tname}) takes {len(inputs)} inputs; list {tname!r} in transparent= "
                             f"to decompose it further")
        shape = tuple(int(s) for s in metas[0].shape[1:])
        sub = torch.fx.GraphModule(gm, graph)
        index = {n: i for i, n in enumerate(graph.nodes)}

        def ref(a: Any, index: dict[Any, int] = index) -> str:
            return f"%{index[a]}"

        lines = []
        for n in graph.nodes:
            if n.op == "call_module":
                target = module_signature(sub.get_submodule(n.target))
            elif n.op == "get_attr":
                value = getattr(sub, str(n.target), None)
                target = repr(tuple(getattr(value, "shape", ())))
            else:
                target = getattr(n.target, "__qualname__", str(n.target))
            args = map_arg((n.args, n.kwargs), ref)
            lines.append(f"{n.op}:{target}:{args!r}")
        sig = f"{tname}|" + "\n".join(lines)
        key = hashlib.blake2b(f"{sig}|{shape}".encode(), digest_size=10).hexdigest()
        out.append((Unit(key, f"{tname} in={shape}", path, shape), sub))
    return out


def _hook_units(module: Any, input_shape: tuple[int, ...], transparent: tuple[str, ...],
                torch) -> list[tuple[Unit, Any]]:
    found: list[tuple[str, Any]] = []

    def walk(prefix: str, m: Any, root: bool) -> None:
        children = list(m.named_children())
        if children and (root or type(m).__name__ in transparent):
            for n, c in children:
                walk(f"{prefix}{n}.", c, False)
        else:
            found.append((prefix.rstrip("."), m))

    walk("", module, True)
    signatures: dict[int, str] = {}
    calls: list[tuple[Unit, Any]] = []
    errors: list[str] = []
    handles = []
    for name, m in found:
        def pre_hook(mod, args, _name=name):
            if len(args) != 1 or not isinstance(args[0], torch.Tensor):
                errors.append(f"unit {_name!r} ({type(mod).__name__}) takes {len(args)} inputs; "
                              f"list its class in transparent= to decompose it further")
                return
            shape = tuple(int(s) for s in args[0].shape[1:])
            sig = signatures.setdefault(id(mod), module_signature(mod))
            key = hashlib.blake2b(f"{sig}|{shape}".encode(), digest_size=10).hexdigest()
            calls.append((Unit(key, f"{type(mod).__name__} in={shape}", _name, shape), mod))

        handles.append(m.register_forward_pre_hook(pre_hook))
    try:
        _forward(module, input_shape, torch)
    finally:
        for h in handles:
            h.remove()
    if errors:
        raise BuildError(errors[0])
    return calls


@register_cost_model
class LUTLatency(CostModel):
    """Latency in ms as ``scale * sum(unit latencies) + per_unit_ms * n_units + intercept``; each unit
    configuration is measured once.

    Args:
        device: a measured device profile or its name.
        factory: ``ModelFactory`` (or its config dict, or any callable ``arch -> torch.nn.Module``); None builds
            ``archscout.nn.ModelFactory(input_shape or (3, 32, 32), num_classes=10)`` when first needed.
        input_shape: per-sample input shape; defaults to ``factory.input_shape``.
        warmup / repeats / timer: how each unit is timed (see :class:`~archscout.hardware.measure.LatencyMeter`).
        table: a stored table, as in :meth:`to_config`: ``{"units": {key: {"ms": ..., "op": ...}}, "scale": ...,
            "per_unit_ms": ..., "intercept": ..., "reference_ms": ...}``.
        transparent: container class names opened by :func:`decompose`.
        measure_missing: measure unit configurations missing from the table when predicting (True); False
            raises DataError instead, which keeps ``predict`` free of measurements.
        reference: ``"auto"`` (default) times each unit paired with a fixed reference network of the space,
            as ``measured-latency`` does (its calibrated latency is kept in the table); None times plain runs.

    Raises:
        UnknownNameError: unknown device. ConfigError: table device, invalid settings or table.
    """

    name, unit, cheap = "lut-latency", "ms", True

    def __init__(self, device: str | DeviceProfile | Mapping[str, Any] = "cpu-ort", factory: Any = None,
                 input_shape: Sequence[int] | None = None, *, warmup: int = 10, repeats: int = 30,
                 timer: Callable[[], float] | None = None, table: Mapping[str, Any] | None = None,
                 transparent: Sequence[str] = DEFAULT_TRANSPARENT, measure_missing: bool = True,
                 reference: Any = "auto") -> None:
        self.device = get_device(device)
        self.meter = LatencyMeter.for_device(self.device, warmup, repeats, timer)
        self._set_source(factory, input_shape)
        if isinstance(transparent, str) or not all(isinstance(t, str) for t in transparent):
            raise ConfigError(f"transparent must be a list of class names, got {transparent!r}")
        self.transparent = tuple(transparent)
        self.measure_missing = bool(measure_missing)
        self.reference = check_reference(reference)
        self.reference_ms: float | None = None
        self.entries: dict[str, dict[str, Any]] = {}
        self.scale, self.per_unit_ms, self.intercept = 1.0, 0.0, 0.0
        if table is not None:
            self._load_table(table)
        self._units: dict[str, list[Unit]] = {}
        self.n_measured = 0  # unit configurations measured by this object

    def _load_table(self, table: Mapping[str, Any]) -> None:
        try:
            units = table.get("units", {})
            self.entries = {str(k): {"ms": float(v["ms"]), "op": str(v.get("op", ""))} for k, v in units.items()}
            self.scale = float(table.get("scale", 1.0))
            self.per_unit_ms = float(table.get("per_unit_ms", 0.0))
            self.intercept = float(table.get("intercept", 0.0))
            ref_ms = table.get("reference_ms")
            self.reference_ms = None if ref_ms is None else float(ref_ms)
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"bad LUT table ({type(e).__name__}: {e}); "
                              "pass what to_config()['table'] holds") from None

    def units(self, arch: Architecture) -> list[Unit]:
        """The unit calls of ``arch``'s network (cached by functional hash)."""
        fh = arch.functional_hash()
        if fh not in self._units:
            factory, shape = self._ready()
            with torch_threads(1):
                self._units[fh] = [u for u, _ in _decompose(factory(arch), shape, self.transparent)]
        return self._units[fh]

    def build(self, archs: Iterable[Architecture]) -> int:
        """Measure every unit configuration of ``archs`` the table lacks; returns how many were measured."""
        before = self.n_measured
        for arch in archs:
            self._measure_units(arch, self.units(arch))
        return self.n_measured - before

    def _measure_units(self, arch: Architecture, units: list[Unit]) -> None:
        if all(u.key in self.entries for u in units):
            return
        factory, shape = self._ready()
        if self.reference is not None and not self.meter.paired:
            with torch_threads(1):
                ref_arch = reference_arch(self.reference, arch)
                assert ref_arch is not None  # self.reference is not None
                ref_module = factory(ref_arch)
            self.reference_ms = self.meter.set_reference(ref_module, shape, self.reference_ms,
                                                         calibration=max(200, 4 * self.meter.repeats))
        with torch_threads(1):
            pieces = _decompose(factory(arch), shape, self.transparent)
        for u, runnable in pieces:
            if u.key in self.entries:  # known, or a configuration repeated inside this network
                continue
            m = self.meter.measure(runnable, u.input_shape)
            self.entries[u.key] = {"ms": m.median_ms, "op": u.op}
            self.n_measured += 1

    def unit_sum(self, arch: Architecture) -> float:
        """Sum of the table latencies of ``arch``'s units, in ms (before scale and intercept).

        Raises:
            DataError: a unit is missing and ``measure_missing`` is False.
        """
        units = self.units(arch)
        missing = [u for u in units if u.key not in self.entries]
        if missing:
            if not self.measure_missing:
                raise DataError(f"the latency table lacks {len(missing)} unit configurations of {str(arch)!r} "
                                f"(e.g. {missing[0].op}); call build([...]) first or pass measure_missing=True")
            self._measure_units(arch, units)
        return float(sum(self.entries[u.key]["ms"] for u in units))

    def fit_overhead(self, archs: Sequence[Architecture],
                     latencies_ms: Sequence[float] | np.ndarray) -> dict[str, float]:
        """Fit the overhead terms by least squares so that ``scale * unit_sum + per_unit_ms * n_units + intercept``
        matches measured whole-network latencies (ms).

        ``per_unit_ms`` (usually negative) removes the fixed cost every unit carries when timed on its own (one
        runtime call each), which the whole network pays once. Three or more networks fit all three terms, two
        fit ``scale`` and ``intercept``, one fits ``intercept`` alone.

        Raises:
            ConfigError: no networks, or lengths differ.
        """
        if len(archs) == 0 or len(archs) != len(latencies_ms):
            raise ConfigError(f"fit_overhead needs equally many (>= 1) archs and latencies, got {len(archs)} "
                              f"and {len(latencies_ms)}")
        sums = np.array([self.unit_sum(a) for a in archs], dtype=float)
        counts = np.array([len(self.units(a)) for a in archs], dtype=float)
        y = np.asarray(latencies_ms, dtype=float)
        self.scale, self.per_unit_ms, self.intercept = 1.0, 0.0, 0.0
        if len(archs) == 1 or np.ptp(sums) == 0:
            self.intercept = float(np.mean(y - sums))
        elif len(archs) == 2:
            (self.scale, self.intercept), *_ = np.linalg.lstsq(np.column_stack([sums, np.ones_like(sums)]), y,
                                                                rcond=None)
        else:
            coef, *_ = np.linalg.lstsq(np.column_stack([sums, counts, np.ones_like(sums)]), y, rcond=None)
            self.scale, self.per_unit_ms, self.intercept = (float(c) for c in coef)
        self.scale, self.intercept = float(self.scale), float(self.intercept)
        return {"scale": self.scale, "per_unit_ms": self.per_unit_ms, "intercept": self.intercept}

    def predict(self, arch: Architecture) -> float:
        return self.scale * self.unit_sum(arch) + self.per_unit_ms * len(self.units(arch)) + self.intercept

    def to_config(self) -> dict[str, Any]:
        return {
            "name": self.name, "device": self.device.to_config(), "factory": factory_config(self.factory),
            "input_shape": None if self._input_shape is None else list(self._input_shape),
            "warmup": self.meter.warmup, "repeats": self.meter.repeats,
            "table": {"units": {k: dict(v) for k, v in sorted(self.entries.items())},
                      "scale": self.scale, "per_unit_ms": self.per_unit_ms, "intercept": self.intercept,
                      "reference_ms": self.reference_ms},
            "transparent": list(self.transparent), "measure_missing": self.measure_missing,
            "reference": reference_config(self.reference),
        }

