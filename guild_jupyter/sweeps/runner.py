"""Driving a sweep in this process: trials asked of the optimizer, started, awaited, told.

Grid sweeps (and batches) start their fixed trials in order; Optuna sweeps ask
for a trial only when one may start. Trials of script, cell and guildfile
operations on the local executor go to the sweep's trial worker
(:mod:`guild_jupyter.sweeps.trial_runs`); the others through ``start_operation``.
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from guild_jupyter.errors import GuildError
from guild_jupyter.model.flags import FlagDef
from guild_jupyter.model.run import Run, hostname
from guild_jupyter.model.status import RunStatus
from guild_jupyter.orchestration.process_info import self_identity
from guild_jupyter.orchestration.reconcile import stop_requested
from guild_jupyter.storage.layout import atomic_write_json
from guild_jupyter.storage.store import RunStore
from guild_jupyter.sweeps import optimizers
from guild_jupyter.sweeps.space import SweepSpace, SweepSyntaxError
from guild_jupyter.sweeps.sweep import (
    DEFAULT_MAX_TRIALS,
    JOURNAL,
    SPEC,
    Echo,
    Sweep,
    objective_value,
)

if TYPE_CHECKING:  # imported when trials run: a single run's start need not pay for it
    import concurrent.futures as cf


class SweepRunner:
    """Drives the trials of one sweep in this process."""

    def __init__(self, store: RunStore, op: Any, space: SweepSpace, *, optimizer: str | None = None,
                 max_trials: int | None = None, objective: str = "loss", minimize: bool = True,
                 objective_agg: str = "last", parallel: int = 1, random_seed: int | None = None,
                 prune: str | None = None, label: str = "", tags: Iterable[str] = (),
                 echo: Echo | None = None, batch: list[dict[str, Any]] | None = None,
                 executor: str | None = None, resources: Mapping[str, float] | None = None) -> None:
        self.store, self.op, self.space = store, op, space
        self.executor = executor  # None: the store's setting (local unless configured)
        self.resources = dict(resources) if resources else None  # each trial's, e.g. {"GPU": 1}
        self.optimizer = optimizer or ("grid" if space.discrete else "tpe")
        optimizers.check_names(self.optimizer, prune)
        if objective_agg not in ("last", "min", "max"):
            raise GuildError(f"objective aggregate must be last, min or max, got {objective_agg!r}")
        if parallel < 1:
            raise GuildError(f"parallel must be at least 1, got {parallel}")
        if max_trials is not None and max_trials < 1:
            raise GuildError(f"max trials must be at least 1, got {max_trials}")
        self.max_trials = max_trials or DEFAULT_MAX_TRIALS
        self.objective, self.minimize, self.agg = objective, minimize, objective_agg
        self.parallel = 1 if op.kind == "function" else parallel
        self.seed, self.prune, self.label, self.tags, self.echo = random_seed, prune, label, list(tags), echo
        self.batch = batch
        self._local: Any = None  # the trial worker's side while trials run
        if prune and op.kind == "function":
            raise GuildError("pruning stops trial processes: use a script or cell operation, not a function")
        if self.optimizer == "grid" and not space.discrete and batch is None:
            space.grid()  # raises the clear error about continuous ranges
        self.defs: dict[str, FlagDef] = op.flag_defs()
        self._check_values()

    # checking before anything is recorded ------------------------------------------
    def _check_values(self) -> None:
        from guild_jupyter.model.flags import resolve_flags, unknown_flag

        sample = {**self.space.fixed}
        for dim in self.space.dimensions:
            if dim.name not in self.defs and not getattr(self.op, "accepts_any_flag", False):
                raise unknown_flag(dim.name, self.op.name, self.defs)
            flag = self.defs.get(dim.name)
            if dim.discrete:
                for v in dim.values:
                    if flag is not None:
                        flag.check(v)
            elif flag is not None and flag.type not in (None, "int", "float"):
                raise SweepSyntaxError(f"flag {dim.name!r} is a {flag.type}; {dim.text} needs a number flag")
            sample[dim.name] = dim.values[0] if dim.discrete else dim.low
        resolve_flags(self.defs, sample, op=self.op.name, allow_unknown=getattr(self.op, "accepts_any_flag", False))
        for trial in self.batch or []:
            resolve_flags(self.defs, {**self.space.fixed, **trial}, op=self.op.name)

    def grid_trials(self) -> list[dict[str, Any]]:
        """Trials of a grid or a batch file, sampled down to ``max_trials`` (order kept)."""
        trials = [{**self.space.fixed, **t} for t in self.batch] if self.batch is not None else self.space.grid()
        if len(trials) > self.max_trials:
            # seeded (0 unless given) so --print-trials shows exactly what the sweep will run
            rng = random.Random(self.seed if self.seed is not None else 0)
            keep = sorted(rng.sample(range(len(trials)), self.max_trials))
            trials = [trials[i] for i in keep]
        return trials

    # recording ----------------------------------------------------------------------
    def create(self) -> Sweep:
        from guild_jupyter.config import Config

        name = self.executor or Config.load(self.store.home).executor
        if self.resources or name != "local":  # an executor that cannot run the trials (or
            from guild_jupyter.experiment.runner import remote_executor  # place them): an error

            remote_executor(self.op, name, self.resources)  # before anything is recorded
        pid, started = self_identity()
        flags = {**self.space.fixed, **self.space.describe()}
        run = self.store.create_run(f"{self.op.name}+", kind="sweep", flags=flags, label=self.label,
                                    tags=self.tags, source={"op": self.op.name, "op_kind": self.op.kind},
                                    running={"pid": pid, "pid_started": started, "host": hostname()})
        atomic_write_json(os.path.join(self.store.meta_dir(run.id), SPEC), {
            "op": self.op.name, "target": getattr(self.op, "target", None), "space": self.space.describe(),
            "fixed": self.space.fixed, "batch": self.batch, "optimizer": self.optimizer,
            "objective": self.objective, "minimize": self.minimize, "objective_agg": self.agg,
            "parallel": self.parallel, "random_seed": self.seed, "prune": self.prune,
            "executor": self.executor, "resources": self.resources,
        }, pretty=True)
        return Sweep(self.store, run)

    # running ------------------------------------------------------------------------
    def run(self, sweep: Sweep | None = None, trials: int | None = None) -> Sweep:
        sweep = sweep or self.create()
        budget = trials if trials is not None else self.max_trials
        status, reason = RunStatus.COMPLETED, None
        writer = self.store.scalar_writer(sweep.id, f"sweep-{os.getpid()}")
        try:
            if self.optimizer == "grid" and self.prune is None:
                self._run_grid(sweep, writer, budget)
            else:
                self._run_study(sweep, writer, budget)
        except KeyboardInterrupt:
            sweep.stop()
            status, reason = RunStatus.CANCELLED, "interrupted"
            raise
        except BaseException as e:
            status, reason = RunStatus.FAILED, f"{type(e).__name__}: {e}".splitlines()[0]
            raise
        finally:
            writer.close()
            if sweep._stop.is_set() and status is RunStatus.COMPLETED:
                status, reason = RunStatus.CANCELLED, "stopped"
            self.store.set_status(sweep.id, status, reason=reason, exit_code=0 if status is RunStatus.COMPLETED else 1)
            sweep.run = self.store.load_run(sweep.id)
        return sweep

    def _say(self, text: str) -> None:
        if self.echo is not None:
            self.echo(text + "\n")

    def _run_grid(self, sweep: Sweep, writer: Any, budget: int) -> None:
        done = {json.dumps(r.flags, sort_keys=True) for r in sweep.runs}
        todo = [t for t in self.grid_trials() if json.dumps(self._resolved(t), sort_keys=True) not in done]
        todo = todo[:budget]
        self._execute(sweep, writer, [(None, t) for t in todo])

    def _resolved(self, flags: dict[str, Any]) -> dict[str, Any]:
        from guild_jupyter.model.flags import resolve_flags

        return resolve_flags(self.defs, flags, op=self.op.name, allow_unknown=getattr(self.op, "accepts_any_flag", False))

    def _study(self, sweep: Sweep) -> Any:
        optuna = optimizers.optuna_module()
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        storage = JournalStorage(JournalFileBackend(os.path.join(self.store.meta_dir(sweep.id), JOURNAL)))
        return optuna.create_study(study_name=sweep.id, storage=storage, load_if_exists=True,
                                   sampler=optimizers.make_sampler(self.optimizer, self.seed),
                                   pruner=optimizers.make_pruner(self.prune),
                                   direction="minimize" if self.minimize else "maximize")

    def _run_study(self, sweep: Sweep, writer: Any, budget: int) -> None:
        study = self._study(sweep)
        if self.optimizer == "grid":  # a grid with a pruner: its trials, queued in order
            grid = self.grid_trials()[:budget]
            for t in grid:
                study.enqueue_trial({d.name: t[d.name] for d in self.space.dimensions})
            budget = len(grid)
        dists = {d.name: optimizers.distribution(d, (self.defs.get(d.name) or FlagDef(d.name)).type)
                 for d in self.space.dimensions}
        asked = 0

        def next_trial() -> tuple[Any, dict[str, Any]] | None:
            nonlocal asked
            if asked >= budget or sweep._stop.is_set():
                return None
            asked += 1
            trial = study.ask(dists)
            return trial, {**self.space.fixed, **trial.params}

        self._execute(sweep, writer, None, next_trial, study)

    def _execute(self, sweep: Sweep, writer: Any, fixed: list[tuple[Any, dict[str, Any]]] | None,
                 source: Callable[[], tuple[Any, dict[str, Any]] | None] | None = None, study: Any = None) -> None:
        queue = list(fixed or [])
        total = len(queue) if fixed is not None else None

        def take() -> tuple[Any, dict[str, Any]] | None:
            if stop_requested(self.store, sweep.id):
                sweep._stop.set()
            if fixed is not None:
                return queue.pop(0) if queue and not sweep._stop.is_set() else None
            return source()  # type: ignore[misc]

        self._local = self._worker_trials(sweep)
        try:
            self._pool_loop(sweep, writer, take, total, study)
        finally:
            if self._local is not None:
                self._local.close()
                self._local = None

    def _worker_trials(self, sweep: Sweep) -> Any:
        """The sweep's trial worker, for trials on the local executor (None: per-trial supervisors)."""
        from guild_jupyter.sweeps.trial_runs import WorkerTrials, worker_enabled

        if self.resources or not worker_enabled(self.store, self.op, self.executor):
            return None
        return WorkerTrials(self.store, sweep.id, self.op, self.parallel)

    def _pool_loop(self, sweep: Sweep, writer: Any, take: Callable[[], tuple[Any, dict[str, Any]] | None],
                   total: int | None, study: Any) -> None:
        n = 0
        # a fixed list of trials on a worker: the next trials are recorded and queued while
        # these run, so each process starts the moment a slot frees (the worker runs at most
        # ``parallel``); an optimizer is asked only when a trial may start, as before
        ahead = self.parallel if self._local is not None and total is not None else 0
        import concurrent.futures as cf

        with cf.ThreadPoolExecutor(max_workers=self.parallel + ahead) as pool:
            running: dict[cf.Future, Any] = {}
            while True:
                while len(running) < self.parallel + ahead:
                    item = take()
                    if item is None:
                        break
                    n += 1
                    trial, flags = item
                    self._say(f"trial {n}{'/' + str(total) if total else ''}: "
                              + " ".join(f"{d.name}={flags[d.name]!r}" for d in self.space.dimensions))
                    if self._local is not None:  # recorded here, in trial order; then waited for
                        started = self._local.start(flags)
                        future = pool.submit(self._follow_trial, *started, trial)
                    else:
                        future = pool.submit(self._trial, sweep, flags, trial)
                    running[future] = (trial, n)
                if not running:
                    return
                finished, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED)
                for future in finished:
                    trial, index = running.pop(future)
                    run, value = future.result()
                    self._record(study, trial, run, value, writer, index)

    def _record(self, study: Any, trial: Any, run: Run, value: float | None, writer: Any, index: int) -> None:
        if study is not None and trial is not None:
            from optuna.trial import TrialState

            if run.status == "completed" and value is not None:
                study.tell(trial, value)
            elif run.status == "cancelled":
                study.tell(trial, state=TrialState.PRUNED)
            else:
                study.tell(trial, state=TrialState.FAIL)
        shown = f"{self.objective} {value:.6g}" if value is not None else f"no {self.objective}"
        self._say(f"  -> {run.short_id} {run.status.value}{' (' + run.reason + ')' if run.reason else ''}, {shown}")
        if value is not None and run.status == "completed":
            writer.add(self.objective, index, value)

    def _trial(self, sweep: Sweep, flags: dict[str, Any], trial: Any) -> tuple[Run, float | None]:
        if self.op.kind == "function":
            from guild_jupyter.experiment.function_op import run_function

            try:
                run = run_function(self.op.fn, flags, store=self.store, sweep=sweep.id, op=self.op.name)
            except Exception:
                run = self.store.resolve(1)  # the trial just recorded as failed
            return run, objective_value(self.store, run.id, self.objective, self.agg)
        from guild_jupyter.experiment.runner import start_operation
        from guild_jupyter.orchestration.controller import Controller

        if self.prune is None or trial is None:
            run = start_operation(self.op, flags, store=self.store, sweep=sweep.id,
                                  executor=self.executor, resources=self.resources)
            return run, objective_value(self.store, run.id, self.objective, self.agg)
        run = start_operation(self.op, flags, store=self.store, sweep=sweep.id, background=True,
                              executor=self.executor, resources=self.resources)
        return self._watch(run, trial, Controller(self.store))

    def _follow_trial(self, run: Run, done: cf.Future, trial: Any) -> tuple[Run, float | None]:
        """Wait for a trial handed to the worker; with pruning, watch it as it runs."""
        from guild_jupyter.orchestration.controller import Controller

        if self.prune is None or trial is None:
            done = self._requeued(run, done, wait=True)
            return self.store.load_run(run.id), objective_value(self.store, run.id, self.objective, self.agg)
        return self._watch(run, trial, Controller(self.store), done)

    def _requeued(self, run: Run, done: cf.Future, wait: bool) -> cf.Future:
        """Hand the trial to a new worker while its worker died before starting it."""
        from guild_jupyter.orchestration.trial_client import REQUEUE

        while (wait or done.done()) and done.result() == REQUEUE:
            done = self._local.requeue(run)
        return done

    def _watch(self, run: Run, trial: Any, controller: Any, done: cf.Future | None = None) -> tuple[Run, float | None]:
        """Report the objective as it appears; stop the trial if the pruner says so."""
        reported: set[int] = set()
        while True:
            if done is not None:
                done = self._requeued(run, done, wait=False)
            current = self.store.load_run(run.id)
            for key, step, value, _ in sorted(self.store.iter_run_points(run.id), key=lambda p: (p[1], p[3])):
                if key == self.objective and step not in reported:
                    reported.add(step)
                    trial.report(value, step)
            if current.status.terminal:
                return current, objective_value(self.store, run.id, self.objective, self.agg)
            if reported and trial.should_prune():
                final = controller.stop(run.id, reason="pruned")
                return final, objective_value(self.store, run.id, self.objective, self.agg)
            time.sleep(0.1)
