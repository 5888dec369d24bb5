"""Run status and the one place its transitions are enforced."""

from __future__ import annotations

from enum import Enum

from guild_jupyter.errors import InvalidTransition


class RunStatus(str, Enum):
    """``pending -> running -> completed | failed | cancelled``.

    A str enum so statuses compare equal to the plain strings of the public
    contract (``RunStatus.COMPLETED == "completed"``).
    """

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    def check_transition(self, new: RunStatus | str) -> RunStatus:
        """Return ``new`` as a status if this state may move to it, else raise.

        A pending attempt may also end directly (cancelled before it started,
        or failed to launch); terminal states never change: a retry is a new
        attempt.
        """
        target = RunStatus(new)
        if target not in _ALLOWED[self]:
            raise InvalidTransition(f"illegal run status transition {self.value} -> {target.value}")
        return target


TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})

_ALLOWED: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.PENDING: frozenset({RunStatus.RUNNING, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.RUNNING: TERMINAL,
    RunStatus.COMPLETED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}
