"""Never lose work: several drivers on one study, dead drivers, failing evaluations, failing storage, soak.

Every test here runs real processes on loopback (real SQLite files, a real PostgreSQL server where one can
be started) and checks the records, never the clock.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter

import numpy as np
import pytest
from faults import FAULT_KINDS, SOAK_SPACE, FaultyEvaluator, drive, quick_score

import archscout as asc
from archscout.errors import StorageError

SPAWN = multiprocessing.get_context("spawn")


def _events(storage, name="shared"):
    store = asc.create_storage(storage)
    try:
        return store.events(name)
    finally:
        store.close()


def _check_records(events, budget):
    """Exactly ``budget`` evaluated trials, each told once, no trial number or architecture twice."""
    asks = Counter(e.trial for e in events if e.kind == "ask" and not e.payload.get("claim"))
    tells = Counter(e.trial for e in events if e.kind == "tell")
    assert max(asks.values()) == 1 and max(tells.values()) == 1  # 0 duplicated
    assert set(tells) == set(asks)  # 0 lost: every started trial finished
    evaluated = [e for e in events if e.kind == "tell" and e.payload["state"] in ("complete", "failed")]
    assert len(evaluated) == budget
    archs = [e.payload["arch"] for e in events if e.kind == "ask" and not e.payload.get("claim")]
    assert len(archs) == len(set(archs))


# --- several drivers on one study ------------------------------------------------------------------
def _run_drivers(url, n, budget):
    start = SPAWN.Barrier(n)
    procs = [SPAWN.Process(target=drive, args=(url, budget, 100 + i, start)) for i in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=600)
    assert [p.exitcode for p in procs] == [0] * n  # no driver saw an error (no "database is locked")


def test_four_drivers_share_one_budget_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    _run_drivers(url, 4, 1000)
    events = _events(url)
    _check_records(events, 1000)
    assert len({e.payload["driver"] for e in events if e.kind == "ask"}) >= 2  # they did share the work


def test_four_drivers_share_one_budget_postgres(postgres_url):
    _run_drivers(postgres_url, 4, 1000)
    events = _events(postgres_url)
    _check_records(events, 1000)
    assert len({e.payload["driver"] for e in events if e.kind == "ask"}) >= 2


def test_drivers_see_each_others_results(tmp_path):
    """Two drivers in one process: each learns the other's trials before asking, so neither proposes a
    function the other already ran, and trial numbers never collide."""
    db = str(tmp_path / "two.db")
    a = asc.create_study(SOAK_SPACE, objectives=["score"], strategy="rea", storage=db, seed=0, name="shared")
    b = asc.create_study(SOAK_SPACE, objectives=["score"], strategy="rea", storage=db, seed=0, name="shared",
                         load_if_exists=True)
    for _ in range(30):
        for s in (a, b):
            t = s.ask()
            s.tell(t, quick_score(t.arch))
    a.refresh()
    assert a.n_evaluated == b.n_evaluated == 60
    assert [t.to_json() for t in a.trials] == [t.to_json() for t in b.trials]
    assert len({str(t.arch) for t in a.trials}) == 60
    a.close(), b.close()


def test_joining_with_other_settings_is_refused(tmp_path):
    db = str(tmp_path / "s.db")
    asc.create_study(SOAK_SPACE, objectives=["score"], strategy="random", storage=db, name="s")
    with pytest.raises(asc.StudyExistsError, match="already holds"):
        asc.create_study(SOAK_SPACE, objectives=["score"], strategy="random", storage=db, name="s")
    with pytest.raises(asc.ConfigError, match="strategy differ"):
        asc.create_study(SOAK_SPACE, objectives=["score"], strategy="rea", storage=db, name="s",
                         load_if_exists=True)


# --- dead and stopped drivers --------------------------------------------------------------------
def _ask_and_die(db, n):
    study = asc.load_study(db)
    for _ in range(n):
        study.ask()
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.parametrize("policy", ["requeue", "fail"])
def test_trials_of_a_killed_driver_are_requeued_or_failed(tmp_path, policy):
    db = str(tmp_path / "d.db")
    study = asc.create_study(SOAK_SPACE, objectives=["score"], strategy="random", storage=db, seed=1)
    study.optimize(quick_score, budget=5)
    study.close()
    p = SPAWN.Process(target=_ask_and_die, args=(db, 3))
    p.start()
    p.join()
    assert p.exitcode == -signal.SIGKILL
    again = asc.load_study(db, on_stale=policy)
    orphans = [t for t in again.trials if t.state == "running"]
    if policy == "requeue":
        assert len(orphans) == 3 and [t.number for t in again.interrupted] == [5, 6, 7]
        again.optimize(quick_score, budget=12)
        # the orphans ran again under their own numbers; nothing finished ran twice
        assert [t.state for t in again.trials] == ["complete"] * 12
    else:
        failed = [t for t in again.trials if t.state == "failed"]
        assert not orphans and [t.number for t in failed] == [5, 6, 7]
        assert all(t.failure == "driver_died" and "stopped" in t.error for t in failed)
        again.optimize(quick_score, budget=12)
        assert again.n_evaluated == 12
    _check_records(_events(db, "default"), 12)
    again.close()


def test_a_live_driver_keeps_its_trials(tmp_path):
    """Another driver does not take over the trials of a driver that is alive and beating."""
    db = str(tmp_path / "live.db")
    a = asc.create_study(SOAK_SPACE, objectives=["score"], strategy="random", storage=db, seed=0)
    running = a.ask()
    b = asc.load_study(db)
    b.heartbeat_s = 0.2
    assert not b.interrupted
    # b runs 3 trials of its own, then waits for a's (the budget counts it) until a tells it, a second later
    timer = threading.Timer(1.0, lambda: a.tell(running, quick_score(running.arch)))
    timer.start()
    mine = b.optimize(quick_score, budget=4)
    timer.join()
    assert len(mine) == 3 and running.number not in {t.number for t in mine}
    assert b.n_evaluated == 4 and b.trials[running.number].state == "complete"
    a.close(), b.close()


def test_a_late_result_of_a_stopped_driver_is_not_recorded_twice(tmp_path):
    db = str(tmp_path / "late.db")
    a = asc.create_study(SOAK_SPACE, objectives=["score"], strategy="random", storage=db, seed=0)
    t = a.ask()
    a.detach()  # a looks stopped (as after a long network partition)
    b = asc.load_study(db)
    assert [x.number for x in b.interrupted] == [t.number]
    b.optimize(quick_score, budget=1)  # b runs it again
    with pytest.warns(UserWarning, match="taken over by another driver"):
        assert a.tell(t, quick_score(t.arch)) is None  # a's result is dropped
    _check_records(_events(db, "default"), 1)
    a.close(), b.close()


# --- failing evaluations, timeouts, retries -------------------------------------------------------
def test_failures_are_recorded_with_their_kind_and_retried(tmp_path, capsys):
    ev = FaultyEvaluator(rate=0.5, seed=3, hang_s=60, kinds=("raise", "nan", "kill", "hang"))
    study = asc.create_study(SOAK_SPACE, objectives=["score"], strategy="random", storage=str(tmp_path / "f.db"),
                             seed=0)
    study.optimize(ev, budget=24, executor="process", workers=2, timeout_s=1.0,
                   retries=asc.RetryPolicy(max_retries=1, on=("timeout", "worker_died")))
    trials = study.trials
    assert study.n_evaluated == 24
    for t in trials:
        fault = ev.fault(t.arch)
        if fault is None:
            assert t.state == "complete"
        else:
            assert t.state == "failed" and t.failure == FAULT_KINDS[fault], (fault, t.failure, t.error)
    assert any(t.failure == "timeout" and "timed out" in t.error for t in trials)
    assert any(t.failure == "error" and "injected failure" in t.error for t in trials)  # the traceback
    # each timeout or dead worker was tried once more, under a new trial number that names the first
    asks = {e.trial: e.payload for e in _events(study.storage.url, "default") if e.kind == "ask"}
    retries = [p for p in asks.values() if "retry_of" in p]
    firsts = {t.number for t in trials if t.failure in ("timeout", "worker_died") and "retry_of" not in asks[t.number]}
    assert retries and {p["retry_of"] for p in retries} <= firsts
    assert all(p["attempt"] == 2 and p["arch"] == asks[p["retry_of"]]["arch"] for p in retries)  # once, same arch
    kinds = Counter(t.failure for t in trials if t.state == "failed")
    assert study.summary()["failures"] == dict(kinds)
    from archscout.cli import main

    assert main(["show", str(tmp_path / "f.db")]) == 0
    shown = capsys.readouterr().out
    assert "failed: " + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())) in shown
    assert "failed (timeout)" in shown
    study.close()


# --- failing storage ----------------------------------------------------------------------------------
def test_a_failed_storage_write_stops_the_run_and_keeps_the_records(tmp_path):
    db = str(tmp_path / "full.db")
    study = asc.create_study(SOAK_SPACE, objectives=["score"], strategy="random", storage=db, seed=0)
    study.optimize(quick_score, budget=20)
    # the disk fills up: SQLite may not grow the file any more
    pages = study.storage._conn.execute("PRAGMA page_count").fetchone()[0]
    study.storage._conn.execute(f"PRAGMA max_page_count={pages}")
    with pytest.raises(StorageError, match="could not write.*nothing recorded was lost"):
        study.optimize(lambda a: {"score": 1.0, "pad": 0.0, **{f"m{i}": float(i) for i in range(300)}}, budget=500)
    study.close()
    again = asc.load_study(db)  # consistent: every record whole, none half-written
    assert again.n_evaluated >= 20
    assert all(t.state in ("complete", "running") for t in again.trials)
    again.storage._conn.execute("PRAGMA max_page_count=1073741823")
    again.optimize(quick_score, budget=30)
    assert again.n_evaluated == 30
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    again.close()


# --- soak -----------------------------------------------------------------------------------------------
def test_soak_ten_thousand_trials_with_injected_failures(tmp_path):
    """10,000 trials, 4 worker processes, 10 % injected failures of every kind (exceptions, NaN, inf, killed
    workers, hangs cut by the timeout): exactly 10,000 recorded, failed = injected, nothing twice."""
    ev = FaultyEvaluator(rate=0.1, seed=7, hang_s=600)
    study = asc.create_study(SOAK_SPACE, objectives=["score"], strategy="random", storage=str(tmp_path / "soak.db"),
                             seed=0)
    # the timeout cuts the injected hangs (600 s); 1.5 s leaves room for an ordinary trial on a busy machine
    ex = asc.create_executor("process", workers=4, timeout_s=1.5, start_method="fork")
    study.optimize(ev, budget=10_000, executor=ex)
    trials = study.trials
    assert len(trials) == study.n_evaluated == 10_000
    injected = Counter(FAULT_KINDS[f] for f in map(ev.fault, (t.arch for t in trials)) if f)
    failed = Counter(t.failure for t in trials if t.state == "failed")
    assert failed == injected and sum(failed.values()) > 800
    assert all(t.state == "complete" for t in trials if ev.fault(t.arch) is None)
    assert len({str(t.arch) for t in trials}) == 10_000
    _check_records(_events(study.storage.url, "default"), 10_000)
    study.close()


# --- the CLI: several `archscout search` at once, kill -9 and resume ---------------------------------------
def _cli(*args):
    return [sys.executable, "-m", "archscout", *map(str, args)]


def test_cli_searches_started_at_once_share_the_budget(nb201_table, tmp_path):
    db = tmp_path / "cli.db"
    args = ["search", "--benchmark", "nb201", "--table", nb201_table, "--objective", "valid_acc_200ep",
            "--strategy", "random", "--budget", 60, "--seed", 0, "--storage", db, "--replay-time-scale", "0.00005",
            "--no-progress"]
    procs = [subprocess.Popen(_cli(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-500:] for o in outs]
    study = asc.load_study(str(db))
    assert study.n_evaluated == 60 == len(study.trials)
    drivers = {e.payload["driver"] for e in study.storage.events("default") if e.kind == "ask"}
    assert len(drivers) >= 2
    study.close()


def test_kill_minus_nine_at_ten_random_moments(nb201_table, tmp_path):
    """SIGKILL the driver of a process-pool search (real waits) at 10 random moments, resuming after each:
    every finished evaluation survives unchanged, none is run again, the study completes its budget."""
    db = tmp_path / "k.db"
    budget = 100
    rng = np.random.default_rng(0)
    args = ["search", "--benchmark", "nb201", "--table", nb201_table, "--objective", "valid_acc_200ep",
            "--strategy", "rea", "--budget", budget, "--seed", 0, "--storage", db, "--replay-time-scale", "0.0002",
            "--executor", "process", "--workers", 2, "--no-progress"]
    proc = subprocess.Popen(_cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    kills = 0
    seen: dict[int, dict] = {}
    for _ in range(10):
        try:
            proc.wait(timeout=float(rng.uniform(0.8, 2.5)))
            break  # finished before this kill
        except subprocess.TimeoutExpired:
            pass
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        study = asc.load_study(str(db))
        done = {t.number: t.to_json() for t in study.trials if t.state != "running"}
        study.close()
        for n, t in seen.items():  # nothing finished is lost or changed
            assert done[n] == t
        seen = done
        proc = subprocess.Popen(_cli("resume", db, "--no-progress"), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    assert proc.wait(timeout=300) == 0
    assert kills == 10
    events = asc.create_storage(str(db)).events("default")
    _check_records(events, budget)
    study = asc.load_study(str(db))
    assert all(t.state == "complete" for t in study.trials)
    vals = {}
    import csv

    with open(nb201_table) as fh:
        for r in csv.DictReader(fh):
            vals[r["arch_str"]] = float(r["valid_acc_200ep"])
    assert all(t.metrics["valid_acc_200ep"] == vals[str(t.arch)] for t in study.trials)
    json.dumps([t.to_json() for t in study.trials])
    study.close()


def test_a_killed_driver_among_three_leaves_its_trials_to_the_others(nb201_table, tmp_path):
    """Three `archscout search` processes share a study; one is killed -9 while it runs trials: the other two
    take its trials over (its process is gone, so at once) and finish exactly the budget, nothing twice."""
    db = tmp_path / "three.db"
    args = ["search", "--benchmark", "nb201", "--table", nb201_table, "--objective", "valid_acc_200ep",
            "--budget", 50, "--seed", 0, "--storage", db, "--replay-time-scale", "0.0002", "--executor", "process",
            "--workers", 2, "--no-progress"]
    procs = [subprocess.Popen(_cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    victim = procs[1]
    tag = f":{victim.pid}:"
    running: set[int] = set()
    for _ in range(600):  # until the victim holds a running trial (at most 60 s)
        if db.exists():
            try:
                events = _events(str(db), "default")
            except StorageError:
                events = []
            told = {e.trial for e in events if e.kind == "tell"}
            running = {e.trial for e in events if e.kind == "ask" and tag in e.payload["driver"]} - told
            if running:
                break
        time.sleep(0.1)
    assert running, "the victim never started a trial"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    for p in (procs[0], procs[2]):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
    events = _events(str(db), "default")
    _check_records(events, 50)
    claims = {e.trial for e in events if e.kind == "ask" and e.payload.get("claim")}
    victims = {e.trial for e in events if e.kind == "ask" and not e.payload.get("claim") and tag in e.payload["driver"]}
    assert claims and claims <= victims  # its running trials, and only they, were taken over
    assert all(e.payload["state"] == "complete" for e in events if e.kind == "tell")
