"""Process identity and process trees.

A pid alone can be reused by another process, so a process is identified by
its pid together with its start time; "alive" means both still match.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from functools import lru_cache


@lru_cache(maxsize=1)
def _boot_time() -> float | None:
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def process_start_time(pid: int) -> float | None:
    """Start time in epoch seconds, or None if no such process (or a zombie)."""
    boot = _boot_time()
    if boot is not None:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        fields = data[data.rfind(b")") + 2 :].split()
        if fields[0] in (b"Z", b"X"):  # zombie or dead: not running any more
            return None
        return round(boot + int(fields[19]) / os.sysconf("SC_CLK_TCK"), 2)
    try:
        import psutil

        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return None
        return round(p.create_time(), 2)
    except Exception:
        return None


@lru_cache(maxsize=1)
def _self_start() -> float | None:
    return process_start_time(os.getpid())


def self_identity() -> tuple[int, float | None]:
    return os.getpid(), _self_start()


def pid_exists(pid: int) -> bool:
    """Some process has ``pid`` (possibly another user's); no start time checked."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_alive(pid: int | None, started: float | None) -> bool:
    """True only if ``pid`` runs and is the process that started at ``started``."""
    if not pid:
        return False
    now = process_start_time(pid)
    if now is None:
        return False
    return started is None or abs(now - started) < 1.0


def descendants(pid: int) -> list[int]:
    try:
        import psutil

        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except Exception:
        return []


def signal_tree(pgid: int | None, pids: Iterable[int], sig: int) -> None:
    """Send ``sig`` to a process group and to each pid (those that left the group)."""
    if pgid:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def kill_tree(pid: int, started: float | None, grace: float = 5.0) -> None:
    """SIGTERM a process, its group and its descendants; SIGKILL what is left after ``grace``."""
    if not is_alive(pid, started):
        return
    tree = descendants(pid)
    signal_tree(pid, [pid, *tree], signal.SIGTERM)
    deadline = time.time() + grace
    while time.time() < deadline and any(process_start_time(p) for p in [pid, *tree]):
        time.sleep(0.05)
    signal_tree(pid, [pid, *tree], signal.SIGKILL)
