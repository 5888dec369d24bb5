"""Typed events flowing one way: orchestration emits, the store persists, UIs subscribe.

Subscribers run in the emitting thread and must be quick; one that raises is
logged and never breaks the run that emitted the event.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    run: str


@dataclass(frozen=True)
class RunCreated(Event):
    op: str = ""


@dataclass(frozen=True)
class StatusChanged(Event):
    status: str = ""
    attempt: int = 1
    reason: str | None = None


@dataclass(frozen=True)
class OutputLines(Event):
    lines: tuple[tuple[float, int, str], ...] = ()


@dataclass(frozen=True)
class ScalarsLogged(Event):
    points: tuple[tuple[str, int, float, float], ...] = ()


@dataclass(frozen=True)
class RunDeleted(Event):
    restored: bool = False


@dataclass
class EventBus:
    _subscribers: list[Callable[[Event], Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

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
                log.exception("event subscriber %r failed on %r", fn, event)
