import json
import math
import sqlite3

import pytest

import archscout as asc
from archscout.errors import ConfigError, StorageError, StorageVersionError

SPACE = asc.create_space("nb201")


def synthetic(arch):
    """Deterministic metrics for an NB201 cell: 'acc' favours convs, 'latency_ms' counts them."""
    ops = arch.values[0]
    convs = sum(o.startswith("nor_conv") for o in ops)
    jitter = int(arch.functional_hash()[:6], 16) / 16**6
    return {"acc": 50 + 5 * convs + jitter, "latency_ms": 1 + convs + 0.1 * jitter}


def test_ask_tell_optimize_and_best(tmp_path):
    study = asc.create_study(SPACE, objectives=["acc"], strategy="rea", storage=tmp_path / "s.db", seed=0)
    t = study.ask()
    assert t.state == "running"
    done = study.tell(t, synthetic(t.arch))
    assert done.state == "complete" and done.metrics["acc"] == synthetic(t.arch)["acc"]
    study.optimize(synthetic, budget=30)
    assert study.n_evaluated == 30
    assert [t.number for t in study.trials] == list(range(30))
    assert study.best_trial.metrics["acc"] == max(t.metrics["acc"] for t in study.trials)


def test_budget_belongs_to_the_study():
    study = asc.create_study(SPACE, objectives=["acc"], seed=0)
    study.optimize(synthetic, budget=10)
    study.optimize(synthetic, budget=10)
    assert study.n_evaluated == 10
    study.optimize(synthetic, budget=15)
    assert study.n_evaluated == 15


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10"])
def test_bad_budget(bad):
    study = asc.create_study(SPACE, objectives=["acc"], seed=0)
    with pytest.raises(ConfigError, match="budget"):
        study.optimize(synthetic, budget=bad)


def test_failures_are_recorded_and_the_search_goes_on():
    def flaky(arch):
        h = int(arch.functional_hash()[:2], 16)
        if h % 4 == 0:
            raise RuntimeError("evaluation crashed")
        if h % 4 == 1:
            return {"acc": float("nan")}
        if h % 4 == 2:
            return {"other": 1.0}
        return {"acc": 1.0}

    study = asc.create_study(SPACE, objectives=["acc"], seed=0)
    study.optimize(flaky, budget=40)
    states = [t.state for t in study.trials]
    assert len(states) == 40 and "failed" in states and "complete" in states
    errors = {t.error.splitlines()[-1] if t.error else None for t in study.trials}
    assert "RuntimeError: evaluation crashed" in errors
    assert any(e and "not finite" in e for e in errors)
    assert any(e and "missing" in e for e in errors)


def test_tell_twice_or_unknown_trial():
    study = asc.create_study(SPACE, objectives=["acc"], seed=0)
    t = study.ask()
    study.tell(t, {"acc": 1.0})
    with pytest.raises(ConfigError, match="already complete"):
        study.tell(t, {"acc": 2.0})
    with pytest.raises(ConfigError, match="does not exist"):
        study.tell(99, {"acc": 2.0})


def test_multi_objective_pareto_front_and_constraints():
    study = asc.create_study(
        SPACE, objectives=[asc.Objective("acc", "max"), asc.Objective("latency_ms", "min", "ms")],
        constraints=["latency_ms<=5"], strategy="random", seed=0,
    )
    study.optimize(synthetic, budget=60)
    front = study.pareto_front()
    assert front
    feas = [t for t in study.trials if t.metrics["latency_ms"] <= 5]
    for f in front:
        assert f.metrics["latency_ms"] <= 5
        for t in feas:
            dominates = (t.metrics["acc"] >= f.metrics["acc"] and t.metrics["latency_ms"] <= f.metrics["latency_ms"]
                         and (t.metrics["acc"] > f.metrics["acc"] or t.metrics["latency_ms"] < f.metrics["latency_ms"]))
            assert not dominates
    # every feasible non-front trial is dominated by some front member
    for t in feas:
        if t not in front:
            assert any(f.metrics["acc"] >= t.metrics["acc"] and f.metrics["latency_ms"] <= t.metrics["latency_ms"]
                       for f in front)


def test_resume_replays_to_the_same_state(tmp_path):
    path = tmp_path / "r.db"
    study = asc.create_study(SPACE, objectives=["acc"], strategy="rea", storage=path, seed=5)
    study.optimize(synthetic, budget=50)
    running = [study.ask() for _ in range(2)]  # interrupted trials
    state = json.dumps(study.strategy.state_dict(), sort_keys=True)
    study.close()  # the driver stops: its unfinished trials are orphaned

    again = asc.load_study(str(path))
    assert json.dumps(again.strategy.state_dict(), sort_keys=True) == state
    assert [t.to_json() for t in again.trials if t.state == "complete"] == \
        [t.to_json() for t in study.trials if t.state == "complete"]
    # interrupted trials are handed out again, with their numbers, before anything new
    requeued = [again.ask() for _ in range(2)]
    assert [t.number for t in requeued] == [t.number for t in running]
    assert [t.arch for t in requeued] == [t.arch for t in running]
    for t in requeued:
        again.tell(t, synthetic(t.arch))
    again.optimize(synthetic, budget=80)
    nums = [t.number for t in again.trials]
    assert len(nums) == len(set(nums)) == 80

    # an uninterrupted run with the same seed gives the same trajectory
    ref = asc.create_study(SPACE, objectives=["acc"], strategy="rea", seed=5)
    ref.optimize(synthetic, budget=50)
    assert [str(t.arch) for t in ref.trials] == [str(t.arch) for t in again.trials][:50]


def test_same_seed_same_study_trajectory():
    runs = []
    for _ in range(2):
        s = asc.create_study(SPACE, objectives=["acc"], strategy="ls", seed=11)
        s.optimize(synthetic, budget=60)
        runs.append([str(t.arch) for t in s.trials])
    assert runs[0] == runs[1]


def test_sqlite_url_and_header(tmp_path):
    path = tmp_path / "u.db"
    study = asc.create_study(SPACE, objectives=["acc"], storage=f"sqlite:///{path}", seed=0, metadata={"k": 1})
    study.optimize(synthetic, budget=3)
    con = sqlite3.connect(path)
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "1"
    kinds = [r[0] for r in con.execute("SELECT kind FROM events ORDER BY seq")]
    assert kinds == ["ask", "tell"] * 3
    cfg = json.loads(con.execute("SELECT config FROM studies").fetchone()[0])
    assert cfg["space"] == {"name": "nb201"} and cfg["metadata"] == {"k": 1} and cfg["seed"] == 0


def test_storage_errors(tmp_path):
    with pytest.raises(StorageError, match="does not exist"):
        asc.load_study(str(tmp_path / "missing.db"))
    junk = tmp_path / "junk.db"
    junk.write_text("this is not a database" * 100)
    with pytest.raises(StorageError, match="not"):
        asc.load_study(str(junk))
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE x (a)").connection.commit()
    with pytest.raises(StorageError, match="not an archscout storage"):
        asc.load_study(str(other))
    with pytest.raises(StorageError, match="scheme"):
        asc.create_study(SPACE, objectives=["acc"], storage="mongodb://x/y")
    path = tmp_path / "v.db"
    asc.create_study(SPACE, objectives=["acc"], storage=path, seed=0).optimize(synthetic, budget=2)
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    con.commit()
    with pytest.raises(StorageVersionError, match="version 99"):
        asc.load_study(str(path))
    con.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    con.commit()
    assert asc.load_study(str(path)).n_evaluated == 2  # nothing was lost


def test_existing_study_is_not_overwritten(tmp_path):
    path = tmp_path / "e.db"
    asc.create_study(SPACE, objectives=["acc"], storage=path, seed=0).optimize(synthetic, budget=4)
    with pytest.raises(StorageError, match="already holds"):
        asc.create_study(SPACE, objectives=["acc"], storage=path, seed=0)
    assert asc.load_study(str(path)).n_evaluated == 4


def test_bad_study_settings():
    with pytest.raises(ConfigError):
        asc.create_study(SPACE, objectives=[asc.Objective("acc", "up")])
    with pytest.raises(ConfigError):
        asc.create_study(SPACE, objectives=["acc", "acc"])
    with pytest.raises(ConfigError):
        asc.create_study(SPACE, objectives=["acc"], constraints=["latency_ms ~ 3"])
    with pytest.raises(asc.UnknownNameError, match="rea"):
        asc.create_study(SPACE, objectives=["acc"], strategy="reaa")


def test_space_exhaustion_stops_gracefully():
    sp = asc.Space({"a": asc.Choice([1, 2, 3])})
    study = asc.create_study(sp, objectives=["x"], strategy="rea", seed=0)
    with pytest.warns(UserWarning, match="stopping early"):
        study.optimize(lambda a: {"x": float(a["a"])}, budget=10)
    assert study.n_evaluated == 3
    assert math.isclose(study.best_trial.metrics["x"], 3.0)


GOLDEN_FIDELITIES = [12, 200]  # for the strategies that need several fidelities (sh, hyperband, asha)


def test_golden_trajectories():
    """Seeded trajectories are pinned: a change here changes every published result."""
    import pathlib

    from archscout.strategies import STRATEGIES

    golden = json.loads((pathlib.Path(__file__).parent / "golden" / "trajectories.json").read_text())
    for name, expected in golden.items():
        fids = GOLDEN_FIDELITIES if STRATEGIES.get(name).capabilities.needs_fidelities else None
        s = asc.create_study(SPACE, objectives=["acc"], strategy=name, seed=0, fidelities=fids)
        s.optimize(synthetic, budget=len(expected))
        assert [str(t.arch) for t in s.trials] == expected, name


class ConvCount:
    """A cheap cost model: number of conv edges (known before training)."""

    name, unit, cheap = "convs", "", True

    def predict(self, arch):
        return float(sum(o.startswith("nor_conv") for o in arch.values[0]))

    def to_config(self):
        return {"name": "convs"}


class Measured(ConvCount):
    cheap = False

    def predict(self, arch):
        return 2.0 * super().predict(arch) + 0.5


def test_cheap_costs_screen_before_dispatch_and_expensive_ones_run_with_evaluation():
    evaluated = []

    def evaluate(arch):
        evaluated.append(arch)
        return synthetic(arch)

    study = asc.create_study(SPACE, objectives=["acc"], constraints=["convs<=2", "lat_ms<=4.6"], strategy="rea",
                             seed=0, cost_models={"convs": ConvCount(), "lat_ms": Measured()})
    study.optimize(evaluate, budget=30)
    states = [t.state for t in study.trials]
    assert states.count("complete") == 30 == len(evaluated) == study.n_evaluated
    infeasible = [t for t in study.trials if t.state == "infeasible"]
    assert infeasible and all(t.metrics["convs"] > 2 for t in infeasible)
    assert not {t.arch for t in infeasible} & set(evaluated)  # never trained
    for t in study.trials:
        if t.state == "complete":
            assert t.metrics["convs"] <= 2 and t.metrics["lat_ms"] == 2 * t.metrics["convs"] + 0.5
    assert all(t.metrics["lat_ms"] <= 4.6 for t in study.pareto_front())
    assert study.config["cost_models"]["convs"] == {"name": "convs", "cheap": True}


def test_unmeetable_budget_is_a_clear_error_and_keeps_records(tmp_path):
    study = asc.create_study(SPACE, objectives=["acc"], constraints=["convs<=-1"], seed=0,
                             storage=tmp_path / "c.db", cost_models={"convs": ConvCount()})
    with pytest.raises(asc.ConstraintError, match=r"convs<=-1 \(closest seen: 0\)"):
        study.optimize(synthetic, budget=5)
    again = asc.load_study(str(tmp_path / "c.db"))
    assert len(again.trials) == 200 and {t.state for t in again.trials} == {"infeasible"}


def test_cost_model_that_cannot_build_fails_the_trial():
    class Fragile(ConvCount):
        def predict(self, arch):
            if arch.values[0][0] == "none":
                raise asc.BuildError("cannot build this one")
            return 0.0

    study = asc.create_study(SPACE, objectives=["acc"], strategy="random", seed=0, cost_models={"c": Fragile()})
    study.optimize(synthetic, budget=40)
    failed = [t for t in study.trials if t.state == "failed"]
    assert failed and all("cannot build this one" in t.error for t in failed)
    assert study.n_evaluated == 40


def test_load_study_without_replay_reads_the_same_trials_without_asking_the_strategy(tmp_path, monkeypatch):
    space = asc.create_space("nb201")
    study = asc.create_study(space, objectives=["score"], strategy="rea", storage=str(tmp_path / "r.db"), seed=0)
    study.optimize(lambda a: {"score": float(len(str(a)))}, budget=12)
    want = [t.to_json() for t in study.trials]
    study.close()
    from archscout.strategies.simple import RegularizedEvolution

    def no_ask(self, *a, **k):
        raise AssertionError("replay=False must not ask the strategy")

    monkeypatch.setattr(RegularizedEvolution, "ask", no_ask)
    again = asc.load_study(str(tmp_path / "r.db"), replay=False)
    assert [t.to_json() for t in again.trials] == want
    again.close()
    with pytest.raises(AssertionError, match="must not ask"):
        asc.load_study(str(tmp_path / "r.db"))  # the default re-proposes the seeded trajectory
