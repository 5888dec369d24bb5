"""Write-behind recording for runs that execute in this process (``--inline`` cells).

An inline cell usually ends within a millisecond or two, and writing a ``running``
record first and the final one after costs more than the 2 ms an inline run may
add. So a :class:`PendingRun` keeps the record and the output lines in memory and
writes the run once, when either happens first:

- the run ends: the record is written already ended (one directory, one
  ``run.json``, one index row);
- the run has lasted :data:`WRITE_BEHIND` seconds: the scalar flusher thread
  writes it as ``running`` (so the sidebar, ``runs()`` and reconciliation see a
  long cell at once), and from then on lines are written through as they come;
- something needs the run's directory (``log()`` points being flushed,
  ``checkpoint()``, the recorder's ``meta_dir``).

What is at stake if the kernel dies in that window is what ``log()`` already
accepts: at most one flush interval of a run nobody else has seen yet.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any

from guild_jupyter.model.status import RunStatus
from guild_jupyter.storage.layout import META_DIR
from guild_jupyter.storage.output import OutputWriter
from guild_jupyter.tracking.scalar_writer import FLUSH_INTERVAL, flusher

if TYPE_CHECKING:
    from guild_jupyter.model.run import Run
    from guild_jupyter.storage.store import RunStore

WRITE_BEHIND = FLUSH_INTERVAL / 2  # written by the first flusher tick after this age


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

    def finish(self, status: RunStatus, **attempt: Any) -> Run:
        """End the run: one write of the ended record if nothing was written yet."""
        flusher.unregister(self)
        with self._lock:
            if self._writer is None:
                a = self.run.attempt
                a.status = a.status.check_transition(status)
                a.stopped = time.time()
                for name, value in attempt.items():
                    setattr(a, name, value)
                self._write_locked()
                self._writer.close()  # type: ignore[union-attr]
                return self.run
        self._writer.close()
        return self.store.set_status(self.run.id, status, **attempt)

    def _write_locked(self) -> None:
        self.store.add_run(self.run)
        writer = OutputWriter(self.meta_dir)
        if self._lines:
            writer.write_lines(self._lines)
            self._lines = []
        self._writer = writer
