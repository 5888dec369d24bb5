"""Errors a user sees.

Every error raised for bad input is a :class:`GuildError` whose message is one
line naming the problem, so the CLI and the magics can print it as is.
"""

from __future__ import annotations


class GuildError(Exception):
    """A user-facing error with a one-line message."""


class FlagError(GuildError, ValueError):
    """A flag name or value is not acceptable."""


class RunNotFound(GuildError, LookupError):
    """A run reference matches no run (or more than one)."""


class InvalidTransition(GuildError, RuntimeError):
    """A status change the run state machine does not allow (a bug, never user input)."""


class QueryError(GuildError, ValueError):
    """A filter expression is malformed or names an unknown column."""
