"""Index rows into pandas DataFrames, the comparison format of the public API.

``runs`` reads the wide index table in one query (``fetchall`` then
``DataFrame.from_records`` is the cheapest path measured here); the optional
expression filter runs on the frame with ``DataFrame.query``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from guild_jupyter.errors import QueryError
from guild_jupyter.storage.index import FIXED, quote
from guild_jupyter.storage.query import RunFilter

if TYPE_CHECKING:
    from guild_jupyter.storage.store import RunStore

LEADING = ["id", "op", "status", "started", "stopped", "label", "tags"]
_COLUMN_REF = re.compile(r"(?<![`\w.])((?:flags|scalars)\.[A-Za-z_][\w]*(?:[./-][A-Za-z_]\w*)*)")


def local_tz() -> dt.tzinfo:
    return dt.datetime.now().astimezone().tzinfo  # type: ignore[return-value]


def to_datetime(seconds: pd.Series) -> pd.Series:
    """Epoch seconds to local, timezone-aware times, rounded to the microsecond
    (the float's last digits are noise, not information)."""
    micros = (seconds.astype("float64") * 1e6).round()
    return pd.to_datetime(micros, unit="us", utc=True).dt.tz_convert(local_tz())


def runs_frame(store: RunStore, f: RunFilter) -> pd.DataFrame:
    """Sweep records are left out unless asked for (``kind="sweep"``): their flag
    values are search-space text that would turn numeric columns into objects."""
    if f.kind is None:
        f.sweeps = False
    dynamic = store.index.dynamic_columns()
    flag_cols = [c for c in dynamic if c.startswith("flags.")]
    scalar_cols = [c for c in dynamic if c.startswith("scalars.")]
    columns = LEADING + flag_cols + scalar_cols
    sql, params = f.sql(",".join(quote(c) for c in columns))
    _, rows = store.index.query(sql, params)
    df = pd.DataFrame.from_records(rows, columns=columns)
    keep = LEADING + [c for c in flag_cols + scalar_cols if df[c].notna().any()]
    df = df[keep]
    for col in ("started", "stopped"):
        df[col] = to_datetime(df[col])
    df["tags"] = [[] if t is None or t == "[]" else json.loads(t) for t in df["tags"]]
    bools = store.index.bool_columns()
    for col in keep:
        if col in bools:
            df[col] = df[col].astype("boolean")
        elif col.startswith("scalars."):
            df[col] = df[col].astype("float64")
    if f.where:
        df = apply_expression(df, f.where)
    return df.reset_index(drop=True)


def apply_expression(df: pd.DataFrame, expr: str) -> pd.DataFrame:
    """Filter with ``"flags.lr < 0.1 and scalars.loss < 0.5"`` (pandas query syntax)."""
    refs = _COLUMN_REF.findall(expr)
    known = set(df.columns)
    for ref in refs:
        if ref not in known:
            names = sorted(c for c in known if c.startswith(ref.split(".")[0] + "."))
            hint = f" (known: {', '.join(names)})" if names else ""
            raise QueryError(f"unknown column {ref!r} in expression {expr!r}{hint}")
    rewritten = _COLUMN_REF.sub(lambda m: f"`{m.group(1)}`", expr)
    if df.empty:
        return df
    try:
        mask = df.eval(rewritten)
    except Exception as e:  # pandas raises many kinds; the user needs one line
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise QueryError(f"cannot evaluate expression {expr!r}: {msg}") from None
    if not isinstance(mask, pd.Series) or mask.dtype != bool:
        try:
            mask = mask.astype(bool)
        except Exception:
            raise QueryError(f"expression {expr!r} does not give true/false per run") from None
    return df[mask]


def scalars_frame(store: RunStore, run_ids: list[str], keys: list[str] | None) -> pd.DataFrame:
    wanted = set(keys) if keys else None
    runs: list[str] = []
    ks: list[str] = []
    steps: list[int] = []
    values: list[float] = []
    times: list[float] = []
    for run_id in run_ids:
        for k, s, v, t in store.iter_run_points(run_id):
            if wanted is None or k in wanted:
                runs.append(run_id)
                ks.append(k)
                steps.append(s)
                values.append(v)
                times.append(t)
    df = pd.DataFrame(
        {
            "run": pd.Series(runs, dtype="object"),
            "key": pd.Series(ks, dtype="object"),
            "step": np.asarray(steps, dtype="int64"),
            "value": np.asarray(values, dtype="float64"),
            "time": pd.Series(times, dtype="float64"),
        }
    )
    df["time"] = to_datetime(df["time"])
    return df.sort_values(["run", "key", "step", "time"], kind="stable").reset_index(drop=True)


__all__ = ["FIXED", "LEADING", "apply_expression", "runs_frame", "scalars_frame"]
