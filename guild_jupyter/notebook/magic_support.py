"""Helpers shared by the magics: argument parsing, run start and display, kernel context."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any

from IPython.core.error import UsageError

from guild_jupyter.errors import GuildError


def _echo(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


_last_store: tuple[str | None, Any] = (None, None)


def _store():
    """The default store (remembered for the last ``GUILD_JUPYTER_HOME`` seen: every
    cell asks, and resolving the home takes a few pathlib calls)."""
    global _last_store
    env = os.environ.get("GUILD_JUPYTER_HOME")
    if env is not None and _last_store[0] == env:
        return _last_store[1]
    from guild_jupyter.experiment.api import default_store

    store = default_store()
    if env is not None and os.path.isabs(env):  # (a relative one follows the working directory)
        _last_store = (env, store)
    return store


def _flags(items: list[str]) -> dict[str, str]:
    from guild_jupyter.model.flags import split_assignment

    return dict(split_assignment(a) for a in items)


def _finish(run: Any, background: bool) -> Any:
    if background or run.status.value == "completed":
        return run
    reason = f": {run.reason}" if run.reason else ""
    raise UsageError(f"run {run.short_id} {run.status.value}{reason}")


class _Parser(argparse.ArgumentParser):
    """argparse that raises one-line errors instead of exiting the kernel."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"%guild {self.prog.split()[-1]}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            print(message)
        raise _Done()


class _Done(Exception):
    """--help was shown."""



def _show_widget(run: Any, store: Any) -> Any:
    """A live RunWidget for a run (a background run's keeps updating after the cell ends)."""
    try:
        from guild_jupyter.widgets import show_run_widget
    except ImportError:  # ipywidgets missing: the run goes on without a widget
        return None
    return show_run_widget(run, store)


class _Tracked:
    """Delegates to an operation and remembers the run it prepared.

    In a foreground cell run from a worker thread (:mod:`~guild_jupyter.notebook.foreground`)
    it also shows the run's live widget and tells the cell how to stop the run."""

    def __init__(self, op: Any) -> None:
        self._op = op
        self.run_id: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._op, name)

    def prepare(self, run: Any, store: Any, config: Any) -> Any:
        self.run_id = run.id
        spec = self._op.prepare(run, store, config)
        from guild_jupyter.notebook.foreground import current

        holder = current()
        if holder is not None:
            holder.cancel = lambda reason: _stop_launched(store, run.id, reason)
            holder.show_widget(run, store)
        return spec


def _stop_launched(store: Any, run_id: str, reason: str) -> bool:
    """Stop a run once it was launched; False while it is not (the caller tries again)."""
    from guild_jupyter.notebook.submission import stop_run

    run = store.load_run(run_id)
    if run.status.terminal:
        return True
    if run.attempt.pid is None:
        return False
    stop_run(store, run_id, reason=reason)
    return True


def _start_interruptible(op: Any, flags: dict[str, str], *, store: Any, **options: Any) -> Any:
    """Start a run (through the Jupyter server when one answers, see
    :mod:`~guild_jupyter.notebook.submission`); an interrupt that lands before the run
    is followed still cancels it. (While following, an interrupt becomes a stop.)
    """
    from guild_jupyter.notebook.foreground import current
    from guild_jupyter.notebook.submission import start, stop_run

    tracked = _Tracked(op)
    holder = current()
    try:
        return start(tracked, flags, store=store, **options)
    except KeyboardInterrupt:
        if tracked.run_id is not None and not store.load_run(tracked.run_id).status.terminal:
            run = stop_run(store, tracked.run_id, wait=True, reason="interrupted")
            raise UsageError(f"run {run.short_id} {run.status.value}: interrupted") from None
        raise
    finally:
        if holder is not None:
            holder.end_widget()


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--op")
    p.add_argument("-s", "--status", action="append")
    p.add_argument("-l", "--label")
    p.add_argument("-t", "--tag", action="append")
    p.add_argument("-w", "--where")
    p.add_argument("--deleted", action="store_true")


def _load_pairs(items: list[str]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    i = 0
    while i < len(items):
        name = items[i]
        if i + 1 < len(items) and items[i + 1] == "as":
            if i + 2 >= len(items):
                raise GuildError("%guild load: 'as' needs a variable name")
            pairs.append((name, items[i + 2]))
            i += 3
        else:
            pairs.append((name, name))
            i += 1
    for name, var in pairs:
        if not var.isidentifier():
            raise GuildError(f"%guild load: {var!r} is not a Python name")
    return pairs


def _ipython_syntax(cell: str) -> int | None:
    """The first line (1-based) that is IPython syntax rather than Python, if any."""
    import ast

    try:
        ast.parse(cell)
        return None
    except SyntaxError:
        pass
    for n, line in enumerate(cell.splitlines(), 1):
        if line.lstrip().startswith(("%", "!")):
            return n
    return None


def _wants_help(line: str) -> bool:
    if "-h" not in line:  # (also in "--help"): most lines skip the split
        return False
    try:
        return any(t in ("-h", "--help") for t in shlex.split(line))
    except ValueError:
        return False


def _notebook_path(shell: Any) -> str | None:
    """The notebook's path when the kernel knows it (JupyterLab sets ``__session__``)."""
    for value in (shell.user_ns.get("__session__"), os.environ.get("JPY_SESSION_NAME")):
        if isinstance(value, str) and value:
            return value
    return None


def _cell_id(shell: Any) -> str | None:
    try:
        parent = shell.kernel.get_parent() if hasattr(shell, "kernel") else None
    except Exception:
        parent = None
    if isinstance(parent, dict):
        cid = (parent.get("metadata") or {}).get("cellId")
        if isinstance(cid, str) and cid:
            return cid
    return None
