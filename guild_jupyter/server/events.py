"""The event stream: sequence-numbered events in a bounded buffer, subscribers, and
the watcher tick that turns index changes and output growth into events.

See :mod:`guild_jupyter.server.manager` for how runs are watched.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, Callable, Iterable

from guild_jupyter.errors import GuildError
from guild_jupyter.server.common import TERMINAL, _finite
from guild_jupyter.storage import layout

log = logging.getLogger("guild_jupyter.server.manager")  # the name it always logged under

EVENT_CHUNK = 256 * 1024  # bytes of output per event at most
TICK_OUTPUT = 1024 * 1024  # bytes of output read per unfinished run per tick at most
BUFFER_BYTES = 32 * 1024 * 1024  # output text kept for resuming clients, at most


class EventsMixin:
    """The :class:`~guild_jupyter.server.manager.Manager`'s events: its ``__init__``
    sets the state used here (``buffer``, ``seq``, ``_subscribers``, the watcher's)."""

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


_STATUSES = ("pending", "running", "completed", "failed", "cancelled")
_STATUS_CODE = {s: i for i, s in enumerate(_STATUSES)}


def _encode(status: str, attempts: int | None, deleted: Any) -> int:
    """A run's watched state as one int (small ints are shared: no memory per run)."""
    return (_STATUS_CODE.get(status, 7)) | (8 if deleted else 0) | (int(attempts or 1) << 4)


def _decode(code: int) -> tuple[str, int, bool]:
    n = code & 7
    return (_STATUSES[n] if n < len(_STATUSES) else "?"), code >> 4, bool(code & 8)
