"""``--inline`` runs are recorded write-behind (storage/pending.py): a short cell is
written once, already ended; a long one becomes visible as running within a flush
interval; whatever dies, what was written stays and the status ends right."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from guild_jupyter.events import RunCreated, StatusChanged
from guild_jupyter.notebook.cell_op import CellOperation, needs_ipython_transform, run_inline
from guild_jupyter.orchestration.reconcile import reconcile
from guild_jupyter.storage.store import RunStore


def cell_op(cell: str, tmp_path) -> CellOperation:
    return CellOperation.from_cell(cell, name="nb:cell-1", notebook_dir=str(tmp_path), namespace={},
                                   outputs=[], notebook=None, capture_inputs=False)


def test_a_short_inline_run_is_written_once_already_ended(store, tmp_path):
    seen = []
    store.events.subscribe(lambda e: seen.append(e))
    run = run_inline(cell_op("lr = 0.1\nprint(f'y = {lr * 2}')\n", tmp_path), {"lr": 0.5}, store=store,
                     namespace={})
    statuses = [e.status for e in seen if isinstance(e, StatusChanged)]
    assert [type(e) for e in seen if not isinstance(e, StatusChanged)].count(RunCreated) == 1
    assert statuses == ["completed"]  # no running record was written first
    other = RunStore(store.home)  # what another process reads
    loaded = other.load_run(run.id)
    assert loaded.status == "completed" and loaded.flags == {"lr": 0.5}
    assert other.read_output(run.id) == "y = 1.0\n"
    assert [r["status"] for r in other.list_rows()] == ["completed"]


def test_a_long_inline_run_is_visible_as_running_while_it_goes(store, tmp_path):
    cell = "import time\nprint('started')\ntime.sleep(1.5)\nprint('done')\n"
    other = RunStore(store.home)
    observed: list = []

    def watch() -> None:
        deadline = time.time() + 1.2
        while time.time() < deadline and not observed:
            rows = other.list_rows()
            if rows and rows[0]["status"] == "running":
                observed.append((time.time(), other.read_output(rows[0]["id"])))
            time.sleep(0.02)

    t0 = time.time()
    watcher = threading.Thread(target=watch)
    watcher.start()
    run = run_inline(cell_op(cell, tmp_path), {}, store=store, namespace={})
    watcher.join()
    assert observed, "the running inline run never became visible"
    seen_at, output = observed[0]
    assert seen_at - t0 < 0.8  # written behind within a flush interval, not at the end
    assert output == "started\n"  # lines before the write are in it; later ones follow
    assert run.status == "completed" and other.read_output(run.id) == "started\ndone\n"


def test_log_points_and_errors_of_inline_runs_are_recorded(store, tmp_path):
    ns: dict = {}
    cell = "import guild_jupyter as gj\nfor i in range(3):\n    gj.log(step=i, loss=1.0 / (i + 1))\n"
    run = run_inline(cell_op(cell, tmp_path), {}, store=store, namespace=ns)
    assert run.status == "completed"
    assert sorted((s, v) for k, s, v, _ in store.iter_run_points(run.id) if k == "loss") == [
        (0, 1.0), (1, 0.5), (2, 1 / 3)]
    with pytest.raises(ZeroDivisionError):
        run_inline(cell_op("x = 1\nprint('before')\n1 / 0\n", tmp_path), {}, store=store, namespace={})
    failed = store.resolve(1)
    assert failed.status == "failed" and failed.reason.startswith("ZeroDivisionError")
    assert store.read_output(failed.id).startswith("before\nTraceback")


def test_an_inline_run_whose_kernel_is_killed_ends_failed_with_its_output(home, tmp_path):
    script = tmp_path / "kernel.py"
    script.write_text(textwrap.dedent(f"""
        from guild_jupyter.notebook.cell_op import CellOperation, run_inline
        from guild_jupyter.storage.store import RunStore
        cell = "import time\\nprint('epoch 1', flush=True)\\ntime.sleep(60)\\n"
        op = CellOperation.from_cell(cell, name="nb:cell-1", notebook_dir={str(tmp_path)!r}, namespace={{}},
                                     outputs=[], notebook=None, capture_inputs=False)
        run_inline(op, {{}}, store=RunStore({str(home)!r}), namespace={{}})
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL)
    store = RunStore(home)
    deadline = time.time() + 20
    while time.time() < deadline and not store.list_rows():
        time.sleep(0.05)
    rows = store.list_rows()
    assert rows and rows[0]["status"] == "running"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    reconcile(store)
    run = store.resolve(1)
    assert run.status == "failed" and run.reason
    assert store.read_output(run.id) == "epoch 1\n"


@pytest.mark.parametrize("cell, needed", [
    ("x = 1\nprint(x)\n", False),
    ("%time x = 1\n", True),
    ("files = !ls\n", True),
    ("len?\n", True),
    ("    x = 1\n", True),
    (">>> x = 1\n", True),
])
def test_only_cells_with_ipython_syntax_go_through_the_transforms(cell, needed):
    assert needs_ipython_transform(cell) is needed


def visible(store) -> list[str]:
    return sorted(n for n in os.listdir(store.runs_dir) if not n.startswith("."))


def spares(store) -> list[str]:
    """The staging folders made ahead (storage/pending.py), as ``<pid>-<n>``."""
    try:
        return sorted(os.listdir(os.path.join(store.runs_dir, ".spares")))
    except FileNotFoundError:
        return []


def test_an_inline_run_appears_whole_and_its_staging_folders_stay_hidden(store, tmp_path):
    runs = [run_inline(cell_op(f"print('run {i}')\n", tmp_path), {}, store=store, namespace={}) for i in range(3)]
    quiet = run_inline(cell_op("x = 1\n", tmp_path), {}, store=store, namespace={})  # no output at all
    assert visible(store) == sorted(r.id for r in [*runs, quiet])
    for i, run in enumerate(runs):
        files = set(os.listdir(store.meta_dir(run.id))) - {"scalars"}  # (empty, made ahead)
        assert files == {"output", "output.index", "run.json"}
        assert store.read_output(run.id) == f"run {i}\n" and store.load_run(run.id).status == "completed"
    assert store.read_output(quiet.id) == "" and store.load_run(quiet.id).status == "completed"
    report = store.check(repair=True)  # the index rebuilt from the run folders: spares are not runs
    assert report["runs"] == 4 and report["corrupt"] == [] and report["missing_from_index"] == []
    assert sorted(r["id"] for r in store.list_rows()) == sorted(r.id for r in [*runs, quiet])


KERNEL = """
import sys, time
from guild_jupyter.notebook.cell_op import CellOperation, run_inline
from guild_jupyter.storage.store import RunStore
store = RunStore({home!r})
for i in range(3):
    op = CellOperation.from_cell(f"print('cell {{i}}')\\n", name="nb:cell-1", notebook_dir={dir!r},
                                 namespace={{}}, outputs=[], notebook=None, capture_inputs=False)
    run = run_inline(op, {{}}, store=store, namespace={{}})
print("ended", run.id, flush=True)
if sys.argv[1] == "hang":
    time.sleep(60)
"""


def test_a_kernel_killed_right_after_a_cell_keeps_that_run_and_no_spare_outlives_its_kernel(home, tmp_path):
    script = tmp_path / "kernel.py"
    script.write_text(KERNEL.format(home=str(home), dir=str(tmp_path)))
    done = subprocess.run([sys.executable, str(script), "exit"], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1].startswith("ended ")  # after the cells' own output
    store = RunStore(home)
    assert spares(store) == []  # removed at exit
    # kill -9 as soon as the cell has returned: its run was written before, not behind
    proc = subprocess.Popen([sys.executable, str(script), "hang"], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    while line and not line.startswith("ended "):
        line = proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    run_id = line.split()[1]
    reconcile(store)
    run = store.load_run(run_id)
    assert run.status == "completed" and store.read_output(run_id) == "cell 2\n"
    assert [r["status"] for r in store.list_rows()] == ["completed"] * 6
    report = store.check()  # what a killed kernel leaves (spares of empty files) is no run
    assert report["runs"] == 6 and report["corrupt"] == [] and report["missing_from_index"] == []
    # the killed kernel's spares (if its refill had made any; one more as it would leave it)
    host = os.uname().nodename
    os.makedirs(os.path.join(store.runs_dir, ".spares", f"{proc.pid}-99-{host}", ".run", "scalars"))
    elsewhere = f"{proc.pid}-1-other.host"  # another machine's (a store on a shared disk): kept
    os.makedirs(os.path.join(store.runs_dir, ".spares", elsewhere, ".run"))
    left = [s for s in spares(store) if s.startswith(f"{proc.pid}-") and s != elsewhere]
    run_inline(cell_op("print('later')\n", tmp_path), {}, store=store, namespace={})
    deadline = time.time() + 10
    while time.time() < deadline and set(left) & set(spares(store)):
        time.sleep(0.05)
    assert not set(left) & set(spares(store))  # removed by the next process making spares
    assert all(s.startswith(f"{os.getpid()}-") for s in spares(store) if s != elsewhere)
    assert elsewhere in spares(store)


def test_scalars_of_a_short_inline_run_are_written_and_indexed_with_it(store, tmp_path):
    seen = []
    store.events.subscribe(lambda e: seen.append(e))
    cell = "import guild_jupyter as gj\nprint('loss: 0.5')\ngj.log(step=3, acc=0.75)\ngj.log(acc=0.5)\n"
    run = run_inline(cell_op(cell, tmp_path), {}, store=store, namespace={})
    kinds = [type(e).__name__ for e in seen if e.run == run.id and type(e).__name__ != "OutputLines"]
    assert kinds == ["RunCreated", "ScalarsLogged", "StatusChanged"]  # one write: no running record
    other = RunStore(store.home)
    assert sorted((k, s, v) for k, s, v, _ in other.iter_run_points(run.id)) == [
        ("acc", 3, 0.75), ("acc", 4, 0.5), ("loss", 0, 0.5)]  # a stepless point continues the series
    row = other.runs_frame().iloc[0]
    assert (row["status"], row["scalars.loss"], row["scalars.acc"]) == ("completed", 0.5, 0.5)


def test_points_of_a_long_inline_run_all_land_before_it_ends(store, tmp_path):
    cell = ("import time, guild_jupyter as gj\nfor i in range(6):\n"
            "    gj.log(step=i, loss=1.0 / (i + 1))\n    print(f'acc: {i / 10}')\n    time.sleep(0.1)\n")
    run = run_inline(cell_op(cell, tmp_path), {}, store=store, namespace={})
    other = RunStore(store.home)
    points = sorted((k, s, v) for k, s, v, _ in other.iter_run_points(run.id))
    assert [p for p in points if p[0] == "loss"] == [("loss", i, 1.0 / (i + 1)) for i in range(6)]
    assert [p[2] for p in points if p[0] == "acc"] == [i / 10 for i in range(6)]
    row = other.runs_frame().iloc[0]
    assert (row["status"], row["scalars.loss"]) == ("completed", 1.0 / 6)


FORKING_KERNEL = """
import os, sys
from guild_jupyter.notebook.cell_op import CellOperation, run_inline
from guild_jupyter.storage.store import RunStore
store = RunStore({home!r})
def cell(source):
    op = CellOperation.from_cell(source, name="nb:cell-1", notebook_dir={dir!r}, namespace={{}},
                                 outputs=[], notebook=None, capture_inputs=False)
    return run_inline(op, {{}}, store=store, namespace={{}})
cell("print('parent 1')\\n")
pid = os.fork()
if pid == 0:  # the child records its own runs, with its own spares, and removes those at exit
    cell("import guild_jupyter as gj\\nprint('child')\\ngj.log(step=1, loss=0.25)\\n")
    sys.exit(0)
_, status = os.waitpid(pid, 0)
assert status == 0, status
cell("print('parent 2')\\n")
"""


def test_a_forked_child_records_its_own_inline_runs_and_leaves_its_parents_spares(home, tmp_path):
    script = tmp_path / "kernel.py"
    script.write_text(FORKING_KERNEL.format(home=str(home), dir=str(tmp_path)))
    subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=60)
    store = RunStore(home)
    assert spares(store) == [] and visible(store) == sorted(r["id"] for r in store.list_rows())
    runs = [store.load_run(r["id"]) for r in reversed(store.list_rows())]
    assert [store.read_output(r.id) for r in runs] == ["parent 1\n", "child\n", "parent 2\n"]
    assert all(r.status == "completed" for r in runs)
    assert [(k, s, v) for k, s, v, _ in store.iter_run_points(runs[1].id)] == [("loss", 1, 0.25)]
