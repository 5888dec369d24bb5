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
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import threading
import time
from collections import deque
from typing import Any, Callable, Iterable

from guild_jupyter.errors import GuildError
from guild_jupyter.storage import layout
from guild_jupyter.storage.index import quote
from guild_jupyter.storage.query import RunFilter
from guild_jupyter.storage.store import RunStore

log = logging.getLogger(__name__)

TERMINAL = frozenset({"completed", "failed", "cancelled"})
LIST_FIELDS = ("id", "op", "kind", "status", "created", "started", "stopped", "label", "tags",
               "sweep", "attempts", "exit_code", "reason", "deleted")
SORTABLE_FIXED = frozenset(LIST_FIELDS) - {"tags"}
_SQLITE_INF = re.compile(r"[:\[,]-?Inf\b")
OUTPUT_CHUNK = 4 * 1024 * 1024  # bytes per output response at most
EVENT_CHUNK = 256 * 1024  # bytes of output per event at most
TICK_OUTPUT = 1024 * 1024  # bytes of output read per unfinished run per tick at most
ROW_CACHE_MAX = 20_000  # listing rows kept rendered (about 600 bytes each), at most
BUFFER_BYTES = 32 * 1024 * 1024  # output text kept for resuming clients, at most


class BadRequest(GuildError):
    """Input the API rejects (HTTP 400)."""


class Manager:
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

    # events --------------------------------------------------------------------
    def subscribe(self, fn: Callable[[dict[str, Any]], None], since: int | None = None,
                  close: Callable[[], None] | None = None) -> list[dict[str, Any]]:
        """Add a subscriber (``close`` is called when the manager stops); returns the
        buffered events after ``since`` to send first (a ``gap`` message first if some
        of them are gone)."""
        backlog: list[dict[str, Any]] = []
        if since is not None:
            first = self.buffer[0]["seq"] if self.buffer else self.seq + 1
            if since < first - 1:
                backlog.append({"type": "gap", "seq": None, "since": since, "first": first,
                                "message": f"events {since + 1} to {first - 1} are no longer kept; reload the runs"})
            backlog.extend(e for e in self.buffer if e["seq"] > since)
        self._subscribers[fn] = close
        return backlog

    def unsubscribe(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self._subscribers.pop(fn, None)

    def publish(self, events: Iterable[dict[str, Any]]) -> None:
        for event in events:
            self.seq += 1
            event["seq"] = self.seq
            if len(self.buffer) == self.buffer.maxlen:
                self._buffer_bytes -= len(self.buffer[0].get("text", ""))
            self.buffer.append(event)
            self._buffer_bytes += len(event.get("text", ""))
            while self._buffer_bytes > BUFFER_BYTES and len(self.buffer) > 1:
                self._buffer_bytes -= len(self.buffer.popleft().get("text", ""))
            for fn in list(self._subscribers):
                try:
                    fn(event)
                except Exception:
                    log.debug("guild-jupyter: dropping an event subscriber", exc_info=True)
                    self._subscribers.pop(fn, None)

    async def _watch(self) -> None:
        while True:
            try:
                events = await asyncio.to_thread(self._tick)
                if events:
                    self.publish(events)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("guild-jupyter: watching runs failed; retrying")
            await asyncio.sleep(self.poll_interval)

    def _tick(self) -> list[dict[str, Any]]:
        now = time.time()
        if now - self._last_reconcile >= self.reconcile_interval:
            from guild_jupyter.orchestration.reconcile import reconcile

            self._last_reconcile = now
            reconcile(self.store)
        rows = self.store.index.execute(
            "SELECT id, op, status, attempts, deleted, updated, created, reason, exit_code FROM runs "
            "WHERE updated >= ? ORDER BY updated", (self._cursor - 2.0,))
        early: list[dict[str, Any]] = []  # creations and non-final status changes
        late: list[dict[str, Any]] = []  # final statuses, after the last output
        for run_id, op, status, attempts, deleted, updated, created, reason, exit_code in rows:
            self._cursor = max(self._cursor, updated)
            code = self._known.get(run_id)
            old = None if code is None else _decode(code)
            created_now = old is None
            if created_now:
                early.append({"type": "run-created", "run": run_id, "op": op, "status": status})
            elif bool(old[2]) != bool(deleted):
                early.append({"type": "run-deleted", "run": run_id, "restored": not deleted})
            status_changed = created_now or old[0] != status or old[1] != attempts
            self._known[run_id] = _encode(status, attempts, deleted)
            if status_changed:
                event = {"type": "status", "run": run_id, "status": status, "attempt": attempts,
                         "reason": reason, "exit_code": exit_code}
                if status in TERMINAL:
                    self._final[run_id] = event  # sent once the run's output is all sent
                else:
                    early.append(event)
                if run_id not in self._tails:
                    if created_now and attempts <= 1:
                        self._tails[run_id] = 0
                    elif status not in TERMINAL or old[1] != attempts:  # a new attempt
                        self._tails[run_id] = self._ended_offsets.pop(run_id, None) or self._output_size(run_id)
            if status not in TERMINAL or status_changed:
                scalars = self._scalar_changes(run_id)
                if scalars:
                    early.append({"type": "scalars", "run": run_id, "scalars": scalars})
                if status in TERMINAL:
                    self._scalar_counts.pop(run_id, None)
        output: list[dict[str, Any]] = []
        for run_id in list(self._tails):
            code = self._known.get(run_id)
            finished = code is None or _decode(code)[0] in TERMINAL
            events, drained = self._read_output(run_id, finished)
            output.extend(events)
            if finished and drained:
                self._ended_offsets[run_id] = self._tails.pop(run_id)
                if len(self._ended_offsets) > 10_000:
                    self._ended_offsets.pop(next(iter(self._ended_offsets)))
        for run_id in [i for i in self._final if i not in self._tails]:
            late.append(self._final.pop(run_id))
        return early + output + late

    def _output_path(self, run_id: str) -> str | None:
        try:
            return os.path.join(self.store.meta_dir(run_id), layout.OUTPUT)
        except GuildError:
            return None

    def _output_size(self, run_id: str) -> int:
        path = self._output_path(run_id)
        try:
            return os.path.getsize(path) if path else 0
        except OSError:
            return 0

    def _read_output(self, run_id: str, everything: bool) -> tuple[list[dict[str, Any]], bool]:
        """New output of a run as events of at most EVENT_CHUNK bytes, at most TICK_OUTPUT
        bytes a tick (the rest next tick): whole lines while it runs, everything once it
        ended. Also whether the end of the file was reached."""
        offset = self._tails[run_id]
        path = self._output_path(run_id)
        events: list[dict[str, Any]] = []
        if path is None:
            return events, True
        read = 0
        try:
            f = open(path, "rb")
        except OSError:
            return events, True
        drained = False
        with f:
            while read < TICK_OUTPUT:
                f.seek(offset)
                data = f.read(EVENT_CHUNK)
                if not data:
                    drained = True
                    break
                full = len(data) == EVENT_CHUNK
                end = len(data) if everything else data.rfind(b"\n") + 1
                if end == 0:
                    if not full:
                        drained = False
                        break
                    end = len(data)  # a line longer than a chunk goes in pieces
                if full and end == len(data):
                    # never split a UTF-8 character between two events
                    while end > 0 and (data[end - 1] & 0xC0) == 0x80:
                        end -= 1
                    if end > 0 and data[end - 1] >= 0xC0:
                        end -= 1
                    end = end or len(data)
                events.append({"type": "output", "run": run_id, "offset": offset, "next": offset + end,
                               "text": data[:end].decode("utf-8", "replace")})
                offset += end
                read += end
                self._tails[run_id] = offset
                if not full:
                    drained = end == len(data)
                    break
        return events, drained

    def _read_scalar_counts(self, run_id: str) -> dict[str, int]:
        return {k: c for k, c in self.store.index.execute(
            "SELECT key, count FROM scalar_summary WHERE run=?", (run_id,))}

    def _scalar_changes(self, run_id: str) -> dict[str, Any]:
        rows = self.store.index.execute(
            "SELECT key, last, last_step, count FROM scalar_summary WHERE run=?", (run_id,))
        known = self._scalar_counts.setdefault(run_id, {})
        changed = {}
        for key, last, step, count in rows:
            if known.get(key) != count:
                known[key] = count
                changed[key] = {"value": _finite(last), "step": step, "count": count}
        return changed

    # queries -------------------------------------------------------------------
    def list_runs(self, params: dict[str, list[str]]) -> tuple[str, list[str]]:
        """``GET runs``: filters, paging, sorting, flag and scalar columns. Returns the JSON
        document's head (up to ``"runs": [``) and the rows' JSON texts, so a big listing is
        written in pieces; the document ends with ``]}``."""
        one = _one(params)
        deleted_text = one("deleted", "false").lower()
        deleted: bool | None = {"false": False, "0": False, "true": True, "1": True, "any": None}.get(deleted_text, ...)  # type: ignore[arg-type]
        if deleted is ...:
            raise BadRequest(f"deleted must be true, false or any, not {deleted_text!r}")
        statuses = _many(params, "status")
        f = RunFilter(op=one("op"), status=statuses or None, label=one("label"), tag=_many(params, "tag") or None,
                      started_after=_number_or_text(one("started_after")),
                      started_before=_number_or_text(one("started_before")), sweep=one("sweep"), deleted=deleted)
        limit = _int(one("limit"), "limit", minimum=0)
        offset = _int(one("offset"), "offset", minimum=0) or 0
        dynamic = self.store.index.dynamic_columns()
        wanted = one("columns")
        if wanted is None:
            extra = dynamic
        else:
            extra = []
            for name in filter(None, (c.strip() for c in wanted.split(","))):
                if name in ("flags", "scalars"):
                    extra += [c for c in dynamic if c.startswith(name + ".")]
                elif name in dynamic:
                    extra.append(name)
                elif not name.startswith(("flags.", "scalars.")):
                    raise BadRequest(f"unknown column {name!r}: use flags, scalars, flags.<name> or scalars.<key>")
                # a flag or scalar no run has yet is simply empty
            extra = list(dict.fromkeys(extra))
        sort = one("sort", "-created")
        desc = sort.startswith("-")
        sort_col = sort.lstrip("-+")
        if sort_col not in SORTABLE_FIXED and sort_col not in dynamic:
            if not sort_col.startswith(("flags.", "scalars.")):
                raise BadRequest(f"cannot sort by {sort_col!r}: use a run field, flags.<name> or scalars.<key>")
            sort_col = "created"
        sql, sql_params = f.sql("id")
        where = sql.rsplit(" ORDER BY ", 1)[0].split(" FROM runs", 1)[1]
        if sort_col == "created":  # NOT NULL and indexed: no sorting at all
            order = f" ORDER BY created {'DESC' if desc else 'ASC'}"
        else:
            order = f" ORDER BY {quote(sort_col)} IS NULL, {quote(sort_col)} {'DESC' if desc else 'ASC'}, created DESC"
        paging = f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else (
            f" LIMIT -1 OFFSET {int(offset)}" if offset else "")
        row_expr, expr_params = self._row_json_sql(extra)
        total = self.store.index.execute(f"SELECT count(*) FROM runs{where}", sql_params)[0][0]
        if min(total - offset, total if limit is None else limit) <= ROW_CACHE_MAX:
            texts = self._cached_rows(extra, row_expr, expr_params, f"FROM runs{where}{order}{paging}", sql_params)
        else:
            texts = [r[0] for r in self.store.index.execute(f"SELECT {row_expr} FROM runs{where}{order}{paging}",
                                                            [*expr_params, *sql_params])]
        if any("Inf" in t and _SQLITE_INF.search(t) for t in texts):
            # SQLite writes infinities as Inf (not JSON): the exact, slower path (null)
            columns = list(LIST_FIELDS) + extra
            _, full = self.store.index.query(
                f"SELECT {','.join(quote(c) for c in columns)} FROM runs{where}{order}{paging}", sql_params)
            texts = [json.dumps(d, allow_nan=False) for d in self._rows_to_json(columns, full)]
        head = json.dumps({"total": total, "offset": offset, "limit": limit, "columns": extra})
        return head[:-1] + ', "runs": [', texts

    def _cached_rows(self, extra: list[str], row_expr: str, expr_params: list[Any], tail: str,
                     params: list[Any]) -> list[str]:
        """Rows' JSON text, kept per run with the row's ``updated`` (every change of a row
        moves it) and the column set (a new flag or scalar column changes every row), so
        a listing renders only the rows that changed since the last one."""
        key = (tuple(extra), frozenset(self.store.index.bool_columns()))
        ids = self.store.index.execute(f"SELECT id, updated {tail}", params)
        with self._row_cache_lock:
            cache = self._row_cache.get(key)
            if cache is None:
                cache = self._row_cache[key] = {}
                while len(self._row_cache) > 4:  # a few column sets (the default and some pages)
                    self._row_cache.pop(next(iter(self._row_cache)))
            missing = [i for i, updated in ids if cache.get(i, (None,))[0] != updated]
            if len(missing) > len(ids) // 4:  # mostly new: one ordered query renders them all
                rows = self.store.index.execute(f"SELECT id, updated, {row_expr} {tail}", [*expr_params, *params])
                for run_id, updated, text in rows:
                    cache[run_id] = (updated, text)
                return [r[2] for r in rows]
            for start in range(0, len(missing), 500):
                part = missing[start:start + 500]
                for run_id, updated, text in self.store.index.execute(
                        f"SELECT id, updated, {row_expr} FROM runs WHERE id IN ({','.join('?' * len(part))})",
                        [*expr_params, *part]):
                    cache[run_id] = (updated, text)
            if len(cache) > ROW_CACHE_MAX:  # runs gone from the index (purged) linger until then
                live = {i for i, _ in ids}
                for run_id in [i for i in cache if i not in live]:
                    del cache[run_id]
            return [cache[i][1] for i, _ in ids]

    def _row_json_sql(self, extra: list[str]) -> tuple[str, list[Any]]:
        """One SQL expression rendering a listing row as JSON text, in SQLite: building
        and encoding 10,000s of dicts in Python costs several times more. Numbers are
        SQLite's JSON rendering (15 significant digits); a flag or scalar the run does
        not have is null; infinities become null (through the Python path)."""
        bools = self.store.index.bool_columns()
        params: list[Any] = []

        def value(col: str) -> str:
            c = quote(col)
            if col in bools:
                return f"CASE WHEN {c} IS NULL THEN NULL WHEN {c} THEN json('true') ELSE json('false') END"
            return c

        def obj(cols: list[str]) -> str:
            parts = []
            for start in range(0, len(cols), 60):  # SQLite functions take at most 127 arguments
                pairs = []
                for col in cols[start:start + 60]:
                    pairs.append(f"?, {value(col)}")
                    params.append(col.split(".", 1)[1])
                parts.append(f"json_object({', '.join(pairs)})")
            if not parts:
                return "json_object()"
            expr = parts[0]
            for part in parts[1:]:
                expr = f"json_patch({expr}, {part})"
            return expr

        fixed = ("json_object('id', id, 'op', op, 'kind', kind, 'status', status, "
                 "'created', created, 'started', started, 'stopped', stopped, "
                 "'label', label, 'tags', json(CASE WHEN tags IS NULL OR tags = '' THEN '[]' ELSE tags END), "
                 "'sweep', sweep, 'attempts', attempts, 'exit_code', exit_code, 'reason', reason, "
                 "'deleted', json(CASE WHEN deleted THEN 'true' ELSE 'false' END), ")
        flags = obj([c for c in extra if c.startswith("flags.")])
        scalars = obj([c for c in extra if c.startswith("scalars.")])
        return f"{fixed}'flags', {flags}, 'scalars', {scalars})", params

    def _rows_to_json(self, columns: list[str], rows: list[tuple]) -> list[dict[str, Any]]:
        bools = self.store.index.bool_columns()
        n_fixed = len(LIST_FIELDS)
        extra = columns[n_fixed:]
        kinds = [(c.split(".", 1)[0], c.split(".", 1)[1], c in bools, c.startswith("scalars.")) for c in extra]
        out = []
        for row in rows:
            d = dict(zip(LIST_FIELDS, row[:n_fixed]))
            tags = d["tags"]
            d["tags"] = json.loads(tags) if tags and tags != "[]" else []
            d["deleted"] = bool(d["deleted"])
            flags: dict[str, Any] = {}
            scalars: dict[str, Any] = {}
            for (kind, name, is_bool, is_scalar), value in zip(kinds, row[n_fixed:]):
                if value is None:
                    pass
                elif is_bool:
                    value = bool(value)
                elif is_scalar or isinstance(value, float):
                    value = _finite(value)
                (scalars if kind == "scalars" else flags)[name] = value
            d["flags"], d["scalars"] = flags, scalars
            out.append(d)
        return out

    def compare(self, refs: list[str]) -> dict[str, Any]:
        ids = list(dict.fromkeys(self.store.resolve_id(r, deleted=None) for r in refs))
        dynamic = self.store.index.dynamic_columns()
        columns = list(LIST_FIELDS) + dynamic
        rows: list[tuple] = []
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            _, found = self.store.index.query(
                f"SELECT {','.join(quote(c) for c in columns)} FROM runs WHERE id IN ({','.join('?' * len(part))})", part)
            rows += found
        by_id = {r[0]: r for r in rows}
        ordered = [by_id[i] for i in ids if i in by_id]
        n = len(LIST_FIELDS)
        used = [j for j in range(n, len(columns)) if any(r[j] is not None for r in ordered)]
        keep = list(range(n)) + used
        runs = self._rows_to_json([columns[j] for j in keep], [tuple(r[j] for j in keep) for r in ordered])
        flags = [columns[j][len("flags."):] for j in used if columns[j].startswith("flags.")]
        scalars = [columns[j][len("scalars."):] for j in used if columns[j].startswith("scalars.")]
        return {"runs": runs, "flags": flags, "scalars": scalars}

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
    def submit(self, body: Any) -> dict[str, Any]:
        """``POST runs``: start a script run in the background, as ``start_run`` does,
        with a script path relative to the server's root directory."""
        from guild_jupyter.experiment.script_op import ScriptOperation
        from guild_jupyter.model.flags import resolve_flags
        from guild_jupyter.model.status import RunStatus
        from guild_jupyter.orchestration.controller import Controller

        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        unknown = set(body) - {"op", "flags", "label", "tags"}
        if unknown:
            raise BadRequest(f"unknown field(s) in the request: {', '.join(sorted(unknown))}")
        op = body.get("op")
        if not isinstance(op, str) or not op.strip():
            raise BadRequest("'op' must be the path of a script (relative to the server's root directory)")
        flags = body.get("flags") or {}
        if not isinstance(flags, dict):
            raise BadRequest("'flags' must be an object of flag names to values")
        label = body.get("label") or ""
        if not isinstance(label, str):
            raise BadRequest("'label' must be a string")
        tags = _tags(body.get("tags"), "tags")
        if not op.endswith(".py"):
            raise BadRequest(f"cannot run {op!r}: expected a Python script (.py)")
        path = os.path.realpath(os.path.join(self.root_dir, op))
        if os.path.commonpath([self.root_dir, path]) != self.root_dir:
            raise BadRequest(f"script {op!r} is outside the server's root directory")
        operation = ScriptOperation.load(op, cwd=self.root_dir)
        resolved = resolve_flags(operation.flag_defs(), dict(flags), op=operation.name)
        controller = Controller(self.store)
        run = self.store.create_run(operation.name, kind=operation.kind, flags=resolved, label=label, tags=tags,
                                    source=operation.run_source())
        try:
            spec = operation.prepare(run, self.store, controller.config)
        except BaseException as e:
            self.store.set_status(run.id, RunStatus.FAILED, reason=f"could not prepare the run: {e}")
            raise
        spec.retries = 0
        return run_json(controller.submit(run, spec, background=True))

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

    def stop_run(self, ref: str) -> dict[str, Any]:
        from guild_jupyter.orchestration.controller import Controller

        return run_json(Controller(self.store).stop(ref, wait=False))

    def restart_run(self, ref: str) -> dict[str, Any]:
        from guild_jupyter.orchestration.controller import Controller

        run_id = self.store.resolve_id(ref)
        self._ended_offsets[run_id] = self._output_size(run_id)
        return run_json(Controller(self.store).restart(run_id, background=True))


class RunFileNotFound(GuildError):
    """A run exists but has no such file (HTTP 404)."""


def run_json(run: Any) -> dict[str, Any]:
    d = run.to_dict()
    d["deleted"] = bool(run.deleted)
    d["reason"] = run.reason
    d["exit_code"] = run.exit_code
    return _clean(d)


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


_STATUSES = ("pending", "running", "completed", "failed", "cancelled")
_STATUS_CODE = {s: i for i, s in enumerate(_STATUSES)}


def _encode(status: str, attempts: int | None, deleted: Any) -> int:
    """A run's watched state as one int (small ints are shared: no memory per run)."""
    return (_STATUS_CODE.get(status, 7)) | (8 if deleted else 0) | (int(attempts or 1) << 4)


def _decode(code: int) -> tuple[str, int, bool]:
    n = code & 7
    return (_STATUSES[n] if n < len(_STATUSES) else "?"), code >> 4, bool(code & 8)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _one(params: dict[str, list[str]]):
    def get(name: str, default: str | None = None) -> str | None:
        values = params.get(name)
        return values[-1] if values else default

    return get


def _many(params: dict[str, list[str]], name: str) -> list[str]:
    return [v.strip() for value in params.get(name, []) for v in value.split(",") if v.strip()]


def _int(text: str | None, name: str, minimum: int = 0) -> int | None:
    if text is None or text == "":
        return None
    try:
        n = int(text)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, not {text!r}") from None
    if n < minimum:
        raise BadRequest(f"{name} must be {minimum} or more")
    return n


def _number_or_text(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _tags(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise BadRequest(f"'{name}' must be a list of strings")
    return list(dict.fromkeys(t.strip() for t in value if t.strip()))


def parse_keys(values: list[str]) -> list[str] | None:
    keys = [k.strip() for v in values for k in v.split(",") if k.strip()]
    return keys or None


__all__ = ["BadRequest", "Manager", "RunFileNotFound", "parse_keys", "run_json"]
