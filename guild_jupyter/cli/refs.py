"""Run references on the command line: ids, prefixes, indexes (1 = newest), ranges ``1:3``."""

from __future__ import annotations

from collections.abc import Iterable

from guild_jupyter.errors import GuildError
from guild_jupyter.storage.store import RunStore


def select_ids(store: RunStore, refs: Iterable[str], *, deleted: bool | None = False) -> list[str]:
    ids: list[str] = []
    for ref in refs:
        if ":" in ref:
            lo, _, hi = ref.partition(":")
            if not (lo or "1").isdigit() or not (hi or "0").isdigit():
                raise GuildError(f"invalid run range {ref!r}: use START:END with indexes, e.g. 1:3")
            start = int(lo or 1)
            rows = store.list_rows(deleted=deleted)
            end = int(hi) if hi else len(rows)
            found = [r["id"] for r in rows[start - 1 : end]]
        else:
            found = [store.resolve_id(ref, deleted=deleted)]
        ids.extend(i for i in found if i not in ids)
    return ids
