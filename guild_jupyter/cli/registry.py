"""The registry of ``guild-jupyter`` subcommands: a name -> function taking (args, store)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

Command = Callable[[argparse.Namespace, Any], int]
COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    def register(fn: Command) -> Command:
        COMMANDS[name] = fn
        return fn

    return register


def echo(text: str) -> None:
    """Show a run's output as it arrives."""
    sys.stdout.write(text)
    sys.stdout.flush()
