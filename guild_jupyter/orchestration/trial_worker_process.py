"""The trial worker's process: its entry points and its signals.

A worker runs in a fork of the warm launcher (``serve``, on the connection the
launcher accepted) or, without one, as ``python -m
guild_jupyter.orchestration.trial_worker_process SWEEP_ID FD`` (``main``). Either
way a signal only wakes a thread: the handler itself does nothing, so it cannot
deadlock against the interrupted thread.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading

from guild_jupyter.orchestration.process_info import process_start_time
from guild_jupyter.orchestration.trial_worker import TrialWorker, log
from guild_jupyter.storage.store import RunStore


def serve(
    conn: socket.socket,
    home: str | None,
    sweep_id: str,
    early_stop: list[int] | None = None,
    buffered: bytes = b"",
) -> int:
    """Run a worker in this process (a launcher's fork or a fresh interpreter) on ``conn``."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s trial-worker %(levelname)s %(message)s"
    )
    conn.settimeout(None)
    worker = TrialWorker(RunStore(home), conn, sweep_id)
    _watch_signals(worker)
    if early_stop:
        worker.on_stop_signal()
    return worker.serve(buffered)


def _watch_signals(worker: TrialWorker) -> None:
    """Signals wake a thread through a pipe; the handler does nothing (so it cannot deadlock)."""
    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)
    signal.set_wakeup_fd(wfd, warn_on_full_buffer=False)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)

    def watch() -> None:
        while True:
            data = os.read(rfd, 64)
            if any(b in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP) for b in data):
                try:
                    worker.on_stop_signal()
                except Exception:
                    log.exception("handling a stop failed")

    threading.Thread(target=watch, name="signals", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    """``python -m guild_jupyter.orchestration.trial_worker_process SWEEP_ID FD`` (no warm launcher)."""
    early_stop: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: early_stop.append(1))
    args = sys.argv[1:] if argv is None else argv
    conn = socket.socket(fileno=int(args[1]))
    pid = os.getpid()
    conn.sendall(json.dumps({"pid": pid, "started": process_start_time(pid)}).encode() + b"\n")
    return serve(conn, os.environ.get("GUILD_JUPYTER_HOME"), args[0], early_stop)


if __name__ == "__main__":
    raise SystemExit(main())
