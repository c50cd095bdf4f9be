"""Strategies beyond the shared contract. The contract itself (valid candidates, seeded trajectories, no duplicate
functions, state round trips, foreign results, exhaustion, settings, capabilities) is checked for every
registered strategy by ``archscout.testing.check_strategy``, run over the registry in ``test_conformance.py``."""

import numpy as np
import pytest
from synthetic import SPACE, drive, score

import archscout as asc
from archscout.errors import ConfigError
from archscout.strategies import create_strategy, list_strategies


def test_registry_lists_required_strategies():
    assert {"random", "rea", "ls"} <= set(list_strategies())


def test_single_objective_strategies_refuse_two_objectives():
    objs = [asc.Objective("acc", "max"), asc.Objective("latency_ms", "min")]
    with pytest.raises(ConfigError, match="one objective"):
        asc.create_strategy("rea", SPACE, objectives=objs)
    asc.create_strategy("random", SPACE, objectives=objs)


def test_rea_and_ls_beat_random_on_synthetic_objective():
    def best(name):
        return np.mean([max(score(c.arch) for c in drive(asc.create_strategy(name, SPACE, seed=s), 150))
                        for s in range(5)])
    assert best("rea") > best("random")
    assert best("ls") > best("random")


def test_rea_parameters_validated():
    with pytest.raises(ConfigError, match="sample_size"):
        asc.create_strategy("rea", SPACE, population_size=5, sample_size=6)


def test_replay_proposes_given_then_queued_then_random_architectures():
    space = asc.create_space("nb201")
    rng = np.random.default_rng(5)
    given = [str(space.sample(rng)) for _ in range(2)]
    extra = space.sample(rng)
    s = create_strategy("replay", space, seed=0, archs=given, dedup=False)
    s.queue(extra)
    s.queue(given[0])  # again: kept with dedup=False
    proposed = [str(s.ask().arch) for _ in range(5)]
    assert proposed[:4] == [*given, str(extra), given[0]]
    assert s.to_config() == {"name": "replay", "dedup": False, "archs": given}
    with pytest.raises(asc.InvalidArchitectureError):
        s.queue("|bogus~0|")
    with pytest.raises(ConfigError, match="list of architecture strings"):
        create_strategy("replay", space, archs="|none~0|")
