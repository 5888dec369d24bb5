"""``SweepWidget``: a live table of a sweep's trials (status, flags, objective), the
best trial highlighted, and a stop-all button. Polled like ``RunWidget``; the
table is re-read only when a trial's index row changed or a running trial's
objective got a new value (so a long trial's objective moves as it trains)."""

from __future__ import annotations

import html
import logging
import threading
from typing import Any

import ipywidgets as W

from guild_jupyter.widgets import render
from guild_jupyter.widgets.run_widget import TERMINAL
from guild_jupyter.widgets.updater import PolledWidget, updater

log = logging.getLogger("guild_jupyter.widgets")


class SweepWidget(PolledWidget, W.VBox):
    def __init__(self, sweep: Any, *, watch: bool = True) -> None:
        self.sweep = sweep
        self.store = sweep.store
        spec = sweep.spec
        self.objective = spec.get("objective")
        self.minimize = bool(spec.get("minimize", True))
        self.agg = spec.get("objective_agg", "last")
        self.last_error: str | None = None
        self.display_handle: Any = None
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._key: Any = None
        self._status = sweep.run.status.value
        self._trials: list[dict[str, Any]] = []
        self._flags: dict[str, dict] = {}
        self.table = W.HTML("")
        self.stop_button = W.Button(description="Stop all", button_style="danger", icon="stop",
                                    layout=W.Layout(width="auto"))
        self.stop_button.on_click(self._on_stop)
        self.message = W.HTML("")
        super().__init__([W.HBox([self.stop_button, self.message]), self.table])
        self.add_class("guild-sweep-widget")
        self._poll()
        if watch:
            self.watch()

    def watch(self) -> None:
        if not self._done():
            updater().add(self)

    def _done(self) -> bool:
        return self._status in TERMINAL and all(t["status"] in TERMINAL for t in self._trials)

    def _poll_once(self) -> bool:
        store = self.store
        _, rows = store.index.query(
            "SELECT (SELECT status FROM runs WHERE id=?), count(*), max(updated) FROM runs WHERE sweep=? OR id=?",
            [self.sweep.id, self.sweep.id, self.sweep.id])
        status, count, updated = rows[0]
        progress = None
        if self.objective:  # a running trial's objective moves without its row changing
            _, prow = store.index.query(
                "SELECT sum(count), max(last_time) FROM scalar_summary WHERE key=? AND run IN "
                "(SELECT id FROM runs WHERE sweep=? AND status='running')",
                [self.objective, self.sweep.id])
            progress = prow[0] if prow else None
        key = (status, count, updated, progress)
        if key != self._key:
            self._key = key
            self._status = status or self._status
            self._trials = render.trials_table(store, self.sweep.id, self.objective, self.agg, self._flags)
            with self._lock, self.hold_sync():
                self.table.value = render.sweep_html(self._status, self.sweep.run.op, self.objective,
                                                     self.minimize, self._trials)
                if self._done():
                    self.stop_button.disabled = True
        if self._done():
            if self.display_handle is not None:
                try:
                    self.display_handle.update(self)
                except Exception:
                    log.exception("guild widget: final display update failed")
            return False
        return True

    @property
    def best(self) -> str | None:
        return render.best_trial(self._trials, self.minimize)

    def _on_stop(self, _button: Any = None) -> None:
        try:
            with self._lock:
                self.stop_button.disabled = True
                self.stop_button.description = "Stopping..."
            self.sweep.stop()
        except Exception as e:
            log.exception("guild widget: stop-all failed")
            self.last_error = repr(e)
            self.message.value = f"<span style='color:#cf222e'>{html.escape(str(e))}</span>"

    def _repr_mimebundle_(self, **kwargs: Any):
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        args = (self._status, self.sweep.run.op, self.objective, self.minimize, self._trials)
        bundle["text/plain"] = render.sweep_text(*args)
        bundle["text/html"] = render.sweep_html(*args)
        return bundle


def show_sweep_widget(sweep: Any, **kw: Any) -> SweepWidget:
    from IPython.display import display

    w = SweepWidget(sweep, watch=False, **kw)
    w.display_handle = display(w, display_id=True)
    w.watch()
    return w
