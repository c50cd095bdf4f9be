"""What every benchmark script records with its results: the machine, the command, and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """CPU count, Python version and platform of this run."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def command() -> str:
    """The command line that produced the results, relative to the working folder."""
    return " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])


def write_json(results: dict[str, Any], path: str) -> None:
    """Write ``results`` (with ``machine`` and ``command`` added) to ``path``, creating its folder."""
    results = {**results, "machine": machine(), "command": command()}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    print(f"wrote {path}")


def run_command(cmd: list[str], log: Path) -> float:
    """Run a command with its output appended to ``log``; returns its wall time in seconds, or stops the
    benchmark (naming the log) when the command fails."""
    t = time.time()
    print("$", " ".join(cmd), flush=True)
    with open(log, "a") as f:
        p = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        sys.exit(f"command failed ({p.returncode}); see {log}")
    return time.time() - t
