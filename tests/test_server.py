"""The Jupyter server extension against a real server (pytest-jupyter): every route,
the event stream during real runs, auth, path traversal, bad input, the kernel client."""

from __future__ import annotations

import asyncio
import json
import os
import urllib.parse

import pytest
from tornado.httpclient import HTTPClientError

from tests.server_conftest import (  # noqa: F401  (fixtures)
    TERMINAL, api, finished, gj_store, http_server, http_server_client, jp_server_config, script,
    wait_for,
)

pytest_plugins = ("pytest_jupyter.jupyter_server",)

async def next_events(ws, until, timeout=60):
    """Messages from the socket until ``until(messages)`` is true."""
    got = []
    async def read():
        while not until(got):
            msg = await ws.read_message()
            assert msg is not None, "socket closed"
            got.append(json.loads(msg))
        return got

    return await asyncio.wait_for(read(), timeout)


async def test_run_lifecycle_over_rest_and_events(api, jp_ws_fetch, gj_store, script):
    ws = await jp_ws_fetch("guild", "api", "events")
    hello = json.loads(await ws.read_message())
    assert hello["type"] == "hello"
    code, run = await api("POST", "runs", body={"op": script, "flags": {"epochs": 3}, "label": "first",
                                                 "tags": ["a"]})
    assert code == 201, run
    rid = run["id"]
    assert run["op"] == script and run["flags"]["epochs"] == 3 and run["label"] == "first"

    def ended(msgs):
        return any(m["type"] == "status" and m["run"] == rid and m["status"] in TERMINAL for m in msgs)

    msgs = await next_events(ws, ended)
    mine = [m for m in msgs if m.get("run") == rid]
    kinds = [m["type"] for m in mine]
    assert kinds[0] == "run-created"
    assert mine[-1]["type"] == "status" and mine[-1]["status"] == "completed"
    text = "".join(m["text"] for m in mine if m["type"] == "output")
    assert "step 0 lr=0.1" in text and "step 2" in text and text.endswith("done\n")
    outs = [m for m in mine if m["type"] == "output"]
    assert outs[0]["offset"] == 0
    for a, b in zip(outs, outs[1:]):
        assert b["offset"] == a["next"]  # contiguous: nothing lost, nothing twice
    scalars = [m for m in mine if m["type"] == "scalars"]
    assert scalars and "loss" in scalars[-1]["scalars"]
    seqs = [m["seq"] for m in msgs]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

    # resume: a client that saw nothing after `hello` gets the same events again
    ws2 = await jp_ws_fetch("guild", "api", "events", params={"since": str(hello["seq"])})
    json.loads(await ws2.read_message())
    again = await next_events(ws2, ended)
    assert [m["seq"] for m in again] == seqs
    ws.close()
    ws2.close()

    # REST reads
    code, r = await api("GET", "runs", rid[:8])
    assert code == 200 and r["id"] == rid and r["status"] == "completed" and r["exit_code"] == 0
    code, out = await api("GET", "runs", rid, "output")
    assert out["text"] == text and out["next"] == len(text.encode())
    code, tail = await api("GET", "runs", rid, "output", params={"offset": str(outs[-1]["offset"])})
    assert code == 200 and tail["text"] == outs[-1]["text"]
    code, sc = await api("GET", "runs", rid, "scalars")
    assert code == 200 and sorted(sc["series"]["loss"]["value"]) == [pytest.approx(1 / 3), 0.5, 1.0], sc
    assert sc["series"]["loss"]["step"] == sorted(sc["series"]["loss"]["step"])
    code, sc = await api("GET", "runs", rid, "scalars", params={"keys": "nope"})
    assert code == 200 and sc["series"] == {}
    code, listing = await api("GET", "runs")
    assert listing["total"] == 1 and listing["runs"][0]["id"] == rid
    row = listing["runs"][0]
    assert row["flags"]["epochs"] == 3 and row["scalars"]["loss"] == pytest.approx(1 / 3) and row["tags"] == ["a"]

    # files, written by the run into its directory
    run_dir = gj_store.run_dir(rid)
    os.makedirs(os.path.join(run_dir, "sub"))
    with open(os.path.join(run_dir, "sub", "model.txt"), "w") as f:
        f.write("weights")
    code, files = await api("GET", "runs", rid, "files")
    assert code == 200 and {"path": "sub/model.txt", "size": 7} in [
        {k: f[k] for k in ("path", "size")} for f in files["files"]]
    resp = await api("GET", "runs", rid, "files", "sub", "model.txt", raw=True)
    assert resp.code == 200 and resp.body == b"weights"
    assert resp.headers["Content-Type"].startswith("text/plain")

    # PATCH, restart, delete
    code, r = await api("PATCH", "runs", rid, body={"label": "renamed", "tags": ["x", "y"], "remove_tags": ["y"]})
    assert code == 200 and r["label"] == "renamed" and r["tags"] == ["x"]
    code, r = await api("POST", "runs", rid, "restart")
    assert code == 200 and len(r["attempts"]) == 2
    r = await finished(api, rid)
    assert r["status"] == "completed" and len(r["attempts"]) == 2
    code, r = await api("DELETE", "runs", rid)
    assert code == 200 and r["deleted"] is True
    code, listing = await api("GET", "runs")
    assert listing["total"] == 0
    code, listing = await api("GET", "runs", params={"deleted": "true"})
    assert [x["id"] for x in listing["runs"]] == [rid]
    code, r = await api("DELETE", "runs", rid)
    assert code == 404  # not among live runs any more


async def test_stop_a_running_run(api, jp_ws_fetch, gj_store, script):
    code, run = await api("POST", "runs", body={"op": script, "flags": {"epochs": 1000, "sleep": 0.05}})
    assert code == 201, run
    rid = run["id"]

    async def printing():
        code, out = await api("GET", "runs", rid, "output")
        return "step 1" in out["text"]

    await wait_for(printing)
    code, r = await api("DELETE", "runs", rid)
    assert code == 409 and "stop it" in r["message"]
    code, r = await api("POST", "runs", rid, "stop")
    assert code == 200, r
    r = await finished(api, rid)
    assert r["status"] == "cancelled"
    code, r = await api("POST", "runs", rid, "stop")
    assert code == 409 and "already" in r["message"]


async def test_listing_filters_paging_sorting_compare(api, gj_store, script):
    ids = []
    for i, lr in enumerate([0.1, 0.3, 0.2]):
        code, run = await api("POST", "runs", body={"op": script, "flags": {"lr": lr, "epochs": 1},
                                                     "tags": ["even"] if i % 2 == 0 else []})
        assert code == 201, run
        ids.append(run["id"])
        await finished(api, run["id"])
    code, body = await api("GET", "runs", params={"sort": "flags.lr"})
    assert code == 200 and [r["flags"]["lr"] for r in body["runs"]] == [0.1, 0.2, 0.3]
    code, body = await api("GET", "runs", params={"sort": "-flags.lr", "limit": "2", "offset": "1"})
    assert [r["flags"]["lr"] for r in body["runs"]] == [0.2, 0.1] and body["total"] == 3
    code, body = await api("GET", "runs", params={"tag": "even"})
    assert sorted(r["id"] for r in body["runs"]) == sorted([ids[0], ids[2]])
    code, body = await api("GET", "runs", params={"status": "completed,failed", "columns": "flags.lr"})
    assert body["total"] == 3 and all(set(r["flags"]) == {"lr"} and r["scalars"] == {} for r in body["runs"])
    code, body = await api("GET", "runs", params={"columns": ""})
    assert all(r["flags"] == {} for r in body["runs"])
    code, body = await api("GET", "runs", params={"op": "other.py"})
    assert body["total"] == 0
    # rows are rendered once and kept with their version: a change shows at once
    code, body = await api("GET", "runs")
    assert [r["label"] for r in body["runs"]] == ["", "", ""]
    await api("PATCH", "runs", ids[1], body={"label": "changed"})
    code, body = await api("GET", "runs")
    assert [r["label"] for r in body["runs"]] == ["", "changed", ""]
    gj_store.create_run("op", kind="script", flags={"new_flag": 1})
    code, body = await api("GET", "runs")
    assert body["total"] == 4 and all("new_flag" in r["flags"] for r in body["runs"])
    code, body = await api("GET", "compare", params={"runs": f"{ids[0]},{ids[1][:10]}"})
    assert code == 200 and [r["id"] for r in body["runs"]] == ids[:2]
    assert "lr" in body["flags"] and "loss" in body["scalars"]


BAD_REQUESTS = [
    ("POST", ("runs",), "{not json", 400, "JSON"),
    ("POST", ("runs",), "[]", 400, "object"),
    ("POST", ("runs",), {"flags": {}}, 400, "op"),
    ("POST", ("runs",), {"op": "proj/train.py", "flags": {"nope": 1}}, 400, "nope"),
    ("POST", ("runs",), {"op": "proj/train.py", "flags": {"epochs": "many"}}, 400, "epochs"),
    ("POST", ("runs",), {"op": "proj/missing.py"}, 400, "no such script"),
    ("POST", ("runs",), {"op": "../outside.py"}, 400, "outside"),
    ("POST", ("runs",), {"op": "notes.txt"}, 400, ".py"),
    ("POST", ("runs",), {"op": "proj/train.py", "tags": "a"}, 400, "tags"),
    ("POST", ("runs",), {"op": "proj/train.py", "extra": 1}, 400, "extra"),
    ("GET", ("runs",), None, 400, "status"),  # params below
    ("GET", ("runs", "f" * 32), None, 404, "no run"),
    ("GET", ("runs", "zz-not-an-id"), None, 404, "invalid run reference"),
    ("PATCH", ("runs", "f" * 32), {"label": "x"}, 404, "no run"),
    ("DELETE", ("runs", "f" * 32), None, 404, "no run"),
    ("POST", ("runs", "f" * 32, "stop"), None, 404, "no run"),
    ("POST", ("runs", "f" * 32, "restart"), None, 404, "no run"),
    ("GET", ("runs", "f" * 32, "output"), None, 404, "no run"),
    ("GET", ("runs", "f" * 32, "scalars"), None, 404, "no run"),
    ("GET", ("runs", "f" * 32, "files"), None, 404, "no run"),
    ("GET", ("runs", "f" * 32, "files", "x.txt"), None, 404, "no run"),
    ("GET", ("compare",), None, 400, "runs="),
]
BAD_PARAMS = {10: {"status": "bogus"}}


@pytest.mark.parametrize("case", range(len(BAD_REQUESTS)))
async def test_bad_input_is_4xx_with_a_message(api, gj_store, script, case):
    method, path, body, status, needle = BAD_REQUESTS[case]
    code, reply = await api(method, *path, body=body, params=BAD_PARAMS.get(case))
    assert code == status, reply
    assert needle.lower() in reply["message"].lower(), reply
    assert "\n" not in reply["message"]
    code, listing = await api("GET", "runs", params={"deleted": "any"})
    assert listing["total"] == 0  # nothing was created


async def test_more_bad_params(api, gj_store, script):
    code, run = await api("POST", "runs", body={"op": script, "flags": {"epochs": 1}})
    await finished(api, run["id"])
    for path, params in [
        (("runs",), {"limit": "x"}), (("runs",), {"offset": "-1"}), (("runs",), {"sort": "nope"}),
        (("runs",), {"deleted": "maybe"}), (("runs",), {"columns": "bogus"}),
        (("runs",), {"started_after": "not a date"}),
        (("runs", run["id"], "output"), {"offset": "x"}), (("runs", run["id"], "output"), {"offset": "-5"}),
        (("compare",), {"runs": "f" * 32}),
    ]:
        code, reply = await api("GET", *path, params=params)
        assert 400 <= code < 500 and reply["message"], (path, params, code, reply)
    code, reply = await api("PATCH", "runs", run["id"], body={"label": 3})
    assert code == 400
    code, reply = await api("PATCH", "runs", run["id"], body="{")
    assert code == 400
    code, out = await api("GET", "runs", run["id"], "output", params={"offset": "999999"})
    assert code == 200 and out["text"] == ""


async def test_file_routes_stay_inside_the_run_directory(api, jp_fetch, gj_store, script, tmp_path,
                                                         jp_http_port, jp_base_url, jp_auth_header):
    code, run = await api("POST", "runs", body={"op": script, "flags": {"epochs": 1}})
    await finished(api, run["id"])
    rid = run["id"]
    run_dir = gj_store.run_dir(rid)
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    os.symlink(secret, os.path.join(run_dir, "link.txt"))
    os.symlink(tmp_path, os.path.join(run_dir, "linkdir"))
    with open(os.path.join(run_dir, "ok.html"), "w") as f:
        f.write("<script>alert(1)</script>")
    attempts = [
        "..%2F..%2F..%2Fsecret.txt", "%2E%2E%2F%2E%2E%2Fsecret.txt", "..%2f.run%2frun.json",
        "%2Fetc%2Fpasswd", "%2F%2Fetc%2Fpasswd", "sub%2F..%2F..%2Fx", "link.txt", "linkdir%2Fsecret.txt",
        ".run%2Frun.json", "%00", "..", "..%5C..%5Csecret.txt",
    ]
    base = f"guild/api/runs/{rid}/files/"
    for attempt in attempts:
        try:
            r = await jp_fetch(base + attempt, method="GET")
            code, body = r.code, r.body
        except HTTPClientError as e:
            code, body = e.code, e.response.body if e.response else b""
        assert 400 <= code < 500, (attempt, code, body)
        assert b"top secret" not in (body or b"")
    # raw (unnormalised) paths sent on the socket
    for attempt in ["../../secret.txt", "a/../../../secret.txt", "./../x"]:
        code, body = await raw_get(jp_http_port, jp_base_url + base + attempt, jp_auth_header)
        assert code in (400, 403, 404), (attempt, code)
        assert b"top secret" not in body
    r = await jp_fetch(base + "ok.html", method="GET")
    assert r.headers["Content-Type"].startswith("text/plain")  # never rendered as HTML
    code, files = await api("GET", "runs", rid, "files")
    assert "ok.html" in [f["path"] for f in files["files"]]


async def raw_get(port, path, headers):
    """A GET whose path is sent as is (no client-side normalisation of '..')."""
    import tornado.tcpclient

    stream = await tornado.tcpclient.TCPClient().connect("127.0.0.1", port)
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    await stream.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    data = await stream.read_until_close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


ROUTE_CALLS = [
    ("GET", "runs"), ("POST", "runs"),
    ("GET", "runs/{id}"), ("PATCH", "runs/{id}"), ("DELETE", "runs/{id}"),
    ("POST", "runs/{id}/stop"), ("POST", "runs/{id}/restart"),
    ("GET", "runs/{id}/output"), ("GET", "runs/{id}/scalars"), ("GET", "runs/{id}/files"),
    ("GET", "runs/{id}/files/x.txt"), ("GET", "compare?runs={id}"),
]


async def test_every_route_needs_a_token(jp_fetch, jp_ws_fetch, jp_serverapp, gj_store, script, api):
    code, run = await api("POST", "runs", body={"op": script, "flags": {"epochs": 1}})
    rid = run["id"]
    await finished(api, rid)
    before = gj_store.load_run(rid).to_dict()
    for method, path in ROUTE_CALLS:
        for headers in ({"Authorization": ""}, {"Authorization": "token wrong"}):
            body = "{}" if method in ("POST", "PATCH") else None
            with pytest.raises(HTTPClientError) as e:
                await jp_fetch(*("guild/api/" + path.format(id=rid)).split("?")[0].split("/"), method=method,
                               headers=headers, body=body, allow_nonstandard_methods=True,
                               params=dict(urllib.parse.parse_qsl(path.partition("?")[2].format(id=rid))))
            assert e.value.code == 403, (method, path, headers)
    for headers in ({"Authorization": ""}, {"Authorization": "token wrong"}):
        with pytest.raises(HTTPClientError) as e:
            await jp_ws_fetch("guild", "api", "events", headers=headers)
        assert e.value.code == 403
    assert gj_store.load_run(rid).to_dict() == before  # nothing changed
    assert gj_store.list_rows(deleted=None)[0]["id"] == rid and len(gj_store.list_rows(deleted=None)) == 1


def test_every_handler_verb_is_authenticated(jp_serverapp):
    """No undecorated verb (jupyter_server warns, and pyproject makes the warning an error);
    no catch-all route under guild/api."""
    from guild_jupyter.server.handlers import ROUTES

    for pattern, handler in ROUTES:
        assert "(.*)" not in pattern and not pattern.endswith(".*")
        for verb in ("get", "post", "patch", "delete", "put"):
            method = handler.__dict__.get(verb)
            if method is not None:
                assert getattr(method, "__allow_unauthenticated", None) is False or hasattr(method, "__wrapped__"), (
                    handler, verb)
    from tornado.web import FallbackHandler

    rules = jp_serverapp.web_app.wildcard_router.rules + jp_serverapp.web_app.default_router.rules
    assert not any(getattr(r, "target", None) is FallbackHandler for r in rules)


def test_an_undecorated_handler_is_caught(jp_serverapp):
    """The guard the test above relies on: an undecorated verb raises in tests."""
    from jupyter_server.base.handlers import APIHandler
    from jupyter_server.utils import JupyterServerAuthWarning

    class Open(APIHandler):
        def get(self):
            self.finish("{}")

    with pytest.raises(JupyterServerAuthWarning):
        jp_serverapp.web_app.add_handlers(".*$", [("/guild/api/open-test", Open)])


async def test_events_gap_and_bad_since(api, jp_ws_fetch, jp_serverapp, gj_store, script):
    manager = jp_serverapp.web_app.settings["guild_jupyter"]
    await manager.ensure_started()
    manager.publish([{"type": "status", "run": "x" * 32, "status": "running"} for _ in range(3)])
    manager.buffer.popleft()  # as if the bounded buffer had dropped it
    ws = await jp_ws_fetch("guild", "api", "events", params={"since": "0"})
    msgs = [json.loads(await ws.read_message()) for _ in range(4)]
    assert msgs[0]["type"] == "hello"
    assert msgs[1]["type"] == "gap" and msgs[1]["first"] == 2
    assert [m["seq"] for m in msgs[2:]] == [2, 3]
    ws.close()
    with pytest.raises(HTTPClientError) as e:
        await jp_ws_fetch("guild", "api", "events", params={"since": "abc"})
    assert e.value.code == 400


async def test_kernel_client_finds_and_uses_the_server(jp_serverapp, gj_store, script, api, tmp_path):
    """A kernel's view: JPY_PARENT_PID + the server's runtime file -> submit and stop."""
    from guild_jupyter.server import client as gjc

    info_file = jp_serverapp.info_file
    jp_serverapp.write_server_info_file()
    info = json.loads(open(info_file).read())
    env = {"JPY_PARENT_PID": str(os.getpid())}
    found = gjc.find_server(env, runtime_dir=os.path.dirname(info_file))
    assert found is not None and found.url == info["url"] and found.token == info["token"]
    assert gjc.find_server({"JPY_PARENT_PID": "999999999"}, runtime_dir=os.path.dirname(info_file)) is None
    assert gjc.find_server({}, runtime_dir=str(tmp_path)) is None
    assert os.environ["GUILD_JUPYTER_SERVER_URL"].endswith(jp_serverapp.base_url)

    c = gjc.ServerClient(found)
    # urllib blocks: call it from a thread so the server (this loop) can answer
    run = await asyncio.to_thread(c.submit, script, {"epochs": 1000, "sleep": 0.05}, label="from kernel")
    assert run["label"] == "from kernel" and run["status"] in ("pending", "running")
    stopped = await asyncio.to_thread(c.stop, run["id"])
    assert stopped["id"] == run["id"]
    r = await finished(api, run["id"])
    assert r["status"] == "cancelled"
    from guild_jupyter.errors import FlagError, RunNotFound

    with pytest.raises(FlagError):
        await asyncio.to_thread(c.submit, script, {"nope": 1})
    with pytest.raises(RunNotFound):
        await asyncio.to_thread(c.stop, "f" * 32)

    async def cancelled_ids():
        # the record is written before its index row: the listing may lag the GET by a moment
        listing = await asyncio.to_thread(c.runs, status="cancelled")
        return [x["id"] for x in listing["runs"]]

    assert await wait_for(cancelled_ids, timeout=10) == [run["id"]]


async def test_listing_renders_infinities_and_bools_as_json(api, gj_store):
    """SQLite writes infinities as ``Inf``: the listing falls back to the exact path (null)."""
    from guild_jupyter.storage.scalar_files import SummaryBuilder

    a = gj_store.create_run("op", kind="script", flags={"lr": 0.5, "flag": True}, label="Info: Inf")
    b = gj_store.create_run("op", kind="script", flags={"lr": 1e-3, "flag": False})
    gj_store.index.merge_scalars(a.id, SummaryBuilder().extend([("loss", 0, float("inf"), 1.0)]).by_key)
    gj_store.index.merge_scalars(b.id, SummaryBuilder().extend([("loss", 0, 0.25, 1.0)]).by_key)
    code, body = await api("GET", "runs")
    assert code == 200, body
    rows = {r["id"]: r for r in body["runs"]}
    assert rows[a.id]["scalars"]["loss"] is None and rows[b.id]["scalars"]["loss"] == 0.25
    assert rows[a.id]["flags"] == {"lr": 0.5, "flag": True} and rows[b.id]["flags"]["flag"] is False
    assert rows[a.id]["label"] == "Info: Inf"
    gj_store.index.merge_scalars(a.id, SummaryBuilder().extend([("loss", 1, 2.0, 2.0)]).by_key)
    code, body = await api("GET", "runs", params={"label": "Info"})  # the fast path, label with "Inf"
    assert body["runs"][0]["scalars"]["loss"] == 2.0 and body["runs"][0]["flags"]["flag"] is True
    code, body = await api("GET", "compare", params={"runs": f"{a.id},{b.id}"})
    assert code == 200 and body["flags"] == ["flag", "lr"] and body["scalars"] == ["loss"]


async def test_large_output_streams_in_bounded_contiguous_events(api, jp_ws_fetch, gj_store, jp_root_dir):
    (jp_root_dir / "big").mkdir()
    (jp_root_dir / "big" / "big.py").write_text(
        "import sys\n"
        "for i in range(30000):\n"
        "    sys.stdout.write(f'{i:06d} ' + 'é' * 40 + '\\n')\n"
        "sys.stdout.write('last line without newline ✓')\n")
    ws = await jp_ws_fetch("guild", "api", "events")
    json.loads(await ws.read_message())
    code, run = await api("POST", "runs", body={"op": "big/big.py"})
    assert code == 201, run
    rid = run["id"]

    def ended(msgs):
        return any(m["type"] == "status" and m["run"] == rid and m["status"] in TERMINAL for m in msgs)

    msgs = await next_events(ws, ended)
    ws.close()
    outs = [m for m in msgs if m["type"] == "output" and m["run"] == rid]
    assert msgs[-1]["type"] == "status" and msgs[-1]["status"] == "completed"
    assert outs[0]["offset"] == 0
    for a, b in zip(outs, outs[1:]):
        assert b["offset"] == a["next"]
    assert all(len(m["text"].encode()) <= 256 * 1024 for m in outs)
    text = "".join(m["text"] for m in outs)
    code, full = await api("GET", "runs", rid, "output")
    assert text == full["text"] and outs[-1]["next"] == full["size"]
    assert text.count("\n") >= 30000 and text.rstrip("\n").endswith("last line without newline ✓")
    assert "\ufffd" not in text  # no character split between events


async def test_big_listings_go_out_in_pieces(api, gj_store, monkeypatch):
    from guild_jupyter.server import handlers

    monkeypatch.setattr(handlers, "LISTING_PIECE", 2)
    ids = [gj_store.create_run("op", kind="script", flags={"i": i}).id for i in range(5)]
    r = await api("GET", "runs", raw=True)
    assert r.code == 200 and r.headers["Content-Type"] == "application/json"
    body = json.loads(r.body)
    assert [x["id"] for x in body["runs"]] == ids[::-1] and body["total"] == 5
    assert [x["flags"]["i"] for x in body["runs"]] == [4, 3, 2, 1, 0]
