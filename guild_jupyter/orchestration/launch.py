"""What the supervisor needs to start (and restart) a run's process.

Saved as ``.run/launch.json`` when a run is submitted. It holds no
environment beyond the run's own additions: the supervisor inherits the
submitter's environment, so secrets never land in the run directory.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from guild_jupyter.storage.layout import atomic_write_json

LAUNCH = "launch.json"


@dataclass
class LaunchSpec:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None  # None: the run directory
    output_scalars: Any = None
    retries: int = 0
    project_dir: str | None = None

    def save(self, meta_dir: str) -> None:
        atomic_write_json(os.path.join(meta_dir, LAUNCH), asdict(self))

    @classmethod
    def load(cls, meta_dir: str) -> LaunchSpec:
        with open(os.path.join(meta_dir, LAUNCH), encoding="utf-8") as f:
            return cls(**json.load(f))


def flag_env(flags: dict[str, Any]) -> dict[str, str]:
    """``FLAG_<NAME>`` variables: every flag reaches the process this way too."""
    out = {}
    for name, value in flags.items():
        key = "FLAG_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()
        out[key] = json.dumps(value) if isinstance(value, (list, dict)) else ("" if value is None else str(value))
    return out
