"""The sidebar's extra routes against a real server (pytest-jupyter): restore from the
trash, rerun with edited flags, provenance; bad input and auth."""

from __future__ import annotations

import pytest

from tests.server_conftest import (  # noqa: F401  (fixtures)
    api, finished, gj_store, http_server, http_server_client, jp_server_config, script, wait_for,
)

pytest_plugins = ("pytest_jupyter.jupyter_server",)


async def a_finished_run(api, script, **flags):
    code, run = await api("POST", "runs", body={"op": script, "flags": flags, "label": "orig"})
    assert code == 201, run
    return await finished(api, run["id"])


async def test_delete_then_restore(api, gj_store, script):
    run = await a_finished_run(api, script)
    rid = run["id"]
    code, _ = await api("DELETE", "runs", rid)
    assert code == 200
    code, listed = await api("GET", "runs")
    assert rid not in [r["id"] for r in listed["runs"]]

    code, restored = await api("POST", "runs", rid, "restore")
    assert code == 200, restored
    assert restored["deleted"] is False and restored["id"] == rid
    code, listed = await api("GET", "runs")
    assert rid in [r["id"] for r in listed["runs"]]
    assert gj_store.load_run(rid).deleted is False

    # restoring a run that is not in the trash is a conflict, and changes nothing
    code, err = await api("POST", "runs", rid, "restore")
    assert code == 409 and "not in the trash" in err["message"]
    code, err = await api("POST", "runs", "f" * 32, "restore")
    assert code == 404


async def test_rerun_with_edited_flags(api, gj_store, script):
    old = await a_finished_run(api, script, epochs=2)
    code, new = await api("POST", "runs", old["id"], "rerun", body={"flags": {"epochs": 1}, "label": "again"})
    assert code == 201, new
    assert new["id"] != old["id"]
    assert new["flags"]["epochs"] == 1 and new["flags"]["lr"] == old["flags"]["lr"]
    assert new["label"] == "again"
    assert new["source"]["rerun_of"] == old["id"]
    done = await finished(api, new["id"])
    assert done["status"] == "completed"
    code, out = await api("GET", "runs", new["id"], "output")
    assert "step 0" in out["text"] and "step 1" not in out["text"]
    # the old run is untouched
    code, again = await api("GET", "runs", old["id"])
    assert again["flags"]["epochs"] == 2 and again["label"] == "orig"


async def test_rerun_without_a_body_keeps_the_label_and_flags(api, gj_store, script):
    old = await a_finished_run(api, script, epochs=1)
    code, new = await api("POST", "runs", old["id"], "rerun")
    assert code == 201, new
    assert new["label"] == "orig" and new["flags"] == old["flags"]
    await finished(api, new["id"])


@pytest.mark.parametrize("body, message", [
    ({"flags": {"nope": 1}}, "nope"),
    ({"flags": {"epochs": "many"}}, "epochs"),
    ({"flags": [1]}, "'flags' must be"),
    ({"label": 3}, "'label' must be"),
    ({"color": "red"}, "unknown field"),
    ("[1, 2]", "JSON object"),
    ("{not json", "invalid JSON"),
])
async def test_rerun_bad_input_is_400_and_starts_nothing(api, gj_store, script, body, message):
    old = await a_finished_run(api, script, epochs=1)
    before = len(gj_store.index.execute("SELECT id FROM runs"))
    code, err = await api("POST", "runs", old["id"], "rerun", body=body)
    assert code == 400, err
    assert message in err["message"] and "\n" not in err["message"]
    assert len(gj_store.index.execute("SELECT id FROM runs")) == before


async def test_provenance(api, gj_store, script):
    run = await a_finished_run(api, script)
    code, prov = await api("GET", "runs", run["id"][:8], "provenance")
    assert code == 200, prov
    assert prov["run"] == run["id"]
    p = prov["provenance"]
    assert p["hostname"] and p["python"]["version"]
    assert isinstance(p["packages"], dict) and "tornado" in {k.lower() for k in p["packages"]}
    code, err = await api("GET", "runs", "0" * 32, "provenance")
    assert code == 404


async def test_provenance_of_a_run_without_one_is_empty(api, gj_store):
    run = gj_store.create_run("f", kind="function", flags={})
    code, prov = await api("GET", "runs", run.id, "provenance")
    assert code == 200 and prov == {"run": run.id, "provenance": {}}


async def test_action_routes_need_a_token(jp_fetch, gj_store, script, api):
    from tornado.httpclient import HTTPClientError

    run = await a_finished_run(api, script)
    await api("DELETE", "runs", run["id"])
    for method, action in (("POST", "restore"), ("POST", "rerun"), ("GET", "provenance")):
        with pytest.raises(HTTPClientError) as e:
            await jp_fetch("guild", "api", "runs", run["id"], action, method=method,
                           body=b"{}" if method == "POST" else None, headers={"Authorization": "token wrong"})
        assert e.value.code == 403, action
    assert gj_store.load_run(run["id"]).deleted is True
    assert len(gj_store.index.execute("SELECT id FROM runs")) == 1


@pytest.mark.parametrize("ref", ["²", "١٢", "é"])
async def test_non_ascii_references_are_404(api, gj_store, ref):
    for method, action in (("POST", "restore"), ("POST", "rerun"), ("GET", "provenance")):
        code, err = await api(method, "runs", ref, action, body={} if method == "POST" else None)
        assert code == 404, (action, err)
