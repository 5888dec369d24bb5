"""The run record: what happened when an operation ran with fixed flags.

A run's history is a list of attempts; each attempt walks the status machine
once. The run's status is its latest attempt's status, so a retry adds an
attempt instead of rewriting a terminal state.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

from guild_jupyter.errors import GuildError
from guild_jupyter.model.status import RunStatus


class CorruptRunError(GuildError):
    """A run directory whose metadata cannot be read."""


def new_run_id() -> str:
    return os.urandom(16).hex()  # 128 random bits, like uuid4, without importing uuid


class Attempt:
    """One pass of a run through the status machine."""

    def __init__(
        self,
        n: int,
        status: RunStatus = RunStatus.PENDING,
        started: float | None = None,
        stopped: float | None = None,
        exit_code: int | None = None,
        reason: str | None = None,
        pid: int | None = None,
        pid_started: float | None = None,
        child_pid: int | None = None,
        child_started: float | None = None,
        host: str | None = None,
    ) -> None:
        self.n = n
        self.status = status
        self.started = started
        self.stopped = stopped
        self.exit_code = exit_code
        self.reason = reason
        self.pid = pid
        self.pid_started = pid_started
        self.child_pid = child_pid
        self.child_started = child_started
        self.host = host

    def __repr__(self) -> str:
        return f"Attempt({self.n}, {self.status.value})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Attempt) and other.to_dict() == self.to_dict()

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in _ATTEMPT_FIELDS}
        d["status"] = self.status.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Attempt:
        kwargs = {k: d.get(k) for k in _ATTEMPT_FIELDS}
        kwargs["status"] = RunStatus(d["status"])
        kwargs["n"] = int(d["n"])
        return cls(**kwargs)


_ATTEMPT_FIELDS = (
    "n",
    "status",
    "started",
    "stopped",
    "exit_code",
    "reason",
    "pid",
    "pid_started",
    "child_pid",
    "child_started",
    "host",
)


class Run:
    """A run as recorded. Plain data; the store gives it behaviour."""

    def __init__(
        self,
        id: str,
        op: str,
        flags: dict[str, Any] | None = None,
        kind: str = "function",
        created: float | None = None,
        label: str = "",
        tags: list[str] | None = None,
        attempts: list[Attempt] | None = None,
        sweep: str | None = None,
        source: dict[str, Any] | None = None,
        deleted: bool = False,
    ) -> None:
        self.id = id
        self.op = op
        self.flags = flags if flags is not None else {}
        self.kind = kind
        self.created = time.time() if created is None else created
        self.label = label
        self.tags = tags if tags is not None else []
        self.attempts = attempts if attempts is not None else [Attempt(1)]
        self.sweep = sweep
        self.source = source if source is not None else {}
        self.deleted = deleted
        self._store: Any = None
        self._shown_live = False  # a RunWidget above already shows it: Out[] gets one line, once

    # derived from the latest attempt -------------------------------------
    @property
    def attempt(self) -> Attempt:
        return self.attempts[-1]

    @property
    def status(self) -> RunStatus:
        return self.attempt.status

    @property
    def started(self) -> float | None:
        return next((a.started for a in self.attempts if a.started is not None), None)

    @property
    def stopped(self) -> float | None:
        return self.attempt.stopped

    @property
    def exit_code(self) -> int | None:
        return self.attempt.exit_code

    @property
    def reason(self) -> str | None:
        return self.attempt.reason

    @property
    def short_id(self) -> str:
        return self.id[:8]

    # behaviour that needs a store ------------------------------------------
    @property
    def dir(self) -> str:
        return self._require_store().run_dir(self.id)

    def output(self) -> str:
        """The run's output (stdout and stderr as they interleaved)."""
        return self._require_store().read_output(self.id)

    def scalars(self, keys: list[str] | None = None):
        """This run's scalar series as a DataFrame (``run, key, step, value, time``)."""
        return self._require_store().scalars_frame([self.id], keys)

    def files(self) -> list[str]:
        """Paths (relative to the run directory) of what the run wrote."""
        return self._require_store().list_files(self.id)

    def refresh(self) -> Run:
        fresh = self._require_store().load_run(self.id)
        self.__dict__.update({k: v for k, v in fresh.__dict__.items()})
        return self

    def _require_store(self):
        if self._store is None:
            raise GuildError(f"run {self.short_id} is not attached to a store")
        return self._store

    # serialisation ---------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "op": self.op,
            "kind": self.kind,
            "flags": self.flags,
            "created": self.created,
            "label": self.label,
            "tags": list(self.tags),
            "sweep": self.sweep,
            "source": self.source,
            "attempts": [a.to_dict() for a in self.attempts],
            # denormalised for readers that do not know the attempt model
            "status": self.status.value,
            "started": self.started,
            "stopped": self.stopped,
        }

    @classmethod
    def from_dict(cls, d: Any, *, where: str = "") -> Run:
        try:
            if not isinstance(d, dict):
                raise TypeError("metadata is not a JSON object")
            run = cls(
                id=_check_id(d["id"]),
                op=str(d["op"]),
                kind=str(d.get("kind", "function")),
                flags=dict(d.get("flags") or {}),
                created=float(d.get("created") or 0.0),
                label=str(d.get("label") or ""),
                tags=[str(t) for t in (d.get("tags") or [])],
                sweep=d.get("sweep"),
                source=dict(d.get("source") or {}),
                attempts=[Attempt.from_dict(a) for a in d["attempts"]],
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CorruptRunError(
                f"corrupt run metadata{' in ' + where if where else ''}: {e}"
            ) from None
        if not run.attempts:
            raise CorruptRunError(
                f"corrupt run metadata{' in ' + where if where else ''}: no attempts"
            )
        return run

    def __repr__(self) -> str:
        return f"<Run {self.short_id} {self.op} {self.status.value}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """A bare ``r`` in a cell: status, flags, last scalars, output tail (HTML and text)."""
        if self._store is None or self._shown_live:
            self._shown_live = False  # only the cell's own result: a later ``r`` shows it all
            return {"text/plain": repr(self)}
        from guild_jupyter.widgets.render import run_html, run_state, run_text

        state = run_state(self, self._store)
        return {"text/plain": run_text(self, state), "text/html": run_html(self, state)}


def _check_id(value: Any) -> str:
    s = str(value)
    if len(s) != 32 or any(c not in "0123456789abcdef" for c in s):
        raise ValueError(f"bad run id {s!r}")
    return s


def hostname() -> str:
    return os.uname().nodename


def new_run(
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
    """A new run record, in memory only (``RunStore.add_run`` writes it); with ``running``
    (attempt fields such as ``pid``) it starts running."""
    run = Run(id=run_id or new_run_id(), op=op, kind=kind, flags=dict(flags), label=label or "",
              tags=unique_tags(tags), sweep=sweep, source=source or {})
    if running is not None:
        a = run.attempt
        a.status = a.status.check_transition(RunStatus.RUNNING)
        a.started = run.created
        for name, value in running.items():
            setattr(a, name, value)
    return run


def unique_tags(items: Iterable[str]) -> list[str]:
    out: list[str] = []
    for t in items:
        t = str(t).strip()
        if t and t not in out:
            out.append(t)
    return out
