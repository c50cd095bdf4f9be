"""Stages of variable depth with per-layer choices (OFA / FBNet-style macro spaces).

A value is a tuple with one entry per stage; each stage is a tuple of its active layers; each layer is a
tuple of the layer parameters' values in declaration order. Only active layers are stored, so two
architectures that differ only in layers beyond a stage's depth are the same architecture.

String form: stages separated by ``/``, each layer in parentheses, e.g.
``(kernel=3,expand=4)(kernel=5,expand=6)/(kernel=3,expand=3)``.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, InvalidArchitectureError
from .decisions import Ask, Decisions
from .params import Discrete, Ordinal, Param, check_token, param_from_config

__all__ = ["Stages", "StagesDecisions"]

_LAYER_RE = re.compile(r"\(([^()]*)\)")


class Stages(Param):
    """``n`` stages, each with a depth drawn from ``depth`` and per-layer choices from ``layer``.

    Args:
        n: number of stages (>= 1).
        depth: the allowed depths, an :class:`Ordinal` (or a list, made ordinal); each >= 0.
        layer: ``{name: Choice/Ordinal}``, the per-layer decisions (finite, unconditional).
    """

    kind = "stages"

    def __init__(
        self,
        n: int,
        depth: Ordinal | Sequence[int],
        layer: Mapping[str, Param],
        when: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(when)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"Stages needs an integer number of stages n >= 1, got {n!r}")
        if not isinstance(depth, Param):
            depth = Ordinal(list(depth))
        if not isinstance(depth, Discrete) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in depth.options
        ):
            raise ConfigError(f"Stages depth must be an Ordinal of integers >= 0, got {depth!r}")
        if not isinstance(layer, Mapping) or not layer:
            raise ConfigError(
                f"Stages needs a mapping of per-layer parameters, e.g. {{'kernel': Choice([3, 5])}}, got {layer!r}"
            )
        for name, p in layer.items():
            check_token(str(name), "layer parameter name")
            if not isinstance(p, Discrete) or p.when:
                raise ConfigError(
                    f"layer parameter {name!r} must be an unconditional Choice or Ordinal, got {p!r}"
                )
        self.n = n
        self.depth = depth
        self.layer: dict[str, Discrete] = {k: p for k, p in layer.items() if isinstance(p, Discrete)}
        self._keys = tuple(self.layer)
        self._layer_size = math.prod(int(p.size()) for p in self.layer.values())
        self.max_depth = max(depth.options)
        self._codes: list[tuple[Discrete, int, int, bool | None]] | None = None

    # --- helpers -------------------------------------------------------------------------------
    def _sample_layer(self, rng: np.random.Generator) -> tuple:
        return tuple(p.sample(rng) for p in self.layer.values())

    def _all_layers(self) -> list[tuple]:
        return list(itertools.product(*(p.options for p in self.layer.values())))

    # --- basic operations ----------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> tuple:
        stages = []
        for _ in range(self.n):
            d = self.depth.sample(rng)
            stages.append(tuple(self._sample_layer(rng) for _ in range(d)))
        return tuple(stages)

    def mutate(self, value: Any, rng: np.random.Generator) -> tuple:
        """Change one decision: a stage's depth (adding a random layer or dropping the last), or one
        choice of one layer."""
        for _ in range(100):
            s = int(rng.integers(self.n))
            stage = value[s]
            n_choices = len(stage) * len(self._keys)
            if rng.random() < 1.0 / (1 + n_choices) or not n_choices:
                opts = self.depth.neighbors(len(stage))
                if not opts:
                    continue
                d = opts[int(rng.integers(len(opts)))]
                new_stage = stage[:d] + tuple(self._sample_layer(rng) for _ in range(d - len(stage)))
            else:
                li = int(rng.integers(len(stage)))
                ki = int(rng.integers(len(self._keys)))
                p = self.layer[self._keys[ki]]
                layer = list(stage[li])
                layer[ki] = p.mutate(layer[ki], rng)
                new_stage = stage[:li] + (tuple(layer),) + stage[li + 1:]
            if new_stage != stage:
                return value[:s] + (new_stage,) + value[s + 1:]
        return value

    def neighbors(self, value: Any) -> list[tuple]:
        out = []
        all_layers = None
        for s, stage in enumerate(value):
            for d in self.depth.neighbors(len(stage)):
                if d < len(stage):
                    out.append(value[:s] + (stage[:d],) + value[s + 1:])
                else:  # grow by the needed layers, each possible layer config appended (copies beyond one)
                    all_layers = all_layers or self._all_layers()
                    for layer in all_layers:
                        out.append(value[:s] + (stage + (layer,) * (d - len(stage)),) + value[s + 1:])
            for li, layer in enumerate(stage):
                for ki, key in enumerate(self._keys):
                    for v in self.layer[key].neighbors(layer[ki]):
                        new_layer = layer[:ki] + (v,) + layer[ki + 1:]
                        out.append(value[:s] + (stage[:li] + (new_layer,) + stage[li + 1:],) + value[s + 1:])
        return out

    def crossover(self, a: Any, b: Any, rng: np.random.Generator) -> tuple:
        return tuple(x if rng.random() < 0.5 else y for x, y in zip(a, b))

    def validate(self, value: Any) -> tuple:
        if isinstance(value, str):
            return self.parse(value)
        if not isinstance(value, (tuple, list)) or len(value) != self.n:
            raise InvalidArchitectureError(f"expected {self.n} stages, got {value!r}")
        out = []
        for s, stage in enumerate(value):
            if not isinstance(stage, (tuple, list)):
                raise InvalidArchitectureError(f"stage {s} must be a list of layers, got {stage!r}")
            try:
                self.depth.validate(len(stage))
            except InvalidArchitectureError:
                raise InvalidArchitectureError(
                    f"stage {s} has depth {len(stage)}; allowed depths are {list(self.depth.options)}"
                ) from None
            layers = []
            for layer in stage:
                if isinstance(layer, Mapping):
                    missing = set(self._keys) - set(layer)
                    extra = set(layer) - set(self._keys)
                    if missing or extra:
                        raise InvalidArchitectureError(
                            f"layer {dict(layer)!r} in stage {s} must have exactly the keys {list(self._keys)}"
                        )
                    layer = tuple(layer[k] for k in self._keys)
                if not isinstance(layer, (tuple, list)) or len(layer) != len(self._keys):
                    raise InvalidArchitectureError(
                        f"layer {layer!r} in stage {s} must give {list(self._keys)}"
                    )
                try:
                    layers.append(tuple(self.layer[k].validate(v) for k, v in zip(self._keys, layer)))
                except InvalidArchitectureError as e:
                    raise InvalidArchitectureError(f"stage {s}: {e}") from None
            out.append(tuple(layers))
        return tuple(out)

    def size(self) -> float:
        per_stage = sum(self._layer_size**d for d in self.depth.options)
        return per_stage**self.n

    def values(self) -> Iterator[tuple]:
        layers = self._all_layers()
        per_stage = [stage for d in self.depth.options for stage in itertools.product(layers, repeat=d)]
        return itertools.product(per_stage, repeat=self.n)

    def n_dims(self) -> int:
        return self.n * (1 + self.max_depth * len(self._keys))

    # --- string form ---------------------------------------------------------------------------
    def format(self, value: Any) -> str:
        return "/".join(
            "".join(
                "(" + ",".join(f"{k}={self.layer[k].format(v)}" for k, v in zip(self._keys, layer)) + ")"
                for layer in stage
            )
            for stage in value
        )

    def parse(self, text: str) -> tuple:
        text = text.strip()
        parts = text.split("/")
        example = "(" + ",".join(f"{k}={self.layer[k].format(self.layer[k].options[0])}" for k in self._keys) + ")"
        if len(parts) != self.n:
            raise InvalidArchitectureError(
                f"malformed stages {text!r}: expected {self.n} stages separated by '/', each like {example * 2}"
            )
        stages = []
        for s, part in enumerate(parts):
            if _LAYER_RE.sub("", part).strip():
                raise InvalidArchitectureError(f"malformed stage {s} {part!r}: expected layers like {example}")
            layers = []
            for body in _LAYER_RE.findall(part):
                layer = {}
                for item in body.split(","):
                    key, sep, v = item.partition("=")
                    key = key.strip()
                    if not sep or key not in self.layer or key in layer:
                        raise InvalidArchitectureError(
                            f"malformed layer ({body}) in stage {s}: expected {example}"
                        )
                    layer[key] = self.layer[key].parse(v)
                layers.append(layer)
            stages.append(layers)
        return self.validate(stages)

    # --- encodings -----------------------------------------------------------------------------
    def encoding_size(self, kind: str = "onehot") -> int:
        per_layer = sum(p.encoding_size() for p in self.layer.values())
        return self.n * (self.depth.encoding_size() + self.max_depth * per_layer)

    def encode(self, value: Any, kind: str = "onehot") -> np.ndarray:
        """Per stage: the depth (thermometer), then each layer slot's one-hot choices (zeros when absent)."""
        per_layer = sum(p.encoding_size() for p in self.layer.values())
        dsz = self.depth.encoding_size()
        out = np.zeros(self.n * (dsz + self.max_depth * per_layer))
        if value is None:
            return out
        codes = self._layer_codes()
        off = 0
        for stage in value:
            out[off:off + dsz] = self.depth.encode(len(stage))
            off += dsz
            for layer in stage:
                for (p, at, size, thermometer), v in zip(codes, layer):
                    if thermometer is None:
                        out[off + at:off + at + size] = p.encode(v)
                    elif thermometer:
                        out[off + at:off + at + p.index(v) + 1] = 1.0
                    else:
                        out[off + at + p.index(v)] = 1.0
                off += per_layer
            off += (self.max_depth - len(stage)) * per_layer
        return out

    def _layer_codes(self) -> list[tuple[Discrete, int, int, bool | None]]:
        """Per layer parameter: ``(param, offset in the layer's code, size, thermometer)`` where thermometer
        is ``False`` for the one-hot code of a choice, ``True`` for an ordinal's, ``None`` for any other
        encoding (the parameter's own ``encode``)."""
        if self._codes is None:
            codes, at = [], 0
            for p in self.layer.values():
                own = type(p).encode
                thermometer = False if own is Discrete.encode else True if own is Ordinal.encode else None
                codes.append((p, at, p.encoding_size(), thermometer))
                at += p.encoding_size()
            self._codes = codes
        return self._codes

    def _config(self) -> dict:
        return {
            "n": self.n,
            "depth": self.depth.to_config(),
            "layer": {k: p.to_config() for k, p in self.layer.items()},
        }

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Stages:
        if "depth" not in cfg or not isinstance(cfg.get("layer"), Mapping):
            raise ConfigError(f"a stages parameter's config needs 'depth' and a 'layer' mapping, got {dict(cfg)!r}")
        cfg = dict(cfg)
        cfg["depth"] = param_from_config(cfg["depth"])
        cfg["layer"] = {k: param_from_config(v) for k, v in cfg["layer"].items()}
        return super().from_config(cfg)  # type: ignore[return-value]

    def decisions(self) -> Decisions:
        """Per stage: its depth, then each present layer's choices (slots of absent layers stay unused)."""
        return StagesDecisions(self)


class StagesDecisions(Decisions):
    """The decisions of a :class:`Stages` value: per stage its depth, then each present layer's choices."""

    def __init__(self, stages: Stages) -> None:
        self.p = stages
        self.keys = list(stages.layer)
        self.params = list(stages.layer.values())
        self._stride = 1 + stages.max_depth * len(self.keys)
        sizes, ordered = [], []
        for _ in range(stages.n):
            sizes.append(len(stages.depth.options))
            ordered.append(True)
            sizes.extend([len(q.options) for q in self.params] * stages.max_depth)
            ordered.extend([isinstance(q, Ordinal) for q in self.params] * stages.max_depth)
        self.sizes = sizes
        self.ordered = ordered

    def _layer_slot(self, s: int, li: int, k: int) -> int:
        return s * self._stride + 1 + li * len(self.keys) + k

    def build(self) -> Generator[Ask, int, Any]:
        out = []
        n_depth = len(self.p.depth.options)
        for s in range(self.p.n):
            depth = self.p.depth.options[(yield s * self._stride, n_depth, None) if n_depth > 1 else 0]
            layers = []
            for li in range(depth):
                layer = []
                for k, q in enumerate(self.params):
                    n = len(q.options)
                    layer.append(q.options[(yield self._layer_slot(s, li, k), n, None) if n > 1 else 0])
                layers.append(tuple(layer))
            out.append(tuple(layers))
        return tuple(out)

    def decode(self, value: Any) -> list[tuple[int, int]] | None:
        out: list[tuple[int, int]] = []
        try:
            for s, stage in enumerate(value):
                if len(self.p.depth.options) > 1:
                    out.append((s * self._stride, self.p.depth.index(len(stage))))
                for li, layer in enumerate(stage):
                    for k, (q, v) in enumerate(zip(self.params, layer)):
                        if len(q.options) > 1:
                            out.append((self._layer_slot(s, li, k), q.index(v)))
        except (InvalidArchitectureError, TypeError):
            return None
        return out

    def label(self, slot: int) -> str:
        s, rest = divmod(slot, self._stride)
        if rest == 0:
            return f"[{s}].depth"
        li, k = divmod(rest - 1, len(self.keys))
        return f"[{s}][{li}].{self.keys[k]}"

    def tokens(self, slot: int) -> list[str]:
        rest = slot % self._stride
        q = self.p.depth if rest == 0 else self.params[(rest - 1) % len(self.keys)]
        return [q.format(o) for o in q.options]

    def always(self) -> list[int]:
        """The depth of every stage."""
        return [s * self._stride for s in range(self.p.n) if len(self.p.depth.options) > 1]

