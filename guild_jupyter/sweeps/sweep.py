"""A sweep: trials of one operation over a flag space, recorded and resumable.

A sweep is itself a run (kind ``sweep``, op ``<op>+`` as in Guild) owned by
the process that drives it; its record holds ``sweep.json`` (space,
optimizer, objective) and, for Optuna optimizers, the study's journal, so
``resume`` continues the same study. Each trial is an ordinary run whose
``sweep`` field links it to the sweep.

The objective is a scalar of each trial (``last`` value by default, or
``min``/``max``); a trial that fails, or finishes without that scalar, is told
to Optuna as failed, never as a value. Pruning reports the objective as the
trial prints or logs it and stops trials the pruner rejects (``cancelled``,
reason ``pruned``; their scalars are kept).

This module holds the recorded sweep (:class:`Sweep`: its trials, best, table,
stop); :mod:`guild_jupyter.sweeps.runner` drives one.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Callable

from guild_jupyter.errors import GuildError
from guild_jupyter.model.run import Run
from guild_jupyter.storage.layout import atomic_write_json
from guild_jupyter.storage.store import RunStore

SPEC = "sweep.json"
JOURNAL = "optuna.journal"
DEFAULT_MAX_TRIALS = 20
Echo = Callable[[str], None]


class Sweep:
    """A recorded sweep: its trials, their table, the best one."""

    def __init__(self, store: RunStore, run: Run) -> None:
        self.store, self.run = store, run
        self._stop = threading.Event()

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def spec(self) -> dict[str, Any]:
        with open(os.path.join(self.store.meta_dir(self.id), SPEC), encoding="utf-8") as f:
            return json.load(f)

    @property
    def runs(self) -> list[Run]:
        """The trials, oldest first."""
        return list(reversed(self.store.list_runs(sweep=self.id, deleted=None)))

    @property
    def df(self):  # -> pandas.DataFrame
        return self.store.runs_frame(sweep=self.id, deleted=None)

    @property
    def best(self) -> Run | None:
        spec = self.spec
        scored = [(objective_value(self.store, r.id, spec["objective"], spec["objective_agg"]), r)
                  for r in self.runs if r.status == "completed"]
        scored = [(v, r) for v, r in scored if v is not None]
        if not scored:
            return None
        pick = min if spec["minimize"] else max
        return pick(scored, key=lambda vr: vr[0])[1]

    def stop(self) -> None:
        """Start no more trials and stop the running ones (from any process)."""
        self._stop.set()
        from guild_jupyter.orchestration.controller import Controller
        from guild_jupyter.orchestration.reconcile import STOP_REQUEST

        # the process driving the sweep may be another one: it checks this file between trials
        atomic_write_json(os.path.join(self.store.meta_dir(self.id), STOP_REQUEST),
                          {"reason": "sweep stopped", "time": time.time()})

        controller = Controller(self.store)
        for r in self.store.list_runs(sweep=self.id, status=["pending", "running"]):
            try:
                controller.stop(r.id, wait=False, reason="sweep stopped")
            except GuildError:
                pass

    def __repr__(self) -> str:
        return f"<Sweep {self.run.short_id} {self.run.op} {self.store.load_run(self.id).status.value}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """A bare ``sweep`` in a cell: the trials table, best highlighted (HTML and text)."""
        from guild_jupyter.widgets.render import sweep_html, sweep_text, trials_table

        spec = self.spec
        trials = trials_table(self.store, self.id, spec.get("objective"), spec.get("objective_agg", "last"))
        args = (self.store.load_run(self.id).status.value, self.run.op, spec.get("objective"),
                bool(spec.get("minimize", True)), trials)
        return {"text/plain": sweep_text(*args), "text/html": sweep_html(*args)}


def objective_value(store: RunStore, run_id: str, key: str, agg: str) -> float | None:
    column = {"last": "last", "min": "min", "max": "max"}[agg]
    rows = store.index.execute(f"SELECT {column} FROM scalar_summary WHERE run=? AND key=?", (run_id, key))
    if not rows or rows[0][0] is None:
        return None
    return float(rows[0][0])
