"""Network-accelerator co-design (NASAIC-style): joint spaces and the evaluators of their parts.

A joint space holds the parameters of one or more network spaces and one or more accelerator designs, each
behind its own prefix; any strategy searches it like any other space. Its parts are read back with
:func:`part_of` (a network's architecture, e.g. to look up its accuracy in a table or to build and trace it) and
:func:`~archscout.hardware.accelerator.accelerator_of` (an accelerator). The ``systolic`` cost model prices each
joint architecture by simulating its network on its accelerator, so constraints such as ``latency_ms<=L``,
``energy_mj<=E`` and ``area_mm2<=A`` screen designs before the network is evaluated.

Example (NB201 on a searched systolic array; accuracy from the NB201 table)::

    space = joint_space({"": "nb201", "hw_": "systolic"})
    bench = archscout.benchmarks.nb201(table="nb201_cifar10.csv")
    evaluator = PartEvaluator(bench.evaluator(), "nb201")
    latency = SystolicCost("latency_ms", prefix="hw_", factory=ModelFactory((3, 32, 32), C=16, N=5))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..space import Architecture, Space, create_space

__all__ = ["PartEvaluator", "joint_space", "network_arch", "part_of"]


def _as_space(s: Space | str) -> Space:
    if isinstance(s, str):
        return create_space(s)
    if not isinstance(s, Space):
        raise ConfigError(f"a part of a joint space must be a Space or a registered space name, got {s!r}")
    return s


def joint_space(parts: Mapping[str, Space | str], name: str | None = None) -> Space:
    """One space over several parts: ``{prefix: space}``, e.g. ``{"": "nb201", "hw_": "systolic"}``, or for two
    tasks on two sub-accelerators ``{"a_": "nb201", "b_": "nb201", "acc0_": "systolic", "acc1_": "systolic"}``.
    Each part's parameters keep their names behind the prefix; the space's name joins the parts' names with
    ``+`` (the first part is the network :func:`network_arch` reads).

    Raises:
        ConfigError: no parts, a part that is not a space, or two parameters with the same name.
    """
    if not isinstance(parts, Mapping) or not parts:
        raise ConfigError("joint_space needs {prefix: space} with at least one part, e.g. "
                          "{'': 'nb201', 'hw_': 'systolic'}")
    params: dict[str, Any] = {}
    names = []
    for prefix, s in parts.items():
        if not isinstance(prefix, str):
            raise ConfigError(f"prefixes must be strings, got {prefix!r}")
        sp = _as_space(s)
        names.append(f"{prefix}{sp.name}" if prefix else str(sp.name))
        for n, p in sp.params.items():
            if prefix + n in params:
                raise ConfigError(f"parameter {prefix + n!r} appears in two parts; give the parts distinct prefixes")
            params[prefix + n] = p
    return Space(params, name=name or "+".join(names))


def part_of(arch: Architecture, space: Space | str, prefix: str = "") -> Architecture:
    """The architecture of ``space`` held in a joint architecture under ``prefix`` (``arch`` itself when it
    already belongs to ``space``).

    Raises:
        ConfigError: the joint space lacks one of the part's parameters.
    """
    sp = _as_space(space)
    if arch.space == sp:
        return arch
    names = set(arch.space.names)
    missing = [prefix + n for n in sp.names if prefix + n not in names]
    if missing:
        raise ConfigError(f"space {arch.space.name!r} has no parameters {missing} of part {sp.name!r} "
                          f"(prefix {prefix!r})")
    return sp.make({n: arch[prefix + n] for n in sp.names})


def network_arch(arch: Architecture) -> Architecture:
    """The network part of an architecture: the architecture itself in a network space; in a joint space named
    ``net+...`` (as :func:`joint_space` names them, the network part first without a prefix) the architecture of
    the registered space ``net``.

    Raises:
        ConfigError: the network part cannot be found (use :func:`part_of` with the space and prefix).
    """
    name = arch.space.name or ""
    if "+" not in name:
        return arch
    first = name.split("+", 1)[0]
    try:
        net = create_space(first)
    except Exception:  # noqa: BLE001 - an unknown name is reported below
        raise ConfigError(f"cannot find the network part of space {name!r}: {first!r} is not a registered space; "
                          "use part_of(arch, space, prefix)") from None
    return part_of(arch, net)


class PartEvaluator:
    """Evaluates one part of a joint architecture with an evaluator of that part's space, e.g. the NB201 table's
    evaluator on the network of an ``nb201+hw_systolic`` architecture.

    Args:
        evaluator: an object with ``evaluate(arch, fidelity=None) -> dict``.
        space: the part's space (or its registered name).
        prefix: the part's prefix in the joint space.
        rename: metric renames, e.g. ``{"valid_acc_200ep": "accuracy_a"}`` (two tasks in one study).

    Raises:
        ConfigError: an evaluator without ``evaluate``, or a bad ``rename``.
    """

    def __init__(self, evaluator: Any, space: Space | str, prefix: str = "",
                 rename: Mapping[str, str] | None = None) -> None:
        if not callable(getattr(evaluator, "evaluate", None)):
            raise ConfigError(f"evaluator must have evaluate(arch, fidelity=None), got {evaluator!r}")
        if rename is not None and not (isinstance(rename, Mapping)
                                       and all(isinstance(k, str) and isinstance(v, str) for k, v in rename.items())):
            raise ConfigError(f"rename must map metric names to new names, got {rename!r}")
        self.evaluator = evaluator
        self.space = _as_space(space)
        self.prefix = prefix
        self.rename = dict(rename or {})

    def evaluate(self, arch: Architecture, fidelity: float | None = None) -> dict[str, float]:
        out = self.evaluator.evaluate(part_of(arch, self.space, self.prefix), fidelity)
        return {self.rename.get(k, k): v for k, v in out.items()}

    def duration(self, arch: Architecture, fidelity: float | None = None) -> float | None:
        fn = getattr(self.evaluator, "duration", None)
        return None if fn is None else fn(part_of(arch, self.space, self.prefix), fidelity)
