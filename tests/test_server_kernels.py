"""Magics in a kernel started BY a real Jupyter server (a ``jupyter server`` subprocess,
its kernel started through its REST API): runs are launched by the server's
orchestrator (``POST runs/{id}/start``), ``%guild stop`` and interrupts stop them
through it; without a server the same cell gives the same run, launched embedded.

The test talks to the server's kernel over ZMQ with the connection file the
server wrote into its runtime directory (the kernel is the server's own child,
with ``JPY_PARENT_PID`` = the server's pid). The server logs at DEBUG level, so
its log shows each API request it answered.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request

import pytest
from jupyter_client import BlockingKernelClient, KernelManager

from guild_jupyter.storage.store import RunStore
from tests.conftest import _kill_leftovers
from tests.server_conftest import TOKEN, Server

CELL = "%%guild_run -l same -t t1\nlr = 0.1\nepochs = 2\nfor i in range(epochs):\n    print(f'loss: {lr * (i + 1)}', flush=True)\nopen('out.txt', 'w').write('x')\n"
LONG = "%%guild_run{opts}\nimport time\nprint('started', flush=True)\nfor _ in range(600):\n    time.sleep(0.1)\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("srvk")
    home = tmp / "home"
    (tmp / "root" / "nb").mkdir(parents=True)
    s = Server(tmp, home, log_level="DEBUG")
    try:
        s.wait_up()
        kernel = _post(s, "api/kernels", {"name": "python3"})
        kc = BlockingKernelClient(connection_file=str(tmp / "runtime" / f"kernel-{kernel['id']}.json"))
        kc.load_connection_file()
        kc.start_channels(hb=False)  # no heartbeat: a slow first beat reads as a dead kernel
        kc.wait_for_ready(timeout=60)
        nbdir = tmp / "root" / "nb"
        out = execute(kc, f"import os\nos.chdir({str(nbdir)!r})\n%load_ext guild_jupyter\nprint(os.environ['JPY_PARENT_PID'])")
        assert out["text"].strip() == str(s.proc.pid), out  # a kernel of this server
        yield s, kc, kernel["id"], RunStore(home, progress=lambda *_: None), nbdir
        kc.stop_channels()
    finally:
        s.stop()
        _kill_leftovers(RunStore(home, progress=lambda *_: None))


def _post(s, path, body):
    req = urllib.request.Request(s.url + path, method="POST", data=json.dumps(body).encode(),
                                 headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


def execute(kc, code, timeout=120, during=None):
    """Run ``code``; collect its text output, errors and comm messages (``during(elapsed)``
    is called while waiting, for interrupts)."""
    msg_id = kc.execute(code)
    out = {"text": "", "errors": [], "comms": []}
    start = time.monotonic()
    while True:
        if during is not None:
            during(time.monotonic() - start)
        try:
            msg = kc.get_iopub_msg(timeout=0.2)
        except Exception:
            if time.monotonic() - start > timeout:
                raise AssertionError(f"cell did not finish: {out}") from None
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            out["text"] += content["text"]
        elif kind in ("execute_result", "display_data"):
            out["text"] += content["data"].get("text/plain", "")
        elif kind == "error":
            out["errors"].append(f"{content['ename']}: {content['evalue']}")
        elif kind.startswith("comm"):
            out["comms"].append(content)
        elif kind == "status" and content["execution_state"] == "idle":
            return out


def log_text(s):
    s.log.flush()
    return (s.tmp / f"server-{s.port}.log").read_text(errors="replace")


def newest(store, before):
    new = [r["id"] for r in store.list_rows(deleted=None) if r["id"] not in before]
    assert len(new) == 1, new
    return store.load_run(new[0])


def ids(store):
    return {r["id"] for r in store.list_rows(deleted=None)}


def test_cell_run_is_launched_by_the_server(server):
    s, kc, _, store, nbdir = server
    before = ids(store)
    out = execute(kc, CELL)
    assert not out["errors"], out
    assert "loss: 0.2" in out["text"]  # streamed into the cell from the store
    run = newest(store, before)
    assert run.status.value == "completed" and run.source["submitted_via"] == "server"
    assert re.search(rf"200 POST /guild/api/runs/{run.id}/start ", log_text(s))
    # the run inherited the kernel's environment (the server has no JPY_PARENT_PID of its own)
    with open(os.path.join(store.meta_dir(run.id), "provenance.json")) as f:
        prov = json.load(f)
    assert prov["env"].get("JPY_PARENT_PID") == str(s.proc.pid)
    # %guild run and %guild rerun go the same way
    (nbdir / "train.py").write_text("lr = 0.1\nprint(f'loss: {lr}')\n")
    before = ids(store)
    out = execute(kc, "%guild run train.py lr=0.3")
    assert not out["errors"] and "loss: 0.3" in out["text"], out
    script_run = newest(store, before)
    assert script_run.source["submitted_via"] == "server" and script_run.status.value == "completed"
    before = ids(store)
    out = execute(kc, f"%guild rerun {script_run.id} lr=0.4")
    assert not out["errors"] and "loss: 0.4" in out["text"], out
    again = newest(store, before)
    assert again.source["submitted_via"] == "server" and again.source.get("rerun_of") == script_run.id
    assert re.search(rf"200 POST /guild/api/runs/{again.id}/start ", log_text(s))


def test_guild_stop_goes_through_the_server(server):
    s, kc, _, store, nbdir = server
    before = ids(store)
    out = execute(kc, LONG.format(opts=" --background"))
    assert not out["errors"], out
    run = newest(store, before)
    deadline = time.monotonic() + 30
    while "started" not in store.read_output(run.id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.source["submitted_via"] == "server"
    out = execute(kc, f"%guild stop {run.id[:8]}")
    assert not out["errors"], out
    assert f"{run.short_id} cancelled" in out["text"]
    assert store.load_run(run.id).status.value == "cancelled"
    assert re.search(rf"200 POST /guild/api/runs/{run.id}/stop ", log_text(s))


def test_interrupt_stops_a_foreground_run_through_the_server(server):
    s, kc, kernel_id, store, nbdir = server
    before = ids(store)
    sent = []

    def interrupt(elapsed):
        new = ids(store) - before
        if not sent and new and elapsed > 1.0 and "started" in store.read_output(next(iter(new))):
            _post(s, f"api/kernels/{kernel_id}/interrupt", {})
            sent.append(elapsed)

    out = execute(kc, LONG.format(opts=""), during=interrupt)
    assert sent, out
    run = newest(store, before)
    assert f"UsageError: run {run.short_id} cancelled: interrupted" in out["text"], out
    assert run.status.value == "cancelled" and run.reason == "interrupted"
    assert re.search(rf"200 POST /guild/api/runs/{run.id}/stop ", log_text(s))
    # the foreground run had its live widget (comms) in the server's kernel too (after 0.25 s)
    assert any("ButtonModel" in json.dumps(c) for c in out["comms"])


def test_without_a_server_the_same_cell_gives_the_same_run(server, tmp_path):
    s, kc, _, store, nbdir = server
    before = ids(store)
    assert not execute(kc, CELL)["errors"]
    via_server = newest(store, before)
    env = dict(os.environ, GUILD_JUPYTER_HOME=str(store.home))
    for var in ("RUN_ID", "RUN_DIR", "GUILD_JUPYTER_SERVER_URL", "GUILD_JUPYTER_SERVER_PID"):
        env.pop(var, None)
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(nbdir), env=env)  # JPY_PARENT_PID = this process: no server
    try:
        kc2 = km.client()
        kc2.start_channels()
        kc2.wait_for_ready(timeout=60)
        assert not execute(kc2, "%load_ext guild_jupyter")["errors"]
        before = ids(store)
        out = execute(kc2, CELL)
        assert not out["errors"], out
        embedded = newest(store, before)
        # fallbacks: a server that does not answer, and one whose store lacks the run
        checks = execute(kc2, (
            "import os\nfrom guild_jupyter.notebook import submission\n"
            f"os.environ.update(GUILD_JUPYTER_SERVER_PID={str(s.proc.pid)!r}, GUILD_JUPYTER_SERVER_URL='http://127.0.0.1:9/',"
            f" JUPYTER_RUNTIME_DIR={str(s.tmp / 'runtime')!r})\n"
            "submission.forget_server()\nprint('dead', submission.server_client())\n"
            f"os.environ.update(GUILD_JUPYTER_SERVER_URL={s.url!r})\nsubmission.forget_server()\n"
            "print('live', type(submission.server_client()).__name__)\n"
            f"os.environ.update(GUILD_JUPYTER_HOME={str(tmp_path / 'other')!r})"))
        assert "dead None" in checks["text"] and "live ServerClient" in checks["text"], checks
        other = RunStore(tmp_path / "other", progress=lambda *_: None)
        out = execute(kc2, "%%guild_run\nx = 1\nprint('x:', x)")
        assert not out["errors"] and "x: 1" in out["text"], out
        (fallback,) = other.list_rows()
        assert other.load_run(fallback["id"]).source["submitted_via"] == "embedded"
        assert other.load_run(fallback["id"]).status.value == "completed"
        assert re.search(rf"404 POST /guild/api/runs/{fallback['id']}/start ", log_text(s))
        kc2.stop_channels()
    finally:
        km.shutdown_kernel(now=True)
        _kill_leftovers(RunStore(tmp_path / "other", progress=lambda *_: None))
    assert embedded.source["submitted_via"] == "embedded" and via_server.source["submitted_via"] == "server"
    a, b = via_server.to_dict(), embedded.to_dict()
    for d in (a, b):
        d.pop("id"), d.pop("created"), d.pop("started"), d.pop("stopped")
        d["source"].pop("submitted_via")
        d["attempts"] = [{k: v for k, v in att.items() if k in ("n", "status", "exit_code", "reason", "host")}
                         for att in d["attempts"]]
    assert a == b
    assert store.read_output(via_server.id) == store.read_output(embedded.id)

    def files(run):
        root = store.run_dir(run.id)
        return sorted(re.sub(r"/p\d+-", "/p<pid>-", os.path.relpath(os.path.join(d, f), root))  # writer pids
                      for d, _, fs in os.walk(root) for f in fs if not f.startswith(("supervisor", "events.out")))

    assert files(via_server) == files(embedded)
    def points(run):  # sys/* resource samples depend on timing
        return sorted((k, step, v) for k, step, v, _t in store.iter_run_points(run.id) if not k.startswith("sys/"))

    assert points(via_server) == points(embedded)
    assert [v for _k, _s, v in points(embedded)] == [0.1, 0.2]
