"""RunWidget and SweepWidget in a real kernel (nbclient), plus the static renderings.

One kernel serves the module. The client records every comm message the kernel
sends (``Recorder``), so tests see what a widget front end would receive while a
run is going. The stop test sends the button's click as a front end does: a
``comm_msg`` on the shell channel from a second client.
"""

from __future__ import annotations

import os
import re
import time

import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from guild_jupyter.storage.store import RunStore
from tests.kernel_cells import LONG_CELL, LONG_SWEEP_CELL, cell_messages, click, executing

SLOW = """\
import time
n = 5
delay = 0.15
for i in range(n):
    print(f"line {i}", flush=True)
    print(f"loss: {1.0 / (i + 1)}", flush=True)
    time.sleep(delay)
print("done", flush=True)
"""


class Recorder(NotebookClient):
    """An nbclient that keeps every comm message (kernel's send time, type, content)."""

    def handle_comm_msg(self, outs, msg, cell_index):
        sent = msg["header"].get("date")
        sent = sent.timestamp() if hasattr(sent, "timestamp") else time.time()
        self.comm_log.append((sent, msg["msg_type"], msg["content"]))
        super().handle_comm_msg(outs, msg, cell_index)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from jupyter_client import KernelManager

    root = tmp_path_factory.mktemp("widgets")
    home, nbdir = root / "home", root / "nb"
    nbdir.mkdir()
    (nbdir / "slow.py").write_text(SLOW)
    kernel_env = dict(os.environ, GUILD_JUPYTER_HOME=str(home), GUILD_JUPYTER_STOP_GRACE="3")
    # no Jupyter server started this kernel, whatever started pytest (runs are launched here)
    for var in ("RUN_ID", "RUN_DIR", "JPY_PARENT_PID",
                "GUILD_JUPYTER_SERVER_URL", "GUILD_JUPYTER_SERVER_PID"):
        kernel_env.pop(var, None)
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(nbdir), env=kernel_env)
    try:
        execute(km, nbdir, ["import time\nimport guild_jupyter as g\n"
                            "from guild_jupyter.widgets import show_run_widget, show_sweep_widget"])
        yield km, RunStore(home), nbdir
    finally:
        from tests.conftest import _kill_leftovers

        _kill_leftovers(RunStore(home))
        km.shutdown_kernel(now=True)


def execute(km, nbdir, sources):
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    client = Recorder(nb, km=km, allow_errors=True, timeout=120, resources={"metadata": {"path": str(nbdir)}})
    client.comm_log = []
    client.execute()
    return nb, client


def text(cell):
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.data.get("text/plain", ""))
        elif out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}\n{''.join(out.traceback)}")
    return "".join(parts)


def errors(nb):
    return [text(c) for c in nb.cells if any(o.output_type == "error" for o in c.outputs)]


def updates(client, comm_id, name="value"):
    """(time, value) of each state update of trait ``name`` sent on ``comm_id``."""
    return [(t, c["data"]["state"][name]) for t, kind, c in client.comm_log
            if kind == "comm_msg" and c["comm_id"] == comm_id and name in c["data"].get("state", {})]


def ids(cell):
    streams = "".join(o.text for o in cell.outputs if o.output_type == "stream")
    return dict(re.findall(r"\b(\w+)=([0-9a-f]{32})\b", streams))


def test_run_widget_streams_status_and_output(env):
    km, store, nbdir = env
    nb, client = execute(km, nbdir, [
        "r = g.run('slow.py', {'n': 6, 'delay': 0.25}, background=True, echo=False)\n"
        "w = show_run_widget(r)\n"
        "print(f'status={w.status.model_id} output={w.output.model_id} scalars={w.scalars.model_id} run={r.id}')\n"
        "print('final', w.wait(60))\n"
        "time.sleep(0.3)",
    ])
    assert not errors(nb), errors(nb)
    cell = nb.cells[0]
    assert "final completed" in text(cell)
    m = ids(cell)
    status, output = updates(client, m["status"]), updates(client, m["output"])
    assert status and "completed" in status[-1][1]
    t_done = status[-1][0]
    # output arrived in several updates, while the run was still going
    live = [(t, v) for t, v in output if t < t_done and "done" not in v]
    assert len(live) >= 2, output
    assert "line 0" in live[0][1] and "line 5" not in live[0][1]
    assert "line 5" in output[-1][1] and "done" in output[-1][1]
    assert "loss" in updates(client, m["scalars"])[-1][1]
    # at most ~10 updates per second on any one comm
    for comm in (m["status"], m["output"], m["scalars"]):
        times = [t for t, _ in updates(client, comm)]
        if len(times) > 5:
            assert (len(times) - 1) / (times[-1] - times[0]) <= 15
    # the headless view of the widget was refreshed with the final state
    shown = [o for o in cell.outputs if o.output_type == "display_data"]
    assert shown and "application/vnd.jupyter.widget-view+json" in shown[0].data
    assert "completed" in shown[0].data["text/html"] and "line 5" in shown[0].data["text/html"]
    assert "[completed]" in shown[0].data["text/plain"]


def test_stop_button_message_cancels_the_run(env):
    km, store, nbdir = env
    nb, client = execute(km, nbdir, [
        "r = g.run('slow.py', {'n': 400, 'delay': 0.05}, background=True, echo=False)\n"
        "w = show_run_widget(r)\n"
        "t0 = time.time()\n"
        "while w._status != 'running' and time.time() - t0 < 30:\n"
        "    time.sleep(0.05)\n"
        "print(f'button={w.stop_button.model_id} status={w.status.model_id} run={r.id}')",
    ])
    assert not errors(nb), errors(nb)
    m = ids(nb.cells[0])
    # the front end's click: a comm_msg to the button's comm, from another client
    kc = km.client()
    kc.start_channels()
    try:
        msg = kc.session.msg("comm_msg", {"comm_id": m["button"],
                                          "data": {"method": "custom", "content": {"event": "click"}}})
        kc.shell_channel.send(msg)
        time.sleep(0.2)
    finally:
        kc.stop_channels()
    nb2, client2 = execute(km, nbdir, ["print('final', w.wait(30), g.get_run(r.id).status.value)\n"
                                       "print(w.stop_button.disabled)\ntime.sleep(0.2)"])
    assert not errors(nb2), errors(nb2)
    assert "final cancelled cancelled" in text(nb2.cells[0])
    assert "True" in text(nb2.cells[0])
    assert store.load_run(m["run"]).status.value == "cancelled"


def test_headless_notebook_shows_final_state_as_html_and_text(env):
    km, store, nbdir = env
    nb, client = execute(km, nbdir, [
        "r = g.run('slow.py', {'n': 2, 'delay': 0.01}, background=True, echo=False)\n"
        "w = show_run_widget(r)\nw.wait(60)\ntime.sleep(0.3)",
        "g.get_run(r.id)",
        "s = g.run('slow.py', {'n': [1, 3], 'delay': 0.01}, minimize='loss', echo=False)\n"
        "sw = show_sweep_widget(s)\ntime.sleep(0.3)",
        "s",
    ])
    assert not errors(nb), errors(nb)
    widget_out = [o for o in nb.cells[0].outputs if o.output_type == "display_data"][0]
    assert "completed" in widget_out.data["text/html"] and "line 1" in widget_out.data["text/html"]
    bare = nb.cells[1].outputs[0]
    assert "completed" in bare.data["text/html"] and "loss" in bare.data["text/html"]
    assert "[completed]" in bare.data["text/plain"] and "loss: 0.5" in bare.data["text/plain"]
    sweep_out = [o for o in nb.cells[2].outputs if o.output_type == "display_data"][0]
    assert "guild-best" in sweep_out.data["text/html"]
    bare_sweep = nb.cells[3].outputs[0]
    assert bare_sweep.data["text/html"].count("completed") >= 3  # the sweep and its two trials
    best = [line for line in bare_sweep.data["text/plain"].splitlines() if line.startswith("*")]
    assert len(best) == 1 and "n=3" in best[0]  # loss 1/3 beats 1/1
    # an HTML export (no widget front end) carries the final state
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    assert "guild-run" in body and "guild-sweep" in body


def comm_state_ids(client, model_name, marker=""):
    """comm ids of the widgets of ``model_name`` whose state ever held ``marker``."""
    found = []
    for _t, kind, c in client.comm_log:
        state = c.get("data", {}).get("state", {})
        if kind == "comm_open" and state.get("_model_name") == model_name:
            found.append(c["comm_id"])
    return [cid for cid in found if not marker or any(marker in str(v) for _t, v in updates(client, cid))
            or any(marker in str(c.get("data", {}).get("state", {}).get("value", ""))
                   for _t, kind, c in client.comm_log if kind == "comm_open" and c["comm_id"] == cid)]


def test_foreground_cell_run_widget_streams_status_and_output(env):
    km, store, nbdir = env
    nb, client = execute(km, nbdir, [
        "%load_ext guild_jupyter",
        "%%guild_run\nimport time\nfor i in range(6):\n    print(f'line {i}', flush=True)\n"
        "    print(f'loss: {1.0 / (i + 1)}', flush=True)\n    time.sleep(0.25)\nprint('done', flush=True)",
    ])
    assert not errors(nb), errors(nb)
    cell = nb.cells[1]
    # the output is streamed into the cell as text too (headless notebooks keep it)
    assert "line 5" in text(cell) and "done" in text(cell)
    (status,) = comm_state_ids(client, "HTMLModel", "guild-status")
    (output,) = comm_state_ids(client, "HTMLModel", "guild-output")
    (button,) = comm_state_ids(client, "ButtonModel")
    opened = [c["data"]["state"]["value"] for _t, kind, c in client.comm_log
              if kind == "comm_open" and c["comm_id"] == status]
    statuses = updates(client, status)
    assert any("running" in v for v in opened + [v for _t, v in statuses]) and "completed" in statuses[-1][1]
    t_done = statuses[-1][0]
    live = [(t, v) for t, v in updates(client, output) if t < t_done and "done" not in v]
    assert len(live) >= 2, updates(client, output)  # output while the run was going
    assert "line 0" in live[0][1] and "line 5" not in live[0][1]
    assert updates(client, button, "disabled")[-1][1] is True
    # the widget's display holds the final state for a front end without widgets
    shown = [o for o in cell.outputs if o.output_type == "display_data"]
    assert shown and "application/vnd.jupyter.widget-view+json" in shown[0].data
    assert "[completed]" in shown[0].data["text/plain"] and "line 5" in shown[0].data["text/html"]


def test_stop_button_cancels_a_foreground_cell_run(env):
    """The cell is still running when the front end's click arrives: the kernel
    dispatches it (the cell awaits its run) and the run ends cancelled."""
    km, store, nbdir = env
    execute(km, nbdir, ["%load_ext guild_jupyter"])
    before = {r["id"] for r in store.list_rows()}
    with executing(km, LONG_CELL) as (kc, msg_id):
        button, clicked, text_out = None, False, ""
        for kind, content in cell_messages(kc, msg_id):
            if kind == "comm_open" and content["data"]["state"].get("_model_name") == "ButtonModel":
                button = content["comm_id"]
            elif kind == "stream":
                text_out += content["text"]
            if button and not clicked and "started" in text_out:
                click(kc, button)
                clicked = True
    assert clicked, text_out
    (run_id,) = {r["id"] for r in store.list_rows()} - before
    run = store.load_run(run_id)
    assert run.status.value == "cancelled" and run.reason == "stopped by user"
    assert f"UsageError: run {run.short_id} cancelled: stopped by user" in text_out


def final_state_result(cell):
    """The cell's execute_result, asserted to hold the run's final state as text and HTML."""
    (result,) = [o for o in cell.outputs if o.output_type == "execute_result"]
    assert "[completed]" in result.data["text/plain"] and "loss: 0.5" in result.data["text/plain"]
    assert "completed" in result.data["text/html"] and "lr=0.5" in result.data["text/html"]
    assert "loss: 0.5" in "".join(o.text for o in cell.outputs if o.output_type == "stream")
    return result


def widget_views(cell):
    view = "application/vnd.jupyter.widget-view+json"
    return [o for o in cell.outputs if view in o.get("data", {})]


def test_headless_foreground_cell_keeps_final_state_as_text_and_html(env):
    """A notebook executed headless shows a foreground run's final state as text and HTML,
    whether or not a RunWidget was shown meanwhile (that depends on how long the run took,
    WIDGET_DELAY, so on the machine's load): in the widget's display when one was shown
    (the cell's result is then the Run in one line), else in the cell's result."""
    km, store, nbdir = env
    nb, client = execute(km, nbdir, [
        "%load_ext guild_jupyter",
        "%%guild_run\nlr = 0.5\nprint(f'loss: {lr}')",  # the notebook's last cell
    ])
    assert not errors(nb), errors(nb)
    views = widget_views(nb.cells[1])
    if views:
        (view,) = views
        assert "[completed]" in view.data["text/plain"] and "lr=0.5" in view.data["text/html"]
        assert "loss: 0.5" in view.data["text/html"]
    else:
        final_state_result(nb.cells[1])
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    assert "guild-run" in body and "loss: 0.5" in body


def test_foreground_run_shorter_than_widget_delay_gets_no_widget(env):
    """A run that ends within WIDGET_DELAY gets no widget (building one would cost more than
    the run) and its result is the final state; a longer one gets its RunWidget, which holds
    the final state, and its result is the Run in one line.
    The delay is set per case (an hour / none) so the outcome does not depend on machine speed."""
    km, store, nbdir = env
    run = "%%guild_run\nlr = 0.5\nprint(f'loss: {lr}')"
    execute(km, nbdir, ["%load_ext guild_jupyter\nimport guild_jupyter.notebook.foreground as fg\n"
                        "_widget_delay = fg.WIDGET_DELAY"])
    try:
        nb, client = execute(km, nbdir, ["fg.WIDGET_DELAY = 3600", run])
        long_run = run + "\nimport time\ntime.sleep(1)"
        nb2, client2 = execute(km, nbdir, ["fg.WIDGET_DELAY = 0", long_run])
    finally:
        execute(km, nbdir, ["fg.WIDGET_DELAY = _widget_delay"])
    assert not errors(nb) and not errors(nb2), errors(nb) + errors(nb2)
    short, long = nb.cells[1], nb2.cells[1]
    assert not widget_views(short) and not comm_state_ids(client, "ButtonModel")  # none built
    final_state_result(short)
    (view,) = widget_views(long)  # the RunWidget's display, holding the final state
    assert comm_state_ids(client2, "ButtonModel")
    assert "[completed]" in view.data["text/plain"] and "loss: 0.5" in view.data["text/html"]
    # ... so the cell's result is the Run in one line (``r = _`` still works), not a second copy
    (result,) = [o for o in long.outputs if o.output_type == "execute_result"]
    assert result.data == {"text/plain": result.data["text/plain"]}
    assert result.data["text/plain"].startswith("<Run ") and "completed>" in result.data["text/plain"]


def test_stop_all_button_stops_a_running_cell_sweep(env):
    """A cell sweep runs while its cell awaits it: the SweepWidget's "Stop all" click is
    dispatched at once, the running trial is cancelled and no more trials start."""
    km, store, nbdir = env
    execute(km, nbdir, ["%load_ext guild_jupyter"])
    before = {r["id"] for r in store.list_rows()}
    with executing(km, LONG_SWEEP_CELL) as (kc, msg_id):
        button, clicked, outputs = None, False, []
        for kind, content in cell_messages(kc, msg_id):
            if kind == "comm_open" and content["data"]["state"].get("description") == "Stop all":
                button = content["comm_id"]
            elif kind in ("stream", "display_data", "update_display_data", "execute_result"):
                outputs.append(content)
            # checked on every turn, not only when the cell sends something: while a trial
            # runs, the SweepWidget sends nothing until the trial's status changes
            if button and not clicked and any(  # the trial's process is going
                    store.load_run(r["id"]).kind != "sweep"
                    and "trial 1" in store.read_output(r["id"])
                    for r in store.list_rows() if r["id"] not in before):
                click(kc, button)
                clicked = True
    assert clicked, outputs
    runs = [store.load_run(r["id"]) for r in store.list_rows(deleted=None) if r["id"] not in before]
    (sweep,) = [r for r in runs if r.kind == "sweep"]
    trials = [r for r in runs if r.kind != "sweep"]
    assert sweep.status.value == "cancelled" and all(t.status.value == "cancelled" for t in trials), [(t.status.value, t.reason, t.created, t.stopped) for t in trials]
    assert sum("trial" in store.read_output(t.id) for t in trials) == 1
    # the sweep's table was brought to its final state before the cell ended
    finals = [o for o in outputs if "data" in o and "Sweep" in o["data"].get("text/plain", "")]
    assert finals and "[cancelled]" in finals[-1]["data"]["text/plain"]
