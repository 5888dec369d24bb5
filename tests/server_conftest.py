"""Fixtures for the server extension tests (imported by tests/test_server*.py).

pytest-jupyter's tornado test server and pytest-asyncio (auto mode) run on
different loops unless ``http_server``/``http_server_client`` are async
fixtures, as jupyterlab-git's tests do; they are overridden here.
"""

from __future__ import annotations

import asyncio
import json
import time

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

