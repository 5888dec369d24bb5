"""One Dask run as its owner follows it: submitting attempts, applying what the worker
streams back, recording each attempt's end, retrying, passing a stop on.

The executor's one applying thread calls everything here but ``submit`` of the first
attempt (and ``wait``), so a run's record has one writer in this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

import guild_jupyter
from guild_jupyter.config import Config
from guild_jupyter.model.status import RunStatus
from guild_jupyter.orchestration.executors.dask_worker import (
    CLIENT_OWNED,
    FREE,
    claim_name,
    run_attempt,
    stop_name,
)
from guild_jupyter.orchestration.executors.run_archive import pack, unpack
from guild_jupyter.orchestration.launch import LaunchSpec
from guild_jupyter.orchestration.process_info import self_identity
from guild_jupyter.orchestration.reconcile import stop_requested

if TYPE_CHECKING:
    from guild_jupyter.orchestration.executors.dask_executor import DaskExecutor


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
        if lost:
            status = RunStatus.CANCELLED if requested else RunStatus.FAILED
            reason, code = requested or lost, None
        else:  # as the worker's supervisor recorded it (a run that ended first stays ended)
            status = RunStatus(result["status"])
            reason, code = result.get("reason"), result.get("exit_code")
            if status is RunStatus.CANCELLED:
                reason = requested or reason
            elif not status.terminal:  # cannot happen with a supervisor that ended cleanly
                status, reason = RunStatus.FAILED, f"the worker's run ended {status.value}"
        run = self.store.load_run(self.run_id)
        if status is RunStatus.COMPLETED and run.status is RunStatus.PENDING:
            self.store.set_status(self.run_id, RunStatus.RUNNING, host=self.worker)
        retry = None
        if status is RunStatus.FAILED and self.attempt <= self.spec.retries:
            pid, started = self_identity()  # the retry is pending from now on: followers wait
            retry = {"pid": pid, "pid_started": started}
        self.store.set_status(self.run_id, status, exit_code=code, reason=reason, host=self.worker,
                              retry=retry)
        self.executor.forget_claim(self.run_id, self.attempt)
        if retry is not None:
            delay = self.config.retry_delay * 2 ** (self.attempt - 1)
            timer = threading.Timer(delay, self.executor.inbox.put, (("retry", self.run_id),))
            timer.daemon = True
            timer.start()
            return
        self.end()

    def fail(self, reason: str) -> None:
        run = self.store.load_run(self.run_id)
        if not run.status.terminal:
            self.store.set_status(self.run_id, RunStatus.FAILED, reason=reason.splitlines()[0])
        self.end()

    def retry(self) -> None:
        requested = stop_requested(self.store, self.run_id)
        if requested:  # stopped while waiting to retry: the pending attempt ends cancelled
            if not self.store.load_run(self.run_id).status.terminal:
                self.store.set_status(self.run_id, RunStatus.CANCELLED, reason=requested)
            return self.end()
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


def outcome(future: Any, run: DaskRun) -> dict[str, Any]:
    """The task's result, or what became of its worker."""
    where = f"worker {run.worker}" if run.worker else "its worker"
    try:
        result = future.result()
    except BaseException as e:  # KilledWorker, a lost scheduler, a cancelled future...
        if run.stop_sent and not run.started:
            return {"lost": "cancelled before it started"}
        return {"lost": f"{where} was lost ({type(e).__name__}: {e})".splitlines()[0]}
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
