"""How the magics start and stop runs: through the Jupyter server that started this
kernel when it answers, else with the embedded orchestrator.

Through the server (DESIGN "Process model"): the kernel still records the run
and prepares it (flags, snapshot, pickled inputs need the kernel's namespace),
then asks the server to launch it (``POST runs/{id}/start``), so every run of
the server's notebooks is launched by one orchestrator. A foreground run's
output is then followed from the store (the run's ``output`` file, as any
reader does); an interrupt stops it through the server (``POST runs/{id}/stop``).

Fallback: no server found (plain IPython, nbclient, papermill, the CLI), a
server that does not answer, or one whose store does not hold the run (another
``GUILD_JUPYTER_HOME``) -> the run is launched here, as before. Either way the
run is the same except ``source.submitted_via`` (``"server"`` or ``"embedded"``).
``GUILD_JUPYTER_SUBMIT=embedded`` turns the server path off.

The server is looked up once and remembered (a failed request forgets it;
no server found is re-checked after ``RECHECK`` seconds).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from guild_jupyter.errors import GuildError

SUBMITTED_VIA = "submitted_via"
RECHECK = 30.0
_lock = threading.Lock()
_cache: dict[str, Any] = {}  # "client": ServerClient | None, "checked": monotonic time


def in_server() -> bool:
    """This process is the Jupyter server with the extension (it exports its own pid)."""
    return os.environ.get("GUILD_JUPYTER_SERVER_PID") == str(os.getpid())


def server_client() -> Any:
    """The server client of this kernel, or None (cached; see the module docstring)."""
    if os.environ.get("GUILD_JUPYTER_SUBMIT", "") == "embedded" or in_server():
        return None
    if not (os.environ.get("JPY_PARENT_PID") or os.environ.get("GUILD_JUPYTER_SERVER_PID")):
        return None  # no server could have started this process: nothing to look up
    with _lock:
        if "checked" in _cache and (_cache["client"] is not None
                                    or time.monotonic() - _cache["checked"] < RECHECK):
            return _cache["client"]
    from guild_jupyter.server.client import ServerClient

    client = ServerClient.connect(timeout=10.0)
    with _lock:
        _cache.update(client=client, checked=time.monotonic())
    return client


def forget_server() -> None:
    with _lock:
        _cache.clear()


class Via:
    """An operation whose runs record who launched them (``source.submitted_via``)."""

    def __init__(self, op: Any, via: str) -> None:
        self._op, self.via = op, via

    def __getattr__(self, name: str) -> Any:
        return getattr(self._op, name)

    def run_source(self) -> dict[str, Any]:
        return {**self._op.run_source(), SUBMITTED_VIA: self.via}


def start(op: Any, flags: Mapping[str, Any] | None, *, store: Any, label: str = "",
          tags: Iterable[str] = (), background: bool = False, retries: int = 0,
          echo: Callable[[str], None] | None = None, **options: Any) -> Any:
    """Record, launch and (unless ``background``) follow a run of ``op``, through the
    server when one answers. Options beyond these (an executor, resources) go to the
    embedded orchestrator, which knows them."""
    from guild_jupyter.experiment.runner import start_operation

    extra = {k: v for k, v in options.items() if v not in (None, "local")}
    client = None if extra else server_client()
    if client is None:  # (in the server process itself, its orchestrator is the embedded one)
        return start_operation(Via(op, "server" if in_server() else "embedded"), flags, store=store, label=label, tags=tags,
                               background=background, retries=retries, echo=echo, **options)
    run, spec = prepare(op, flags, store=store, label=label, tags=tags, retries=retries)
    from guild_jupyter.errors import RunNotFound
    from guild_jupyter.server.client import ServerUnavailable

    try:
        client.start_prepared(run.id, env=dict(os.environ))  # the run inherits the kernel's environment
    except (ServerUnavailable, RunNotFound):  # gone, or a server of another store: launch here
        forget_server()
        return _launch_embedded(store, run.id, spec, background=background, echo=echo)
    if background:
        return store.load_run(run.id)
    return follow(store, run.id, echo=echo)


def prepare(op: Any, flags: Mapping[str, Any] | None, *, store: Any, label: str = "",
            tags: Iterable[str] = (), retries: int = 0) -> tuple[Any, Any]:
    """Record a ``pending`` run of ``op`` and write its snapshot and launch record, as
    ``start_operation`` does before launching. Bad input raises before anything is recorded."""
    from guild_jupyter.config import Config
    from guild_jupyter.model.flags import resolve_flags
    from guild_jupyter.model.status import RunStatus

    if retries < 0:
        raise GuildError(f"retries must be 0 or more, got {retries}")
    resolved = resolve_flags(op.flag_defs(), dict(flags or {}), op=op.name)
    run = store.create_run(op.name, kind=op.kind, flags=resolved, label=label, tags=tags,
                           source=op.run_source())
    try:
        spec = op.prepare(run, store, Config.load(store.home))
    except BaseException as e:
        store.set_status(run.id, RunStatus.FAILED, reason=f"could not prepare the run: {e}")
        raise
    spec.retries = retries
    spec.save(store.meta_dir(run.id))
    return run, spec


def _launch_embedded(store: Any, run_id: str, spec: Any, *, background: bool,
                     echo: Callable[[str], None] | None) -> Any:
    from guild_jupyter.orchestration.controller import Controller

    def mark(r: Any) -> None:
        r.source = {**r.source, SUBMITTED_VIA: "embedded"}

    run = store.update_run(run_id, mark)
    return Controller(store).submit(run, spec, background=background, echo=echo)


def follow(store: Any, run_id: str, *, echo: Callable[[str], None] | None = None,
           poll: float = 0.05) -> Any:
    """Follow a run someone else launched to its end, echoing its output; Ctrl-C stops it
    (through the server when there is one) and goes on following until it ended."""
    from guild_jupyter.orchestration.process_info import is_alive
    from guild_jupyter.orchestration.reconcile import reconcile

    offset = 0
    while True:
        try:
            if echo is not None:
                text, offset = store.read_output_lines_from(run_id, offset)
                if text:
                    echo(text)
            run = store.load_run(run_id)
            if run.status.terminal:
                break
            a = run.attempt
            if a.pid is not None and not is_alive(a.pid, a.pid_started):
                reconcile(store)  # its supervisor died without recording the end
                break
            time.sleep(poll)
        except KeyboardInterrupt:
            try:
                stop_run(store, run_id, reason="interrupted")
            except GuildError:
                pass  # it ended meanwhile
    if echo is not None:
        text, offset = store.read_output_lines_from(run_id, offset)
        if text:
            echo(text)
    return store.load_run(run_id)


def stop_run(store: Any, run_id: str, *, reason: str = "stopped by user", wait: bool = False) -> Any:
    """Stop a run through the server when one answers (else here); the run ends ``cancelled``."""
    client = server_client()
    if client is not None:
        from guild_jupyter.errors import RunNotFound
        from guild_jupyter.server.client import ServerUnavailable

        try:
            client.stop(run_id, reason)
        except (ServerUnavailable, RunNotFound):
            forget_server()
        else:
            return _wait_terminal(store, run_id) if wait else store.load_run(run_id)
    from guild_jupyter.orchestration.controller import Controller

    return Controller(store).stop(run_id, wait=wait, reason=reason)


def _wait_terminal(store: Any, run_id: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    run = store.load_run(run_id)
    while not run.status.terminal and time.monotonic() < deadline:
        time.sleep(0.05)
        run = store.load_run(run_id)
    return run
