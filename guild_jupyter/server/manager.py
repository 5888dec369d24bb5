"""The server's manager: one run store for the server's lifetime and the event stream.

Runs are executed by detached supervisor processes, so nothing of what they do
reaches this process through the store's in-process :class:`EventBus`. The
manager discovers changes itself, the way any other reader would:

- it polls the index for rows whose ``updated`` column moved (one indexed query
  per tick) and turns differences into ``run-created``, ``status``,
  ``run-deleted`` and ``scalars`` events;
- it tails the ``output`` file of every unfinished run by byte offset and turns
  new whole lines into ``output`` events (the rest of the file, partial last
  line included, is sent when the run ends).

Every event gets a sequence number (1, 2, ...) and is kept in a bounded buffer,
so a WebSocket client that reconnects with ``?since=<last seq it saw>`` gets
everything it missed, or a ``gap`` message if the buffer no longer holds it.

Blocking work (SQLite, files, starting and stopping runs) runs in worker
threads; the manager's own state is only touched on the event loop. Shutting
down stops the watcher and nothing else: runs belong to their supervisors.

The event stream and the watcher are in :mod:`~guild_jupyter.server.events`,
listings and comparing in :mod:`~guild_jupyter.server.listing`, starting runs
(``POST runs``, a kernel's prepared runs) and stopping them in
:mod:`~guild_jupyter.server.submit`; the names they hold are importable from here too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from guild_jupyter.server.common import (  # noqa: F401 (re-exported)
    TERMINAL,
    BadRequest,
    RunFileNotFound,
    _clean,
    _finite,
    run_json,
)
from guild_jupyter.server.events import (  # noqa: F401 (re-exported)
    BUFFER_BYTES,
    EVENT_CHUNK,
    TICK_OUTPUT,
    EventsMixin,
    _decode,
    _encode,
)
from guild_jupyter.server.listing import (  # noqa: F401 (re-exported)
    LIST_FIELDS,
    ROW_CACHE_MAX,
    SORTABLE_FIXED,
    ListingMixin,
    _int,
    _many,
    _number_or_text,
    _one,
    _tags,
    parse_keys,
)
from guild_jupyter.server.submit import SubmitMixin
from guild_jupyter.storage import layout
from guild_jupyter.storage.store import RunStore

log = logging.getLogger(__name__)

OUTPUT_CHUNK = 4 * 1024 * 1024  # bytes per output response at most


class Manager(EventsMixin, ListingMixin, SubmitMixin):
    """Owns the store and the event stream; handlers await its methods."""

    def __init__(self, home: str | os.PathLike[str] | None, root_dir: str, *,
                 poll_interval: float = 0.1, buffer_size: int = 10_000,
                 reconcile_interval: float = 10.0) -> None:
        self.store = RunStore(home, progress=lambda *_: None)
        self.root_dir = os.path.realpath(root_dir)
        self.poll_interval = poll_interval
        self.reconcile_interval = reconcile_interval
        self.buffer: deque[dict[str, Any]] = deque(maxlen=buffer_size)
        self.seq = 0
        self._subscribers: dict[Callable[[dict[str, Any]], None], Callable[[], None] | None] = {}
        self._buffer_bytes = 0
        self._task: asyncio.Task | None = None
        self._started_at = 0.0
        # watcher state (touched only inside one tick, in a worker thread)
        self._cursor = 0.0
        self._known: dict[str, int] = {}  # id -> _encode(status, attempts, deleted): ~120 bytes a run
        self._scalar_counts: dict[str, dict[str, int]] = {}
        self._tails: dict[str, int] = {}  # unfinished run id -> output byte offset
        self._ended_offsets: dict[str, int] = {}
        self._last_reconcile = 0.0
        self._row_cache: dict[tuple, dict[str, tuple[float, str]]] = {}
        self._row_cache_lock = threading.Lock()
        self._final: dict[str, dict[str, Any]] = {}  # final status events waiting for their output

    # lifecycle -----------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Reconcile, then watch; calling it again while watching does nothing."""
        if self.running:
            return
        self._started_at = time.time()
        await asyncio.to_thread(self._prime)
        if self.running:  # another caller started it meanwhile
            return
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="guild-jupyter-watcher")

    async def ensure_started(self) -> None:
        if not self.running:
            await self.start()

    async def stop(self) -> None:
        """Stop watching. Runs are not touched: their supervisors own them."""
        task, self._task = self._task, None
        for close in list(self._subscribers.values()):
            if close is not None:
                try:
                    close()
                except Exception:  # a closed socket
                    pass
        self._subscribers.clear()
        if task is None or task.done():
            return
        loop = task.get_loop()
        if loop.is_closed():
            return
        task.cancel()
        if loop is asyncio.get_running_loop():
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    def _prime(self) -> None:
        from guild_jupyter.orchestration.reconcile import reconcile

        try:
            reconcile(self.store)
        except Exception:
            log.exception("guild-jupyter: reconciling runs failed")
        self._last_reconcile = time.time()
        rows = self.store.index.execute("SELECT max(updated) FROM runs")
        self._cursor = (rows[0][0] or 0.0) if rows else 0.0
        # every run's (status, attempts, deleted), ~150 bytes a run: changes are then exact,
        # whatever rewrote a row (a rebuilt index touches every row and changes nothing)
        for run_id, status, attempts, deleted in self.store.index.execute(
                "SELECT id, status, attempts, deleted FROM runs"):
            self._known[run_id] = _encode(status, attempts, deleted)
            if status not in TERMINAL:
                self._tails[run_id] = self._output_size(run_id)
                self._scalar_counts[run_id] = self._read_scalar_counts(run_id)

    # run details ---------------------------------------------------------------
    def get_run(self, ref: str) -> dict[str, Any]:
        return run_json(self.store.resolve(ref, deleted=None))

    def output(self, ref: str, offset: int) -> dict[str, Any]:
        run_id = self.store.resolve_id(ref, deleted=None)
        path = os.path.join(self.store.meta_dir(run_id), layout.OUTPUT)
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                data = b""
                if offset < size:
                    f.seek(offset)
                    data = f.read(OUTPUT_CHUNK)
        except FileNotFoundError:
            size, data = 0, b""
        if len(data) == OUTPUT_CHUNK and offset + len(data) < size:
            cut = data.rfind(b"\n") + 1
            data = data[:cut] if cut else data
        return {"run": run_id, "offset": offset, "next": offset + len(data), "size": size,
                "text": data.decode("utf-8", "replace")}

    def scalars(self, ref: str, keys: list[str] | None) -> dict[str, Any]:
        run_id = self.store.resolve_id(ref, deleted=None)
        wanted = set(keys) if keys else None
        series: dict[str, dict[str, list]] = {}
        points = sorted(((k, s, t, v) for k, s, v, t in self.store.iter_run_points(run_id)
                         if wanted is None or k in wanted))
        for k, s, t, v in points:
            entry = series.setdefault(k, {"step": [], "value": [], "time": []})
            entry["step"].append(s)
            entry["value"].append(_finite(v))
            entry["time"].append(t)
        return {"run": run_id, "series": series}

    def files(self, ref: str) -> dict[str, Any]:
        run_id = self.store.resolve_id(ref, deleted=None)
        root = self.store.run_dir(run_id)
        out = []
        for rel in self.store.list_files(run_id):
            try:
                st = os.stat(os.path.join(root, rel))
            except OSError:
                continue
            out.append({"path": rel.replace(os.sep, "/"), "size": st.st_size, "mtime": st.st_mtime})
        return {"run": run_id, "files": out}

    def file_path(self, ref: str, rel: str) -> str:
        """The real path of a file of the run; anything leaving the run directory is refused."""
        run_id = self.store.resolve_id(ref, deleted=None)
        if not rel or "\0" in rel or rel.startswith(("/", "\\")) or os.path.isabs(rel):
            raise BadRequest("file path must be relative to the run directory")
        parts = rel.replace("\\", "/").split("/")
        if ".." in parts:
            raise BadRequest("file path must not contain '..'")
        if parts[0] == layout.META_DIR:
            raise RunFileNotFound(f"no file {rel!r} in run {run_id[:8]}")
        root = os.path.realpath(self.store.run_dir(run_id))
        real = os.path.realpath(os.path.join(root, *parts))
        if os.path.commonpath([root, real]) != root or real == root:
            raise BadRequest("file path leaves the run directory")
        meta = os.path.join(root, layout.META_DIR)
        if real == meta or real.startswith(meta + os.sep):
            raise RunFileNotFound(f"no file {rel!r} in run {run_id[:8]}")
        if not os.path.isfile(real):
            raise RunFileNotFound(f"no file {rel!r} in run {run_id[:8]}")
        return real

    # actions -------------------------------------------------------------------
    def patch(self, ref: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        unknown = set(body) - {"label", "tags", "add_tags", "remove_tags"}
        if unknown:
            raise BadRequest(f"unknown field(s) in the request: {', '.join(sorted(unknown))}")
        if "label" in body and not isinstance(body["label"], str):
            raise BadRequest("'label' must be a string")
        replace = _tags(body["tags"], "tags") if "tags" in body else None
        add = _tags(body.get("add_tags"), "add_tags")
        remove = _tags(body.get("remove_tags"), "remove_tags")
        run_id = self.store.resolve_id(ref, deleted=None)

        def change(run: Any) -> None:
            if "label" in body:
                run.label = body["label"]
            tags = list(run.tags) if replace is None else replace
            tags = list(dict.fromkeys([*tags, *add]))
            run.tags = [t for t in tags if t not in set(remove)]

        return run_json(self.store.update_run(run_id, change))

    def delete_run(self, ref: str) -> dict[str, Any]:
        run_id = self.store.resolve_id(ref)
        self.store.delete(run_id)
        return run_json(self.store.load_run(run_id))

    def restart_run(self, ref: str) -> dict[str, Any]:
        from guild_jupyter.orchestration.controller import Controller

        run_id = self.store.resolve_id(ref)
        self._ended_offsets[run_id] = self._output_size(run_id)
        return run_json(Controller(self.store).restart(run_id, background=True))



__all__ = ["BadRequest", "Manager", "RunFileNotFound", "parse_keys", "run_json"]
