"""Scalars from printed lines, with Guild's default patterns and templates.

Defaults (Guild 0.9): ``key: value (step N)`` and ``key: value`` (anything in
parentheses after the value is ignored); a printed ``step: N`` sets the step
for the lines after it. Custom patterns use Guild's templates ``\\key``,
``\\value`` and ``\\step`` and may name groups ``key``, ``value``, ``step``;
without names, group 1 is the key and group 2 the value. A map entry
``{name: pattern}`` fixes the key and reads the value from group 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from guild_jupyter.errors import GuildError

KEY = r"[_a-zA-Z]\S*"
VALUE = r"(?:[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?[iI][nN][fF]|[nN][aA][nN])"
STEP = r"[0-9]+"

DEFAULT_PATTERNS = [
    r"^\key:\s+\value\s+\((?:step\s+)?(?P<step>\step)\)$",
    r"^(\key):\s+(\value)(?:\s+\(.*\))?$",
]


def expand_template(pattern: str) -> str:
    r"""Replace Guild's templates; a bare ``\key``/``\value`` becomes a named group."""
    for name, body in (("key", KEY), ("value", VALUE), ("step", STEP)):
        pattern = pattern.replace(f"(?P<{name}>\\{name})", f"(?P<{name}>{body})")
    out = pattern.replace(r"(\key)", f"({KEY})").replace(r"\key", f"(?P<key>{KEY})")
    out = out.replace(r"(\value)", f"({VALUE})").replace(r"\value", f"(?P<value>{VALUE})")
    out = out.replace(r"(\step)", f"(?P<step>{STEP})").replace(r"\step", STEP)
    return out


class _Pattern:
    def __init__(self, regex: re.Pattern[str], fixed_key: str | None = None) -> None:
        self.regex, self.fixed_key = regex, fixed_key

    def match(self, line: str) -> tuple[str, float, int | None] | None:
        m = self.regex.search(line)
        if m is None:
            return None
        groups = m.groupdict()
        if self.fixed_key is not None:
            key, value = self.fixed_key, groups.get("value") or m.group(1)
        else:
            key = groups.get("key") or m.group(1)
            value = groups.get("value") or m.group(2)
        step = groups.get("step")
        try:
            return key, float(value), int(step) if step is not None else None
        except (TypeError, ValueError):
            return None


_defaults: list[_Pattern] = []


def compile_patterns(spec: Any = None) -> list[_Pattern]:
    """``None``: Guild's defaults; ``"no"``/``False``: none; else a list of
    patterns and ``{key: pattern}`` maps. A bad regex is a one-line error."""
    if spec is None:  # compiled once: every in-process run starts a parser
        if not _defaults:
            _defaults.extend(compile_patterns(DEFAULT_PATTERNS))
        return list(_defaults)
    if spec in ("no", False) or spec == []:
        return []
    if isinstance(spec, (str, dict)):
        spec = [spec]
    out: list[_Pattern] = []
    for item in spec:
        entries = item.items() if isinstance(item, dict) else [(None, item)]
        for key, pattern in entries:
            try:
                out.append(_Pattern(re.compile(expand_template(str(pattern))), key))
            except re.error as e:
                raise GuildError(f"invalid output-scalars pattern {pattern!r}: {e}") from None
    return out


class OutputScalarParser:
    """Feeds lines, yields ``(key, step, value)``; keeps the printed step."""

    def __init__(self, patterns: Any = None) -> None:
        self.patterns = compile_patterns(patterns)
        self.step = 0
        self._colon_only = patterns is None  # every default pattern needs "key:"

    def parse(self, line: str) -> list[tuple[str, int, float]]:
        if not self.patterns or (self._colon_only and ":" not in line):
            return []
        line = line.strip()
        for p in self.patterns:
            hit = p.match(line)
            if hit is None:
                continue
            key, value, step = hit
            if key == "step":
                self.step = int(value)
                return []
            return [(key, step if step is not None else self.step, value)]
        return []

    def parse_lines(self, lines: Iterable[str]) -> list[tuple[str, int, float]]:
        out: list[tuple[str, int, float]] = []
        for line in lines:
            out.extend(self.parse(line))
        return out
