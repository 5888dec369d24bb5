"""Function operations: ``run(fn, flags={...})`` calls ``fn(**flags)`` as a recorded run.

The simplest operation kind and the cheapest (no process): flags come from
the function's signature, printed output and its scalars are captured, a
returned dict of numbers becomes scalars, an exception marks the run failed
and is raised again.
"""

from __future__ import annotations

import inspect
import numbers
import os
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from guild_jupyter.model.flags import FlagDef, resolve_flags
from guild_jupyter.model.run import Run, hostname, new_run
from guild_jupyter.model.status import RunStatus
from guild_jupyter.orchestration.process_info import self_identity
from guild_jupyter.storage.output import STDERR
from guild_jupyter.storage.pending import PendingRun
from guild_jupyter.storage.store import RunStore
from guild_jupyter.tracking import logger
from guild_jupyter.tracking.capture import Capture
from guild_jupyter.tracking.recorder import RunRecorder


def function_flags(fn: Callable[..., Any]) -> tuple[dict[str, FlagDef], bool]:
    """Flag definitions from the signature, and whether it takes ``**kwargs``."""
    defs: dict[str, FlagDef] = {}
    var_kw = False
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            if p.default is p.empty:
                defs[p.name] = FlagDef(p.name, required=True)
            else:
                defs[p.name] = FlagDef(p.name, p.default)
    return defs, var_kw


class FunctionOperation:
    """A function as an operation object (what sweeps run trials of)."""

    kind = "function"

    def __init__(self, fn: Callable[..., Any], op: str | None = None) -> None:
        self.fn = fn
        self.name = op or function_op_name(fn)
        self._defs, self.accepts_any_flag = function_flags(fn)

    def flag_defs(self) -> dict[str, FlagDef]:
        return self._defs


def function_op_name(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__
    module = getattr(fn, "__module__", None)
    return name if module in (None, "__main__", "builtins") else f"{module}.{name}"


def run_function(
    fn: Callable[..., Any],
    flags: Mapping[str, Any] | None = None,
    *,
    store: RunStore,
    label: str = "",
    tags: Iterable[str] = (),
    op: str | None = None,
    output_scalars: Any = None,
    sweep: str | None = None,
) -> Run:
    op_name = op or function_op_name(fn)
    defs, var_kw = function_flags(fn)
    resolved = resolve_flags(
        defs, dict(flags or {}), op=f"function {op_name}", allow_unknown=var_kw
    )
    pid, pid_started = self_identity()
    # written behind, as an --inline cell is (storage.pending): a short call's run is
    # written once, already ended; a long one is written running within 0.1 s
    run = new_run(
        op_name,
        kind="function",
        flags=resolved,
        label=label,
        tags=tags,
        source={
            "function": getattr(fn, "__qualname__", op_name),
            "module": getattr(fn, "__module__", None),
            "code": function_source(fn),
        },
        running={"pid": pid, "pid_started": pid_started, "host": hostname()},
        sweep=sweep,
    )
    pending = PendingRun(store, run)
    recorder = RunRecorder(store, run.id, output_scalars, pending=pending)
    previous = logger.activate(recorder)
    status, reason, error, result = RunStatus.COMPLETED, None, None, None
    try:
        with Capture(recorder.on_line):
            result = fn(**resolved)
    except BaseException as e:  # recorded, then raised again below
        error = e
        status = RunStatus.CANCELLED if isinstance(e, KeyboardInterrupt) else RunStatus.FAILED
        reason = (
            "interrupted"
            if isinstance(e, KeyboardInterrupt)
            else f"{type(e).__name__}: {e}".splitlines()[0]
        )
        import time

        t = time.time()
        for line in "".join(traceback.format_exception(e)).splitlines():
            recorder.on_line(line, STDERR, t)
    finally:
        logger.activate(previous)
    if error is None and isinstance(result, Mapping):
        for key, value in result.items():
            if isinstance(value, numbers.Real) and isinstance(key, str):
                recorder.scalars.add(key, None, float(value))
    final = pending.finish(status, recorder.made_scalar_writer(),
                           exit_code=0 if error is None else 1, reason=reason)
    recorder.close()
    final.result = result  # type: ignore[attr-defined]  # the function's own return value
    if error is not None:
        raise error
    return final


def function_source(fn: Callable[..., Any]) -> str | None:
    """The function's code, kept in the run record (its source snapshot)."""
    code = getattr(fn, "__code__", None)
    try:
        mtime = os.stat(code.co_filename).st_mtime if code is not None else None
    except OSError:
        mtime = None
    key = (code, mtime)
    if code is not None and key in _source_cache:
        return _source_cache[key]
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        source = None
    if code is not None:
        _source_cache[key] = source
    return source


_source_cache: dict[Any, str | None] = {}
