"""Entry point of the ``guild-jupyter`` command.

Each subcommand is a small function taking the parsed arguments and a store;
heavy imports (pandas) happen only in the commands that need them, so listing
and running stay quick to start.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from guild_jupyter import __version__
from guild_jupyter.cli import run_commands, runs_commands
from guild_jupyter.cli.registry import COMMANDS
from guild_jupyter.errors import GuildError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="guild-jupyter",
        description="Experiment tracking for Jupyter, in the spirit of Guild AI.",
    )
    parser.add_argument("--version", action="version", version=f"guild-jupyter {__version__}")
    parser.add_argument(
        "-H", "--home", help="store location (default: $GUILD_JUPYTER_HOME or ~/.guild-jupyter)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run_commands.add_parsers(sub)
    runs_commands.add_parsers(sub)
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
        return COMMANDS[args.command](args, store) or 0
    except GuildError as e:
        print(f"guild-jupyter: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _show_warning(
    message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    print(f"guild-jupyter: warning: {message}", file=sys.stderr)
