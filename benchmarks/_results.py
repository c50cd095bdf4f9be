"""What every benchmark script records with its results: the machine, the command, and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import sys
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
