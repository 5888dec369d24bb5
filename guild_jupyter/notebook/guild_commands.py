"""``%guild <command>``: the subcommands behind the ``%guild`` line magic.

:class:`GuildCommands` is a mixin of :class:`~guild_jupyter.notebook.magics.GuildMagics`;
its ``_cmd_<name>`` methods (and ``_cli`` for the commands passed to the CLI) are
looked up by the ``%guild`` dispatcher and use ``self.shell``.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError

from guild_jupyter.errors import GuildError
from guild_jupyter.notebook.magic_support import (
    _echo,
    _filters,
    _finish,
    _flags,
    _load_pairs,
    _Parser,
    _start_interruptible,
    _store,
)

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
_CLI_COMMANDS = ("cat", "delete", "restore", "label", "tag", "sweep", "import-guild", "ops")


class GuildCommands:
    """The ``%guild`` subcommands (a mixin: needs ``self.shell``)."""

    shell: Any

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
        p.add_argument("--agg", action="append", default=[], metavar="[SCALAR=]AGG",
                       help="last (default), first, min, max, mean, count; SCALAR=AGG for one scalar")
        args = p.parse_args(rest)
        from guild_jupyter.compare.aggregates import compare_table, parse_agg

        return compare_table(_store(), args.runs, args.where, parse_agg(args.agg), op=args.op,
                             status=args.status, label=args.label, tag=args.tag, deleted=args.deleted)

    def _cmd_stop(self, rest: list[str]) -> Any:
        """Stop runs, through the Jupyter server when one answers (as the CLI's ``stop``)."""
        p = _Parser(prog="%guild stop")
        p.add_argument("runs", nargs="+", metavar="RUN")
        p.add_argument("--no-wait", action="store_true", help="do not wait for the runs to end")
        args = p.parse_args(rest)
        from guild_jupyter.cli.refs import select_ids
        from guild_jupyter.notebook.submission import stop_run

        store = _store()
        for run_id in select_ids(store, args.runs):
            run = stop_run(store, run_id, wait=not args.no_wait)
            print(f"{run.short_id} {run.status.value}")
        return None

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



_HELP = """%guild COMMAND [ARGS]   (commands mirror the guild-jupyter CLI)
  run TARGET [FLAG=VALUE ...]   run a script (.py) or a whole notebook (.ipynb)
  runs [filters]                runs as a DataFrame (newest first)
  compare [RUN ...] [--agg [SCALAR=]AGG]  flags and scalars (last, or min/max/...) as a DataFrame
  cat RUN                       a run's output
  stop | delete | restore RUN   stop, trash, untrash runs
  label RUN --set L | tag RUN -a T
  diff RUN RUN                  flags, inputs and code of two runs
  load RUN NAME [as VAR]        put a run's --outputs value into the kernel
  rerun RUN [FLAG=VALUE] [--check]  a new run from a run's record; --check compares scalars
A RUN is a full id, a unique id prefix, or an index (1 = newest)."""
