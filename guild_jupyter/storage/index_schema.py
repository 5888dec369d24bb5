"""What the index holds: its schema, and the statements of one write transaction.

``RunIndex`` (index.py) owns connections, rebuilds and reads; ``IndexWriter``
here writes one run's row, tags and scalar summaries inside a transaction.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from typing import Any

from guild_jupyter.model.run import Run
from guild_jupyter.storage.scalar_files import Summary

SCHEMA_VERSION = 2
FIXED = (
    "id",
    "op",
    "kind",
    "status",
    "created",
    "started",
    "stopped",
    "label",
    "tags",
    "sweep",
    "attempts",
    "exit_code",
    "reason",
    "deleted",
    "updated",
)
SCHEMA = """
CREATE TABLE runs (
    id TEXT PRIMARY KEY, op TEXT NOT NULL, kind TEXT, status TEXT NOT NULL,
    created REAL NOT NULL, started REAL, stopped REAL, label TEXT, tags TEXT,
    sweep TEXT, attempts INTEGER, exit_code INTEGER, reason TEXT, deleted INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL DEFAULT 0
);
CREATE INDEX runs_created ON runs(created);
CREATE INDEX runs_updated ON runs(updated);
CREATE INDEX runs_status ON runs(status);
CREATE TABLE run_tags (run TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (run, tag)) WITHOUT ROWID;
CREATE TABLE scalar_summary (
    run TEXT NOT NULL, key TEXT NOT NULL,
    first REAL, first_step INTEGER, first_time REAL,
    last REAL, last_step INTEGER, last_time REAL,
    min REAL, max REAL, count INTEGER NOT NULL, total REAL NOT NULL,
    PRIMARY KEY (run, key)
) WITHOUT ROWID;
CREATE TABLE columns (name TEXT PRIMARY KEY, bool INTEGER NOT NULL) WITHOUT ROWID;
"""

MERGE_SUMMARY = """
INSERT INTO scalar_summary VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT(run, key) DO UPDATE SET
  first = CASE WHEN (excluded.first_step < first_step) OR (excluded.first_step = first_step
          AND excluded.first_time < first_time) THEN excluded.first ELSE first END,
  first_time = CASE WHEN (excluded.first_step < first_step) OR (excluded.first_step = first_step
          AND excluded.first_time < first_time) THEN excluded.first_time ELSE first_time END,
  first_step = min(first_step, excluded.first_step),
  last = CASE WHEN (excluded.last_step > last_step) OR (excluded.last_step = last_step
          AND excluded.last_time >= last_time) THEN excluded.last ELSE last END,
  last_time = CASE WHEN (excluded.last_step > last_step) OR (excluded.last_step = last_step
          AND excluded.last_time >= last_time) THEN excluded.last_time ELSE last_time END,
  last_step = max(last_step, excluded.last_step),
  min = CASE WHEN min IS NULL THEN excluded.min WHEN excluded.min IS NULL THEN min
        ELSE min(min, excluded.min) END,
  max = CASE WHEN max IS NULL THEN excluded.max WHEN excluded.max IS NULL THEN max
        ELSE max(max, excluded.max) END,
  count = count + excluded.count,
  total = total + excluded.total
"""


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def flag_cell(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


@functools.lru_cache(maxsize=256)
def _upsert_sql(cols: tuple[str, ...]) -> str:
    """The upsert of a row with these columns (runs of one operation share it)."""
    names = ",".join(quote(c) for c in cols)
    marks = ",".join("?" * len(cols))
    updates = ",".join(f"{quote(c)}=excluded.{quote(c)}" for c in cols[1:])
    return f"INSERT INTO runs ({names}) VALUES ({marks}) ON CONFLICT(id) DO UPDATE SET {updates}"


class IndexWriter:
    """Statements that run inside one write transaction."""

    def __init__(
        self, conn: sqlite3.Connection, columns: set[str], not_bool: set[str] | None = None
    ) -> None:
        self.conn = conn
        self.columns = columns
        self.not_bool = not_bool if not_bool is not None else set()  # known to hold non-bool values

    def ensure_column(self, name: str, is_bool: bool) -> None:
        if name in self.columns:
            if not is_bool and name not in self.not_bool:
                self.conn.execute("UPDATE columns SET bool=0 WHERE name=? AND bool=1", (name,))
                self.not_bool.add(name)
            return
        try:
            self.conn.execute(f"ALTER TABLE runs ADD COLUMN {quote(name)}")
        except sqlite3.OperationalError as e:
            if "duplicate column" not in str(e):
                raise
        self.conn.execute("INSERT OR IGNORE INTO columns VALUES (?, ?)", (name, int(is_bool)))
        if not is_bool:
            self.conn.execute("UPDATE columns SET bool=0 WHERE name=?", (name,))
        self.columns.add(name)

    def upsert_run(self, run: Run) -> None:
        cols = list(FIXED)
        values: list[Any] = [
            run.id,
            run.op,
            run.kind,
            run.status.value,
            run.created,
            run.started,
            run.stopped,
            run.label,
            json.dumps(run.tags),
            run.sweep,
            len(run.attempts),
            run.exit_code,
            run.reason,
            int(run.deleted),
            time.time(),
        ]
        for name, value in run.flags.items():
            col = "flags." + name
            self.ensure_column(col, isinstance(value, bool))
            cols.append(col)
            values.append(flag_cell(value))
        self.conn.execute(_upsert_sql(tuple(cols)), values)
        self.conn.execute("DELETE FROM run_tags WHERE run=?", (run.id,))
        if run.tags:
            self.conn.executemany(
                "INSERT OR IGNORE INTO run_tags VALUES (?,?)", [(run.id, t) for t in run.tags]
            )

    def update_status(self, run: Run) -> bool:
        """Only what a status change touches (no flag columns, no tags); False if the run
        has no row yet."""
        cur = self.conn.execute(
            "UPDATE runs SET status=?, started=?, stopped=?, attempts=?, exit_code=?, reason=?,"
            " updated=? WHERE id=?",
            (
                run.status.value,
                run.started,
                run.stopped,
                len(run.attempts),
                run.exit_code,
                run.reason,
                time.time(),
                run.id,
            ),
        )
        return cur.rowcount == 1

    def merge_summary(self, run_id: str, key: str, s: Summary) -> None:
        self.conn.execute(
            MERGE_SUMMARY,
            (
                run_id,
                key,
                s.first,
                s.first_step,
                s.first_time,
                s.last,
                s.last_step,
                s.last_time,
                s.min,
                s.max,
                s.count,
                s.total,
            ),
        )
        col = "scalars." + key
        self.ensure_column(col, False)
        self.conn.execute(
            f"UPDATE runs SET {quote(col)}=(SELECT last FROM scalar_summary WHERE run=? AND key=?), updated=? "
            "WHERE id=?",
            (run_id, key, time.time(), run_id),
        )
