"""Static renderings of a run or a sweep as HTML and text.

Used for ``Run._repr_html_``/``Sweep._repr_html_`` and as the widgets' fallback
where no widget front end exists (nbconvert, papermill, plain IPython, HTML
export). Everything user-controlled (labels, tags, flags, output) is escaped.
"""

from __future__ import annotations

import html
import time
from typing import Any

SPARK = "▁▂▃▄▅▆▇█"
STATUS_COLORS = {"pending": "#6e7781", "running": "#0969da", "completed": "#1a7f37",
                 "failed": "#cf222e", "cancelled": "#9a6700"}
TAIL_LINES = 20


def sparkline(values: list[float], width: int = 20) -> str:
    vals = [v for v in values[-width:] if v == v and v not in (float("inf"), float("-inf"))]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    span = (hi - lo) or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, int((v - lo) / span * (len(SPARK) - 1) + 0.5))] for v in vals)


def elapsed(started: float | None, stopped: float | None, now: float | None = None) -> str:
    if not started:
        return ""
    secs = int(max(0.0, (stopped or (now or time.time())) - started))
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def badge(status: str) -> str:
    color = STATUS_COLORS.get(status, "#6e7781")
    return (f"<span class='guild-status guild-status-{html.escape(status)}' style='background:{color};"
            f"color:white;border-radius:4px;padding:1px 6px;font-size:90%'>{html.escape(status)}</span>")


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def scalars_html(scalars: dict[str, list[float]]) -> str:
    if not scalars:
        return ""
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td style='text-align:right'>{fmt(v[-1])}</td>"
                   f"<td style='font-family:monospace'>{sparkline(v)}</td></tr>" for k, v in sorted(scalars.items()) if v)
    return f"<table class='guild-scalars'>{rows}</table>"


def tail_html(tail: str) -> str:
    return (f"<pre class='guild-output' style='max-height:16em;overflow:auto;margin:0'>"
            f"{html.escape(tail)}</pre>") if tail else ""


def last_lines(text: str, n: int = TAIL_LINES) -> str:
    lines = text.splitlines()
    return "\n".join(lines[-n:])


def run_state(run: Any, store: Any, tail_lines: int = TAIL_LINES) -> dict[str, Any]:
    """What a run view shows, read from the store (used when no widget keeps it)."""
    series: dict[str, list[float]] = {}
    try:
        for key, step, value, _t in sorted(store.iter_run_points(run.id), key=lambda p: (p[0], p[1], p[3])):
            series.setdefault(key, []).append(value)
    except Exception:  # a run without readable scalars still renders
        series = {}
    try:
        tail = last_lines(store.read_output(run.id), tail_lines)
    except Exception:
        tail = ""
    return {"status": run.status.value, "started": run.started, "stopped": run.stopped,
            "scalars": {k: v[-20:] for k, v in series.items()}, "tail": tail}


def run_html(run: Any, state: dict[str, Any]) -> str:
    e = html.escape
    flags = ", ".join(f"{e(str(k))}={e(fmt(v))}" for k, v in run.flags.items())
    label = f" <i>{e(run.label)}</i>" if run.label else ""
    return (f"<div class='guild-run'>{badge(state['status'])} <b>{e(run.op)}</b> "
            f"<code>{e(run.short_id)}</code>{label} <span>{elapsed(state['started'], state['stopped'])}</span>"
            f"<div>{flags}</div>{scalars_html(state['scalars'])}{tail_html(state['tail'])}</div>")


def run_text(run: Any, state: dict[str, Any]) -> str:
    lines = [f"Run {run.short_id} {run.op} [{state['status']}] {elapsed(state['started'], state['stopped'])}".rstrip()]
    if run.flags:
        lines.append("flags: " + ", ".join(f"{k}={fmt(v)}" for k, v in run.flags.items()))
    for k, v in sorted(state["scalars"].items()):
        if v:
            lines.append(f"{k}: {fmt(v[-1])} {sparkline(v)}")
    if state["tail"]:
        lines += ["output:", *("  " + line for line in state["tail"].splitlines())]
    return "\n".join(lines)


def trials_table(store: Any, sweep_id: str, objective: str | None, agg: str = "last",
                 flags_cache: dict[str, dict] | None = None) -> list[dict[str, Any]]:
    """The sweep's trials, oldest first: id, status, flags, objective value.
    ``flags_cache`` (id -> flags) spares re-reading each trial's record on every refresh."""
    cols, rows = store.index.query(
        "SELECT id, status, created, updated FROM runs WHERE sweep=? ORDER BY created", [sweep_id])
    trials = [dict(zip(cols, r)) for r in rows]
    values: dict[str, Any] = {}
    if objective and trials:
        column = {"last": "last", "min": "min", "max": "max"}.get(agg, "last")
        _, vrows = store.index.query(
            f"SELECT run, {column} FROM scalar_summary WHERE key=? AND run IN (SELECT id FROM runs WHERE sweep=?)",
            [objective, sweep_id])
        values = dict(vrows)
    for t in trials:
        t["objective"] = values.get(t["id"])
        if flags_cache is not None and t["id"] in flags_cache:
            t["flags"] = flags_cache[t["id"]]
        else:
            t["flags"] = store.load_run(t["id"]).flags
            if flags_cache is not None:
                flags_cache[t["id"]] = t["flags"]
    return trials


def best_trial(trials: list[dict[str, Any]], minimize: bool) -> str | None:
    scored = [t for t in trials if t["status"] == "completed" and t["objective"] is not None]
    if not scored:
        return None
    pick = min if minimize else max
    return pick(scored, key=lambda t: t["objective"])["id"]


def sweep_html(status: str, op: str, objective: str | None, minimize: bool, trials: list[dict[str, Any]]) -> str:
    e = html.escape
    best = best_trial(trials, minimize)
    flag_names = list(dict.fromkeys(k for t in trials for k in t["flags"]))
    head = "".join(f"<th>{e(str(n))}</th>" for n in ["#", "run", "status", *flag_names, objective or "objective"])
    body = []
    for i, t in enumerate(trials, 1):
        style = " style='background:#dafbe1;font-weight:bold' class='guild-best'" if t["id"] == best else ""
        cells = [str(i), f"<code>{e(t['id'][:8])}</code>", badge(t["status"]),
                 *(e(fmt(t["flags"].get(n, ""))) for n in flag_names),
                 "" if t["objective"] is None else e(fmt(t["objective"]))]
        body.append(f"<tr{style}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    direction = "min" if minimize else "max"
    return (f"<div class='guild-sweep'>{badge(status)} <b>{e(op)}</b> {len(trials)} trials, "
            f"objective {e(objective or '-')} ({direction})<table><tr>{head}</tr>{''.join(body)}</table></div>")


def sweep_text(status: str, op: str, objective: str | None, minimize: bool, trials: list[dict[str, Any]]) -> str:
    best = best_trial(trials, minimize)
    lines = [f"Sweep {op} [{status}] {len(trials)} trials, objective {objective or '-'} "
             f"({'min' if minimize else 'max'})"]
    for i, t in enumerate(trials, 1):
        flags = " ".join(f"{k}={fmt(v)}" for k, v in t["flags"].items())
        obj = "" if t["objective"] is None else fmt(t["objective"])
        lines.append(f"{'*' if t['id'] == best else ' '}{i:>3} {t['id'][:8]} {t['status']:<9} {flags} {obj}".rstrip())
    return "\n".join(lines)
