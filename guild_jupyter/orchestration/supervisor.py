"""The per-run supervisor: ``python -m guild_jupyter.orchestration.supervisor RUN_ID``.

Started detached (its own session) by the controller, it outlives whoever
started it. It waits for a slot, starts the user's process in its own process
group, tees stdout/stderr into the run's output with per-line timestamps,
parses scalars as lines arrive, samples resources, collects provenance, and
records the exit. On SIGTERM it stops the process tree (SIGTERM, then SIGKILL
after the grace period) and records ``cancelled``. Failed attempts are retried
with exponential backoff when the launch asks for retries.
"""

from __future__ import annotations

import codecs
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from guild_jupyter.config import Config
from guild_jupyter.model.run import hostname
from guild_jupyter.model.status import RunStatus
from guild_jupyter.orchestration.launch import LaunchSpec
from guild_jupyter.orchestration.process_info import (
    descendants,
    process_start_time,
    self_identity,
    signal_tree,
)
from guild_jupyter.orchestration.reconcile import stop_requested
from guild_jupyter.orchestration.slots import QueueTurn, SlotPool
from guild_jupyter.storage import layout
from guild_jupyter.storage.output import STDERR, STDOUT, LineSplitter
from guild_jupyter.storage.store import RunStore
from guild_jupyter.tracking.recorder import RunRecorder

log = logging.getLogger("guild_jupyter.supervisor")
CHECKPOINT = "checkpoint.json"


def exit_status(rc: int, stopped: str | None = None) -> tuple[RunStatus, str | None]:
    """A supervised process's end as a status and reason (``stopped``: the stop's reason)."""
    if stopped is not None:
        return RunStatus.CANCELLED, stopped
    if rc == 0:
        return RunStatus.COMPLETED, None
    if rc < 0:
        return RunStatus.FAILED, f"killed by signal {signal.Signals(-rc).name}"
    return RunStatus.FAILED, f"exit code {rc}"


class Supervisor:
    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.meta = store.meta_dir(run_id)
        self.run_dir = store.run_dir(run_id)
        self.spec = LaunchSpec.load(self.meta)
        self.config = Config.load(store.home)
        self.signalled = False  # set by signal handlers, acted on by the stopper thread
        self.exiting = False
        self._turn = QueueTurn(store)
        self.proc: subprocess.Popen[bytes] | None = None

    # stopping ------------------------------------------------------------------
    # The signal handler only sets a flag: anything more (locks, threads, imports)
    # could deadlock against whatever the main thread was doing when it arrived.
    def _on_signal(self, signum: int, frame: object) -> None:
        self.signalled = True

    def _stopper(self) -> None:
        """Waits for a stop; then terminates the running process tree, now and on every later attempt."""
        while not self.signalled and not self.exiting:
            time.sleep(0.02)
        if self.exiting:
            return
        handled = None
        while not self.exiting:
            proc = self.proc
            if proc is not None and proc is not handled:
                handled = proc
                self._terminate(proc)
            time.sleep(0.02)

    def _terminate(self, proc: subprocess.Popen[bytes]) -> None:
        def running(pids: list[int]) -> bool:
            return any(process_start_time(p) is not None for p in pids)

        tree = [proc.pid, *descendants(proc.pid)]
        signal_tree(proc.pid, tree, signal.SIGTERM)
        deadline = time.time() + self.config.stop_grace_seconds
        while time.time() < deadline and running(tree):
            time.sleep(0.05)
        tree += descendants(proc.pid)
        if running(tree):
            signal_tree(proc.pid, tree, signal.SIGKILL)

    # the run -------------------------------------------------------------------
    def main(self, notify: Callable[[str], None] | None = None) -> int:
        """Supervise the run to its end; ``notify`` hears the final status as soon as it is recorded."""
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        threading.Thread(target=self._stopper, name="stopper", daemon=True).start()
        try:
            return self._main()
        finally:
            self.exiting = True
            if notify is not None:
                try:
                    notify(self.store.load_run(self.run_id).status.value)
                except Exception:
                    log.exception("could not notify the submitter")

    def _main(self) -> int:
        pool = SlotPool(self.store.home, self.config)
        while True:
            slot = pool.acquire(self.run_id, lambda: self.signalled, self._my_turn)
            if slot is None:
                self.store.set_status(
                    self.run_id,
                    RunStatus.CANCELLED,
                    reason=stop_requested(self.store, self.run_id) or "stopped",
                )
                return 0
            try:
                status = self.attempt()
            finally:
                slot.release()
            run = self.store.load_run(self.run_id)
            if status is RunStatus.FAILED and run.status is RunStatus.PENDING:  # a retry follows
                failed = run.attempt.n - 1
                deadline = time.time() + self.config.retry_delay * 2 ** (failed - 1)
                while time.time() < deadline:
                    if self.signalled:  # stopped while waiting to retry
                        self.store.set_status(
                            self.run_id,
                            RunStatus.CANCELLED,
                            reason=stop_requested(self.store, self.run_id) or "stopped",
                        )
                        return 0
                    time.sleep(0.02)
                continue
            return 0

    def _my_turn(self) -> bool:
        """No older run is waiting for a slot (dead waiters are reconciled away)."""
        return self._turn(self.store.load_run(self.run_id).created)

    def _env(self, attempt: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.spec.env)
        env.update(
            RUN_ID=self.run_id,
            RUN_DIR=self.run_dir,
            GUILD_JUPYTER_HOME=str(self.store.home),
            GUILD_JUPYTER_ATTEMPT=str(attempt),
            PYTHONUNBUFFERED="1",
        )
        try:
            with open(os.path.join(self.meta, CHECKPOINT), encoding="utf-8") as f:
                env["GUILD_JUPYTER_CHECKPOINT"] = json.load(f)["path"]
        except (OSError, ValueError, KeyError):
            env.pop("GUILD_JUPYTER_CHECKPOINT", None)
        return env

    def attempt(self) -> RunStatus:
        run = self.store.load_run(self.run_id)
        n = run.attempt.n
        env = self._env(n)
        recorder = RunRecorder(self.store, self.run_id, self.spec.output_scalars)
        pid, started = self_identity()
        try:
            self.proc = proc = subprocess.Popen(
                self.spec.argv,
                cwd=self.spec.cwd or self.run_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as e:
            recorder.on_line(f"cannot start {self.spec.argv[0]}: {e}", STDERR, time.time())
            recorder.close()
            return self._end_attempt(
                n, RunStatus.FAILED, reason=f"cannot start: {e}", pid=pid, pid_started=started
            )
        self.store.set_status(
            self.run_id,
            RunStatus.RUNNING,
            pid=pid,
            pid_started=started,
            child_pid=proc.pid,
            child_started=process_start_time(proc.pid),
            host=hostname(),
        )
        pumps = [
            threading.Thread(target=_pump, args=(pipe, stream, recorder), daemon=True)
            for pipe, stream in ((proc.stdout, STDOUT), (proc.stderr, STDERR))
        ]
        for t in pumps:
            t.start()
        done = threading.Event()
        sampler = threading.Thread(
            target=self._sample, args=(proc.pid, recorder, done), daemon=True
        )
        sampler.start()
        if n == 1 and not os.path.exists(os.path.join(self.meta, layout.PROVENANCE)):
            provenance = threading.Thread(target=self._provenance, args=(env,), daemon=True)
            provenance.start()
        else:
            provenance = None
        rc = proc.wait()
        _end_process_group(proc.pid, grace=2.0)
        for t in pumps:
            t.join(timeout=5)  # a grandchild may hold the pipe open; don't wait for it forever
        done.set()
        sampler.join(timeout=10)
        if provenance is not None:
            provenance.join(timeout=60)  # a finished run has its provenance
        stopped = (stop_requested(self.store, self.run_id) or "stopped") if self.signalled else None
        status, reason = exit_status(rc, stopped)
        recorder.close()
        return self._end_attempt(n, status, exit_code=rc, reason=reason)

    def _end_attempt(self, n: int, status: RunStatus, **fields: object) -> RunStatus:
        """Record attempt ``n``'s end; a failure with retries left appends the next attempt,
        pending, in the same write (whoever follows the run sees it go on)."""
        retry = None
        if status is RunStatus.FAILED and n <= self.spec.retries and not self.signalled:
            pid, started = self_identity()
            retry = {"pid": pid, "pid_started": started, "host": hostname()}
        self.store.set_status(self.run_id, status, retry=retry, **fields)
        return status

    def _sample(self, pid: int, recorder: RunRecorder, done: threading.Event) -> None:
        interval = self.config.sample_interval
        if interval <= 0:
            return
        from guild_jupyter.orchestration.resources import ResourceSampler

        start = time.time()
        if done.wait(min(interval, 1.0)):
            return  # a short run: nothing worth sampling (and nothing spent on it)
        try:
            sampler = ResourceSampler(pid)
        except Exception:
            return  # the process has already ended
        try:
            while not done.wait(interval):
                t = time.time()
                for key, value in sampler.sample().items():
                    recorder.scalars.add(key, int(t - start), value, t)
        except Exception:
            log.exception("resource sampling stopped")

    def _provenance(self, env: dict[str, str]) -> None:
        try:
            from guild_jupyter.orchestration.provenance import collect

            data = collect(self.spec.project_dir, env, python=self.spec.argv[0])
            layout.atomic_write_json(os.path.join(self.meta, layout.PROVENANCE), data, pretty=True)
        except Exception:
            log.exception("collecting provenance failed")


def _end_process_group(pgid: int, grace: float) -> None:
    """A run's lifetime is its process group's: stop whatever the main process left behind."""

    def alive() -> bool:
        try:
            os.killpg(pgid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    if not alive():
        return
    signal_tree(pgid, [], signal.SIGTERM)
    deadline = time.time() + grace
    while time.time() < deadline and alive():
        time.sleep(0.05)
    if alive():
        signal_tree(pgid, [], signal.SIGKILL)


def _pump(pipe, stream: int, recorder: RunRecorder) -> None:  # type: ignore[no-untyped-def]
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    lines = LineSplitter()
    fd = pipe.fileno()
    while True:
        data = os.read(fd, 65536)
        if not data:
            break
        text = decoder.decode(data)
        t = time.time()
        for line in lines.feed(text):
            recorder.on_line(line, stream, t)
        if recorder.scalars.pending():
            recorder.scalars.flush()  # printed scalars are as durable as the lines they came from
    rest = lines.rest() + decoder.decode(b"", final=True)
    if rest:
        recorder.on_line(rest, stream, time.time())
    pipe.close()


def supervise(
    run_id: str,
    home: str | None,
    notify: Callable[[str], None] | None = None,
    early_stop: list[int] | None = None,
) -> int:
    """Run a supervisor in this process (a fresh interpreter or a launcher's fork)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s supervisor %(levelname)s %(message)s"
    )
    store = RunStore(home)
    try:
        supervisor = Supervisor(store, run_id)
        supervisor.signalled = bool(early_stop)
        return supervisor.main(notify)
    except Exception as e:
        log.exception("supervisor failed")
        try:
            run = store.load_run(run_id)
            if not run.status.terminal:
                store.set_status(
                    run_id, RunStatus.FAILED, reason=f"supervisor error: {type(e).__name__}: {e}"
                )
        except Exception:
            log.exception("could not record the failure")
        return 1


def main(argv: list[str] | None = None) -> int:
    early_stop: list[int] = []  # a stop that arrives while we start up (list.append is signal-safe)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: early_stop.append(1))
    args = sys.argv[1:] if argv is None else argv
    return supervise(args[0], os.environ.get("GUILD_JUPYTER_HOME"), early_stop=early_stop)


if __name__ == "__main__":
    raise SystemExit(main())
