"""Storage and retrieval: run directories plus a derived SQLite index."""

from guild_jupyter.storage.base import BaseRunStore
from guild_jupyter.storage.store import CorruptRunWarning, RunStore

__all__ = ["BaseRunStore", "CorruptRunWarning", "RunStore"]
