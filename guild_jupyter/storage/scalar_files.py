"""Scalar series on disk: one append-only CSV per writer process.

A file has exactly one writer, so concurrent writers (the user's process
calling ``log()``, the supervisor parsing output) never interleave. A torn last
line from a crash is ignored by readers: every fully written point is kept.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from guild_jupyter.errors import GuildError

KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")

Point = tuple[str, int, float, float]  # key, step, value, time


def check_key(key: str) -> str:
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise GuildError(f"invalid scalar key {key!r}: use letters, digits, '_', '.', '-' or '/'")
    return key


def append_text(path: str | os.PathLike[str], text: str) -> None:
    data = text.encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def iter_points(scalars_dir: str | os.PathLike[str]) -> Iterator[Point]:
    """Every complete point of every writer's file (file order within a file)."""
    d = Path(scalars_dir)
    try:
        names = sorted(os.listdir(d))
    except FileNotFoundError:
        return
    for name in names:
        if not name.endswith(".csv"):
            continue
        with open(d / name, "rb") as f:
            data = f.read()
        for line in data.decode("utf-8", "replace").split("\n")[:-1]:
            parts = line.split(",")
            if len(parts) != 4:
                continue
            try:
                yield parts[0], int(parts[1]), float(parts[2]), float(parts[3])
            except ValueError:
                continue


class Summary:
    """first/last/min/max/count/sum of one key; first and last by (step, time)."""

    __slots__ = (
        "first",
        "first_step",
        "first_time",
        "last",
        "last_step",
        "last_time",
        "min",
        "max",
        "count",
        "total",
    )

    def __init__(
        self,
        first: float,
        first_step: int,
        first_time: float,
        last: float,
        last_step: int,
        last_time: float,
        min: float | None = None,
        max: float | None = None,
        count: int = 0,
        total: float = 0.0,
    ) -> None:
        self.first, self.first_step, self.first_time = first, first_step, first_time
        self.last, self.last_step, self.last_time = last, last_step, last_time
        self.min, self.max, self.count, self.total = min, max, count, total

    def __repr__(self) -> str:
        return f"Summary(first={self.first}, last={self.last}, min={self.min}, max={self.max}, count={self.count})"

    @classmethod
    def of(cls, step: int, value: float, t: float) -> Summary:
        s = cls(value, step, t, value, step, t)
        s.add(step, value, t, first=False)
        return s

    def add(self, step: int, value: float, t: float, first: bool = True) -> None:
        if first:
            if (step, t) < (self.first_step, self.first_time):
                self.first, self.first_step, self.first_time = value, step, t
            if (step, t) >= (self.last_step, self.last_time):
                self.last, self.last_step, self.last_time = value, step, t
        self.count += 1
        if not math.isnan(value):
            self.total += value
            self.min = value if self.min is None or value < self.min else self.min
            self.max = value if self.max is None or value > self.max else self.max


class SummaryBuilder:
    def __init__(self) -> None:
        self.by_key: dict[str, Summary] = {}

    def add(self, key: str, step: int, value: float, t: float) -> None:
        s = self.by_key.get(key)
        if s is None:
            self.by_key[key] = Summary.of(step, value, t)
        else:
            s.add(step, value, t)

    def extend(self, points: Iterable[Point]) -> SummaryBuilder:
        for p in points:
            self.add(*p)
        return self


def summarize(points: list[Point]) -> dict[str, Summary]:
    """Per-key summaries of a batch, with the per-point work done by builtins."""
    by_key: dict[str, tuple[list[int], list[float], list[float]]] = {}
    for key, step, value, t in points:
        cols = by_key.get(key)
        if cols is None:
            cols = by_key[key] = ([], [], [])
        cols[0].append(step)
        cols[1].append(value)
        cols[2].append(t)
    out: dict[str, Summary] = {}
    for key, (steps, values, times) in by_key.items():
        order = list(zip(steps, times, range(len(steps))))  # ties: call order decides
        first, last = min(order), max(order)
        finite = [v for v in values if v == v]
        out[key] = Summary(
            first=values[first[2]],
            first_step=first[0],
            first_time=first[1],
            last=values[last[2]],
            last_step=last[0],
            last_time=last[1],
            min=min(finite) if finite else None,
            max=max(finite) if finite else None,
            count=len(values),
            total=math.fsum(finite),
        )
    return out
