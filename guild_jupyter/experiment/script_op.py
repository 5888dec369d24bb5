"""Script operations: a Python file whose flags are found in its code.

The snapshot holds the script as it ran (flag values written into its
top-level assignments for ``globals`` flags) and the text files beside it;
the process runs that copy, with the run directory as working directory.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from guild_jupyter.errors import GuildError
from guild_jupyter.experiment.script_flags import ScriptFlags, apply_globals, argv_for, detect_flags
from guild_jupyter.model.flags import FlagDef
from guild_jupyter.model.run import Run
from guild_jupyter.orchestration.launch import LaunchSpec, flag_env
from guild_jupyter.orchestration.sourcecode import SourceSpec, copy_snapshot
from guild_jupyter.storage import layout

if TYPE_CHECKING:
    from guild_jupyter.config import Config
    from guild_jupyter.storage.store import RunStore


class ScriptOperation:
    kind = "script"

    def __init__(self, path: Path, name: str, source: str, flags: ScriptFlags) -> None:
        self.path, self.name, self.source, self.flags = path, name, source, flags

    @classmethod
    def load(cls, target: str, cwd: str | Path | None = None) -> ScriptOperation:
        base = Path(cwd) if cwd else Path.cwd()
        path = (base / target).resolve()
        if not path.is_file():
            raise GuildError(f"no such script: {target}")
        try:
            source = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise GuildError(f"{target} is not a UTF-8 text file") from None
        return cls(path, target, source, detect_flags(source, target))

    def flag_defs(self) -> dict[str, FlagDef]:
        return self.flags.defs

    def run_source(self) -> dict[str, str]:
        return {
            "script": str(self.path),
            "dir": str(self.path.parent),
            "flags_dest": self.flags.dest,
        }

    def prepare(self, run: Run, store: RunStore, config: Config) -> LaunchSpec:
        """Save the snapshot and say how to start the process."""
        snapshot = Path(store.meta_dir(run.id)) / layout.SOURCECODE
        spec = SourceSpec(
            self.path.parent,
            max_file_size=config.sourcecode_max_file_size,
            max_files=config.sourcecode_max_files,
            always=[self.path.name],
        )
        copy_snapshot(spec, snapshot, skip=[store.home])
        script = snapshot / self.path.name
        argv = [sys.executable, str(script)]
        if self.flags.dest == "globals":
            script.write_text(apply_globals(self.source, self.flags, run.flags), encoding="utf-8")
        else:
            argv += argv_for(self.flags, run.flags)
        return LaunchSpec(argv=argv, env=flag_env(run.flags), project_dir=str(self.path.parent))

    def help_text(self) -> str:
        lines = [f"Usage: guild-jupyter run {self.name} [FLAG=VALUE ...]", ""]
        if not self.flags.defs:
            lines.append(f"{self.name} has no flags.")
            return "\n".join(lines)
        lines.append(
            f"Flags ({'argparse arguments' if self.flags.dest == 'args' else 'top-level assignments'}):"
        )
        rows = [
            (n, repr(d.default) if d.default is not None else "(none)", d.type or "", d.description)
            for n, d in self.flags.defs.items()
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for r in rows:
            lines.append(
                "  "
                + "  ".join(c.ljust(w) for c, w in zip(r[:3], widths))
                + ("  " + r[3] if r[3] else "")
            )
        return "\n".join(line.rstrip() for line in lines)
