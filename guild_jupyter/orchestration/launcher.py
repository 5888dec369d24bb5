"""A warm launcher: a small fork server that starts supervisors in a millisecond.

A fresh interpreter plus our imports costs ~100 ms on a small machine, more
than a trivial script takes to run. The launcher pays that once: it is a
single-threaded process that has imported the supervisor and answers requests
on a Unix socket by forking; the child (the supervisor) leaves the launcher's
session, takes the submitter's environment and supervises the run. The
submitter keeps the connection and hears the final status the moment it is
recorded, so following a run needs no polling.

The launcher is keyed by interpreter, ``PYTHONPATH`` and the code's
modification times, so an edited checkout never runs stale code; it exits after being idle for
``GUILD_JUPYTER_LAUNCHER_IDLE`` seconds (default 600). When it is not there
(first run, or ``GUILD_JUPYTER_LAUNCHER=0``) the controller starts a
supervisor as a new process instead: same behaviour, slower start.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import zlib
from typing import Any

import guild_jupyter

IDLE = float(os.environ.get("GUILD_JUPYTER_LAUNCHER_IDLE", "600"))


def enabled() -> bool:
    return os.environ.get("GUILD_JUPYTER_LAUNCHER", "1") != "0"


@functools.lru_cache(maxsize=1)
def _fingerprint() -> str:
    """Once per process: a process keeps running the code it imported, edits or not."""
    root = os.path.dirname(os.path.abspath(guild_jupyter.__file__))
    latest = 0.0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in ("__pycache__", "labextension")]
        for name in filenames:
            if name.endswith(".py"):
                latest = max(latest, os.stat(os.path.join(dirpath, name)).st_mtime)
    # PYTHONPATH too: a supervisor's imports (and the packages it records) follow it
    parts = (sys.executable, root, latest, guild_jupyter.__version__, os.environ.get("PYTHONPATH"))
    key = "\0".join(map(str, parts)).encode()
    return f"{zlib.crc32(key):08x}{zlib.adler32(key):08x}"  # zlib: cheaper to import than hashlib


def socket_path() -> str:
    base = os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("TMPDIR") or "/tmp"
    directory = os.path.join(base, f"guild-jupyter-{os.getuid()}")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    return os.path.join(directory, f"launcher-{_fingerprint()}.sock")


# the client side ---------------------------------------------------------------
class Handle:
    """A run's supervisor started by the launcher: its pid, and ``wait`` like ``Popen.wait``."""

    def __init__(self, conn: socket.socket, pid: int, started: float | None) -> None:
        self.conn, self.pid, self.started = conn, pid, started
        self.status: str | None = None
        self._buffer = b""

    def wait(self, timeout: float | None = None) -> str | None:
        """The final status, or ``subprocess.TimeoutExpired``; None if the supervisor vanished."""
        if self.conn is None:
            return self.status
        self.conn.settimeout(timeout)
        try:
            while b"\n" not in self._buffer:
                data = self.conn.recv(4096)
                if not data:
                    break
                self._buffer += data
        except TimeoutError:
            raise subprocess.TimeoutExpired("supervisor", timeout) from None
        except OSError:
            pass
        if b"\n" in self._buffer:
            self.status = json.loads(self._buffer.split(b"\n", 1)[0]).get("status")
        self.close()
        return self.status

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None  # type: ignore[assignment]


def spawn(run_id: str, env: dict[str, str], worker: bool = False) -> Handle | None:
    """Ask the launcher for a supervisor (with ``worker``: a sweep's trial worker, whose
    connection then carries its trials); None (after starting a launcher for next time)
    if there is none."""
    if not enabled():
        return None
    path = socket_path()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(2.0)
        conn.connect(path)
        request = {"run": run_id, "env": env, **({"worker": True} if worker else {})}
        conn.sendall(json.dumps(request).encode() + b"\n")
        info, rest = read_message(conn)
        handle = Handle(conn, int(info["pid"]), info.get("started"))
        handle._buffer = rest
        return handle
    except (FileNotFoundError, ConnectionRefusedError):
        conn.close()
        _start_server(path, env)
        return None
    except (OSError, ValueError, KeyError):
        conn.close()
        return None


def _start_server(path: str, env: dict[str, str]) -> None:
    subprocess.Popen(
        [sys.executable, "-m", "guild_jupyter.orchestration.launcher", path],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd="/",
    )


# the server side ---------------------------------------------------------------
def _warm_up() -> None:
    """Import (and compute) in the launcher what every supervisor needs."""
    import sqlite3  # noqa: F401

    from guild_jupyter.orchestration import (  # noqa: F401
        provenance,
        resources,
        supervisor,
        trial_worker_process,
    )

    provenance.installed_packages()
    provenance.platform_name()
    try:
        import psutil  # noqa: F401
    except ImportError:
        pass


def serve(path: str) -> int:
    lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another launcher is starting or serving
    _warm_up()
    if os.path.exists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    last = time.time()
    try:
        while True:
            _reap()
            ready, _, _ = select.select([server], [], [], 1.0)
            if not ready:
                if time.time() - last > IDLE:
                    return 0
                continue
            conn, _ = server.accept()
            last = time.time()
            try:
                conn.settimeout(5.0)
                request, _ = read_message(conn)
            except (OSError, ValueError):
                conn.close()
                continue
            pid = os.fork()
            if pid == 0:
                server.close()
                os._exit(_child(conn, request))
            conn.close()
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        server.close()


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def read_message(conn: socket.socket) -> tuple[dict[str, Any], bytes]:
    """One JSON line from ``conn``, and whatever arrived after it."""
    data = b""
    while b"\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("the other side closed the connection")
        data += chunk
    first, rest = data.split(b"\n", 1)
    return json.loads(first), rest


def _child(conn: socket.socket, request: dict[str, Any]) -> int:
    """In the fork: become the run's supervisor, detached from the launcher."""
    try:
        os.setsid()
        early_stop: list[int] = []
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda *_: early_stop.append(1))
        from guild_jupyter.orchestration.process_info import process_start_time
        from guild_jupyter.orchestration.supervisor import supervise
        from guild_jupyter.storage.store import RunStore

        pid = os.getpid()
        conn.settimeout(5.0)
        conn.sendall(json.dumps({"pid": pid, "started": process_start_time(pid)}).encode() + b"\n")
        env = request["env"]
        os.environ.clear()
        os.environ.update(env)
        home = env.get("GUILD_JUPYTER_HOME")
        run_id = request["run"]

        meta = RunStore(home).meta_dir(run_id)
        log = os.open(
            os.path.join(meta, "supervisor.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
        )
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        os.chdir("/")

        def notify(status: str) -> None:
            try:
                conn.sendall(json.dumps({"status": status}).encode() + b"\n")
            except OSError:
                pass  # the submitter went away (a background run, or it died): fine

        if request.get("worker"):  # a sweep's trial worker: the connection is its channel
            from guild_jupyter.orchestration.trial_worker_process import serve as serve_trials

            return serve_trials(conn, home, run_id, early_stop)
        return supervise(run_id, home, notify=notify, early_stop=early_stop)
    except BaseException:
        import traceback

        traceback.print_exc()
        return 1


if __name__ == "__main__":
    raise SystemExit(serve(sys.argv[1]))
