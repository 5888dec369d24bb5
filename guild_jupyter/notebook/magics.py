"""The IPython magics: ``%%guild_run`` and ``%guild <command>``.

Bad input (an unknown option, an unknown flag, a value of the wrong type, an
input that cannot be pickled, an unknown run) is reported as one
``UsageError`` line and records nothing. A foreground run that fails or is
cancelled also ends the cell with one such line (so "Run All" stops there, as
for a failing plain cell); its output was already shown and the run is
``gj.get_run(1)``. Otherwise the magic's value is the :class:`Run` (``r = _``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from guild_jupyter.errors import GuildError

COMMANDS = (
    "run",
    "runs",
    "compare",
    "cat",
    "stop",
    "delete",
    "restore",
    "label",
    "tag",
    "diff",
    "load",
    "rerun",
    "sweep",
    "import-guild",
    "ops",
    "help",
)
_CLI_COMMANDS = ("cat", "stop", "delete", "restore", "label", "tag", "sweep", "import-guild", "ops")


def _echo(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _store():
    from guild_jupyter.experiment.api import default_store

    return default_store()


def _flags(items: list[str]) -> dict[str, str]:
    from guild_jupyter.model.flags import split_assignment

    return dict(split_assignment(a) for a in items)


def _finish(run: Any, background: bool) -> Any:
    if background or run.status.value == "completed":
        return run
    reason = f": {run.reason}" if run.reason else ""
    raise UsageError(f"run {run.short_id} {run.status.value}{reason}")


class _Parser(argparse.ArgumentParser):
    """argparse that raises one-line errors instead of exiting the kernel."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"%guild {self.prog.split()[-1]}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            print(message)
        raise _Done()


class _Done(Exception):
    """--help was shown."""


@magics_class
class GuildMagics(Magics):
    @magic_arguments()
    @argument("-l", "--label", default="", help="a label for the run")
    @argument("-t", "--tag", action="append", default=[], help="a tag (repeatable)")
    @argument(
        "--background",
        action="store_true",
        help="return at once; the run goes on and the kernel is free",
    )
    @argument(
        "--inline", action="store_true", help="run in this kernel (no isolation; still recorded)"
    )
    @argument(
        "--outputs",
        default="",
        help="names to save from the run, comma-separated (load with %%guild load)",
    )
    @argument("--no-inputs", action="store_true", help="do not capture the cell's free variables")
    @argument("--retries", type=int, default=0, help="retry a failed run N times")
    @argument("--op", default=None, help="operation name (default: notebook name and cell)")
    @argument("--executor", default="local", choices=["local"], help="where the run executes")
    @argument("--help-op", action="store_true", help="show the cell's flags and exit")
    @argument(
        "--optimizer",
        help="sweeps: grid, random, tpe (default for search spaces), gp, cmaes or qmc",
    )
    @argument("--max-trials", type=int, help="sweeps: at most this many trials (default 20)")
    @argument(
        "--minimize", metavar="SCALAR", help="sweeps: the objective to minimize (default loss)"
    )
    @argument("--maximize", metavar="SCALAR", help="sweeps: the objective to maximize")
    @argument(
        "--objective-agg",
        choices=["last", "min", "max"],
        help="sweeps: which value of the objective",
    )
    @argument("--random-seed", type=int, help="sweeps: seed of the optimizer")
    @argument("--parallel", type=int, help="sweeps: trials at once")
    @argument(
        "--prune",
        choices=["median", "asha", "hyperband"],
        help="sweeps: stop unpromising trials early",
    )
    @argument(
        "--print-trials",
        action="store_true",
        help="sweeps: show a grid's trials without running them",
    )
    @argument(
        "flags",
        nargs="*",
        metavar="FLAG=VALUE",
        help="flag values overriding the cell's assignments; a list or range[..]/uniform[..] makes a sweep",
    )
    @line_cell_magic
    def guild_run(self, line: str, cell: str | None = None) -> Any:
        """Run this cell as a tracked, snapshotted operation.

        Top-level literal assignments in the cell (``lr = 0.1``) are its flags;
        ``flag=value`` on the magic line overrides them. By default the cell runs in
        a fresh Python process; names it uses from the kernel are captured by value.
        """
        if _wants_help(line):
            self.guild_run.parser.print_help()
            return None
        if cell is None:
            raise UsageError(
                "%%guild_run is a cell magic: put it on the first line of the cell to run "
                "(%guild_run --help shows its options)"
            )
        try:  # POSIX quoting, so -l "a label" has no quotes in it
            argv = shlex.split(line)
        except ValueError as e:
            raise UsageError(f"%%guild_run: {e}") from None
        args = self.guild_run.parser.parse_args(argv)  # its errors are UsageErrors
        try:
            return self._guild_run(args, cell)
        except GuildError as e:
            raise UsageError(str(e)) from None

    def _guild_run(self, args: argparse.Namespace, cell: str) -> Any:
        from guild_jupyter.model.flags import resolve_flags
        from guild_jupyter.notebook.cell_op import CellOperation, cell_op_name, run_inline

        if args.inline and args.background:
            raise GuildError(
                "--inline and --background cannot be combined: an inline run uses the kernel"
            )
        if args.inline and args.retries:
            raise GuildError("--retries needs a subprocess run: drop --inline")
        notebook = _notebook_path(self.shell)
        outputs = [o.strip() for o in args.outputs.split(",") if o.strip()]
        for o in outputs:
            if not o.isidentifier():
                raise GuildError(f"--outputs: {o!r} is not a Python name")
        given = _flags(args.flags)
        name = args.op or cell_op_name(cell, notebook, _cell_id(self.shell))
        if args.inline:  # in the kernel, IPython syntax (%time, !ls) works as in a plain cell
            cell = self.shell.transform_cell(cell)
        elif _ipython_syntax(cell):
            raise GuildError(
                f"line {_ipython_syntax(cell)} uses IPython syntax (% or !), which a subprocess "
                "run cannot execute: use --inline, or plain Python"
            )
        op = CellOperation.from_cell(
            cell,
            name=name,
            notebook_dir=os.getcwd(),
            namespace=self.shell.user_ns,
            outputs=outputs,
            notebook=notebook,
            capture_inputs=not (args.no_inputs or args.inline or args.help_op),
        )
        if args.help_op:
            print(op.help_text())
            return None
        store = _store()
        sweep = self._maybe_sweep(args, op, given, store)
        if sweep is not None:
            return sweep
        if args.inline:
            resolved = resolve_flags(op.flag_defs(), given, op=op.name)
            return run_inline(
                op,
                resolved,
                store=store,
                namespace=self.shell.user_ns,
                label=args.label,
                tags=args.tag,
            )
        run = _start_interruptible(
            op,
            given,
            store=store,
            label=args.label,
            tags=args.tag,
            background=args.background,
            retries=args.retries,
            echo=None if args.background else _echo,
        )
        if args.background:
            print(f"run {run.short_id} started in the background")
            _show_widget(run, store)
        return _finish(run, args.background)

    def _maybe_sweep(
        self, args: argparse.Namespace, op: Any, given: dict[str, str], store: Any
    ) -> Any:
        """A sweep when the magic line holds a flag space or sweep options (else None)."""
        from guild_jupyter.sweeps import api as sweeps

        options = sweeps.options_from_args(args)
        if not (options or args.print_trials or sweeps.is_sweep(op, given)):
            return None
        if args.inline or args.background:
            raise GuildError(
                "a sweep runs its trials as subprocesses in the foreground: drop --inline/--background"
            )
        if args.print_trials:
            import pandas as pd

            return pd.DataFrame(sweeps.print_trials(op, given, store=store, **options))
        runner = sweeps.sweep_runner(
            op, given, store=store, label=args.label, tags=args.tag, echo=_echo, **options
        )
        sweep = runner.create()
        try:
            from guild_jupyter.widgets import show_sweep_widget

            show_sweep_widget(sweep)  # a live table of the trials, updated as they run
        except ImportError:
            pass
        return runner.run(sweep)

    @line_magic
    def guild(self, line: str) -> Any:
        """guild-jupyter commands: %guild COMMAND [ARGS]; %guild help lists them."""
        try:
            argv = shlex.split(line)
        except ValueError as e:
            raise UsageError(f"%guild: {e}") from None
        if not argv or argv[0] in ("help", "-h", "--help"):
            print(_HELP)
            return None
        cmd, rest = argv[0], argv[1:]
        if cmd not in COMMANDS:
            raise UsageError(f"%guild: unknown command {cmd!r} (commands: {', '.join(COMMANDS)})")
        try:
            if cmd in _CLI_COMMANDS:
                return self._cli(argv)
            return getattr(self, f"_cmd_{cmd}")(rest)
        except _Done:
            return None
        except GuildError as e:
            raise UsageError(str(e)) from None

    # commands --------------------------------------------------------------------------
    def _cli(self, argv: list[str]) -> None:
        from guild_jupyter.cli.main import main

        if "-H" not in argv and "--home" not in argv:
            argv = ["--home", str(_store().home), *argv]
        try:
            status = main(argv)
        except SystemExit as e:  # argparse usage errors (already printed)
            status = e.code if isinstance(e.code, int) else 1
        if status:
            raise UsageError(
                f"%guild {argv[2] if argv[0] == '--home' else argv[0]} failed (exit status {status})"
            )

    def _cmd_run(self, rest: list[str]) -> Any:
        p = _Parser(prog="%guild run")
        p.add_argument("target")
        p.add_argument("flags", nargs="*")
        p.add_argument("-l", "--label", default="")
        p.add_argument("-t", "--tag", action="append", default=[])
        p.add_argument("-b", "--background", action="store_true")
        p.add_argument("--retries", type=int, default=0)
        p.add_argument("--help-op", action="store_true")
        args = p.parse_args(rest)
        from guild_jupyter.experiment.runner import load_operation

        op = load_operation(args.target)
        if args.help_op:
            print(op.help_text())
            return None
        run = _start_interruptible(
            op,
            _flags(args.flags),
            store=_store(),
            label=args.label,
            tags=args.tag,
            background=args.background,
            retries=args.retries,
            echo=None if args.background else _echo,
        )
        return _finish(run, args.background)

    def _cmd_runs(self, rest: list[str]) -> Any:
        p = _Parser(prog="%guild runs")
        _filters(p)
        p.add_argument("-a", "--all", action="store_true")
        p.add_argument("-n", "--limit", type=int, default=20)
        args = p.parse_args(rest)
        import guild_jupyter as gj

        return gj.runs(
            args.where,
            op=args.op,
            status=args.status,
            label=args.label,
            tag=args.tag,
            deleted=args.deleted,
            limit=None if args.all else args.limit,
            store=_store(),
        )

    def _cmd_compare(self, rest: list[str]) -> Any:
        p = _Parser(prog="%guild compare")
        p.add_argument("runs", nargs="*")
        _filters(p)
        args = p.parse_args(rest)
        import guild_jupyter as gj

        store = _store()
        df = gj.runs(
            args.where,
            op=args.op,
            status=args.status,
            label=args.label,
            tag=args.tag,
            deleted=args.deleted,
            store=store,
        )
        if args.runs:
            from guild_jupyter.cli.refs import select_ids

            ids = select_ids(store, args.runs, deleted=None)
            df = df[df["id"].isin(ids)]
        cols = ["id", "op", "status", "started", "label"] + [
            c for c in df.columns if c.startswith(("flags.", "scalars."))
        ]
        df = df[cols]
        return (
            df.dropna(axis=1, how="all").reset_index(drop=True)
            if len(df)
            else df.reset_index(drop=True)
        )

    def _cmd_load(self, rest: list[str]) -> Any:
        p = _Parser(prog="%guild load", description="put a run's --outputs value into the kernel")
        p.add_argument("run")
        p.add_argument("names", nargs="+", metavar="NAME [as VAR]")
        p.add_argument("--trust", action="store_true", help="allow pickles of imported runs")
        args = p.parse_args(rest)
        from guild_jupyter.notebook.cell_op import load_output

        pairs = _load_pairs(args.names)
        store = _store()
        values = {var: load_output(store, args.run, name, trust=args.trust) for name, var in pairs}
        self.shell.user_ns.update(values)
        print(f"loaded {', '.join(f'{n} as {v}' if n != v else n for n, v in pairs)}")
        return None

    def _cmd_rerun(self, rest: list[str]) -> Any:
        p = _Parser(prog="%guild rerun")
        p.add_argument("run")
        p.add_argument("flags", nargs="*")
        p.add_argument(
            "--check", action="store_true", help="compare the new run's scalars with the original's"
        )
        p.add_argument("-b", "--background", action="store_true")
        p.add_argument("-l", "--label", default=None)
        args = p.parse_args(rest)
        from guild_jupyter.notebook.rerun import rerun

        run = rerun(
            args.run,
            _flags(args.flags),
            store=_store(),
            check=args.check,
            background=args.background,
            echo=None if args.background else _echo,
            label=args.label,
            namespace=self.shell.user_ns,
        )
        if args.check:
            print(run.check)
        return _finish(run, args.background)

    def _cmd_diff(self, rest: list[str]) -> Any:
        p = _Parser(prog="%guild diff")
        p.add_argument("runs", nargs="*", help="two runs (default: the two newest)")
        args = p.parse_args(rest)
        from guild_jupyter.compare.diff import diff

        refs = args.runs or ["2", "1"]
        if len(refs) != 2:
            raise GuildError("diff takes two runs")
        return diff(refs[0], refs[1], store=_store())  # shown as HTML in a notebook, text elsewhere


def _show_widget(run: Any, store: Any) -> None:
    """A live RunWidget for a background run (it keeps updating after the cell ends)."""
    try:
        from guild_jupyter.widgets import show_run_widget
    except ImportError:  # ipywidgets missing: the run goes on without a widget
        return
    show_run_widget(run, store)


class _Tracked:
    """Delegates to an operation and remembers the run it prepared."""

    def __init__(self, op: Any) -> None:
        self._op = op
        self.run_id: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._op, name)

    def prepare(self, run: Any, store: Any, config: Any) -> Any:
        self.run_id = run.id
        return self._op.prepare(run, store, config)


def _start_interruptible(op: Any, flags: dict[str, str], *, store: Any, **options: Any) -> Any:
    """Start a run; an interrupt that lands before the controller follows it still cancels it.

    (While following, the controller itself turns an interrupt into a stop.)
    """
    from guild_jupyter.experiment.runner import start_operation

    tracked = _Tracked(op)
    try:
        return start_operation(tracked, flags, store=store, **options)
    except KeyboardInterrupt:
        if tracked.run_id is not None and not store.load_run(tracked.run_id).status.terminal:
            from guild_jupyter.orchestration.controller import Controller

            run = Controller(store).stop(tracked.run_id, wait=True, reason="interrupted")
            raise UsageError(f"run {run.short_id} {run.status.value}: interrupted") from None
        raise


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--op")
    p.add_argument("-s", "--status", action="append")
    p.add_argument("-l", "--label")
    p.add_argument("-t", "--tag", action="append")
    p.add_argument("-w", "--where")
    p.add_argument("--deleted", action="store_true")


def _load_pairs(items: list[str]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    i = 0
    while i < len(items):
        name = items[i]
        if i + 1 < len(items) and items[i + 1] == "as":
            if i + 2 >= len(items):
                raise GuildError("%guild load: 'as' needs a variable name")
            pairs.append((name, items[i + 2]))
            i += 3
        else:
            pairs.append((name, name))
            i += 1
    for name, var in pairs:
        if not var.isidentifier():
            raise GuildError(f"%guild load: {var!r} is not a Python name")
    return pairs


def _ipython_syntax(cell: str) -> int | None:
    """The first line (1-based) that is IPython syntax rather than Python, if any."""
    import ast

    try:
        ast.parse(cell)
        return None
    except SyntaxError:
        pass
    for n, line in enumerate(cell.splitlines(), 1):
        if line.lstrip().startswith(("%", "!")):
            return n
    return None


def _wants_help(line: str) -> bool:
    try:
        return any(t in ("-h", "--help") for t in shlex.split(line))
    except ValueError:
        return False


def _notebook_path(shell: Any) -> str | None:
    """The notebook's path when the kernel knows it (JupyterLab sets ``__session__``)."""
    for value in (shell.user_ns.get("__session__"), os.environ.get("JPY_SESSION_NAME")):
        if isinstance(value, str) and value:
            return value
    return None


def _cell_id(shell: Any) -> str | None:
    try:
        parent = shell.kernel.get_parent() if hasattr(shell, "kernel") else None
    except Exception:
        parent = None
    if isinstance(parent, dict):
        cid = (parent.get("metadata") or {}).get("cellId")
        if isinstance(cid, str) and cid:
            return cid
    return None


_HELP = """%guild COMMAND [ARGS]   (commands mirror the guild-jupyter CLI)
  run TARGET [FLAG=VALUE ...]   run a script (.py) or a whole notebook (.ipynb)
  runs [filters]                runs as a DataFrame (newest first)
  compare [RUN ...]             flags and scalars as a DataFrame
  cat RUN                       a run's output
  stop | delete | restore RUN   stop, trash, untrash runs
  label RUN --set L | tag RUN -a T
  diff RUN RUN                  flags, inputs and code of two runs
  load RUN NAME [as VAR]        put a run's --outputs value into the kernel
  rerun RUN [FLAG=VALUE] [--check]  a new run from a run's record; --check compares scalars
A RUN is a full id, a unique id prefix, or an index (1 = newest)."""
