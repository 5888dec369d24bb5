"""``guild.yml``: parsing and validation, with line numbers in every error.

Two formats, as in Guild AI 0.9:
- operation-only: a top-level map of operation name -> definition;
- full: a top-level list of ``- model: NAME`` (with ``operations:``) and
  ``- config: NAME`` items (a model may ``extends:`` configs; their operations
  and ``operation-defaults`` are merged under the model's own).

Supported operation keys: ``main``, ``exec``, ``description``, ``flags``,
``flags-dest`` (``globals``, ``args``, ``global:NAME``/``dict:NAME``, ``config:FILE``),
``flags-import`` (``all``, ``yes`` or a
list of names, from the main module's argparse arguments or globals),
``output-scalars`` (Guild's templates, maps, ``no``), ``sourcecode`` (a list of
include/exclude rules, or a map with ``root``, ``select``), ``label``
(``${flag}`` templates), ``tags``, ``env``, ``objective``, ``default-max-trials``.
Keys Guild knows but this project ignores are accepted; anything else is an error.

Flags: a bare value is the default; a map may hold ``default``, ``type``,
``description``, ``choices`` (values or maps with ``value``/``description``),
``min``, ``max``, ``required``, ``arg-name``, ``arg-skip``, ``arg-switch``,
``env-name``, ``distribution``, ``null-label``, ``allow-other``.

Every problem raises :class:`GuildfileError` whose message starts with
``guild.yml, line N:``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from guild_jupyter.errors import GuildError
from guild_jupyter.guild_compat.guildfile_schema import (
    FLAG_KEYS,
    GUILD_TYPES,
    IGNORED_OP_KEYS,
    OP_KEYS,
)
from guild_jupyter.guild_compat.guildfile_yaml import (
    NAME,
    GuildfileError,
    LineList,
    LineMap,
    _line,
    find_guildfile,
    load_yaml,
)
from guild_jupyter.model.flags import FLAG_TYPES, FlagDef, FlagError, type_of

__all__ = [
    "FLAG_KEYS",
    "GUILD_TYPES",
    "IGNORED_OP_KEYS",
    "NAME",
    "OP_KEYS",
    "Guildfile",
    "GuildfileError",
    "LineList",
    "LineMap",
    "OpDef",
    "find_guildfile",
    "load",
    "load_yaml",
]


class OpDef:
    """One operation of a guildfile, as declared (validated)."""

    def __init__(self, guildfile: Guildfile, model: str, name: str, data: LineMap) -> None:
        self.guildfile = guildfile
        self.model = model
        self.name = name
        self.data = data
        self.line = data.line if isinstance(data, LineMap) else 1
        self.flags: dict[str, FlagDef] = {}
        self.flag_lines: dict[str, int] = {}
        self._validate()

    @property
    def full_name(self) -> str:
        return f"{self.model}:{self.name}" if self.model else self.name

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def error(self, message: str, key: Any = None, obj: Any = None) -> GuildfileError:
        line = _line(obj if obj is not None else self.data, key, self.line)
        return GuildfileError(
            f"{self.guildfile.label}, line {line}: operation {self.full_name!r}: {message}"
        )

    def _validate(self) -> None:
        d = self.data
        for key in d:
            if key not in OP_KEYS and key not in IGNORED_OP_KEYS:
                raise self.error(f"unknown attribute {key!r}", key)
        if "main" in d and "exec" in d:
            raise self.error("give either main or exec, not both", "exec")
        if not any(k in d for k in ("main", "exec", "steps")):
            raise self.error("needs main, exec or steps")
        for key in ("main", "exec", "description", "label"):
            if key in d and not isinstance(d[key], str):
                raise self.error(f"{key} must be a string", key)
        dest = d.get("flags-dest")
        if (
            dest is not None
            and dest not in ("globals", "args")
            and not (
                isinstance(dest, str) and dest.split(":", 1)[0] in ("global", "dict", "config")
            )
        ):
            raise self.error(
                "flags-dest must be globals, args, global:NAME, dict:NAME or config:FILE, "
                f"got {dest!r}",
                "flags-dest",
            )
        if isinstance(dest, str) and ":" in dest and not dest.split(":", 1)[1].strip():
            raise self.error(f"flags-dest {dest!r} needs a name after ':'", "flags-dest")
        if (
            isinstance(dest, str)
            and dest.startswith("config:")
            and not dest.endswith((".yml", ".yaml", ".json"))
        ):
            raise self.error(
                f"flags-dest {dest!r}: a config file must be .yml, .yaml or .json", "flags-dest"
            )
        imp = d.get("flags-import")
        if imp is not None and not (
            imp in ("all", True, False, "no", "yes") or isinstance(imp, list)
        ):
            raise self.error("flags-import must be all, no or a list of flag names", "flags-import")
        if "output-scalars" in d:
            from guild_jupyter.tracking.output_scalars import compile_patterns

            spec = d["output-scalars"]
            try:
                compile_patterns(spec if spec is not None else "no")
            except GuildError as e:
                raise self.error(str(e), "output-scalars") from None
        for key in ("tags",):
            if key in d and not (
                isinstance(d[key], list) and all(isinstance(t, str) for t in d[key])
            ):
                raise self.error("tags must be a list of strings", key)
        if "env" in d and not isinstance(d["env"], dict):
            raise self.error("env must be a map of names to values", "env")
        if "default-max-trials" in d and (
            not isinstance(d["default-max-trials"], int) or d["default-max-trials"] < 1
        ):
            raise self.error("default-max-trials must be a positive integer", "default-max-trials")
        obj = d.get("objective")
        if obj is not None and not (
            isinstance(obj, str)
            or (
                isinstance(obj, dict)
                and len(obj) == 1
                and next(iter(obj)) in ("minimize", "maximize")
                and isinstance(next(iter(obj.values())), str)
            )
        ):
            raise self.error(
                "objective must be a scalar name, '-name', or {minimize|maximize: name}",
                "objective",
            )
        sc = d.get("sourcecode")
        if sc is not None and not isinstance(sc, (list, dict, bool)):
            raise self.error("sourcecode must be a list of rules or a map", "sourcecode")
        flags = d.get("flags") or {}
        if not isinstance(flags, dict):
            raise self.error("flags must be a map of flag names", "flags")
        for name, spec in flags.items():
            if name == "$include":
                continue
            self.flags[str(name)] = self._flag(str(name), spec, flags)
            self.flag_lines[str(name)] = _line(flags, name)

    def _flag(self, name: str, spec: Any, flags: LineMap) -> FlagDef:
        if not isinstance(spec, dict):
            if isinstance(spec, list) and spec:
                # Guild: a list default is a sweep over those values by default; keep the first
                return FlagDef(name, spec[0], extra={"guild_default_list": list(spec)})
            return FlagDef(name, spec)
        for key in spec:
            if key not in FLAG_KEYS:
                raise self.error(f"flag {name!r}: unknown attribute {key!r}", key, spec)
        gtype = spec.get("type")
        if gtype is not None and gtype not in GUILD_TYPES and gtype not in FLAG_TYPES:
            raise self.error(
                f"flag {name!r}: unknown type {gtype!r} (one of {', '.join(sorted(GUILD_TYPES))})",
                "type",
                spec,
            )
        choices_raw = spec.get("choices")
        choices = None
        choice_help: dict[str, str] = {}
        if choices_raw is not None:
            if not isinstance(choices_raw, list) or not choices_raw:
                raise self.error(
                    f"flag {name!r}: choices must be a non-empty list", "choices", spec
                )
            choices = []
            for c in choices_raw:
                if isinstance(c, dict):
                    if "value" not in c:
                        raise self.error(f"flag {name!r}: a choice map needs a value", obj=c)
                    choices.append(c["value"])
                    if c.get("description"):
                        choice_help[repr(c["value"])] = str(c["description"])
                else:
                    choices.append(c)
        default = spec.get("default")
        ftype = GUILD_TYPES.get(gtype, gtype) if gtype is not None else None
        if ftype is None:
            ftype = (
                type_of(default)
                if default is not None
                else (
                    type_of(choices[0])
                    if choices and all(type_of(c) == type_of(choices[0]) for c in choices)
                    else None
                )
            )
        for key in ("min", "max"):
            v = spec.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise self.error(f"flag {name!r}: {key} must be a number", key, spec)
        fd = FlagDef(
            name,
            default,
            type=ftype,
            description=str(spec.get("description") or ""),
            choices=None if spec.get("allow-other") else choices,
            min=spec.get("min"),
            max=spec.get("max"),
            required=bool(spec.get("required", False)),
            extra={
                k: spec[k]
                for k in (
                    "arg-name",
                    "arg-skip",
                    "arg-switch",
                    "env-name",
                    "distribution",
                    "null-label",
                )
                if k in spec
            },
        )
        if choice_help:
            fd.extra["choice_help"] = choice_help
        if choices and spec.get("allow-other"):
            fd.extra["choices"] = choices
        if default is not None:
            try:
                fd.check(default)
            except FlagError as e:
                raise self.error(f"default: {e}", "default", spec) from None
        return fd


class Guildfile:
    def __init__(self, path: Path, data: Any) -> None:
        self.path = path
        self.dir = path.parent
        self.label = path.name
        self.ops: dict[str, OpDef] = {}
        self._read(data)

    def _read(self, data: Any) -> None:
        if data is None:
            return
        if isinstance(data, dict):
            self._read_ops("", data, data)
            return
        if not isinstance(data, list):
            raise GuildfileError(
                f"{self.label}, line 1: expected a map of operations or a list of models"
            )
        configs: dict[str, LineMap] = {}
        for item in data:
            if not isinstance(item, dict):
                raise GuildfileError(
                    f"{self.label}, line {_line(data)}: each top-level item must be a map"
                )
            if "config" in item:
                configs[str(item["config"])] = item
        for item in data:
            if "config" in item:
                continue
            if "model" not in item and "package" not in item:
                raise GuildfileError(
                    f"{self.label}, line {_line(item)}: a top-level item needs model: or config:"
                )
            if "package" in item:
                continue
            model = item.get("model") or ""
            ops = LineMap()
            ops.line, ops.key_lines = _line(item), {}
            defaults: dict = {}
            for base in _as_list(item.get("extends")):
                cfg = configs.get(str(base))
                if cfg is None:
                    raise GuildfileError(
                        f"{self.label}, line {_line(item, 'extends')}: "
                        f"extends unknown config {base!r}"
                    )
                defaults.update(cfg.get("operation-defaults") or {})
                cops = cfg.get("operations") or {}
                ops.update(cops)
                ops.key_lines.update(getattr(cops, "key_lines", {}))
            own = item.get("operations") or {}
            if not isinstance(own, dict):
                raise GuildfileError(
                    f"{self.label}, line {_line(item, 'operations')}: operations must be a map"
                )
            defaults.update(item.get("operation-defaults") or {})
            ops.update(own)
            ops.key_lines.update(getattr(own, "key_lines", {}))
            self._read_ops(str(model), ops, item, defaults)

    def _read_ops(self, model: str, ops: dict, where: Any, defaults: dict | None = None) -> None:
        for name, spec in ops.items():
            if not isinstance(spec, dict):
                raise GuildfileError(
                    f"{self.label}, line {_line(ops, name)}: operation {name!r} must be a map"
                )
            if defaults:
                merged = LineMap({**defaults, **spec})
                merged.line, merged.key_lines = spec.line, {**spec.key_lines}
                spec = merged
            op = OpDef(self, model, str(name), spec)
            if op.full_name in self.ops:
                raise GuildfileError(
                    f"{self.label}, line {op.line}: operation {op.full_name!r} is defined twice"
                )
            self.ops[op.full_name] = op

    def find(self, name: str) -> OpDef:
        if name in self.ops:
            return self.ops[name]
        if ":" not in name:
            hits = [op for op in self.ops.values() if op.name == name]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise GuildError(
                    f"operation {name!r} is ambiguous in {self.path}: "
                    + ", ".join(op.full_name for op in hits)
                )
        known = ", ".join(sorted(self.ops)) or "none"
        raise GuildError(f"no operation {name!r} in {self.path} (operations: {known})")


def _as_list(v: Any) -> list:
    if v is None:
        return []
    return list(v) if isinstance(v, list) else [v]


def load(path: str | os.PathLike[str]) -> Guildfile:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise GuildfileError(f"cannot read {p}: {e.strerror}") from None
    return Guildfile(p.absolute(), load_yaml(text, p.name))
