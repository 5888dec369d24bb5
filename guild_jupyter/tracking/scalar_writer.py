"""Buffered scalar recording that never blocks the caller.

``add`` only appends to a deque (thread-safe, no I/O); a background thread
flushes every writer a few times a second to its append-only file, then merges
the batch's summary into the index. ``close`` and interpreter exit flush what
is left.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from pathlib import Path

from guild_jupyter.storage.scalar_files import Point, Summary, append_text, summarize

FLUSH_INTERVAL = float(os.environ.get("GUILD_JUPYTER_FLUSH_INTERVAL", "0.2"))
Entry = tuple[float, "int | None", dict[str, float]]  # one queued call: (time, step, values)


class ScalarWriter:
    """One writer process's scalar file, fed from any thread.

    The queue holds one ``(time, step, {key: value})`` entry per call; steps
    left to the writer are resolved when flushing, in call order, so the
    caller's side is a single ``deque.append``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        on_flush: Callable[[dict[str, Summary], list[Point]], None] | None = None,
        before_write: Callable[[], object] | None = None,
    ) -> None:
        self.path = Path(path)
        self._dir_made = False
        self._on_flush = on_flush
        self._before_write = before_write  # e.g. write a pending run's record first
        self._queue: deque[tuple[float, int | None, dict[str, float]]] = deque()
        self._flush_lock = threading.Lock()
        self._next_step: dict[str, int] = {}
        self.closed = False
        flusher.register(self)

    def add(self, key: str, step: int | None, value: float, t: float | None = None) -> None:
        """Queue one point; ``step=None`` continues this key's own series (0, 1, 2, ...)."""
        self._queue.append((time.time() if t is None else t, step, {key: value}))

    def add_many(self, step: int | None, values: dict[str, float], t: float) -> None:
        self._queue.append((t, step, values))

    def pending(self) -> int:
        return len(self._queue)

    def flush(self) -> int:
        """Write what is queued, in chunks; returns the number of points written."""
        written = 0
        with self._flush_lock:
            while self._queue:
                written += self._flush_chunk()
                time.sleep(0)  # let the training loop run between chunks
        return written

    def _flush_chunk(self) -> int:
        q = self._queue
        popleft = q.popleft
        entries = [popleft() for _ in range(min(len(q), CHUNK))]
        steps_before = dict(self._next_step)
        points, text = self._resolve(entries)
        try:
            if not self._dir_made:
                if self._before_write is not None:
                    self._before_write()
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._dir_made = True
            append_text(self.path, text)
        except BaseException:
            self._restore(entries, steps_before)  # kept for the next try
            raise
        if self._on_flush is not None:
            self._on_flush(summarize(points), points)
        return len(points)

    def _resolve(self, entries: list[Entry]) -> tuple[list[Point], str]:
        """Points with their steps (advancing each key's own series) and their file text."""
        nxt = self._next_step
        points: list[Point] = []
        lines: list[str] = []
        add_point, add_line = points.append, lines.append
        for t, step, values in entries:
            ts = repr(t)
            for key, value in values.items():
                s = nxt.get(key, 0) if step is None else step
                nxt[key] = s + 1
                add_point((key, s, value, t))
                add_line(f"{key},{s},{value!r},{ts}\n")
        return points, "".join(lines)

    def _restore(self, entries: list[Entry], steps_before: dict[str, int]) -> None:
        self._queue.extendleft(reversed(entries))
        self._next_step.clear()
        self._next_step.update(steps_before)

    def take(self) -> ScalarBatch | None:
        """Everything queued, resolved as a flush would, for a caller that writes it with
        something else (a write-behind run: with its record); ``put_back`` if that fails."""
        with self._flush_lock:
            q = self._queue
            if not q:
                return None
            steps_before = dict(self._next_step)
            entries = [q.popleft() for _ in range(len(q))]
            points, text = self._resolve(entries)
            return ScalarBatch(entries, steps_before, points, text)

    def put_back(self, batch: ScalarBatch) -> None:
        """Queue a taken batch again (the next flush writes it)."""
        with self._flush_lock:
            self._restore(batch.entries, batch.steps_before)

    def close(self) -> None:
        if self.closed:
            return
        self.flush()
        self.closed = True
        flusher.unregister(self)


class ScalarBatch:
    """Points taken from a writer's queue (see ``ScalarWriter.take``) and their file text."""

    __slots__ = ("entries", "steps_before", "points", "text")

    def __init__(
        self, entries: list[Entry], steps_before: dict[str, int], points: list[Point], text: str
    ) -> None:
        self.entries, self.steps_before = entries, steps_before
        self.points, self.text = points, text


CHUNK = 4000  # entries per write; bounds how long one flush holds the interpreter


class _Flusher:
    """One daemon thread per process flushing every live writer."""

    def __init__(self) -> None:
        self._writers: weakref.WeakSet[ScalarWriter] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def register(self, w: ScalarWriter) -> None:
        with self._lock:
            self._writers.add(w)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="guild-jupyter-flush", daemon=True
                )
                self._thread.start()

    def wake(self) -> None:
        """Run a flush pass now rather than at the next tick."""
        self._wake.set()

    def unregister(self, w: ScalarWriter) -> None:
        with self._lock:
            self._writers.discard(w)

    def _loop(self) -> None:
        while True:
            self._wake.wait(FLUSH_INTERVAL)
            self._wake.clear()
            self.flush_all()

    def flush_all(self) -> None:
        with self._lock:
            writers = list(self._writers)
        for w in writers:
            try:
                w.flush()
            except Exception:  # keep flushing the others; the points stay queued
                import logging

                logging.getLogger(__name__).exception("flushing scalars to %s failed", w.path)


flusher = _Flusher()
atexit.register(flusher.flush_all)
