"""Subcommands that start and control runs: run (and sweeps), sweep, stop, restart, rerun, diff."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from guild_jupyter.cli.registry import command
from guild_jupyter.cli.registry import echo as _echo
from guild_jupyter.errors import GuildError


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("run", help="run a script or a notebook as a tracked run")
    p.add_argument("target", metavar="TARGET", help="a Python script (.py) or a notebook (.ipynb)")
    p.add_argument("flags", nargs="*", metavar="FLAG=VALUE", help="flag values")
    p.add_argument(
        "-b", "--background", action="store_true", help="return at once; the run goes on"
    )
    p.add_argument("-l", "--label", default="", help="a label for the run")
    p.add_argument("-t", "--tag", action="append", default=[], help="a tag (repeatable)")
    p.add_argument(
        "--retries", type=int, default=0, help="retry a failed run N times (with backoff)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="do not show the run's output")
    p.add_argument("--help-op", action="store_true", help="show the script's flags and exit")
    p.add_argument(
        "--executor",
        help="where runs execute: local, dask (a LocalCluster), a Dask scheduler address "
        "(tcp://host:8786) or an installed executor (default: the executor setting)",
    )
    p.add_argument("--gpus", type=float, help="GPUs a run, or each trial of a sweep, needs (a Dask worker resource 'GPU')")
    _sweep_arguments(p)

    p = sub.add_parser("ops", help="list the operations of the nearest guild.yml and their flags")

    p = sub.add_parser("sweep", help="continue a sweep")
    p.add_argument("action", choices=["resume"], help="what to do")
    p.add_argument("sweep", metavar="SWEEP", help="the sweep's id, prefix or index")
    p.add_argument("--max-trials", type=int, help="how many more trials")

    p = sub.add_parser("stop", help="stop running runs")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--no-wait", action="store_true", help="do not wait for the runs to end")

    p = sub.add_parser("restart", help="run a finished run again as a new attempt")
    p.add_argument("run", metavar="RUN")
    p.add_argument("-b", "--background", action="store_true")

    p = sub.add_parser("rerun", help="a new run from a run's record (snapshot, inputs, flags)")
    p.add_argument("run", metavar="RUN")
    p.add_argument("flags", nargs="*", metavar="FLAG=VALUE", help="flag values to change")
    p.add_argument(
        "--check", action="store_true", help="compare the new run's scalars with the original's"
    )
    p.add_argument(
        "-b", "--background", action="store_true", help="return at once; the run goes on"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="do not show the run's output")

    p = sub.add_parser("diff", help="how two runs differ: flags, inputs, code")
    p.add_argument("runs", nargs="*", metavar="RUN", help="two runs (default: the two newest)")


def _sweep_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "sweeps (a flag value like [a,b], range[..], uniform[..], or @trials.csv)"
    )
    g.add_argument(
        "--optimizer", help="grid, random, tpe (default for search spaces), gp, cmaes or qmc"
    )
    g.add_argument("--max-trials", type=int, help="at most this many trials (default 20)")
    g.add_argument("--minimize", metavar="SCALAR", help="the objective to minimize (default loss)")
    g.add_argument("--maximize", metavar="SCALAR", help="the objective to maximize")
    g.add_argument(
        "--objective-agg",
        choices=["last", "min", "max"],
        help="which value of the objective counts",
    )
    g.add_argument("--random-seed", type=int, help="seed of the optimizer")
    g.add_argument("--parallel", type=int, help="trials at once (under the global limit)")
    g.add_argument(
        "--prune", choices=["median", "asha", "hyperband"], help="stop unpromising trials early"
    )
    g.add_argument(
        "--print-trials", action="store_true", help="show a grid's trials without running them"
    )


@command("run")
def _run(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.experiment.runner import load_operation, start_run
    from guild_jupyter.model.flags import split_assignment

    if args.help_op:
        print(load_operation(args.target).help_text())
        return 0
    batches = [a for a in args.flags if a.startswith("@")]
    flags = dict(split_assignment(a) for a in args.flags if not a.startswith("@"))
    if len(batches) > 1:
        raise GuildError("give one batch file (@trials.csv), not several")
    from guild_jupyter.sweeps import api as sweeps

    op = sweeps.operation_for(args.target)
    options = sweeps.options_from_args(args)
    placement = _placement(args, store)
    if options or args.print_trials or sweeps.is_sweep(op, flags, batches[0] if batches else None):
        return _run_sweep(args, store, op, flags, batches[0] if batches else None,
                          {**options, **placement})
    echo = None if args.quiet or args.background else _echo
    run = start_run(
        args.target,
        flags,
        store=store,
        label=args.label,
        tags=args.tag,
        background=args.background,
        retries=args.retries,
        echo=echo,
        **placement,
    )
    if args.background:
        print(f"{run.id} started in the background ({run.status.value})")
        return 0
    if run.status != "completed":
        print(
            f"guild-jupyter: run {run.short_id} {run.status.value}: {run.reason}", file=sys.stderr
        )
        return 1
    return 0


def _placement(args: argparse.Namespace, store: Any) -> dict[str, Any]:
    """``executor`` and ``resources`` options from --executor and --gpus."""
    out: dict[str, Any] = {}
    if args.executor:
        out["executor"] = args.executor
    if args.gpus is not None:
        out["resources"] = {"GPU": args.gpus}
    if args.background:
        from guild_jupyter.config import Config

        if (args.executor or Config.load(store.home).executor) != "local":
            raise GuildError(
                "--background needs the local executor here: this command's process follows "
                "remote runs and exits at once; start them from a notebook or Python instead"
            )
    return out


def _run_sweep(
    args: argparse.Namespace,
    store: Any,
    op: Any,
    flags: dict[str, Any],
    batch: str | None,
    options: dict[str, Any],
) -> int:
    from guild_jupyter.cli.format import align
    from guild_jupyter.sweeps import api as sweeps

    if args.background:
        raise GuildError(
            "a sweep runs in the foreground here; start it from a notebook to keep working"
        )
    if args.print_trials:
        trials = sweeps.print_trials(op, flags, store=store, batch=batch, **options)
        names = list(trials[0]) if trials else []
        for line in align(
            [["#", *names]]
            + [[str(i), *(repr(t[n]) for n in names)] for i, t in enumerate(trials, 1)]
        ):
            print(line)
        return 0
    sweep = sweeps.run_sweep(
        op,
        flags,
        store=store,
        batch=batch,
        label=args.label,
        tags=args.tag,
        echo=None if args.quiet else _echo,
        **options,
    )
    best = sweep.best
    spec = sweep.spec
    print(
        f"sweep {sweep.run.short_id} {sweep.run.status.value}: {len(sweep.runs)} trials; "
        + (
            f"best {best.short_id} {' '.join(f'{k}={v!r}' for k, v in best.flags.items())}"
            if best
            else f"no trial reported {spec['objective']}"
        )
    )
    return 0 if sweep.run.status == "completed" else 1


@command("sweep")
def _sweep(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.sweeps.api import resume_sweep

    sweep = resume_sweep(args.sweep, store=store, max_trials=args.max_trials, echo=_echo)
    print(f"sweep {sweep.run.short_id} {sweep.run.status.value}: {len(sweep.runs)} trials")
    return 0 if sweep.run.status == "completed" else 1


@command("rerun")
def _rerun(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.model.flags import split_assignment
    from guild_jupyter.notebook.rerun import rerun

    flags = dict(split_assignment(a) for a in args.flags)
    run = rerun(
        args.run,
        flags,
        store=store,
        check=args.check,
        background=args.background,
        echo=None if args.quiet or args.background else _echo,
    )
    if args.background:
        print(f"{run.id} started in the background ({run.status.value})")
        return 0
    if args.check:
        print(run.check)
        return 0 if run.check.matches else 1
    return 0 if run.status == "completed" else 1


@command("diff")
def _diff(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.compare.diff import diff

    refs = args.runs or ["2", "1"]
    if len(refs) != 2:
        raise GuildError("diff takes two runs")
    print(diff(refs[0], refs[1], store=store))
    return 0


@command("stop")
def _stop(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.cli.refs import select_ids
    from guild_jupyter.orchestration.controller import Controller

    controller = Controller(store)
    for run_id in select_ids(store, args.runs):
        run = controller.stop(run_id, wait=not args.no_wait)
        print(f"{run.short_id} {run.status.value}")
    return 0


@command("restart")
def _restart(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.orchestration.controller import Controller

    run = Controller(store).restart(
        args.run, background=args.background, echo=None if args.background else _echo
    )
    print(f"{run.short_id} attempt {run.attempt.n} {run.status.value}", file=sys.stderr)
    return 0 if args.background or run.status == "completed" else 1


@command("ops")
def _ops(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.guild_compat.guildfile_op import list_ops

    print(list_ops())
    return 0
