"""Flag values: decoding ``name=value`` text and checking values against a flag's type.

Decoding follows Guild's rules so commands carry over: ``1`` is an int, ``1.0``
and ``1e-3`` are floats, ``true``/``false``/``yes``/``no`` are bools, ``null`` is
None, ``[a, b]`` is a list, quotes force a string, anything else is a string.
A flag whose type is ``str`` keeps the text exactly as typed (``opt=1`` -> "1").
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Union

from guild_jupyter.errors import FlagError

FlagValue = Union[int, float, bool, str, list, None]

FLAG_TYPES = ("int", "float", "bool", "str", "list")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_INT = re.compile(r"^[-+]?\d+$")
_FLOAT = re.compile(r"^[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$|^[-+]?(nan|inf|infinity)$", re.I)
_TRUE = {"true", "yes"}
_FALSE = {"false", "no"}


def check_flag_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise FlagError(f"invalid flag name {name!r}: use letters, digits, '_', '.' or '-'")
    return name


def parse_flag_text(text: str) -> FlagValue:
    """Decode the text of one flag value as Guild does."""
    s = text.strip()
    if s == "":
        return ""
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    if _INT.match(s):
        return int(s)
    if _FLOAT.match(s):
        return float(s)
    low = s.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    if low in ("null", "none", "~"):
        return None
    if s.startswith("[") and s.endswith("]") and not _is_search_space(s):
        inner = s[1:-1].strip()
        return [parse_flag_text(item) for item in _split_list(inner, text)] if inner else []
    return s


def _is_search_space(s: str) -> bool:
    # `[lo:hi]` is a sweep range, not a list; the sweep layer decodes it.
    return ":" in s and "," not in s


def _split_list(inner: str, whole: str) -> list[str]:
    items: list[str] = []
    depth, quote, start = 0, "", 0
    for i, ch in enumerate(inner):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(inner[start:i])
            start = i + 1
    if quote or depth:
        raise FlagError(f"malformed list value {whole!r}: unbalanced quotes or brackets")
    items.append(inner[start:])
    return items


def split_assignment(arg: str) -> tuple[str, str]:
    """``"lr=0.1"`` -> ``("lr", "0.1")``; a clear error for anything else."""
    name, sep, value = arg.partition("=")
    if not sep:
        raise FlagError(f"expected NAME=VALUE, got {arg!r}")
    return check_flag_name(name.strip()), value


def parse_flag_assignments(args: Iterable[str]) -> dict[str, FlagValue]:
    """Decode ``["lr=0.1", "opt=adam"]`` into typed values (no flag definitions)."""
    out: dict[str, FlagValue] = {}
    for arg in args:
        name, text = split_assignment(arg)
        out[name] = parse_flag_text(text)
    return out


def type_of(value: Any) -> str | None:
    """The flag type name a default value implies (None: any type)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "list"
    return None


def coerce_flag(name: str, value: Any, flag_type: str | None) -> FlagValue:
    """Return ``value`` as ``flag_type`` or raise a one-line :class:`FlagError`.

    Text is decoded first unless the flag is a string, so ``"0.1"`` from a
    command line and ``0.1`` from Python land on the same float.
    """
    if flag_type is None:
        return parse_flag_text(value) if isinstance(value, str) else _plain(name, value)
    if flag_type not in FLAG_TYPES:
        raise FlagError(
            f"flag {name!r} has unknown type {flag_type!r} (one of {', '.join(FLAG_TYPES)})"
        )
    if flag_type == "str":
        if isinstance(value, (list, dict)):
            raise FlagError(f"flag {name!r} expects a str, got {value!r}")
        return value if isinstance(value, str) else str(value)
    decoded = parse_flag_text(value) if isinstance(value, str) else value
    if decoded is None:
        return None
    ok = _convert(decoded, flag_type)
    if ok is _BAD:
        article = "an" if flag_type == "int" else "a"
        raise FlagError(f"flag {name!r} expects {article} {flag_type}, got {value!r}")
    return ok


_BAD = object()


def _convert(v: Any, flag_type: str) -> Any:
    if flag_type == "float":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return _BAD
        return float(v)
    if flag_type == "int":
        if isinstance(v, bool):
            return _BAD
        if isinstance(v, int):
            return v
        if isinstance(v, float) and math.isfinite(v) and v.is_integer():
            return int(v)
        return _BAD
    if flag_type == "bool":
        if isinstance(v, bool):
            return v
        if isinstance(v, int) and v in (0, 1):
            return bool(v)
        return _BAD
    if flag_type == "list":
        return list(v) if isinstance(v, (list, tuple)) else _BAD
    return _BAD


def _plain(name: str, value: Any) -> FlagValue:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(name, v) for v in value]
    raise FlagError(
        f"flag {name!r} has a value of type {type(value).__name__}; use int, float, bool, str or list"
    )


class FlagDef:
    """A declared flag: its default and type, plus optional constraints."""

    def __init__(
        self,
        name: str,
        default: FlagValue = None,
        type: str | None = None,
        description: str = "",
        choices: list[FlagValue] | None = None,
        min: float | None = None,
        max: float | None = None,
        required: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.default = default
        self.type = type if type is not None else type_of(default)
        self.description = description
        self.choices = choices
        self.min = min
        self.max = max
        self.required = required
        self.extra = extra if extra is not None else {}

    def __repr__(self) -> str:
        return f"FlagDef({self.name!r}, {self.default!r}, {self.type!r})"

    def check(self, value: Any) -> FlagValue:
        v = coerce_flag(self.name, value, self.type)
        if self.choices is not None and v not in self.choices:
            allowed = ", ".join(repr(c) for c in self.choices)
            raise FlagError(f"flag {self.name!r}: {v!r} is not one of {allowed}")
        if self.min is not None and v is not None and v < self.min:
            raise FlagError(f"flag {self.name!r}: {v!r} is below the minimum {self.min!r}")
        if self.max is not None and v is not None and v > self.max:
            raise FlagError(f"flag {self.name!r}: {v!r} is above the maximum {self.max!r}")
        return v


def resolve_flags(
    defs: Mapping[str, FlagDef],
    given: Mapping[str, Any],
    *,
    op: str = "operation",
    allow_unknown: bool = False,
) -> dict[str, FlagValue]:
    """Defaults overlaid with ``given``, each value checked; nothing partial on error."""
    out: dict[str, FlagValue] = {}
    for name, value in given.items():
        check_flag_name(name)
        if name not in defs and not allow_unknown:
            raise unknown_flag(name, op, defs)
    for name, d in defs.items():
        if name in given:
            out[name] = d.check(given[name])
        elif d.required:
            raise FlagError(f"flag {name!r} is required by {op}")
        else:
            out[name] = d.default
    for name, value in given.items():
        if name not in defs:
            out[name] = coerce_flag(name, value, None)
    return out


def unknown_flag(name: str, op: str, defs: Mapping[str, FlagDef]) -> FlagError:
    """The error for a flag ``op`` does not have (with the closest known name)."""
    return FlagError(_unknown_flag_message(name, op, defs))


def _unknown_flag_message(name: str, op: str, defs: Mapping[str, FlagDef]) -> str:
    import difflib

    known = sorted(defs)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listing = f" (flags: {', '.join(known)})" if known else " (it has no flags)"
    return f"unknown flag {name!r} for {op}{listing}{hint}"
