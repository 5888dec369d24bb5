"""Global slots for a process that starts many runs: the lock files stay open.

The same slots as :mod:`guild_jupyter.orchestration.slots` (the same lock
files, the same exclusive ``flock``, held while a run's process runs), for the
sweep's trial worker, which takes and gives back a slot for every trial:
opening and closing the lock files each time is most of what a slot costs.
"""

from __future__ import annotations

import fcntl
import os
import threading
from typing import Any

from guild_jupyter.config import Config
from guild_jupyter.orchestration.slots import SlotPool


class _Slot:
    __slots__ = ("pool", "index")

    def __init__(self, pool: HeldSlots, index: int) -> None:
        self.pool, self.index = pool, index

    def release(self) -> None:
        if self.index >= 0:
            self.pool.give_back(self.index)
            self.index = -1


class HeldSlots(SlotPool):
    """The store's slots (the same lock files, the same ``flock``), with the files kept
    open across the worker's trials instead of opened for each. A lock held through one
    of our descriptors does not stop us taking it again through the same one, so the
    slots our own trials hold are tracked here."""

    def __init__(self, home: Any, config: Config) -> None:
        super().__init__(home, config)
        self._fds: dict[int, int] = {}
        self._held: set[int] = set()
        self._lock = threading.Lock()

    def try_acquire(self, run_id: str) -> Any:
        with self._lock:
            for i in range(self.config.max_concurrent_runs):
                if i in self._held:
                    continue
                fd = self._fds.get(i)
                if fd is None:
                    fd = self._fds[i] = os.open(
                        self.dir / f"{i}.lock", os.O_RDWR | os.O_CREAT, 0o644
                    )
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                os.ftruncate(fd, 0)
                os.pwrite(fd, run_id.encode(), 0)
                self._held.add(i)
                return _Slot(self, i)
        return None

    def give_back(self, index: int) -> None:
        with self._lock:
            fcntl.flock(self._fds[index], fcntl.LOCK_UN)
            self._held.discard(index)
