"""What the supervisor needs to start (and restart) a run's process.

Saved as ``.run/launch.json`` when a run is submitted. It holds no
environment beyond the run's own additions: the supervisor inherits the
submitter's environment, so secrets never land in the run directory.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from guild_jupyter.storage.layout import atomic_write_json

LAUNCH = "launch.json"


class LaunchSpec:
    FIELDS = ("argv", "env", "cwd", "output_scalars", "retries", "project_dir")

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        output_scalars: Any = None,
        retries: int = 0,
        project_dir: str | None = None,
    ) -> None:
        self.argv = argv
        self.env = env if env is not None else {}
        self.cwd = cwd  # None: the run directory
        self.output_scalars = output_scalars
        self.retries = retries
        self.project_dir = project_dir

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}

    def save(self, meta_dir: str) -> None:
        atomic_write_json(os.path.join(meta_dir, LAUNCH), self.to_dict())

    @classmethod
    def load(cls, meta_dir: str) -> LaunchSpec:
        with open(os.path.join(meta_dir, LAUNCH), encoding="utf-8") as f:
            return cls(**json.load(f))


def flag_env(flags: dict[str, Any]) -> dict[str, str]:
    """``FLAG_<NAME>`` variables: every flag reaches the process this way too."""
    out = {}
    for name, value in flags.items():
        key = "FLAG_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()
        out[key] = (
            json.dumps(value)
            if isinstance(value, (list, dict))
            else ("" if value is None else str(value))
        )
    return out
