"""Starting, previewing and resuming sweeps from Python, the CLI and the magics."""

from __future__ import annotations

import csv
import json
import os
from typing import Any, Callable, Iterable, Mapping

from guild_jupyter.errors import GuildError
from guild_jupyter.storage.store import RunStore
from guild_jupyter.sweeps.runner import SweepRunner
from guild_jupyter.sweeps.space import SweepSpace
from guild_jupyter.sweeps.sweep import SPEC, Sweep


def options_from_args(args: Any) -> dict[str, Any]:
    """Sweep options given on a command line or a magic line (argparse namespace)."""
    out = {
        k: getattr(args, k)
        for k in ("optimizer", "max_trials", "objective_agg", "random_seed", "parallel", "prune")
        if getattr(args, k, None) is not None
    }
    if args.minimize and args.maximize:
        raise GuildError("give either --minimize or --maximize, not both")
    if args.minimize or args.maximize:
        out.update(objective=args.minimize or args.maximize, minimize=bool(args.minimize))
    return out


def list_flags(op: Any) -> list[str]:
    return [name for name, d in op.flag_defs().items() if d.type == "list"]


def space_for(op: Any, flags: Mapping[str, Any] | None) -> SweepSpace:
    return SweepSpace.from_flags(dict(flags or {}), list_flags(op))


def is_sweep(op: Any, flags: Mapping[str, Any] | None, batch: str | None = None) -> bool:
    return batch is not None or space_for(op, flags).is_sweep


def operation_for(target: Any, name: str | None = None) -> Any:
    """An operation object for a function, a script/notebook path, or one already built."""
    if callable(target) and not hasattr(target, "flag_defs"):
        from guild_jupyter.experiment.function_op import FunctionOperation

        return FunctionOperation(target, name)
    if isinstance(target, (str, os.PathLike)):
        from guild_jupyter.experiment.runner import load_operation

        op = load_operation(os.fspath(target))
        op.target = os.fspath(target)
        return op
    return target  # an operation object already (a cell)


def read_batch(path: str) -> list[dict[str, Any]]:
    """Trials from ``@file``: CSV with a header, JSON or YAML with one flag map per trial."""
    path = path[1:] if path.startswith("@") else path
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise GuildError(f"cannot read batch file {path}: {e.strerror}") from None
    if path.endswith(".csv"):
        from guild_jupyter.model.flags import parse_flag_text

        rows = list(csv.DictReader(text.splitlines()))
        trials = [{k: parse_flag_text(v) for k, v in row.items()} for row in rows]
    elif path.endswith(".json"):
        try:
            trials = json.loads(text)
        except json.JSONDecodeError as e:
            raise GuildError(f"{path}, line {e.lineno}: {e.msg}") from None
    elif path.endswith((".yaml", ".yml")):
        import yaml

        try:
            trials = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            raise GuildError(
                f"{path}, line {mark.line + 1 if mark else '?'}: {getattr(e, 'problem', e)}"
            ) from None
    else:
        raise GuildError(f"batch file {path} must end in .csv, .json or .yaml")
    if not isinstance(trials, list) or not all(isinstance(t, dict) for t in trials) or not trials:
        raise GuildError(f"batch file {path} must hold a list of flag maps, one per trial")
    return trials


def run_sweep(
    target: Any,
    flags: Mapping[str, Any] | None = None,
    *,
    store: RunStore,
    batch: str | None = None,
    echo: Callable[[str], None] | None = None,
    label: str = "",
    tags: Iterable[str] = (),
    **options: Any,
) -> Sweep:
    """Run the trials of ``target`` over the space in ``flags`` (or a batch file) and return the Sweep."""
    runner = sweep_runner(
        target, flags, store=store, batch=batch, echo=echo, label=label, tags=tags, **options
    )
    return runner.run()


def print_trials(
    target: Any,
    flags: Mapping[str, Any] | None = None,
    *,
    store: RunStore,
    batch: str | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """The trials a grid or batch would run, without running anything."""
    runner = sweep_runner(target, flags, store=store, batch=batch, **options)
    if runner.optimizer != "grid":
        raise GuildError(
            f"--print-trials shows grid and batch trials; {runner.optimizer} picks trials as it goes"
        )
    return [runner._resolved(t) for t in runner.grid_trials()]


def sweep_runner(
    target: Any,
    flags: Mapping[str, Any] | None,
    *,
    store: RunStore,
    batch: str | None = None,
    **options: Any,
) -> SweepRunner:
    op = operation_for(target)
    space = space_for(op, flags)
    trials = read_batch(batch) if batch is not None else None
    if trials is not None:
        options.setdefault("optimizer", "grid")
        options.setdefault("max_trials", len(trials))
    defaults = (
        op.sweep_defaults() if hasattr(op, "sweep_defaults") else {}
    )  # guild.yml objective etc.
    if "objective" in options:
        defaults.pop("objective", None)
        defaults.pop("minimize", None)
    return SweepRunner(store, op, space, batch=trials, **{**defaults, **options})


def resume_sweep(
    ref: str | int,
    *,
    store: RunStore,
    max_trials: int | None = None,
    echo: Callable[[str], None] | None = None,
    target: Any = None,
) -> Sweep:
    """Continue a sweep (the same Optuna study, or the grid's remaining trials) with more trials."""
    run = store.resolve(ref)
    if run.kind != "sweep":
        raise GuildError(f"run {run.short_id} is a {run.kind} run, not a sweep")
    sweep = Sweep(store, run)
    spec = sweep.spec
    op_target = target if target is not None else spec.get("target")
    if op_target is None:
        raise GuildError(
            f"sweep {run.short_id} ran {spec['op']!r}, which cannot be found again; pass target="
        )
    flags = {**spec["fixed"], **spec["space"]}
    op = operation_for(op_target)
    runner = SweepRunner(
        store,
        op,
        space_for(op, flags),
        optimizer=spec["optimizer"],
        max_trials=max_trials or len(sweep.runs) or None,
        objective=spec["objective"],
        minimize=spec["minimize"],
        objective_agg=spec["objective_agg"],
        parallel=spec["parallel"],
        random_seed=spec["random_seed"],
        prune=spec["prune"],
        echo=echo,
        batch=spec.get("batch"),
        executor=spec.get("executor"),
        resources=spec.get("resources"),
    )
    store.new_attempt(run.id)
    from guild_jupyter.model.run import hostname
    from guild_jupyter.orchestration.process_info import self_identity

    pid, started = self_identity()
    store.set_status(run.id, "running", pid=pid, pid_started=started, host=hostname())
    return runner.run(sweep, trials=max_trials or runner.max_trials)


__all__ = ["SPEC", "Sweep", "is_sweep", "print_trials", "read_batch", "resume_sweep", "run_sweep"]
