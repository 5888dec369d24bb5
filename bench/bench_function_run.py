"""Overhead of ``gj.run(fn, flags)`` over calling ``fn(**flags)`` directly.

A trivial function (two flags, returns a number) is run ~300 times as a
recorded run after a warm-up, in a fresh ``GUILD_JUPYTER_HOME``; each run
creates its directory, writes run.json three times (pending, running,
completed), updates the index, snapshots the source and captures output.

Bar (DESIGN "Bars", inline run overhead): median of ``gj.run`` minus the median
direct call <= 2 ms. Baseline, same run: the direct call ``fn(**flags)``.
Reported: median and p90 per ``gj.run``, the direct-call median, and the
overhead. ``GUILD_JUPYTER_FSYNC`` is left as the environment has it.

``--quick``: 100 runs instead of 300.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _util  # noqa: E402
from _util import Bars, table  # noqa: E402

BAR_OVERHEAD_S = 0.002
WARMUP = 20


def trivial(x=1, lr=0.1):
    return x * lr


def main() -> int:
    _util.header("bench_function_run: gj.run(fn, flags) vs fn(**flags)")
    home = _util.temp_home("function-run")
    import gc

    import guild_jupyter as gj

    store = gj.RunStore(home)
    n = 100 if _util.quick() else 300
    flags = {"x": 3, "lr": 0.01}

    for _ in range(WARMUP):
        gj.run(trivial, flags, store=store)
    gc.collect()
    runs = []
    for i in range(n):
        t0 = time.perf_counter()
        r = gj.run(trivial, flags, store=store)
        runs.append(time.perf_counter() - t0)
    assert r.status == "completed" and r.result == trivial(**flags)
    frame = gj.runs(store=store)
    assert len(frame) == n + WARMUP, len(frame)

    direct = _util.timed(lambda: trivial(**flags), n, warmup=WARMUP)

    m_run, p90_run, m_direct = _util.median(runs), _util.quantile(runs, 0.9), _util.median(direct)
    overhead = m_run - m_direct
    p90_overhead = p90_run - m_direct

    def f(s: float) -> str:
        return f"{s * 1000:.3f} ms"

    rows = [
        ("gj.run(trivial, flags)", f(m_run), f(p90_run), f(min(runs)), f(max(runs))),
        ("baseline: trivial(**flags)", f(m_direct), f(_util.quantile(direct, 0.9)), f(min(direct)), f(max(direct))),
        ("overhead (run - direct median)", f(overhead), f(p90_overhead), "", ""),
    ]
    print(f"{n} runs after {WARMUP} warm-up runs, store {home}"
          f" (fsync {'on' if os.environ.get('GUILD_JUPYTER_FSYNC') == '1' else 'off'})")
    print()
    print(table(rows, ("per call", "median", "p90", "min", "max")))
    print(f"gj.run throughput: {1 / m_run:,.0f} runs/s; ref: MLflow 24.8 ms per in-process run, "
          f"Guild `guild run` 1.59 s (DESIGN)")
    bars = Bars()
    bars.check("inline run overhead, median", f(overhead), f"<= {f(BAR_OVERHEAD_S)}", overhead <= BAR_OVERHEAD_S)
    bars.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
