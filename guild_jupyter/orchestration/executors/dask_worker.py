"""The worker side of a Dask run: one task per attempt.

The task (``run_attempt``, pickled by reference, so the worker needs this
package installed) rebuilds the run in a worker-local store under the
worker's scratch directory, so it never needs to see the orchestrator's store;
starts the ordinary supervisor there (``worker_supervisor``); and, while the
run goes, tails its output, scalars and status and sends them to the
orchestrator as Dask events (``Worker.log_event`` on one topic, numbered per
attempt). A stop arrives as a Dask ``Event``; a task released by the
scheduler (its orchestrator went away) stops the run too. When the
supervisor exits, the task returns the final status and the run's files as
a tar, and removes the local copy.

A task that Dask re-runs after its worker died does not run the operation
again: it finds its attempt's claim taken and returns at once, and the
orchestrator records the attempt ``failed`` (retrying it as a new attempt
when asked), as it does when Dask gives up with ``KilledWorker``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from typing import Any

TOPIC = "guild-jupyter-runs"
MAX_MESSAGE = 256 * 1024  # bytes of output text per event (the scheduler keeps recent events)
RECORD = struct.Struct("!QB")
# the orchestrator's own record of a run: never sent back from a worker
CLIENT_OWNED = (
    ".run/run.json",
    ".run/output",
    ".run/output.index",
    ".run/scalars",
    ".run/launch.json",
    ".run/sourcecode",
    ".run/stop-request.json",
)


FREE = "free"


def claim_name(run_id: str, attempt: int) -> str:
    return f"guild-jupyter-claim-{run_id}-{attempt}"


def stop_name(run_id: str) -> str:
    return f"guild-jupyter-stop-{run_id}"


class Channel:
    """Numbered events of one attempt to the orchestrator."""

    def __init__(self, worker: Any, run_id: str, attempt: int) -> None:
        self.worker, self.run_id, self.attempt, self.seq = worker, run_id, attempt, 0

    def send(self, **body: Any) -> None:
        self.seq += 1
        self.worker.log_event(TOPIC, {"r": self.run_id, "a": self.attempt, "s": self.seq, **body})


class RunTail:
    """What the local run has written since the last read: whole lines with their
    index records, scalar points, and a status change."""

    def __init__(self, meta: str) -> None:
        self.meta = meta
        self.text_offset = self.index_offset = 0
        self.scalar_offsets: dict[str, int] = {}
        self.record_mtime = 0.0
        self.status: str | None = None

    def read(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        lines = self._lines()
        if lines:
            out["lines"] = lines
        points = self._points()
        if points:
            out["scalars"] = points
        status = self._status()
        if status is not None:
            out["status"] = status
        return out

    def _lines(self) -> list[list[Any]]:
        text = _read_from(os.path.join(self.meta, "output"), self.text_offset)
        index = _read_from(os.path.join(self.meta, "output.index"), self.index_offset)
        end = text.rfind(b"\n") + 1
        if not end:
            return []
        texts = text[:end].split(b"\n")[:-1]
        n = min(len(texts), len(index) // RECORD.size)  # the index record follows its line
        out = []
        for i in range(n):
            ms, stream = RECORD.unpack_from(index, i * RECORD.size)
            self.text_offset += len(texts[i]) + 1
            out.append([ms / 1000.0, stream, texts[i].decode("utf-8", "replace")])
        self.index_offset += n * RECORD.size
        return out

    def _points(self) -> list[list[Any]]:
        folder = os.path.join(self.meta, "scalars")
        try:
            names = sorted(n for n in os.listdir(folder) if n.endswith(".csv"))
        except FileNotFoundError:
            return []
        out: list[list[Any]] = []
        for name in names:
            offset = self.scalar_offsets.get(name, 0)
            data = _read_from(os.path.join(folder, name), offset)
            end = data.rfind(b"\n") + 1
            self.scalar_offsets[name] = offset + end
            for line in data[:end].decode("utf-8", "replace").split("\n")[:-1]:
                parts = line.split(",")
                if len(parts) != 4:
                    continue
                try:
                    out.append([parts[0], int(parts[1]), float(parts[2]), float(parts[3])])
                except ValueError:
                    continue
        return out

    def _status(self) -> dict[str, Any] | None:
        path = os.path.join(self.meta, "run.json")
        try:
            mtime = os.stat(path).st_mtime
            if mtime == self.record_mtime:
                return None
            self.record_mtime = mtime
            with open(path, encoding="utf-8") as f:
                record = json.load(f)
        except (OSError, ValueError):
            return None
        attempt = record["attempts"][-1]
        if attempt["status"] in (self.status, "pending"):  # the orchestrator knows pending
            return None
        self.status = attempt["status"]
        return {k: attempt.get(k) for k in ("status", "started", "stopped", "exit_code", "reason")}


def _read_from(path: str, offset: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return b""


def run_attempt(payload: dict[str, Any]) -> dict[str, Any]:
    """The Dask task of one attempt (see the module docstring)."""
    from distributed import Event, Variable, get_client, get_worker
    from distributed.worker import thread_state

    worker = get_worker()
    key = getattr(thread_state, "key", None)
    client = get_client()
    run_id, n = payload["run_id"], payload["attempt"]
    claim = Variable(claim_name(run_id, n), client=client)  # set to FREE by the orchestrator
    if claim.get(timeout=10) != FREE:
        return {"abandoned": True, "worker": worker.address}  # a re-run after a worker died
    claim.set(worker.address)
    channel = Channel(worker, run_id, n)
    channel.send(start={"worker": worker.address})
    stop = Event(stop_name(run_id), client=client)
    if stop.is_set():
        return {"status": "cancelled", "seq": channel.seq, "worker": worker.address}
    # one local store per worker, kept while the worker lives (a new one per run costs
    # tens of ms of SQLite set-up); each run leaves it when its attempt ends
    home = os.path.join(worker.local_directory, "guild-jupyter")
    store = _local_store(home)
    try:
        run_dir = _prepare(store, payload)
        return _follow(home, run_dir, payload, channel, stop, worker, key)
    finally:
        shutil.rmtree(os.path.join(store.runs_dir, run_id), ignore_errors=True)
        store.index.remove(run_id)


_stores: dict[str, Any] = {}


def _local_store(home: str) -> Any:
    """This worker's store, opened once (its index serialises the worker's threads)."""
    store = _stores.get(home)
    if store is None or not os.path.isdir(store.runs_dir):
        from guild_jupyter.storage.store import RunStore

        store = _stores[home] = RunStore(home, progress=lambda *a: None)
    return store


def _prepare(store: Any, payload: dict[str, Any]) -> str:
    """The run in the worker-local store: its record (pending), files and launch."""
    import guild_jupyter
    from guild_jupyter.orchestration.executors.run_archive import unpack
    from guild_jupyter.orchestration.launch import LaunchSpec

    record = payload["record"]
    store.create_run(
        record["op"], kind=record["kind"], flags=record["flags"], run_id=payload["run_id"]
    )
    if payload["attempt"] > 1:  # the run sees its attempt number (GUILD_JUPYTER_ATTEMPT)
        store.update_run(payload["run_id"], lambda r: setattr(r.attempt, "n", payload["attempt"]))
    run_dir = store.run_dir(payload["run_id"])
    unpack(payload["files"], run_dir, refuse=CLIENT_OWNED[:3])
    package = os.path.dirname(os.path.abspath(guild_jupyter.__file__))
    moves = [(payload["run_dir"], run_dir), (payload["package_dir"], package)]

    def local(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value == payload["python"]:
            return sys.executable
        for old, new in moves:
            if value == old or value.startswith(old + os.sep):
                return new + value[len(old) :]
        return value

    spec = dict(payload["spec"])
    spec["argv"] = [local(a) for a in spec["argv"]]
    spec["env"] = {  # PYTHONPATH and the like: each entry
        k: os.pathsep.join(local(p) for p in v.split(os.pathsep)) if isinstance(v, str) else v
        for k, v in (spec.get("env") or {}).items()
    }
    spec["cwd"] = local(spec.get("cwd"))
    if spec["cwd"] is not None and not os.path.isdir(spec["cwd"]):
        spec["cwd"] = None  # a folder only the orchestrator's machine has: the run directory
    if spec.get("project_dir") and not os.path.isdir(spec["project_dir"]):
        spec["project_dir"] = None
    spec["retries"] = 0  # the orchestrator retries (a worker may die too)
    LaunchSpec(**spec).save(store.meta_dir(payload["run_id"]))
    return run_dir


def _follow(
    home: str,
    run_dir: str,
    payload: dict[str, Any],
    channel: Channel,
    stop: Any,
    worker: Any,
    key: Any,
) -> dict[str, Any]:
    from guild_jupyter.orchestration.executors.run_archive import pack

    meta = os.path.join(run_dir, ".run")
    env = dict(os.environ, GUILD_JUPYTER_HOME=home)
    env.update(payload["config"])  # the orchestrator's settings, as their variables
    for var in ("RUN_ID", "RUN_DIR"):
        env.pop(var, None)
    _share_package_path(env)
    supervisor = _start_supervisor(payload["run_id"], home, env)
    tail = RunTail(meta)
    poll = float(payload.get("poll", 0.05))
    checked = 0.0
    stopping = False
    try:
        while True:
            ended = supervisor.ended(poll)
            _send(channel, tail.read())
            if ended:
                break
            now = time.time()
            if not stopping and now - checked > 0.2:
                checked = now
                reason = "stopped" if stop.is_set() else None
                if reason is None and _released(worker, key):
                    reason = "its orchestrator went away"
                if reason is not None:
                    with open(os.path.join(meta, "stop-request.json"), "w", encoding="utf-8") as f:
                        json.dump({"reason": reason, "time": now}, f)
                    supervisor.stop()
                    stopping = True
    finally:
        supervisor.close()
    _send(channel, tail.read())
    with open(os.path.join(meta, "run.json"), encoding="utf-8") as f:
        attempt = json.load(f)["attempts"][-1]
    out = {
        "status": attempt["status"],
        "exit_code": attempt.get("exit_code"),
        "reason": attempt.get("reason"),
        "seq": channel.seq,
        "worker": worker.address,
    }
    files = pack(run_dir, skip=CLIENT_OWNED)
    shared = payload.get("shared_url")
    if shared:  # through shared storage, not through the scheduler and the result
        import fsspec

        url = f"{shared.rstrip('/')}/{payload['run_id']}-{payload['attempt']}.tar"
        with fsspec.open(url, "wb", auto_mkdir=True) as f:
            f.write(files)
        out["files_url"] = url
    else:
        out["files"] = files
    return out


class _Supervisor:
    """The run's supervisor on this worker: forked by the warm launcher (milliseconds, as for
    local runs) with a watchdog that stops it if this worker process dies; or, while no launcher
    is up, a new ``worker_supervisor`` process, which watches its parent itself."""

    def __init__(self, pid: int, handle: Any = None, proc: Any = None, watchdog: Any = None):
        self.pid, self.handle, self.proc, self.watchdog = pid, handle, proc, watchdog

    def ended(self, poll: float) -> bool:
        if self.proc is not None:
            try:
                self.proc.wait(timeout=poll)
                return True
            except subprocess.TimeoutExpired:
                return False
        try:
            self.handle.wait(timeout=poll)  # the final status, or None if it vanished
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self) -> None:
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
        if self.watchdog is not None:
            self.watchdog.kill()
            self.watchdog.wait()


def _start_supervisor(run_id: str, home: str, env: dict[str, str]) -> _Supervisor:
    from guild_jupyter.orchestration import launcher

    handle = launcher.spawn(run_id, env)
    if handle is not None:
        watchdog = subprocess.Popen(  # a shell loop: no interpreter to start
            [
                "/bin/sh",
                "-c",
                f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 0.5; done; "
                f"kill -TERM {handle.pid} 2>/dev/null",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        return _Supervisor(handle.pid, handle=handle, watchdog=watchdog)
    with open(os.path.join(home, "supervisor.log"), "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", f"{__package__}.worker_supervisor", run_id],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    return _Supervisor(proc.pid, proc=proc)


def _send(channel: Channel, batch: dict[str, Any]) -> None:
    """A status change first, then the lines (long output in several events), then scalars."""
    if "status" in batch:
        channel.send(status=batch["status"])
    lines = batch.get("lines", [])
    while len(lines) > 0:
        size, cut = 0, 0
        while cut < len(lines) and (cut == 0 or size + len(lines[cut][2]) < MAX_MESSAGE):
            size += len(lines[cut][2]) + 16
            cut += 1
        channel.send(lines=lines[:cut])
        lines = lines[cut:]
    if "scalars" in batch:
        channel.send(scalars=batch["scalars"])


def _released(worker: Any, key: Any) -> bool:
    """The scheduler let go of this task: nobody follows the run any more."""
    ts = worker.state.tasks.get(key) if key is not None else None
    return ts is None or ts.state in ("cancelled", "released", "forgotten")


def _share_package_path(env: dict[str, str]) -> None:
    from guild_jupyter.orchestration.controller import _share_package_path as share

    share(env)
