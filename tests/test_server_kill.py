"""kill -9 of the Jupyter server while 4 runs are going, then a restart: the runs
(owned by detached supervisors) go on, end in their right status, and the new
server's event stream reports them. A real ``jupyter server`` in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import tornado.websocket

from tests.conftest import _kill_leftovers

from guild_jupyter.storage.store import RunStore

REPO = Path(__file__).resolve().parent.parent
TOKEN = "kill-test-token"
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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp: Path, home: Path) -> None:
        self.tmp, self.home = tmp, home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = dict(os.environ, GUILD_JUPYTER_HOME=str(home), GUILD_JUPYTER_MAX_RUNS="4", JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
                   JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_DATA_DIR=str(tmp / "data"),
                   PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))
        config = tmp / "server_config.json"
        config.write_text(json.dumps({"ServerApp": {
            "jpserver_extensions": {"guild_jupyter": True, "jupyterlab": False, "jupyter_lsp": False,
                                    "notebook_shim": False, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": False, "allow_root": True,
            "terminals_enabled": False, "open_browser": False, "port": self.port,
            "port_retries": 0, "ip": "127.0.0.1", "root_dir": str(tmp / "root")},
            "IdentityProvider": {"token": TOKEN}}))
        self.log = open(tmp / f"server-{self.port}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "jupyter_server", f"--config={config}"], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def request(self, method, path, body=None):
        req = urllib.request.Request(self.url + "guild/api/" + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {TOKEN}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def wait_up(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {(self.tmp / f'server-{self.port}.log').read_text()[-3000:]}")
            try:
                return self.request("GET", "runs")
            except OSError:
                time.sleep(0.1)
        raise AssertionError("server did not come up")

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.log.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


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
