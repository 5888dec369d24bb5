"""Plain-text tables for the terminal (no pandas needed for listing)."""

from __future__ import annotations

import datetime as dt
from typing import Any


def when(seconds: float | None) -> str:
    if not seconds:
        return ""
    return dt.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def duration(started: float | None, stopped: float | None) -> str:
    if not started:
        return ""
    import time

    total = int((stopped or time.time()) - started)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


def run_lines(rows: list[dict[str, Any]], first_index: int = 1) -> list[str]:
    """Guild's ``runs`` listing: ``[1:abcd1234]  op  started  status  label``."""
    table = []
    for i, r in enumerate(rows, first_index):
        tags = " ".join(f"#{t}" for t in r.get("tags") or [])
        trial = f"(trial of {r['sweep'][:8]})" if r.get("sweep") else ""
        label = " ".join(x for x in (r.get("label") or "", tags, trial) if x)
        table.append(
            [
                f"[{i}:{r['id'][:8]}]",
                r["op"],
                when(r.get("started") or r.get("created")),
                r["status"],
                label,
            ]
        )
    return align(table)


def align(table: list[list[str]]) -> list[str]:
    if not table:
        return []
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
