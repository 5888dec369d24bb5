"""The public Python API: ``run``, ``runs``, ``scalars``, ``get_run``.

Every function takes an optional ``store``; without one it uses the store at
``$GUILD_JUPYTER_HOME`` (default ``~/.guild-jupyter``), read at each call so
changing the variable in a notebook takes effect.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guild_jupyter.errors import GuildError
from guild_jupyter.model.run import Run
from guild_jupyter.storage import layout
from guild_jupyter.storage.store import RunStore

if TYPE_CHECKING:
    import pandas as pd

_stores: dict[Path, RunStore] = {}
_stores_lock = threading.Lock()


def default_store() -> RunStore:
    home = layout.default_home()
    with _stores_lock:
        store = _stores.get(home)
        if store is None:
            store = _stores[home] = RunStore(home)
        return store


def run(
    target: Callable[..., Any] | str,
    flags: Mapping[str, Any] | None = None,
    *,
    label: str = "",
    tags: Iterable[str] = (),
    op: str | None = None,
    store: RunStore | None = None,
    **options: Any,
) -> Run:
    """Run ``target`` with ``flags`` as a recorded run and return the :class:`Run`.

    ``target`` is a Python function (called in this process) or a script path
    (run by a supervisor process; ``background=True`` returns at once,
    ``retries=N`` retries a failure, ``echo=False`` keeps its output quiet).

    A flag space in ``flags`` (``{"lr": "loguniform[1e-4:1e-1]"}``, a list, a
    range) or ``batch="trials.csv"`` makes a sweep, returned as a ``Sweep``;
    its options: ``optimizer``, ``max_trials``, ``minimize="loss"`` or
    ``maximize="acc"``, ``objective_agg``, ``parallel``, ``random_seed``,
    ``prune``, and ``print_trials=True`` to list a grid's trials without running.

    ``executor="dask"`` (a LocalCluster), ``"tcp://host:8786"`` (a scheduler) or an
    installed executor's name sends a script's run, or a sweep's trials, there
    (default: the ``executor`` setting, local unless configured); ``resources={"GPU": 1}``
    is what the run, or each trial, needs from a Dask worker.
    """
    store = store or default_store()
    sweep_options = _sweep_options(options)
    batch = options.pop("batch", None)
    executor = options.pop("executor", None)
    resources = options.pop("resources", None)
    if callable(target) and (executor not in (None, "local") or resources):
        placement = f"executor={executor!r}" if executor not in (None, "local") else "resources="
        raise GuildError(f"{placement}: a function runs in this process; "
                         "run a script, notebook or guildfile operation on another executor")
    if callable(target) or isinstance(target, (str, os.PathLike)):
        from guild_jupyter.sweeps import api as sweeps

        operation = sweeps.operation_for(target, name=op)
        if sweep_options or sweeps.is_sweep(operation, flags, batch):
            if options.pop("print_trials", False):
                return sweeps.print_trials(operation, flags, store=store, batch=batch, **sweep_options)
            echo = _echo if options.pop("echo", True) else None
            _no_more(options)
            return sweeps.run_sweep(operation, flags, store=store, batch=batch, label=label, tags=tags,
                                    echo=echo, executor=executor, resources=resources,
                                    **sweep_options)
    if callable(target):
        from guild_jupyter.experiment.function_op import run_function

        return run_function(target, flags, store=store, label=label, tags=tags, op=op,
                            output_scalars=options.pop("output_scalars", None))
    if isinstance(target, (str, os.PathLike)):
        from guild_jupyter.experiment.runner import start_operation

        echo = options.pop("echo", True)
        background, retries = options.pop("background", False), options.pop("retries", 0)
        output_scalars = options.pop("output_scalars", None)
        _no_more(options)
        return start_operation(operation, flags, store=store, label=label, tags=tags, background=background,
                               retries=retries, echo=_echo if echo else None, output_scalars=output_scalars,
                               executor=executor, resources=resources)
    raise GuildError(f"cannot run {target!r}: expected a function or a script path")


_SWEEP_OPTIONS = ("optimizer", "max_trials", "objective_agg", "parallel", "random_seed", "prune")


def _sweep_options(options: dict[str, Any]) -> dict[str, Any]:
    """Sweep options out of ``options``; ``minimize="loss"``/``maximize="acc"`` name the objective."""
    out = {k: options.pop(k) for k in _SWEEP_OPTIONS if k in options}
    if "minimize" in options:
        out.update(objective=options.pop("minimize"), minimize=True)
    if "maximize" in options:
        if "objective" in out:
            raise GuildError("give either minimize= or maximize=, not both")
        out.update(objective=options.pop("maximize"), minimize=False)
    return out


def _no_more(options: dict[str, Any]) -> None:
    if options:
        raise GuildError(f"run() got unknown options: {', '.join(sorted(options))}")


def _echo(text: str) -> None:
    import sys

    sys.stdout.write(text)
    sys.stdout.flush()


def stop(ref: str | int, *, wait: bool = True, store: RunStore | None = None) -> Run:
    """Stop a run: its process tree gets SIGTERM, then SIGKILL after the grace period."""
    from guild_jupyter.orchestration.controller import Controller

    return Controller(store or default_store()).stop(ref, wait=wait)


def restart(ref: str | int, *, background: bool = False, store: RunStore | None = None) -> Run:
    """Run a finished script run again as a new attempt of the same run."""
    from guild_jupyter.orchestration.controller import Controller

    return Controller(store or default_store()).restart(ref, background=background)


def runs(
    where: str | None = None,
    *,
    op: str | None = None,
    status: str | Iterable[str] | None = None,
    label: str | None = None,
    tag: str | Iterable[str] | None = None,
    started_after: Any = None,
    started_before: Any = None,
    sweep: str | None = None,
    deleted: bool | None = False,
    limit: int | None = None,
    agg: Any = "last",
    store: RunStore | None = None,
) -> pd.DataFrame:
    """One row per run, newest first: ``id, op, status, started, stopped, label, tags``,
    then ``flags.<name>`` and ``scalars.<key>`` (last value; ``agg`` picks another:
    ``first``, ``min``, ``max``, ``mean``, ``count``, or a ``{key: agg}`` map as for
    :func:`compare`).

    ``where`` filters on those columns: ``"flags.lr < 0.1 and scalars.loss < 0.5"``
    (the last values: ``agg`` applies to the rows found).
    """
    store = store or default_store()
    _reconcile(store)
    if status is not None and not isinstance(status, str):
        status = list(status)
    if tag is not None and not isinstance(tag, str):
        tag = list(tag)
    df = store.runs_frame(
        op=op,
        status=status,
        label=label,
        tag=tag,
        started_after=started_after,
        started_before=started_before,
        sweep=sweep,
        deleted=deleted,
        where=where,
        limit=limit,
    )
    if agg == "last":
        return df
    from guild_jupyter.compare.aggregates import apply_aggregates

    return apply_aggregates(df, store, agg)


def scalars(
    runs: Any = None, keys: str | Iterable[str] | None = None, *, store: RunStore | None = None
) -> pd.DataFrame:
    """Scalar series in long format: ``run, key, step, value, time``.

    ``runs``: None (all runs), a DataFrame from :func:`runs`, a run reference,
    a :class:`Run`, or a list of those.
    """
    store = store or default_store()
    if isinstance(keys, str):
        keys = [keys]
    return store.scalars_frame(_run_ids(store, runs), list(keys) if keys is not None else None)


def get_run(ref: str | int, *, store: RunStore | None = None) -> Run:
    """A run by full id, unique id prefix, or index (1 = newest)."""
    store = store or default_store()
    _reconcile(store)
    return store.resolve(ref)


def _reconcile(store: RunStore) -> None:
    """Listings show true statuses: runs whose process died are finished first (at most every 2 s)."""
    from guild_jupyter.orchestration.reconcile import reconcile

    reconcile(store, min_interval=2.0)


def _run_ids(store: RunStore, runs: Any) -> list[str] | None:
    if runs is None:
        return None
    if hasattr(runs, "columns") and "id" in getattr(runs, "columns", ()):
        return list(runs["id"])
    if isinstance(runs, (str, int, Run)):
        runs = [runs]
    return [r.id if isinstance(r, Run) else store.resolve_id(r, deleted=None) for r in runs]


def compare(
    where: str | None = None, *, agg: Any = "last", store: RunStore | None = None, **filters: Any
) -> pd.DataFrame:
    """:func:`runs` with a chosen aggregate per scalar column: ``agg`` is ``last`` (default),
    ``first``, ``min``, ``max``, ``mean`` or ``count``, or a ``{key: agg}`` map.
    The frame has the ``df.guild`` accessor (plots, ``best``)."""
    from guild_jupyter.compare.aggregates import compare as _compare

    return _compare(where, agg=agg, store=store, **filters)


def diff(a: Any, b: Any, *, store: RunStore | None = None, **options: Any) -> Any:
    """How runs ``a`` and ``b`` differ: flags, scalars, source snapshot (unified diff),
    provenance (packages, git commit) and output. Prints as text, renders as HTML."""
    from guild_jupyter.compare.diff import diff as _diff

    return _diff(a, b, store=store, **options)


def sweep(ref: str | int, *, store: RunStore | None = None) -> Any:
    """A recorded sweep by reference: its trials (``.runs``), table (``.df``), ``.best``, ``.stop()``."""
    from guild_jupyter.sweeps.sweep import Sweep

    store = store or default_store()
    run = store.resolve(ref)
    if run.kind != "sweep":
        raise GuildError(f"run {run.short_id} is a {run.kind} run, not a sweep")
    return Sweep(store, run)
