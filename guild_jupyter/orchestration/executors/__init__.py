"""Executors: where a run's supervisor runs.

An executor is one small interface (:class:`Executor`), as Optuna keeps its
storages: ``local`` starts a detached supervisor process on this machine (the
default, and the benchmarked fast path); ``dask`` hands the run to a Dask
cluster. Third parties register more under the ``guild_jupyter.executors``
entry-point group. A name with ``://`` is a Dask scheduler address.

The two built-ins resolve without scanning entry points (that scan costs
milliseconds, and the local path is measured in them); only other names do.
"""

from __future__ import annotations

from typing import Any, Protocol

from guild_jupyter.errors import GuildError

GROUP = "guild_jupyter.executors"
LOCAL = "local"


class Owner(Protocol):
    """What the controller follows for a run it launched: ``Popen``-like."""

    pid: int

    def wait(self, timeout: float | None = None) -> Any:
        """Return once the run has ended; raise ``subprocess.TimeoutExpired`` on timeout."""

    def close(self) -> None:
        """The controller stops following (the run goes on)."""


class Executor:
    """Starts runs somewhere and stops them; the run store stays the one record."""

    name = "executor"
    #: False: the recorded owner is the run's supervisor, stopped with SIGTERM; True: it is
    #: the submitting process, which follows a remote run and must never be signalled
    owned_by_submitter = False

    def check(self, resources: dict[str, float] | None = None) -> None:
        """Raise ``GuildError`` if runs cannot go there (called before a run is recorded)."""
        if resources:
            raise GuildError(
                f"the {self.name} executor does not schedule resources "
                f"({', '.join(sorted(resources))}): use --executor dask"
            )

    def launch(
        self,
        store: Any,
        run_id: str,
        env: dict[str, str],
        resources: dict[str, float] | None = None,
    ) -> tuple[Owner, int, float | None]:
        """Start the run's supervision; returns the owner, and the pid and start time
        recorded as the run's owner (what reconciliation checks for liveness)."""
        raise NotImplementedError

    def stop(self, store: Any, run_id: str) -> bool:
        """Deliver a stop (the stop request file is already written); False: not handled here."""
        return False


def get_executor(name: str | None) -> Executor:
    """The executor called ``name``: ``local``, ``dask``, a scheduler address, or an entry point."""
    name = (name or LOCAL).strip()
    if name == LOCAL:
        from guild_jupyter.orchestration.executors.local import LOCAL_EXECUTOR

        return LOCAL_EXECUTOR
    if name == "dask" or "://" in name:
        from guild_jupyter.orchestration.executors.dask_executor import DaskExecutor

        return DaskExecutor.get(None if name == "dask" else name)
    from importlib.metadata import entry_points

    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    if name not in found:
        known = sorted({LOCAL, "dask", *found})
        raise GuildError(
            f"unknown executor {name!r} (known: {', '.join(known)}, or a Dask scheduler address)"
        )
    factory = found[name].load()
    executor = factory() if callable(factory) else factory
    if not isinstance(executor, Executor):
        raise GuildError(f"executor entry point {name!r} did not give an Executor")
    return executor


def executor_name(run_source: dict[str, Any]) -> str:
    """The executor a run was submitted to (recorded in its ``source``; local when absent)."""
    return str(run_source.get("executor") or LOCAL)
