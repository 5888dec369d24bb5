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
import sys
import threading
import time
from typing import Any

from guild_jupyter.errors import GuildError
from guild_jupyter.model.status import RunStatus
from guild_jupyter.orchestration.executors import Executor
from guild_jupyter.orchestration.executors.dask_run import DaskRun, outcome
from guild_jupyter.orchestration.executors.dask_worker import TOPIC, claim_name, stop_name
from guild_jupyter.orchestration.process_info import self_identity
from guild_jupyter.orchestration.reconcile import STOP_REQUEST

FINAL_WAIT = 5.0  # seconds an ended attempt waits for events still in flight


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
        self._closed = False

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

    def close(self) -> None:
        """Disconnect (and stop the LocalCluster this executor started); runs it still
        follows are then lost, as if this process had ended."""
        with self._lock:
            if self._instances.get(self.address) is self:
                del self._instances[self.address]
        self._close()

    def _close(self) -> None:
        """At exit: our LocalCluster goes with this process (its runs are reconciled as lost)."""
        self._closed = True
        for closable in (self._client, self._cluster):
            try:
                if closable is not None:
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
        while not self._closed:
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
                self._ended.append((time.time() + FINAL_WAIT, run, outcome(future, run)))
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
                try:
                    run.finish(result)
                except Exception as e:  # e.g. a refused archive: the run still ends, failed
                    run.fail(f"could not record its end: {type(e).__name__}: {e}")
        for run in list(self._runs.values()):
            if not run.stop_sent and os.path.exists(os.path.join(run.meta, STOP_REQUEST)):
                run.deliver_stop()
