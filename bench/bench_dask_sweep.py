"""A sweep of trivial trials on the local executor and on a 2-worker Dask LocalCluster.

The same grid sweep (``x = range[1:N]`` over a script that prints ``loss: x``)
runs twice in this process: with the local executor (a supervisor per trial,
forked by the warm launcher) and with ``executor=<LocalCluster address>``
(each trial a Dask task that rebuilds the run on a worker, supervises it there
and streams it back), both with ``parallel=2``; a third row gives Dask
``parallel=4`` (two trials queued on the scheduler while two run). Printed side
by side as trials/s, with the bare baseline of ``bench_sweep.py``: the same
processes run by 2 threads. No bar in DESIGN: the figure shows what a trial
costs on a cluster (a task round trip, a fresh supervisor interpreter per
trial, files out and back). ``--quick``: 50 trials instead of 200.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _util  # noqa: E402
from _util import table  # noqa: E402


def main() -> int:
    _util.header("bench_dask_sweep: one sweep on the local executor and on a 2-worker LocalCluster")
    home = _util.temp_home("dask-sweep")
    work = home / "project"
    work.mkdir()
    (work / "trial.py").write_text("x = 0\nprint(f'loss: {x}')\n")
    os.chdir(work)
    n = 50 if _util.quick() else 200

    from distributed import LocalCluster

    import guild_jupyter as gj
    from guild_jupyter.sweeps.api import run_sweep

    store = gj.RunStore(home)
    gj.run("trial.py", store=store, echo=False)  # warm: the launcher is up
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    address = cluster.scheduler_address
    gj.run("trial.py", store=store, echo=False)
    from guild_jupyter.experiment.runner import start_run

    start_run("trial.py", store=store, executor=address)  # warm: client connected, workers imported

    def sweep(**options: object) -> float:
        t0 = time.perf_counter()
        s = run_sweep("trial.py", {"x": f"range[1:{n}]"}, max_trials=n, store=store, **options)
        took = time.perf_counter() - t0
        assert len(s.runs) == n and all(r.status == "completed" for r in s.runs), len(s.runs)
        return took

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(2) as pool:
        list(
            pool.map(
                lambda _: subprocess.run(
                    [sys.executable, "trial.py"], capture_output=True, check=True
                ),
                range(n),
            )
        )
    bare = time.perf_counter() - t0
    local = sweep(parallel=2)
    dask2 = sweep(parallel=2, executor=address)
    dask4 = sweep(parallel=4, executor=address)
    from guild_jupyter.orchestration.executors.dask_executor import DaskExecutor

    DaskExecutor.get(address).close()
    cluster.close()

    rows = [
        (f"baseline: {n} x python trial.py, 2 at a time", f"{bare:.2f} s", f"{n / bare:.1f}"),
        (f"local executor, {n} trials, parallel=2", f"{local:.2f} s", f"{n / local:.1f}"),
        (f"dask, 2 workers, {n} trials, parallel=2", f"{dask2:.2f} s", f"{n / dask2:.1f}"),
        (f"dask, 2 workers, {n} trials, parallel=4", f"{dask4:.2f} s", f"{n / dask4:.1f}"),
    ]
    print(table(rows, ("", "wall", "trials/s")))
    print(
        f"\ndask (parallel=4) vs local: {dask4 / local:.2f}x the wall time, "
        f"{(dask4 - local) / n * 1000:.0f} ms more per trial"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
