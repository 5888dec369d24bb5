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
import functools
import os
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from guild_jupyter.errors import GuildError
from guild_jupyter.notebook.guild_commands import _CLI_COMMANDS, _HELP, COMMANDS, GuildCommands
from guild_jupyter.notebook.magic_support import (
    _cell_id,
    _Done,
    _echo,
    _finish,
    _flags,
    _ipython_syntax,
    _notebook_path,
    _show_widget,
    _start_interruptible,
    _store,
    _wants_help,
)


@functools.lru_cache(maxsize=128)
def _parsed_run_line(line: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The options of a ``%%guild_run`` line (cached: a cell is often run many times),
    and the names of those holding lists."""
    try:  # POSIX quoting, so -l "a label" has no quotes in it
        argv = shlex.split(line)
    except ValueError as e:
        raise UsageError(f"%%guild_run: {e}") from None
    # its errors are UsageErrors (and are not cached)
    options = vars(GuildMagics.guild_run.parser.parse_args(argv))
    return options, tuple(k for k, v in options.items() if isinstance(v, list))


def _parse_run_line(line: str) -> argparse.Namespace:
    """A fresh namespace per run, with its own lists (tags, flags)."""
    options, lists = _parsed_run_line(line)
    args = argparse.Namespace()
    args.__dict__.update(options)
    for name in lists:
        setattr(args, name, list(options[name]))
    return args


@magics_class
class GuildMagics(GuildCommands, Magics):
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
    @argument(
        "--executor",
        default=None,
        help="where the run executes: local, dask (a LocalCluster), a Dask scheduler address "
        "(tcp://host:8786) or an installed executor (default: the executor setting)",
    )
    @argument(
        "--gpus",
        type=float,
        default=None,
        help="GPUs the run (each trial of a sweep) needs: a Dask worker resource 'GPU'",
    )
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
        args = _parse_run_line(line)
        try:
            return self._guild_run(args, cell)
        except GuildError as e:
            raise UsageError(str(e)) from None

    def _guild_run(self, args: argparse.Namespace, cell: str) -> Any:
        from guild_jupyter.model.flags import resolve_flags
        from guild_jupyter.notebook.cell_op import (
            CellOperation,
            cell_op_name,
            needs_ipython_transform,
            run_inline,
        )

        if args.inline and args.background:
            raise GuildError(
                "--inline and --background cannot be combined: an inline run uses the kernel"
            )
        if args.inline and args.retries:
            raise GuildError("--retries needs a subprocess run: drop --inline")
        if args.inline and (args.executor not in (None, "local") or args.gpus is not None):
            raise GuildError("--inline runs in this kernel: drop --executor/--gpus")
        resources = {"GPU": args.gpus} if args.gpus is not None else None
        notebook = _notebook_path(self.shell)
        outputs = [o.strip() for o in args.outputs.split(",") if o.strip()]
        for o in outputs:
            if not o.isidentifier():
                raise GuildError(f"--outputs: {o!r} is not a Python name")
        given = _flags(args.flags)
        name = args.op or cell_op_name(cell, notebook, _cell_id(self.shell))
        if args.inline:
            if needs_ipython_transform(cell):  # IPython syntax (%time, !ls) works as in a plain cell
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
            executor=args.executor,
            resources=resources,
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
            op, given, store=store, label=args.label, tags=args.tag, echo=_echo,
            executor=args.executor, resources={"GPU": args.gpus} if args.gpus is not None else None,
            **options
        )
        sweep = runner.create()
        from guild_jupyter.notebook.foreground import current

        holder = current()
        if holder is not None:  # the cell awaits this thread: an interrupt stops the sweep
            holder.cancel = lambda reason: sweep.stop() or True
        widget = None
        try:
            from guild_jupyter.widgets import show_sweep_widget

            widget = show_sweep_widget(sweep)  # a live table of the trials, updated as they run
        except ImportError:
            pass
        try:
            return runner.run(sweep)
        finally:
            if widget is not None:  # the final table, in this cell's output even if it is the last
                widget.finish()

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
