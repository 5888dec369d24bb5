"""The trial worker's side of the fork server: trial processes forked from a warm interpreter.

:class:`ProcessStarter` starts a trial's process either through a fork server
(:mod:`guild_jupyter.orchestration.fork_server`) or as a new interpreter with
``subprocess.Popen``; both give an object with what the worker uses of a
``Popen``: ``pid``, ``stdout``, ``stderr``, ``poll()``, ``wait()``, plus
``exit_fd`` for a forked one (readable once its exit code is known: the
server reaps it, not us). A command line the server cannot run as a fresh
``python`` would (another interpreter, options before the script), an
environment that differs from the server's in more than the per-trial
variables, or a server that failed, all fall back to ``Popen``.
"""

from __future__ import annotations

import array
import logging
import marshal
import os
import queue
import select
import socket
import subprocess
import sys
import threading
from typing import Any

from guild_jupyter.orchestration.fork_server import BOOT

log = logging.getLogger("guild_jupyter.trial_worker")
PER_TRIAL = (b"RUN_ID", b"RUN_DIR", b"GUILD_JUPYTER_ATTEMPT")  # and FLAG_*
LOST = "the fork server ended before the process did: its exit code is unknown"
SPAWN_TIMEOUT = 30.0  # seconds


def fork_enabled() -> bool:
    return os.environ.get("GUILD_JUPYTER_TRIAL_FORK", "1") != "0" and hasattr(os, "pidfd_open")


def _shared_env(env: dict[bytes, bytes]) -> frozenset[tuple[bytes, bytes]]:
    return frozenset(
        (k, v) for k, v in env.items() if k not in PER_TRIAL and not k.startswith(b"FLAG_")
    )


class ForkedProcess:
    """A trial process forked by the server (not our child: the server reports its end)."""

    def __init__(self, pid: int, stdout: Any, stderr: Any) -> None:
        self.pid, self.stdout, self.stderr = pid, stdout, stderr
        self.returncode: int | None = None
        self.lost: str | None = None  # why the exit code is unknown
        self.exit_fd, self._exit_w = os.pipe()
        self._ended = threading.Event()

    def _set_exit(self, rc: int, lost: str | None = None) -> None:
        if self._ended.is_set():
            return
        self.returncode, self.lost = rc, lost
        self._ended.set()
        try:  # the follower may have seen the code (poll) and closed its end already
            os.write(self._exit_w, b"x")
        except OSError:
            pass
        os.close(self._exit_w)  # here, never by the follower: its number is not reused under us

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def close(self) -> None:
        """The follower is done with ``exit_fd`` (once: the number may be reused after)."""
        fd, self.exit_fd = self.exit_fd, -1
        if fd >= 0:
            os.close(fd)


class ForkServer:
    """One running fork server, for one interpreter and one environment."""

    def __init__(self, interpreter: str, env: dict[bytes, bytes], preload: list[str]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = ours
        try:
            self.proc = subprocess.Popen(
                [interpreter, "-c", BOOT, str(theirs.fileno()), *preload],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=[theirs.fileno()],
            )
        finally:
            theirs.close()
        self.alive = True
        self._lock = threading.Lock()  # one spawn request at a time
        self._procs_lock = threading.Lock()
        self._replies: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._procs: dict[int, ForkedProcess] = {}
        self._early: dict[int, int] = {}  # exits reported before their process was registered
        threading.Thread(target=self._read, name="fork-server", daemon=True).start()

    def spawn(self, argv: list[str], cwd: str, env: dict[bytes, bytes]) -> ForkedProcess:
        """Fork the trial's process; raises OSError when the server cannot (use Popen then)."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            with self._lock:
                if not self.alive:
                    raise OSError("the fork server is not running")
                message = marshal.dumps((list(argv), cwd, dict(env)))
                fds = array.array("i", (out_w, err_w)).tobytes()
                self.sock.sendmsg([message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
                try:
                    reply = self._replies.get(timeout=SPAWN_TIMEOUT)
                except queue.Empty:  # a hung server: never used again (a late reply would
                    self.alive = False  # answer the wrong request)
                    raise OSError("the fork server did not answer") from None
                if reply[0] != "spawned":
                    raise OSError(f"the fork server could not start it: {reply[1]}")
                proc = ForkedProcess(reply[1], os.fdopen(out_r, "rb", 0), os.fdopen(err_r, "rb", 0))
                with self._procs_lock:
                    self._procs[proc.pid] = proc
                    early = self._early.pop(proc.pid, None)
                if early is not None:
                    proc._set_exit(early)
                return proc
        except BaseException:
            for fd in (out_r, err_r):
                try:
                    os.close(fd)
                except OSError:
                    pass
            raise
        finally:
            os.close(out_w)
            os.close(err_w)

    def close(self) -> None:
        """No more trials: the server exits (its running children go on)."""
        with self._lock:
            self.alive = False
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                break
            message = marshal.loads(data)
            if message[0] == "exit":
                with self._procs_lock:
                    proc = self._procs.pop(message[1], None)
                    if proc is None:
                        self._early[message[1]] = message[2]
                if proc is not None:
                    proc._set_exit(message[2])
            else:
                self._replies.put(message)
        # the reply first: a spawn waiting for one holds the lock
        self._replies.put(("error", "the fork server ended"))
        was_alive, self.alive = self.alive, False
        if was_alive:
            log.warning("the fork server ended (rc %s); trials start as new processes",
                        self.proc.poll())
        with self._procs_lock:
            orphans = list(self._procs.values())
            self._procs.clear()
        for proc in orphans:
            threading.Thread(target=_await_orphan, args=(proc,), daemon=True).start()


def _await_orphan(proc: ForkedProcess) -> None:
    """The server died before this process: wait for the process itself; its code is lost."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:
        proc._set_exit(1, LOST)
        return
    try:
        select.select([pidfd], [], [])
    finally:
        os.close(pidfd)
    proc._set_exit(1, LOST)


class ProcessStarter:
    """Starts trial processes: forked when a server can run them, else as new interpreters."""

    def __init__(self) -> None:
        self.enabled = fork_enabled()
        self._servers: dict[Any, ForkServer | None] = {}
        self._lock = threading.Lock()

    def start(self, argv: list[str], cwd: str, env: dict[bytes, bytes]) -> Any:
        server = self._server_for(argv, env) if self.enabled else None
        if server is not None:
            try:
                return server.spawn(argv, cwd, env)
            except OSError as e:
                log.info("forking %s failed (%s): a new process instead", argv[:2], e)
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

    def _server_for(self, argv: list[str], env: dict[bytes, bytes]) -> ForkServer | None:
        if len(argv) < 2 or argv[0] != sys.executable:
            return None  # another interpreter may not have guild_jupyter (nor the same start-up)
        if argv[1] == "-c":
            runner = "guild_jupyter.notebook.cell_runner"  # a cell trial: its runner, imported once
            preload = [runner] if runner in argv[2] else []
        elif argv[1].startswith("-"):
            return None
        else:
            preload = []
        key = (argv[0], tuple(preload), _shared_env(env))
        with self._lock:
            if key not in self._servers:
                try:
                    self._servers[key] = ForkServer(argv[0], env, preload)
                except OSError as e:
                    log.warning("cannot start a fork server (%s): trials start as new processes", e)
                    self._servers[key] = None
            server = self._servers[key]
        return server if server is not None and server.alive else None

    def close(self) -> None:
        with self._lock:
            servers = [s for s in self._servers.values() if s is not None]
            self._servers.clear()
        for server in servers:
            server.close()
