"""``%guild diff RUN RUN``: how two runs differ (flags, input hashes, code)."""

from __future__ import annotations

import difflib
import os

from guild_jupyter.storage import layout
from guild_jupyter.storage.store import RunStore


def _code(store: RunStore, run) -> tuple[str, str]:
    """The snapshot text that ran: a cell, else the script, else the notebook's cells."""
    snap = os.path.join(store.meta_dir(run.id), layout.SOURCECODE)
    for name in ("cell.py", os.path.basename(run.source.get("script") or ""),
                 os.path.basename(run.source.get("notebook") or "")):
        path = os.path.join(snap, name) if name else ""
        if path and os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            if name.endswith(".ipynb"):
                import json

                cells = json.loads(text).get("cells", [])
                text = "\n\n".join("".join(c.get("source", "")) for c in cells if c.get("cell_type") == "code")
            return name, text
    return "(no snapshot)", run.source.get("code") or ""


def diff_runs(store: RunStore, ref_a: str | int, ref_b: str | int) -> str:
    a, b = store.resolve(ref_a, deleted=None), store.resolve(ref_b, deleted=None)
    lines = [f"--- {a.short_id} {a.op} ({a.status.value})", f"+++ {b.short_id} {b.op} ({b.status.value})"]
    flags = sorted(set(a.flags) | set(b.flags))
    changed = [f"  {k}: {a.flags.get(k)!r} -> {b.flags.get(k)!r}" for k in flags if a.flags.get(k) != b.flags.get(k)]
    lines.append("flags: same" if not changed else "flags:")
    lines += changed
    ia, ib = a.source.get("inputs") or {}, b.source.get("inputs") or {}
    if ia or ib:
        diff_inputs = [f"  {k}: {(ia.get(k) or {}).get('hash') or (ia.get(k) or {}).get('module')} -> "
                       f"{(ib.get(k) or {}).get('hash') or (ib.get(k) or {}).get('module')}"
                       for k in sorted(set(ia) | set(ib)) if ia.get(k) != ib.get(k)]
        lines.append("inputs: same" if not diff_inputs else "inputs:")
        lines += diff_inputs
    (na, ca), (nb, cb) = _code(store, a), _code(store, b)
    code = list(difflib.unified_diff(ca.splitlines(), cb.splitlines(), f"{a.short_id}/{na}", f"{b.short_id}/{nb}",
                                     lineterm=""))
    lines.append("code: same" if not code else "code:")
    lines += code
    return "\n".join(lines)
