"""Overhead of ``%%guild_run`` cell runs over running the same cell plainly.

An in-process IPython shell (``InteractiveShell``, the kernel's execution core
without the messaging) with ``%load_ext guild_jupyter`` runs a trivial cell
(``lr = 0.1``, one arithmetic line, one print that is not a scalar) four ways:

- baseline A: ``shell.run_cell(cell)``, the cell executed plainly;
- ``%%guild_run --inline``: recorded in-process run (created running, output
  teed, snapshot written, status recorded);
- baseline B: ``subprocess.run([python, cell.py])``, the same code as a bare
  ``python`` process;
- ``%%guild_run`` (default): free variables captured, snapshot written, a
  supervisor forked, the cell run by the cell runner in a fresh interpreter,
  the run followed to ``completed``.

An info row repeats the inline pair with a cell that prints ``loss: 1.2`` (a
parsed and stored scalar: about 1 ms more, the same as for ``gj.run(fn)``).

Bars (issue 4): ``--inline`` <= 2 ms median over baseline A; default
(subprocess) <= 40 ms median over baseline B. ``--quick``: fewer runs.
Output is captured (not printed) in all four. Each pair is measured in
alternating blocks (10 of each), so a figure and its baseline share the load
of the moment on a shared machine.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _util  # noqa: E402
from _util import Bars, table  # noqa: E402

BAR_INLINE = 0.002
BAR_SUBPROCESS = 0.040
CELL = "lr = 0.1\ny = lr * base + 1\nprint(f'y = {y}')\n"
SCALAR_CELL = "lr = 0.1\ny = lr * base + 1\nprint(f'loss: {y}')\n"  # info row: a printed scalar too


def interleaved(baseline, measured, repeat: int, warmup: int, blocks: int = 10) -> tuple[list[float], list[float]]:
    """``_util.timed`` of both, in alternating blocks: on a shared machine the load
    changes by the second, and a figure and its baseline should see the same load."""
    a: list[float] = []
    b: list[float] = []
    for i in range(blocks):
        n = repeat // blocks + (1 if i < repeat % blocks else 0)
        a += _util.timed(baseline, n, warmup if i == 0 else 1)
        b += _util.timed(measured, n, warmup if i == 0 else 1)
    return a, b


def main() -> int:
    _util.header("bench_cell_run: %%guild_run cells vs the same cell run plainly")
    home = _util.temp_home("cell-run")
    work = home / "notebook"
    work.mkdir()
    os.chdir(work)
    (work / "cell.py").write_text("base = 2\n" + CELL)
    n_inline = 60 if _util.quick() else 300
    n_sub = 15 if _util.quick() else 40

    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_cell("%load_ext guild_jupyter", store_history=False)
    shell.user_ns["base"] = 2

    def cell(source: str):
        def go() -> None:
            with contextlib.redirect_stdout(io.StringIO()):
                result = shell.run_cell(source, store_history=False)
            if not result.success:
                raise RuntimeError(f"cell failed: {result.error_in_exec or result.error_before_exec}")
        return go

    plain, inline = interleaved(cell(CELL), cell("%%guild_run --inline\n" + CELL), n_inline, 20)
    plain_s, inline_s = interleaved(cell(SCALAR_CELL), cell("%%guild_run --inline\n" + SCALAR_CELL), n_inline, 20)
    bare, sub = interleaved(lambda: subprocess.run([sys.executable, "cell.py"], capture_output=True, check=True),
                            cell("%%guild_run\n" + CELL), n_sub, 3)

    from guild_jupyter.storage.store import RunStore

    store = RunStore(home)
    rows_ = store.list_rows()
    assert len(rows_) == 2 * (n_inline + 20 + 9) + n_sub + 3 + 9, len(rows_)  # (a warm-up call per block)
    assert all(r["status"] == "completed" for r in rows_)
    newest = store.load_run(rows_[0]["id"])
    assert newest.kind == "cell" and store.read_output(newest.id) == "y = 1.2\n"

    def f(s: float) -> str:
        return f"{s * 1000:.2f} ms"

    m = _util.median
    rows = [
        ("baseline A: shell.run_cell(cell)", f(m(plain)), f(_util.quantile(plain, 0.9))),
        ("%%guild_run --inline", f(m(inline)), f(_util.quantile(inline, 0.9))),
        ("  overhead over baseline A", f(m(inline) - m(plain)), ""),
        ("info: a cell printing a scalar (loss: 1.2), plainly", f(m(plain_s)), f(_util.quantile(plain_s, 0.9))),
        ("info: the same, %%guild_run --inline", f(m(inline_s)), f(_util.quantile(inline_s, 0.9))),
        ("  overhead (a scalar parsed and stored too)", f(m(inline_s) - m(plain_s)), ""),
        ("baseline B: python cell.py as a process", f(m(bare)), f(_util.quantile(bare, 0.9))),
        ("%%guild_run (subprocess) to completion", f(m(sub)), f(_util.quantile(sub, 0.9))),
        ("  overhead over baseline B", f(m(sub) - m(bare)), ""),
    ]
    print(f"{n_inline} inline / {n_sub} subprocess runs after warm-up; store {home}")
    print()
    print(table(rows, ("per cell", "median", "p90")))
    bars = Bars()
    bars.check("--inline overhead, median", f(m(inline) - m(plain)), f"<= {f(BAR_INLINE)}",
               m(inline) - m(plain) <= BAR_INLINE)
    bars.check("subprocess cell overhead, median", f(m(sub) - m(bare)), f"<= {f(BAR_SUBPROCESS)}",
               m(sub) - m(bare) <= BAR_SUBPROCESS)
    bars.print()
    return 0


if __name__ == "__main__":
    _util.run_timed(main)
