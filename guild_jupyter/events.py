"""Typed events flowing one way: orchestration emits, the store persists, UIs subscribe.

Subscribers run in the emitting thread and must be quick; one that raises is
logged and never breaks the run that emitted the event. (Plain classes, not
dataclasses: this module is imported by every run and CLI call.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Event:
    __slots__ = ("run",)
    fields: tuple[str, ...] = ("run",)

    def __init__(self, run: str) -> None:
        self.run = run

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.fields}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.as_dict() == self.as_dict()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items())
        return f"{type(self).__name__}({inner})"


class RunCreated(Event):
    __slots__ = ("op",)
    fields = ("run", "op")

    def __init__(self, run: str, op: str = "") -> None:
        self.run, self.op = run, op


class StatusChanged(Event):
    __slots__ = ("status", "attempt", "reason")
    fields = ("run", "status", "attempt", "reason")

    def __init__(
        self, run: str, status: str = "", attempt: int = 1, reason: str | None = None
    ) -> None:
        self.run, self.status, self.attempt, self.reason = run, status, attempt, reason


class OutputLines(Event):
    """``lines``: ``(time, stream, text)`` tuples."""

    __slots__ = ("lines",)
    fields = ("run", "lines")

    def __init__(self, run: str, lines: tuple[tuple[float, int, str], ...] = ()) -> None:
        self.run, self.lines = run, lines


class ScalarsLogged(Event):
    """``points``: ``(key, step, value, time)`` tuples."""

    __slots__ = ("points",)
    fields = ("run", "points")

    def __init__(self, run: str, points: tuple[tuple[str, int, float, float], ...] = ()) -> None:
        self.run, self.points = run, points


class RunDeleted(Event):
    __slots__ = ("restored",)
    fields = ("run", "restored")

    def __init__(self, run: str, restored: bool = False) -> None:
        self.run, self.restored = run, restored


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Callable[[Event], Any]] = []
        self._lock = threading.Lock()

    def subscribe(self, fn: Callable[[Event], Any]) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it."""
        with self._lock:
            self._subscribers.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._subscribers:
                    self._subscribers.remove(fn)

        return unsubscribe

    def emit(self, event: Event) -> None:
        if not self._subscribers:
            return
        with self._lock:
            subscribers = list(self._subscribers)
        for fn in subscribers:
            try:
                fn(event)
            except Exception:  # a broken subscriber must not break the run
                import logging

                logging.getLogger(__name__).exception("event subscriber %r failed on %r", fn, event)
