"""Flag spaces: the syntax of sweep values and what each expands to.

Guild's forms, written as a flag's value:

| form | meaning |
|---|---|
| ``[a, b, c]`` | these values (a grid axis; categorical for a search optimizer) |
| ``[a, b]*3`` | the list repeated (for repeated trials) |
| ``range[a:b:s]`` | ``a, a+s, ...`` up to ``b`` *included*; ``s`` defaults to 1 |
| ``linspace[a:b:n]`` | ``n`` evenly spaced values from ``a`` to ``b`` |
| ``logspace[a:b:n]`` | ``n`` values from ``10**a`` to ``10**b`` |
| ``uniform[lo:hi]``, ``[lo:hi]`` | a continuous range (search optimizers only) |
| ``loguniform[lo:hi]`` | a continuous range sampled in log scale |

A malformed value is a one-line :class:`SweepSyntaxError` naming the flag.
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Any, Iterable

from guild_jupyter.errors import GuildError
from guild_jupyter.model.flags import parse_flag_text


class SweepSyntaxError(GuildError, ValueError):
    """A flag value that looks like a sweep but is not well formed."""


class Dimension:
    """One flag's set of values: discrete ``values`` or a continuous ``low..high``."""

    def __init__(self, name: str, values: list[Any] | None = None, low: float | None = None,
                 high: float | None = None, log: bool = False, text: str = "") -> None:
        self.name, self.values, self.low, self.high, self.log, self.text = name, values, low, high, log, text

    @property
    def discrete(self) -> bool:
        return self.values is not None

    def __repr__(self) -> str:
        if self.discrete:
            return f"Dimension({self.name!r}, {self.values!r})"
        return f"Dimension({self.name!r}, {'log' if self.log else ''}uniform[{self.low}:{self.high}])"


_FUNC = re.compile(r"^(range|linspace|logspace|uniform|loguniform)?\[(.*)\](?:\*(\d+))?$", re.S)


def looks_like_space(text: str) -> bool:
    s = text.strip()
    return bool(s) and (s.startswith("[") or bool(re.match(r"^(range|linspace|logspace|uniform|loguniform)\[", s)))


def parse_dimension(name: str, value: Any) -> Dimension | None:
    """A sweep dimension if ``value`` is one (a list, or sweep text), else None."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise SweepSyntaxError(f"flag {name!r}: an empty list gives no trials")
        return Dimension(name, list(value), text=repr(list(value)))
    if not isinstance(value, str) or not looks_like_space(value):
        return None
    text = value.strip()
    m = _FUNC.match(text)
    if not m:
        raise SweepSyntaxError(f"flag {name!r}: malformed sweep value {text!r} (unbalanced brackets?)")
    func, body, repeat = m.group(1), m.group(2).strip(), m.group(3)
    if func is None and ":" not in body:
        parsed = parse_flag_text(f"[{body}]")
        if not isinstance(parsed, list) or not parsed:
            raise SweepSyntaxError(f"flag {name!r}: malformed list {text!r}")
        return Dimension(name, parsed * int(repeat or 1), text=text)
    if repeat:
        raise SweepSyntaxError(f"flag {name!r}: '*N' repeats lists only, not {func or 'ranges'}")
    parts = [p.strip() for p in body.split(":")]
    numbers = []
    for p in parts:
        v = parse_flag_text(p)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise SweepSyntaxError(f"flag {name!r}: {func or 'range'} bounds must be numbers, got {p!r} in {text!r}")
        numbers.append(v)
    kind = func or "uniform"
    if kind in ("uniform", "loguniform"):
        if len(numbers) != 2:
            raise SweepSyntaxError(f"flag {name!r}: {kind} needs [low:high], got {text!r}")
        low, high = float(numbers[0]), float(numbers[1])
        if not low < high:
            raise SweepSyntaxError(f"flag {name!r}: low must be below high in {text!r}")
        if kind == "loguniform" and low <= 0:
            raise SweepSyntaxError(f"flag {name!r}: loguniform needs positive bounds, got {text!r}")
        return Dimension(name, low=low, high=high, log=kind == "loguniform", text=text)
    if kind == "range":
        if len(numbers) not in (2, 3):
            raise SweepSyntaxError(f"flag {name!r}: range needs [start:end] or [start:end:step], got {text!r}")
        start, end = numbers[0], numbers[1]
        step = numbers[2] if len(numbers) == 3 else 1
        if step == 0 or (end - start) * step < 0:
            raise SweepSyntaxError(f"flag {name!r}: the step of {text!r} never reaches the end")
        count = int(math.floor((end - start) / step + 1e-9)) + 1
        values = [start + i * step for i in range(count)]
        if all(isinstance(v, int) for v in numbers):
            values = [int(v) for v in values]
        else:
            values = [round(v, 12) for v in values]
        return Dimension(name, values, text=text)
    if len(numbers) != 3 or not isinstance(numbers[2], int) or numbers[2] < 1:
        raise SweepSyntaxError(f"flag {name!r}: {kind} needs [start:end:count] with a whole count, got {text!r}")
    a, b, n = float(numbers[0]), float(numbers[1]), numbers[2]
    points = [a] if n == 1 else [a + (b - a) * i / (n - 1) for i in range(n)]
    if kind == "logspace":
        points = [10 ** p for p in points]
    return Dimension(name, [round(p, 12) for p in points], text=text)


class SweepSpace:
    """Fixed flags plus the dimensions being swept."""

    def __init__(self, fixed: dict[str, Any], dimensions: list[Dimension]) -> None:
        self.fixed, self.dimensions = fixed, dimensions

    @classmethod
    def from_flags(cls, flags: dict[str, Any], list_flags: Iterable[str] = ()) -> SweepSpace:
        """``list_flags``: flags whose values are lists, where a list is a value, not a sweep."""
        fixed: dict[str, Any] = {}
        dims: list[Dimension] = []
        keep = set(list_flags)
        for name, value in flags.items():
            if name in keep and (isinstance(value, (list, tuple)) or
                                 (isinstance(value, str) and value.strip().startswith("[") and ":" not in value)):
                fixed[name] = value
                continue
            dim = parse_dimension(name, value)
            if dim is None:
                fixed[name] = value
            else:
                dims.append(dim)
        return cls(fixed, dims)

    @property
    def is_sweep(self) -> bool:
        return bool(self.dimensions)

    @property
    def discrete(self) -> bool:
        return all(d.discrete for d in self.dimensions)

    def grid(self) -> list[dict[str, Any]]:
        """Every combination (Cartesian product), in order."""
        if not self.discrete:
            continuous = ", ".join(d.name for d in self.dimensions if not d.discrete)
            raise SweepSyntaxError(f"a grid cannot enumerate continuous ranges ({continuous}); "
                                   "use --optimizer random or tpe")
        names = [d.name for d in self.dimensions]
        return [{**self.fixed, **dict(zip(names, combo))}
                for combo in itertools.product(*(d.values for d in self.dimensions))]

    def describe(self) -> dict[str, str]:
        return {d.name: d.text for d in self.dimensions}
