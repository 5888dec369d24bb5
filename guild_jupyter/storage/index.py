"""The SQLite index: derived data that makes listing and comparing fast.

Every change of a row sets ``updated`` (epoch seconds), so a watcher (the
server's event stream) finds what changed with one indexed query.

One wide row per run (fixed columns, then a ``flags.<name>`` column per flag
and a ``scalars.<key>`` column holding the last value), so a comparison is a
single ``SELECT`` read straight into a DataFrame, plus ``scalar_summary``
(first/last/min/max/count/sum per run and key) and ``run_tags`` for filtering.
Columns are added with ``ALTER TABLE`` when a new flag or scalar appears.

Everything here can be rebuilt from the run directories; the index never holds
the only copy of anything.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from guild_jupyter.errors import RunNotFound
from guild_jupyter.model.run import Run
from guild_jupyter.storage.index_schema import FIXED, SCHEMA, SCHEMA_VERSION, IndexWriter, quote
from guild_jupyter.storage.scalar_files import Summary

__all__ = ["FIXED", "SCHEMA_VERSION", "IndexUnavailable", "RunIndex", "quote"]


class IndexUnavailable(Exception):
    """The index file is missing, corrupt or from another schema version."""


class RunIndex:
    """One connection per store object, shared by its threads under a lock.

    ``rebuild`` is a callable that yields ``(Run, {key: Summary})`` for every
    run directory; it is used when the file is missing, unreadable or of an
    older schema.
    """

    def __init__(
        self,
        path: Path,
        rebuild_source: Callable[[], Iterable[tuple[Run, dict[str, Summary]]]],
        count_source: Callable[[], int],
        progress: Callable[[str, int], Any] | None = None,
    ) -> None:
        self.path = path
        self._rebuild_source = rebuild_source
        self._count_source = count_source
        self._progress = progress
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._ino: int | None = None
        self._columns: set[str] = set()
        self._not_bool: set[str] = set()

    # connection management -------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        with self._lock:
            if self._conn is not None and self._ino != _inode(self.path):
                self.close()
            if self._conn is None:
                self._open()
            assert self._conn is not None
            return self._conn

    def ensure_open(self) -> None:
        """Open (or first build) the index now: a run published after this is indexed by
        its writer alone, not also by the build's scan (its scalars would count twice)."""
        self._connection()

    def _open(self) -> None:
        for _ in range(3):
            if not self.path.exists():
                self.rebuild()
            try:
                conn = _connect(self.path)
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version != SCHEMA_VERSION:
                    conn.close()
                    raise IndexUnavailable(f"schema version {version}")
                self._columns = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
                if not self._columns:
                    conn.close()
                    raise IndexUnavailable("no runs table")
            except (sqlite3.DatabaseError, IndexUnavailable):
                self._set_aside()
                continue
            self._conn, self._ino = conn, _inode(self.path)
            return
        raise RuntimeError(f"cannot open or rebuild the run index at {self.path}")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            self._conn, self._ino = None, None

    def _set_aside(self) -> None:
        with _file_lock(self.path.with_name("index.lock")):
            if not self.path.exists():
                return
            try:
                conn = _connect(self.path)
                ok = conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
                conn.close()
                if ok:
                    return  # another process rebuilt it meanwhile
            except sqlite3.DatabaseError:
                pass
            aside = self.path.with_name(f"index.db.bad-{int(time.time())}")
            os.replace(self.path, aside)
            for suffix in ("-wal", "-shm"):
                _unlink(Path(str(self.path) + suffix))

    # rebuilding ------------------------------------------------------------
    def rebuild(self, force: bool = False) -> int:
        """Build a fresh index from the run directories; returns runs indexed."""
        with self._lock, _file_lock(self.path.with_name("index.lock")):
            if not force and self.path.exists():
                return -1
            self.close()
            tmp = self.path.with_name(f"index.db.build-{os.getpid()}")
            _unlink(tmp)
            conn = sqlite3.connect(tmp, isolation_level=None)
            conn.executescript(SCHEMA)
            conn.execute("PRAGMA journal_mode=OFF")
            conn.execute("BEGIN")
            builder = IndexWriter(conn, set(FIXED))
            total = self._count_source()
            tick = (
                self._progress("Rebuilding run index", total) if self._progress and total else None
            )
            n = 0
            for run, summaries in self._rebuild_source():
                builder.upsert_run(run)
                for key, s in summaries.items():
                    builder.merge_summary(run.id, key, s)
                n += 1
                if tick:
                    tick(1)
            if tick:
                tick(0, done=True)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.close()
            for suffix in ("-wal", "-shm"):
                _unlink(Path(str(self.path) + suffix))
            os.replace(tmp, self.path)
            return n

    # writing ---------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[IndexWriter]:
        conn = self._connection()
        with self._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield IndexWriter(conn, self._columns, self._not_bool)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def upsert_run(self, run: Run, summaries: dict[str, Summary] | None = None) -> None:
        """The run's row; with ``summaries``, its scalars too, in the same transaction."""
        with self._write() as w:
            w.upsert_run(run)
            for key, s in (summaries or {}).items():
                w.merge_summary(run.id, key, s)

    def resolve_id(self, ref: str | int, *, deleted: bool | None = False) -> str:
        """The id a reference names: a full id, a unique id prefix, or an index (1 = newest)."""
        text = str(ref).strip()
        where = "" if deleted is None else f" AND deleted={int(deleted)}"
        if text.isascii() and text.isdigit() and (isinstance(ref, int) or len(text) < 6):
            n = int(text)
            rows = (
                self.execute(
                    f"SELECT id FROM runs WHERE 1=1{where} ORDER BY created DESC LIMIT 1 OFFSET ?",
                    (max(n - 1, 0),),
                )
                if n >= 1
                else []
            )
            if not rows:
                raise RunNotFound(f"no run at index {n}")
            return rows[0][0]
        if not text or any(c not in "0123456789abcdef" for c in text.lower()):
            raise RunNotFound(
                f"invalid run reference {text!r}: use an id, an id prefix or an index"
            )
        rows = self.execute(
            f"SELECT id FROM runs WHERE id >= ? AND id < ?{where} ORDER BY created DESC LIMIT 6",
            (text.lower(), text.lower() + "g"),
        )
        if not rows:
            raise RunNotFound(f"no run matches {text!r}" + (" in the trash" if deleted else ""))
        if len(rows) > 1:
            shown = ", ".join(r[0][:8] for r in rows[:5])
            raise RunNotFound(
                f"run reference {text!r} is ambiguous: it matches {shown}{', ...' if len(rows) > 5 else ''}"
            )
        return rows[0][0]

    def update_status(self, run: Run) -> None:
        """After a status change: the row's status columns only (a full upsert if it has none)."""
        with self._write() as w:
            if not w.update_status(run):
                w.upsert_run(run)

    def merge_scalars(self, run_id: str, summaries: dict[str, Summary]) -> None:
        with self._write() as w:
            for key, s in summaries.items():
                w.merge_summary(run_id, key, s)

    def set_deleted(self, run_id: str, deleted: bool) -> None:
        with self._write() as w:
            w.conn.execute(
                "UPDATE runs SET deleted=?, updated=? WHERE id=?",
                (int(deleted), time.time(), run_id),
            )

    def remove(self, run_id: str) -> None:
        with self._write() as w:
            for table, col in (("runs", "id"), ("run_tags", "run"), ("scalar_summary", "run")):
                w.conn.execute(f"DELETE FROM {table} WHERE {col}=?", (run_id,))

    # reading ---------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        conn = self._connection()
        with self._lock:
            return conn.execute(sql, params).fetchall()

    def query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple]]:
        conn = self._connection()
        with self._lock:
            cur = conn.execute(sql, params)
            return [d[0] for d in cur.description], cur.fetchall()

    def dynamic_columns(self) -> list[str]:
        self._connection()
        with self._lock:
            self._columns = {r[1] for r in self._conn.execute("PRAGMA table_info(runs)")}  # type: ignore[union-attr]
            return sorted(c for c in self._columns if c not in FIXED)

    def bool_columns(self) -> set[str]:
        return {r[0] for r in self.execute("SELECT name FROM columns WHERE bool=1")}


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=60)
    conn.execute("PRAGMA busy_timeout=60000")
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise sqlite3.DatabaseError(f"journal mode {mode}")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
