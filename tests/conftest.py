"""Shared fixtures. Benchmark tables are read where the user keeps them (never copied into the repo):
``$ARCHSCOUT_DATA`` or ``../shared/data`` beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pg_server import postgres_server, postgres_url  # noqa: F401  (PostgreSQL fixtures; skip if no server)

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ARCHSCOUT_DATA", REPO.parent / "shared" / "data"))
NB201_TABLE = DATA / "nas-bench-201" / "nb201_cifar10.csv"
LATENCY_TABLE = DATA / "nb201-latency-help" / "nb201_latency_help.csv"
TNB_OBJECT_TABLE = DATA / "transnas-bench-101" / "tnb101_class_object.csv"
TNB_ROOM_TABLE = DATA / "transnas-bench-101" / "tnb101_room_layout.csv"
NBG_CORA_TABLE = DATA / "nas-bench-graph" / "nbg_cora.csv"


def _table(path: Path, what: str) -> Path:
    if not path.is_file():
        pytest.skip(f"{what} table not found at {path}; set ARCHSCOUT_DATA")
    return path


@pytest.fixture(scope="session")
def nb201_table() -> Path:
    if not NB201_TABLE.is_file():
        pytest.skip(f"NB201 table not found at {NB201_TABLE}; set ARCHSCOUT_DATA")
    return NB201_TABLE


@pytest.fixture(scope="session")
def latency_table() -> Path:
    if not LATENCY_TABLE.is_file():
        pytest.skip(f"latency table not found at {LATENCY_TABLE}; set ARCHSCOUT_DATA")
    return LATENCY_TABLE


@pytest.fixture(scope="session")
def nb201_bench(nb201_table):
    from archscout.benchmarks import create_benchmark

    return create_benchmark("nb201", table=str(nb201_table), report="test_acc_200ep")


@pytest.fixture(scope="session")
def tnb_object_table() -> Path:
    return _table(TNB_OBJECT_TABLE, "TransNAS-Bench-101 class_object")


@pytest.fixture(scope="session")
def tnb_room_table() -> Path:
    return _table(TNB_ROOM_TABLE, "TransNAS-Bench-101 room_layout")


@pytest.fixture(scope="session")
def nbg_cora_table() -> Path:
    return _table(NBG_CORA_TABLE, "NAS-Bench-Graph cora")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small models run fastest on one thread (and do not fight other processes for cores); use it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
