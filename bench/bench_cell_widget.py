"""Foreground ``%%guild_run`` cells in a real kernel: the async cell and the live RunWidget.

``bench_cell_run.py`` measures cell runs in an in-process ``InteractiveShell``,
which has no kernel and so takes the synchronous path without a widget (its bar,
subprocess cell <= 40 ms over bare python, is the one for cell runs). This one
starts a real ipykernel (jupyter_client) and times each cell from ``execute`` to
the kernel's ``idle`` (what a user waits for), interleaving the variants so load
changes on this shared machine hit them alike:

- baseline: ``subprocess.run([python, cell.py])`` in a kernel cell, output printed;
- ``%%guild_run``, synchronous path: the magic called through ``ip.run_cell_magic``
  (which the async transform leaves alone), as before foreground widgets existed;
- ``%%guild_run``, default: an async cell running the magic in a worker thread; a
  run this short ends before ``WIDGET_DELAY`` (0.25 s) and gets no widget;
- info rows: a 0.5 s cell both ways; the default one shows a live RunWidget
  (~15 comm messages, updates, its final state) for the second half.

Bars: a short foreground cell costs <= 10 ms over the synchronous path; the live
widget adds <= 30 ms to a 0.5 s run. ``--quick``: fewer rounds.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _util  # noqa: E402
from _util import Bars, table  # noqa: E402

BAR_S = 0.010  # what a short foreground cell may cost over the synchronous path
BAR_WIDGET_S = 0.030  # what the live widget may add to a longer run
CELL = "lr = 0.1\ny = lr * 2 + 1\nprint(f'y = {y}')\n"


def main() -> int:
    _util.header("bench_cell_widget: foreground %%guild_run in a kernel, with and without its RunWidget")
    home = _util.temp_home("cell-widget")
    work = home / "notebook"
    work.mkdir(parents=True)
    (work / "cell.py").write_text(CELL)
    n = 10 if _util.quick() else 30
    from jupyter_client import KernelManager

    env = dict(os.environ, GUILD_JUPYTER_HOME=str(home), GUILD_JUPYTER_SUBMIT="embedded")
    for var in ("RUN_ID", "RUN_DIR"):
        env.pop(var, None)
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(work), env=env)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)

        def cell(code: str):
            def go() -> None:
                msg_id = kc.execute(code)
                failed = None
                while True:
                    msg = kc.get_iopub_msg(timeout=60)
                    if msg["parent_header"].get("msg_id") != msg_id:
                        continue
                    if msg["msg_type"] == "error" or (msg["msg_type"] == "stream" and "Error" in msg["content"]["text"]):
                        failed = msg["content"]
                    if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                        break
                if failed:
                    raise RuntimeError(f"cell failed: {failed}")
            return go

        cell("%load_ext guild_jupyter\nimport subprocess, sys\nimport ipywidgets")()
        variants = {
            "bare": cell("print(subprocess.run([sys.executable, 'cell.py'], capture_output=True, text=True,"
                         " check=True).stdout, end='')"),
            # through a name, so the async transform (it matches IPython's own spelling) leaves it alone
            "sync": cell(f"_ip = get_ipython()\n_ip.run_cell_magic('guild_run', '', {CELL!r});"),
            "fg": cell("%%guild_run\n" + CELL),
            "long": cell("%%guild_run\nimport time\ntime.sleep(0.5)\n" + CELL),
            "long_sync": cell(f"_ip.run_cell_magic('guild_run', '', {'import time' + chr(10) + 'time.sleep(0.5)' + chr(10) + CELL!r});"),
        }
        times: dict[str, list[float]] = {k: [] for k in variants}
        for i in range(n + 3):  # interleaved, so load changes hit every variant alike
            for name, go in variants.items():
                if name.startswith("long") and i % 3:
                    continue  # fewer of the slow ones
                t0 = time.perf_counter()
                go()
                if i >= 3:
                    times[name].append(time.perf_counter() - t0)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)

    from guild_jupyter.storage.store import RunStore

    rows_ = RunStore(home).list_rows()
    assert all(r["status"] == "completed" for r in rows_), rows_[:3]
    m, q = _util.median, _util.quantile
    bare, sync, fg, long, long_sync = (times[k] for k in ("bare", "sync", "fg", "long", "long_sync"))

    def f(s: float) -> str:
        return f"{s * 1000:.1f} ms"

    print(f"{n} rounds (each variant once per round, interleaved) after warm-up; store {home}")
    print()
    print(table([
        ("baseline: python cell.py from a kernel cell", f(m(bare)), f(q(bare, 0.9))),
        ("%%guild_run, synchronous path", f(m(sync)), f(q(sync, 0.9))),
        ("%%guild_run (default: async cell)", f(m(fg)), f(q(fg, 0.9))),
        ("  overhead over the baseline", f(m(fg) - m(bare)), ""),
        ("  the async cell's own cost (default - synchronous)", f(m(fg) - m(sync)), ""),
        ("info: a 0.5 s cell, synchronous (no widget)", f(m(long_sync)), ""),
        ("info: a 0.5 s cell, default (live RunWidget after 0.25 s)", f(m(long)), ""),
        ("  the live widget's cost", f(m(long) - m(long_sync)), ""),
    ], ("per cell, execute -> idle", "median", "p90")))
    bars = Bars()
    bars.check("async foreground cell, cost over the synchronous path", f(m(fg) - m(sync)), f"<= {f(BAR_S)}",
               m(fg) - m(sync) <= BAR_S)
    bars.check("live widget of a 0.5 s run, cost", f(m(long) - m(long_sync)), f"<= {f(BAR_WIDGET_S)}",
               m(long) - m(long_sync) <= BAR_WIDGET_S)
    bars.print()
    return 0


if __name__ == "__main__":
    _util.run_timed(main)
