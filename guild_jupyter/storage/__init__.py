"""Storage and retrieval: run directories plus a derived SQLite index.

Names are loaded on first use so that light modules (the scalar files used
inside a run) do not pull in the whole store.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "BaseRunStore": "guild_jupyter.storage.base",
    "RunStore": "guild_jupyter.storage.store",
    "CorruptRunWarning": "guild_jupyter.storage.store",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'guild_jupyter.storage' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
