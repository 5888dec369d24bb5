"""The vocabulary every layer shares: runs, attempts, statuses, flags."""

from guild_jupyter.model.flags import (
    FlagDef,
    FlagValue,
    coerce_flag,
    parse_flag_assignments,
    parse_flag_text,
    resolve_flags,
)
from guild_jupyter.model.run import Attempt, Run, new_run_id
from guild_jupyter.model.status import RunStatus

__all__ = [
    "Attempt",
    "FlagDef",
    "FlagValue",
    "Run",
    "RunStatus",
    "coerce_flag",
    "new_run_id",
    "parse_flag_assignments",
    "parse_flag_text",
    "resolve_flags",
]
