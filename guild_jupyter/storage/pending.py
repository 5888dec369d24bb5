"""Write-behind recording for runs that execute in this process (``--inline`` cells).

An inline cell usually ends within a millisecond or two, and writing a ``running``
record first and the final one after costs more than the 2 ms an inline run may
add. So a :class:`PendingRun` keeps the record and the output lines in memory and
writes the run once, when either happens first:

- the run ends: the record is written already ended, with its output and the
  scalar points still queued (one folder renamed into place, one index
  transaction);
- the run has lasted :data:`WRITE_BEHIND` seconds: the scalar flusher thread
  writes it as ``running`` (so the sidebar, ``runs()`` and reconciliation see a
  long cell at once), and from then on lines are written through as they come;
- something needs the run's directory (the flusher writing ``log()`` points,
  ``checkpoint()``, ``--outputs``, the recorder's ``meta_dir``).

What is at stake if the kernel dies in that window is what ``log()`` already
accepts: at most one flush interval of a run nobody else has seen yet. Once the
cell has ended, its run is on disk (in the page cache) before the magic returns:
the final write is not handed to a thread, so a kill -9 right after a cell never
loses a run whose result the user saw (and a thread would be starved of the GIL
while the next cell runs Python).

The write is staged: record, output and scalars go into a folder with a hidden
name (``runs/.spares/<pid>-<n>-<host>``, skipped by every listing and rebuild),
renamed to ``runs/<id>`` once complete, so a reader sees the whole run or nothing.
Creating directories and files is the costly and erratic part of that write on a
busy ext4 disk (0.05-1 ms each), so :class:`SpareDirs` makes the folders, with
their files empty, ahead of need on the flusher's thread: the cell itself writes
into existing files and renames one folder.
"""

from __future__ import annotations

import atexit
import itertools
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from guild_jupyter.model.status import RunStatus
from guild_jupyter.storage.layout import META_DIR, OUTPUT, OUTPUT_INDEX, RUN_JSON, SCALARS_DIR
from guild_jupyter.storage.output import OutputWriter, write_all, write_new_output
from guild_jupyter.tracking.scalar_writer import FLUSH_INTERVAL, ScalarBatch, ScalarWriter, flusher

if TYPE_CHECKING:
    from guild_jupyter.model.run import Run
    from guild_jupyter.storage.store import RunStore

WRITE_BEHIND = FLUSH_INTERVAL / 2  # written by the first flusher tick after this age
SPARES = 2  # folders kept ready per store and process
SPARES_DIR = ".spares"  # in runs/: a hidden name, so no listing takes it for a run
# made empty in a spare (writing an existing file is about half the cost of creating one)
SPARE_FILES = (RUN_JSON, OUTPUT, OUTPUT_INDEX)


class PendingRun:
    """A run recorded write-behind; also the recorder's output writer.

    ``flush`` is called by the scalar flusher's thread (it registers as a writer).
    """

    def __init__(self, store: RunStore, run: Run) -> None:
        self.store = store
        self.run = run
        self.meta_dir = os.path.join(store.runs_dir, run.id, META_DIR)
        self._lines: list[tuple[str, int, float]] = []
        self._writer: OutputWriter | None = None
        self._lock = threading.Lock()
        self.path = self.meta_dir  # what the flusher names in its error log
        flusher.register(self)

    # the recorder's output writer --------------------------------------------
    def write_line(self, text: str, stream: int, t: float) -> None:
        if self._writer is not None:
            self._writer.write_line(text, stream, t)
            return
        with self._lock:
            if self._writer is None:
                self._lines.append((text, stream, t))
                return
        self._writer.write_line(text, stream, t)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    # writing -----------------------------------------------------------------
    def flush(self) -> int:
        """The flusher's tick: write a run that has been going for a while."""
        if self._writer is None and time.time() - self.run.created >= WRITE_BEHIND:
            self.materialize()
        return 0

    def materialize(self) -> str:
        """Write the run as it is now (idempotent); returns its ``.run`` directory."""
        with self._lock:
            if self._writer is None:
                self._write_locked()
        return self.meta_dir

    def finish(self, status: RunStatus, scalars: ScalarWriter | None = None, **attempt: Any) -> Run:
        """End the run: one write of the ended record if nothing was written yet, with
        the points still queued in ``scalars`` (the run's scalar writer, if it has one)."""
        flusher.unregister(self)
        # taken before the lock: the flusher holds the writer's lock while it waits for ours
        batch = scalars.take() if scalars is not None else None
        with self._lock:
            if self._writer is None:
                a = self.run.attempt
                a.status = a.status.check_transition(status)
                a.stopped = time.time()
                for name, value in attempt.items():
                    setattr(a, name, value)
                try:
                    self._write_locked(batch, scalars)
                except BaseException:
                    if batch is not None:
                        scalars.put_back(batch)  # type: ignore[union-attr]
                    raise
                self._writer.close()  # type: ignore[union-attr]
                return self.run
        if batch is not None:  # written meanwhile (a long cell): the points go the usual way
            scalars.put_back(batch)  # type: ignore[union-attr]
        if scalars is not None:
            scalars.flush()  # before the status: a reader of an ended run sees all its points
        self._writer.close()
        return self.store.set_status(self.run.id, status, **attempt)

    def _write_locked(
        self, batch: ScalarBatch | None = None, scalars: ScalarWriter | None = None
    ) -> None:
        staged = spare_dirs(self.store).take()
        try:
            meta = os.path.join(staged, META_DIR)
            if self._lines:
                write_new_output(meta, self._lines)
            if batch is not None:
                _write_scalars(meta, scalars.path.name, batch.text)  # type: ignore[union-attr]
            self.store.add_run(self.run, staged=staged, points=batch.points if batch else None)
        except BaseException:
            if os.path.exists(staged):  # not published: no half-written spare left behind
                _remove(staged)
            raise
        self._lines = []
        self._writer = OutputWriter(self.meta_dir)  # later lines are appended
        flusher.wake()  # a new spare, made between cells rather than during this write


def _write_scalars(meta: str, name: str, text: str) -> None:
    folder = os.path.join(meta, SCALARS_DIR)
    if not os.path.isdir(folder):  # (a spare has it)
        os.mkdir(folder)
    fd = os.open(os.path.join(folder, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        write_all(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


class SpareDirs:
    """Staging folders (``runs/.spares/<pid>-<n>-<host>/.run/``) for one store, made
    ahead with empty ``run.json``, ``output`` and ``output.index`` files and an empty
    ``scalars/`` folder in them (a run without output or scalars keeps those, empty:
    a ``mkdir`` is the one operation that can take a millisecond on a busy disk).

    The flusher's thread keeps :data:`SPARES` ready (it calls ``flush``, and is woken
    after each staged write); ``take`` hands one out, or makes one at once when none
    is ready. A process that ends normally removes its spares; those of a killed one
    (at most :data:`SPARES` folders of empty files, which nothing lists) are removed
    by the next process of the same host that makes spares in the store. A forked
    child makes its own (``_forget_spares_in_child``).
    """

    def __init__(self, runs_dir: str) -> None:
        self.folder = os.path.join(runs_dir, SPARES_DIR)
        self.path = self.folder  # what the flusher names in its error log
        self._tidied = False
        self._host = os.uname().nodename.replace("/", "_")  # (a store on a shared disk)
        self._pid = os.getpid()
        self._serial = itertools.count(1)
        self._ready: list[str] = []
        self._lock = threading.Lock()
        self._refill = threading.RLock()  # held while the flusher makes spares
        self._closed = False
        atexit.register(self.close)
        flusher.register(self)  # type: ignore[arg-type]

    def take(self) -> str:
        with self._lock:
            staged = self._ready.pop() if self._ready else None
        return staged if staged is not None else self._make()

    def flush(self) -> int:
        """The flusher's tick: top the spares up."""
        if self._closed or len(self._ready) >= SPARES:
            return 0
        with self._refill:
            try:
                if not self._tidied:
                    self._tidied = True
                    self._remove_dead()
                while not self._closed and len(self._ready) < SPARES:
                    staged = self._make(SPARE_FILES)
                    with self._lock:
                        self._ready.append(staged)
            except OSError:  # e.g. the store's folder is gone: runs make their own from now on
                self.close()
        return 0

    def _make(self, files: tuple[str, ...] = ()) -> str:
        staged = os.path.join(self.folder, f"{self._pid}-{next(self._serial)}-{self._host}")
        meta = os.path.join(staged, META_DIR)
        try:
            os.mkdir(staged)
        except FileNotFoundError:  # the first spare of this store
            os.makedirs(self.folder, exist_ok=True)
            os.mkdir(staged)
        try:
            os.mkdir(meta)
            if files:
                os.mkdir(os.path.join(meta, SCALARS_DIR))
            for name in files:
                os.close(os.open(os.path.join(meta, name), os.O_WRONLY | os.O_CREAT, 0o644))
        except BaseException:
            _remove(staged)
            raise
        return staged

    def _remove_dead(self) -> None:
        """Remove the spares of processes that are gone (killed: no exit to remove them)."""
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return
        for name in names:
            pid, _, rest = name.partition("-")
            if (pid.isdigit() and rest.partition("-")[2] == self._host
                    and int(pid) != self._pid and not _alive(int(pid))):
                _remove(os.path.join(self.folder, name))

    def close(self) -> None:
        flusher.unregister(self)  # type: ignore[arg-type]
        refilling = self._refill.acquire(timeout=2)  # (at exit: a spare being made is done first)
        try:
            with self._lock:
                self._closed = True
                ready, self._ready = self._ready, []
                if self._pid != os.getpid():
                    return
            for staged in ready:
                _remove(staged)
        finally:
            if refilling:
                self._refill.release()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True  # (or a reused pid: its spares wait for a later process)


def _remove(staged: str) -> None:
    """Remove a spare nobody used, or a staged run that was not published."""
    import shutil  # (only on exit or after a failed write)

    shutil.rmtree(staged, ignore_errors=True)


_spares: dict[str, SpareDirs] = {}
_spares_lock = threading.Lock()


def _forget_spares_in_child() -> None:
    """A forked child does not use (or remove) its parent's spares; its locks may have
    been held by a thread that does not exist in the child."""
    global _spares_lock
    for spares in _spares.values():
        spares._closed, spares._ready = True, []
        spares._lock, spares._refill = threading.Lock(), threading.RLock()
    _spares.clear()
    _spares_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_spares_in_child)


def spare_dirs(store: RunStore) -> SpareDirs:
    key = str(store.runs_dir)
    spares = _spares.get(key)
    if spares is None:
        with _spares_lock:
            spares = _spares.get(key)
            if spares is None:
                spares = _spares[key] = SpareDirs(key)
    return spares
