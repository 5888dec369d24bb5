"""``steps``: a guildfile operation that runs other operations in order.

A step is ``"OP flag=value ..."`` or a map ``{run: OP, flags: {...}}``; values may
refer to the pipeline's own flags as ``${name}``. The pipeline run's process is this
module: it starts each step as its own run (in the foreground, recorded with
``source["pipeline"]`` = the pipeline's id) and fails at the first step that fails.

While a step runs, the pipeline's own process only waits; so that a pipeline never
deadlocks on the concurrency limit it holds a slot of, its steps may use one slot more.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
from typing import Any

from guild_jupyter.model.flags import parse_flag_text, split_assignment

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")


def parse_steps(opdef: Any) -> list[tuple[str, dict[str, Any]]]:
    """``[(op name, {flag: value text or value})]``; validated against the guildfile."""
    steps = opdef.get("steps")
    if not isinstance(steps, list) or not steps:
        raise opdef.error("steps must be a non-empty list", "steps")
    out = []
    for step in steps:
        if isinstance(step, str):
            text, flags = step, {}
        elif isinstance(step, dict) and isinstance(step.get("run"), str):
            text, flags = step["run"], dict(step.get("flags") or {})
        else:
            raise opdef.error(
                "each step is 'OP [flag=value ...]' or a map with run:",
                obj=step if isinstance(step, dict) else opdef.data,
                key=None if isinstance(step, dict) else "steps",
            )
        tokens = shlex.split(text)
        if not tokens:
            raise opdef.error("a step names no operation", "steps")
        name, assigns = tokens[0], tokens[1:]
        try:
            target = opdef.guildfile.find(name)
        except Exception as e:
            raise opdef.error(f"step {name!r}: {e}", "steps") from None
        if target is opdef:
            raise opdef.error("a pipeline cannot run itself", "steps")
        for a in assigns:
            k, v = split_assignment(a)
            flags[k] = v
        out.append((target.full_name, flags))
    return out


def substitute(value: Any, pipeline_flags: dict[str, Any]) -> Any:
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = _REF.fullmatch(value)
    if whole and whole.group(1) in pipeline_flags:
        return pipeline_flags[whole.group(1)]  # keeps the type
    from guild_jupyter.guild_compat.guildfile_op import encode_value

    return _REF.sub(
        lambda m: (
            encode_value(pipeline_flags[m.group(1)]) if m.group(1) in pipeline_flags else m.group(0)
        ),
        value,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="guild_jupyter.guild_compat.steps")
    p.add_argument("--home", required=True)
    p.add_argument("--guildfile", required=True)
    p.add_argument("--op", required=True)
    p.add_argument("--parent", required=True)
    p.add_argument("--flags", required=True)
    args = p.parse_args(argv)

    from guild_jupyter.config import Config
    from guild_jupyter.experiment.runner import start_operation
    from guild_jupyter.guild_compat.guildfile import load
    from guild_jupyter.guild_compat.guildfile_op import GuildfileOperation
    from guild_jupyter.storage.store import RunStore

    store = RunStore(args.home)
    limit = Config.load(store.home).max_concurrent_runs
    os.environ["GUILD_JUPYTER_MAX_RUNS"] = str(limit + 1)
    gf = load(args.guildfile)
    pipeline_flags = json.loads(args.flags)
    for i, (name, flags) in enumerate(parse_steps(gf.find(args.op)), 1):
        values = {k: substitute(v, pipeline_flags) for k, v in flags.items()}
        values = {
            k: parse_flag_text(v) if isinstance(v, str) and "${" not in v else v
            for k, v in values.items()
        }
        op = GuildfileOperation(gf.find(name))
        op.extra_source = {"pipeline": args.parent}
        print(
            f"step {i}: {name} {' '.join(f'{k}={v}' for k, v in values.items())}".rstrip(),
            flush=True,
        )
        run = start_operation(
            op,
            values,
            store=store,
            tags=[f"pipeline:{args.parent[:8]}"],
            echo=lambda text: (sys.stdout.write(text), sys.stdout.flush()),
        )
        print(f"step {i}: {name} run {run.id} {run.status.value}", flush=True)
        if run.status.value != "completed":
            print(
                f"step {i} ({name}) {run.status.value}: {run.reason}", file=sys.stderr, flush=True
            )
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
