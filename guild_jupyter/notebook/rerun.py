"""``%guild rerun RUN [flag=value ...] [--check]``: a new run from an old run's record.

The new run is built from what the old run recorded, never from the current
notebook or files: its snapshot (the cell, notebook or script as it ran, whose
literal flags already hold the old values), its pickled inputs, its flags, with
any overrides on top. Its record says ``rerun_of``.

``--check`` compares the last value of each scalar of the two runs (keys of
either run, resource samples ``sys/*`` left out; equal within a relative tolerance of 1e-9, NaN equals NaN) and
reports what differs: this is how a user shows a result reproduces (a cell
using unseeded randomness does not).

Runs that ran ``--inline`` rerun inline when a kernel namespace is given (they
read the kernel's variables, which were not captured), else in a subprocess.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from guild_jupyter.errors import GuildError
from guild_jupyter.model.run import Run
from guild_jupyter.storage import layout
from guild_jupyter.storage.store import RunStore

REL_TOL = 1e-9


class _Rerun:
    """An operation that delegates to the rebuilt one and records where it came from."""

    def __init__(self, op: Any, original: Run) -> None:
        self._op = op
        self._original = original

    def __getattr__(self, name: str) -> Any:
        return getattr(self._op, name)

    def run_source(self) -> dict[str, Any]:
        return {**self._op.run_source(), "rerun_of": self._original.id}


def rebuild_operation(store: RunStore, run: Run) -> Any:
    snapshot = os.path.join(store.meta_dir(run.id), layout.SOURCECODE)
    inline_code = run.source.get("code") if run.kind == "inline" else None
    if not os.path.isdir(snapshot) and inline_code is None:
        raise GuildError(f"run {run.short_id} has no snapshot to rerun from")
    if run.kind in ("cell", "inline"):
        from guild_jupyter.experiment.script_flags import global_flags, parse_source
        from guild_jupyter.notebook import inputs as inputs_mod
        from guild_jupyter.notebook.cell_op import CELL_FILE, CellOperation, cell_json

        if inline_code is not None:
            source = inline_code
        else:
            with open(os.path.join(snapshot, CELL_FILE), encoding="utf-8") as f:
                source = f.read()
        info = cell_json(snapshot, run)
        flags = global_flags(parse_source(source, "<cell>"), source)
        return CellOperation(run.op, source, flags, info.get("notebook_dir") or os.getcwd(),
                             inputs=inputs_mod.load_saved(snapshot), outputs=list(info.get("outputs") or []),
                             notebook=info.get("notebook"))
    if run.kind == "notebook":
        from guild_jupyter.notebook.notebook_op import NotebookOperation

        name = os.path.basename(run.source.get("notebook") or run.op)
        op = NotebookOperation.load(os.path.join(snapshot, name))
        op.name, op.notebook_dir = run.op, run.source.get("dir")
        return op
    if run.kind == "script":
        from guild_jupyter.experiment.script_op import ScriptOperation

        name = os.path.basename(run.source.get("script") or run.op)
        op = ScriptOperation.load(os.path.join(snapshot, name))
        op.name = run.op
        return op
    raise GuildError(f"run {run.short_id} is a {run.kind} run: rerun supports cell, notebook and script runs")


def rerun(ref: str | int, overrides: Mapping[str, Any] | None = None, *, store: RunStore, check: bool = False,
          background: bool = False, echo: Callable[[str], None] | None = None, label: str | None = None,
          namespace: dict[str, Any] | None = None) -> Run:
    """Start the new run; with ``check``, attach a :class:`CheckReport` as ``run.check``."""
    from guild_jupyter.model.flags import resolve_flags
    from guild_jupyter.notebook.submission import start

    if check and background:
        raise GuildError("--check needs the new run to finish: drop --background")
    old = store.resolve(ref, deleted=None)
    op = rebuild_operation(store, old)
    wrapped = _Rerun(op, old)
    label = old.label if label is None else label
    if old.kind == "inline" and namespace is not None:
        from guild_jupyter.notebook.cell_op import run_inline

        resolved = resolve_flags(op.flag_defs(), dict(overrides or {}), op=op.name)
        op.run_source = wrapped.run_source  # type: ignore[method-assign]
        new = run_inline(op, resolved, store=store, namespace=namespace, label=label, tags=old.tags)
    else:
        # through this kernel's Jupyter server when one answers
        new = start(wrapped, overrides, store=store, label=label, tags=old.tags, background=background, echo=echo)
    if check:
        new.check = compare_scalars(store, old, new)  # type: ignore[attr-defined]
    return new


def last_scalars(store: RunStore, run_id: str) -> dict[str, float]:
    """Last value of each scalar the run's code recorded (resource samples, ``sys/*``, are not results)."""
    last: dict[str, tuple[int, float, float]] = {}
    for key, step, value, t in store.iter_run_points(run_id):
        if key.startswith("sys/"):
            continue
        prev = last.get(key)
        if prev is None or (step, t) >= (prev[0], prev[2]):
            last[key] = (step, value, t)
    return {k: v[1] for k, v in last.items()}


@dataclass
class CheckReport:
    original: str
    rerun: str
    status: str
    rows: list[tuple[str, float | None, float | None, bool]] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return self.status == "completed" and bool(self.rows) and all(r[3] for r in self.rows)

    @property
    def differences(self) -> list[tuple[str, float | None, float | None, bool]]:
        return [r for r in self.rows if not r[3]]

    def __str__(self) -> str:
        head = f"rerun {self.rerun[:8]} of {self.original[:8]}"
        if self.status != "completed":
            return f"{head}: the rerun is {self.status}; nothing to compare"
        if not self.rows:
            return f"{head}: neither run recorded scalars; nothing to compare"
        if self.matches:
            return f"{head}: reproduces: {len(self.rows)} scalar(s) match ({', '.join(r[0] for r in self.rows)})"
        lines = [f"{head}: differs in {len(self.differences)} of {len(self.rows)} scalar(s):"]
        for key, a, b, _ in self.differences:
            lines.append(f"  {key}: {_fmt(a)} -> {_fmt(b)}")
        return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "(none)" if v is None else repr(v)


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=REL_TOL)


def compare_scalars(store: RunStore, old: Run, new: Run) -> CheckReport:
    a, b = last_scalars(store, old.id), last_scalars(store, new.id)
    rows = [(k, a.get(k), b.get(k), _same(a.get(k), b.get(k))) for k in sorted(set(a) | set(b))]
    return CheckReport(old.id, new.id, new.status.value, rows)
