"""Cells run through a kernel client of their own (not nbclient), for the tests that
interrupt a cell or click its widgets while it is still running."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# a foreground run, and a cell sweep, that go on for a minute unless stopped
LONG_CELL = ("%%guild_run\nimport time\nprint('started', flush=True)\n"
             "for _ in range(600):\n    time.sleep(0.1)\n")
LONG_SWEEP_CELL = ("%%guild_run n=[1,2,3]\nn = 1\nimport time\nprint('trial', n, flush=True)\n"
                   "for _ in range(600):\n    time.sleep(0.1)\n")


@contextmanager
def executing(km: Any, source: str) -> Iterator[tuple[Any, str]]:
    """(client, msg_id) of ``source`` sent for execution; the client's channels are
    stopped on the way out."""
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=30)
        yield kc, kc.execute(source)
    finally:
        kc.stop_channels()


def shell_reply(kc: Any, msg_id: str, timeout: float = 60) -> dict[str, Any]:
    """The execute reply to ``msg_id`` (other replies skipped)."""
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    return reply


def click(kc: Any, comm_id: str) -> None:
    """What a front end sends when a Button widget is clicked."""
    click = {"method": "custom", "content": {"event": "click"}}
    kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": comm_id, "data": click}))


def cell_messages(kc: Any, msg_id: str, timeout: float = 90) -> Iterator[tuple[str | None, Any]]:
    """(kind, content) of the cell's iopub messages until it is idle (that one included)
    or ``timeout``; (None, None) after each 0.2 s without one, so a caller can act on
    what it polls meanwhile."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=0.2)
        except Exception:
            yield None, None
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        yield kind, content
        if kind == "status" and content["execution_state"] == "idle":
            return
