"""``RunWidget``: a live view of one run (status badge, elapsed time, last scalars
with a sparkline, tail of the output, a stop button).

Show one with :func:`show_run_widget` (it displays the widget with a display id
and, when the run ends, updates that display so headless notebooks keep the
final state as HTML/text). Outside a widget front end (nbconvert, papermill,
plain IPython, HTML export) the widget's ``text/html`` and ``text/plain``
representations show the state at the time of the last display update.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from typing import Any

import ipywidgets as W
from ipywidgets.widgets.widget_string import HTMLStyle

from guild_jupyter.widgets import render
from guild_jupyter.widgets.updater import PolledWidget, updater

log = logging.getLogger("guild_jupyter.widgets")
TERMINAL = ("completed", "failed", "cancelled")


def _store_of(run: Any, store: Any) -> Any:
    if store is not None:
        return store
    if getattr(run, "_store", None) is not None:
        return run._store
    from guild_jupyter.experiment.api import default_store

    return default_store()


class RunWidget(PolledWidget, W.VBox):
    """Live view of a run; updated from the shared updater thread (<= 10 updates/s)."""

    def __init__(self, run: Any, store: Any = None, *, tail_lines: int = render.TAIL_LINES,
                 watch: bool = True) -> None:
        self.store = _store_of(run, store)
        self.run = self.store.load_run(run.id if hasattr(run, "id") else self.store.resolve_id(run))
        self.tail_lines = tail_lines
        self.last_error: str | None = None
        self.display_handle: Any = None
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._offset = 0
        self._tail: list[str] = []
        self._updated = None
        self._status = self.run.status.value
        self._started, self._stopped = self.run.started, self.run.stopped
        self._series: dict[str, list[float]] = {}
        self._elapsed = ""
        self._reconciled = time.monotonic()
        # the text parts share one layout and one style: a new widget is ~one comm message per
        # model, so this halves what showing a widget sends (foreground cells pay it per run)
        plain, style = W.Layout(), HTMLStyle()
        self.status = W.HTML(render.badge(self._status), layout=plain, style=style)
        self.title = W.HTML(f"<b>{html.escape(self.run.op)}</b> <code>{self.run.short_id}</code>",
                            layout=plain, style=style)
        self.elapsed = W.HTML("", layout=plain, style=style)
        self.scalars = W.HTML("", layout=plain, style=style)
        self.output = W.HTML("", layout=plain, style=style)
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop",
                                    tooltip="Stop this run", layout=W.Layout(width="auto"),
                                    disabled=self._status in TERMINAL)
        self.stop_button.on_click(self._on_stop)
        self.message = W.HTML("", layout=plain, style=style)
        header = W.HBox([self.status, self.title, self.elapsed, self.stop_button, self.message],
                        layout=W.Layout(align_items="center", grid_gap="8px"))
        super().__init__([header, self.scalars, self.output])
        self.add_class("guild-run-widget")
        self._poll()  # first state at once, then live
        if watch:
            self.watch()

    def watch(self) -> None:
        """Start live updates (until the run finishes)."""
        if self._status not in TERMINAL:
            updater().add(self)

    # reading the store ---------------------------------------------------------
    def _poll_once(self) -> bool:
        store = self.store
        if time.monotonic() - self._reconciled > 5.0:  # a run whose supervisor died ends as failed
            self._reconciled = time.monotonic()
            from guild_jupyter.orchestration.reconcile import reconcile

            reconcile(store, min_interval=2.0)
        cols, rows = store.index.query("SELECT status, updated, started, stopped FROM runs WHERE id=?", [self.run.id])
        if not rows:
            return False
        row = dict(zip(cols, rows[0]))
        text, self._offset = store.read_output_lines_from(self.run.id, self._offset)
        status = row["status"]
        with self._lock, self.hold_sync():
            if text:
                self._tail = (self._tail + text.splitlines())[-self.tail_lines:]
                self.output.value = render.tail_html("\n".join(self._tail))
            if row["updated"] != self._updated:
                self._updated = row["updated"]
                self._started, self._stopped = row["started"], row["stopped"]
                self._series = self._read_series()
                self.scalars.value = render.scalars_html(self._series)
            if status != self._status:
                self._status = status
                self.status.value = render.badge(status)
            el = render.elapsed(self._started, self._stopped)
            if el != self._elapsed:
                self._elapsed = self.elapsed.value = el
            if status in TERMINAL:
                self.stop_button.disabled = True
                self.stop_button.description = status.capitalize() if status != "completed" else "Stop"
        if status in TERMINAL:
            self.run = store.load_run(self.run.id)
            self._final_display()
            return False
        return True

    def _read_series(self) -> dict[str, list[float]]:
        series: dict[str, list[tuple]] = {}
        for key, step, value, t in self.store.iter_run_points(self.run.id):
            series.setdefault(key, []).append((step, t, value))
        return {k: [v for _, _, v in sorted(pts)][-20:] for k, pts in series.items()}

    def _final_display(self) -> None:
        """Refresh the display so headless outputs keep the final state (text/HTML bundle)."""
        if self.display_handle is not None:
            try:
                self.display_handle.update(self)
            except Exception:
                log.exception("guild widget: final display update failed")

    # the stop button ---------------------------------------------------------------
    def _on_stop(self, _button: Any = None) -> None:
        from guild_jupyter.errors import GuildError
        from guild_jupyter.notebook.submission import stop_run

        try:
            with self._lock:
                self.stop_button.disabled = True
                self.stop_button.description = "Stopping..."
            stop_run(self.store, self.run.id)  # through the Jupyter server when there is one
        except GuildError as e:
            self.message.value = f"<span style='color:#cf222e'>{html.escape(str(e))}</span>"
        except Exception as e:  # errors in widget callbacks are swallowed by ipywidgets: log them
            log.exception("guild widget: stop failed")
            self.last_error = repr(e)
            self.message.value = f"<span style='color:#cf222e'>{html.escape(repr(e))}</span>"

    def stop(self) -> None:
        """What the stop button does."""
        self._on_stop()

    def wait(self, timeout: float = 60.0) -> str:
        """Block until the widget saw the run finish (tests, scripts); returns the status."""
        deadline = time.monotonic() + timeout
        while self._status not in TERMINAL and time.monotonic() < deadline:
            time.sleep(0.05)
        return self._status

    # static renderings -------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"status": self._status, "started": self._started, "stopped": self._stopped,
                "scalars": dict(self._series), "tail": "\n".join(self._tail)}

    def _repr_mimebundle_(self, **kwargs: Any):
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        state = self.state()
        bundle["text/plain"] = render.run_text(self.run, state)
        bundle["text/html"] = render.run_html(self.run, state)
        return bundle


def show_run_widget(run: Any, store: Any = None, **kw: Any) -> RunWidget:
    """Display a live :class:`RunWidget` for ``run`` and return it.

    The magics call this right after starting a run (foreground or
    ``--background``); the widget keeps updating after the cell finishes."""
    from IPython.display import display

    w = RunWidget(run, store, watch=False, **kw)
    w.display_handle = display(w, display_id=True)
    w.watch()
    return w
