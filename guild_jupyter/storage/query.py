"""Run filters as SQL over the index (the cheap part of a query)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from guild_jupyter.errors import QueryError
from guild_jupyter.model.status import RunStatus


class RunFilter:
    def __init__(
        self,
        op: str | None = None,
        status: str | Sequence[str] | None = None,
        label: str | None = None,
        tag: str | Sequence[str] | None = None,
        started_after: Any = None,
        started_before: Any = None,
        sweep: str | None = None,
        deleted: bool | None = False,
        where: str | None = None,
        limit: int | None = None,
        kind: str | Sequence[str] | None = None,
        sweeps: bool = True,
    ) -> None:
        self.op, self.status, self.label, self.tag = op, status, label, tag
        self.started_after, self.started_before = started_after, started_before
        self.sweep, self.deleted, self.where, self.limit = sweep, deleted, where, limit
        self.kind = kind
        self.sweeps = sweeps  # False: leave sweep records out

    def sql(self, columns: str) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.deleted is not None:
            clauses.append("deleted=?")
            params.append(int(self.deleted))
        if self.op:
            if any(c in self.op for c in "*?["):
                clauses.append("op GLOB ?")
            else:
                clauses.append("op=?")
            params.append(self.op)
        if self.status:
            statuses = [self.status] if isinstance(self.status, str) else list(self.status)
            for s in statuses:
                try:
                    RunStatus(s)
                except ValueError:
                    allowed = ", ".join(x.value for x in RunStatus)
                    raise QueryError(f"unknown status {s!r} (one of {allowed})") from None
            clauses.append(f"status IN ({','.join('?' * len(statuses))})")
            params.extend(statuses)
        if self.label:
            clauses.append("instr(label, ?) > 0")
            params.append(self.label)
        if self.tag:
            for t in [self.tag] if isinstance(self.tag, str) else self.tag:
                clauses.append("EXISTS (SELECT 1 FROM run_tags WHERE run=runs.id AND tag=?)")
                params.append(t)
        if self.started_after is not None:
            clauses.append("started >= ?")
            params.append(to_epoch(self.started_after, "started_after"))
        if self.started_before is not None:
            clauses.append("started < ?")
            params.append(to_epoch(self.started_before, "started_before"))
        if self.sweep:
            clauses.append("sweep=?")
            params.append(self.sweep)
        if self.kind:
            kinds = [self.kind] if isinstance(self.kind, str) else list(self.kind)
            clauses.append(f"kind IN ({','.join('?' * len(kinds))})")
            params.extend(kinds)
        elif not self.sweeps:
            clauses.append("kind != 'sweep'")
        sql = f"SELECT {columns} FROM runs"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY created DESC"
        if self.limit:
            sql += f" LIMIT {int(self.limit)}"
        return sql, params


def to_epoch(value: Any, what: str) -> float:
    """A datetime, a pandas Timestamp, epoch seconds or ISO text (local time if naive)."""
    import datetime as dt

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise QueryError(
                f"{what}: cannot read {value!r} as a date/time (use e.g. 2026-12-04 or 2026-12-04T10:30)"
            ) from None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day).timestamp()
    raise QueryError(f"{what}: expected a date/time, got {value!r}")
