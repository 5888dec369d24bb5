"""Settings of a store: ``$GUILD_JUPYTER_HOME/config.yaml``, overridden by environment variables.

| setting | env | default |
|---|---|---|
| max_concurrent_runs | GUILD_JUPYTER_MAX_RUNS | number of CPUs |
| stop_grace_seconds | GUILD_JUPYTER_STOP_GRACE | 10 |
| sample_interval | GUILD_JUPYTER_SAMPLE_INTERVAL | 5 (seconds; 0 turns sampling off) |
| max_cpu_percent / max_memory_percent / max_gpu_percent | GUILD_JUPYTER_MAX_CPU / _MEMORY / _GPU | none (no throttling) |
| retry_delay | GUILD_JUPYTER_RETRY_DELAY | 1 (seconds, doubled per retry) |
| sourcecode_max_file_size / sourcecode_max_files | | 1 MiB / 100 |
| executor | GUILD_JUPYTER_EXECUTOR | local (or ``dask``, a Dask scheduler address, an entry-point name) |
| dask_shared_url | GUILD_JUPYTER_DASK_SHARED_URL | none (an fsspec URL workers write run files to) |
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from guild_jupyter.errors import GuildError

_ENV = {
    "max_concurrent_runs": "GUILD_JUPYTER_MAX_RUNS",
    "stop_grace_seconds": "GUILD_JUPYTER_STOP_GRACE",
    "sample_interval": "GUILD_JUPYTER_SAMPLE_INTERVAL",
    "max_cpu_percent": "GUILD_JUPYTER_MAX_CPU",
    "max_memory_percent": "GUILD_JUPYTER_MAX_MEMORY",
    "max_gpu_percent": "GUILD_JUPYTER_MAX_GPU",
    "retry_delay": "GUILD_JUPYTER_RETRY_DELAY",
    "executor": "GUILD_JUPYTER_EXECUTOR",
    "dask_shared_url": "GUILD_JUPYTER_DASK_SHARED_URL",
}


class Config:
    DEFAULTS: dict[str, Any] = {
        "max_concurrent_runs": os.cpu_count() or 2,
        "stop_grace_seconds": 10.0,
        "sample_interval": 5.0,
        "max_cpu_percent": None,
        "max_memory_percent": None,
        "max_gpu_percent": None,
        "retry_delay": 1.0,
        "sourcecode_max_file_size": 1024 * 1024,
        "sourcecode_max_files": 100,
        "executor": "local",
        "dask_shared_url": None,
    }
    INTEGERS = frozenset(
        {"max_concurrent_runs", "sourcecode_max_file_size", "sourcecode_max_files"}
    )
    STRINGS = frozenset({"executor", "dask_shared_url"})

    def __init__(self, **values: Any) -> None:
        for name, default in self.DEFAULTS.items():
            setattr(self, name, values.get(name, default))

    max_concurrent_runs: int
    stop_grace_seconds: float
    sample_interval: float
    max_cpu_percent: float | None
    max_memory_percent: float | None
    max_gpu_percent: float | None
    retry_delay: float
    sourcecode_max_file_size: int
    sourcecode_max_files: int
    executor: str
    dask_shared_url: str | None

    @classmethod
    def load(cls, home: Path) -> Config:
        values: dict[str, Any] = {}
        path = home / "config.yaml"
        if path.exists():
            import yaml

            try:
                data = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as e:
                line = getattr(getattr(e, "problem_mark", None), "line", None)
                where = f" (line {line + 1})" if line is not None else ""
                raise GuildError(f"malformed {path}{where}: {getattr(e, 'problem', e)}") from None
            if not isinstance(data, dict):
                raise GuildError(f"malformed {path}: expected a mapping of settings")
            values.update(data)
        for name, var in _ENV.items():
            if os.environ.get(var):
                values[name] = os.environ[var]
        out = cls()
        for name, raw in values.items():
            if name not in cls.DEFAULTS:
                raise GuildError(
                    f"unknown setting {name!r} in {path} (known: {', '.join(sorted(cls.DEFAULTS))})"
                )
            if name in cls.STRINGS:
                if raw is None and cls.DEFAULTS[name] is None:
                    setattr(out, name, None)
                    continue
                if not isinstance(raw, str) or not raw.strip():
                    raise GuildError(f"setting {name!r} expects a name, got {raw!r}")
                setattr(out, name, raw.strip())
                continue
            kind = int if name in cls.INTEGERS else float
            try:
                setattr(out, name, None if raw is None else kind(raw))
            except (TypeError, ValueError):
                raise GuildError(f"setting {name!r} expects a number, got {raw!r}") from None
        if out.max_concurrent_runs < 1:
            raise GuildError("setting 'max_concurrent_runs' must be at least 1")
        return out
