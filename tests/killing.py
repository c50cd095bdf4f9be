"""Killing a training command once its folder records some finished epochs (for resume tests)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest


def kill_after_epochs(cmd: list[str], folder: Path, epochs: int, cwd: Path, timeout_s: float = 240) -> int:
    """Start ``cmd``, SIGKILL it once ``folder/supernet.json`` counts ``epochs`` finished epochs, and return the
    epochs the folder then records (fails the test when none are recorded in ``timeout_s``)."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    meta = folder / "supernet.json"
    try:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if meta.exists() and json.loads(meta.read_text()).get("epochs_done", 0) >= epochs:
                break
            time.sleep(0.1)
        else:
            pytest.fail("training wrote no checkpoint in time")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return int(json.loads(meta.read_text())["epochs_done"])
