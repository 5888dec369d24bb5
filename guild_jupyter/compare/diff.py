"""``diff(a, b)``: how two runs differ: flags, scalars, source, provenance, output.

Returns a :class:`RunDiff`: its parts are plain data (lists of changed items,
unified-diff lines) and it prints as text and renders as HTML in a notebook.
The source snapshot compared is every file under ``.run/sourcecode/`` (union
of both runs), falling back to ``run.source["code"]``; provenance compares the
package versions, git commit/dirty state and Python version recorded in
``.run/provenance.json``. Output is compared as a unified diff (``context``
lines, at most ``max_output_lines`` lines of diff kept).
"""

from __future__ import annotations

import difflib
import html
import json
import os
from typing import Any

from guild_jupyter.storage import layout

_MISSING = "<missing>"


def _source_files(store: Any, run: Any) -> dict[str, str]:
    root = os.path.join(store.meta_dir(run.id), layout.SOURCECODE)
    files: dict[str, str] = {}
    if os.path.isdir(root):
        for dirpath, _dirs, names in os.walk(root):
            for name in names:
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                try:
                    with open(path, encoding="utf-8") as f:
                        text = f.read()
                except (UnicodeDecodeError, OSError):
                    text = f"<binary file, {os.path.getsize(path)} bytes>"
                files[rel] = _notebook_code(text) if rel.endswith(".ipynb") else text
    if not files and run.source.get("code"):
        files["<code>"] = str(run.source["code"])
    return files


def _notebook_code(text: str) -> str:
    """A notebook's code cells, so its diff reads as code rather than JSON."""
    import json

    try:
        cells = json.loads(text).get("cells", [])
    except (ValueError, AttributeError):
        return text
    return "\n\n".join("".join(c.get("source", "")) for c in cells if c.get("cell_type") == "code")


def _provenance(store: Any, run: Any) -> dict[str, Any]:
    try:
        with open(os.path.join(store.meta_dir(run.id), layout.PROVENANCE), encoding="utf-8") as f:
            return json.load(f) or {}
    except (OSError, ValueError):
        return {}


def _changes(a: dict, b: dict) -> list[tuple[str, Any, Any]]:
    return [(k, a.get(k, _MISSING), b.get(k, _MISSING)) for k in sorted(set(a) | set(b), key=str)
            if a.get(k, _MISSING) != b.get(k, _MISSING)]


def _last_scalars(store: Any, run_id: str) -> dict[str, float]:
    _, rows = store.index.query("SELECT key, last FROM scalar_summary WHERE run=?", [run_id])
    return {k: v for k, v in rows}


class RunDiff:
    def __init__(self, a: Any, b: Any, *, flags, scalars, source, provenance, output) -> None:
        self.a, self.b = a, b
        self.flags: list[tuple[str, Any, Any]] = flags
        self.scalars: list[tuple[str, Any, Any]] = scalars
        self.source: list[str] = source
        self.provenance: list[tuple[str, Any, Any]] = provenance
        self.output: list[str] = output

    @property
    def same(self) -> bool:
        return not (self.flags or self.scalars or self.source or self.provenance or self.output)

    def _sections(self):
        yield "flags", [f"{k}: {va!r} -> {vb!r}" for k, va, vb in self.flags], False
        yield "scalars (last)", [f"{k}: {va} -> {vb}" for k, va, vb in self.scalars], False
        yield "source", self.source, True
        yield "provenance", [f"{k}: {va} -> {vb}" for k, va, vb in self.provenance], False
        yield "output", self.output, True

    def __str__(self) -> str:
        a, b = self.a, self.b
        lines = [f"--- {a.short_id} {a.op} ({a.status.value})", f"+++ {b.short_id} {b.op} ({b.status.value})"]
        for title, items, _ in self._sections():
            if not items:
                lines.append(f"{title}: same")
            else:
                lines.append(f"{title}:")
                lines += ["  " + item for item in items]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<RunDiff {self.a.short_id} {self.b.short_id}{' same' if self.same else ''}>"

    def _repr_html_(self) -> str:
        e = html.escape
        parts = [f"<div class='guild-diff'><b>{e(self.a.short_id)}</b> {e(self.a.op)} &rarr; "
                 f"<b>{e(self.b.short_id)}</b> {e(self.b.op)}"]
        for title, items, is_diff in self._sections():
            if not items:
                parts.append(f"<div><b>{e(title)}</b>: same</div>")
                continue
            if is_diff:
                rows = []
                for line in items:
                    color = "#1a7f37" if line.startswith("+") else "#cf222e" if line.startswith("-") else "inherit"
                    rows.append(f"<span style='color:{color}'>{e(line)}</span>")
                parts.append(f"<div><b>{e(title)}</b><pre>{chr(10).join(rows)}</pre></div>")
            else:
                parts.append(f"<div><b>{e(title)}</b><ul>" + "".join(f"<li>{e(i)}</li>" for i in items) + "</ul></div>")
        return "".join(parts) + "</div>"


def diff(a: Any, b: Any, *, store: Any = None, context: int = 3, max_output_lines: int = 200) -> RunDiff:
    """Compare runs ``a`` and ``b`` (references, ids or :class:`Run` objects)."""
    from guild_jupyter.experiment.api import default_store
    from guild_jupyter.model.run import Run

    store = store or default_store()
    ra = store.load_run(a.id) if isinstance(a, Run) else store.resolve(a, deleted=None)
    rb = store.load_run(b.id) if isinstance(b, Run) else store.resolve(b, deleted=None)
    fa, fb = _source_files(store, ra), _source_files(store, rb)
    source: list[str] = []
    for name in sorted(set(fa) | set(fb)):
        source += difflib.unified_diff(fa.get(name, "").splitlines(), fb.get(name, "").splitlines(),
                                       f"{ra.short_id}/{name}" if name in fa else "/dev/null",
                                       f"{rb.short_id}/{name}" if name in fb else "/dev/null",
                                       n=context, lineterm="")
    pa, pb = _provenance(store, ra), _provenance(store, rb)
    prov = [(f"packages.{k}", va, vb) for k, va, vb in _changes(pa.get("packages") or {}, pb.get("packages") or {})]
    ga, gb = pa.get("git") or {}, pb.get("git") or {}
    prov += [(f"git.{k}", va, vb) for k, va, vb in _changes(ga, gb) if k in ("commit", "dirty", "branch")]
    va_py, vb_py = (pa.get("python") or {}).get("version"), (pb.get("python") or {}).get("version")
    if va_py != vb_py:
        prov.append(("python", va_py, vb_py))
    out = list(difflib.unified_diff(store.read_output(ra.id).splitlines(), store.read_output(rb.id).splitlines(),
                                    f"{ra.short_id}/output", f"{rb.short_id}/output", n=context, lineterm=""))
    if len(out) > max_output_lines:
        out = out[:max_output_lines] + [f"... {len(out) - max_output_lines} more diff lines"]
    return RunDiff(ra, rb, flags=_changes(ra.flags, rb.flags), scalars=_changes(_last_scalars(store, ra.id),
                   _last_scalars(store, rb.id)), source=source, provenance=prov, output=out)
