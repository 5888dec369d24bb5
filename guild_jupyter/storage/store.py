"""The embedded run store: a folder of run directories plus an SQLite index.

Run directories are the truth; every change is written there first (atomic
``run.json`` replace under a per-run lock), then mirrored into the index.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from guild_jupyter.errors import GuildError, RunNotFound
from guild_jupyter.events import EventBus, RunCreated, RunDeleted, ScalarsLogged, StatusChanged
from guild_jupyter.model.run import Attempt, CorruptRunError, Run, new_run, unique_tags
from guild_jupyter.model.status import RunStatus
from guild_jupyter.storage import layout
from guild_jupyter.storage.base import BaseRunStore
from guild_jupyter.storage.index import RunIndex
from guild_jupyter.storage.output import OutputWriter, read_complete_lines, read_output
from guild_jupyter.storage.query import RunFilter
from guild_jupyter.storage.scalar_files import Summary, SummaryBuilder, iter_points, summarize
from guild_jupyter.tracking.scalar_writer import ScalarWriter


class CorruptRunWarning(UserWarning):
    """A run directory was skipped because its record cannot be read."""


class RunStore(BaseRunStore):
    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        progress: Callable[[str, int], Any] | None = None,
    ) -> None:
        self.home = Path(home).expanduser().absolute() if home else layout.default_home()
        self.runs_dir = self.home / "runs"
        self.trash_dir = self.home / "trash" / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.trash_dir.mkdir(parents=True, exist_ok=True)
        if progress is None:
            from guild_jupyter.storage.progress import console_progress as progress
        self.events = EventBus()
        self.index = RunIndex(self.home / "index.db", self._scan, self._count, progress)

    def __repr__(self) -> str:
        return f"RunStore({str(self.home)!r})"

    # paths -------------------------------------------------------------------
    def run_dir(self, run_id: str) -> str:
        # plain strings, not pathlib: every record read and write of a run comes through here
        live = os.path.join(self.runs_dir, run_id)
        if os.path.exists(live):
            return live
        trashed = os.path.join(self.trash_dir, run_id)
        if os.path.exists(trashed):
            return trashed
        raise RunNotFound(f"no run directory for {run_id}")

    def meta_dir(self, run_id: str) -> str:
        return os.path.join(self.run_dir(run_id), layout.META_DIR)

    # records -----------------------------------------------------------------
    def create_run(
        self,
        op: str,
        *,
        kind: str,
        flags: dict[str, Any],
        label: str = "",
        tags: Iterable[str] = (),
        sweep: str | None = None,
        source: dict[str, Any] | None = None,
        run_id: str | None = None,
        running: dict[str, Any] | None = None,
    ) -> Run:
        """Record a new run, ``pending``; with ``running`` (attempt fields such as
        ``pid``) it is created already running, saving a write for in-process runs."""
        run = new_run(op, kind=kind, flags=flags, label=label, tags=tags, sweep=sweep,
                      source=source, run_id=run_id, running=running)
        return self.add_run(run)

    def add_run(self, run: Run, staged: str | None = None, points: list | None = None) -> Run:
        """Write a run built in memory (by :func:`new_run`, possibly already ended) in one go.

        ``staged``: a folder under ``runs/`` that no listing reads (``runs/.spares/``) whose
        ``.run/`` holds the run's other files; the record is written there and the folder
        renamed to the run's id, so the run appears whole (see ``storage.pending``).
        ``points``: the scalar points among those files, indexed with the run's row."""
        run_dir = os.path.join(self.runs_dir, run.id)
        if staged is None:
            meta = os.path.join(run_dir, layout.META_DIR)
            os.mkdir(run_dir)  # ``runs/`` exists: two mkdirs, not makedirs' look-ups
            os.mkdir(meta)
            self._write_record(run, meta)
        else:
            record = os.path.join(staged, layout.META_DIR, layout.RUN_JSON)
            layout.write_new_json(record, run.to_dict())
            self.index.ensure_open()
            os.rename(staged, run_dir)
        self.index.upsert_run(run, summarize(points) if points else None)
        run._store = self
        self.events.emit(RunCreated(run.id, op=run.op))
        if points:
            self.events.emit(ScalarsLogged(run.id, points=tuple(points)))
        if run.status is not RunStatus.PENDING:
            self.events.emit(StatusChanged(run.id, status=run.status.value, attempt=run.attempt.n,
                                           reason=run.reason))
        return run

    def _write_record(self, run: Run, meta: str | None = None) -> None:
        layout.atomic_write_json(
            os.path.join(meta or self.meta_dir(run.id), layout.RUN_JSON), run.to_dict()
        )

    def load_run(self, run_id: str) -> Run:
        meta = self.meta_dir(run_id)
        run = _read_record(meta)
        run.deleted = meta.startswith(str(self.trash_dir))
        run._store = self
        return run

    @contextmanager
    def _run_lock(self, run_id: str) -> Iterator[None]:
        """An exclusive flock on the run's ``.run`` directory itself: no lock file to create."""
        import fcntl

        fd = os.open(self.meta_dir(run_id), os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def update_run(
        self, run_id: str, change: Callable[[Run], None], *, status_only: bool = False
    ) -> Run:
        """``status_only``: ``change`` touches the attempts alone (the index updates less)."""
        with self._run_lock(run_id):
            run = self.load_run(run_id)
            change(run)
            self._write_record(run)
            if status_only:
                self.index.update_status(run)
            else:
                self.index.upsert_run(run)
        return run

    def set_status(self, run_id: str, status: RunStatus | str, *,
                   retry: dict[str, Any] | None = None, **attempt: Any) -> Run:
        """Move the current attempt to ``status``; illegal moves raise and change nothing.
        ``retry``: a next attempt (its fields) appended, pending, in the same write, so
        no reader takes a failure that will be retried for the run's end."""

        def change(run: Run) -> None:
            a = run.attempt
            new = a.status.check_transition(status)
            now = time.time()
            a.status = new
            if new is RunStatus.RUNNING:
                a.started = now
            elif new.terminal:
                a.stopped = now
            for name, value in attempt.items():
                if not hasattr(a, name):
                    raise AttributeError(f"attempts have no field {name!r}")
                setattr(a, name, value)
            if retry is not None:
                run.attempts.append(Attempt(a.n + 1, **retry))

        run = self.update_run(run_id, change, status_only=True)
        self.events.emit(
            StatusChanged(run_id, status=run.status.value, attempt=run.attempt.n, reason=run.reason)
        )
        return run

    def new_attempt(self, run_id: str, **attempt: Any) -> Run:
        """Start a new (pending) attempt of a finished run; earlier attempts stay as they were."""

        def change(run: Run) -> None:
            if not run.status.terminal:
                raise GuildError(
                    f"run {run.short_id} is {run.status.value}; only a finished run gets a new attempt"
                )
            run.attempts.append(Attempt(run.attempt.n + 1, **attempt))

        run = self.update_run(run_id, change)
        self.events.emit(StatusChanged(run_id, status=run.status.value, attempt=run.attempt.n))
        return run

    def set_label(self, run_id: str, label: str) -> Run:
        return self.update_run(run_id, lambda r: setattr(r, "label", label))

    def set_tags(self, run_id: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> Run:
        drop = set(remove)

        def change(run: Run) -> None:
            run.tags = [t for t in unique_tags([*run.tags, *add]) if t not in drop]

        return self.update_run(run_id, change)

    # references and listing ----------------------------------------------------
    def resolve(self, ref: str | int, *, deleted: bool | None = False) -> Run:
        """A full id, a unique id prefix, or an index (1 = newest), as in Guild."""
        return self.load_run(self.resolve_id(ref, deleted=deleted))

    def resolve_id(self, ref: str | int, *, deleted: bool | None = False) -> str:
        return self.index.resolve_id(ref, deleted=deleted)

    def list_rows(self, **filters: Any) -> list[dict[str, Any]]:
        """Index rows (fixed columns only), newest first: cheap, for listings."""
        f = RunFilter(**filters)
        sql, params = f.sql(
            "id, op, kind, status, created, started, stopped, label, tags, sweep, attempts, exit_code, reason, deleted"
        )
        cols, rows = self.index.query(sql, params)
        out = [dict(zip(cols, r)) for r in rows]
        for r in out:
            r["tags"] = json.loads(r["tags"]) if r["tags"] and r["tags"] != "[]" else []
        return out

    def list_runs(self, **filters: Any) -> list[Run]:
        return [self.load_run(r["id"]) for r in self.list_rows(**filters)]

    def runs_frame(self, **filters: Any):
        from guild_jupyter.storage.frames import runs_frame

        return runs_frame(self, RunFilter(**filters))

    def scalars_frame(self, run_ids: list[str] | None = None, keys: list[str] | None = None):
        from guild_jupyter.storage.frames import scalars_frame

        if run_ids is None:
            run_ids = [r["id"] for r in self.list_rows()]
        return scalars_frame(self, run_ids, keys)

    def iter_run_points(self, run_id: str):
        return iter_points(os.path.join(self.meta_dir(run_id), layout.SCALARS_DIR))

    # writers and readers ---------------------------------------------------------
    def output_writer(self, run_id: str) -> OutputWriter:
        return OutputWriter(self.meta_dir(run_id))

    def scalar_writer(self, run_id: str, source: str, meta_dir: str | None = None,
                      before_write: Callable[[], object] | None = None) -> ScalarWriter:
        path = os.path.join(meta_dir or self.meta_dir(run_id), layout.SCALARS_DIR, f"{source}.csv")

        def on_flush(summaries: dict[str, Summary], batch: list) -> None:
            self.index.merge_scalars(run_id, summaries)
            self.events.emit(ScalarsLogged(run_id, points=tuple(batch)))

        return ScalarWriter(path, on_flush, before_write)

    def read_output(self, run_id: str, offset: int = 0) -> str:
        return read_output(self.meta_dir(run_id), offset)

    def read_output_lines_from(self, run_id: str, offset: int = 0) -> tuple[str, int]:
        """Whole lines written after byte ``offset``, and the offset to continue from."""
        return read_complete_lines(self.meta_dir(run_id), offset)

    def list_files(self, run_id: str) -> list[str]:
        root = self.run_dir(run_id)
        out = []
        for dirpath, dirnames, filenames in os.walk(root):
            if dirpath == root and layout.META_DIR in dirnames:
                dirnames.remove(layout.META_DIR)
            for name in filenames:
                out.append(os.path.relpath(os.path.join(dirpath, name), root))
        return sorted(out)

    # deleting ------------------------------------------------------------------
    def delete(self, run_id: str) -> None:
        """Move a finished run to the trash (``restore`` brings it back)."""
        run = self.load_run(run_id)
        if run.deleted:
            raise GuildError(f"run {run.short_id} is already in the trash")
        if not run.status.terminal:
            raise GuildError(
                f"run {run.short_id} is {run.status.value}; stop it before deleting it"
            )
        os.replace(self.runs_dir / run_id, self.trash_dir / run_id)
        self.index.set_deleted(run_id, True)
        self.events.emit(RunDeleted(run_id))

    def restore(self, run_id: str) -> None:
        if not (self.trash_dir / run_id).exists():
            raise GuildError(f"run {run_id[:8]} is not in the trash")
        os.replace(self.trash_dir / run_id, self.runs_dir / run_id)
        self.index.set_deleted(run_id, False)
        self.events.emit(RunDeleted(run_id, restored=True))

    def purge(self, run_id: str) -> None:
        """Remove a trashed run for good."""
        path = self.trash_dir / run_id
        if not path.exists():
            raise GuildError(f"run {run_id[:8]} is not in the trash; delete it first")
        shutil.rmtree(path)
        self.index.remove(run_id)

    # the index as derived data ---------------------------------------------------
    def _run_dirs(self) -> Iterator[tuple[Path, bool]]:
        for base, deleted in ((self.runs_dir, False), (self.trash_dir, True)):
            try:
                names = os.listdir(base)
            except FileNotFoundError:
                continue
            for name in names:
                if not name.startswith("."):
                    yield base / name, deleted

    def _count(self) -> int:
        return sum(1 for _ in self._run_dirs())

    def _scan(self) -> Iterator[tuple[Run, dict[str, Summary]]]:
        for path, deleted in self._run_dirs():
            meta = path / layout.META_DIR
            try:
                run = _read_record(str(meta))
                if run.id != path.name:
                    raise CorruptRunError(
                        f"corrupt run metadata in {meta}: id {run.id} does not match its directory"
                    )
                run.deleted = deleted
                summaries = SummaryBuilder().extend(iter_points(meta / layout.SCALARS_DIR)).by_key
            except (CorruptRunError, OSError, UnicodeDecodeError) as e:
                warnings.warn(
                    CorruptRunWarning(f"skipping run directory {path}: {e}"), stacklevel=2
                )
                continue
            yield run, summaries

    def check(self, repair: bool = False) -> dict[str, Any]:
        """Compare the index with the run directories; ``repair`` rebuilds it."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CorruptRunWarning)
            on_disk = {run.id: run for run, _ in self._scan()}
        indexed = {r[0]: r[1] for r in self.index.execute("SELECT id, status FROM runs")}
        report = {
            "runs": len(on_disk),
            "corrupt": [
                str(w.message) for w in caught if issubclass(w.category, CorruptRunWarning)
            ],
            "missing_from_index": sorted(set(on_disk) - set(indexed)),
            "stale_in_index": sorted(set(indexed) - set(on_disk)),
            "status_mismatch": sorted(
                i for i, r in on_disk.items() if i in indexed and indexed[i] != r.status.value
            ),
            "repaired": False,
        }
        if repair:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CorruptRunWarning)
                self.index.rebuild(force=True)
            report["repaired"] = True
        return report


def _read_record(meta: str) -> Run:
    path = os.path.join(meta, layout.RUN_JSON)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise CorruptRunError(
            f"corrupt run directory {os.path.dirname(meta)}: no {layout.RUN_JSON}"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptRunError(f"corrupt run metadata in {path}: {e}") from None
    return Run.from_dict(data, where=path)
