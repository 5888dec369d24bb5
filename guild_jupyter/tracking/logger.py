"""``guild_jupyter.log()`` and ``checkpoint()``: the in-run API.

Inside an in-process run (a function run, an ``--inline`` cell) the active
recorder is set by the runner. In a run's own process (scripts, cells run in a
subprocess) the runner passes ``RUN_ID`` and ``GUILD_JUPYTER_HOME`` in the
environment and the first ``log()`` opens a recorder for it.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from guild_jupyter.errors import GuildError
from guild_jupyter.tracking.recorder import RunRecorder

_active: RunRecorder | None = None
_env_recorder: RunRecorder | None = None
_env_lock = threading.Lock()


def activate(recorder: RunRecorder | None) -> RunRecorder | None:
    """Make ``recorder`` receive ``log()`` calls; returns the previous one."""
    global _active
    previous, _active = _active, recorder
    return previous


def current_recorder() -> RunRecorder | None:
    return _active or _recorder_from_env()


def _recorder_from_env() -> RunRecorder | None:
    global _env_recorder
    if _env_recorder is not None:
        return _env_recorder
    run_id, home = os.environ.get("RUN_ID"), os.environ.get("GUILD_JUPYTER_HOME")
    if not run_id or not home:
        return None
    with _env_lock:
        if _env_recorder is None:
            from guild_jupyter.storage.store import RunStore

            _env_recorder = RunRecorder(RunStore(home), run_id, capture_output=False)
    return _env_recorder


def log(step: int | None = None, **values: Any) -> None:
    """Record scalars, e.g. ``log(step=epoch, loss=l, acc=a)``.

    Returns at once: points are queued and written by a background thread a
    few times a second and at exit. Without ``step`` each key continues its
    own series (0, 1, 2, ...).
    """
    rec = _active or _recorder_from_env()
    if rec is None:
        raise GuildError(
            "guild_jupyter.log() was called outside a run; start one with "
            "guild_jupyter.run(...) or a %%guild_run cell"
        )
    if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
        try:
            step = int(step)  # numpy integers and the like
        except (TypeError, ValueError):
            raise GuildError(f"log(): step must be an integer, got {step!r}") from None
    try:
        floats = {k: float(v) for k, v in values.items()}
    except (TypeError, ValueError):
        bad = next(k for k, v in values.items() if not _is_number(v))
        raise GuildError(f"log(): scalar {bad!r} must be a number, got {values[bad]!r}") from None
    if not rec.known_keys.issuperset(floats):
        rec.check_keys(floats)
    rec.scalars.add_many(step, floats, time.time())


def _is_number(v: Any) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def checkpoint(path: str | os.PathLike[str]) -> None:
    """Declare ``path`` the run's latest checkpoint (a restart gets it back)."""
    rec = _active or _recorder_from_env()
    if rec is None:
        raise GuildError("guild_jupyter.checkpoint() was called outside a run")
    from guild_jupyter.storage.layout import atomic_write_json

    full = os.path.abspath(path)
    if not os.path.exists(full):
        raise GuildError(f"checkpoint {path!r} does not exist")
    atomic_write_json(
        os.path.join(rec.meta_dir, "checkpoint.json"), {"path": full, "time": time.time()}
    )
