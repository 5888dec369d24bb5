"""The trial worker: one supervisor process for all the trials of a sweep.

A supervisor per trial costs a fork, its start-up, and several reads of the
record before the user's process even starts: about 30 ms per trivial trial,
more than the trial itself. The worker is started once per sweep (forked by
the warm launcher, or as a new process), detached from the sweep's driver
like any supervisor, and supervises each trial it is sent exactly as a
supervisor would: it waits for a global slot, starts the user's process in
its own process group, tees its output with per-line timestamps, parses
scalars, samples resources, writes provenance, and records the status.

Protocol, JSON lines on one stream socket: the driver sends
``{"trial": id, "created": t, "spec": {...}, "parallel": n}``; the worker
runs at most ``n`` at once, queues the rest (their threads get them ready
meanwhile), and answers ``{"done": id, "status": s}`` when a trial's end is
recorded. The driver closing its side means "no more trials": the worker
cancels the queued ones, finishes the running ones (they are runs, not the
driver's children) and exits.

Stopping: each trial's attempt names the worker as its supervisor (pid and
start time), so ``Controller.stop`` works unchanged: it writes the trial's
stop request, then SIGTERMs the worker, which stops exactly the trials that
have a stop request. A SIGTERM with no stop request for any of its trials
(a plain ``kill``) stops every trial and the sweep. A kill -9 of the worker
leaves trials whose supervisor is dead: reconciliation ends them ``failed``
and stops their processes, as for a dead supervisor.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from typing import Any

from guild_jupyter.config import Config
from guild_jupyter.model.run import Run, hostname
from guild_jupyter.model.status import RunStatus
from guild_jupyter.orchestration.forked_process import ForkedProcess, ProcessStarter
from guild_jupyter.orchestration.held_slots import HeldSlots
from guild_jupyter.orchestration.launch import LaunchSpec
from guild_jupyter.orchestration.process_info import (
    descendants,
    process_start_time,
    self_identity,
    signal_tree,
)
from guild_jupyter.orchestration.process_tee import follow
from guild_jupyter.orchestration.reconcile import STOP_REQUEST, stop_requested
from guild_jupyter.orchestration.shared_provenance import SharedProvenance
from guild_jupyter.orchestration.slots import QueueTurn
from guild_jupyter.orchestration.supervisor import exit_status
from guild_jupyter.storage import layout
from guild_jupyter.storage.output import STDERR
from guild_jupyter.storage.store import RunStore
from guild_jupyter.tracking.recorder import RunRecorder

log = logging.getLogger("guild_jupyter.trial_worker")


class Trial:
    __slots__ = (
        "run_id",
        "created",
        "spec",
        "stop_reason",
        "proc",
        "stopper",
        "active",
        "go",
        "env",
        "recorder",
    )

    def __init__(self, run_id: str, created: float, spec: LaunchSpec) -> None:
        self.run_id, self.created, self.spec = run_id, created, spec
        self.stop_reason: str | None = None
        self.proc: subprocess.Popen[bytes] | ForkedProcess | None = None
        self.stopper: threading.Thread | None = None
        self.active = False  # counts against the sweep's parallel limit
        self.go = threading.Event()  # its turn to start (or to end, stopped)
        self.env: dict[bytes, bytes] = {}
        self.recorder: RunRecorder | None = None


class TrialWorker:
    def __init__(self, store: RunStore, conn: socket.socket, sweep_id: str) -> None:
        self.store, self.conn, self.sweep_id = store, conn, sweep_id
        self.config = Config.load(store.home)
        self.pool = HeldSlots(store.home, self.config)
        self.pid, self.pid_started = self_identity()
        self.host = hostname()
        self.trials: dict[str, Trial] = {}  # queued and started
        self.queue: collections.deque[Trial] = collections.deque()
        self.capacity = 1  # the sweep's parallel trials
        self.active = 0
        self.recent: collections.deque[str] = collections.deque(maxlen=64)  # ended trials
        self.lock = threading.Lock()
        self.send_lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.stopping: str | None = None  # every trial is to stop (the worker itself was stopped)
        self.provenance = SharedProvenance(store, sweep_id)
        self._base_env = {os.fsencode(k): os.fsencode(v) for k, v in os.environ.items()}
        self._turn = QueueTurn(store)
        self.starter = ProcessStarter()  # forks trials from a warm interpreter where it can

    # the driver's side of the conversation ---------------------------------------
    def serve(self, buffered: bytes = b"") -> int:
        data = buffered
        while True:
            while b"\n" in data:
                line, data = data.split(b"\n", 1)
                self._accept(json.loads(line))
            try:
                chunk = self.conn.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            data += chunk
        with self.lock:  # the driver went away with trials not started: they never will be
            for trial in self.queue:
                trial.stop_reason = trial.stop_reason or "its sweep ended before it started"
        self._dispatch()
        while True:  # finish the running ones (a thread may start another as it ends)
            with self.lock:
                alive = [t for t in self.threads if t.is_alive()]
                self.threads = alive
            if not alive:
                self.starter.close()
                return 0
            alive[0].join()

    def _accept(self, message: dict[str, Any]) -> None:
        trial = Trial(message["trial"], float(message["created"]), LaunchSpec(**message["spec"]))
        with self.lock:
            self.capacity = max(1, int(message.get("parallel") or self.capacity))
            self.trials[trial.run_id] = trial
            if self.stopping:
                trial.stop_reason = self.stopping
            self.queue.append(trial)
            # its thread starts now and gets ready while it waits for its turn
            thread = threading.Thread(
                target=self._run, args=(trial,), name=trial.run_id[:8], daemon=True
            )
            self.threads = [th for th in self.threads if th.is_alive()] + [thread]
            thread.start()  # under the lock: the final join never misses a started thread
        self._dispatch()

    def _dispatch(self) -> None:
        """Start queued trials while fewer than ``parallel`` run (stopped ones at once, to end)."""
        with self.lock:
            start = [t for t in self.queue if t.stop_reason is not None]
            for t in start:
                self.queue.remove(t)
            while self.queue and self.active < self.capacity:
                t = self.queue.popleft()
                t.active = True
                self.active += 1
                start.append(t)
        for t in start:
            t.go.set()

    def _release(self, trial: Trial) -> None:
        """The trial's process has ended: the next queued trial may start (before this one's
        end is even recorded: bookkeeping overlaps the next process, not the other way)."""
        with self.lock:
            if not trial.active:
                return
            trial.active = False
            self.active -= 1
        self._dispatch()

    def _send(self, message: dict[str, Any]) -> None:
        with self.send_lock:
            try:
                self.conn.sendall(json.dumps(message).encode() + b"\n")
            except OSError:
                pass  # the driver is gone; the trial's record says everything

    # stopping ----------------------------------------------------------------------
    def on_stop_signal(self) -> None:
        """Stop the trials that were asked to stop; with no such request, stop them all."""
        with self.lock:
            trials = list(self.trials.values())
            recent = list(self.recent)
        asked = [(t, stop_requested(self.store, t.run_id)) for t in trials]
        asked = [(t, reason) for t, reason in asked if reason]
        if not asked and any(stop_requested(self.store, r) for r in recent):
            return  # a stop for a trial that had just ended
        if not asked:
            reason = (
                stop_requested(self.store, self.sweep_id) or "stopped (trial worker terminated)"
            )
            with self.lock:
                self.stopping = reason
            layout.atomic_write_json(
                os.path.join(self.store.meta_dir(self.sweep_id), STOP_REQUEST),
                {"reason": reason, "time": time.time()},
            )
            asked = [(t, reason) for t in trials]
        for t, reason in asked:
            self._stop(t, reason)

    def _stop(self, trial: Trial, reason: str) -> None:
        stopper = None
        with self.lock:
            trial.stop_reason = trial.stop_reason or reason
            queued = trial in self.queue
            if trial.proc is not None and trial.stopper is None:
                stopper = trial.stopper = threading.Thread(
                    target=self._terminate, args=(trial.proc,), daemon=True
                )
        if queued:
            self._dispatch()  # it ends cancelled at once instead of starting
        elif stopper is not None:
            stopper.start()
        # else: not started yet, and it checks ``stop_reason`` before starting its process

    def _terminate(self, proc: subprocess.Popen[bytes] | ForkedProcess) -> None:
        """SIGTERM the process tree; SIGKILL what is left after the grace period."""
        tree = [proc.pid, *descendants(proc.pid)]
        signal_tree(proc.pid, tree, signal.SIGTERM)
        deadline = time.time() + self.config.stop_grace_seconds
        while time.time() < deadline and any(process_start_time(p) is not None for p in tree):
            time.sleep(0.05)
        tree += descendants(proc.pid)
        if any(process_start_time(p) is not None for p in tree):
            signal_tree(proc.pid, tree, signal.SIGKILL)

    # one trial -----------------------------------------------------------------------
    def _run(self, trial: Trial) -> None:
        status = None
        try:
            self._prepare(trial)
            trial.go.wait()
            status = self._supervise(trial)
        except Exception as e:
            log.exception("trial %s failed in the worker", trial.run_id)
            status = self._end(
                trial.run_id, RunStatus.FAILED, reason=f"supervisor error: {type(e).__name__}: {e}"
            )
        finally:
            self._release(trial)
            with self.lock:
                self.trials.pop(trial.run_id, None)
                self.recent.append(trial.run_id)
            self._send({"done": trial.run_id, "status": status})

    def _end(self, run_id: str, status: RunStatus, **attempt: Any) -> str | None:
        """Record the end; a run that already ended (stopped before it started) keeps its end."""
        try:
            return self.store.set_status(run_id, status, **attempt).status.value
        except Exception:
            log.exception("could not record %s for %s", status.value, run_id)
            try:
                return self.store.load_run(run_id).status.value
            except Exception:
                return None

    def _prepare(self, trial: Trial) -> None:
        """What a trial needs before its process starts, done while it waits its turn, so
        that a process ending is followed by the next one starting, and little else."""
        rid, spec = trial.run_id, trial.spec
        reason = stop_requested(self.store, rid)
        if reason is not None:
            self._stop(trial, reason)
        own = dict(spec.env)  # the trial's variables over the worker's (the submitter's) own
        own.update(
            RUN_ID=rid,
            RUN_DIR=os.path.join(self.store.runs_dir, rid),
            GUILD_JUPYTER_HOME=str(self.store.home),
            GUILD_JUPYTER_ATTEMPT="1",
            PYTHONUNBUFFERED="1",
        )
        env = dict(self._base_env)  # encoded once: the child's environment costs a dict copy
        env.update((os.fsencode(k), os.fsencode(v)) for k, v in own.items())
        trial.env = env
        trial.recorder = RunRecorder(self.store, rid, spec.output_scalars)

    def _supervise(self, trial: Trial) -> str | None:
        rid = trial.run_id
        slot = None
        if trial.stop_reason is None:
            if self._my_turn(trial) and not self.pool.throttled():
                slot = self.pool.try_acquire(rid)
            if slot is None:  # a wait: say who owns the pending trial meanwhile
                self.store.update_run(rid, self._record_owner)
                slot = self.pool.acquire(
                    rid, lambda: trial.stop_reason is not None, lambda: self._my_turn(trial)
                )
        if slot is None:
            if trial.recorder is not None:
                trial.recorder.close()
            reason = trial.stop_reason or stop_requested(self.store, rid) or "stopped"
            return self._end(rid, RunStatus.CANCELLED, reason=reason)
        try:
            return self._attempt(trial, slot)
        finally:
            slot.release()

    def _record_owner(self, run: Run) -> None:
        if not run.status.terminal and run.attempt.pid is None:
            run.attempt.pid, run.attempt.pid_started = self.pid, self.pid_started

    def _my_turn(self, trial: Trial) -> bool:
        """No older run is waiting for a slot (the supervisor's first-in first-out rule);
        this worker's own trials start in their order anyway."""
        with self.lock:
            own = set(self.trials)
        return self._turn(trial.created, own)

    def _attempt(self, trial: Trial, slot: Any) -> str | None:
        rid, spec, env = trial.run_id, trial.spec, trial.env
        run_dir = os.path.join(self.store.runs_dir, rid)
        recorder = trial.recorder
        assert recorder is not None
        try:
            with self.lock:
                if trial.stop_reason is not None:
                    raise _Cancelled()
                trial.proc = proc = self.starter.start(spec.argv, spec.cwd or run_dir, env)
        except _Cancelled:
            recorder.close()
            return self._end(rid, RunStatus.CANCELLED, reason=trial.stop_reason)
        except OSError as e:
            recorder.on_line(f"cannot start {spec.argv[0]}: {e}", STDERR, time.time())
            recorder.close()
            return self._end(
                rid,
                RunStatus.FAILED,
                reason=f"cannot start: {e}",
                pid=self.pid,
                pid_started=self.pid_started,
            )
        try:
            self.store.set_status(
                rid,
                RunStatus.RUNNING,
                pid=self.pid,
                pid_started=self.pid_started,
                child_pid=proc.pid,
                child_started=process_start_time(proc.pid),
                host=self.host,
            )
        except Exception:  # it ended meanwhile (stopped while pending): its process must not run
            log.exception("trial %s could not be marked running", rid)
            self._terminate(proc)
            follow(proc, recorder, 0)
            recorder.close()
            return self.store.load_run(rid).status.value
        self.provenance.link(rid, spec)
        rc = follow(proc, recorder, self.config.sample_interval)
        ended = time.time()  # the attempt's end is the process's, not when it is recorded
        slot.release()  # a slot is held while the process runs
        self._release(trial)
        recorder.close()
        status, reason = exit_status(rc, trial.stop_reason)
        if getattr(proc, "lost", None) and trial.stop_reason is None:
            reason = proc.lost
        return self._end(rid, status, exit_code=rc, reason=reason, stopped=ended)


class _Cancelled(Exception):
    pass


# starting --------------------------------------------------------------------------
