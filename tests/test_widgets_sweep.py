"""SweepWidget in-process (no kernel: ipywidgets' comm is a no-op outside one, the
trait updates are the same): the live table follows the trials (a running trial's
objective too), and stop-all cancels the running trial and ends the sweep."""

from __future__ import annotations

import threading
import time

from guild_jupyter.sweeps import api as sweeps_api
from guild_jupyter.widgets.sweep_widget import SweepWidget

SLOW = """\
import time
n = 100
delay = 0.05
for i in range(n):
    print(f"loss: {1.0 / (i + 1)}", flush=True)
    time.sleep(delay)
"""


def test_sweep_widget_table_and_stop_all(project, store):
    (project / "slow.py").write_text(SLOW)
    # the widget must hold the driver's own Sweep object for stop-all to end the sweep
    runner = sweeps_api.sweep_runner(str(project / "slow.py"), {"n": [200, 201, 202]}, store=store,
                                objective="loss", minimize=True)
    sweep = runner.create()
    driver = threading.Thread(target=runner.run, args=(sweep,), daemon=True)
    driver.start()
    w = SweepWidget(sweep)
    deadline = time.time() + 30
    while not any(t["status"] == "running" for t in w._trials) and time.time() < deadline:
        time.sleep(0.05)
    assert any(t["status"] == "running" for t in w._trials), w._trials
    assert "running" in w.table.value

    def running_objective():
        return next((t["objective"] for t in w._trials if t["status"] == "running"), None)

    seen = set()
    while len(seen) < 3 and time.time() < deadline:  # the running trial's loss, live
        if running_objective() is not None:
            seen.add(running_objective())
        time.sleep(0.05)
    assert len(seen) >= 3, seen
    w.stop_button.click()
    driver.join(60)
    assert not driver.is_alive()
    deadline = time.time() + 10
    while not w._done() and time.time() < deadline:
        time.sleep(0.05)
    assert w._done() and w.stop_button.disabled
    assert store.load_run(sweep.id).status.value == "cancelled"
    statuses = [t["status"] for t in w._trials]
    assert "cancelled" in statuses and "running" not in statuses and len(statuses) < 3
    assert "cancelled" in w.table.value
    assert "Sweep" in w._repr_mimebundle_()["text/plain"]
