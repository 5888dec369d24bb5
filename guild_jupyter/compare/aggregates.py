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


def parse_agg(items: list[str] | tuple[str, ...] | None) -> str | dict[str, str]:
    """``--agg`` values of the CLI and ``%guild compare``: ``min`` (every scalar) and/or
    ``loss=min`` (one scalar), repeatable; a bare aggregate is the default for the others.
    Raises GuildError on an unknown aggregate or a malformed item."""
    from guild_jupyter.errors import GuildError

    default, per_key = "last", {}
    for item in items or ():
        key, sep, agg = item.partition("=")
        if not sep:
            default = _check(item.strip())
            continue
        key = key.strip().removeprefix("scalars.")
        if not key or not agg.strip():
            raise GuildError(f"--agg {item!r}: expected AGG or SCALAR=AGG (e.g. loss=min)")
        per_key[key] = _check(agg.strip())
    if not per_key:
        return default
    return {**({"*": default} if default != "last" else {}), **per_key}


def apply_aggregates(df, store, agg: str | Mapping[str, str] = "last"):
    """Replace ``scalars.<key>`` columns of ``df`` (a ``runs()`` frame) by the chosen aggregate.

    ``agg``: one aggregate for every scalar, or ``{key: agg}`` (keys with or
    without the ``scalars.`` prefix; the key ``"*"`` sets the aggregate of the
    keys not named, which otherwise stay ``last``).
    """
    cols = [c for c in df.columns if c.startswith("scalars.")]
    if isinstance(agg, str):
        wanted = {c[len("scalars."):]: _check(agg) for c in cols}
    else:
        default = _check(agg.get("*", "last"))
        wanted = {c[len("scalars."):]: default for c in cols}
        wanted.update({k.removeprefix("scalars."): _check(v) for k, v in agg.items() if k != "*"})
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


def compare_table(store, refs: list[str] | tuple[str, ...] = (), where: str | None = None,
                  agg: str | Mapping[str, str] = "last", **filters: Any):
    """What ``guild-jupyter compare`` and ``%guild compare`` show: the runs matching the
    filters (only ``refs``, in their order, when given), columns ``id, op, status, started,
    label``, then flags and aggregated scalars; columns empty in every row are dropped."""
    from guild_jupyter.experiment.api import runs

    df = apply_aggregates(runs(where, store=store, **filters), store, agg)
    if refs:
        from guild_jupyter.cli.refs import select_ids

        ids = select_ids(store, list(refs), deleted=None)
        present = set(df["id"])
        df = df.set_index("id").loc[[i for i in ids if i in present]].reset_index()
    cols = ["id", "op", "status", "started", "label"] + [
        c for c in df.columns if c.startswith(("flags.", "scalars."))]
    df = df[cols]
    return df.dropna(axis=1, how="all").reset_index(drop=True) if len(df) else df.reset_index(drop=True)


def compare(where: str | None = None, *, agg: str | Mapping[str, str] = "last", store=None, **filters: Any):
    """``runs(where, **filters)`` with each scalar column aggregated by ``agg``
    (``last`` (default), ``first``, ``min``, ``max``, ``mean``, ``count``; or a ``{key: agg}`` map)."""
    from guild_jupyter.experiment.api import default_store, runs

    store = store or default_store()
    return apply_aggregates(runs(where, store=store, **filters), store, agg)
