"""The sweep's side of its trial worker: start it, send it trials, hear their ends.

The worker is forked by the warm launcher when there is one (a millisecond),
else started as a new process on a socket pair. Ends arrive on one reader
thread and complete the trials' futures, so waiting for a trial is a blocked
``Future.result()``, not a poll of the store.

If the worker dies (kill -9, a crash), the trials it had are finished here as
reconciliation would finish them (``failed``, their processes stopped), and
the next trial starts a new worker; a worker that keeps dying ends the sweep.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import socket
import subprocess
import sys
import threading
from typing import Any

from guild_jupyter.errors import GuildError
from guild_jupyter.orchestration import launcher
from guild_jupyter.orchestration.launch import LaunchSpec
from guild_jupyter.storage.store import RunStore

MAX_DEATHS = 3  # workers that may die during one sweep before it gives up
REQUEUE = "requeue"  # a trial's end when its worker died before starting it


class TrialWorkerClient:
    def __init__(self, store: RunStore, sweep_id: str) -> None:
        self.store, self.sweep_id = store, sweep_id
        self.lock = threading.Lock()
        self.deaths = 0
        self._channel: _Channel | None = None
        self.closed = False

    @property
    def pid(self) -> int | None:
        return self._channel.pid if self._channel is not None else None

    def channel(self) -> _Channel:
        """The live worker (started if need be): who will own the next trial."""
        with self.lock:
            if self.closed:
                raise GuildError("the sweep's trial worker was closed")
            channel = self._channel
            if channel is None or channel.dead:
                if channel is not None and channel.dead:
                    self.deaths += 1
                    if self.deaths >= MAX_DEATHS:
                        raise GuildError(
                            f"the sweep's trial worker died {self.deaths} times; giving up"
                        )
                dead = channel
                channel = self._channel = _Channel(self.store, self.sweep_id)
                if dead is not None:
                    dead.settled.wait(30)
                    channel.adopt(dead.requeued)
            return channel

    def close(self) -> None:
        """No more trials: the worker finishes what it has (nothing, after a sweep) and exits."""
        with self.lock:
            self.closed = True
            if self._channel is not None:
                self._channel.close()


class _Channel:
    """One worker process and its socket."""

    def __init__(self, store: RunStore, sweep_id: str) -> None:
        self.store = store
        self.futures: dict[str, cf.Future] = {}
        self.lock = threading.Lock()
        self.dead = False
        self.settled = threading.Event()  # set once the trials of a dead worker are dealt with
        self.requeued: list[str] = []  # its trials that never started
        self.conn, self.pid, self.started, buffered = _start_worker(store, sweep_id)
        threading.Thread(
            target=self._read, args=(buffered,), name="trial-worker-reader", daemon=True
        ).start()

    def send(self, run_id: str, created: float, spec: LaunchSpec, parallel: int) -> cf.Future:
        """Hand a recorded, prepared trial to the worker; the future holds its final status."""
        message = {
            "trial": run_id,
            "created": created,
            "spec": spec.to_dict(),
            "parallel": parallel,
        }
        future: cf.Future = cf.Future()
        with self.lock:
            dead = self.dead
            if not dead:
                self.futures[run_id] = future
        if dead:
            future.set_result(self._finish(run_id))
            return future
        try:
            self.conn.sendall(json.dumps(message).encode() + b"\n")
        except OSError:
            pass  # the reader sees the worker gone and finishes this trial
        return future

    def _read(self, data: bytes) -> None:
        try:
            while True:
                while b"\n" in data:
                    line, data = data.split(b"\n", 1)
                    message = json.loads(line)
                    with self.lock:
                        future = self.futures.pop(message.get("done"), None)
                    if future is not None:
                        future.set_result(message.get("status"))
                chunk = self.conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (OSError, ValueError):
            pass
        with self.lock:
            self.dead = True
            orphans, self.futures = self.futures, {}
        ends = {run_id: self._finish(run_id) for run_id in orphans}
        self.settled.set()
        for run_id, future in orphans.items():
            future.set_result(ends[run_id])

    def _finish(self, run_id: str) -> str | None:
        """The worker died with this trial: end it as reconciliation would, unless it
        never started (``REQUEUE``: the sweep hands it to its next worker)."""
        from guild_jupyter.orchestration.reconcile import finish_orphan

        try:
            run = self.store.load_run(run_id)
            if run.status == "pending" and run.attempt.child_pid is None:
                self.requeued.append(run_id)
                return REQUEUE
            if not run.status.terminal:
                run = finish_orphan(self.store, run, f"its trial worker died (pid {self.pid})")
            return run.status.value
        except Exception:
            return None

    def adopt(self, run_ids: list[str]) -> None:
        """Own the never-started trials of a dead worker before anything can reconcile them
        (this worker reconciles when it sees older pending runs that are not its own)."""
        for run_id in run_ids:
            try:
                self.store.update_run(run_id, self._own)
            except Exception:
                pass  # gone or ended: the sweep's requeue sees it

    def _own(self, run: Any) -> None:
        if run.status == "pending" and run.attempt.child_pid is None:
            run.attempt.pid, run.attempt.pid_started = self.pid, self.started

    def close(self) -> None:
        try:
            self.conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _start_worker(store: RunStore, sweep_id: str) -> tuple[socket.socket, int, float | None, bytes]:
    from guild_jupyter.orchestration.controller import _share_package_path

    env = dict(os.environ, GUILD_JUPYTER_HOME=str(store.home))
    for var in ("RUN_ID", "RUN_DIR"):  # a sweep started inside a run: its trials are their own runs
        env.pop(var, None)
    _share_package_path(env)
    handle = launcher.spawn(sweep_id, env, worker=True)
    if handle is not None:
        handle.conn.settimeout(None)
        return handle.conn, handle.pid, handle.started, handle._buffer
    ours, theirs = socket.socketpair()
    with open(os.path.join(store.meta_dir(sweep_id), "supervisor.log"), "ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "guild_jupyter.orchestration.trial_worker_process",
                sweep_id,
                str(theirs.fileno()),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            pass_fds=[theirs.fileno()],
        )
    theirs.close()
    info, buffered = launcher.read_message(ours)
    return ours, int(info.get("pid") or proc.pid), info.get("started"), buffered
