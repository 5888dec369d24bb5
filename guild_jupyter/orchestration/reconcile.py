"""Reconciliation: make every unfinished run's status true again.

Runs whose owner (supervisor, or the process of an in-process run) is alive
are left to it; runs whose owner is gone are finished here: ``cancelled`` if a
stop had been requested, else ``failed`` with the reason. A user process
orphaned by a dead supervisor is stopped.
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING

from guild_jupyter.events import StatusChanged
from guild_jupyter.model.run import Run
from guild_jupyter.model.status import RunStatus
from guild_jupyter.orchestration.process_info import is_alive, kill_tree

if TYPE_CHECKING:
    from guild_jupyter.storage.store import RunStore

IN_PROCESS_KINDS = frozenset({"function", "inline", "sweep"})  # owned by the caller's process
LAUNCH_GRACE = 30.0  # seconds a new run may go without a recorded owner
STOP_REQUEST = "stop-request.json"
_last: dict[str, float] = {}


def owner_alive(run: Run) -> bool:
    a = run.attempt
    return is_alive(a.pid, a.pid_started)


def stop_requested(store: RunStore, run_id: str) -> str | None:
    """The reason of a pending stop request, if any."""
    try:
        with open(os.path.join(store.meta_dir(run_id), STOP_REQUEST), encoding="utf-8") as f:
            return str(json.load(f).get("reason") or "stopped")
    except (OSError, ValueError):
        return None


def finish_orphan(store: RunStore, run: Run, reason: str, grace: float = 2.0) -> Run:
    """End a run whose owner is gone: stop its leftover process, record the end once."""
    a = run.attempt
    if a.child_pid and is_alive(a.child_pid, a.child_started):
        kill_tree(a.child_pid, a.child_started, grace=grace)
    requested = stop_requested(store, run.id)
    status = RunStatus.CANCELLED if requested else RunStatus.FAILED
    if requested:
        reason = requested if a.started is None else f"{requested} ({reason})"
    attempt_n = a.n
    changed = []

    def change(fresh: Run) -> None:
        if fresh.status.terminal or fresh.attempt.n != attempt_n or owner_alive(fresh):
            return  # it finished (or came back) on its own meanwhile
        fresh.attempt.status = fresh.attempt.status.check_transition(status)
        fresh.attempt.stopped = time.time()
        fresh.attempt.reason = reason
        changed.append(True)

    updated = store.update_run(run.id, change)
    if changed:
        store.events.emit(
            StatusChanged(run.id, status=status.value, attempt=attempt_n, reason=reason)
        )
    return updated


def reconcile(store: RunStore, *, min_interval: float = 0.0) -> list[tuple[str, str]]:
    """Finish dead runs; returns ``(run id, reason)`` for each run it ended."""
    key = str(store.home)
    now = time.time()
    if min_interval and now - _last.get(key, 0.0) < min_interval:
        return []
    _last[key] = now
    fixed = []
    for row in store.list_rows(status=["pending", "running"], deleted=None):
        run = store.load_run(row["id"])
        reason = _dead_reason(run, now)
        if reason is None:
            continue
        updated = finish_orphan(store, run, reason)
        if updated.status.terminal and updated.attempt.n == run.attempt.n:
            fixed.append((run.id, updated.reason or reason))
    return fixed


def _dead_reason(run: Run, now: float) -> str | None:
    a = run.attempt
    if a.pid is None:
        if now - run.created < LAUNCH_GRACE:
            return None
        return "never started (no process was recorded)"
    if is_alive(a.pid, a.pid_started):
        return None
    if run.kind in IN_PROCESS_KINDS:
        what = "process"
    elif run.source.get("executor"):  # e.g. the kernel that followed it on a Dask cluster
        what = f"process following it on {run.source['executor']}"
    else:
        what = "supervisor"
    return f"{what} died (pid {a.pid})"
