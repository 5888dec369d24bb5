"""Following a user's process: tee its output into the run until the process ends.

One ``poll`` on both pipes and a pidfd, in the caller's thread: no thread per
stream, no polling interval. Lines get their arrival time; printed scalars are
parsed as lines arrive and flushed with them; resources are sampled after the
first second (a trivial process costs nothing here). When the process exits,
whatever it left in its process group is stopped (a run's lifetime is its
group's: SIGTERM, SIGKILL two seconds later) and the pipes are read to their
end (at most 5 s: a grandchild outside the group may hold them open).
"""

from __future__ import annotations

import codecs
import logging
import os
import select
import signal
import time
from typing import Any

from guild_jupyter.orchestration.process_info import signal_tree
from guild_jupyter.storage.output import STDERR, STDOUT, LineSplitter
from guild_jupyter.tracking.recorder import RunRecorder

log = logging.getLogger("guild_jupyter.trial_worker")
READ = select.POLLIN | select.POLLHUP | select.POLLERR


def follow(proc: Any, recorder: RunRecorder, sample_interval: float) -> int:
    """Tee the process's output into ``recorder`` until it ends; returns its exit code.

    ``proc``: a ``subprocess.Popen`` or a :class:`~guild_jupyter.orchestration.forked_process.ForkedProcess`."""
    streams = {proc.stdout.fileno(): (STDOUT, _Lines()), proc.stderr.fileno(): (STDERR, _Lines())}  # type: ignore[union-attr]
    poller = select.poll()
    for fd in streams:
        poller.register(fd, READ)
    exit_fd = getattr(proc, "exit_fd", None)  # a forked trial: readable once its code is known
    try:
        pidfd = os.pidfd_open(proc.pid) if exit_fd is None else exit_fd
        poller.register(pidfd, select.POLLIN)
    except (AttributeError, OSError):
        pidfd = -1
    started = time.time()
    next_sample = started + min(sample_interval, 1.0) if sample_interval > 0 else None
    sampler: Any = None
    exited_at = kill_group_at = None
    rc: int | None = None
    try:
        while streams or rc is None or kill_group_at is not None:
            now = time.time()
            waits = [] if pidfd >= 0 or rc is not None else [0.1]
            if next_sample is not None and rc is None:
                waits.append(next_sample - now)
            if exited_at is not None:
                waits.append(exited_at + 5.0 - now)
                if kill_group_at is not None:
                    waits.append(0.05)  # until the group is gone
            timeout = max(0.0, min(waits)) * 1000 if waits else None
            for fd, _ in poller.poll(timeout):
                if fd == pidfd:
                    poller.unregister(pidfd)
                    continue
                data = os.read(fd, 65536)
                stream, lines = streams[fd]
                if data:
                    t = time.time()
                    for line in lines.feed(data):
                        recorder.on_line(line, stream, t)
                    if recorder.scalars.pending():
                        recorder.scalars.flush()  # printed scalars are as durable as their lines
                else:
                    poller.unregister(fd)
                    rest = lines.rest()
                    if rest:
                        recorder.on_line(rest, stream, time.time())
                    del streams[fd]
            now = time.time()
            if rc is None:
                rc = proc.poll()
                if rc is not None:
                    exited_at = now
                    if _group_alive(proc.pid):
                        signal_tree(proc.pid, [], signal.SIGTERM)
                        kill_group_at = now + 2.0
            elif kill_group_at is not None:
                if not _group_alive(proc.pid):
                    kill_group_at = None
                elif now >= kill_group_at:
                    signal_tree(proc.pid, [], signal.SIGKILL)
                    kill_group_at = None
            if exited_at is not None and now >= exited_at + 5.0 and kill_group_at is None:
                break  # a grandchild holds the pipes open: stop reading them
            if next_sample is not None and rc is None and now >= next_sample:
                sampler = _sample(proc.pid, sampler, recorder, started, now)
                next_sample = now + sample_interval
    finally:
        if exit_fd is not None:
            proc.close()  # its exit fd: the process has ended, nothing else reads it
        elif pidfd >= 0:
            os.close(pidfd)
        for pipe in (proc.stdout, proc.stderr):
            pipe.close()  # type: ignore[union-attr]
    return rc if rc is not None else proc.wait()


class _Lines:
    """Bytes in, whole decoded lines out."""

    __slots__ = ("decoder", "splitter")

    def __init__(self) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.splitter = LineSplitter()

    def feed(self, data: bytes) -> list[str]:
        return self.splitter.feed(self.decoder.decode(data))

    def rest(self) -> str:
        return self.splitter.rest() + self.decoder.decode(b"", final=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _sample(pid: int, sampler: Any, recorder: RunRecorder, started: float, now: float) -> Any:
    try:
        if sampler is None:
            from guild_jupyter.orchestration.resources import ResourceSampler

            return ResourceSampler(pid)  # the first call only primes the CPU counters
        for key, value in sampler.sample().items():
            recorder.scalars.add(key, int(now - started), value, now)
    except Exception:
        log.debug("resource sampling failed", exc_info=True)
    return sampler
