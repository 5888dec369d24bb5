"""Reconciliation: make every unfinished run's status true again.

Runs whose owner (supervisor, or the process of an in-process run) is alive
are left to it; runs whose owner is gone become ``failed`` with the reason,
and a user process orphaned by a dead supervisor is stopped.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from guild_jupyter.model.run import Run
from guild_jupyter.model.status import RunStatus
from guild_jupyter.orchestration.process_info import is_alive, kill_tree

if TYPE_CHECKING:
    from guild_jupyter.storage.store import RunStore

IN_PROCESS_KINDS = frozenset({"function", "inline"})
LAUNCH_GRACE = 30.0  # seconds a new run may go without a recorded owner
_last: dict[str, float] = {}


def owner_alive(run: Run) -> bool:
    a = run.attempt
    return is_alive(a.pid, a.pid_started)


def reconcile(store: RunStore, *, min_interval: float = 0.0) -> list[tuple[str, str]]:
    """Fix dead runs; returns ``(run id, reason)`` for each run marked failed."""
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
        a = run.attempt
        if a.child_pid and is_alive(a.child_pid, a.child_started):
            kill_tree(a.child_pid, a.child_started, grace=2.0)
        attempt_n = a.n

        def change(fresh: Run) -> None:
            if fresh.status.terminal or fresh.attempt.n != attempt_n:
                return  # finished on its own meanwhile
            if owner_alive(fresh):
                return
            fresh.attempt.status = fresh.attempt.status.check_transition(RunStatus.FAILED)
            fresh.attempt.stopped = time.time()
            fresh.attempt.reason = reason

        updated = store.update_run(run.id, change)
        if updated.status is RunStatus.FAILED and updated.attempt.n == attempt_n and updated.reason == reason:
            from guild_jupyter.events import StatusChanged

            store.events.emit(StatusChanged(run.id, status="failed", attempt=attempt_n, reason=reason))
            fixed.append((run.id, reason))
    return fixed


def _dead_reason(run: Run, now: float) -> str | None:
    a = run.attempt
    if a.pid is None:
        if now - run.created < LAUNCH_GRACE:
            return None
        return "never started (no process was recorded)"
    if is_alive(a.pid, a.pid_started):
        return None
    what = "process" if run.kind in IN_PROCESS_KINDS else "supervisor"
    return f"{what} died (pid {a.pid})"
