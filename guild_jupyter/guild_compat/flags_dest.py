"""How flag values reach a guildfile operation's process.

``flags-dest``: ``globals`` (the module's top-level assignments, rewritten by
:func:`~guild_jupyter.experiment.script_flags.apply_globals`), ``args``
(``--name value`` with ``arg-name``, ``arg-skip``, ``arg-switch``: :func:`flag_args`),
``global:NAME``/``dict:NAME`` (a top-level ``NAME = {...}`` updated in place:
:func:`dict_literal`, :func:`apply_dict`), ``config:FILE`` (a YAML/JSON file written
into the run directory: :func:`read_config`, :func:`write_config`). For ``exec``,
:func:`exec_argv` builds the argv from the command (``${flag_args}``, ``${NAME}``).
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

from guild_jupyter.errors import GuildError
from guild_jupyter.experiment.script_flags import literal
from guild_jupyter.model.flags import FlagDef

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")


def encode_value(value: Any) -> str:
    """A flag value as Guild writes it on a command line (bools as yes/no... Guild 0.9
    writes ``True``/``False`` for globals but args get the YAML-ish text)."""
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(encode_value(v) for v in value)
    return str(value)


def _dict_assign(source: str, name: str, opdef: Any) -> ast.Assign:
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return node
    raise opdef.error(
        f"flags-dest {opdef.get('flags-dest')!r}: "
        f"the main module has no top-level {name} = {{...}}",
        "flags-dest",
    )


def dict_literal(source: str, name: str, opdef: Any) -> dict[str, Any]:
    """The literal entries of the module's top-level ``NAME = {...}``."""
    node = _dict_assign(source, name, opdef)
    out: dict[str, Any] = {}
    if isinstance(node.value, ast.Dict):
        for k, v in zip(node.value.keys, node.value.values, strict=True):
            if isinstance(k, ast.Constant) and isinstance(k.value, str):
                ok, value = literal(v)
                if ok:
                    out[k.value] = value
    return out


def apply_dict(source: str, name: str, values: dict[str, Any], opdef: Any) -> str:
    """The source with ``NAME.update({...})`` right after the dict's assignment, on its
    last line (line numbers in tracebacks stay those of the user's file)."""
    node = _dict_assign(source, name, opdef)
    lines = source.splitlines(keepends=True)
    i = node.end_lineno - 1
    line = lines[i]
    body, nl = (line[:-1], "\n") if line.endswith("\n") else (line, "")
    col = len(body.encode("utf-8")[: node.end_col_offset].decode("utf-8", "replace"))
    lines[i] = body[:col] + f"; {name}.update({values!r})" + body[col:] + nl
    return "".join(lines)


def flag_args(defs: dict[str, FlagDef], values: dict[str, Any]) -> list[str]:
    """``--name value`` arguments, with ``arg-name``/``arg-skip``/``arg-switch``."""
    argv: list[str] = []
    for name, value in values.items():
        d = defs.get(name)
        extra = d.extra if d else {}
        if extra.get("arg-skip"):
            continue
        option = "--" + str(extra.get("arg-name", name))
        if "arg-switch" in extra:
            if value == extra["arg-switch"]:
                argv.append(option)
            continue
        if value is None:
            continue
        if isinstance(value, list):
            argv.append(option)
            argv.extend(encode_value(v) for v in value)
        else:
            argv.extend([option, encode_value(value)])
    return argv


def exec_argv(
    opdef: Any,
    project_dir: Path,
    defs: dict[str, FlagDef],
    values: dict[str, Any],
    snapshot: Path,
) -> list[str]:
    """The argv of ``exec: COMMAND``, split with :mod:`shlex` (never a shell)."""
    tokens = shlex.split(opdef.get("exec"))
    argv: list[str] = []
    known = {"project_dir": str(project_dir), "sourcecode_dir": str(snapshot)}
    for i, tok in enumerate(tokens):
        if tok == "${flag_args}":
            argv.extend(flag_args(defs, values))
            continue
        if i == 0 and tok in ("python", "python3"):
            argv.append(sys.executable)
            continue

        def sub(m: re.Match[str]) -> str:
            ref = m.group(1)
            if ref in values:
                return encode_value(values[ref])
            if ref in known:
                return known[ref]
            raise opdef.error(f"exec refers to unknown flag ${{{ref}}}", "exec")

        if "${" not in tok and not tok.startswith("-") and (snapshot / tok).is_file():
            # Guild runs exec from a run directory holding the source code; here the
            # code is in the snapshot: a literal path to one of its files points there
            argv.append(str(snapshot / tok))
            continue
        argv.append(_REF.sub(sub, tok))
    return argv


def read_config(root: Path, name: str) -> dict[str, Any]:
    """The map in the ``config:FILE`` file under ``root`` ({} if none)."""
    path = root / name
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise GuildError(f"{name}: cannot read the config file: {e}") from None
    return data if isinstance(data, dict) else {}


def write_config(root: Path, name: str, values: dict[str, Any], run_dir: Path) -> None:
    """The config file from ``root`` with ``values`` merged in, written into ``run_dir``."""
    data = read_config(root, name)
    data.update(values)
    target = run_dir / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if name.endswith(".json"):
        target.write_text(json.dumps(data, indent=2), encoding="utf-8")
    else:
        target.write_text(yaml.safe_dump(data, default_flow_style=False), encoding="utf-8")
