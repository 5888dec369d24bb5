"""Latency from a ``print`` in a running run to the RunWidget's state update.

A background script run prints ``tick <time.time()>`` lines at irregular
intervals (20-150 ms apart). A ``RunWidget`` in this process (no kernel:
ipywidgets' comm is a no-op here, the trait updates and their observers are
the same code path that sends comm messages in a kernel) watches the run; an
observer on the output view records, for each tick line as it first appears
in the widget's state, ``now - printed_at``. The widget reads the store from
the shared updater thread every 0.1 s, so latency is bounded by the poll
interval plus the supervisor's tee and the read.

Bar (DESIGN "Bars"): print in a run -> visible in widget <= 250 ms p95.
Baseline in the same run: the poll interval itself (0.1 s), the floor of
this design. ``--quick``: 60 prints instead of 200.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _util  # noqa: E402
from _util import Bars, table  # noqa: E402

BAR_P95_S = 0.250
SCRIPT = """\
import random, time
n = 200
random.seed(1)
time.sleep(0.5)
for i in range(n):
    print(f"tick {i} {time.time():.6f}", flush=True)
    time.sleep(random.uniform(0.02, 0.15))
"""


def main() -> None:
    _util.header("bench_widget_latency: print in a run -> RunWidget state")
    home = _util.temp_home("widget")
    n = 60 if _util.quick() else 200
    script = home / "ticks.py"
    home.mkdir(parents=True, exist_ok=True)
    script.write_text(SCRIPT)

    import guild_jupyter as gj
    from guild_jupyter.widgets.run_widget import RunWidget
    from guild_jupyter.widgets.updater import INTERVAL

    run = gj.run(str(script), {"n": n}, background=True, echo=False)
    seen: dict[int, float] = {}
    lock = threading.Lock()

    w = RunWidget(run, watch=False)

    def on_output(change) -> None:
        now = time.time()
        with lock:
            for i, printed in re.findall(r"tick (\d+) ([0-9.]+)", change["new"]):
                if int(i) not in seen:
                    seen[int(i)] = now - float(printed)

    w.output.observe(on_output, "value")
    w.watch()
    status = w.wait(timeout=n * 0.2 + 60)
    lat = sorted(seen.values())
    if not lat:
        print(f"no tick seen (run {status})")
        return
    p50, p95, worst = _util.quantile(lat, 0.5), _util.quantile(lat, 0.95), lat[-1]
    print(table([("print -> widget state", len(lat), _util.ms(p50), _util.ms(p95), _util.ms(worst)),
                 ("baseline: poll interval", "", _util.ms(INTERVAL), "", "")],
                ("what", "lines", "p50", "p95", "max")))
    bars = Bars()
    bars.check("print -> widget p95", _util.ms(p95), f"<= {_util.ms(BAR_P95_S)}", p95 <= BAR_P95_S)
    bars.check("every line reached the widget", f"{len(lat)}/{n}", f"{n}/{n}", len(lat) == n)
    bars.print()


if __name__ == "__main__":
    main()
