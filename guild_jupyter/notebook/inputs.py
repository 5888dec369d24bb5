"""Free variables of a cell, captured from the kernel by value as run inputs.

A name is an input when the cell reads it before binding it at top level (in
source order; reads inside functions, lambdas and comprehensions count at the
statement that holds them, and names local to those scopes are not inputs), it
is not a builtin, and it exists in the kernel's namespace.

- Plain literal data (numbers, strings, small lists/dicts of them) is also
  written as its ``repr`` and read back with ``eval`` without builtins, so the
  run need not import pickle; its hash is still that of the pickle.
- Modules are recorded by name and imported again in the run (never pickled).
- Everything else is pickled with cloudpickle (functions and classes defined in
  the notebook go by value); the sha256 of the pickle is recorded in the run as
  the input's content hash, so two runs can be compared input by input.
- A value that cannot be pickled is refused before any run is created, with an
  error naming it and suggesting ``--inline`` or defining it in the cell.

IPython's own names (``_``, ``_i3``, ``In``, ``Out``, ``get_ipython``, ``exit``...)
are never inputs.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import json
import os
import symtable
import types
from dataclasses import dataclass, field
from typing import Any, Mapping

from guild_jupyter.errors import GuildError

MANIFEST = "inputs.json"
INPUTS_DIR = "inputs"
_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


@dataclass
class Input:
    name: str
    kind: str  # "pickle" or "module"
    hash: str | None = None
    module: str | None = None
    data: bytes | None = field(default=None, repr=False)
    literal: str | None = field(default=None, repr=False)  # repr() of plain literal data

    def record(self) -> dict[str, Any]:
        return {"kind": self.kind, "hash": self.hash, "module": self.module}


def free_names(source: str, filename: str = "<cell>") -> list[str]:
    """Names the cell reads before it binds them (in order of first use)."""
    try:
        tree = ast.parse(source, filename=filename)
        table = symtable.symtable(source, filename, "exec")
    except SyntaxError as e:
        raise GuildError(f"{filename}, line {e.lineno}: syntax error: {e.msg}") from None
    global_refs = _global_refs(table)
    out: list[str] = []
    bound: set[str] = set()
    for stmt in tree.body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                name = node.id
                if name in global_refs and name not in bound and name not in out:
                    out.append(name)
        bound.update(_top_bindings(stmt))
    return [n for n in out if not hasattr(builtins, n) and n not in _IPYTHON_NAMES and not _is_history(n)]


def _global_refs(table: symtable.SymbolTable) -> set[str]:
    """Names referenced as globals anywhere in the cell (module scope or nested scopes)."""
    refs: set[str] = set()
    stack = [table]
    while stack:
        t = stack.pop()
        for sym in t.get_symbols():
            if t.get_type() == "module":
                if sym.is_referenced():
                    refs.add(sym.get_name())
            elif sym.is_referenced() and sym.is_global():
                refs.add(sym.get_name())
        stack.extend(t.get_children())
    return refs


def _top_bindings(stmt: ast.stmt) -> set[str]:
    names: set[str] = set()
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in stmt.names}
    for node in ast.walk(stmt):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
    return names


def _is_history(name: str) -> bool:
    return name.strip("_") == "" or (name.startswith("_i") and name[2:].isdigit()) or \
        (name.startswith("_") and name[1:].isdigit()) or name in ("_i", "_ii", "_iii", "_dh", "_oh", "_ih")


def capture(source: str, namespace: Mapping[str, Any], *, exclude: set[str] | frozenset[str] = frozenset(),
            filename: str = "<cell>") -> dict[str, Input]:
    """Pickle the cell's free variables found in ``namespace``; refuse what cannot be pickled."""
    names = [n for n in free_names(source, filename) if n in namespace and n not in exclude]
    if not names:
        return {}
    import cloudpickle

    found: dict[str, Input] = {}
    for name in names:
        value = namespace[name]
        if isinstance(value, types.ModuleType):
            found[name] = Input(name, "module", module=value.__name__)
            continue
        try:
            data = cloudpickle.dumps(value, protocol=5)
        except Exception as e:  # any pickling failure is the user's value, named in one line
            detail = f"{type(e).__name__}: {e}".splitlines()[0]
            raise GuildError(f"input {name!r} ({type(value).__name__}) cannot be pickled ({detail}); "
                             f"use --inline, or define {name} in the cell") from None
        found[name] = Input(name, "pickle", hash=hashlib.sha256(data).hexdigest(), data=data,
                            literal=_literal_text(value))
    return found


_LITERAL_TYPES = (int, float, str, bool, type(None))


def _literal_text(value: Any, depth: int = 0) -> str | None:
    """``repr(value)`` when it is plain literal data that ``repr`` round-trips (small
    numbers, strings, lists/dicts/tuples of them): the run reads it back without
    importing pickle (~10 ms of a cold process). None otherwise."""
    def plain(v: Any, d: int) -> bool:
        if d > 3:
            return False
        if type(v) in _LITERAL_TYPES:
            return True
        if type(v) in (list, tuple):
            return len(v) <= 1000 and all(plain(x, d + 1) for x in v)
        if type(v) is dict:
            return len(v) <= 1000 and all(plain(k, d + 1) and plain(x, d + 1) for k, x in v.items())
        return False

    if not plain(value, depth):
        return None
    text = repr(value)
    try:
        same = eval(text, {"__builtins__": {}}) == value  # noqa: S307 (our own repr of literals)
    except Exception:
        return None
    return text if same and len(text) <= 100_000 else None


def save(inputs: Mapping[str, Input], snapshot_dir: str) -> None:
    """Write the pickles and the manifest into the run's snapshot."""
    if inputs:
        os.makedirs(os.path.join(snapshot_dir, INPUTS_DIR), exist_ok=True)
    for inp in inputs.values():
        if inp.literal is not None:
            with open(os.path.join(snapshot_dir, INPUTS_DIR, f"{inp.name}.lit"), "w", encoding="utf-8") as f:
                f.write(inp.literal)
        elif inp.data is not None:
            with open(os.path.join(snapshot_dir, INPUTS_DIR, f"{inp.name}.pkl"), "wb") as f:
                f.write(inp.data)
        elif inp.module:
            with open(os.path.join(snapshot_dir, INPUTS_DIR, f"{inp.name}.module"), "w", encoding="utf-8") as f:
                f.write(inp.module)
    with open(os.path.join(snapshot_dir, MANIFEST), "w", encoding="utf-8") as f:
        json.dump({n: i.record() for n, i in inputs.items()}, f, sort_keys=True)


def load_saved(snapshot_dir: str) -> dict[str, Input]:
    """The inputs of an earlier run's snapshot (for reruns), with their bytes."""
    try:
        with open(os.path.join(snapshot_dir, MANIFEST), encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        return {}
    out = {}
    for name, rec in manifest.items():
        data = None
        literal = None
        if rec["kind"] == "pickle":
            lit = os.path.join(snapshot_dir, INPUTS_DIR, f"{name}.lit")
            if os.path.exists(lit):
                with open(lit, encoding="utf-8") as f:
                    literal = f.read()
            else:
                with open(os.path.join(snapshot_dir, INPUTS_DIR, f"{name}.pkl"), "rb") as f:
                    data = f.read()
        out[name] = Input(name, rec["kind"], hash=rec.get("hash"), module=rec.get("module"), data=data,
                          literal=literal)
    return out


def restore(snapshot_dir: str, namespace: dict[str, Any]) -> None:
    """In the run's process: put the inputs into the cell's namespace."""
    from guild_jupyter.notebook.cell_runner import restore_inputs

    restore_inputs(snapshot_dir, namespace)
