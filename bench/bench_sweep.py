"""Sweep overhead: N trivial trials with ``parallel=2`` vs the same N processes run bare, two at a time.

The trial script prints ``loss: <x>``. Ours: ``gj.run("trial.py", {"x":
"range[1:N]"}, parallel=2, max_trials=N)`` (a grid sweep: each trial is a
recorded, snapshotted, supervised run; the sweep waits for each to finish).
Baseline in the same run: a pool of 2 threads each running
``subprocess.run([python, trial.py])`` N times in all.

Bar (DESIGN "Bars"): ours <= 10 % over the baseline (Ray Tune publishes 14 %
on a 16-core machine). ``--quick``: 100 trials instead of 1,000.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _util  # noqa: E402
from _util import Bars, table  # noqa: E402


def main() -> int:
    _util.header("bench_sweep: a sweep of trivial trials vs the same processes bare, 2 at a time")
    home = _util.temp_home("sweep")
    work = home / "project"
    work.mkdir()
    (work / "trial.py").write_text("x = 0\nprint(f'loss: {x}')\n")
    os.chdir(work)
    n = 100 if _util.quick() else 1000

    import guild_jupyter as gj

    store = gj.RunStore(home)
    gj.run("trial.py", store=store, echo=False)  # warm: the launcher is up

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: subprocess.run([sys.executable, "trial.py"], capture_output=True, check=True),
                      range(n)))
    bare = time.perf_counter() - t0

    t0 = time.perf_counter()
    sweep = gj.run("trial.py", {"x": f"range[1:{n}]"}, parallel=2, max_trials=n, store=store, echo=False)
    ours = time.perf_counter() - t0
    runs = sweep.runs
    assert len(runs) == n and all(r.status == "completed" for r in runs), len(runs)

    over = ours / bare - 1
    rows = [
        (f"baseline: {n} x python trial.py, 2 at a time", f"{bare:.2f} s", f"{n / bare:.1f} trials/s"),
        (f"sweep of {n} trials, parallel=2", f"{ours:.2f} s", f"{n / ours:.1f} trials/s"),
        ("overhead", f"{over * 100:.0f} %", f"{(ours - bare) / n * 1000:.1f} ms per trial"),
    ]
    print(table(rows, ("", "wall", "rate")))
    bars = Bars()
    bars.check("sweep overhead over bare processes", f"{over * 100:.0f} %", "<= 10 %", over <= 0.10)
    bars.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
