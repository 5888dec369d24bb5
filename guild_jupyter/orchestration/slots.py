"""The queue's global concurrency limit, shared by every process using a store.

A slot is an exclusive ``flock`` on ``slots/<n>.lock`` held by a run's
supervisor while its process runs. The kernel drops the lock when the holder
dies, so a crash can never leak a slot and no daemon is needed. Optional
throttling waits while CPU, memory or GPU use is above a limit.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Container
from pathlib import Path
from typing import Any

from guild_jupyter.config import Config
from guild_jupyter.orchestration.executors import LOCAL, executor_name


class Slot:
    def __init__(self, fd: int, index: int) -> None:
        self.fd, self.index = fd, index

    def release(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


class SlotPool:
    def __init__(self, home: Path, config: Config) -> None:
        self.dir = home / "slots"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = config

    def try_acquire(self, run_id: str) -> Slot | None:
        for i in range(self.config.max_concurrent_runs):
            fd = os.open(self.dir / f"{i}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, run_id.encode())
            return Slot(fd, i)
        return None

    def acquire(
        self,
        run_id: str,
        cancelled: Callable[[], bool],
        my_turn: Callable[[], bool] = lambda: True,
        poll: float = 0.05,
    ) -> Slot | None:
        """Wait for a free slot (and for load under the throttle limits); None if cancelled.

        ``my_turn`` keeps the queue first-in first-out: a run tries for a slot
        only when no older run is still waiting.
        """
        while not cancelled():
            if my_turn() and not self.throttled():
                slot = self.try_acquire(run_id)
                if slot is not None:
                    return slot
            time.sleep(poll)
        return None

    def throttled(self) -> bool:
        c = self.config
        if c.max_cpu_percent is None and c.max_memory_percent is None and c.max_gpu_percent is None:
            return False
        import psutil

        if c.max_cpu_percent is not None and psutil.cpu_percent(interval=0.2) > c.max_cpu_percent:
            return True
        if (
            c.max_memory_percent is not None
            and psutil.virtual_memory().percent > c.max_memory_percent
        ):
            return True
        if c.max_gpu_percent is not None:
            from guild_jupyter.orchestration.resources import gpu_utilization

            util = gpu_utilization()
            if util is not None and util > c.max_gpu_percent:
                return True
        return False


_local_runs: dict[str, bool] = {}  # run id -> waits for a local slot (fixed for a run's life)


def queued_before(store: Any, created: float) -> list[str]:
    """Runs recorded before ``created`` still waiting for a slot of this store: the
    first-in first-out rule's "older waiters". Runs queued on another executor (a Dask
    cluster) wait for its workers, not for these slots, so they hold no one up here."""
    rows = store.index.execute(
        "SELECT id FROM runs WHERE status='pending' AND deleted=0 AND created < ?", (created,)
    )
    waiting = []
    for (run_id,) in rows:
        local = _local_runs.get(run_id)
        if local is None:
            try:
                source = store.load_run(run_id).source
            except Exception:  # gone or unreadable: reconciliation deals with it
                continue
            local = _local_runs[run_id] = executor_name(source) == LOCAL
        if local:
            waiting.append(run_id)
    return waiting


class QueueTurn:
    """The first-in first-out rule for one waiter: its turn comes when no older run
    (other than ``own`` ones) waits for a slot of this store. While it waits, dead
    waiters are reconciled away every couple of seconds, so a crash cannot block the queue."""

    def __init__(self, store: Any, reconcile_every: float = 2.0) -> None:
        self.store = store
        self.reconcile_every = reconcile_every
        self._last_reconcile = 0.0

    def __call__(self, created: float, own: Container[str] = ()) -> bool:
        if all(run_id in own for run_id in queued_before(self.store, created)):
            return True
        now = time.time()
        if now - self._last_reconcile > self.reconcile_every:
            self._last_reconcile = now
            from guild_jupyter.orchestration.reconcile import reconcile

            reconcile(self.store)
        return False
