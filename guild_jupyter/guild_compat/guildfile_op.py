"""A ``guild.yml`` operation, runnable like a script operation.

``main: MODULE [ARGS]`` runs ``python -m MODULE ARGS`` from the run's snapshot of
the project (the snapshot is on ``PYTHONPATH``; the run directory is the working
directory). Flags reach it as Guild does: ``flags-dest: globals`` writes the values
into the module's top-level assignments (in the snapshot, never in the project),
``args`` appends ``--name value`` (``arg-name``, ``arg-skip``, ``arg-switch``);
without ``flags-dest`` the module decides (argparse -> args, else globals).

``exec: COMMAND`` is split with :mod:`shlex` and never passes through a shell:
a ``${flag_args}`` token becomes the ``--name value`` arguments, ``${NAME}`` inside
a token is replaced by that flag's value (one token stays one argument, whatever
the value holds); a leading ``python`` means this interpreter; a literal token naming a file of the
snapshot (``python train.py``) points at the snapshot's copy, since the process runs
in the run directory (Guild 0.9 copies the code into the run directory itself).

Every flag is also in the environment as ``FLAG_<NAME>`` (or its ``env-name``).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guild_jupyter.errors import GuildError
from guild_jupyter.experiment.script_flags import ScriptFlags, apply_globals, detect_flags
from guild_jupyter.guild_compat.flags_dest import (
    _REF,
    _dict_assign,
    apply_dict,
    dict_literal,
    encode_value,
    exec_argv,
    flag_args,
    read_config,
    write_config,
)
from guild_jupyter.guild_compat.guildfile import Guildfile, OpDef, find_guildfile, load
from guild_jupyter.guild_compat.guildfile_help import flag_rows, list_ops
from guild_jupyter.model.flags import FlagDef
from guild_jupyter.orchestration.launch import LaunchSpec, flag_env
from guild_jupyter.orchestration.sourcecode import SourceSpec, copy_snapshot
from guild_jupyter.storage import layout

if TYPE_CHECKING:
    from guild_jupyter.config import Config
    from guild_jupyter.model.run import Run
    from guild_jupyter.storage.store import RunStore

__all__ = [
    "GuildfileOperation",
    "apply_dict",
    "dict_literal",
    "encode_value",
    "flag_rows",
    "list_ops",
]


class GuildfileOperation:
    kind = "guildfile"

    def __init__(self, opdef: OpDef) -> None:
        self.opdef = opdef
        self.guildfile: Guildfile = opdef.guildfile
        self.name = opdef.full_name
        self.project_dir = self.guildfile.dir
        self._module: tuple[Path, str, ScriptFlags] | None = None
        self.extra_source: dict[str, Any] = {}
        from guild_jupyter.guild_compat.deps import parse_requires
        from guild_jupyter.guild_compat.steps import parse_steps

        self.requires = parse_requires(opdef)
        self.steps = parse_steps(opdef) if opdef.get("steps") is not None else None
        self._defs = self._build_defs()
        kind, _, dest_name = str(opdef.get("flags-dest") or "").partition(":")
        if kind in ("global", "dict") and self.module() is not None:
            _dict_assign(self.module()[1], dest_name, opdef)  # a missing dict: an error now
        for ref in _REF.findall(self.opdef.get("exec") or ""):
            if ref not in self._defs and ref not in ("flag_args", "project_dir", "sourcecode_dir"):
                raise self.opdef.error(f"exec refers to unknown flag ${{{ref}}}", "exec")

    # loading -----------------------------------------------------------------------
    @classmethod
    def find(cls, name: str, cwd: str | Path | None = None) -> GuildfileOperation:
        path = find_guildfile(cwd)
        if path is None:
            raise GuildError(
                f"cannot run {name!r}: not a script (.py) or notebook (.ipynb), "
                "and no guild.yml here or in a directory above"
            )
        return cls(load(path).find(name))

    def _main_parts(self) -> tuple[str, list[str]]:
        tokens = shlex.split(self.opdef.get("main"))
        if not tokens:
            raise self.opdef.error("main is empty", "main")
        return tokens[0], tokens[1:]

    def module(self) -> tuple[Path, str, ScriptFlags] | None:
        """The main module's file, source and detected flags (None for exec)."""
        if self.opdef.get("main") is None:
            return None
        if self._module is None:
            mod, _ = self._main_parts()
            rel = Path(*mod.split(".")).with_suffix(".py")
            root = self._source_root()
            for base in (root, root / "src"):
                if (base / rel).is_file():
                    path = base / rel
                    break
            else:
                pkg = root / Path(*mod.split(".")) / "__main__.py"
                if not pkg.is_file():
                    raise self.opdef.error(f"main module {mod!r} not found in {root}", "main")
                path = pkg
            source = path.read_text(encoding="utf-8")
            self._module = (path, source, detect_flags(source, str(path)))
        return self._module

    def _source_root(self) -> Path:
        sc = self.opdef.get("sourcecode")
        if isinstance(sc, dict) and sc.get("root"):
            return (self.project_dir / str(sc["root"])).resolve()
        return self.project_dir

    def _build_defs(self) -> dict[str, FlagDef]:
        defs: dict[str, FlagDef] = {}
        imp = self.opdef.get("flags-import")
        if imp not in (None, False, "no", []) and self.opdef.get("main") is not None:
            skip = set(self.opdef.get("flags-import-skip") or [])
            for name, d in self._importable_flags().items():
                if (imp in ("all", True, "yes") or name in imp) and name not in skip:
                    defs[name] = d
        defs.update(self.opdef.flags)
        for dep in self.requires:
            if dep.operation is not None and dep.flag_name not in defs:
                defs[dep.flag_name] = FlagDef(
                    dep.flag_name,
                    None,
                    type="str",
                    description=f"run of {dep.operation} to use (default: the newest completed)",
                )
        return defs

    def _importable_flags(self) -> dict[str, FlagDef]:
        dest = str(self.opdef.get("flags-dest") or "")
        kind, _, target = dest.partition(":")
        if kind in ("global", "dict"):
            _, source, _ = self.module()
            return {k: FlagDef(k, v) for k, v in dict_literal(source, target, self.opdef).items()}
        if kind == "config":
            return {
                k: FlagDef(k, v)
                for k, v in self._read_config(target).items()
                if v is None or isinstance(v, (bool, int, float, str, list))
            }
        return self.module()[2].defs

    def _read_config(self, name: str) -> dict[str, Any]:
        return read_config(self._source_root(), name)

    def flags_dest(self) -> str:
        dest = self.opdef.get("flags-dest")
        if dest:
            return dest
        mod = self.module()
        return mod[2].dest if mod else "args"

    # the operation interface ---------------------------------------------------------
    def flag_defs(self) -> dict[str, FlagDef]:
        return self._defs

    def run_source(self) -> dict[str, Any]:
        return {
            "guildfile": str(self.guildfile.path),
            "op": self.name,
            "dir": str(self.project_dir),
            "flags_dest": self.flags_dest() if self.opdef.get("main") else None,
            **self.extra_source,
        }

    def flag_args(self, values: dict[str, Any]) -> list[str]:
        """``--name value`` arguments, with ``arg-name``/``arg-skip``/``arg-switch``."""
        return flag_args(self._defs, values)

    def env_for(self, values: dict[str, Any]) -> dict[str, str]:
        env = flag_env(values)
        for name, value in values.items():
            d = self._defs.get(name)
            if d and "env-name" in d.extra:
                env[str(d.extra["env-name"])] = flag_env({name: value}).popitem()[1]
        env.update(
            {str(k): "" if v is None else str(v) for k, v in (self.opdef.get("env") or {}).items()}
        )
        return env

    def exec_argv(self, values: dict[str, Any], snapshot: Path) -> list[str]:
        return exec_argv(self.opdef, self.project_dir, self._defs, values, snapshot)

    def label_for(self, values: dict[str, Any]) -> str | None:
        template = self.opdef.get("label")
        if not template:
            return None
        return _REF.sub(lambda m: encode_value(values.get(m.group(1), m.group(0))), template)

    def source_spec(self) -> SourceSpec:
        sc = self.opdef.get("sourcecode")
        include: list[str] = []
        exclude: list[str] = []
        rules = (
            sc.get("select", []) if isinstance(sc, dict) else (sc if isinstance(sc, list) else [])
        )
        for rule in rules or []:
            if isinstance(rule, str):
                include.append(rule)
            elif isinstance(rule, dict):
                for key, target in (("include", include), ("exclude", exclude)):
                    v = rule.get(key)
                    if isinstance(v, dict):  # Guild's {exclude: {dir: x}} / {include: {text: [..]}}
                        v = [
                            q
                            for kind, ps in v.items()
                            for p in (ps if isinstance(ps, list) else [ps])
                            for q in ([f"{p}/*", f"*/{p}/*"] if kind == "dir" else [p])
                        ]
                    if v is not None:
                        target.extend(v if isinstance(v, list) else [v])
        return SourceSpec(self._source_root(), include=include, exclude=exclude)

    def prepare(self, run: Run, store: RunStore, config: Config) -> LaunchSpec:
        snapshot = Path(store.meta_dir(run.id)) / layout.SOURCECODE
        spec = self.source_spec()
        spec.max_file_size = config.sourcecode_max_file_size
        spec.max_files = config.sourcecode_max_files
        mod = self.module()
        root = self._source_root()
        if mod is not None:
            spec.always = [str(mod[0].relative_to(root))]
        if self.opdef.get("sourcecode") is not False:
            copy_snapshot(spec, snapshot, skip=[store.home])
        snapshot.mkdir(parents=True, exist_ok=True)
        values = dict(run.flags)
        env = self.env_for(values)
        if self.requires:
            self._resolve_requires(run, store)
            values = dict(run.flags)
        if self.steps is not None:
            argv = [
                sys.executable,
                "-m",
                "guild_jupyter.guild_compat.steps",
                "--home",
                str(store.home),
                "--guildfile",
                str(self.guildfile.path),
                "--op",
                self.name,
                "--parent",
                run.id,
                "--flags",
                json.dumps(values),
            ]
            self._label_and_tags(run, store, values)
            return LaunchSpec(
                argv=argv, env=env, output_scalars="no", project_dir=str(self.project_dir)
            )
        if mod is not None:
            path, source, detected = mod
            modname, args = self._main_parts()
            argv = [sys.executable, "-m", modname, *args]
            dest = self.flags_dest()
            kind, _, dest_name = dest.partition(":")
            if kind in ("globals", "global", "dict"):
                target = snapshot / path.relative_to(root)
                target.parent.mkdir(parents=True, exist_ok=True)
                text = (
                    apply_globals(source, detected, values)
                    if kind == "globals"
                    else apply_dict(source, dest_name, values, self.opdef)
                )
                target.write_text(text, encoding="utf-8")
            elif kind == "config":
                self._write_config(dest_name, values, Path(store.run_dir(run.id)))
            else:
                argv += self.flag_args(values)
            sub = "src" if path.relative_to(root).parts[0] == "src" else ""
            env["PYTHONPATH"] = str(snapshot / sub) if sub else str(snapshot)
        else:
            argv = self.exec_argv(values, snapshot)
            env["PYTHONPATH"] = str(snapshot)
        self._label_and_tags(run, store, values)
        scalars = (
            self.opdef.get("output-scalars", None) if "output-scalars" in self.opdef.data else None
        )
        if "output-scalars" in self.opdef.data and scalars is None:
            scalars = "no"
        return LaunchSpec(
            argv=argv,
            env=env,
            output_scalars=scalars,
            project_dir=str(self.project_dir),
        )

    def _label_and_tags(self, run: Run, store: RunStore, values: dict[str, Any]) -> None:
        label = self.label_for(values)
        if label and not run.label:
            store.set_label(run.id, label)
            run.label = label
        if self.opdef.get("tags"):
            store.set_tags(run.id, add=self.opdef.get("tags"))

    def _resolve_requires(self, run: Run, store: RunStore) -> None:
        run_dir = Path(store.run_dir(run.id))
        resolved = [
            dep.resolve(store, self.project_dir, run_dir, run.flags, self.guildfile)
            for dep in self.requires
        ]

        def record(r: Any) -> None:
            for d in resolved:
                if "run" in d:
                    r.flags[d["flag"]] = d["run"]
            r.source["deps"] = resolved

        updated = store.update_run(run.id, record)
        run.flags, run.source = updated.flags, updated.source

    def _write_config(self, name: str, values: dict[str, Any], run_dir: Path) -> None:
        write_config(self._source_root(), name, values, run_dir)

    def sweep_defaults(self) -> dict[str, Any]:
        """Sweep options the guildfile sets (``objective``, ``default-max-trials``), in the
        sweep runner's terms. Guild: ``objective: loss`` minimizes, ``-acc`` or
        ``{maximize: acc}`` maximizes."""
        out: dict[str, Any] = {}
        obj = self.opdef.get("objective")
        if isinstance(obj, str):
            out["objective"], out["minimize"] = (
                (obj[1:], False) if obj.startswith("-") else (obj, True)
            )
        elif isinstance(obj, dict):
            ((how, name),) = obj.items()
            out["objective"], out["minimize"] = name, how == "minimize"
        if self.opdef.get("default-max-trials") is not None:
            out["max_trials"] = self.opdef.get("default-max-trials")
        return out

    # help --------------------------------------------------------------------------------
    def help_text(self) -> str:
        lines = [f"Usage: guild-jupyter run {self.name} [FLAG=VALUE ...]", ""]
        if self.opdef.get("description"):
            lines += [self.opdef.get("description").strip(), ""]
        if not self._defs:
            lines.append(f"{self.name} has no flags.")
            return "\n".join(lines)
        lines.append("Flags:")
        lines += flag_rows(self._defs)
        for name, d in self._defs.items():
            for value, text in (d.extra.get("choice_help") or {}).items():
                lines.append(f"  {name}={value}: {text}")
        return "\n".join(line.rstrip() for line in lines)
