"""Reading a Guild AI 0.9 run directory, without Guild and without writing to it.

Layout (checked against runs Guild 0.9.0 made, see scripts/make_guild_fixture.sh):
``runs/<id>/.guild/opref``, ``.guild/attrs/<name>`` (one YAML value per file;
``started``/``stopped`` in integer microseconds), ``.guild/output`` plus
``.guild/output.index`` (one ``struct "!QB"`` record per line: milliseconds,
stream), TensorBoard event files ``.guild/events.out.tfevents.*``.

Every file is opened read-only; nothing here creates, locks or touches a file.
"""

from __future__ import annotations

import os
import shlex
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from guild_jupyter.orchestration.process_info import pid_exists

_INDEX = struct.Struct("!QB")


class GuildRunDir:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.meta = self.path / ".guild"
        self.id = self.path.name

    @staticmethod
    def is_run(path: Path) -> bool:
        return (path / ".guild" / "opref").is_file()

    # attributes --------------------------------------------------------------
    def attr(self, name: str, default: Any = None) -> Any:
        p = self.meta / "attrs" / name
        try:
            with open(p, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return default
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            return text.strip()
        return default if value is None else value

    def opref(self) -> dict[str, str]:
        """``guildfile:<path> <digest> <model> <op>`` -> its parts; the op name as
        Guild shows it (``model:op`` when the model has a name)."""
        text = (self.meta / "opref").read_text(encoding="utf-8").strip()
        parts = shlex.split(text)
        while len(parts) < 4:
            parts.append("")
        pkg_type, _, pkg_name = parts[0].partition(":")
        model, op = parts[2], parts[3]
        return {
            "type": pkg_type,
            "path": pkg_name,
            "digest": parts[1],
            "model": model,
            "op": op,
            "name": f"{model}:{op}" if model else op,
            "text": text,
        }

    def status(self) -> str:
        """Guild's status: completed, error, terminated, running, pending, staged."""
        if (self.meta / "LOCK.remote").exists():
            return "running"
        if (self.meta / "PENDING").exists():
            return "pending"
        if (self.meta / "STAGED").exists():
            return "staged"
        exit_status = self.attr("exit_status")
        if isinstance(exit_status, int):
            if exit_status == 0:
                return "completed"
            return "terminated" if exit_status < 0 else "error"
        pid = _lock_pid(self.meta / "LOCK")
        if pid is not None and pid_exists(pid):
            return "running"
        return "error"

    # output ------------------------------------------------------------------
    def output_lines(self) -> Iterator[tuple[str, int, float | None]]:
        """``(line, stream, time)`` per output line; time from output.index when present."""
        try:
            data = (self.meta / "output").read_bytes()
        except FileNotFoundError:
            return
        try:
            index = (self.meta / "output.index").read_bytes()
        except FileNotFoundError:
            index = b""
        records = [
            _INDEX.unpack_from(index, i)
            for i in range(0, len(index) - _INDEX.size + 1, _INDEX.size)
        ]
        lines = data.decode("utf-8", "replace").splitlines()
        for i, line in enumerate(lines):
            if i < len(records):
                ms, stream = records[i]
                yield line, int(stream), ms / 1000.0
            else:
                yield line, 0, None

    def event_files(self) -> list[Path]:
        return sorted(p for p in self.meta.rglob("events.out.tfevents.*") if p.is_file())


def _lock_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def iter_guild_runs(guild_home: str | os.PathLike[str]) -> Iterator[GuildRunDir]:
    runs = Path(guild_home) / "runs"
    if not runs.is_dir():
        return
    for p in sorted(runs.iterdir()):
        if p.is_dir() and GuildRunDir.is_run(p):
            yield GuildRunDir(p)


def default_guild_home() -> Path:
    """Guild's rule: ``$GUILD_HOME``, else ``.guild`` in an active venv/conda env,
    else the nearest ``.guild`` up from the cwd, else ``~/.guild``."""
    env = os.environ.get("GUILD_HOME")
    if env:
        return Path(env).expanduser()
    for var in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        prefix = os.environ.get(var)
        if prefix and (Path(prefix) / ".guild").is_dir():
            return Path(prefix) / ".guild"
    here = Path.cwd()
    for d in (here, *here.parents):
        if (d / ".guild" / "runs").is_dir():
            return d / ".guild"
    return Path.home() / ".guild"
