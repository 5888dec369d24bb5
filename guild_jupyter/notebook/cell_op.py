"""A notebook cell as an operation (``%%guild_run``).

Flags are the cell's top-level literal assignments (as for scripts' ``globals``
flags); a run's values are written into those assignments in its snapshot.

The snapshot (``.run/sourcecode/``) holds ``cell.py`` (the cell as it ran),
``cell.json`` (notebook folder, outputs to save) and the pickled inputs
(``inputs/*.pkl`` with ``inputs.json``; see :mod:`guild_jupyter.notebook.inputs`).
The process is ``<kernel's python> -c <run cell_runner.main> <snapshot>``.

Working directory (a decision, DESIGN "Cell operations"): the process runs in
the run directory, so every file it writes there is an artifact of the run; so
that relative paths to files beside the notebook resolve as in the kernel, the
runner links each entry of the notebook's folder into the run directory before
the cell runs (and removes those links afterwards), and puts the folder first
on ``sys.path`` (modules beside the notebook import as in the kernel). A file
opened for writing through such a link (an existing file of the notebook's
folder) is written in place, as it would be in the kernel.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from guild_jupyter.errors import GuildError
from guild_jupyter.experiment.script_flags import ScriptFlags, apply_globals, global_flags, parse_source
from guild_jupyter.model.flags import FlagDef
from guild_jupyter.model.run import Run, hostname, new_run
from guild_jupyter.model.status import RunStatus
from guild_jupyter.notebook import inputs as inputs_mod
from guild_jupyter.notebook import cell_runner
from guild_jupyter.notebook.cell_runner import save_outputs
from guild_jupyter.orchestration.launch import LaunchSpec, flag_env
from guild_jupyter.orchestration.process_info import self_identity
from guild_jupyter.storage import layout
from guild_jupyter.storage.output import STDERR
from guild_jupyter.storage.pending import PendingRun
from guild_jupyter.tracking import logger
from guild_jupyter.tracking.capture import Capture
from guild_jupyter.tracking.recorder import RunRecorder

if TYPE_CHECKING:
    from guild_jupyter.config import Config
    from guild_jupyter.storage.store import RunStore

CELL_FILE = "cell.py"
CELL_JSON = "cell.json"
OUTPUTS_DIR = "outputs"  # in the run's .run/ folder: <name>.pkl


@dataclass
class CellOperation:
    name: str
    source: str
    flags: ScriptFlags
    notebook_dir: str
    inputs: dict[str, inputs_mod.Input] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    notebook: str | None = None
    kind: str = "cell"

    @classmethod
    def from_cell(cls, source: str, *, name: str, notebook_dir: str | None = None,
                  namespace: Mapping[str, Any] | None = None, outputs: Iterable[str] = (),
                  notebook: str | None = None, capture_inputs: bool = True) -> CellOperation:
        """Detect flags and capture inputs; raises GuildError (nothing recorded) on bad input."""
        flags = detect_cell_flags(source)
        op = cls(name, source, flags, notebook_dir or os.getcwd(), outputs=list(outputs), notebook=notebook)
        if capture_inputs and namespace is not None:
            op.inputs = inputs_mod.capture(source, namespace, exclude=set(flags.defs))
        return op

    def flag_defs(self) -> dict[str, FlagDef]:
        return self.flags.defs

    def run_source(self) -> dict[str, Any]:
        return {"cell": self.source, "notebook": self.notebook, "dir": self.notebook_dir,
                "inputs": {n: i.record() for n, i in self.inputs.items()}, "outputs": self.outputs}

    def prepare(self, run: Run, store: RunStore, config: Config) -> LaunchSpec:
        snapshot = os.path.join(store.meta_dir(run.id), layout.SOURCECODE)
        write_snapshot(snapshot, apply_globals(self.source, self.flags, run.flags), self)
        argv = cell_runner.launch_argv(snapshot, self.notebook_dir, self.outputs)
        return LaunchSpec(argv=argv, env=flag_env(run.flags), project_dir=self.notebook_dir)

    def help_text(self) -> str:
        if not self.flags.defs:
            return f"{self.name} has no flags."
        return "Flags (top-level assignments):\n" + "\n".join(
            f"  {n} = {d.default!r}  ({d.type})" for n, d in self.flags.defs.items())


@functools.lru_cache(maxsize=64)
def detect_cell_flags(source: str) -> ScriptFlags:
    """The cell's literal-assignment flags (cached: a cell is often run many times; never mutated)."""
    return global_flags(parse_source(source, "<cell>"), source)


def write_snapshot(snapshot: str, source: str, op: CellOperation) -> None:
    """``cell.py``, ``cell.json`` and the inputs of a subprocess run (an inline run keeps
    its code, folder, outputs and notebook in the run record's ``source``)."""
    os.makedirs(snapshot, exist_ok=True)
    with open(os.path.join(snapshot, CELL_FILE), "w", encoding="utf-8") as f:
        f.write(source)
    with open(os.path.join(snapshot, CELL_JSON), "w", encoding="utf-8") as f:  # a new folder: no reader yet
        json.dump({"notebook_dir": op.notebook_dir, "outputs": op.outputs, "notebook": op.notebook}, f)
    if op.inputs:
        inputs_mod.save(op.inputs, snapshot)


@functools.lru_cache(maxsize=256)  # pure, and a cell is often run many times
def cell_op_name(source: str, notebook: str | None, cell_id: str | None = None) -> str:
    """``<notebook stem>:cell-<id>``: the front end's cell id when known, else a hash of
    the cell with its flag values blanked (so changing a flag keeps the name)."""
    stem = Path(notebook).stem if notebook else "notebook"
    if cell_id:
        return f"{stem}:cell-{cell_id[:8]}"
    try:
        flags = detect_cell_flags(source)
        blank = apply_globals(source, flags, {n: None for n in flags.defs})
    except GuildError:
        blank = source
    return f"{stem}:cell-{hashlib.sha1(blank.strip().encode()).hexdigest()[:8]}"


def outputs_path(store: RunStore, run_id: str, name: str) -> str:
    return os.path.join(store.meta_dir(run_id), OUTPUTS_DIR, f"{name}.pkl")


def needs_ipython_transform(cell: str) -> bool:
    """Whether IPython's input transforms could change the cell (magics, ``!``, ``?``,
    prompts, a leading indent); most cells are plain Python and skip them."""
    if cell[:1] in (" ", "\t") or any(c in cell for c in "%!?"):
        return True
    return any(line.startswith((">>>", "...", "In [", ",", ";", "/")) for line in cell.splitlines())


def run_inline(op: CellOperation, flags: Mapping[str, Any], *, store: RunStore, namespace: dict[str, Any],
               label: str = "", tags: Iterable[str] = ()) -> Run:
    """Run the cell in this process (the kernel), recorded as a run of kind ``inline``.

    The cell runs in the kernel's namespace (what it defines stays there, as in
    a plain cell); output is teed into the run, ``log()`` and printed scalars
    work; an interrupt ends it ``cancelled`` and is raised again; an error ends
    it ``failed`` and is raised again.
    """
    pid, pid_started = self_identity()
    op.inputs = {}
    source = apply_globals(op.source, op.flags, dict(flags))
    # the cell as it ran lives in the record (as a function run's code does), and the
    # record is written behind (storage.pending): both keep an inline run within 2 ms
    run = new_run(op.name, kind="inline", flags=dict(flags), label=label, tags=tags,
                  source={**op.run_source(), "code": source},
                  running={"pid": pid, "pid_started": pid_started, "host": hostname()})
    pending = PendingRun(store, run)
    recorder = RunRecorder(store, run.id, pending=pending)
    previous = logger.activate(recorder)
    status, reason, error = RunStatus.COMPLETED, None, None
    try:
        code = _compiled(source, f"<{op.name}>")
        with Capture(recorder.on_line):
            exec(code, namespace)
        if op.outputs:
            missing = save_outputs(pending.materialize(), namespace, op.outputs)
            if missing:
                raise GuildError(f"--outputs: the cell did not define {', '.join(missing)}")
    except BaseException as e:  # recorded, then raised again
        error = e
        status = RunStatus.CANCELLED if isinstance(e, KeyboardInterrupt) else RunStatus.FAILED
        reason = "interrupted" if isinstance(e, KeyboardInterrupt) else f"{type(e).__name__}: {e}".splitlines()[0]
        t = time.time()
        for line in "".join(traceback.format_exception(e)).splitlines():
            recorder.on_line(line, STDERR, t)
    finally:
        logger.activate(previous)
    # one write of the ended run with its output and the points still queued (unless a
    # long cell was written already: then the points are flushed, then the status set)
    final = pending.finish(status, recorder.made_scalar_writer(), exit_code=0 if error is None else 1,
                           reason=reason)
    recorder.close()
    if error is not None:
        raise error
    return final


@functools.lru_cache(maxsize=64)  # a code object is immutable, and a cell is often rerun
def _compiled(source: str, filename: str) -> Any:
    return compile(source, filename, "exec")


def load_output(store: RunStore, ref: str | int, name: str, *, trust: bool = False) -> Any:
    """An ``--outputs`` value of a run of this store (pickles from imported runs need ``trust``)."""
    import pickle

    run = store.resolve(ref, deleted=None)
    if (run.kind.startswith("guild") or run.source.get("imported")) and not trust:
        raise GuildError(f"run {run.short_id} was imported: loading its pickles needs --trust")
    path = outputs_path(store, run.id, name)
    if not os.path.exists(path) and not run.status.terminal:
        raise GuildError(f"run {run.short_id} is still {run.status.value}: its outputs are saved when it ends")
    if not os.path.exists(path):
        saved = sorted(p[:-4] for p in os.listdir(os.path.dirname(path))) if os.path.isdir(os.path.dirname(path)) else []
        hint = f" (saved: {', '.join(saved)})" if saved else " (it saved no outputs; use --outputs NAME)"
        raise GuildError(f"run {run.short_id} has no output {name!r}{hint}")
    with open(path, "rb") as f:
        return pickle.load(f)


def cell_json(snapshot: str, run: Run | None = None) -> dict[str, Any]:
    """The snapshot's ``cell.json``; for an inline run, the same facts from its record."""
    try:
        with open(os.path.join(snapshot, CELL_JSON), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        if run is None:
            raise
        return {"notebook_dir": run.source.get("dir"), "outputs": run.source.get("outputs") or [],
                "notebook": run.source.get("notebook")}
