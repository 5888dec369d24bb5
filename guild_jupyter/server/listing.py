"""Run listings (``GET runs``, rendered and cached as JSON text), comparing runs,
and parsing request parameters."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from guild_jupyter.server.common import BadRequest, _finite
from guild_jupyter.storage.index import quote
from guild_jupyter.storage.query import RunFilter

LIST_FIELDS = ("id", "op", "kind", "status", "created", "started", "stopped", "label", "tags",
               "sweep", "attempts", "exit_code", "reason", "deleted")
SORTABLE_FIXED = frozenset(LIST_FIELDS) - {"tags"}
_SQLITE_INF = re.compile(r"[:\[,]-?Inf\b")
ROW_CACHE_MAX = 20_000  # listing rows kept rendered (about 600 bytes each), at most


class ListingMixin:
    """The :class:`~guild_jupyter.server.manager.Manager`'s listings: its ``__init__``
    sets ``store``, ``_row_cache`` and ``_row_cache_lock``."""

    _row_cache: dict[tuple, dict[str, tuple[float, str]]]
    _row_cache_lock: threading.Lock


    # queries -------------------------------------------------------------------
    def list_runs(self, params: dict[str, list[str]]) -> tuple[str, list[str]]:
        """``GET runs``: filters, paging, sorting, flag and scalar columns. Returns the JSON
        document's head (up to ``"runs": [``) and the rows' JSON texts, so a big listing is
        written in pieces; the document ends with ``]}``."""
        one = _one(params)
        deleted_text = one("deleted", "false").lower()
        deleted: bool | None = {"false": False, "0": False, "true": True, "1": True, "any": None}.get(deleted_text, ...)  # type: ignore[arg-type]
        if deleted is ...:
            raise BadRequest(f"deleted must be true, false or any, not {deleted_text!r}")
        statuses = _many(params, "status")
        f = RunFilter(op=one("op"), status=statuses or None, label=one("label"), tag=_many(params, "tag") or None,
                      started_after=_number_or_text(one("started_after")),
                      started_before=_number_or_text(one("started_before")), sweep=one("sweep"), deleted=deleted)
        limit = _int(one("limit"), "limit", minimum=0)
        offset = _int(one("offset"), "offset", minimum=0) or 0
        dynamic = self.store.index.dynamic_columns()
        wanted = one("columns")
        if wanted is None:
            extra = dynamic
        else:
            extra = []
            for name in filter(None, (c.strip() for c in wanted.split(","))):
                if name in ("flags", "scalars"):
                    extra += [c for c in dynamic if c.startswith(name + ".")]
                elif name in dynamic:
                    extra.append(name)
                elif not name.startswith(("flags.", "scalars.")):
                    raise BadRequest(f"unknown column {name!r}: use flags, scalars, flags.<name> or scalars.<key>")
                # a flag or scalar no run has yet is simply empty
            extra = list(dict.fromkeys(extra))
        sort = one("sort", "-created")
        desc = sort.startswith("-")
        sort_col = sort.lstrip("-+")
        if sort_col not in SORTABLE_FIXED and sort_col not in dynamic:
            if not sort_col.startswith(("flags.", "scalars.")):
                raise BadRequest(f"cannot sort by {sort_col!r}: use a run field, flags.<name> or scalars.<key>")
            sort_col = "created"
        sql, sql_params = f.sql("id")
        where = sql.rsplit(" ORDER BY ", 1)[0].split(" FROM runs", 1)[1]
        if sort_col == "created":  # NOT NULL and indexed: no sorting at all
            order = f" ORDER BY created {'DESC' if desc else 'ASC'}"
        else:
            order = f" ORDER BY {quote(sort_col)} IS NULL, {quote(sort_col)} {'DESC' if desc else 'ASC'}, created DESC"
        paging = f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else (
            f" LIMIT -1 OFFSET {int(offset)}" if offset else "")
        row_expr, expr_params = self._row_json_sql(extra)
        total = self.store.index.execute(f"SELECT count(*) FROM runs{where}", sql_params)[0][0]
        if min(total - offset, total if limit is None else limit) <= ROW_CACHE_MAX:
            texts = self._cached_rows(extra, row_expr, expr_params, f"FROM runs{where}{order}{paging}", sql_params)
        else:
            texts = [r[0] for r in self.store.index.execute(f"SELECT {row_expr} FROM runs{where}{order}{paging}",
                                                            [*expr_params, *sql_params])]
        if any("Inf" in t and _SQLITE_INF.search(t) for t in texts):
            # SQLite writes infinities as Inf (not JSON): the exact, slower path (null)
            columns = list(LIST_FIELDS) + extra
            _, full = self.store.index.query(
                f"SELECT {','.join(quote(c) for c in columns)} FROM runs{where}{order}{paging}", sql_params)
            texts = [json.dumps(d, allow_nan=False) for d in self._rows_to_json(columns, full)]
        head = json.dumps({"total": total, "offset": offset, "limit": limit, "columns": extra})
        return head[:-1] + ', "runs": [', texts

    def _cached_rows(self, extra: list[str], row_expr: str, expr_params: list[Any], tail: str,
                     params: list[Any]) -> list[str]:
        """Rows' JSON text, kept per run with the row's ``updated`` (every change of a row
        moves it) and the column set (a new flag or scalar column changes every row), so
        a listing renders only the rows that changed since the last one."""
        key = (tuple(extra), frozenset(self.store.index.bool_columns()))
        ids = self.store.index.execute(f"SELECT id, updated {tail}", params)
        with self._row_cache_lock:
            cache = self._row_cache.get(key)
            if cache is None:
                cache = self._row_cache[key] = {}
                while len(self._row_cache) > 4:  # a few column sets (the default and some pages)
                    self._row_cache.pop(next(iter(self._row_cache)))
            missing = [i for i, updated in ids if cache.get(i, (None,))[0] != updated]
            if len(missing) > len(ids) // 4:  # mostly new: one ordered query renders them all
                rows = self.store.index.execute(f"SELECT id, updated, {row_expr} {tail}", [*expr_params, *params])
                for run_id, updated, text in rows:
                    cache[run_id] = (updated, text)
                return [r[2] for r in rows]
            for start in range(0, len(missing), 500):
                part = missing[start:start + 500]
                for run_id, updated, text in self.store.index.execute(
                        f"SELECT id, updated, {row_expr} FROM runs WHERE id IN ({','.join('?' * len(part))})",
                        [*expr_params, *part]):
                    cache[run_id] = (updated, text)
            if len(cache) > ROW_CACHE_MAX:  # runs gone from the index (purged) linger until then
                live = {i for i, _ in ids}
                for run_id in [i for i in cache if i not in live]:
                    del cache[run_id]
            return [cache[i][1] for i, _ in ids]

    def _row_json_sql(self, extra: list[str]) -> tuple[str, list[Any]]:
        """One SQL expression rendering a listing row as JSON text, in SQLite: building
        and encoding 10,000s of dicts in Python costs several times more. Numbers are
        SQLite's JSON rendering (15 significant digits); a flag or scalar the run does
        not have is null; infinities become null (through the Python path)."""
        bools = self.store.index.bool_columns()
        params: list[Any] = []

        def value(col: str) -> str:
            c = quote(col)
            if col in bools:
                return f"CASE WHEN {c} IS NULL THEN NULL WHEN {c} THEN json('true') ELSE json('false') END"
            return c

        def obj(cols: list[str]) -> str:
            parts = []
            for start in range(0, len(cols), 60):  # SQLite functions take at most 127 arguments
                pairs = []
                for col in cols[start:start + 60]:
                    pairs.append(f"?, {value(col)}")
                    params.append(col.split(".", 1)[1])
                parts.append(f"json_object({', '.join(pairs)})")
            if not parts:
                return "json_object()"
            expr = parts[0]
            for part in parts[1:]:
                expr = f"json_patch({expr}, {part})"
            return expr

        fixed = ("json_object('id', id, 'op', op, 'kind', kind, 'status', status, "
                 "'created', created, 'started', started, 'stopped', stopped, "
                 "'label', label, 'tags', json(CASE WHEN tags IS NULL OR tags = '' THEN '[]' ELSE tags END), "
                 "'sweep', sweep, 'attempts', attempts, 'exit_code', exit_code, 'reason', reason, "
                 "'deleted', json(CASE WHEN deleted THEN 'true' ELSE 'false' END), ")
        flags = obj([c for c in extra if c.startswith("flags.")])
        scalars = obj([c for c in extra if c.startswith("scalars.")])
        return f"{fixed}'flags', {flags}, 'scalars', {scalars})", params

    def _rows_to_json(self, columns: list[str], rows: list[tuple]) -> list[dict[str, Any]]:
        bools = self.store.index.bool_columns()
        n_fixed = len(LIST_FIELDS)
        extra = columns[n_fixed:]
        kinds = [(c.split(".", 1)[0], c.split(".", 1)[1], c in bools, c.startswith("scalars.")) for c in extra]
        out = []
        for row in rows:
            d = dict(zip(LIST_FIELDS, row[:n_fixed]))
            tags = d["tags"]
            d["tags"] = json.loads(tags) if tags and tags != "[]" else []
            d["deleted"] = bool(d["deleted"])
            flags: dict[str, Any] = {}
            scalars: dict[str, Any] = {}
            for (kind, name, is_bool, is_scalar), value in zip(kinds, row[n_fixed:]):
                if value is None:
                    pass
                elif is_bool:
                    value = bool(value)
                elif is_scalar or isinstance(value, float):
                    value = _finite(value)
                (scalars if kind == "scalars" else flags)[name] = value
            d["flags"], d["scalars"] = flags, scalars
            out.append(d)
        return out

    def compare(self, refs: list[str]) -> dict[str, Any]:
        ids = list(dict.fromkeys(self.store.resolve_id(r, deleted=None) for r in refs))
        dynamic = self.store.index.dynamic_columns()
        columns = list(LIST_FIELDS) + dynamic
        rows: list[tuple] = []
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            _, found = self.store.index.query(
                f"SELECT {','.join(quote(c) for c in columns)} FROM runs WHERE id IN ({','.join('?' * len(part))})", part)
            rows += found
        by_id = {r[0]: r for r in rows}
        ordered = [by_id[i] for i in ids if i in by_id]
        n = len(LIST_FIELDS)
        used = [j for j in range(n, len(columns)) if any(r[j] is not None for r in ordered)]
        keep = list(range(n)) + used
        runs = self._rows_to_json([columns[j] for j in keep], [tuple(r[j] for j in keep) for r in ordered])
        flags = [columns[j][len("flags."):] for j in used if columns[j].startswith("flags.")]
        scalars = [columns[j][len("scalars."):] for j in used if columns[j].startswith("scalars.")]
        return {"runs": runs, "flags": flags, "scalars": scalars}


def _one(params: dict[str, list[str]]):
    def get(name: str, default: str | None = None) -> str | None:
        values = params.get(name)
        return values[-1] if values else default

    return get


def _many(params: dict[str, list[str]], name: str) -> list[str]:
    return [v.strip() for value in params.get(name, []) for v in value.split(",") if v.strip()]


def _int(text: str | None, name: str, minimum: int = 0) -> int | None:
    if text is None or text == "":
        return None
    try:
        n = int(text)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, not {text!r}") from None
    if n < minimum:
        raise BadRequest(f"{name} must be {minimum} or more")
    return n


def _number_or_text(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _tags(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise BadRequest(f"'{name}' must be a list of strings")
    return list(dict.fromkeys(t.strip() for t in value if t.strip()))


def parse_keys(values: list[str]) -> list[str] | None:
    keys = [k.strip() for v in values for k in v.split(",") if k.strip()]
    return keys or None
