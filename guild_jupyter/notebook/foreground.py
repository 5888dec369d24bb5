"""Foreground ``%%guild_run`` cells that leave the kernel able to answer widgets.

A foreground run blocks its cell. If the magic blocked the kernel's main
thread, the messages a widget front end sends meanwhile (the RunWidget's or
SweepWidget's stop button) would wait until the cell ends. So in an ipykernel
whose cells run on asyncio (the default: ``%autoawait`` on, asyncio runner),
an input transformer turns a ``%%guild_run`` cell into an *async* cell that
awaits :func:`run_cell_magic`: the magic itself (parse, capture, record,
launch, follow) runs in a worker thread with the cell's context (so its
prints and displays land in the cell), while the kernel's event loop stays
free and dispatches comm messages (ipykernel 7 dispatches comms concurrently
with a running async cell).

Interrupting the kernel cancels the awaiting task (ipykernel turns SIGINT into
a cancellation for async cells); :func:`run_cell_magic` then stops whatever the
magic started (the run, through the server when the run went there, or the
sweep) and returns the magic's own outcome, so the cell ends as a blocking one
would: ``UsageError: run ... cancelled: interrupted``.

``--inline`` (the cell runs in the kernel), ``--background`` and help cells
are left as plain synchronous cells, and so is everything outside an
ipykernel (plain IPython, an in-process ``InteractiveShell``).
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import contextvars
import shlex
import threading
from collections.abc import Callable
from typing import Any

PREFIX = "get_ipython().run_cell_magic('guild_run', "
_SYNC_OPTIONS = ("inline", "background", "help_op", "print_trials")
WAKE = 0.1  # seconds
WIDGET_DELAY = 0.25  # seconds a foreground run goes on before its RunWidget is built


class Foreground:
    """What the magic running in the worker thread started, so an interrupt can stop it.

    ``cancel(reason)`` is set by the magic once it started something; it returns
    True once it acted (a run not launched yet returns False: tried again)."""

    def __init__(self) -> None:
        self.cancel: Callable[[str], bool] | None = None
        self.widget: Any = None  # the run's RunWidget, finished before the cell ends
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._ended = self._building = False

    def show_widget(self, run: Any, store: Any) -> None:
        """Keep the run's place in the cell's output (an empty display, before any output
        line) and, once the run has gone on for ``WIDGET_DELAY``, put its live RunWidget
        there. A run that ends sooner gets no widget (its final state is the cell's
        result, as a Run shows itself): building a widget (~15 comm messages) would cost
        a short cell more than the run."""
        from IPython.display import display

        handle = display({"text/plain": ""}, raw=True, display_id=True)

        def build() -> None:
            with self._lock:
                if self._ended:
                    return
                self._building = True
            try:
                from guild_jupyter.widgets.run_widget import RunWidget

                widget = RunWidget(run, store, watch=False)
                widget.display_handle = handle
                handle.update(widget)
                widget.watch()
                self.widget = widget
            except ImportError:  # no ipywidgets: the output and the result are the view
                pass
            except Exception:  # the run goes on without its widget
                import logging

                logging.getLogger("guild_jupyter.widgets").exception("showing the run's widget failed")

        self._timer = threading.Timer(WIDGET_DELAY, contextvars.copy_context().run, args=(build,))
        self._timer.daemon = True
        self._timer.start()

    def end_widget(self) -> None:
        """The run ended: no widget from now on; a shown one sends its final state now.
        (A short run's timer is just cancelled: no wait for another thread.)"""
        if self._timer is None:
            return
        self._timer.cancel()
        with self._lock:
            self._ended = True
            building = self._building
        if building:
            self._timer.join()
            if self.widget is not None:
                self.widget.finish()


_CURRENT: contextvars.ContextVar[Foreground | None] = contextvars.ContextVar(
    "guild_jupyter_foreground", default=None)


def current() -> Foreground | None:
    """The foreground holder of the magic running in this thread (None when synchronous)."""
    return _CURRENT.get()


def transform(lines: list[str]) -> list[str]:
    """``input_transformers_post`` hook: a ``%%guild_run`` cell (already turned into a
    ``run_cell_magic`` call by IPython) becomes ``await run_cell_magic(...)`` when it may."""
    if len(lines) != 1 or not lines[0].startswith(PREFIX):
        return lines
    try:
        call = ast.parse(lines[0]).body[0].value  # type: ignore[attr-defined]
        line, cell = call.args[1].value, call.args[2].value
    except (SyntaxError, AttributeError, IndexError):
        return lines
    if not (isinstance(line, str) and isinstance(cell, str) and _may_await(line)):
        return lines
    return [f"await __import__('guild_jupyter.notebook.foreground', fromlist=['run_cell_magic'])"
            f".run_cell_magic(get_ipython(), {line!r}, {cell!r})\n"]


def _may_await(line: str) -> bool:
    from IPython import get_ipython
    from IPython.core.async_helpers import _asyncio_runner

    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None or not shell.autoawait:
        return False
    if shell.loop_runner is not _asyncio_runner:
        return False
    magics = shell.magics_manager.registry.get("GuildMagics")
    if magics is None:
        return False
    try:  # the magic's own parser (abbreviations too); a bad line stays synchronous and fails there
        argv = shlex.split(line)
        if any(a in ("-h", "--help") for a in argv):
            return False
        args = magics.guild_run.parser.parse_args(argv)
    except BaseException:
        return False
    return not any(getattr(args, name, False) for name in _SYNC_OPTIONS)


async def run_cell_magic(shell: Any, line: str, cell: str) -> Any:
    """Run ``%%guild_run line`` on ``cell`` in a worker thread; see the module docstring."""
    line = shell.var_expand(line, 1)  # {name} and $name from the cell's namespace, as IPython does
    magics = shell.magics_manager.registry["GuildMagics"]
    holder = Foreground()
    context = contextvars.copy_context()
    context.run(_CURRENT.set, holder)
    done: concurrent.futures.Future = concurrent.futures.Future()

    def work() -> None:
        try:
            done.set_result(context.run(magics.guild_run, line, cell))
        except BaseException as e:  # the magic's UsageError and the like: raised in the cell
            done.set_exception(e)

    threading.Thread(target=work, name="guild-foreground", daemon=True).start()
    result = asyncio.wrap_future(done)
    try:
        while not result.done():
            # wake up now and then: a SIGINT caught by another thread only runs its handler
            # (which cancels this cell) when the main thread runs Python code
            await asyncio.wait({result}, timeout=WAKE)
        value = result.result()
        if holder.widget is not None and getattr(value, "_shown_live", None) is False:
            value._shown_live = True  # the widget holds the final state: no second copy in Out[]
        return value
    except asyncio.CancelledError:  # the kernel was interrupted
        pass
    acted = False
    while not done.done():
        if not acted and holder.cancel is not None:
            try:
                acted = holder.cancel("interrupted")
            except Exception as e:  # the run ended meanwhile, or the stop failed: shown, never hidden
                print(f"guild-jupyter: could not stop the run: {e}")
                acted = True
        await asyncio.sleep(0.05)
    return done.result()
