"""Analytical systolic-array accelerator model that reproduces SCALE-Sim 3.0's cycle counts.

The model follows SCALE-Sim 3.0 (``scalesim`` 3.0.0: ``compute/systolic_compute_{os,ws,is}.py`` and
``memory/double_buffered_scratchpad_mem.py``) but replaces its trace-driven simulation by closed forms:

- A convolution is lowered to a GEMM of operand matrices ``(Sr, T, Sc)`` as SCALE-Sim does: ifmap ``(P, K)``,
  filter ``(K, F)``, ofmap ``(P, F)`` with ``P`` ofmap pixels, ``K = filter_h * filter_w * channels`` and
  ``F`` filters. Per dataflow: output stationary (``os``) maps ``Sr = P, Sc = F, T = K``; weight stationary
  (``ws``) ``Sr = K, Sc = F, T = P``; input stationary (``is``) ``Sr = K, Sc = P, T = F``.
- The array (``rows x cols``) folds the spatial dims: ``folds = ceil(Sr / rows) * ceil(Sc / cols)``; each fold
  takes ``T + rows + cols - 2`` cycles (``os``) or ``T + 2 rows + cols - 2`` (``ws``, ``is``: ``rows`` more
  cycles to load the stationary operand). SCALE-Sim's "Total Cycles" is the index of the last cycle, so
  ``compute_cycles = folds * cycles_per_fold - 1`` (exactly SCALE-Sim's number in CALC mode).
- With a DRAM bandwidth (SCALE-Sim's USER mode) the stalls of the double-buffered read buffers are emulated at
  fold granularity: each SRAM is split in an active and a prefetch half; a demand outside the active window
  triggers prefetches of half a buffer at ``bandwidth`` words/cycle (one cycle more each), and SCALE-Sim's
  stall accounting (including its doubling of a positive stall) is applied per event. The ofmap write buffer
  is modelled as a fluid double buffer drained at ``bandwidth`` words/cycle.

Grouped and depthwise convolutions run as ``groups`` independent convolutions one after another (SCALE-Sim
has no groups; its ``DP`` layers are expanded the same way, one layer per channel).

Energy uses per-access costs normalised to one MAC (Eyeriss' table) times the absolute MAC energy; area sums
PEs and SRAM. Everything here is numpy-free Python arithmetic; torch is never imported.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ConfigError

__all__ = [
    "DATAFLOWS",
    "AccelReport",
    "Accelerator",
    "AreaModel",
    "ConvLayer",
    "EnergyTable",
    "LayerReport",
    "simulate",
]

DATAFLOWS = ("os", "ws", "is")


def _positive_int(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return value


def _non_negative(owner: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise ConfigError(f"{owner}: {name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _from_config(cls: Any, d: Mapping[str, Any], owner: str) -> dict[str, Any]:
    if not isinstance(d, Mapping):
        raise ConfigError(f"{owner}.from_config needs a dict, got {type(d).__name__}")
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"{owner}.from_config: unknown keys {unknown}; known keys are {sorted(known)}")
    return dict(d)


# --- workload ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvLayer:
    """One convolution (or GEMM) layer as SCALE-Sim reads it from a topology CSV.

    Args:
        name: layer name (no commas).
        ifmap_h, ifmap_w: input feature map height and width in pixels, padding already included.
        filter_h, filter_w: filter height and width in pixels (dilation already folded in).
        channels: input channels (all groups together).
        num_filters: output channels (all groups together).
        stride_h, stride_w: strides in pixels.
        groups: the convolution runs as ``groups`` independent convolutions with ``channels / groups`` input and
            ``num_filters / groups`` output channels each, one after another.

    Raises:
        ConfigError: a field is not a positive integer, the filter is larger than the ifmap, or channels and
            num_filters are not divisible by groups.
    """

    name: str
    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    num_filters: int
    stride_h: int = 1
    stride_w: int = 1
    groups: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or "," in self.name:
            raise ConfigError(f"ConvLayer: name must be a non-empty string without commas, got {self.name!r}")
        owner = f"ConvLayer {self.name!r}"
        for f in ("ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels", "num_filters", "stride_h",
                  "stride_w", "groups"):
            _positive_int(owner, f, getattr(self, f))
        if self.filter_h > self.ifmap_h or self.filter_w > self.ifmap_w:
            raise ConfigError(f"{owner}: filter {self.filter_h}x{self.filter_w} is larger than the ifmap "
                              f"{self.ifmap_h}x{self.ifmap_w}; fold the padding into the ifmap dims")
        if self.channels % self.groups or self.num_filters % self.groups:
            raise ConfigError(f"{owner}: channels ({self.channels}) and num_filters ({self.num_filters}) must "
                              f"both be divisible by groups ({self.groups})")

    @classmethod
    def from_gemm(cls, name: str, m: int, k: int, n: int) -> ConvLayer:
        """A GEMM ``(m x k) @ (k x n)`` as SCALE-Sim's MNK topologies encode it: an ``m x k`` ifmap, a ``1 x k``
        filter, 1 channel and ``n`` filters (so ``gemm == (m, k, n)`` for the ``os`` dataflow).

        Raises:
            ConfigError: m, k or n is not a positive integer.
        """
        for f, v in (("m", m), ("k", k), ("n", n)):
            _positive_int(f"ConvLayer.from_gemm {name!r}", f, v)
        return cls(name, m, k, 1, k, 1, n)

    @property
    def ofmap_h(self) -> int:
        """Output height in pixels, ``ceil((ifmap_h - filter_h + stride_h) / stride_h)`` as SCALE-Sim computes it
        (equal to ``(ifmap_h - filter_h) // stride_h + 1`` when the stride divides ``ifmap_h - filter_h``)."""
        return -(-(self.ifmap_h - self.filter_h) // self.stride_h) + 1

    @property
    def ofmap_w(self) -> int:
        """Output width in pixels, as :attr:`ofmap_h`."""
        return -(-(self.ifmap_w - self.filter_w) // self.stride_w) + 1

    @property
    def gemm(self) -> tuple[int, int, int]:
        """Operand-matrix dims per group ``(ofmap pixels, filter_h * filter_w * channels / groups,
        num_filters / groups)``."""
        return (self.ofmap_h * self.ofmap_w, self.filter_h * self.filter_w * self.channels // self.groups,
                self.num_filters // self.groups)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the whole layer (all groups)."""
        p, k, f = self.gemm
        return p * k * f * self.groups


# --- energy and area -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnergyTable:
    """Energy per access, normalised to one MAC, and the absolute energy of one MAC.

    Defaults are Eyeriss' normalised costs (Chen et al., ISCA 2016, Fig. 1: register file 1x, inter-PE array
    2x, global buffer 6x, DRAM 200x a MAC, per 16-bit access); they are applied here per SCALE-Sim word.
    ``mac_pj`` defaults to 0.23 pJ: an 8-bit multiply (0.2 pJ) plus an 8-bit add (0.03 pJ) at 45 nm
    (Horowitz, ISSCC 2014).

    Energy of a layer (pJ) = ``mac_pj * (macs * mac_x + rf_accesses * rf_x + array_accesses * array_x +
    sram_accesses * sram_x + dram_accesses * dram_x)`` with ``rf_accesses = 3 * macs`` (two operand reads and a
    partial-sum update per MAC) and ``array_accesses = 2 * macs`` (two operands passed between neighbour PEs).

    Raises:
        ConfigError: a field is negative or not a number.
    """

    mac_x: float = 1.0
    rf_x: float = 1.0
    array_x: float = 2.0
    sram_x: float = 6.0
    dram_x: float = 200.0
    mac_pj: float = 0.23

    def __post_init__(self) -> None:
        for f in self.__dataclass_fields__:
            object.__setattr__(self, f, _non_negative("EnergyTable", f, getattr(self, f)))

    def to_config(self) -> dict[str, float]:
        """Plain JSON dict of the fields."""
        return asdict(self)

    @classmethod
    def from_config(cls, d: Mapping[str, Any]) -> EnergyTable:
        """Inverse of :meth:`to_config`; missing keys take their defaults.

        Raises:
            ConfigError: an unknown key or a bad value.
        """
        return cls(**_from_config(cls, d, "EnergyTable"))


@dataclass(frozen=True)
class AreaModel:
    """Silicon area of an accelerator: PEs + SRAM + a fixed overhead.

    Defaults (45 nm): ``pe_um2 = 450`` um^2 per PE: 8-bit multiplier 282 um^2 + 8-bit adder 36 um^2 (Horowitz,
    ISSCC 2014) + about 130 um^2 of operand and partial-sum registers; ``sram_um2_per_kb = 6000`` um^2 per KB:
    8192 bits x 0.346 um^2 (Intel 45 nm 6T bit cell) at about 50 % array efficiency; ``overhead_mm2 = 0``.

    Raises:
        ConfigError: a field is negative or not a number.
    """

    pe_um2: float = 450.0
    sram_um2_per_kb: float = 6000.0
    overhead_mm2: float = 0.0

    def __post_init__(self) -> None:
        for f in self.__dataclass_fields__:
            object.__setattr__(self, f, _non_negative("AreaModel", f, getattr(self, f)))

    def area_mm2(self, accel: Accelerator) -> float:
        """Area of ``accel`` in mm^2: ``rows * cols * pe_um2 + sum(sram_kb) * sram_um2_per_kb`` (um^2) + overhead."""
        um2 = accel.rows * accel.cols * self.pe_um2 + sum(accel.sram_kb) * self.sram_um2_per_kb
        return um2 / 1e6 + self.overhead_mm2

    def to_config(self) -> dict[str, float]:
        """Plain JSON dict of the fields."""
        return asdict(self)

    @classmethod
    def from_config(cls, d: Mapping[str, Any]) -> AreaModel:
        """Inverse of :meth:`to_config`; missing keys take their defaults.

        Raises:
            ConfigError: an unknown key or a bad value.
        """
        return cls(**_from_config(cls, d, "AreaModel"))


# --- accelerator ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Accelerator:
    """A systolic-array accelerator as SCALE-Sim configures it (defaults: its ``configs/scale.cfg``).

    Args:
        rows, cols: PE array height and width.
        dataflow: ``"os"``, ``"ws"`` or ``"is"``.
        sram_kb: (ifmap, filter, ofmap) SRAM sizes in KB (1 KB = 1024 bytes), each double buffered.
        bandwidth: DRAM bandwidth in words per cycle for each of the three SRAMs (SCALE-Sim's USER mode);
            None is SCALE-Sim's CALC mode: DRAM is never a bottleneck, no stalls.
        clock_mhz: clock in MHz for ``latency_ms`` (SCALE-Sim counts cycles only; 1000 MHz by default).
        word_bytes: bytes per word (SCALE-Sim uses 1).
        energy: per-access energy table. area: area model.

    Raises:
        ConfigError: any invalid field (named in the message).
    """

    rows: int = 32
    cols: int = 32
    dataflow: str = "os"
    sram_kb: tuple[int, int, int] = (64, 64, 64)
    bandwidth: float | None = None
    clock_mhz: float = 1000.0
    word_bytes: int = 1
    energy: EnergyTable = field(default_factory=EnergyTable)
    area: AreaModel = field(default_factory=AreaModel)

    def __post_init__(self) -> None:
        _positive_int("Accelerator", "rows", self.rows)
        _positive_int("Accelerator", "cols", self.cols)
        if self.dataflow not in DATAFLOWS:
            raise ConfigError(f"Accelerator: dataflow must be one of {', '.join(DATAFLOWS)}, got {self.dataflow!r}")
        sram = tuple(self.sram_kb) if isinstance(self.sram_kb, (list, tuple)) else ()
        if len(sram) != 3:
            raise ConfigError(f"Accelerator: sram_kb must be (ifmap_kb, filter_kb, ofmap_kb), got {self.sram_kb!r}")
        for name, v in zip(("ifmap", "filter", "ofmap"), sram, strict=True):
            _positive_int("Accelerator", f"sram_kb {name}", v)
        object.__setattr__(self, "sram_kb", sram)
        if self.bandwidth is not None and (_non_negative("Accelerator", "bandwidth", self.bandwidth) <= 0):
            raise ConfigError("Accelerator: bandwidth must be > 0 words/cycle, or None for no DRAM limit")
        if _non_negative("Accelerator", "clock_mhz", self.clock_mhz) <= 0:
            raise ConfigError(f"Accelerator: clock_mhz must be > 0, got {self.clock_mhz!r}")
        _positive_int("Accelerator", "word_bytes", self.word_bytes)
        if not isinstance(self.energy, EnergyTable):
            raise ConfigError("Accelerator: energy must be an EnergyTable (use EnergyTable.from_config(dict))")
        if not isinstance(self.area, AreaModel):
            raise ConfigError("Accelerator: area must be an AreaModel (use AreaModel.from_config(dict))")

    def sram_words(self) -> tuple[int, int, int]:
        """(ifmap, filter, ofmap) SRAM capacities in words."""
        return tuple(kb * 1024 // self.word_bytes for kb in self.sram_kb)  # type: ignore[return-value]

    def to_config(self) -> dict[str, Any]:
        """Plain JSON dict; :meth:`from_config` rebuilds an equal accelerator."""
        return {"rows": self.rows, "cols": self.cols, "dataflow": self.dataflow, "sram_kb": list(self.sram_kb),
                "bandwidth": self.bandwidth, "clock_mhz": self.clock_mhz, "word_bytes": self.word_bytes,
                "energy": self.energy.to_config(), "area": self.area.to_config()}

    @classmethod
    def from_config(cls, d: Mapping[str, Any]) -> Accelerator:
        """Inverse of :meth:`to_config`; missing keys take their defaults.

        Raises:
            ConfigError: an unknown key or a bad value.
        """
        kw = _from_config(cls, d, "Accelerator")
        if "sram_kb" in kw and isinstance(kw["sram_kb"], list):
            kw["sram_kb"] = tuple(kw["sram_kb"])
        if isinstance(kw.get("energy"), Mapping):
            kw["energy"] = EnergyTable.from_config(kw["energy"])
        if isinstance(kw.get("area"), Mapping):
            kw["area"] = AreaModel.from_config(kw["area"])
        return cls(**kw)


# --- reports -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerReport:
    """Counts of one layer. Cycles are SCALE-Sim's: ``cycles = compute_cycles + stall_cycles`` ("Total Cycles",
    prefetch before the first cycle excluded). ``utilization`` is SCALE-Sim's "Compute Util %" (mean over folds
    of busy PE-cycles), ``overall_utilization`` its "Overall Util %" (MACs / (PEs x cycles)),
    ``mapping_efficiency`` its "Mapping Efficiency %" (mean share of PEs mapped); all in percent. Accesses are
    in words; ``energy_mj`` in mJ; ``latency_ms`` is ``cycles`` at the clock."""

    name: str
    cycles: int
    compute_cycles: int
    stall_cycles: int
    utilization: float
    overall_utilization: float
    mapping_efficiency: float
    macs: int
    sram_ifmap_reads: int
    sram_filter_reads: int
    sram_ofmap_writes: int
    dram_ifmap_reads: int
    dram_filter_reads: int
    dram_ofmap_writes: int
    energy_mj: float
    latency_ms: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON dict of the fields."""
        return asdict(self)


_SUMMED = ("cycles", "compute_cycles", "stall_cycles", "macs", "sram_ifmap_reads", "sram_filter_reads",
           "sram_ofmap_writes", "dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes", "energy_mj",
           "latency_ms")


@dataclass(frozen=True)
class AccelReport:
    """Per-layer reports in input order and their totals: sums of the counts, ``overall_utilization`` (percent,
    MACs / (PEs x cycles) of the whole network), ``area_mm2`` and the accelerator's config."""

    layers: tuple[LayerReport, ...]
    total: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """``{"layers": [...], "total": {...}}``, JSON-safe."""
        return {"layers": [r.to_dict() for r in self.layers], "total": dict(self.total)}


# --- closed forms ---------------------------------------------------------------------------------------------
def _operands(accel: Accelerator, layer: ConvLayer) -> tuple[int, int, int]:
    """``(Sr, Sc, T)`` of SCALE-Sim's compute class for the accelerator's dataflow (per group)."""
    p, k, f = layer.gemm
    return {"os": (p, f, k), "ws": (k, f, p), "is": (k, p, f)}[accel.dataflow]


def _compute_counts(accel: Accelerator, layer: ConvLayer) -> dict[str, Any]:
    """Cycles, utilisation and SRAM accesses of one group, in CALC mode (no stalls)."""
    R, C = accel.rows, accel.cols
    sr, sc, t = _operands(accel, layer)
    row_fold, col_fold = -(-sr // R), -(-sc // C)
    folds = row_fold * col_fold
    per_fold = t + R + C - 2 if accel.dataflow == "os" else t + 2 * R + C - 2
    mapping = sr * sc / (folds * R * C)
    util_cycles = per_fold if accel.dataflow == "os" else per_fold + C - 1
    if accel.dataflow == "os":
        sram = (col_fold * sr * t, row_fold * sc * t, sr * sc)
    elif accel.dataflow == "ws":
        sram = (col_fold * t * sr, sr * sc, row_fold * t * sc)
    else:
        sram = (sr * sc, col_fold * t * sr, row_fold * sc * t)
    return {"sr": sr, "sc": sc, "t": t, "row_fold": row_fold, "col_fold": col_fold, "per_fold": per_fold,
            "compute_cycles": folds * per_fold - 1, "mapping": mapping, "util": mapping * t / util_cycles,
            "sram": sram}


def _read_streams(accel: Accelerator, layer: ConvLayer, cc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The two read operands as SCALE-Sim fetches them: stream length (words, duplicates included) and how
    often the whole stream is walked (re-fetch factor when it does not fit in half the SRAM)."""
    sr, sc, t, rf, cf = cc["sr"], cc["sc"], cc["t"], cc["row_fold"], cc["col_fold"]
    _, k, f = layer.gemm
    ifmap_unique = layer.ifmap_h * layer.ifmap_w * layer.channels // layer.groups
    ifmap_once = {"length": sr * sc, "unique": ifmap_unique, "passes": 1}
    ifmap_passes = {"length": sr * t, "unique": ifmap_unique, "passes": cf}
    if accel.dataflow == "os":
        return [ifmap_passes, {"length": sc * t, "unique": k * f, "repeats": rf, "block": t * accel.cols}]
    if accel.dataflow == "ws":
        return [ifmap_passes, {"length": sr * sc, "unique": k * f, "passes": 1}]
    return [ifmap_once, {"length": sr * t, "unique": k * f, "passes": cf}]


def _calc_dram_reads(stream: Mapping[str, Any], words: int) -> int:
    """DRAM reads in CALC mode: every distinct word once, again on each pass when the operand does not fit in
    the active half of its SRAM (an approximation of SCALE-Sim's estimate-bandwidth buffer)."""
    half = words // 2
    unique = min(stream["unique"], stream["length"])
    if "repeats" in stream:
        return unique if stream["block"] <= half else unique * stream["repeats"]
    return unique if unique <= half else unique * stream["passes"]


class _ReadBuffer:
    """SCALE-Sim's USER-mode double-buffered read SRAM, tracked per set of ``ceil(words / 100)`` stream
    elements: an active window of half the buffer; a demand beyond it shifts the window by the prefetch half,
    and the k-th prefetch completes at cycle ``-1 + k * (ceil(prefetch_words / bandwidth) + 1)``."""

    def __init__(self, words: int, length: int, bandwidth: int) -> None:
        active = -(-words // 2)
        prefetch = words - active
        self.eps = max(1, -(-words // 100))
        self.sets = length // self.eps + 1
        self.a = min(-(-active // self.eps), self.sets)
        self.p = min(-(-prefetch // self.eps), self.sets - self.a)
        self.n = -(-prefetch // bandwidth)
        self.start = 0
        self.count = 0
        lines = -(-length // bandwidth)
        self.dram_words = min(-(-active // bandwidth), lines) * bandwidth

    def demand(self, e0: int, size: int) -> list[tuple[int, int]]:
        """Demand stream elements ``[e0, e0 + size)``; returns ``(element offset, prefetches)`` of the misses."""
        if self.a >= self.sets or size <= 0:
            return []
        eps, sets = self.eps, self.sets
        j0, j1 = e0 // eps, (e0 + size - 1) // eps
        u0 = self.start + (j0 - self.start) % sets
        u1 = u0 + (j1 - j0)
        out = []
        while u1 >= self.start + self.a:
            um = max(u0, self.start + self.a)
            q = -(-(um - (self.start + self.a) + 1) // self.p)
            self.start += q * self.p
            out.append((max(0, (j0 + um - u0) * eps - e0), q))
        return out


def _fold_demands(df: str, R: int, C: int, t: int, fr: int, fc: int, ur: int, uc: int, k_rows: int) -> tuple:
    """Per fold: ((e0, size, start line, elements per line) for ifmap and filter), (ofmap words, first line)."""
    if df == "os":
        return ((fr * R * t, t * ur, 0, ur), (fc * C * t, t * uc, 0, uc)), (ur * uc, t - 1, ur + uc - 1)
    if df == "ws":
        return ((fr * R * t, t * ur, R, ur), (fc * C * k_rows + fr * R * uc, ur * uc, 0, uc)), (t * uc, 2 * R - 1, t)
    return ((fc * C * k_rows + fr * R * uc, ur * uc, 0, uc), (fr * R * t, t * ur, R, ur)), (t * uc, 2 * R - 1, t)


def _user_mode(accel: Accelerator, cc: Mapping[str, Any], streams: Sequence[Mapping[str, Any]]) -> tuple[int, int, int]:
    """Stall cycles and DRAM reads (ifmap, filter) of one group under ``accel.bandwidth`` (SCALE-Sim USER mode)."""
    R, C, df = accel.rows, accel.cols, accel.dataflow
    bw = max(1, int(accel.bandwidth or 1))
    w_if, w_f, w_of = accel.sram_words()
    bufs = [_ReadBuffer(w_if, streams[0]["length"], bw), _ReadBuffer(w_f, streams[1]["length"], bw)]
    sr, sc, t, per = cc["sr"], cc["sc"], cc["t"], cc["per_fold"]
    stall = 0
    backlog, last_t = 0.0, 0.0
    fold = 0
    for fc in range(cc["col_fold"]):
        uc = min(C, sc - fc * C)
        for fr in range(cc["row_fold"]):
            ur = min(R, sr - fr * R)
            base = fold * per
            fold += 1
            reads, (wr, w0, span) = _fold_demands(df, R, C, t, fr, fc, ur, uc, sr)
            events: list[tuple[int, int, int]] = []
            for op, (e0, size, l0, width) in enumerate(reads):
                events.extend((base + l0 + off // width, op, q) for off, q in bufs[op].demand(e0, size))
            events.sort()
            i = 0
            while i < len(events):
                line = events[i][0]
                cur = line + stall
                worst = 0
                for op in (0, 1):
                    offset = 1
                    for ln, o, q in events[i:]:
                        if ln != line:
                            break
                        if o != op:
                            continue
                        for _ in range(q):
                            b = bufs[op]
                            b.count += 1
                            pot = -1 + b.count * (b.n + 1) - (cur + offset)
                            offset += 2 * pot if pot > 0 else pot
                    worst = max(worst, offset - 1)
                while i < len(events) and events[i][0] == line:
                    i += 1
                stall += worst
            # ofmap: a fluid double buffer of w_of words drained at bw words/cycle
            start = base + w0 + stall
            backlog = max(0.0, backlog - bw * (start - last_t)) + wr - bw * span
            over = backlog - w_of
            if over > 0:
                stall += math.ceil(over / bw)
                backlog = float(w_of)
            backlog = max(backlog, 0.0)
            last_t = start + span
    dram = [b.dram_words + b.count * b.n * bw for b in bufs]
    return stall, dram[0], dram[1]


def simulate(accel: Accelerator, layers: Iterable[ConvLayer]) -> AccelReport:
    """Run every layer on ``accel``; returns per-layer :class:`LayerReport` s in input order and totals.

    Raises:
        ConfigError: ``accel`` is not an Accelerator or a layer is not a ConvLayer, or there are no layers.
    """
    if not isinstance(accel, Accelerator):
        raise ConfigError(f"simulate needs an Accelerator, got {type(accel).__name__}")
    layers = list(layers)
    if not layers:
        raise ConfigError("simulate needs at least one ConvLayer (the topology is empty)")
    reports = []
    words = accel.sram_words()
    e = accel.energy
    for layer in layers:
        if not isinstance(layer, ConvLayer):
            raise ConfigError(f"simulate needs ConvLayer items, got {type(layer).__name__}")
        g = layer.groups
        cc = _compute_counts(accel, layer)
        streams = _read_streams(accel, layer, cc)
        if accel.bandwidth is None:
            stall = 0
            dram_if, dram_f = (_calc_dram_reads(s, w) for s, w in zip(streams, words[:2], strict=True))
        else:
            stall, dram_if, dram_f = _user_mode(accel, cc, streams)
        compute = cc["compute_cycles"] * g
        stall *= g
        cycles = compute + stall
        sram = [x * g for x in cc["sram"]]
        dram = [dram_if * g, dram_f * g, sram[2]]
        macs = layer.macs
        rel = macs * (e.mac_x + 3 * e.rf_x + 2 * e.array_x) + sum(sram) * e.sram_x + sum(dram) * e.dram_x
        reports.append(LayerReport(
            name=layer.name, cycles=cycles, compute_cycles=compute, stall_cycles=stall,
            utilization=100.0 * cc["util"],
            overall_utilization=100.0 * macs / (max(cycles, 1) * accel.rows * accel.cols),
            mapping_efficiency=100.0 * cc["mapping"], macs=macs,
            sram_ifmap_reads=sram[0], sram_filter_reads=sram[1], sram_ofmap_writes=sram[2],
            dram_ifmap_reads=dram[0], dram_filter_reads=dram[1], dram_ofmap_writes=dram[2],
            energy_mj=rel * e.mac_pj * 1e-9, latency_ms=cycles / (accel.clock_mhz * 1e3)))
    total: dict[str, Any] = {k: sum(getattr(r, k) for r in reports) for k in _SUMMED}
    total["overall_utilization"] = 100.0 * total["macs"] / (max(total["cycles"], 1) * accel.rows * accel.cols)
    total["area_mm2"] = accel.area.area_mm2(accel)
    total["num_layers"] = len(reports)
    total["accelerator"] = accel.to_config()
    return AccelReport(tuple(reports), total)
