"""Starting runs through the server (pytest-jupyter, a real server in-process):
``POST runs`` for notebooks and guild.yml operations, bad ops as one-line 4xx that
record nothing, ``POST runs/{id}/start`` for a run a kernel prepared, and the
stop reason."""

from __future__ import annotations

import json

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from tests.server_conftest import (  # noqa: F401  (fixtures)
    api,
    finished,
    gj_store,
    http_server,
    http_server_client,
    jp_server_config,
    script,
    wait_for,
)

pytest_plugins = ("pytest_jupyter.jupyter_server",)

GUILD_YML = """\
- model: m
  operations:
    train:
      main: train
      flags:
        lr: 0.1
"""
TRAIN = "lr = 0.1\nprint(f'loss: {lr * 2}')\n"


async def test_post_runs_notebook_and_guildfile_ops(api, gj_store, jp_root_dir):
    proj = jp_root_dir / "proj"
    proj.mkdir()
    nb = new_notebook(cells=[new_code_cell("x = 3\nprint(f'loss: {x}')")])
    nbformat.write(nb, proj / "nb.ipynb")
    (proj / "guild.yml").write_text(GUILD_YML)
    (proj / "train.py").write_text(TRAIN)

    code, run = await api("POST", "runs", body={"op": "proj/nb.ipynb", "flags": {"x": 5}})
    assert code == 201, run
    done = await finished(api, run["id"])
    assert done["status"] == "completed" and done["kind"] == "notebook" and done["flags"] == {"x": 5}
    assert done["source"]["submitted_via"] == "server"

    code, run = await api("POST", "runs", body={"op": "train", "dir": "proj", "flags": {"lr": 0.3}})
    assert code == 201, run
    done = await finished(api, run["id"])
    assert done["status"] == "completed" and done["flags"]["lr"] == 0.3, done
    assert "loss: 0.6" in gj_store.read_output(run["id"])

    code, run = await api("POST", "runs", body={"op": "m:train", "dir": "proj"})
    assert code == 201, run


async def test_bad_ops_are_one_line_400s_and_record_nothing(api, gj_store, jp_root_dir, script):
    (jp_root_dir / "proj" / "notes.txt").write_text("x")
    before = len(gj_store.list_rows(deleted=None))
    cases = [
        ({"op": "proj/missing.ipynb"}, "no such notebook"),
        ({"op": "proj/missing.py"}, "no such script"),
        ({"op": "../outside.py"}, "outside the server's root"),
        ({"op": "train.py", "dir": "../.."}, "outside the server's root"),
        ({"op": "nosuchop"}, "no guild.yml"),
        ({"op": "proj/notes.txt"}, "no guild.yml"),
        ({"op": script, "flags": {"nope": 1}}, "nope"),
        ({"op": script, "dir": 3}, "'dir' must be a path"),
    ]
    for body, message in cases:
        code, err = await api("POST", "runs", body=body)
        assert code == 400, (body, code, err)
        assert message in err["message"] and "\n" not in err["message"], (body, err)
    assert len(gj_store.list_rows(deleted=None)) == before


async def test_start_a_prepared_run_once(api, gj_store, jp_root_dir, script):
    from guild_jupyter.experiment.script_op import ScriptOperation
    from guild_jupyter.notebook.submission import prepare

    op = ScriptOperation.load(script, cwd=str(jp_root_dir))
    run, _spec = prepare(op, {"epochs": 2}, store=gj_store, label="prepared")
    assert gj_store.load_run(run.id).status.value == "pending"
    code, err = await api("POST", "runs", run.id, "start", body={"env": {"A": 1}})
    assert code == 400 and "'env'" in err["message"]
    code, err = await api("POST", "runs", run.id, "start", body={"other": 1})
    assert code == 400
    code, started = await api("POST", "runs", run.id, "start",
                              body={"env": {"GJ_FROM_KERNEL": "yes", "PATH": "/usr/bin:/bin"}})
    assert code == 200, started
    done = await finished(api, run.id)
    assert done["status"] == "completed" and done["source"]["submitted_via"] == "server"
    assert done["label"] == "prepared" and "step 1" in gj_store.read_output(run.id)
    with open(gj_store.meta_dir(run.id) + "/provenance.json") as f:
        prov = json.load(f)
    assert prov["env"]["GJ_FROM_KERNEL"] == "yes"  # the environment the kernel sent
    # a run can be started once; an unknown one is a 404
    code, err = await api("POST", "runs", run.id, "start")
    assert code == 409 and "not a prepared pending run" in err["message"]
    code, err = await api("POST", "runs", "f" * 32, "start")
    assert code == 404


async def test_start_refuses_a_run_without_launch_record(api, gj_store):
    run = gj_store.create_run("x", kind="script", flags={})
    code, err = await api("POST", "runs", run.id, "start")
    assert code == 409 and "no launch record" in err["message"]
    assert gj_store.load_run(run.id).status.value == "pending"


async def test_stop_records_the_reason(api, gj_store, script):
    code, run = await api("POST", "runs", body={"op": script, "flags": {"epochs": 1000, "sleep": 0.05}})
    assert code == 201

    async def running():
        code, r = await api("GET", "runs", run["id"])
        return r["status"] == "running"

    await wait_for(running)
    code, err = await api("POST", "runs", run["id"], "stop", body={"reason": ""})
    assert code == 400
    code, r = await api("POST", "runs", run["id"], "stop", body={"reason": "interrupted"})
    assert code == 200, r
    done = await finished(api, run["id"])
    assert done["status"] == "cancelled" and done["reason"] == "interrupted"
