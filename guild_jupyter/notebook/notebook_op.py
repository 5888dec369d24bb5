"""A whole notebook as an operation: ``%guild run other.ipynb lr=0.1``, ``guild-jupyter run other.ipynb``.

Flags are the top-level literal assignments of its code cells (the first cell
that assigns a name owns the flag; cells with IPython syntax that is not plain
Python give no flags). The snapshot is the notebook folder's text files with the
notebook rewritten with the run's flag values; the run's process is
``python -m guild_jupyter.notebook.notebook_op SNAPSHOT.ipynb NOTEBOOK_DIR``,
which executes it with nbclient in a fresh kernel (working directory: the run
directory, with the notebook folder's entries linked in as for cells), echoes
the cells' stream output as it arrives (so printed ``key: value`` lines become
scalars, as for scripts; ``Out[n]`` values are never parsed: they are not
printed output), and saves the executed notebook into the run directory.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guild_jupyter.errors import GuildError
from guild_jupyter.experiment.script_flags import ScriptFlags, apply_globals, global_flags
from guild_jupyter.model.flags import FlagDef
from guild_jupyter.model.run import Run
from guild_jupyter.orchestration.launch import LaunchSpec, flag_env
from guild_jupyter.storage import layout

if TYPE_CHECKING:
    from guild_jupyter.config import Config
    from guild_jupyter.storage.store import RunStore

CELL_TIMEOUT = None  # no per-cell limit: a run ends when it ends (or is stopped)


@dataclass
class NotebookOperation:
    path: Path
    name: str
    nb: dict[str, Any]
    cell_flags: dict[int, ScriptFlags] = field(default_factory=dict)  # cell index -> flags it owns
    kind: str = "notebook"
    notebook_dir: str | None = None  # the folder linked into the run directory (default: the notebook's)

    @classmethod
    def load(cls, target: str, cwd: str | Path | None = None) -> NotebookOperation:
        base = Path(cwd) if cwd else Path.cwd()
        path = (base / target).resolve()
        if not path.is_file():
            raise GuildError(f"no such notebook: {target}")
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
            cells = nb["cells"]
        except (ValueError, KeyError, TypeError):
            raise GuildError(f"{target} is not a Jupyter notebook (.ipynb JSON)") from None
        op = cls(path, target, nb)
        seen: set[str] = set()
        for i, cell in enumerate(cells):
            if cell.get("cell_type") != "code":
                continue
            source = _text(cell.get("source", ""))
            try:
                import ast

                flags = global_flags(ast.parse(source), source)
            except SyntaxError:
                continue  # magics, shell escapes: no flags from this cell
            owned = ScriptFlags("globals")
            owned.defs = {n: d for n, d in flags.defs.items() if n not in seen}
            owned.spans = {n: s for n, s in flags.spans.items() if n not in seen}
            if owned.defs:
                op.cell_flags[i] = owned
                seen.update(owned.defs)
        return op

    def flag_defs(self) -> dict[str, FlagDef]:
        out: dict[str, FlagDef] = {}
        for flags in self.cell_flags.values():
            out.update(flags.defs)
        return out

    def run_source(self) -> dict[str, str]:
        return {"notebook": str(self.path), "dir": self.notebook_dir or str(self.path.parent)}

    def with_flags(self, values: dict[str, Any]) -> dict[str, Any]:
        nb = json.loads(json.dumps(self.nb))
        for i, flags in self.cell_flags.items():
            cell = nb["cells"][i]
            cell["source"] = apply_globals(_text(cell["source"]), flags, values)
        return nb

    def prepare(self, run: Run, store: RunStore, config: Config) -> LaunchSpec:
        from guild_jupyter.orchestration.sourcecode import SourceSpec, copy_snapshot

        snapshot = Path(store.meta_dir(run.id)) / layout.SOURCECODE
        spec = SourceSpec(self.path.parent, max_file_size=config.sourcecode_max_file_size,
                          max_files=config.sourcecode_max_files, always=[self.path.name])
        copy_snapshot(spec, snapshot, skip=[store.home])
        target = snapshot / self.path.name
        target.write_text(json.dumps(self.with_flags(run.flags), indent=1), encoding="utf-8")
        folder = self.notebook_dir or str(self.path.parent)
        argv = [sys.executable, "-m", "guild_jupyter.notebook.notebook_op", str(target), folder]
        return LaunchSpec(argv=argv, env=flag_env(run.flags), project_dir=folder)

    def help_text(self) -> str:
        defs = self.flag_defs()
        lines = [f"Usage: guild-jupyter run {self.name} [FLAG=VALUE ...]", ""]
        if not defs:
            lines.append(f"{self.name} has no flags.")
        else:
            lines.append("Flags (top-level assignments in its cells):")
            lines += [f"  {n} = {d.default!r}  ({d.type})" for n, d in defs.items()]
        return "\n".join(lines)


def _text(source: Any) -> str:
    return "".join(source) if isinstance(source, list) else str(source)


def main(argv: list[str]) -> int:
    """In the run's process: execute the snapshot notebook, echoing its output."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from guild_jupyter.notebook.cell_runner import link_notebook_dir, unlink_all

    nb_path, notebook_dir = argv[0], argv[1]
    run_dir = os.environ.get("RUN_DIR") or os.getcwd()
    nb = nbformat.read(nb_path, as_version=4)
    name = os.path.basename(nb_path)
    links = link_notebook_dir(notebook_dir, run_dir,
                              skip=(os.environ.get("GUILD_JUPYTER_HOME", ""), os.path.join(notebook_dir, name)))

    class EchoingClient(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):  # type: ignore[override]
            content = msg.get("content", {})
            if msg.get("msg_type") == "stream":
                stream = sys.stderr if content.get("name") == "stderr" else sys.stdout
                stream.write(content.get("text", ""))
                stream.flush()
            elif msg.get("msg_type") == "error":
                sys.stderr.write("\n".join(content.get("traceback", [])) + "\n")
                sys.stderr.flush()
            return super().output(outs, msg, display_id, cell_index)

    kernel = (nb.metadata.get("kernelspec") or {}).get("name") or "python3"
    client = EchoingClient(nb, timeout=CELL_TIMEOUT, kernel_name=kernel if kernel == "python3" else "python3",
                           resources={"metadata": {"path": run_dir}},
                           extra_arguments=["--log-level=ERROR"])  # no kernel start-up chatter in the output
    status = 0
    try:
        client.execute()
    except CellExecutionError as e:
        first = str(e).strip().splitlines()
        print(f"guild-jupyter: a cell failed: {first[-1] if first else e}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        status = 130
    finally:
        unlink_all(links)
        nbformat.write(nb, os.path.join(run_dir, name))
        sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
