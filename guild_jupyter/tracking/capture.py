"""Teeing a process's own stdout/stderr into a run (for in-process runs)."""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from guild_jupyter.storage.output import STDERR, STDOUT, LineSplitter


class TeeStream(io.TextIOBase):
    """Writes through to the original stream and hands whole lines to ``sink``."""

    def __init__(
        self, original: TextIO, stream: int, sink: Callable[[str, int, float], None]
    ) -> None:
        self.original = original
        self.stream = stream
        self._sink = sink
        self._lines = LineSplitter()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        n = self.original.write(text)
        with self._lock:
            lines = self._lines.feed(text)
        if lines:
            t = time.time()
            for line in lines:
                self._sink(line, self.stream, t)
        return n if n is not None else len(text)

    def flush(self) -> None:
        self.original.flush()

    def finish(self) -> None:
        rest = self._lines.rest()
        if rest:
            self._sink(rest, self.stream, time.time())

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8")

    def fileno(self) -> int:
        return self.original.fileno()

    def __getattr__(self, name: str):
        return getattr(self.original, name)


class Capture:
    """Context manager swapping ``sys.stdout``/``sys.stderr`` for tees."""

    def __init__(self, sink: Callable[[str, int, float], None]) -> None:
        self._sink = sink

    def __enter__(self) -> Capture:
        self._saved = sys.stdout, sys.stderr
        self.out = TeeStream(sys.stdout, STDOUT, self._sink)
        self.err = TeeStream(sys.stderr, STDERR, self._sink)
        sys.stdout, sys.stderr = self.out, self.err  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        for tee in (self.out, self.err):
            try:
                tee.flush()
            except Exception:
                pass
            tee.finish()
        sys.stdout, sys.stderr = self._saved
