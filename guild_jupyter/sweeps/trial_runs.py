"""Trials on the local executor: recorded here, prepared from the shared snapshot,
supervised by the sweep's trial worker.

Each trial is a full run, recorded as ``start_operation`` records one (flags
resolved, ``pending`` record and index row, snapshot, ``launch.json`` so it
can be restarted on its own later), then handed to the sweep's one worker
process instead of a supervisor of its own (see
:mod:`guild_jupyter.orchestration.trial_worker`). Other executors (Dask, ...)
keep going through ``start_operation``.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import threading
from typing import Any

from guild_jupyter.config import Config
from guild_jupyter.errors import GuildError
from guild_jupyter.model.flags import resolve_flags
from guild_jupyter.model.run import Run
from guild_jupyter.model.status import RunStatus
from guild_jupyter.orchestration.launch import LAUNCH
from guild_jupyter.orchestration.trial_client import TrialWorkerClient
from guild_jupyter.storage.store import RunStore, new_run
from guild_jupyter.sweeps.trial_prep import TrialPreparer, write_new


def worker_enabled(store: RunStore, op: Any, executor: str | None) -> bool:
    """Script, cell and guildfile trials on the local executor go to a trial worker
    (``GUILD_JUPYTER_TRIAL_WORKER=0`` gives each trial a supervisor of its own, as before)."""
    if op.kind == "function" or os.environ.get("GUILD_JUPYTER_TRIAL_WORKER", "1") == "0":
        return False
    if getattr(op, "steps", None) is not None:
        return False  # a pipeline runs its steps from its own process
    name = executor or getattr(Config.load(store.home), "executor", "local")
    return name == "local"


class WorkerTrials:
    def __init__(self, store: RunStore, sweep_id: str, op: Any, parallel: int) -> None:
        self.store, self.sweep_id, self.op, self.parallel = store, sweep_id, op, parallel
        self.config = Config.load(store.home)
        self.prep = TrialPreparer(store, sweep_id, op, self.config)
        self.client = TrialWorkerClient(store, sweep_id)
        self._prep_lock = threading.Lock()  # the first trial makes the shared snapshot

    def start(self, flags: dict[str, Any]) -> tuple[Run, cf.Future]:
        """Record and prepare a trial, hand it to the worker; the future completes at its end."""
        resolved = resolve_flags(self.op.flag_defs(), dict(flags), op=self.op.name)
        worker = self.client.channel()
        run = new_run(
            self.op.name,
            kind=self.op.kind,
            flags=resolved,
            source=self.op.run_source(),
            sweep=self.sweep_id,
        )
        # pending, and already owned: the worker may queue it, reconciliation leaves it alone
        run.attempt.pid, run.attempt.pid_started = worker.pid, worker.started
        self.store.add_run(run)
        try:
            if self.prep.files is None and self.prep.kind is not None:
                with self._prep_lock:
                    spec = self.prep.prepare(run)
            else:
                spec = self.prep.prepare(run)
            # a new file in a folder no one reads yet: no need for the temp-and-rename
            write_new(os.path.join(self.store.meta_dir(run.id), LAUNCH), json.dumps(spec.to_dict()))
        except BaseException as e:
            self.store.set_status(
                run.id, RunStatus.FAILED, reason=f"could not prepare the run: {e}"
            )
            raise
        return run, worker.send(run.id, run.created, spec, self.parallel)

    def requeue(self, run: Run) -> cf.Future:
        """A trial whose worker died before starting it: the next worker takes it (if
        reconciliation has not ended it meanwhile)."""
        from guild_jupyter.orchestration.launch import LaunchSpec
        from guild_jupyter.orchestration.reconcile import finish_orphan

        try:
            worker = self.client.channel()
        except GuildError as e:  # workers keep dying: the trial ends, as reconciliation would
            done: cf.Future = cf.Future()
            done.set_result(
                finish_orphan(self.store, self.store.load_run(run.id), str(e)).status.value
            )
            return done

        def reown(fresh: Run) -> None:
            if fresh.status is RunStatus.PENDING and fresh.attempt.child_pid is None:
                fresh.attempt.pid, fresh.attempt.pid_started = worker.pid, worker.started

        fresh = self.store.update_run(run.id, reown)
        if fresh.attempt.pid != worker.pid:
            done = cf.Future()
            done.set_result(fresh.status.value)
            return done
        spec = LaunchSpec.load(self.store.meta_dir(run.id))
        return worker.send(run.id, run.created, spec, self.parallel)

    def close(self) -> None:
        self.client.close()
