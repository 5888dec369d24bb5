"""Overhead of a supervised script run over running the script bare.

Three ways to run the same trivial script (``x = 1`` then a print), each
timed start to finish, in a fresh ``GUILD_JUPYTER_HOME``:

- baseline: ``subprocess.run([python, script])`` from this process;
- ``guild_jupyter.run("script.py")`` from this (already running) process,
  which creates the run, snapshots it, starts a detached supervisor that
  starts the script, and returns when the run is recorded ``completed``;
- the CLI, ``guild-jupyter run script.py`` as a new process (its own
  interpreter start and imports included), beside ``python script.py`` as a
  new process the same way.

Bars (issue 3): API run <= 30 ms median over the baseline; CLI <= 200 ms
median wall in total (Guild AI 0.9.0: 1.59 s on this kind of machine).
``--quick``: 15 runs each instead of 40.
"""

from __future__ import annotations

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _util  # noqa: E402
from _util import Bars, table  # noqa: E402

BAR_API = 0.030
BAR_CLI = 0.200


def main() -> int:
    _util.header("bench_script_run: supervised script runs vs bare python")
    home = _util.temp_home("script-run")
    work = home / "project"
    work.mkdir()
    (work / "trivial.py").write_text("x = 1\nprint('loss: 0.5')\n")
    os.chdir(work)
    n = 15 if _util.quick() else 40
    env = dict(os.environ, PYTHONPATH=str(_util.ROOT))

    import guild_jupyter as gj

    store = gj.RunStore(home)
    bare = _util.timed(
        lambda: subprocess.run([sys.executable, "trivial.py"], capture_output=True, check=True),
        n,
        3,
    )
    api = _util.timed(lambda: gj.run("trivial.py", store=store, echo=False), n, 3)
    last = gj.get_run(1, store=store)
    assert last.status == "completed" and last.output() == "loss: 0.5\n", (last.status, last.reason)
    cli_cmd = [sys.executable, "-m", "guild_jupyter", "run", "trivial.py", "-q"]
    cli = _util.timed(
        lambda: subprocess.run(cli_cmd, env=env, capture_output=True, check=True), n, 2
    )
    bare_proc = _util.timed(
        lambda: subprocess.run(
            [sys.executable, "trivial.py"], env=env, capture_output=True, check=True
        ),
        n,
        2,
    )
    assert len(store.list_rows()) == 2 * n + 5

    def f(s: float) -> str:
        return f"{s * 1000:.1f} ms"

    m = _util.median
    rows = [
        (
            "baseline: subprocess.run([python, trivial.py])",
            f(m(bare)),
            f(_util.quantile(bare, 0.9)),
        ),
        ('gj.run("trivial.py") to completion', f(m(api)), f(_util.quantile(api, 0.9))),
        ("  overhead over the baseline", f(m(api) - m(bare)), ""),
        ("CLI: guild-jupyter run trivial.py -q", f(m(cli)), f(_util.quantile(cli, 0.9))),
        (
            "  beside: python trivial.py as a process",
            f(m(bare_proc)),
            f(_util.quantile(bare_proc, 0.9)),
        ),
    ]
    print(f"{n} runs each after warm-up; store {home}")
    print()
    print(table(rows, ("per run", "median", "p90")))
    print("reference: Guild AI 0.9.0 `guild run` 1.59 s median on this kind of machine (DESIGN)")
    bars = Bars()
    bars.check(
        "API run overhead, median",
        f(m(api) - m(bare)),
        f"<= {f(BAR_API)}",
        m(api) - m(bare) <= BAR_API,
    )
    bars.check("CLI run wall, median", f(m(cli)), f"<= {f(BAR_CLI)}", m(cli) <= BAR_CLI)
    bars.print()
    return 0


if __name__ == "__main__":
    _util.run_timed(main)
