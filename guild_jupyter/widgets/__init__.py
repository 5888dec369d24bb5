"""Live ipywidgets for runs and sweeps, and their static (headless) renderings.

- :class:`~guild_jupyter.widgets.run_widget.RunWidget` / :func:`show_run_widget`
- :class:`~guild_jupyter.widgets.sweep_widget.SweepWidget` / :func:`show_sweep_widget`
- :mod:`~guild_jupyter.widgets.render`: HTML/text of a run or sweep (no ipywidgets
  needed; used by ``Run._repr_html_`` and as the widgets' fallback outside a widget front end)

Widgets learn about runs by polling the store from one shared background
thread (:mod:`~guild_jupyter.widgets.updater`), at most 10 times per second.
"""

from __future__ import annotations

from typing import Any


def show_run_widget(run: Any, store: Any = None, **kw: Any):
    from guild_jupyter.widgets.run_widget import show_run_widget as show

    return show(run, store, **kw)


def show_sweep_widget(sweep: Any, **kw: Any):
    from guild_jupyter.widgets.sweep_widget import show_sweep_widget as show

    return show(sweep, **kw)
