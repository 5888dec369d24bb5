"""Flags of a Python script, found by reading its code (never by running it).

Two styles, as Guild detects them:
- ``globals``: top-level assignments of literals (``lr = 0.1``); a run gets its
  values written into those assignments.
- ``args``: ``argparse`` ``add_argument("--lr", type=float, default=0.1)``
  calls; a run gets ``--lr 0.1`` on its command line.
"""

from __future__ import annotations

import ast
from typing import Any

from guild_jupyter.errors import GuildError
from guild_jupyter.model.flags import FlagDef, FlagValue

_TYPES = {"int": "int", "float": "float", "str": "str", "bool": "bool"}


class ScriptFlags:
    def __init__(self, dest: str) -> None:
        self.dest = dest  # "globals" or "args"
        self.defs: dict[str, FlagDef] = {}
        # for globals: flag -> (start offset, end offset) of the value in the source text
        self.spans: dict[str, tuple[int, int]] = {}
        # for args: flag -> option string and action
        self.options: dict[str, tuple[str, str]] = {}


def parse_source(source: str, filename: str) -> ast.Module:
    try:
        return ast.parse(source, filename=filename)
    except SyntaxError as e:
        raise GuildError(f"{filename}, line {e.lineno}: syntax error: {e.msg}") from None


def literal(node: ast.AST) -> tuple[bool, Any]:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None
    if isinstance(value, tuple):
        value = list(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return True, value
    if isinstance(value, list) and all(
        v is None or isinstance(v, (bool, int, float, str)) for v in value
    ):
        return True, value
    return False, None


def detect_flags(source: str, filename: str = "<script>") -> ScriptFlags:
    tree = parse_source(source, filename)
    args = _argparse_flags(tree)
    if args.defs:
        return args
    return global_flags(tree, source)


def global_flags(tree: ast.Module, source: str) -> ScriptFlags:
    found = ScriptFlags("globals")
    offsets = _line_offsets(source)
    for node in tree.body:
        target, value_node = None, None
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            target, value_node = node.targets[0].id, node.value
        elif (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.value is not None
        ):
            target, value_node = node.target.id, node.value
        if target is None or target.startswith("_") or target in found.defs:
            continue
        ok, value = literal(value_node)
        if not ok:
            continue
        found.defs[target] = FlagDef(target, value)
        found.spans[target] = (
            _offset(offsets, source, value_node.lineno, value_node.col_offset),
            _offset(offsets, source, value_node.end_lineno, value_node.end_col_offset),
        )
    return found


def apply_globals(source: str, flags: ScriptFlags, values: dict[str, FlagValue]) -> str:
    """The source with each flag's literal replaced by its run value."""
    edits = sorted(
        ((flags.spans[k], v) for k, v in values.items() if k in flags.spans), reverse=True
    )
    out = source
    for (start, end), value in edits:
        out = out[:start] + repr(value) + out[end:]
    return out


def _line_offsets(source: str) -> list[int]:
    offsets, pos = [0], 0
    for line in source.splitlines(keepends=True):
        pos += len(line)
        offsets.append(pos)
    return offsets


def _offset(offsets: list[int], source: str, lineno: int, col_bytes: int) -> int:
    start = offsets[lineno - 1]
    line = source[start : offsets[lineno] if lineno < len(offsets) else len(source)]
    return start + len(line.encode("utf-8")[:col_bytes].decode("utf-8", "ignore"))


def _argparse_flags(tree: ast.Module) -> ScriptFlags:
    found = ScriptFlags("args")
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_argument"
        ):
            continue
        opts = [
            a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
        ]
        long = [o for o in opts if o.startswith("--")]
        if not long:
            continue
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        name = _const(kw.get("dest")) or long[0][2:].replace("-", "_")
        action = _const(kw.get("action")) or "store"
        if action in ("store_true", "store_false"):
            default = action == "store_false" if "default" not in kw else _const(kw["default"])
            flag = FlagDef(name, bool(default), "bool")
        elif action == "store":
            ok, default = literal(kw["default"]) if "default" in kw else (True, None)
            if not ok:
                default = None
            type_name = kw["type"].id if isinstance(kw.get("type"), ast.Name) else None
            flag_type = _TYPES.get(type_name or "")
            choices = None
            if "choices" in kw:
                okc, choices = literal(kw["choices"])
                choices = choices if okc else None
            flag = FlagDef(
                name,
                default,
                flag_type,
                choices=choices,
                required=bool(_const(kw.get("required"))),
                description=_const(kw.get("help")) or "",
            )
            if flag.type is None and default is not None:
                from guild_jupyter.model.flags import type_of

                flag.type = type_of(default)
        else:
            continue
        found.defs[name] = flag
        found.options[name] = (long[0], action)
    return found


def _const(node: ast.AST | None) -> Any:
    return node.value if isinstance(node, ast.Constant) else None


def argv_for(flags: ScriptFlags, values: dict[str, FlagValue]) -> list[str]:
    """Command-line arguments for ``args``-style flags (never through a shell)."""
    argv: list[str] = []
    for name, value in values.items():
        option, action = flags.options.get(name, (f"--{name}", "store"))
        if action == "store_true":
            if value:
                argv.append(option)
        elif action == "store_false":
            if not value:
                argv.append(option)
        elif value is not None:
            if isinstance(value, list):
                argv.append(option)
                argv.extend(str(v) for v in value)
            else:
                argv.extend([option, str(value)])
    return argv
