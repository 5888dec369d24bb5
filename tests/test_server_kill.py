"""kill -9 of the Jupyter server while 4 runs are going, then a restart: the runs
(owned by detached supervisors) go on, end in their right status, and the new
server's event stream reports them. A real ``jupyter server`` in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest
import tornado.websocket

from tests.conftest import _kill_leftovers
from tests.server_conftest import TOKEN, Server

from guild_jupyter.storage.store import RunStore

SCRIPT = '''\
import os, sys, time
go = ""
fail = False
print("started", flush=True)
while not os.path.exists(go):
    time.sleep(0.02)
print("finishing", flush=True)
sys.exit(3 if fail else 0)
'''


@pytest.fixture
def env(tmp_path, home):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "wait.py").write_text(SCRIPT)
    store = RunStore(home, progress=lambda *_: None)
    servers = []
    yield tmp_path, home, store, servers
    for s in servers:
        s.kill()
    (tmp_path / "go").touch()
    _kill_leftovers(store)


async def test_kill_9_server_during_4_runs_then_restart(env):
    tmp, home, store, servers = env
    go = str(tmp / "go")
    a = Server(tmp, home)
    servers.append(a)
    await asyncio.to_thread(a.wait_up)
    flags = [{"go": go}, {"go": go}, {"go": go, "fail": True}, {"go": go + ".never"}]
    ids = [(await asyncio.to_thread(a.request, "POST", "runs", {"op": "wait.py", "flags": f}))["id"] for f in flags]

    deadline = time.monotonic() + 60
    while not all(store.load_run(i).status.value == "running" and "started" in store.read_output(i) for i in ids):
        assert time.monotonic() < deadline, [store.load_run(i).status for i in ids]
        await asyncio.sleep(0.05)

    a.kill()
    b = Server(tmp, home)
    servers.append(b)
    await asyncio.to_thread(b.wait_up)
    assert all(store.load_run(i).status.value == "running" for i in ids)  # nothing was lost or failed

    ws = await tornado.websocket.websocket_connect(tornado.httpclient.HTTPRequest(
        f"ws://127.0.0.1:{b.port}/guild/api/events", headers={"Authorization": f"token {TOKEN}"}))
    hello = json.loads(await ws.read_message())
    assert hello["type"] == "hello"
    Path(go).touch()
    await asyncio.to_thread(b.request, "POST", f"runs/{ids[3]}/stop", {})
    want = {ids[0]: "completed", ids[1]: "completed", ids[2]: "failed", ids[3]: "cancelled"}
    seen: dict[str, str] = {}
    output: dict[str, str] = {}

    async def read():
        while set(seen) != set(want):
            msg = json.loads(await ws.read_message())
            if msg.get("type") == "status" and msg["status"] in ("completed", "failed", "cancelled"):
                seen[msg["run"]] = msg["status"]
            if msg.get("type") == "output":
                output[msg["run"]] = output.get(msg["run"], "") + msg["text"]

    await asyncio.wait_for(read(), 60)
    ws.close()
    assert seen == want
    assert all("finishing" in output.get(i, "") for i in ids[:3])
    for i, status in want.items():
        run = store.load_run(i)
        assert run.status.value == status
        assert len(run.attempts) == 1
    assert store.load_run(ids[2]).exit_code == 3
    b.stop()
