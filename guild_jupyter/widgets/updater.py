"""One background thread that polls the store for every live widget, throttled.

Runs execute in detached supervisor processes, so a widget learns about its run
by polling: each tick (``INTERVAL`` = 0.1 s, so at most 10 updates per second
per widget) calls ``widget._poll()``, which reads the index row and the output
file from its byte offset and sends what changed in one batch. A widget whose
``_poll`` returns False (its run is finished and drained) is dropped. The
thread outlives the cell that showed the widget, so ``--background`` runs keep
updating.

Threading (see FIELD-NOTES "Widgets"): comm messages from this thread carry the
kernel's latest shell parent (ipykernel's fallback context), which is what a
front end needs for comm updates; widgets print nothing. Errors in a poll are
logged on ``guild_jupyter.widgets`` and kept on the widget (``last_error``),
never raised into the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

log = logging.getLogger("guild_jupyter.widgets")
INTERVAL = 0.1


class Updater:
    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self._widgets: list[Any] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, widget: Any) -> None:
        with self._lock:
            if widget not in self._widgets:
                self._widgets.append(widget)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="guild-widgets", daemon=True)
                self._thread.start()

    def remove(self, widget: Any) -> None:
        with self._lock:
            if widget in self._widgets:
                self._widgets.remove(widget)

    @property
    def watching(self) -> int:
        with self._lock:
            return len(self._widgets)

    def _loop(self) -> None:
        while True:
            start = time.monotonic()
            with self._lock:
                widgets = list(self._widgets)
                if not widgets:
                    self._thread = None
                    return
            for w in widgets:
                try:
                    keep = w._poll()
                except Exception as e:  # a broken widget must not stop the others
                    log.exception("guild widget update failed")
                    w.last_error = repr(e)
                    keep = not getattr(w, "_failures", 0) >= 20
                    w._failures = getattr(w, "_failures", 0) + 1
                if not keep:
                    self.remove(w)
            time.sleep(max(0.0, self.interval - (time.monotonic() - start)))


_updater = Updater()


def updater() -> Updater:
    return _updater


class PolledWidget:
    """What every live widget shares: one poll at a time (the updater thread and
    ``finish`` may both poll; the widget sets ``_poll_lock`` and defines
    ``_poll_once``), and ``finish``, which sends the final state before a cell ends."""

    _poll_lock: threading.Lock

    def _poll_once(self) -> bool:  # one update; False when finished and drained
        return False

    def _poll(self) -> bool:
        with self._poll_lock:
            return self._poll_once()

    def finish(self, timeout: float = 15.0) -> None:
        """Send the final state now (so the cell's own output holds it even when it is a
        notebook's last cell); still going after ``timeout``: back to live updates."""
        updater().remove(self)
        deadline = time.monotonic() + timeout
        while self._poll():
            if time.monotonic() > deadline:  # not ended yet (a trial being stopped)
                updater().add(self)
                return
            time.sleep(0.02)
