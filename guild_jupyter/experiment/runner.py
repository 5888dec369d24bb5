"""Starting runs of any operation kind through the orchestrator."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from guild_jupyter.errors import GuildError
from guild_jupyter.model.flags import resolve_flags
from guild_jupyter.model.run import Run
from guild_jupyter.model.status import RunStatus
from guild_jupyter.storage.store import RunStore


def load_operation(target: str):  # -> an operation object (ScriptOperation, ...)
    if target.endswith(".py"):
        from guild_jupyter.experiment.script_op import ScriptOperation

        return ScriptOperation.load(target)
    if target.endswith(".ipynb"):
        from guild_jupyter.notebook.notebook_op import NotebookOperation

        return NotebookOperation.load(target)
    from guild_jupyter.guild_compat.guildfile import find_guildfile

    if find_guildfile() is not None:  # an operation of the nearest guild.yml
        from guild_jupyter.guild_compat.guildfile_op import GuildfileOperation

        return GuildfileOperation.find(target)
    raise GuildError(f"cannot run {target!r}: expected a Python script (.py) or a notebook (.ipynb)")


def start_run(target: str, flags: Mapping[str, Any] | None = None, **options: Any) -> Run:
    """Check the flags, record the run, snapshot it and hand it to a supervisor
    (options as for :func:`start_operation`). Bad input raises before anything is recorded."""
    return start_operation(load_operation(target), flags, **options)


def start_operation(
    op: Any,
    flags: Mapping[str, Any] | None = None,
    *,
    store: RunStore,
    label: str = "",
    tags: Iterable[str] = (),
    background: bool = False,
    retries: int = 0,
    echo: Callable[[str], None] | None = None,
    sweep: str | None = None,
    output_scalars: Any = None,
    executor: str | None = None,
    resources: Mapping[str, float] | None = None,
) -> Run:
    """``start_run`` for an operation object already built (a cell, a notebook, a rerun);
    ``sweep`` links the run to the sweep it is a trial of. ``executor``: ``local``, ``dask``,
    a Dask scheduler address or an entry-point name (default: the ``executor`` setting);
    ``resources`` (e.g. ``{"GPU": 1}``): what the run needs from an executor that schedules them."""
    from guild_jupyter.orchestration.controller import Controller

    if retries < 0:
        raise GuildError(f"retries must be 0 or more, got {retries}")
    if output_scalars is not None:
        from guild_jupyter.tracking.output_scalars import compile_patterns

        compile_patterns(output_scalars)  # a bad pattern is a one-line error before anything is recorded
    resolved = resolve_flags(op.flag_defs(), dict(flags or {}), op=op.name)
    controller = Controller(store)
    source = op.run_source()
    remote = None
    name = executor or controller.config.executor
    if name != "local" or resources:  # the local path stays import- and check-free
        remote = remote_executor(op, name, resources)
        if remote is not None:
            source = {**source, "executor": name}
    run = store.create_run(op.name, kind=op.kind, flags=resolved, label=label, tags=tags,
                           source=source, sweep=sweep)
    try:
        spec = op.prepare(run, store, controller.config)
    except BaseException as e:
        store.set_status(run.id, RunStatus.FAILED, reason=f"could not prepare the run: {e}")
        raise
    spec.retries = retries
    if output_scalars is not None:  # this run's patterns, over the operation's own
        spec.output_scalars = output_scalars
    return controller.submit(run, spec, background=background, echo=echo, executor=remote,
                             resources=dict(resources) if resources else None)


def remote_executor(op: Any, name: str, resources: Mapping[str, float] | None) -> Any:
    """The executor called ``name``, checked (reachable, resources it can schedule) before
    anything is recorded; None for the local one."""
    from guild_jupyter.orchestration.executors import get_executor

    executor = get_executor(name)
    if resources:
        for key, amount in resources.items():
            if not isinstance(amount, (int, float)) or amount <= 0:
                raise GuildError(f"resource {key!r} needs a positive amount, got {amount!r}")
    executor.check(dict(resources) if resources else None)
    if executor.name == "local":
        return None
    if getattr(op, "steps", None) is not None:
        raise GuildError(
            f"{op.name} is a pipeline (steps): run it locally; its steps record runs in this store"
        )
    return executor
