"""Shared helpers for the bench scripts (not a benchmark: ``make bench`` skips ``_*.py``).

Every script imports this first: it puts the repository root on ``sys.path``
(so ``python bench/x.py`` works from a checkout) and points
``GUILD_JUPYTER_HOME`` at a fresh temp dir so nothing touches the user's home.
"""

from __future__ import annotations

import atexit
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# stdout line by line, so the table and the store's progress bar (stderr) interleave sanely
try:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
except (AttributeError, ValueError):
    pass

CACHE = Path(os.environ.get("GUILD_JUPYTER_BENCH_CACHE", "/tmp/guild-jupyter-bench-cache"))


def temp_home(name: str) -> Path:
    """A temp dir set as ``GUILD_JUPYTER_HOME`` for this process, removed at exit."""
    home = Path(tempfile.mkdtemp(prefix=f"gj-bench-{name}-"))
    os.environ["GUILD_JUPYTER_HOME"] = str(home)
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    return home


def quick() -> bool:
    return "--quick" in sys.argv[1:]


def option(name: str) -> bool:
    return name in sys.argv[1:]


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def quantile(xs: list[float], q: float) -> float:
    """Nearest-rank quantile (q in 0..1) of ``xs``."""
    s = sorted(xs)
    if not s:
        return float("nan")
    i = min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))
    return s[i]


def timed(fn, repeat: int, warmup: int = 1) -> list[float]:
    """Seconds per call of ``fn()`` over ``repeat`` calls after ``warmup`` calls
    (garbage collected once before, never disabled)."""
    import gc

    gc.collect()
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def fmt_rate(per_s: float, unit: str) -> str:
    return f"{per_s:,.0f} {unit}/s"


def table(rows: list[tuple], headers: tuple) -> str:
    cells = [tuple(str(c) for c in headers)] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, r in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


class Bars:
    """Collects PASS/MISS verdicts and prints them; never changes the exit code."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def check(self, what: str, figure: str, bar: str, ok: bool) -> None:
        self.rows.append((what, figure, bar, "PASS" if ok else "MISS"))

    def print(self) -> None:
        print()
        print(table(self.rows, ("bar", "measured", "target", "verdict")))


def header(title: str) -> None:
    import platform

    print(f"{title}  (python {platform.python_version()}, {os.cpu_count()} cpus"
          f"{', --quick' if quick() else ''})")


def run_timed(main) -> None:
    """Run a bench's ``main`` and say how long the whole script took (then exit with its code)."""
    t = time.time()
    code = main()
    print(f"(took {time.time() - t:.1f} s)")
    sys.exit(code)
