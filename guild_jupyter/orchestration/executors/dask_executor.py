"""The Dask executor: runs go to a Dask cluster; their record stays in this store.

``DaskExecutor.get(None)`` starts a ``LocalCluster`` on first use (one worker
process per core, one thread each: a run occupies a worker thread) and reuses
it; ``DaskExecutor.get("tcp://host:8786")`` connects to an existing scheduler
(Slurm/PBS through dask-jobqueue, Kubernetes, dask-gateway). Each attempt is
one task (``dask_worker.run_attempt``).

This process follows its Dask runs: it is recorded as their owner (pid and
start time, so reconciliation works as for local runs). One thread applies
what workers stream back (status, output lines, scalars) to the store as it
arrives, so widgets and the sidebar, which watch the store, stay live; copies
the run's files back when an attempt ends; and passes stop requests (the
``stop-request.json`` any process writes) to the worker as a Dask ``Event``.
A worker that dies mid-run fails the attempt with the reason, and it is
retried as a new attempt when the run asked for retries; lines already
streamed stay in the store.
"""

from __future__ import annotations

import atexit
import os
import queue
import subprocess
import sys
import threading
import time
from typing import Any

import guild_jupyter
from guild_jupyter.config import Config
from guild_jupyter.errors import GuildError
from guild_jupyter.model.status import RunStatus
from guild_jupyter.orchestration.executors import Executor
from guild_jupyter.orchestration.executors.dask_worker import (
    CLIENT_OWNED,
    FREE,
    TOPIC,
    claim_name,
    run_attempt,
    stop_name,
)
from guild_jupyter.orchestration.executors.run_archive import pack, unpack
from guild_jupyter.orchestration.launch import LaunchSpec
from guild_jupyter.orchestration.process_info import self_identity
from guild_jupyter.orchestration.reconcile import STOP_REQUEST, stop_requested

FINAL_WAIT = 5.0  # seconds an ended attempt waits for events still in flight


class DaskRun:
    """One run followed from here; ``wait`` is ``Popen.wait``-like for the controller."""

    def __init__(self, executor: DaskExecutor, store: Any, run_id: str, resources: Any) -> None:
        self.executor, self.store, self.run_id, self.resources = executor, store, run_id, resources
        self.meta = store.meta_dir(run_id)
        self.spec = LaunchSpec.load(self.meta)
        self.config = Config.load(store.home)
        self.pid = os.getpid()
        self.attempt = 0
        self.future: Any = None
        self.worker: str | None = None
        self.received = 0  # events of this attempt applied (they are numbered from 1)
        self.started = False  # a worker picked the attempt up
        self.stop_sent = False
        self.recorder: Any = None
        self.ended = threading.Event()

    def wait(self, timeout: float | None = None) -> str:
        if not self.ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"dask run {self.run_id[:8]}", timeout or 0)
        return self.store.load_run(self.run_id).status.value

    def close(self) -> None:
        """The controller stops following; this process still applies the run's events."""

    # submitting ----------------------------------------------------------------------
    def submit(self, attempt: int) -> None:
        from distributed import Variable

        from guild_jupyter.tracking.recorder import RunRecorder

        self.attempt, self.received, self.started, self.worker = attempt, 0, False, None
        self.recorder = RunRecorder(self.store, self.run_id, "no")  # scalars come parsed
        run = self.store.load_run(self.run_id)
        payload = {
            "run_id": self.run_id,
            "attempt": attempt,
            "record": {"op": run.op, "kind": run.kind, "flags": run.flags},
            "files": pack(self.store.run_dir(self.run_id), skip=CLIENT_OWNED[:3]),
            "spec": self.spec.to_dict(),
            "config": {
                "GUILD_JUPYTER_STOP_GRACE": str(self.config.stop_grace_seconds),
                "GUILD_JUPYTER_SAMPLE_INTERVAL": str(self.config.sample_interval),
            },
            "run_dir": self.store.run_dir(self.run_id),
            "package_dir": os.path.dirname(os.path.abspath(guild_jupyter.__file__)),
            "python": sys.executable,
            "shared_url": self.config.dask_shared_url,
        }
        client = self.executor.client()
        Variable(claim_name(self.run_id, attempt), client=client).set(FREE)
        self.future = client.submit(
            run_attempt,
            payload,
            key=f"guild-run-{self.run_id}-{attempt}",
            pure=False,
            resources=self.resources or None,
        )
        inbox, future = self.executor.inbox, self.future
        future.add_done_callback(lambda f: inbox.put(("done", self.run_id, attempt, f)))

    # applying what the worker sends --------------------------------------------------
    def apply(self, msg: dict[str, Any]) -> None:
        self.received += 1
        if "start" in msg:
            self.started, self.worker = True, msg["start"]["worker"]
        if "status" in msg and msg["status"]["status"] == "running":
            if self.store.load_run(self.run_id).status is RunStatus.PENDING:
                self.store.set_status(self.run_id, RunStatus.RUNNING, host=self.worker)
        for t, stream, text in msg.get("lines", ()):
            self.recorder.on_line(text, stream, t)
        points = msg.get("scalars")
        if points:
            for key, step, value, t in points:
                self.recorder.scalars.add(key, step, value, t)
            self.recorder.scalars.flush()

    def finish(self, result: dict[str, Any]) -> None:
        """The attempt is over: files home, its end recorded, then a retry or the end."""
        self.recorder.close()
        files = result.get("files") or _fetch_shared(result.get("files_url"))
        if files:
            unpack(files, self.store.run_dir(self.run_id), refuse=CLIENT_OWNED)
        requested = stop_requested(self.store, self.run_id)
        lost = result.get("lost")
        if requested:
            status, reason, code = RunStatus.CANCELLED, requested, result.get("exit_code")
        elif lost:
            status, reason, code = RunStatus.FAILED, lost, None
        else:
            status = RunStatus(result["status"])
            reason, code = result.get("reason"), result.get("exit_code")
            if not status.terminal:  # cannot happen with a supervisor that ended cleanly
                status, reason = RunStatus.FAILED, f"the worker's run ended {status.value}"
        run = self.store.load_run(self.run_id)
        if status is RunStatus.COMPLETED and run.status is RunStatus.PENDING:
            self.store.set_status(self.run_id, RunStatus.RUNNING, host=self.worker)
        self.store.set_status(self.run_id, status, exit_code=code, reason=reason, host=self.worker)
        self.executor.forget_claim(self.run_id, self.attempt)
        if status is RunStatus.FAILED and self.attempt <= self.spec.retries:
            delay = self.config.retry_delay * 2 ** (self.attempt - 1)
            timer = threading.Timer(delay, self.executor.inbox.put, (("retry", self.run_id),))
            timer.daemon = True
            timer.start()
            return
        self.end()

    def retry(self) -> None:
        if stop_requested(self.store, self.run_id):
            return self.end()
        pid, started = self_identity()
        self.store.new_attempt(self.run_id, pid=pid, pid_started=started)
        try:
            self.submit(self.attempt + 1)
        except Exception as e:
            reason = f"could not submit the retry to Dask: {type(e).__name__}: {e}"
            self.store.set_status(self.run_id, RunStatus.FAILED, reason=reason.splitlines()[0])
            self.end()

    def end(self) -> None:
        self.executor.forget(self.run_id)
        if self.stop_sent:
            self.executor.clear_stop(self.run_id)
        self.ended.set()

    def deliver_stop(self) -> None:
        """Set the run's stop event; an attempt no worker has picked up yet is cancelled."""
        if self.stop_sent:
            return
        self.stop_sent = True
        from distributed import Event

        Event(stop_name(self.run_id), client=self.executor.client()).set()
        if not self.started and self.future is not None:
            self.future.cancel()


class DaskExecutor(Executor):
    name = "dask"
    owned_by_submitter = True
    _instances: dict[str | None, DaskExecutor] = {}
    _lock = threading.Lock()

    @classmethod
    def get(cls, address: str | None = None) -> DaskExecutor:
        """One executor (one client, one cluster) per address and process, made on first use."""
        with cls._lock:
            executor = cls._instances.get(address)
            if executor is None:
                executor = cls._instances[address] = cls(address)
            return executor

    @classmethod
    def use(cls, client: Any) -> str:
        """Send runs through a ``distributed.Client`` made elsewhere (dask-gateway's
        ``cluster.get_client()``, which carries its TLS credentials); returns the name to
        give as ``executor``: the client's scheduler address."""
        address = client.scheduler.address
        with cls._lock:
            executor = cls._instances.get(address)
            if executor is None or executor._client is not client:
                executor = cls._instances[address] = cls(address)
                with executor._connect_lock:
                    executor._attach(client)
        return address

    def __init__(self, address: str | None = None) -> None:
        self.address = address
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._client: Any = None
        self._cluster: Any = None
        self._runs: dict[str, DaskRun] = {}
        self._ended: list[tuple[float, DaskRun, dict[str, Any]]] = []
        self._connect_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DaskExecutor({self.address or 'LocalCluster'})"

    # the cluster ---------------------------------------------------------------------
    def client(self) -> Any:
        with self._connect_lock:
            if self._client is None:
                self._attach(self._connect())
            return self._client

    def _attach(self, client: Any) -> None:
        self._client = client
        client.subscribe_topic(TOPIC, self._on_event)
        threading.Thread(target=self._apply_loop, name="guild-dask", daemon=True).start()

    def _connect(self) -> Any:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise GuildError(
                "the dask executor needs 'distributed': pip install 'guild-jupyter[dask]'"
            ) from None
        if self.address is None:
            self._cluster = LocalCluster(
                threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = Client(self._cluster, set_as_default=False)
            atexit.register(self._close)
            return client
        try:
            return Client(self.address, timeout="5s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:
            raise GuildError(f"cannot reach the Dask scheduler at {self.address}: {e}") from None

    def _close(self) -> None:
        """At exit: our LocalCluster goes with this process (its runs are reconciled as lost)."""
        for closable in (self._client, self._cluster):
            try:
                closable.close()
            except Exception:
                pass

    def check(self, resources: dict[str, float] | None = None) -> None:
        client = self.client()
        if not resources:
            return
        workers = client.scheduler_info(n_workers=-1).get("workers", {})
        if workers and not any(
            all(w.get("resources", {}).get(k, 0) >= v for k, v in resources.items())
            for w in workers.values()
        ):
            wanted = ", ".join(f"{k}={v:g}" for k, v in sorted(resources.items()))
            raise GuildError(f"no worker of the Dask cluster offers {wanted}")

    # the executor interface ------------------------------------------------------------
    def launch(
        self, store: Any, run_id: str, env: dict[str, str], resources: Any = None
    ) -> tuple[DaskRun, int, float | None]:
        run = DaskRun(self, store, run_id, resources)
        self._runs[run_id] = run
        try:
            run.submit(store.load_run(run_id).attempt.n)
        except Exception as e:
            self.forget(run_id)
            reason = f"could not submit to Dask: {type(e).__name__}: {e}".splitlines()[0]
            store.set_status(run_id, RunStatus.FAILED, reason=reason)
            raise GuildError(f"run {run_id[:8]} {reason}") from None
        pid, started = self_identity()
        return run, pid, started

    def stop(self, store: Any, run_id: str) -> bool:
        if run_id not in self._runs:
            return False  # followed by another process: it sees the stop request
        self.inbox.put(("stop", run_id))
        return True

    def forget(self, run_id: str) -> None:
        self._runs.pop(run_id, None)

    def clear_stop(self, run_id: str) -> None:
        from distributed import Event

        try:
            Event(stop_name(run_id), client=self.client()).clear()
        except Exception:
            pass

    def forget_claim(self, run_id: str, attempt: int) -> None:
        from distributed import Variable

        try:
            Variable(claim_name(run_id, attempt), client=self.client()).delete()
        except Exception:
            pass  # the scheduler is gone: nothing is left to forget

    # the one thread that applies everything ----------------------------------------------
    def _on_event(self, event: tuple[float, Any]) -> None:
        self.inbox.put(("event", event[1]))  # on the client's event loop: no I/O here

    def _apply_loop(self) -> None:
        while True:
            try:
                item = self.inbox.get(timeout=0.1)
            except queue.Empty:
                item = None
            try:
                if item is not None:
                    self._apply(item)
                self._poll()
            except Exception as e:  # a bad event must not end the following of all runs
                print(f"guild-jupyter dask executor: {type(e).__name__}: {e}", file=sys.stderr)

    def _apply(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "event":
            msg = item[1]
            run = self._runs.get(msg.get("r")) if isinstance(msg, dict) else None
            if run is not None and msg.get("a") == run.attempt and run.recorder is not None:
                run.apply(msg)
        elif kind == "done":
            _, run_id, attempt, future = item
            run = self._runs.get(run_id)
            if run is not None and attempt == run.attempt:
                self._ended.append((time.time() + FINAL_WAIT, run, _outcome(future, run)))
                run.future = None  # its result is here: the cluster may forget it
            future.release()
        elif kind == "stop":
            run = self._runs.get(item[1])
            if run is not None:
                run.deliver_stop()
        elif kind == "retry":
            run = self._runs.get(item[1])
            if run is not None:
                run.retry()

    def _poll(self) -> None:
        """End attempts whose events are all in (or waited for long enough); pass on stops."""
        now = time.time()
        for entry in list(self._ended):
            deadline, run, result = entry
            if run.received >= result.get("seq", 0) or now > deadline:
                self._ended.remove(entry)
                run.finish(result)
        for run in list(self._runs.values()):
            if not run.stop_sent and os.path.exists(os.path.join(run.meta, STOP_REQUEST)):
                run.deliver_stop()


def _outcome(future: Any, run: DaskRun) -> dict[str, Any]:
    """The task's result, or what became of its worker."""
    where = f"worker {run.worker}" if run.worker else "its worker"
    try:
        result = future.result()
    except BaseException as e:  # KilledWorker, CancelledError, a lost connection...
        name = type(e).__name__
        if "Cancelled" in name:
            return {"lost": "cancelled before it started"}
        return {"lost": f"{where} was lost ({name}: {e})".splitlines()[0]}
    if result.get("abandoned"):
        return {"lost": f"{where} died during the run", "seq": 0}
    return result


def _fetch_shared(url: str | None) -> bytes | None:
    """The run's files a worker wrote to the shared location (removed once read)."""
    if not url:
        return None
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    data = fs.cat_file(path)
    fs.rm_file(path)
    return data
