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

from guild_jupyter.errors import GuildError
from guild_jupyter.orchestration import launcher
from guild_jupyter.orchestration.launch import LaunchSpec
from guild_jupyter.storage.store import RunStore

MAX_DEATHS = 3  # workers that may die during one sweep before it gives up


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

    def submit(self, run_id: str, created: float, spec: LaunchSpec) -> cf.Future:
        """Hand a recorded, prepared trial to the worker; the future holds its final status."""
        message = (
            json.dumps({"trial": run_id, "created": created, "spec": spec.to_dict()}).encode()
            + b"\n"
        )
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
                channel = self._channel = _Channel(self.store, self.sweep_id)
            return channel.send(run_id, message)

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
        self.conn, self.pid, buffered = _start_worker(store, sweep_id)
        threading.Thread(
            target=self._read, args=(buffered,), name="trial-worker-reader", daemon=True
        ).start()

    def send(self, run_id: str, message: bytes) -> cf.Future:
        future: cf.Future = cf.Future()
        with self.lock:
            self.futures[run_id] = future
        try:
            self.conn.sendall(message)
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
        for run_id, future in orphans.items():
            future.set_result(self._finish(run_id))

    def _finish(self, run_id: str) -> str | None:
        """The worker died with this trial: end it as reconciliation would."""
        from guild_jupyter.orchestration.reconcile import finish_orphan

        try:
            run = self.store.load_run(run_id)
            if not run.status.terminal:
                run = finish_orphan(self.store, run, f"its trial worker died (pid {self.pid})")
            return run.status.value
        except Exception:
            return None

    def close(self) -> None:
        try:
            self.conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _start_worker(store: RunStore, sweep_id: str) -> tuple[socket.socket, int, bytes]:
    from guild_jupyter.orchestration.controller import _share_package_path

    env = dict(os.environ, GUILD_JUPYTER_HOME=str(store.home))
    for var in ("RUN_ID", "RUN_DIR"):  # a sweep started inside a run: its trials are their own runs
        env.pop(var, None)
    _share_package_path(env)
    handle = launcher.spawn(sweep_id, env, worker=True)
    if handle is not None:
        conn, pid, buffered = handle.conn, handle.pid, handle._buffer
        conn.settimeout(None)
        return conn, pid, buffered
    ours, theirs = socket.socketpair()
    with open(os.path.join(store.meta_dir(sweep_id), "supervisor.log"), "ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "guild_jupyter.orchestration.trial_worker",
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
    return ours, int(info.get("pid") or proc.pid), buffered
