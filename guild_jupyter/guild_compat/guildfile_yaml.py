"""``guild.yml`` as YAML: a loader that keeps line numbers, and file discovery.

Maps load as :class:`LineMap` (with ``line`` and ``key_lines``), lists as
:class:`LineList` (with ``line``); a duplicate key is an error. Every problem raises
:class:`GuildfileError` whose message starts with ``guild.yml, line N:``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from guild_jupyter.errors import GuildError

NAME = "guild.yml"


class GuildfileError(GuildError):
    pass


# YAML with line numbers --------------------------------------------------------
class LineMap(dict):
    line: int = 0
    key_lines: dict


class LineList(list):
    line: int = 0


class _Loader(yaml.SafeLoader):
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> LineMap:
    loader.flatten_mapping(node)
    out = LineMap()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise GuildfileError(
                f"{NAME}, line {key_node.start_mark.line + 1}: a map key must be a plain value"
            ) from None
        if key in out:
            raise GuildfileError(
                f"{NAME}, line {key_node.start_mark.line + 1}: duplicate key {key!r}"
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(n, deep=True) for n in node.value)
    out.line = node.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


def load_yaml(text: str, name: str = NAME) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except GuildfileError:
        raise
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else "?"
        raise GuildfileError(f"{name}, line {line}: malformed YAML: {e.problem or e}") from None
    except yaml.YAMLError as e:
        raise GuildfileError(f"{name}: malformed YAML: {e}") from None


def _line(obj: Any, key: Any = None, default: int = 1) -> int:
    if isinstance(obj, LineMap) and key is not None and key in obj.key_lines:
        return obj.key_lines[key]
    return getattr(obj, "line", default) or default


def find_guildfile(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest ``guild.yml`` in ``start`` (default: the cwd) or a directory above."""
    here = Path(start or os.getcwd()).absolute()
    for d in (here, *here.parents):
        candidate = d / NAME
        if candidate.is_file():
            return candidate
    return None
