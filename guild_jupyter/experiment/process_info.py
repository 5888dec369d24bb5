"""Identity of a process: pid plus start time, so a reused pid never looks alive."""

from __future__ import annotations

import os
from functools import lru_cache


@lru_cache(maxsize=1)
def _self_start() -> float | None:
    return process_start_time(os.getpid())


def self_identity() -> tuple[int, float | None]:
    return os.getpid(), _self_start()


def process_start_time(pid: int) -> float | None:
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:
        return None


def is_alive(pid: int | None, started: float | None) -> bool:
    """True only if ``pid`` runs and is the same process that started at ``started``."""
    if not pid:
        return False
    now = process_start_time(pid)
    if now is None:
        return False
    return started is None or abs(now - started) < 0.5
