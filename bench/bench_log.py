"""``guild_jupyter.log()`` throughput and latency inside a function run.

A training-style loop calls ``gj.log(step=i, a=..., b=..., c=..., d=..., e=...)``
N times inside ``gj.run(fn)`` (5 scalar points per call). Reported:

(a) call-side throughput: scalar points/s over the loop alone, the training
    loop's view. Bar (DESIGN "Bars"): >= 500,000 points/s.
(b) end-to-end durable throughput: points / the whole ``gj.run()`` until it
    returns, which includes creating the run and the final flush (every point
    in the run's scalars CSV and the index summary: checked).
(c) per-call latency in a separate run that times every call: median, p99,
    p99.9 and the max. ``log()`` must never block the loop (DESIGN). The bar
    printed here: worst call <= 5 ms (Python's GIL switch interval; a call
    that waited on I/O or on a whole flush shows up far above it), or <= 2x the
    worst list.append of the same timed loop when the machine's own hiccups
    (preemption on a busy 2-core box) are larger than that.

Baselines, same loop, same values, same run: appending one ``(step, a..e)``
tuple per call to a list, and extending a list with the 5 ``(key, step, value,
time)`` tuples ``log()`` queues (with a ``time.time()`` per call, as ``log()`` does).

``--quick``: 50,000 calls instead of 200,000.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _util  # noqa: E402
from _util import Bars, table  # noqa: E402

BAR_POINTS_PER_S = 500_000
BAR_MAX_CALL_S = 0.005
KEYS = 5
REPEAT = 3


def log_loop(n: int) -> tuple[float, float]:
    import guild_jupyter as gj

    log = gj.log
    t0 = time.perf_counter()
    for i in range(n):
        x = i * 0.001
        log(step=i, a=x, b=x + 1.0, c=x * 2.0, d=1.0 - x, e=0.5)
    t1 = time.perf_counter()
    return t1 - t0, t1  # a tuple: a returned dict of numbers would become scalars


def log_loop_timed(n: int) -> list[int]:
    import guild_jupyter as gj

    log = gj.log
    clock = time.perf_counter_ns
    lat = [0] * n
    for i in range(n):
        x = i * 0.001
        c0 = clock()
        log(step=i, a=x, b=x + 1.0, c=x * 2.0, d=1.0 - x, e=0.5)
        lat[i] = clock() - c0
    return lat


def tuple_loop(n: int) -> float:
    buf: list = []
    append = buf.append
    t0 = time.perf_counter()
    for i in range(n):
        x = i * 0.001
        append((i, x, x + 1.0, x * 2.0, 1.0 - x, 0.5))
    return time.perf_counter() - t0


def points_loop(n: int) -> float:
    buf: list = []
    extend = buf.extend
    now = time.time
    t0 = time.perf_counter()
    for i in range(n):
        x = i * 0.001
        t = now()
        extend((("a", i, x, t), ("b", i, x + 1.0, t), ("c", i, x * 2.0, t), ("d", i, 1.0 - x, t), ("e", i, 0.5, t)))
    return time.perf_counter() - t0


def tuple_loop_timed(n: int) -> list[int]:
    buf: list = []
    append = buf.append
    clock = time.perf_counter_ns
    lat = [0] * n
    for i in range(n):
        x = i * 0.001
        c0 = clock()
        append((i, x, x + 1.0, x * 2.0, 1.0 - x, 0.5))
        lat[i] = clock() - c0
    return lat


def count_points(store, run_id: str) -> tuple[int, int]:
    on_disk = sum(1 for _ in store.iter_run_points(run_id))
    indexed = store.index.execute("SELECT sum(count) FROM scalar_summary WHERE run=?", (run_id,))[0][0] or 0
    return on_disk, indexed


def main() -> int:
    _util.header("bench_log: log() inside a function run vs appending to a list")
    home = _util.temp_home("log")
    import gc

    import guild_jupyter as gj

    store = gj.RunStore(home)
    n = 50_000 if _util.quick() else 200_000
    points = n * KEYS
    print(f"{n:,} log() calls x {KEYS} scalars = {points:,} points per run; flush interval "
          f"{os.environ.get('GUILD_JUPYTER_FLUSH_INTERVAL', '0.2')} s")

    gj.run(log_loop, {"n": 1000}, store=store)  # warm-up: imports, first run
    loops, e2e, tails = [], [], []
    for _ in range(REPEAT):
        gc.collect()
        t0 = time.perf_counter()
        run = gj.run(log_loop, {"n": n}, store=store)
        t_end = time.perf_counter()
        loop, loop_end = run.result
        loops.append(loop)
        e2e.append(t_end - t0)
        tails.append(t_end - loop_end)
        on_disk, indexed = count_points(store, run.id)
        assert on_disk == points and indexed == points, (on_disk, indexed, points)

    base_tuple = [tuple_loop(n) for _ in range(REPEAT)]
    base_points = [points_loop(n) for _ in range(REPEAT)]

    gc.collect()
    timed_run = gj.run(log_loop_timed, {"n": n}, store=store)
    lat = [x / 1e9 for x in timed_run.result]
    base_lat = [x / 1e9 for x in tuple_loop_timed(n)]

    m_loop, m_e2e, m_tail = _util.median(loops), _util.median(e2e), _util.median(tails)
    m_tuple, m_points = _util.median(base_tuple), _util.median(base_points)
    rate = points / m_loop
    rows = [
        ("log() loop (call side)", f"{m_loop * 1000:.0f} ms", f"{rate:,.0f}", f"{n / m_loop:,.0f}",
         f"{m_loop / n * 1e6:.2f} us"),
        ("gj.run() end to end (durable)", f"{m_e2e * 1000:.0f} ms", f"{points / m_e2e:,.0f}", f"{n / m_e2e:,.0f}",
         f"{m_e2e / n * 1e6:.2f} us"),
        ("  of which after the loop (final flush, close)", f"{m_tail * 1000:.1f} ms", "", "", ""),
        ("baseline: list.append((step, a..e))", f"{m_tuple * 1000:.0f} ms", f"{points / m_tuple:,.0f}",
         f"{n / m_tuple:,.0f}", f"{m_tuple / n * 1e6:.2f} us"),
        ("baseline: list.extend(5 x (key, step, value, t))", f"{m_points * 1000:.0f} ms",
         f"{points / m_points:,.0f}", f"{n / m_points:,.0f}", f"{m_points / n * 1e6:.2f} us"),
    ]
    print()
    print(table(rows, ("median of 3", "time", "points/s", "calls/s", "per call")))
    print(f"log() costs {m_loop / m_tuple:.1f}x the tuple append and {m_loop / m_points:.1f}x the 5-tuple extend")

    def us(x: float) -> str:
        return f"{x * 1e6:,.1f} us"

    q = _util.quantile
    lrows = [
        ("log() (timed run)", us(_util.median(lat)), us(q(lat, 0.99)), us(q(lat, 0.999)), us(max(lat)),
         sum(1 for x in lat if x > 0.001)),
        ("baseline: list.append", us(_util.median(base_lat)), us(q(base_lat, 0.99)), us(q(base_lat, 0.999)),
         us(max(base_lat)), sum(1 for x in base_lat if x > 0.001)),
    ]
    print()
    print(table(lrows, ("per-call latency", "median", "p99", "p99.9", "max", "calls > 1 ms")))

    bars = Bars()
    bars.check("log() call side, points/s", f"{rate:,.0f}", f">= {BAR_POINTS_PER_S:,}", rate >= BAR_POINTS_PER_S)
    worst_bar = max(BAR_MAX_CALL_S, 2 * max(base_lat))
    bars.check("log() never blocks: worst call", us(max(lat)), f"<= {us(worst_bar)}", max(lat) <= worst_bar)
    bars.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
