"""Device profiles: where a latency comes from (this CPU through a runtime, or a column of a table).

``list_devices()`` / ``create_device(name, **params)`` follow the registry idiom; ``get_device`` also accepts a
profile or its config dict. A profile says how to get a latency cost model for it:
``create_device("cpu-ort").latency_model(factory=...)`` is ``create_cost_model("measured-latency", device="cpu-ort",
factory=...)``, and for a table device it is ``create_cost_model("table-latency", device=..., table=...)``.
"""

from __future__ import annotations

import dataclasses
import os
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .._registry import Registry
from .._validate import check_int
from ..errors import ConfigError

__all__ = [
    "DEVICES",
    "NB201_COLUMNS",
    "RUNTIMES",
    "DeviceProfile",
    "create_device",
    "get_device",
    "list_devices",
    "register_device",
]

RUNTIMES = ("onnxruntime", "torch")

#: NB201 latency-table devices (HELP / HW-NAS-Bench CIFAR-10 setting) and their default columns.
NB201_COLUMNS: dict[str, str] = {
    "nb201-eyeriss": "eyeriss_ms",
    "nb201-fpga": "fpga_ms",
    "nb201-pixel3": "pixel3_ms",
    "nb201-raspi4": "raspi4_ms",
    "nb201-2080ti": "2080ti_1_ms",
    "nb201-gold6226": "gold_6226_ms",
}


@lru_cache(maxsize=1)
def host_cpu() -> str:
    """A readable name of this machine's CPU (model name and logical core count)."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model or platform.processor() or platform.machine()} x{os.cpu_count() or 1}"


@dataclass(frozen=True)
class DeviceProfile:
    """A target device.

    Attributes:
        name: registry name.
        kind: ``"measured"`` (timed on this machine) or ``"table"`` (read from a latency table).
        description: one line for humans.
        runtime: ``"onnxruntime"`` or ``"torch"`` (measured devices).
        batch_size: inputs per timed run (measured devices).
        threads: compute threads the runtime may use (measured devices; pinned).
        host: the CPU the measurements come from (measured devices; part of the cache key).
        table: latency CSV path (table devices; may be left None and given to the cost model).
        column: latency column in milliseconds (table devices).
        arch_column: column of architecture strings (table devices).
        space: name of the space the table's architectures belong to (table devices).
    """

    name: str
    kind: str
    description: str = ""
    runtime: str | None = None
    batch_size: int = 1
    threads: int = 1
    host: str = ""
    table: str | None = None
    column: str | None = None
    arch_column: str = "arch_str"
    space: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("measured", "table"):
            raise ConfigError(f"device {self.name!r}: kind must be 'measured' or 'table', got {self.kind!r}")
        if self.kind == "measured":
            if self.runtime not in RUNTIMES:
                raise ConfigError(f"device {self.name!r}: runtime must be one of {RUNTIMES}, got {self.runtime!r}")
            check_int(f"device {self.name!r}: batch_size", self.batch_size, 1)
            check_int(f"device {self.name!r}: threads", self.threads, 1)
            if not self.host:  # measured profiles always describe the machine they run on
                object.__setattr__(self, "host", host_cpu())
        elif not self.column or not isinstance(self.column, str):
            raise ConfigError(f"table device {self.name!r} needs a column name, got {self.column!r}")

    def key(self) -> str:
        """Identity of the device for caches: what changes a measured latency (name, runtime, batch, threads,
        host CPU) or which table column is read."""
        if self.kind == "measured":
            return f"{self.name}|{self.runtime}|b{self.batch_size}|t{self.threads}|{self.host}"
        return f"{self.name}|{self.table}|{self.column}"

    def replace(self, **changes: Any) -> DeviceProfile:
        """A copy with ``changes`` applied (None values are ignored). Raises ConfigError on unknown fields."""
        changes = {k: v for k, v in changes.items() if v is not None}
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"device {self.name!r} has no setting {sorted(unknown)}")
        if "table" in changes:
            changes["table"] = os.fspath(changes["table"])
        return dataclasses.replace(self, **changes)

    def to_config(self) -> dict[str, Any]:
        """Plain dict for :func:`get_device`; ``host`` is left out (a rebuilt profile measures where it runs)."""
        cfg = dataclasses.asdict(self)
        cfg.pop("host")
        return cfg

    def latency_model(self, **params: Any):
        """The latency cost model for this device: ``measured-latency`` for measured devices (``params`` such
        as ``factory``, ``warmup``, ``repeats``, ``cache_path``), ``table-latency`` for table devices (``table``
        when the profile has none).

        Raises:
            ConfigError: bad parameters.
        """
        from .base import create_cost_model

        name = "measured-latency" if self.kind == "measured" else "table-latency"
        return create_cost_model(name, device=self, **params)


DEVICES: Registry[DeviceProfile] = Registry("device")


@DEVICES.register("cpu-ort")
def _cpu_ort(batch_size: int = 1, threads: int = 1) -> DeviceProfile:
    """This machine's CPU through onnxruntime (sequential execution, pinned threads)."""
    return DeviceProfile("cpu-ort", "measured", "this CPU, onnxruntime CPU provider", runtime="onnxruntime",
                         batch_size=batch_size, threads=threads)


@DEVICES.register("cpu-torch")
def _cpu_torch(batch_size: int = 1, threads: int = 1) -> DeviceProfile:
    """This machine's CPU through PyTorch eager mode (inference mode, pinned threads)."""
    return DeviceProfile("cpu-torch", "measured", "this CPU, PyTorch eager", runtime="torch",
                         batch_size=batch_size, threads=threads)


def _nb201_device(name: str, column: str):
    def make(table: str | os.PathLike | None = None, column: str = column,
             arch_column: str = "arch_str") -> DeviceProfile:
        return DeviceProfile(name, "table", f"NAS-Bench-201 latency table, column {column}",
                             table=None if table is None else os.fspath(table), column=column,
                             arch_column=arch_column, space="nb201")

    make.__doc__ = f"NAS-Bench-201 latency table column {column!r} (milliseconds; table path a parameter)."
    return make


for _name, _column in NB201_COLUMNS.items():
    DEVICES.register(_name, _nb201_device(_name, _column))


def register_device(name: str, factory: Callable[..., DeviceProfile] | DeviceProfile | None = None):
    """Register a device profile under ``name``: a :class:`DeviceProfile`, or a function of the profile's
    settings that returns one (usable as a decorator, ``@register_device("my-phone")``).

    Raises:
        ConfigError: the name is taken, or ``factory`` is neither a profile nor callable.
    """
    def add(f: Callable[..., DeviceProfile] | DeviceProfile) -> Callable[..., DeviceProfile] | DeviceProfile:
        if isinstance(f, DeviceProfile):
            profile = f
            DEVICES.register(name, lambda: profile, doc=profile.description)
        elif callable(f):
            DEVICES.register(name, f)
        else:
            raise ConfigError(f"register_device needs a DeviceProfile or a function returning one, got {f!r}")
        return f

    return add(factory) if factory is not None else add


def list_devices() -> list[str]:
    """Names of the registered device profiles."""
    return DEVICES.names()


def create_device(name: str, **params: Any) -> DeviceProfile:
    """Build a registered device profile, e.g. ``create_device("cpu-ort", threads=2)``.

    Raises:
        UnknownNameError: no device has that name (the message lists the available ones).
        ConfigError: a parameter is unknown or invalid.
    """
    return DEVICES.create(name, **params)


def get_device(device: str | DeviceProfile | Mapping[str, Any]) -> DeviceProfile:
    """A device profile from a registry name, a profile, or a profile's ``to_config()`` dict.

    Raises:
        UnknownNameError: unknown name. ConfigError: anything else that is not a device.
    """
    if isinstance(device, DeviceProfile):
        return device
    if isinstance(device, str):
        return create_device(device)
    if isinstance(device, Mapping):
        try:
            return DeviceProfile(**dict(device))
        except TypeError as e:
            raise ConfigError(f"bad device config {dict(device)!r}: {e}") from None
    raise ConfigError(f"device must be a name (one of {', '.join(list_devices())}) or a DeviceProfile, got {device!r}")
