"""``compare()``: the ``runs()`` frame with a chosen aggregate per scalar column.

``runs()`` holds the *last* value of each scalar (one wide row per run in the
index). Other aggregates come from the index's ``scalar_summary`` table
(first/last/min/max/count/total per run and key), read in one query for the
runs in the frame and pivoted onto the ``scalars.<key>`` columns, so a
comparison never reads the series themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

AGGREGATES = ("last", "first", "min", "max", "mean", "count")
_SQL = {"last": "last", "first": "first", "min": "min", "max": "max",
        "mean": "CASE WHEN count > 0 THEN total / count END", "count": "count"}


def _check(agg: str) -> str:
    if agg not in AGGREGATES:
        from guild_jupyter.errors import GuildError

        raise GuildError(f"unknown scalar aggregate {agg!r}: expected one of {', '.join(AGGREGATES)}")
    return agg


def apply_aggregates(df, store, agg: str | Mapping[str, str] = "last"):
    """Replace ``scalars.<key>`` columns of ``df`` (a ``runs()`` frame) by the chosen aggregate.

    ``agg``: one aggregate for every scalar, or ``{key: agg}`` (keys with or
    without the ``scalars.`` prefix; unnamed keys stay ``last``).
    """
    cols = [c for c in df.columns if c.startswith("scalars.")]
    if isinstance(agg, str):
        wanted = {c[len("scalars."):]: _check(agg) for c in cols}
    else:
        wanted = {k.removeprefix("scalars."): _check(v) for k, v in agg.items()}
    wanted = {k: a for k, a in wanted.items() if a != "last"}
    if not wanted or df.empty:
        return df
    df = df.copy()
    ids = list(df["id"])
    by_agg: dict[str, list[str]] = {}
    for key, a in wanted.items():
        by_agg.setdefault(a, []).append(key)
    for a, keys in by_agg.items():
        values: dict[tuple[str, str], Any] = {}
        for chunk in range(0, len(ids), 900):  # SQLite's parameter limit
            part = ids[chunk:chunk + 900]
            sql = (f"SELECT run, key, {_SQL[a]} FROM scalar_summary WHERE key IN "
                   f"({','.join('?' * len(keys))}) AND run IN ({','.join('?' * len(part))})")
            _, rows = store.index.query(sql, [*keys, *part])
            values.update({(r, k): v for r, k, v in rows})
        for key in keys:
            df[f"scalars.{key}"] = [values.get((rid, key)) for rid in ids]
            df[f"scalars.{key}"] = df[f"scalars.{key}"].astype("float64")
    return df


def compare(where: str | None = None, *, agg: str | Mapping[str, str] = "last", store=None, **filters: Any):
    """``runs(where, **filters)`` with each scalar column aggregated by ``agg``
    (``last`` (default), ``first``, ``min``, ``max``, ``mean``, ``count``; or a ``{key: agg}`` map)."""
    from guild_jupyter.experiment.api import default_store, runs

    store = store or default_store()
    return apply_aggregates(runs(where, store=store, **filters), store, agg)
