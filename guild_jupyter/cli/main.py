"""Entry point of the ``guild-jupyter`` command.

Each subcommand is a small function taking the parsed arguments and a store;
heavy imports (pandas) happen only in the commands that need them, so listing
and running stay quick to start.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any, Callable, Sequence

from guild_jupyter import __version__
from guild_jupyter.errors import GuildError

Command = Callable[[argparse.Namespace, Any], int]
_COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    def register(fn: Command) -> Command:
        _COMMANDS[name] = fn
        return fn

    return register


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--op", help="operation name (glob patterns allowed)")
    p.add_argument("-s", "--status", action="append", help="only runs with this status (repeatable)")
    p.add_argument("-l", "--label", help="only runs whose label contains this text")
    p.add_argument("-t", "--tag", action="append", help="only runs with this tag (repeatable)")
    p.add_argument("-w", "--where", help='expression, e.g. "flags.lr < 0.1 and scalars.loss < 0.5"')
    p.add_argument("--deleted", action="store_true", help="list runs in the trash")


def _sweep_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sweeps (a flag value like [a,b], range[..], uniform[..], or @trials.csv)")
    g.add_argument("--optimizer", help="grid, random, tpe (default for search spaces), gp, cmaes or qmc")
    g.add_argument("--max-trials", type=int, help="at most this many trials (default 20)")
    g.add_argument("--minimize", metavar="SCALAR", help="the objective to minimize (default loss)")
    g.add_argument("--maximize", metavar="SCALAR", help="the objective to maximize")
    g.add_argument("--objective-agg", choices=["last", "min", "max"], help="which value of the objective counts")
    g.add_argument("--random-seed", type=int, help="seed of the optimizer")
    g.add_argument("--parallel", type=int, help="trials at once (under the global limit)")
    g.add_argument("--prune", choices=["median", "asha", "hyperband"], help="stop unpromising trials early")
    g.add_argument("--print-trials", action="store_true", help="show a grid's trials without running them")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guild-jupyter", description="Experiment tracking for Jupyter, in the spirit of Guild AI.")
    parser.add_argument("--version", action="version", version=f"guild-jupyter {__version__}")
    parser.add_argument("-H", "--home", help="store location (default: $GUILD_JUPYTER_HOME or ~/.guild-jupyter)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="run a script or a notebook as a tracked run")
    p.add_argument("target", metavar="TARGET", help="a Python script (.py) or a notebook (.ipynb)")
    p.add_argument("flags", nargs="*", metavar="FLAG=VALUE", help="flag values")
    p.add_argument("-b", "--background", action="store_true", help="return at once; the run goes on")
    p.add_argument("-l", "--label", default="", help="a label for the run")
    p.add_argument("-t", "--tag", action="append", default=[], help="a tag (repeatable)")
    p.add_argument("--retries", type=int, default=0, help="retry a failed run N times (with backoff)")
    p.add_argument("-q", "--quiet", action="store_true", help="do not show the run's output")
    p.add_argument("--help-op", action="store_true", help="show the script's flags and exit")
    _sweep_arguments(p)

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

    p = sub.add_parser("runs", help="list runs (newest first)")
    _filters(p)
    p.add_argument("-a", "--all", action="store_true", help="show all runs (default: the newest 20)")
    p.add_argument("-n", "--limit", type=int, default=20, help="how many runs to show")
    p.add_argument("--json", action="store_true", help="print JSON with flags and scalars")

    p = sub.add_parser("compare", help="flags and scalars of runs as a table")
    p.add_argument("runs", nargs="*", metavar="RUN", help="runs to compare (default: all matching the filters)")
    _filters(p)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", nargs="?", const="-", metavar="PATH", help="write CSV (to PATH or stdout)")
    fmt.add_argument("--json", action="store_true", help="print JSON records")

    p = sub.add_parser("cat", help="print a run's output")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--offset", type=int, default=0, help="start at this byte offset")

    p = sub.add_parser("label", help="set or clear run labels")
    p.add_argument("runs", nargs="+", metavar="RUN")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--set", metavar="LABEL", help="the new label")
    g.add_argument("--clear", action="store_true", help="remove the label")

    p = sub.add_parser("tag", help="add or remove run tags")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("-a", "--add", action="append", default=[], metavar="TAG")
    p.add_argument("-d", "--delete", action="append", default=[], metavar="TAG")
    p.add_argument("--clear", action="store_true", help="remove every tag first")

    for name, text in (("delete", "move runs to the trash"), ("restore", "bring runs back from the trash"),
                       ("purge", "remove runs from the trash for good")):
        p = sub.add_parser(name, help=text)
        p.add_argument("runs", nargs="+", metavar="RUN")
        if name == "purge":
            p.add_argument("-y", "--yes", action="store_true", help="do not ask")

    p = sub.add_parser("rerun", help="a new run from a run's record (snapshot, inputs, flags)")
    p.add_argument("run", metavar="RUN")
    p.add_argument("flags", nargs="*", metavar="FLAG=VALUE", help="flag values to change")
    p.add_argument("--check", action="store_true", help="compare the new run's scalars with the original's")
    p.add_argument("-b", "--background", action="store_true", help="return at once; the run goes on")
    p.add_argument("-q", "--quiet", action="store_true", help="do not show the run's output")

    p = sub.add_parser("diff", help="how two runs differ: flags, inputs, code")
    p.add_argument("runs", nargs="*", metavar="RUN", help="two runs (default: the two newest)")

    p = sub.add_parser("check", help="compare the index with the run directories")
    p.add_argument("--repair", action="store_true", help="rebuild the index from the run directories")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    warnings.showwarning = _show_warning
    try:
        from guild_jupyter.storage.store import RunStore

        store = RunStore(args.home) if args.home else RunStore()
        if args.command in ("runs", "compare", "cat", "stop", "delete", "check"):
            from guild_jupyter.orchestration.reconcile import reconcile

            reconcile(store)  # show and act on true statuses
        return _COMMANDS[args.command](args, store) or 0
    except GuildError as e:
        print(f"guild-jupyter: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    print(f"guild-jupyter: warning: {message}", file=sys.stderr)


def _filter_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"op": args.op, "status": args.status, "label": args.label, "tag": args.tag,
            "deleted": args.deleted}


# commands ---------------------------------------------------------------------
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
    options = _sweep_option_values(args)
    if options or args.print_trials or sweeps.is_sweep(op, flags, batches[0] if batches else None):
        return _run_sweep(args, store, op, flags, batches[0] if batches else None, options)
    echo = None if args.quiet or args.background else _echo
    run = start_run(args.target, flags, store=store, label=args.label, tags=args.tag,
                    background=args.background, retries=args.retries, echo=echo)
    if args.background:
        print(f"{run.id} started in the background ({run.status.value})")
        return 0
    if run.status != "completed":
        print(f"guild-jupyter: run {run.short_id} {run.status.value}: {run.reason}", file=sys.stderr)
        return 1
    return 0


def _sweep_option_values(args: argparse.Namespace) -> dict[str, Any]:
    out = {k: getattr(args, k) for k in ("optimizer", "max_trials", "objective_agg", "random_seed", "parallel",
                                         "prune") if getattr(args, k) is not None}
    if args.minimize and args.maximize:
        raise GuildError("give either --minimize or --maximize, not both")
    if args.minimize or args.maximize:
        out.update(objective=args.minimize or args.maximize, minimize=bool(args.minimize))
    return out


def _run_sweep(args: argparse.Namespace, store: Any, op: Any, flags: dict[str, Any], batch: str | None,
               options: dict[str, Any]) -> int:
    from guild_jupyter.cli.format import align
    from guild_jupyter.sweeps import api as sweeps

    if args.background:
        raise GuildError("a sweep runs in the foreground here; start it from a notebook to keep working")
    if args.print_trials:
        trials = sweeps.print_trials(op, flags, store=store, batch=batch, **options)
        names = list(trials[0]) if trials else []
        for line in align([["#", *names]] + [[str(i), *(repr(t[n]) for n in names)] for i, t in enumerate(trials, 1)]):
            print(line)
        return 0
    sweep = sweeps.run_sweep(op, flags, store=store, batch=batch, label=args.label, tags=args.tag,
                             echo=None if args.quiet else _echo, **options)
    best = sweep.best
    spec = sweep.spec
    print(f"sweep {sweep.run.short_id} {sweep.run.status.value}: {len(sweep.runs)} trials; "
          + (f"best {best.short_id} {' '.join(f'{k}={v!r}' for k, v in best.flags.items())}" if best
             else f"no trial reported {spec['objective']}"))
    return 0 if sweep.run.status == "completed" else 1


@command("sweep")
def _sweep(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.sweeps.api import resume_sweep

    sweep = resume_sweep(args.sweep, store=store, max_trials=args.max_trials, echo=_echo)
    print(f"sweep {sweep.run.short_id} {sweep.run.status.value}: {len(sweep.runs)} trials")
    return 0 if sweep.run.status == "completed" else 1


def _echo(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


@command("rerun")
def _rerun(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.model.flags import split_assignment
    from guild_jupyter.notebook.rerun import rerun

    flags = dict(split_assignment(a) for a in args.flags)
    run = rerun(args.run, flags, store=store, check=args.check, background=args.background,
                echo=None if args.quiet or args.background else _echo)
    if args.background:
        print(f"{run.id} started in the background ({run.status.value})")
        return 0
    if args.check:
        print(run.check)
        return 0 if run.check.matches else 1
    return 0 if run.status == "completed" else 1


@command("diff")
def _diff(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.notebook.diff import diff_runs

    refs = args.runs or ["2", "1"]
    if len(refs) != 2:
        raise GuildError("diff takes two runs")
    print(diff_runs(store, refs[0], refs[1]))
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

    run = Controller(store).restart(args.run, background=args.background, echo=None if args.background else _echo)
    print(f"{run.short_id} attempt {run.attempt.n} {run.status.value}", file=sys.stderr)
    return 0 if args.background or run.status == "completed" else 1


@command("runs")
def _runs(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.cli.format import run_lines

    limit = None if args.all else args.limit
    if args.json or args.where:
        df = store.runs_frame(**_filter_kwargs(args), where=args.where, limit=None if args.where else limit)
        if limit:
            df = df.head(limit)
        if args.json:
            print(json.dumps(_records(df), indent=1, default=str))
            return 0
        rows = [{**r, "started": r["started"].timestamp() if r["started"] is not None and r["started"] == r["started"] else None}
                for r in df[["id", "op", "status", "started", "label", "tags"]].to_dict("records")]
    else:
        rows = store.list_rows(**_filter_kwargs(args), limit=limit)
    for line in run_lines(rows):
        print(line)
    return 0


def _records(df: Any) -> list[dict[str, Any]]:
    import math

    out = []
    for rec in df.to_dict("records"):
        item: dict[str, Any] = {k: None for k in rec if not k.startswith(("flags.", "scalars."))}
        item.update(flags={}, scalars={})
        for k, v in rec.items():
            if isinstance(v, float) and math.isnan(v):
                v = None
            elif hasattr(v, "isoformat"):
                v = None if v != v else v.isoformat()
            if k.startswith("flags."):
                if v is not None:
                    item["flags"][k[6:]] = v
            elif k.startswith("scalars."):
                if v is not None:
                    item["scalars"][k[8:]] = v
            else:
                item[k] = v
        out.append(item)
    return out


@command("compare")
def _compare(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.cli.refs import select_ids

    df = store.runs_frame(**_filter_kwargs(args), where=args.where)
    if args.runs:
        ids = select_ids(store, args.runs, deleted=None)
        present = set(df["id"])
        df = df.set_index("id").loc[[i for i in ids if i in present]].reset_index()
    cols = ["id", "op", "status", "started", "label"] + [c for c in df.columns if c.startswith(("flags.", "scalars."))]
    df = df[cols].dropna(axis=1, how="all") if len(df) else df[cols]
    if args.json:
        print(json.dumps(_records(df), indent=1, default=str))
    elif args.csv:
        text = df.to_csv(index=False)
        if args.csv == "-":
            sys.stdout.write(text)
        else:
            with open(args.csv, "w", encoding="utf-8") as f:
                f.write(text)
    else:
        import pandas as pd

        shown = df.assign(id=df["id"].str[:8], started=df["started"].dt.floor("s").dt.tz_localize(None))
        with pd.option_context("display.width", 200, "display.max_columns", 50):
            print(shown.to_string(index=False) if len(shown) else "no runs")
    return 0


@command("cat")
def _cat(args: argparse.Namespace, store: Any) -> int:
    run_id = store.resolve_id(args.run, deleted=None)
    sys.stdout.write(store.read_output(run_id, args.offset))
    return 0


@command("label")
def _label(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.cli.refs import select_ids

    for run_id in select_ids(store, args.runs):
        store.set_label(run_id, "" if args.clear else args.set)
        print(f"{'cleared label of' if args.clear else 'labelled'} {run_id[:8]}")
    return 0


@command("tag")
def _tag(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.cli.refs import select_ids

    if not (args.add or args.delete or args.clear):
        raise GuildError("tag: give --add TAG, --delete TAG or --clear")
    for run_id in select_ids(store, args.runs):
        remove = store.load_run(run_id).tags if args.clear else args.delete
        run = store.set_tags(run_id, add=args.add, remove=[t for t in remove if t not in args.add])
        print(f"{run_id[:8]} tags: {' '.join(run.tags) or '(none)'}")
    return 0


@command("delete")
def _delete(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.cli.refs import select_ids

    ids = select_ids(store, args.runs)
    for run_id in ids:
        store.delete(run_id)
    print(f"moved {len(ids)} run(s) to the trash (restore with 'guild-jupyter restore')")
    return 0


@command("restore")
def _restore(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.cli.refs import select_ids

    ids = select_ids(store, args.runs, deleted=True)
    for run_id in ids:
        store.restore(run_id)
    print(f"restored {len(ids)} run(s)")
    return 0


@command("purge")
def _purge(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.cli.refs import select_ids

    ids = select_ids(store, args.runs, deleted=True)
    if not args.yes:
        if not sys.stdin.isatty():
            raise GuildError("purge removes runs for good: confirm with --yes")
        answer = input(f"Permanently remove {len(ids)} run(s)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 0
    for run_id in ids:
        store.purge(run_id)
    print(f"purged {len(ids)} run(s)")
    return 0


@command("check")
def _check(args: argparse.Namespace, store: Any) -> int:
    report = store.check(repair=args.repair)
    for message in report["corrupt"]:
        print(f"corrupt: {message}")
    problems = sum(len(report[k]) for k in ("missing_from_index", "stale_in_index", "status_mismatch"))
    print(f"{report['runs']} run(s) on disk; {len(report['corrupt'])} corrupt; "
          f"{len(report['missing_from_index'])} missing from the index; {len(report['stale_in_index'])} stale in the index; "
          f"{len(report['status_mismatch'])} with a different status")
    if report["repaired"]:
        print("index rebuilt from the run directories")
        return 0
    return 1 if problems or report["corrupt"] else 0
