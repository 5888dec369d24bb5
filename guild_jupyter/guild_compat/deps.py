"""``requires``: what a guildfile operation needs in its run directory.

- ``file: PATH`` (a file or a directory of the project) is copied into the run
  directory, under ``target-path`` when given.
- ``operation: NAME`` resolves to a run of that operation: the one given as the
  flag of the same name (``NAME=RUN``, an id, prefix or index; or the ``name:``
  of the dependency), else the newest completed run. Its files (optionally only
  those matching ``select`` patterns) are copied under ``target-path``; the run
  id used is written into the run's flags, as Guild does.

Copies, not symlinks: a run's files stay inside its directory, so file routes
and artifact listings never follow a link out of it.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
from pathlib import Path
from typing import Any

from guild_jupyter.errors import GuildError, RunNotFound
from guild_jupyter.storage import layout


class Dependency:
    def __init__(self, spec: dict[str, Any], opdef: Any) -> None:
        self.spec = spec
        self.file = spec.get("file")
        self.operation = spec.get("operation")
        self.target = str(spec.get("target-path") or spec.get("path") or "")
        select = spec.get("select") or []
        self.select = [select] if isinstance(select, str) else list(select)
        self.flag_name = str(spec.get("name") or self.operation or "")
        if (self.file is None) == (self.operation is None):
            raise opdef.error(
                "each requires entry needs file: or operation: (one of them)", obj=spec
            )
        if self.operation is not None and str(self.operation).split(":")[-1] not in {
            o.name for o in opdef.guildfile.ops.values()
        }:
            raise opdef.error(f"requires unknown operation {self.operation!r}", obj=spec)

    def resolve(
        self, store: Any, project_dir: Path, run_dir: Path, flags: dict[str, Any], guildfile: Any
    ) -> dict[str, Any]:
        dest = run_dir / self.target
        if self.file is not None:
            src = (project_dir / str(self.file)).resolve()
            if not src.exists():
                raise GuildError(f"required file {self.file!r} not found in {project_dir}")
            _copy(src, dest / src.name)
            return {"file": str(self.file), "target": self.target}
        op = guildfile.find(str(self.operation)).full_name
        ref = flags.get(self.flag_name)
        if ref not in (None, ""):
            try:
                upstream = store.resolve(str(ref))
            except RunNotFound:
                raise GuildError(f"{self.flag_name}={ref}: no such run") from None
            if upstream.op != op:
                raise GuildError(
                    f"{self.flag_name}={ref}: run {upstream.short_id} is {upstream.op}, not {op}"
                )
        else:
            rows = store.list_rows(op=op, status="completed", limit=1)
            if not rows:
                raise GuildError(
                    f"requires a completed run of {op}: run it first or pass {self.flag_name}=RUN"
                )
            upstream = store.load_run(rows[0]["id"])
        src_dir = Path(store.run_dir(upstream.id))
        for rel in _files(src_dir):
            if self.select and not any(
                fnmatch.fnmatch(rel, p) or re.fullmatch(p, rel) for p in self.select
            ):
                continue
            _copy(src_dir / rel, dest / rel)
        return {"operation": op, "run": upstream.id, "target": self.target, "flag": self.flag_name}


def _files(root: Path) -> list[str]:
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x != layout.META_DIR and not (Path(d) / x).is_symlink()]
        for f in files:
            p = Path(d) / f
            if not p.is_symlink():
                out.append(str(p.relative_to(root)))
    return sorted(out)


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dest, dirs_exist_ok=True, symlinks=True)
    else:
        shutil.copyfile(src, dest)


def parse_requires(opdef: Any) -> list[Dependency]:
    req = opdef.get("requires")
    if req is None:
        return []
    items = req if isinstance(req, list) else [req]
    out = []
    for item in items:
        if isinstance(item, str):
            raise opdef.error(
                f"requires {item!r}: named resources are not supported; use file: or operation:",
                "requires",
            )
        if not isinstance(item, dict):
            raise opdef.error("requires entries must be maps", "requires")
        out.append(Dependency(item, opdef))
    return out
