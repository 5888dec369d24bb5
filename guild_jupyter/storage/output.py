"""The run's output log: text plus a per-line timestamp index.

The text file stays plain so ``cat`` and ``tail -f`` work on it; the index is
Guild's ``output.index`` record (``!QB``: milliseconds, stream) so the two can
be read together and imported runs keep their times.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from pathlib import Path

STDOUT, STDERR = 0, 1
OUTPUT, OUTPUT_INDEX = "output", "output.index"  # (as in storage.layout)
_RECORD = struct.Struct("!QB")


class OutputLine:
    __slots__ = ("time", "stream", "text")

    def __init__(self, time: float, stream: int, text: str) -> None:
        self.time, self.stream, self.text = time, stream, text

    def __repr__(self) -> str:
        return f"OutputLine({self.time!r}, {self.stream!r}, {self.text!r})"


class OutputWriter:
    """Appends whole lines; safe to call from several threads of one process.

    Each line is written (not just buffered) before ``write_line`` returns so a
    reader sees it at once and a crash loses at most the line being written.
    """

    def __init__(self, meta_dir: str | os.PathLike[str]) -> None:
        self._meta = Path(meta_dir)
        self._text = self._index = None  # opened with the first line
        self._lock = threading.Lock()

    def write_line(self, text: str, stream: int = STDOUT, t: float | None = None) -> None:
        if t is None:
            t = time.time()
        data = text.encode("utf-8", "replace")
        if not data.endswith(b"\n"):
            data += b"\n"
        self._write(data, _RECORD.pack(int(t * 1000), stream))

    def write_lines(self, lines: list[tuple[str, int, float]]) -> None:
        """Several ``(text, stream, time)`` lines in one write per file."""
        self._write(*_encode(lines))

    def _write(self, data: bytes, records: bytes) -> None:
        with self._lock:
            if self._text is None:
                self._text = open(self._meta / OUTPUT, "ab", buffering=0)
                self._index = open(self._meta / OUTPUT_INDEX, "ab", buffering=0)
            self._text.write(data)
            self._index.write(records)  # type: ignore[union-attr]

    def close(self) -> None:
        with self._lock:
            if self._text is not None:
                self._text.close()
                self._index.close()  # type: ignore[union-attr]


def _encode(lines: list[tuple[str, int, float]]) -> tuple[bytes, bytes]:
    data = b"".join(
        text.encode("utf-8", "replace") + (b"" if text.endswith("\n") else b"\n")
        for text, _, _ in lines
    )
    return data, b"".join(_RECORD.pack(int(t * 1000), s) for _, s, t in lines)


def write_new_output(meta_dir: str, lines: list[tuple[str, int, float]]) -> None:
    """The output of a run whose ``.run`` folder no reader sees yet (a staged run):
    both files written at once (no file objects; they may exist, empty, already)."""
    data, records = _encode(lines)
    for name, content in ((OUTPUT, data), (OUTPUT_INDEX, records)):
        fd = os.open(os.path.join(meta_dir, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            write_all(fd, content)
        finally:
            os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_output(meta_dir: str | os.PathLike[str], offset: int = 0) -> str:
    """Output text from byte ``offset`` (a reader that polls keeps the offset)."""
    try:  # os-level: a third of a file object's system calls (a run's repr reads this)
        fd = os.open(os.path.join(meta_dir, OUTPUT), os.O_RDONLY)
    except FileNotFoundError:
        return ""
    try:
        chunks = []
        while chunk := os.pread(fd, 1 << 20, offset):
            chunks.append(chunk)
            offset += len(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace")


def read_complete_lines(meta_dir: str | os.PathLike[str], offset: int = 0) -> tuple[str, int]:
    """Text of the whole lines after byte ``offset`` (a follower's read) and the next offset."""
    try:
        with open(Path(meta_dir) / "output", "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return "", offset
    end = data.rfind(b"\n") + 1
    return data[:end].decode("utf-8", "replace"), offset + end


def read_output_lines(meta_dir: str | os.PathLike[str]) -> list[OutputLine]:
    """Lines with their time and stream; lines missing an index record get time 0."""
    meta = Path(meta_dir)
    try:
        raw = (meta / "output").read_bytes()
    except FileNotFoundError:
        return []
    try:
        index = (meta / "output.index").read_bytes()
    except FileNotFoundError:
        index = b""
    texts = raw.decode("utf-8", "replace").splitlines()
    records = [_RECORD.unpack_from(index, i) for i in range(0, len(index) - len(index) % 9, 9)]
    out = []
    for i, text in enumerate(texts):
        ms, stream = records[i] if i < len(records) else (0, STDOUT)
        out.append(OutputLine(ms / 1000.0, stream, text))
    return out


class LineSplitter:
    """Turns a stream of text chunks into whole lines (carriage returns end a line too)."""

    def __init__(self) -> None:
        self._partial = ""

    def feed(self, chunk: str) -> list[str]:
        if not chunk:
            return []
        text = self._partial + chunk
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        self._partial = lines.pop()
        return lines

    def rest(self) -> str:
        rest, self._partial = self._partial, ""
        return rest
