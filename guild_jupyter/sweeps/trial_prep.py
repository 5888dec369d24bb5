"""Preparing sweep trials: one source snapshot per sweep, linked into every trial.

A trial's snapshot must be a full snapshot (the code that ran, readable after
the sweep is deleted), but copying the project for each of 1,000 trials is
most of a trivial trial's bookkeeping. So the sweep snapshots the source once
(``<sweep>/.run/sourcecode/``, the code the sweep ran) and each trial's
snapshot holds hard links to those files, plus its own copy of the one file
its flag values are written into (the script, or ``cell.py``). A hard link is
a full copy as far as any reader is concerned; deleting the sweep leaves the
trials' files in place. Snapshots are never written after they are made, so
sharing the file's inode shares nothing mutable.

Operations other than scripts and cells are prepared by their own ``prepare``.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

from guild_jupyter.model.run import Run
from guild_jupyter.orchestration.launch import LaunchSpec, flag_env
from guild_jupyter.storage import layout
from guild_jupyter.storage.store import RunStore


class TrialPreparer:
    """Makes each trial's snapshot and launch spec from the sweep's shared snapshot."""

    def __init__(self, store: RunStore, sweep_id: str, op: Any, config: Any) -> None:
        self.store, self.op, self.config = store, op, config
        self.shared = os.path.join(store.meta_dir(sweep_id), layout.SOURCECODE)
        self.files: list[str] | None = None  # relative paths in the shared snapshot
        self.kind = _kind(op)

    def prepare(self, run: Run) -> LaunchSpec:
        if self.kind is None:
            return self.op.prepare(run, self.store, self.config)
        if self.files is None:
            self.files = self._snapshot_once()
        dest = os.path.join(self.store.runs_dir, run.id, layout.META_DIR, layout.SOURCECODE)
        own = self._own_file()
        _link_tree(self.shared, dest, [f for f in self.files if f != own])
        if self.kind == "script":
            return self._script_spec(run, dest)
        return self._cell_spec(run, dest)

    # the shared snapshot, made once ------------------------------------------------
    def _snapshot_once(self) -> list[str]:
        if os.path.isdir(self.shared):  # a resumed sweep: its snapshot is already there
            return _walk(self.shared)
        if self.kind == "script":
            from guild_jupyter.orchestration.sourcecode import SourceSpec, copy_snapshot

            op = self.op
            spec = SourceSpec(
                op.path.parent,
                max_file_size=self.config.sourcecode_max_file_size,
                max_files=self.config.sourcecode_max_files,
                always=[op.path.name],
            )
            return copy_snapshot(spec, _Path(self.shared), skip=[self.store.home])
        from guild_jupyter.notebook.cell_op import write_snapshot

        write_snapshot(self.shared, self.op.source, self.op)
        return _walk(self.shared)

    def _own_file(self) -> str | None:
        """The file each trial writes for itself (its flag values are in it)."""
        if self.kind == "cell":
            return "cell.py"
        return self.op.path.name if self.op.flags.dest == "globals" else None

    # launch specs, as the operations' own ``prepare`` makes them -------------------------
    def _script_spec(self, run: Run, dest: str) -> LaunchSpec:
        from guild_jupyter.experiment.script_flags import apply_globals, argv_for

        op = self.op
        script = os.path.join(dest, op.path.name)
        argv = [sys.executable, script]
        if op.flags.dest == "globals":
            write_new(script, apply_globals(op.source, op.flags, run.flags))
        else:
            argv += argv_for(op.flags, run.flags)
        return LaunchSpec(argv=argv, env=flag_env(run.flags), project_dir=str(op.path.parent))

    def _cell_spec(self, run: Run, dest: str) -> LaunchSpec:
        from guild_jupyter.experiment.script_flags import apply_globals
        from guild_jupyter.notebook import cell_runner

        op = self.op
        write_new(os.path.join(dest, "cell.py"), apply_globals(op.source, op.flags, run.flags))
        argv = cell_runner.launch_argv(dest, op.notebook_dir, op.outputs)
        return LaunchSpec(argv=argv, env=flag_env(run.flags), project_dir=op.notebook_dir)


def _kind(op: Any) -> str | None:
    from guild_jupyter.experiment.script_op import ScriptOperation

    if type(op) is ScriptOperation:
        return "script"
    if getattr(op, "kind", None) == "cell" and hasattr(op, "notebook_dir"):
        return "cell"
    return None


def _Path(p: str):  # noqa: N802 - copy_snapshot takes a pathlib.Path
    from pathlib import Path

    return Path(p)


def _walk(root: str) -> list[str]:
    out = []
    for dirpath, _, filenames in os.walk(root):
        out += [os.path.relpath(os.path.join(dirpath, n), root) for n in filenames]
    return sorted(out)


def _link_tree(src: str, dest: str, files: list[str]) -> None:
    """Hard-link ``files`` from ``src`` into ``dest`` (a copy where links are not possible)."""
    os.makedirs(dest)
    made = {dest}
    for rel in files:
        target = os.path.join(dest, rel)
        parent = os.path.dirname(target)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        try:
            os.link(os.path.join(src, rel), target)
        except OSError:
            shutil.copy2(os.path.join(src, rel), target)


def write_new(path: str, text: str) -> None:
    """A file in a folder made just now: no reader can see it half-written before the run starts."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
