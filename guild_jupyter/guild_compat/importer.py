"""``import-guild``: Guild AI runs into this project's store.

Each Guild run keeps its id, op name, flags, label, tags, timestamps, status,
output (with Guild's per-line times), scalars and the files it wrote. Statuses:
Guild's ``completed``/``error``/``terminated`` become ``completed``/``failed``/
``cancelled``; runs still ``running``/``pending``/``staged`` in Guild are skipped
(import again when they end). Imported runs carry ``source["imported"] == "guild"``,
so pickled values in them are never loaded without an explicit opt-in.

Scalars come from the run's TensorBoard event files (read by :mod:`.tfevents`,
no TensorFlow needed); a run without event files gets its scalars from its
output with Guild's default output-scalar patterns.

Idempotent: a run whose id is already in the store (live or deleted) is skipped.
Read-only on the Guild side: files are only opened for reading.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from guild_jupyter.errors import GuildError, RunNotFound
from guild_jupyter.guild_compat.guild_attrs import GuildRunDir, default_guild_home, iter_guild_runs
from guild_jupyter.guild_compat.tfevents import read_scalars
from guild_jupyter.model.status import RunStatus
from guild_jupyter.storage import layout

STATUS_MAP = {
    "completed": RunStatus.COMPLETED,
    "error": RunStatus.FAILED,
    "terminated": RunStatus.CANCELLED,
}
KIND_MAP = {"guildfile": "guildfile", "script": "script", "func": "function"}


class ImportResult:
    def __init__(self) -> None:
        self.imported: list[str] = []
        self.existing: list[str] = []
        self.skipped: dict[str, str] = {}  # id -> why

    def summary(self) -> str:
        text = (
            f"imported {len(self.imported)} run(s), {len(self.existing)} already present, "
            f"{len(self.skipped)} skipped"
        )
        return text + "".join(f"\n  skipped {i[:8]}: {why}" for i, why in self.skipped.items())


def import_guild(
    store: Any,
    guild_home: str | os.PathLike[str] | None = None,
    *,
    echo: Callable[[str], None] | None = None,
) -> ImportResult:
    home = Path(guild_home).expanduser() if guild_home else default_guild_home()
    if not (home / "runs").is_dir():
        raise GuildError(f"no Guild AI runs in {home} (expected {home / 'runs'})")
    if home.resolve() == Path(store.home).resolve():
        raise GuildError(f"{home} is this project's own store, not a Guild home")
    result = ImportResult()
    for grun in iter_guild_runs(home):
        try:
            store.resolve_id(grun.id, deleted=None)
        except RunNotFound:
            pass
        else:
            result.existing.append(grun.id)
            continue
        try:
            why = import_run(store, grun, home)
        except Exception as e:  # a corrupt Guild run must not stop the others
            why = f"unreadable: {e}"
        if why:
            result.skipped[grun.id] = why
        else:
            result.imported.append(grun.id)
            if echo:
                echo(f"imported {grun.id[:8]} {grun.opref()['name']}")
    return result


def import_run(store: Any, grun: GuildRunDir, home: Path) -> str | None:
    """Import one run; returns why it was skipped, or None."""
    guild_status = grun.status()
    if guild_status not in STATUS_MAP:
        return f"{guild_status} in Guild"
    opref = grun.opref()
    flags = grun.attr("flags", {}) or {}
    if not isinstance(flags, dict):
        return "its flags attribute is not a map"
    tags = grun.attr("tags", []) or []
    if isinstance(tags, str):
        tags = [tags]
    label = grun.attr("label", "") or ""
    started = _seconds(grun.attr("started"))
    stopped = _seconds(grun.attr("stopped"))
    exit_status = grun.attr("exit_status")
    source = {
        "imported": "guild",
        "guild_home": str(home.absolute()),
        "guild_run_dir": str(grun.path.absolute()),
        "opref": opref["text"],
        "cmd": grun.attr("cmd"),
        "marked": bool(grun.attr("marked", False)),
        "guild_status": guild_status,
    }
    if opref["type"] == "guildfile":
        source["guildfile"] = opref["path"]
    run = store.create_run(
        opref["name"],
        kind=KIND_MAP.get(opref["type"], opref["type"] or "script"),
        flags=flags,
        label=str(label),
        tags=[str(t) for t in tags],
        source=source,
        run_id=grun.id,
    )
    try:
        _copy_files(grun, Path(store.run_dir(run.id)))
        last_t = _import_output_and_scalars(store, grun, run.id)
        status = STATUS_MAP[guild_status]

        def finish(r: Any) -> None:
            if started is not None:
                r.created = started
            a = r.attempt
            a.status = status
            a.started = started
            a.stopped = stopped if stopped is not None else last_t
            a.exit_code = exit_status if isinstance(exit_status, int) else None
            if status is RunStatus.FAILED:
                a.reason = (
                    f"exited with {exit_status} (Guild: error)"
                    if isinstance(exit_status, int)
                    else "Guild: error (no exit status recorded)"
                )
            elif status is RunStatus.CANCELLED:
                a.reason = f"terminated in Guild (exit status {exit_status})"

        store.update_run(run.id, finish)
    except BaseException:
        store.delete(run.id)  # all or nothing: a retry imports it again
        store.purge(run.id)
        raise
    return None


def _seconds(micros: Any) -> float | None:
    return (
        micros / 1e6 if isinstance(micros, (int, float)) and not isinstance(micros, bool) else None
    )


def _import_output_and_scalars(store: Any, grun: GuildRunDir, run_id: str) -> float | None:
    from guild_jupyter.tracking.output_scalars import OutputScalarParser

    out = store.output_writer(run_id)
    events = grun.event_files()
    parser = None if events else OutputScalarParser()
    scalars = store.scalar_writer(run_id, "guild-import")
    last_t = None
    fallback_t = _seconds(grun.attr("stopped")) or _seconds(grun.attr("started"))
    try:
        for line, stream, t in grun.output_lines():
            out.write_line(line, stream, t)
            last_t = t if t is not None else last_t
            if parser is not None:
                for key, step, value in parser.parse(line):
                    scalars.add(key, step, value, t)
        for path in events:
            for tag, step, value, wall in read_scalars(path):
                # Guild 0.9 writes wall_time 0 in its events: use the line times then
                scalars.add(tag, step, value, wall if wall > 0 else (last_t or fallback_t))
    finally:
        out.close()
        scalars.close()
    return last_t


def _source_files(grun: GuildRunDir) -> set[str]:
    """Paths Guild's ``.guild/manifest`` lists as source code (``s PATH DIGEST SRC``):
    Guild 0.9 copies the code into the run directory itself."""
    import shlex

    out = set()
    try:
        text = (grun.meta / "manifest").read_text(encoding="utf-8")
    except OSError:
        return out
    for line in text.splitlines():
        try:
            parts = shlex.split(line)
        except ValueError:
            continue
        if len(parts) >= 2 and parts[0] == "s":
            out.add(parts[1])
    return out


def _copy_files(grun: GuildRunDir, dest: Path) -> None:
    """The files the run wrote (its artifacts) into the run directory, and the source
    code (from the manifest, or an older ``.guild/sourcecode``) into the snapshot.
    Symlinks (Guild's resolved dependencies) are not followed."""
    source = _source_files(grun)
    snapshot_dir = dest / layout.META_DIR / layout.SOURCECODE
    for root, dirs, files in os.walk(grun.path):
        rel = Path(root).relative_to(grun.path)
        if rel.parts[:1] == (".guild",):
            dirs[:] = []
            continue
        dirs[:] = [d for d in dirs if not (Path(root) / d).is_symlink() and d != ".guild"]
        for name in files:
            src = Path(root) / name
            if src.is_symlink():
                continue
            rel_path = (rel / name).as_posix()
            target = snapshot_dir / rel_path if rel_path in source else dest / rel / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
    snapshot = grun.meta / "sourcecode"
    if snapshot.is_dir():
        shutil.copytree(
            snapshot,
            snapshot_dir,
            symlinks=True,
            dirs_exist_ok=True,
        )
