"""A new parameter type is one class: declared once, it round-trips through configs, and every strategy
(model-based, sequential, evolutionary, Optuna's) searches it through the parameter's own methods."""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pytest

import archscout as asc
from archscout.errors import ConfigError, InvalidArchitectureError
from archscout.space.decisions import SequenceDecisions, decisions_of
from archscout.space.params import PARAM_TYPES, Param, param_from_config
from archscout.strategies import STRATEGIES

COLOURS = ("red", "green", "blue", "gold")


class Ordering(Param):
    """An ordering of ``k`` distinct colours out of four (24 values for k=3), written ``red>blue>gold``."""

    kind = "test_ordering"

    def __init__(self, k: int = 3, when=None) -> None:
        super().__init__(when)
        self.k = int(k)
        self._all = list(itertools.permutations(COLOURS, self.k))

    def sample(self, rng):
        return self._all[int(rng.integers(len(self._all)))]

    def neighbors(self, value):
        v = self.validate(value)
        swaps = [tuple(v[j] if i == k else v[k] if j == i else x for i, x in enumerate(v))
                 for k, j in itertools.combinations(range(self.k), 2)]
        return [s for s in swaps if s != v]

    def validate(self, value):
        if isinstance(value, str):
            return self.parse(value)
        v = tuple(value) if isinstance(value, (tuple, list)) else None
        if v is None or v not in self._all:
            raise InvalidArchitectureError(f"{value!r} is not an ordering of {self.k} distinct colours")
        return v

    def size(self):
        return len(self._all)

    def values(self):
        return iter(self._all)

    def format(self, value):
        return ">".join(value)

    def parse(self, text):
        return self.validate(tuple(text.strip().split(">")))

    def encode(self, value, kind="onehot"):
        out = np.zeros(self.k * len(COLOURS))
        if value is not None:
            for i, c in enumerate(value):
                out[i * len(COLOURS) + COLOURS.index(c)] = 1.0
        return out

    def encoding_size(self, kind="onehot"):
        return self.k * len(COLOURS)

    def _config(self):
        return {"k": self.k}


SPACE = asc.Space({"order": Ordering(3), "width": asc.Choice([8, 16])})
TARGET = ("gold", "red", "blue")


def score(arch) -> float:
    return sum(a == b for a, b in zip(arch["order"], TARGET)) + 0.1 * (arch["width"] == 16)


def test_defining_the_class_registers_its_kind():
    assert PARAM_TYPES["test_ordering"] is Ordering
    p = param_from_config(Ordering(2).to_config())
    assert isinstance(p, Ordering) and p == Ordering(2)
    again = asc.Space.from_config(json.loads(json.dumps(SPACE.to_config())))
    assert again == SPACE
    arch = SPACE.sample(np.random.default_rng(0))
    assert again.parse(str(arch)) == arch


def test_a_second_class_with_the_same_kind_is_refused():
    with pytest.raises(ConfigError, match="already defined"):
        type("Clash", (Param,), {"kind": "choice"})


def test_the_default_decisions_enumerate_the_values_position_by_position():
    d = decisions_of(Ordering(3))
    assert isinstance(d, SequenceDecisions) and d.exact
    assert d.sizes == [4, 4, 4]  # one slot per position, over the four colours
    tokens = [d.tokens(k) for k in range(3)]  # readable names, in order of first appearance
    assert tokens[0] == list(COLOURS) and all(sorted(tok) == sorted(COLOURS) for tok in tokens)
    # a repeated colour is never allowed, so every walk is a valid ordering
    gen = d.build()
    slot, n, allowed = next(gen)
    assert (slot, n) == (0, 4) and (allowed is None or len(allowed) == 4)
    slot, n, allowed = gen.send(tokens[0].index("red"))
    assert slot == 1 and sorted(tokens[1][i] for i in allowed) == ["blue", "gold", "green"]
    steps = d.decode(("gold", "red", "blue"))
    assert [tokens[k][i] for k, i in steps] == ["gold", "red", "blue"]


@pytest.mark.parametrize("name", [n for n in STRATEGIES.names() if not STRATEGIES.get(n).capabilities.needs_fidelities])
def test_every_strategy_searches_the_new_type(name):
    s = asc.create_study(SPACE, objectives=["acc"], strategy=name, seed=0)
    s.optimize(lambda arch: {"acc": score(arch)}, budget=30)
    archs = [t.arch for t in s.trials]
    assert len({a.functional_hash() for a in archs}) == len(archs) == 30
    assert all(a["order"] in Ordering(3)._all for a in archs)


def test_model_based_search_beats_random_on_the_new_type():
    def best(name: str, seed: int) -> float:
        s = asc.create_study(SPACE, objectives=["acc"], strategy=name, seed=seed)
        s.optimize(lambda arch: {"acc": score(arch)}, budget=16)
        return max(t.metrics["acc"] for t in s.trials)

    assert np.mean([best("smbo", k) for k in range(4)]) > np.mean([best("random", k) for k in range(4)])


def test_optuna_asks_one_categorical_per_position():
    s = asc.create_strategy("tpe-optuna", SPACE, seed=0)
    c = s.ask()
    trial = s.study.get_trials(deepcopy=False)[c.token]
    assert set(trial.params) == {"order[0]", "order[1]", "order[2]", "width"}
    assert ">".join(trial.params[f"order[{i}]"] for i in range(3)) == SPACE.params["order"].format(c.arch["order"])


class Opaque(Param):
    """Neither enumerates nor samples its values: nothing can decide it."""

    kind = "test_opaque"

    def size(self) -> Any:
        return float("inf")

    def _config(self):
        return {}


def test_a_type_without_decisions_gets_a_clear_error():
    with pytest.raises(ConfigError, match="has no decisions"):
        decisions_of(Opaque())
    with pytest.raises(ConfigError, match="cannot map parameter 'x' to Optuna"):
        asc.create_strategy("tpe-optuna", asc.Space({"x": Opaque()}))
