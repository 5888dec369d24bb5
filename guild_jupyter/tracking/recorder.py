"""Everything an in-process run records while it runs."""

from __future__ import annotations

import itertools
import os
import threading
from typing import TYPE_CHECKING, Any

from guild_jupyter.events import OutputLines
from guild_jupyter.storage.scalar_files import check_key
from guild_jupyter.tracking.output_scalars import OutputScalarParser

if TYPE_CHECKING:
    from guild_jupyter.storage.pending import PendingRun
    from guild_jupyter.storage.store import RunStore

_serial = itertools.count(1)


class RunRecorder:
    """Output lines with timestamps, scalars parsed from them, and ``log()`` points.

    Each recorder owns its own scalar file, so several recorders (processes or
    attempts) never write to the same file.
    """

    def __init__(
        self, store: RunStore, run_id: str, output_scalars: Any = None, capture_output: bool = True,
        pending: PendingRun | None = None,
    ) -> None:
        """With ``pending``, the run is written behind (see ``storage.pending``)."""
        self.store = store
        self.run_id = run_id
        self.pending = pending
        self._source = f"p{os.getpid()}-{next(_serial)}"
        self._lock = threading.Lock()
        if pending is not None:
            self.output: Any = pending if capture_output else None
        else:
            self.output = store.output_writer(run_id) if capture_output else None
        self.parser = OutputScalarParser(output_scalars)
        self.known_keys: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        # ``scalars``, the ScalarWriter, is made on first use (most cells log nothing);
        # from then on it is a plain attribute, so ``log()`` pays nothing for this
        if name != "scalars":
            raise AttributeError(name)
        with self._lock:
            writer = self.__dict__.get("scalars")
            if writer is None:
                p = self.pending
                if p is not None:
                    writer = self.store.scalar_writer(
                        self.run_id, self._source, p.meta_dir, p.materialize
                    )
                else:
                    writer = self.store.scalar_writer(self.run_id, self._source)
                self.scalars = writer
        return writer

    def on_line(self, text: str, stream: int, t: float) -> None:
        if self.output is not None:
            self.output.write_line(text, stream, t)
        for key, step, value in self.parser.parse(text):
            self.scalars.add(key, step, value, t)
        self.store.events.emit(OutputLines(self.run_id, lines=((t, stream, text),)))

    def check_keys(self, keys: Any) -> None:
        for k in keys:
            if k not in self.known_keys:
                check_key(k)
                self.known_keys.add(k)

    def made_scalar_writer(self) -> Any:
        """The scalar writer if anything made it (a point was logged or parsed), else None."""
        return self.__dict__.get("scalars")

    @property
    def meta_dir(self) -> str:
        if self.pending is not None:
            return self.pending.materialize()
        return self.store.meta_dir(self.run_id)

    def close(self) -> None:
        writer = self.__dict__.get("scalars")
        if writer is not None:
            writer.close()
        if self.output is not None:
            self.output.close()
