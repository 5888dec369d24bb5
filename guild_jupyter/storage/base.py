"""The store interface every layer above talks to.

Kept small on purpose (as Optuna keeps its storages): the embedded
folder-plus-SQLite store implements it first; a shared database or an object
store can implement it later behind the ``guild_jupyter.stores`` entry point.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from guild_jupyter.model.run import Run
from guild_jupyter.model.status import RunStatus

if TYPE_CHECKING:
    import pandas as pd

    from guild_jupyter.storage.output import OutputWriter
    from guild_jupyter.tracking.scalar_writer import ScalarWriter


class BaseRunStore(abc.ABC):
    @abc.abstractmethod
    def create_run(
        self,
        op: str,
        *,
        kind: str,
        flags: dict[str, Any],
        label: str = "",
        tags: Iterable[str] = (),
        sweep: str | None = None,
        source: dict[str, Any] | None = None,
    ) -> Run: ...

    @abc.abstractmethod
    def load_run(self, run_id: str) -> Run: ...

    @abc.abstractmethod
    def update_run(self, run_id: str, change: Callable[[Run], None]) -> Run:
        """Apply ``change`` to the freshest record under the run's lock and save it."""

    @abc.abstractmethod
    def set_status(self, run_id: str, status: RunStatus | str, **attempt: Any) -> Run: ...

    @abc.abstractmethod
    def new_attempt(self, run_id: str) -> Run: ...

    @abc.abstractmethod
    def resolve(self, ref: str | int, *, deleted: bool | None = False) -> Run: ...

    @abc.abstractmethod
    def list_runs(self, **filters: Any) -> list[Run]: ...

    @abc.abstractmethod
    def runs_frame(self, **filters: Any) -> pd.DataFrame: ...

    @abc.abstractmethod
    def scalars_frame(
        self, run_ids: list[str] | None = None, keys: list[str] | None = None
    ) -> pd.DataFrame: ...

    @abc.abstractmethod
    def output_writer(self, run_id: str) -> OutputWriter: ...

    @abc.abstractmethod
    def scalar_writer(self, run_id: str, source: str) -> ScalarWriter: ...

    @abc.abstractmethod
    def read_output(self, run_id: str, offset: int = 0) -> str: ...

    @abc.abstractmethod
    def delete(self, run_id: str) -> None: ...

    @abc.abstractmethod
    def restore(self, run_id: str) -> None: ...

    @abc.abstractmethod
    def purge(self, run_id: str) -> None: ...
