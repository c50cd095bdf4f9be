"""Macro skeletons: a variable-length sequence of modules that may double the channels and/or halve the
resolution, as in TransNAS-Bench-101's macro space.

Each module is a digit: ``1`` keeps channels and resolution, ``2`` doubles the channels, ``3`` halves the
resolution, ``4`` does both. A skeleton is valid when its length, its number of channel doublings (digits
2 and 4) and its number of downsamplings (digits 3 and 4) are within the declared ranges. The string form is
``<base_channels>-<digits>-<block>``, e.g. ``64-41414-basic``.

Doublings and downsamplings are placed independently, so there are ``sum_c C(n, c) * sum_r C(n, r)``
skeletons of length ``n``; TransNAS-Bench-101's ranges give 210 + 750 + 2,296 = 3,256.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, InvalidArchitectureError
from .params import Param, check_token

__all__ = ["MODULE_KINDS", "Skeleton"]

# digit -> (doubles the channels, halves the resolution)
MODULE_KINDS: dict[int, tuple[bool, bool]] = {1: (False, False), 2: (True, False), 3: (False, True), 4: (True, True)}
_DIGITS = tuple(MODULE_KINDS)


def _range(name: str, value: Any, minimum: int) -> tuple[int, int]:
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise ConfigError(f"Skeleton {name} must be a (min, max) pair of integers, got {value!r}") from None
    for v in (lo, hi):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ConfigError(f"Skeleton {name} must be a (min, max) pair of integers, got {value!r}")
    if lo < minimum or hi < lo:
        raise ConfigError(f"Skeleton {name} needs {minimum} <= min <= max, got {value!r}")
    return int(lo), int(hi)


class Skeleton(Param):
    """A sequence of macro modules (digits 1 to 4, see the module docstring), valid skeletons only.

    Every operation (sampling, mutation, neighbours, crossover, enumeration) stays inside the valid set.
    Values are tuples of module digits, e.g. ``(4, 1, 4, 1, 4)``.

    The functional form is the skeleton itself: modules of different kinds differ in width or resolution,
    so no two skeletons compute the same function.

    Args:
        modules: (min, max) number of modules.
        doublings: (min, max) number of channel doublings (digits 2 and 4).
        downsamplings: (min, max) number of downsamplings (digits 3 and 4).
        base_channels: channels of the first module, written first in the string form.
        block: name of the block each module is made of, written last in the string form.

    Raises:
        ConfigError: bad ranges, a bad block name, or ranges that no skeleton satisfies.
    """

    kind = "skeleton"

    def __init__(
        self,
        modules: Sequence[int] = (4, 6),
        doublings: Sequence[int] = (1, 3),
        downsamplings: Sequence[int] = (1, 4),
        base_channels: int = 64,
        block: str = "basic",
        when: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(when)
        self.modules = _range("modules", modules, 1)
        self.doublings = _range("doublings", doublings, 0)
        self.downsamplings = _range("downsamplings", downsamplings, 0)
        if isinstance(base_channels, bool) or not isinstance(base_channels, (int, np.integer)) or base_channels < 1:
            raise ConfigError(f"Skeleton base_channels must be a positive integer, got {base_channels!r}")
        self.base_channels = int(base_channels)
        if not isinstance(block, str):
            raise ConfigError(f"Skeleton block must be a name, got {block!r}")
        check_token(block, "Skeleton block name")
        if "-" in block:
            raise ConfigError(f"Skeleton block name {block!r} cannot contain '-' (it separates the string form)")
        self.block = block
        self._all: tuple[tuple[int, ...], ...] = tuple(self._generate())
        if not self._all:
            raise ConfigError(
                f"no skeleton has {self.modules} modules with {self.doublings} doublings and "
                f"{self.downsamplings} downsamplings; widen the ranges"
            )
        self._valid = frozenset(self._all)
        self._re = re.compile(rf"^{self.base_channels}-([0-9]+)-{re.escape(self.block)}$")

    def _generate(self) -> Iterator[tuple[int, ...]]:
        """Every valid skeleton, in TransNAS-Bench-101's enumeration order: by length, then number of
        doublings, then number of downsamplings, then the positions of the doublings, then those of the
        downsamplings (``itertools.combinations`` order)."""
        for n in range(self.modules[0], self.modules[1] + 1):
            for c in range(self.doublings[0], min(self.doublings[1], n) + 1):
                for r in range(self.downsamplings[0], min(self.downsamplings[1], n) + 1):
                    for cpos in itertools.combinations(range(n), c):
                        for rpos in itertools.combinations(range(n), r):
                            yield tuple(1 + (i in cpos) + 2 * (i in rpos) for i in range(n))

    # --- validity ------------------------------------------------------------------------------
    def _problem(self, value: tuple[int, ...]) -> str | None:
        """Why ``value`` (a tuple of ints) is not a valid skeleton, or None."""
        bad = [d for d in value if d not in MODULE_KINDS]
        if bad:
            return f"module digits must be 1 to 4 (1 normal, 2 channels x2, 3 resolution /2, 4 both), got {bad[0]}"
        n = len(value)
        c = sum(MODULE_KINDS[d][0] for d in value)
        r = sum(MODULE_KINDS[d][1] for d in value)
        for what, v, (lo, hi) in (("modules", n, self.modules),
                                  ("channel doublings (digits 2 and 4)", c, self.doublings),
                                  ("downsamplings (digits 3 and 4)", r, self.downsamplings)):
            if not lo <= v <= hi:
                return f"it has {v} {what}; {lo} to {hi} are allowed"
        return None

    def validate(self, value: Any) -> tuple[int, ...]:
        if isinstance(value, str):
            return self.parse(value)
        if not isinstance(value, (tuple, list)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in value
        ):
            raise InvalidArchitectureError(f"a skeleton is a sequence of module digits 1 to 4, got {value!r}")
        out = tuple(int(d) for d in value)
        if out not in self._valid:
            raise InvalidArchitectureError(f"invalid skeleton {''.join(map(str, out))!r}: {self._problem(out)}")
        return out

    # --- basic operations ----------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        """A uniformly random valid skeleton."""
        return self._all[int(rng.integers(len(self._all)))]

    def neighbors(self, value: Any) -> list[tuple[int, ...]]:
        """Every valid skeleton one edit away: a module changed, inserted or deleted."""
        v = tuple(value)
        cands: list[tuple[int, ...]] = []
        for i in range(len(v)):
            cands.extend(v[:i] + (d,) + v[i + 1:] for d in _DIGITS if d != v[i])
        for i in range(len(v) + 1):
            cands.extend(v[:i] + (d,) + v[i:] for d in _DIGITS)
        cands.extend(v[:i] + v[i + 1:] for i in range(len(v)))
        return [c for c in dict.fromkeys(cands) if c != v and c in self._valid]

    def crossover(self, a: Any, b: Any, rng: np.random.Generator) -> tuple[int, ...]:
        """Cut-and-splice: a prefix of one parent followed by a suffix of the other, drawn among the valid
        children that differ from both parents (a parent when there is none)."""
        a, b = tuple(a), tuple(b)
        children: dict[tuple[int, ...], None] = {}
        for x, y in ((a, b), (b, a)):
            for i in range(len(x) + 1):
                for j in range(len(y) + 1):
                    c = x[:i] + y[j:]
                    if c != a and c != b and c in self._valid:
                        children[c] = None
        if not children:
            return a if rng.random() < 0.5 else b
        options = list(children)
        return options[int(rng.integers(len(options)))]

    def size(self) -> float:
        return len(self._all)

    def values(self) -> Iterator[tuple[int, ...]]:
        return iter(self._all)

    def n_dims(self) -> int:
        return self.modules[1]

    # --- string form ---------------------------------------------------------------------------
    def format(self, value: Any) -> str:
        return f"{self.base_channels}-{''.join(map(str, value))}-{self.block}"

    def parse(self, text: str) -> tuple[int, ...]:
        text = text.strip()
        m = self._re.match(text)
        if m is None:
            raise InvalidArchitectureError(
                f"malformed skeleton {text!r}: expected '{self.base_channels}-<digits>-{self.block}' with "
                f"{self.modules[0]} to {self.modules[1]} module digits 1 to 4, e.g. {self.format(self._all[0])!r}"
            )
        return self.validate(tuple(int(d) for d in m.group(1)))

    # --- encodings -----------------------------------------------------------------------------
    def encoding_size(self, kind: str = "onehot") -> int:
        n = self.modules[1]
        return 5 * n + (2 * n + 3 if kind == "path" else 0)

    def encode(self, value: Any, kind: str = "onehot") -> np.ndarray:
        """``"onehot"``: per module slot, one-hot over (absent, 1, 2, 3, 4). ``"path"``: the same, then per
        slot the channel doublings and downsamplings done so far (the width and resolution the module
        outputs, as fractions of the allowed maxima; 0 for absent slots), then the number of modules,
        doublings and downsamplings (fractions of the maxima)."""
        n = self.modules[1]
        out = np.zeros(self.encoding_size(kind))
        if value is None:
            return out
        for i in range(n):
            out[5 * i + (value[i] if i < len(value) else 0)] = 1.0
        if kind == "path":
            base = 5 * n
            c = r = 0
            for i, d in enumerate(value):
                c += MODULE_KINDS[d][0]
                r += MODULE_KINDS[d][1]
                out[base + 2 * i] = c / max(self.doublings[1], 1)
                out[base + 2 * i + 1] = r / max(self.downsamplings[1], 1)
            out[base + 2 * n:] = (len(value) / n, c / max(self.doublings[1], 1), r / max(self.downsamplings[1], 1))
        return out

    def _config(self) -> dict:
        return {
            "modules": list(self.modules),
            "doublings": list(self.doublings),
            "downsamplings": list(self.downsamplings),
            "base_channels": self.base_channels,
            "block": self.block,
        }

