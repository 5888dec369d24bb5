"""Fixtures for the server extension tests (imported by tests/test_server*.py).

pytest-jupyter's tornado test server and pytest-asyncio (auto mode) run on
different loops unless ``http_server``/``http_server_client`` are async
fixtures, as jupyterlab-git's tests do; they are overridden here.
"""

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
import tornado.httpserver
from pytest_jupyter.pytest_tornasync import AsyncHTTPServerClient
from tornado.httpclient import HTTPClientError

from guild_jupyter.storage.store import RunStore


@pytest.fixture
def jp_server_config(home, monkeypatch):
    # the extension exports its address; keep it out of other tests
    monkeypatch.setenv("GUILD_JUPYTER_SERVER_URL", "")
    monkeypatch.setenv("GUILD_JUPYTER_SERVER_PID", "")
    return {
        "ServerApp": {
            "jpserver_extensions": {"guild_jupyter": True},
            "allow_unauthenticated_access": False,
            "terminals_enabled": False,
        },
    }


@pytest.fixture
async def http_server(jp_web_app, http_server_port):
    server = tornado.httpserver.HTTPServer(jp_web_app)
    server.add_socket(http_server_port[0])
    yield server
    manager = jp_web_app.settings.get("guild_jupyter")
    if manager is not None:
        await manager.stop()
    server.stop()
    await server.close_all_connections()
    http_server_port[0].close()


@pytest.fixture
async def http_server_client(http_server):
    client = AsyncHTTPServerClient(http_server=http_server)
    yield client
    client.close()


@pytest.fixture
def gj_store(home):
    """The store the server uses; leftover run processes are killed afterwards."""
    from tests.conftest import _kill_leftovers

    s = RunStore(home, progress=lambda *_: None)
    yield s
    _kill_leftovers(s)


@pytest.fixture
def api(jp_fetch):
    """``await api("GET", "runs", ...)`` -> (status, JSON); 4xx/5xx do not raise."""

    async def call(method, *path, body=None, params=None, raw=False, **kw):
        if body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        if body is None and method in ("POST", "PATCH", "PUT"):
            body = ""
        try:
            r = await jp_fetch("guild", "api", *path, method=method, body=body, params=params,
                               allow_nonstandard_methods=True, **kw)
        except HTTPClientError as e:
            r = e.response
        if raw:
            return r
        text = r.body.decode("utf-8") if r.body else ""
        return r.code, (json.loads(text) if text else None)

    return call


async def wait_for(predicate, timeout=30.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


TERMINAL = ("completed", "failed", "cancelled")


async def finished(api, run_id, timeout=60):
    async def check():
        code, r = await api("GET", "runs", run_id)
        assert code == 200, r
        return r if r["status"] in TERMINAL else None

    return await wait_for(check, timeout=timeout)


SCRIPT = '''\
import time
lr = 0.1
epochs = 3
sleep = 0.0
for i in range(epochs):
    print(f"step {i} lr={lr}", flush=True)
    print(f"loss: {1.0 / (i + 1)}", flush=True)
    time.sleep(sleep)
print("done", flush=True)
'''


@pytest.fixture
def script(jp_root_dir):
    d = jp_root_dir / "proj"
    d.mkdir(exist_ok=True)
    (d / "train.py").write_text(SCRIPT)
    return "proj/train.py"



REPO = Path(__file__).resolve().parent.parent
TOKEN = "guild-test-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp: Path, home: Path, **server_app: object) -> None:
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
            "port_retries": 0, "ip": "127.0.0.1", "root_dir": str(tmp / "root"), **server_app},
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
