"""What the server's modules share: the API's errors and run JSON."""

from __future__ import annotations

import math
from typing import Any

from guild_jupyter.errors import GuildError

TERMINAL = frozenset({"completed", "failed", "cancelled"})


class BadRequest(GuildError):
    """Input the API rejects (HTTP 400)."""


class RunFileNotFound(GuildError):
    """A run exists but has no such file (HTTP 404)."""


def run_json(run: Any) -> dict[str, Any]:
    d = run.to_dict()
    d["deleted"] = bool(run.deleted)
    d["reason"] = run.reason
    d["exit_code"] = run.exit_code
    return _clean(d)


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
