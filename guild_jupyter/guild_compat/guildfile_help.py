"""Help for guildfile operations: flag tables and ``guild-jupyter ops``."""

from __future__ import annotations

from pathlib import Path

from guild_jupyter.errors import GuildError
from guild_jupyter.guild_compat.flags_dest import encode_value
from guild_jupyter.guild_compat.guildfile import find_guildfile, load
from guild_jupyter.model.flags import FlagDef


def flag_rows(defs: dict[str, FlagDef], indent: str = "  ") -> list[str]:
    rows = []
    for n, d in defs.items():
        notes = []
        if d.required:
            notes.append("required")
        if d.choices is not None:
            notes.append("choices: " + ", ".join(encode_value(c) for c in d.choices))
        if d.min is not None:
            notes.append(f"min {d.min}")
        if d.max is not None:
            notes.append(f"max {d.max}")
        default = (
            "(required)"
            if d.required and d.default is None
            else ("(none)" if d.default is None else encode_value(d.default))
        )
        desc = d.description + (f" ({'; '.join(notes)})" if notes else "")
        rows.append((n, default, d.type or "", desc))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return [
        indent
        + "  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True))
        + ("  " + r[3] if r[3] else "")
        for r in rows
    ]


def list_ops(cwd: str | Path | None = None) -> str:
    """``guild-jupyter ops``: the operations of the nearest guild.yml and their flags."""
    from guild_jupyter.guild_compat.guildfile_op import GuildfileOperation

    path = find_guildfile(cwd)
    if path is None:
        raise GuildError("no guild.yml here or in a directory above")
    gf = load(path)
    lines = [f"{path}:"]
    if not gf.ops:
        lines.append("  (no operations)")
    for name, opdef in gf.ops.items():
        desc = (opdef.get("description") or "").strip().splitlines()
        lines.append(f"  {name}" + (f"  {desc[0]}" if desc else ""))
        try:
            defs = GuildfileOperation(opdef).flag_defs()
        except GuildError as e:
            lines.append(f"    ({e})")
            continue
        lines += flag_rows(defs, indent="    ")
    return "\n".join(line.rstrip() for line in lines)
