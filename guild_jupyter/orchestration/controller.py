"""The run controller: submits runs to supervisors, follows, stops and restarts them.

Any number of controllers (CLI invocations, kernels, the server) share one
store; the store and the supervisors hold all state, so a controller can die
at any time without losing a run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Union

from guild_jupyter.config import Config
from guild_jupyter.errors import GuildError
from guild_jupyter.model.run import Run
from guild_jupyter.orchestration import launcher
from guild_jupyter.orchestration.executors import Executor, Owner, executor_name, get_executor
from guild_jupyter.orchestration.executors.local import LOCAL_EXECUTOR
from guild_jupyter.orchestration.launch import LaunchSpec
from guild_jupyter.orchestration.process_info import is_alive
from guild_jupyter.orchestration.reconcile import (
    IN_PROCESS_KINDS,
    STOP_REQUEST,
    finish_orphan,
    owner_alive,
    reconcile,
)
from guild_jupyter.storage.layout import atomic_write_json
from guild_jupyter.storage.store import RunStore

Echo = Callable[[str], None]
Waitable = Union[subprocess.Popen, launcher.Handle, Owner]  # a run owner we can wait for


class Controller:
    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.config = Config.load(store.home)
        self._procs: dict[str, Waitable] = {}
        reconcile(store, min_interval=2.0)

    # starting ----------------------------------------------------------------------
    def submit(
        self,
        run: Run,
        spec: LaunchSpec,
        *,
        background: bool = False,
        echo: Echo | None = None,
        executor: Executor | None = None,
        resources: dict[str, float] | None = None,
    ) -> Run:
        """Hand the run to ``executor`` (local by default) and follow it unless ``background``."""
        spec.save(self.store.meta_dir(run.id))
        self._launch(run.id, executor, resources)
        if background:
            self._release(run.id)
            return self.store.load_run(run.id)
        return self.wait(run.id, echo=echo)

    def _release(self, run_id: str) -> None:
        owner = self._procs.pop(run_id, None)
        if owner is not None and not isinstance(owner, subprocess.Popen):
            owner.close()

    def _launch(
        self,
        run_id: str,
        executor: Executor | None = None,
        resources: dict[str, float] | None = None,
    ) -> None:
        """Start the run's supervisor through its executor and record who owns the run."""
        env = dict(os.environ, GUILD_JUPYTER_HOME=str(self.store.home))
        for var in ("RUN_ID", "RUN_DIR"):  # a run started from inside a run is its own run
            env.pop(var, None)
        _share_package_path(env)
        owner, pid, started = (executor or LOCAL_EXECUTOR).launch(
            self.store, run_id, env, resources
        )
        self._procs[run_id] = owner

        def record_owner(run: Run) -> None:
            if run.attempt.pid is None:
                run.attempt.pid, run.attempt.pid_started = pid, started

        self.store.update_run(run_id, record_owner)

    def restart(self, ref: str | int, *, background: bool = False, echo: Echo | None = None) -> Run:
        """Run a finished run again as a new attempt (same id, same launch, its checkpoint)."""
        run = self.store.resolve(ref)
        if run.kind in IN_PROCESS_KINDS:
            raise GuildError(
                f"run {run.short_id} ran in-process ({run.kind}); rerun it instead of restarting it"
            )
        if not os.path.exists(os.path.join(self.store.meta_dir(run.id), "launch.json")):
            raise GuildError(f"run {run.short_id} has no launch record to restart from")
        self.store.new_attempt(run.id)
        meta = self.store.meta_dir(run.id)
        try:
            os.unlink(os.path.join(meta, STOP_REQUEST))
        except FileNotFoundError:
            pass
        offset = (
            os.path.getsize(os.path.join(meta, "output"))
            if os.path.exists(os.path.join(meta, "output"))
            else 0
        )
        name = executor_name(run.source)
        self._launch(run.id, None if name == "local" else get_executor(name))
        if background:
            self._release(run.id)
            return self.store.load_run(run.id)
        return self.wait(run.id, echo=echo, offset=offset)

    # following -----------------------------------------------------------------------
    def wait(
        self,
        run_id: str,
        *,
        echo: Echo | None = None,
        poll: float = 0.05,
        timeout: float | None = None,
        offset: int = 0,
    ) -> Run:
        """Follow a run to its end, echoing its output from byte ``offset``; Ctrl-C stops the run."""
        deadline = None if timeout is None else time.time() + timeout
        proc = self._procs.get(run_id)
        while True:
            try:
                if echo is not None:
                    text, offset = self.store.read_output_lines_from(run_id, offset)
                    if text:
                        echo(text)
                if self._finished(run_id, proc, poll):
                    break
                if deadline is not None and time.time() > deadline:
                    raise GuildError(f"run {run_id[:8]} did not finish within {timeout} s")
            except KeyboardInterrupt:
                self.stop(run_id, wait=False, reason="interrupted")
                proc = None
        if echo is not None:
            text, offset = self.store.read_output_lines_from(run_id, offset)
            if text:
                echo(text)
        self._release(run_id)
        run = self.store.load_run(run_id)
        if not run.status.terminal:
            reconcile(self.store)
            run = self.store.load_run(run_id)
        return run

    def _finished(self, run_id: str, proc: Waitable | None, poll: float) -> bool:
        if proc is not None:
            try:
                proc.wait(timeout=poll)
                return True
            except subprocess.TimeoutExpired:
                return False
        run = self.store.load_run(run_id)
        if run.status.terminal:
            return True
        a = run.attempt
        if a.pid is not None and not is_alive(a.pid, a.pid_started):
            return True
        time.sleep(poll)
        return False

    # stopping --------------------------------------------------------------------
    def stop(self, ref: str | int, *, wait: bool = True, reason: str = "stopped by user") -> Run:
        """SIGTERM the run's process tree (SIGKILL after the grace period); it ends ``cancelled``."""
        run = self.store.resolve(ref)
        if run.status.terminal:
            raise GuildError(f"run {run.short_id} is already {run.status.value}")
        atomic_write_json(
            os.path.join(self.store.meta_dir(run.id), STOP_REQUEST),
            {"reason": reason, "time": time.time()},
        )
        a = run.attempt
        name = executor_name(run.source)
        if name != "local" and is_alive(a.pid, a.pid_started):
            executor = get_executor(name)
            # an owner that follows a remote run (maybe this process) is never signalled:
            # it sees the stop request and passes it on
            if executor.stop(self.store, run.id) or executor.owned_by_submitter:
                return self._wait_stopped(run.id) if wait else self.store.load_run(run.id)
        if is_alive(a.pid, a.pid_started):
            # in-process runs are interrupted (KeyboardInterrupt), never killed with their host
            os.kill(a.pid, signal.SIGINT if run.kind in IN_PROCESS_KINDS else signal.SIGTERM)
            return self._wait_stopped(run.id) if wait else self.store.load_run(run.id)
        return finish_orphan(
            self.store, run, "its supervisor was gone", grace=self.config.stop_grace_seconds
        )

    def _wait_stopped(self, run_id: str) -> Run:
        deadline = time.time() + self.config.stop_grace_seconds + 15
        while time.time() < deadline:
            run = self.store.load_run(run_id)
            if run.status.terminal:
                return run
            if not owner_alive(run):  # e.g. the stop reached a supervisor still starting up
                return finish_orphan(
                    self.store, run, "its supervisor was gone", grace=self.config.stop_grace_seconds
                )
            time.sleep(0.05)
        reconcile(self.store)
        return self.store.load_run(run_id)


def _share_package_path(env: dict[str, str]) -> None:
    """Let the supervisor and the run import this same guild_jupyter when it is not installed
    (a source checkout); an installed package is found through site-packages anyway."""
    import guild_jupyter

    parent = os.path.dirname(os.path.dirname(os.path.abspath(guild_jupyter.__file__)))
    if os.path.basename(parent) in ("site-packages", "dist-packages"):
        return
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if parent not in paths:
        env["PYTHONPATH"] = os.pathsep.join([parent, *paths])
