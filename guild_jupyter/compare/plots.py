"""Plot functions returning ``plotly.graph_objects.Figure`` (Optuna's style: plain functions).

- :func:`plot_scalars`: scalar curves overlaid across runs, step or time on x;
  one trace per run (and key). Series longer than ``max_points`` are
  downsampled (evenly spaced points plus each bucket's min and max, first and
  last kept) and past 50 traces ``Scattergl`` is used, so 1,000 runs stay responsive.
- :func:`parallel_coordinates`: flags (and scalars) vs a colouring scalar; one
  trace, one dimension per column, one line per run. String flags become
  categorical axes.
- :func:`scatter`: one marker per run (a single trace: 1,000 runs as 1,000
  traces would not be responsive), hover shows the run id.
- :func:`sweep_summary`: a sweep's objective per trial and the best so far.

Inputs are a ``runs()``/``compare()`` frame; ``plot_scalars`` also takes a run,
a list of runs/ids, or a long ``scalars()`` frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

MAX_POINTS = 500
GL_THRESHOLD = 50


def _col(df: pd.DataFrame, name: str) -> str:
    """A column by its full name or short name (``loss`` -> ``scalars.loss`` or ``flags.loss``)."""
    if name in df.columns:
        return name
    for prefix in ("scalars.", "flags."):
        if prefix + name in df.columns:
            return prefix + name
    raise KeyError(f"no column {name!r} (have: {', '.join(map(str, df.columns))})")


def _short(col: str) -> str:
    return col.split(".", 1)[1] if col.startswith(("scalars.", "flags.")) else col


def downsample(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ~``max_points`` points: per bucket its first point, its min and its max, plus the
    last point (vectorised: one pass of ``reduceat``, no Python loop over buckets)."""
    n = len(x)
    if n <= max_points:
        return x, y
    buckets = max(1, max_points // 3)
    starts = np.unique(np.linspace(0, n, buckets, endpoint=False).astype(int))
    which = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n)))
    y = np.asarray(y, dtype="float64")
    lo = np.where(np.isnan(y), np.inf, y)
    hi = np.where(np.isnan(y), -np.inf, y)
    mins, maxs = np.minimum.reduceat(lo, starts), np.maximum.reduceat(hi, starts)
    _, at_min = np.unique(which[lo == mins[which]], return_index=True)
    _, at_max = np.unique(which[hi == maxs[which]], return_index=True)
    idx_min = np.flatnonzero(lo == mins[which])[at_min]
    idx_max = np.flatnonzero(hi == maxs[which])[at_max]
    idx = np.unique(np.concatenate([starts, idx_min, idx_max, [n - 1]]))
    return x[idx], y[idx]


def _series(data: Any, keys: list[str] | None, store: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame) and {"run", "key", "value"} <= set(data.columns):
        frame = data
        return frame[frame["key"].isin(keys)] if keys else frame
    from guild_jupyter.experiment.api import scalars

    return scalars(data, keys, store=store)


def plot_scalars(
    data: Any = None,
    keys: str | list[str] | None = None,
    *,
    x: str = "step",
    max_points: int = MAX_POINTS,
    store: Any = None,
) -> go.Figure:
    """Scalar curves overlaid across runs: one trace per run and key; ``x`` is ``step`` or ``time``."""
    if x not in ("step", "time"):
        raise ValueError(f"x must be 'step' or 'time', got {x!r}")
    if isinstance(keys, str):
        keys = [keys]
    if keys:
        keys = [_short(k) for k in keys]
    frame = _series(data, keys, store)
    order = list(dict.fromkeys(data["id"])) if isinstance(data, pd.DataFrame) and "id" in data.columns else None
    groups: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    if len(frame):
        f = frame.sort_values(["run", "key", "step", "time"], kind="stable")
        run_col, key_col = f["run"].to_numpy(), f["key"].to_numpy()
        xs_all, ys_all = f[x].to_numpy(), f["value"].to_numpy(dtype="float64")
        change = np.flatnonzero((run_col[1:] != run_col[:-1]) | (key_col[1:] != key_col[:-1])) + 1
        bounds = np.concatenate([[0], change, [len(f)]])
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            groups[(run_col[lo], key_col[lo])] = (xs_all[lo:hi], ys_all[lo:hi])
    runs = order or list(dict.fromkeys(r for r, _ in groups))
    all_keys = keys or sorted({k for _, k in groups})
    many = len(runs) * max(1, len(all_keys)) > GL_THRESHOLD
    kind = "scattergl" if many else "scatter"
    traces = []
    for key in all_keys:
        for run in runs:
            series = groups.get((run, key))
            if series is None:
                continue
            xs, ys = downsample(series[0], series[1], max_points)
            name = f"{run[:8]} {key}" if len(all_keys) > 1 else run[:8]
            traces.append(dict(type=kind, x=xs, y=ys, mode="lines", name=name, legendgroup=run,
                               meta={"run": run, "key": key}, showlegend=len(runs) <= 30))
    # traces are built here from checked data: skipping plotly's per-property validation
    # keeps 1,000 traces in well under a second
    fig = go.Figure(data=traces, _validate=not many)
    title = ", ".join(all_keys) if all_keys else "scalars"
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=title if len(all_keys) == 1 else "value",
                      template="plotly_white", hovermode="closest")
    return fig


def _numeric(series: pd.Series) -> tuple[np.ndarray, dict[str, Any]]:
    """Values for a parcoords dimension; strings/bools/mixed become category codes with tick labels."""
    if pd.api.types.is_bool_dtype(series):
        series = series.astype("string")
    if pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype="float64"), {}
    s = series.astype("string").fillna("")
    cats = sorted(s.unique())
    codes = s.map({c: i for i, c in enumerate(cats)}).to_numpy(dtype="float64")
    return codes, {"tickvals": list(range(len(cats))), "ticktext": cats}


def parallel_coordinates(
    df: pd.DataFrame, color: str | None = None, columns: list[str] | None = None, *, colorscale: str = "Viridis"
) -> go.Figure:
    """Flags (default: every ``flags.*`` column holding more than one value, else all of them)
    against ``color`` (a scalar, last axis and line colour)."""
    if columns is None:
        flags = [c for c in df.columns if c.startswith("flags.")]
        varying = [c for c in flags if df[c].astype("string").nunique(dropna=False) > 1]
        columns = varying or flags
    else:
        columns = [_col(df, c) for c in columns]
    color_col = _col(df, color) if color else None
    dims = []
    for c in columns + ([color_col] if color_col and color_col not in columns else []):
        values, ticks = _numeric(df[c])
        dims.append(dict(label=_short(c), values=values, **ticks))
    line: dict[str, Any] = {}
    if color_col:
        cvals, _ = _numeric(df[color_col])
        line = dict(color=cvals, colorscale=colorscale, showscale=True, colorbar=dict(title=_short(color_col)))
    fig = go.Figure(go.Parcoords(dimensions=dims, line=line))
    fig.update_layout(title=f"flags vs {_short(color_col)}" if color_col else "flags", template="plotly_white")
    return fig


def scatter(df: pd.DataFrame, x: str, y: str, color: str | None = None) -> go.Figure:
    """One marker per run, ``x`` vs ``y`` (flag or scalar names); hover shows the run id."""
    xc, yc = _col(df, x), _col(df, y)
    marker: dict[str, Any] = dict(size=8)
    if color:
        cvals, _ = _numeric(df[_col(df, color)])
        marker.update(color=cvals, colorscale="Viridis", showscale=True, colorbar=dict(title=_short(color)))
    ids = df["id"].astype(str).str[:8] if "id" in df.columns else None
    trace = go.Scattergl if len(df) > 1000 else go.Scatter
    fig = go.Figure(trace(x=df[xc], y=df[yc], mode="markers", marker=marker, text=ids,
                          hovertemplate=f"%{{text}}<br>{_short(xc)}=%{{x}}<br>{_short(yc)}=%{{y}}<extra></extra>"))
    fig.update_layout(xaxis_title=_short(xc), yaxis_title=_short(yc), template="plotly_white",
                      title=f"{_short(yc)} vs {_short(xc)}")
    return fig


def sweep_summary(sweep: Any, objective: str | None = None, minimize: bool | None = None) -> go.Figure:
    """A sweep's objective per trial (markers, coloured by status) and the best so far (a line).

    ``sweep``: a ``Sweep`` (objective and direction from its spec) or a trials frame."""
    if isinstance(sweep, pd.DataFrame):
        df = sweep
    else:
        spec = sweep.spec
        objective = objective or spec.get("objective")
        minimize = spec.get("minimize", True) if minimize is None else minimize
        from guild_jupyter.compare.aggregates import apply_aggregates

        df = apply_aggregates(sweep.df, sweep.store, {objective: spec.get("objective_agg", "last")}) \
            if objective else sweep.df
    minimize = True if minimize is None else minimize
    objective = objective or "loss"
    df = df.sort_values("started", na_position="last") if "started" in df.columns else df
    col = f"scalars.{objective}" if f"scalars.{objective}" in df.columns else None
    values = df[col].to_numpy(dtype="float64") if col else np.full(len(df), np.nan)
    trials = np.arange(1, len(df) + 1)
    best = pd.Series(values).cummin() if minimize else pd.Series(values).cummax()
    status = df["status"].astype(str).tolist() if "status" in df.columns else None
    fig = go.Figure([
        go.Scatter(x=trials, y=values, mode="markers", name="trial", text=status,
                   hovertemplate="trial %{x}: %{y} (%{text})<extra></extra>"),
        go.Scatter(x=trials, y=best.to_numpy(), mode="lines", name="best so far", line=dict(shape="hv")),
    ])
    fig.update_layout(title=f"sweep: {objective} ({'min' if minimize else 'max'})", xaxis_title="trial",
                      yaxis_title=objective, template="plotly_white")
    return fig
