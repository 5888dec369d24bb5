"""%%guild_run and %guild in a real kernel: notebooks executed with nbclient.

One kernel serves the whole module (kernels cost ~1 s each to start); each test
executes its own small notebook in it. The kernel's working directory is a
temporary notebook folder and its GUILD_JUPYTER_HOME a temporary store.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from guild_jupyter.storage.store import RunStore
from tests.kernel_cells import LONG_CELL, LONG_SWEEP_CELL, executing, shell_reply


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from jupyter_client import KernelManager

    root = tmp_path_factory.mktemp("magics")
    home, nbdir = root / "home", root / "nb"
    nbdir.mkdir()
    (nbdir / "data.txt").write_text("41\n")
    kernel_env = dict(os.environ, GUILD_JUPYTER_HOME=str(home))
    for var in ("RUN_ID", "RUN_DIR"):
        kernel_env.pop(var, None)
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(nbdir), env=kernel_env)
    try:
        execute(km, nbdir, ["%load_ext guild_jupyter"])
        yield km, RunStore(home), nbdir
    finally:
        from tests.conftest import _kill_leftovers

        _kill_leftovers(RunStore(home))
        km.shutdown_kernel(now=True)


def execute(km, nbdir, sources):
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    NotebookClient(nb, km=km, allow_errors=True, timeout=120,
                   resources={"metadata": {"path": str(nbdir)}}).execute()
    return nb.cells


def text(cell):
    """Everything the cell showed, as text (streams, text/plain results, error names and values)."""
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.data.get("text/plain", ""))
        elif out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}")
    return "".join(parts)


def errors(cell):
    return [o for o in cell.outputs if o.output_type == "error"]


def last_value(store, run_id, key):
    points = sorted((s, t, v) for k, s, v, t in store.iter_run_points(run_id) if k == key)
    return points[-1][2] if points else None


def run_ids(store):
    return {r["id"] for r in store.list_rows(deleted=None)}


def test_cell_run_flags_inputs_outputs_and_load(env):
    km, store, nbdir = env
    cells = execute(km, nbdir, [
        "data = [1, 2, 3]",
        "%%guild_run --outputs total,note -l first -t a -t b lr=0.5\n"
        "lr = 0.1\n"
        "epochs = 3\n"
        "total = sum(data) * lr * epochs\n"
        "print(f'loss: {total}')\n"
        "base = int(open('data.txt').read())\n"
        "open('result.txt', 'w').write(str(base + 1))\n"
        "note = 'written'\n"
        "import guild_jupyter as gj\n"
        "gj.log(step=1, acc=0.5)\n",
        "r = _\nprint(r.id, r.status.value, r.kind)",
        "%guild load {r.id} total as t2 note\nprint(t2, note)",
    ])
    assert not any(errors(c) for c in cells), [text(c) for c in cells]
    assert "loss: 9.0" in text(cells[1])  # streamed into the cell
    run_id, status, kind = text(cells[2]).split()
    assert (status, kind) == ("completed", "cell")
    run = store.load_run(run_id)
    assert run.flags == {"lr": 0.5, "epochs": 3, "note": "written"}  # literal assignments are flags
    assert run.label == "first" and run.tags == ["a", "b"]
    assert run.op.startswith("notebook:cell-")
    import cloudpickle

    expected = hashlib.sha256(cloudpickle.dumps([1, 2, 3], protocol=5)).hexdigest()
    assert run.source["inputs"]["data"] == {"kind": "pickle", "hash": expected, "module": None}
    assert "gj" not in run.source["inputs"] and "lr" not in run.source["inputs"]
    snapshot = os.path.join(store.meta_dir(run_id), "sourcecode", "cell.py")
    assert "lr = 0.5\n" in open(snapshot).read()
    assert last_value(store, run_id, "loss") == 9.0
    assert last_value(store, run_id, "acc") == 0.5
    # relative paths resolve beside the notebook; what the run wrote is its artifact
    run_dir = store.run_dir(run_id)
    assert open(os.path.join(run_dir, "result.txt")).read() == "42"
    assert not (nbdir / "result.txt").exists()
    assert sorted(os.listdir(run_dir)) == [".run", "result.txt"]  # the links to the notebook folder are gone
    assert "loaded total as t2, note" in text(cells[3])
    assert "9.0 written" in text(cells[3])


def test_inline_and_background(env):
    km, store, nbdir = env
    cells = execute(km, nbdir, [
        "%%guild_run --inline factor=4\nfactor = 2\nwhere = !pwd\ny_inline = factor * 3\nprint(f'val: {y_inline}')",
        "ri = _\nprint(ri.kind, ri.status.value, y_inline, ri.id)",
        "import time\nt0 = time.time()",
        "%%guild_run --background\nimport time\ntime.sleep(3)\nprint('done: 1')",
        "rb = _\nprint(rb.status.value, round(time.time() - t0, 3), rb.id)",
    ])
    assert not any(errors(c) for c in cells), [text(c) for c in cells]
    kind, status, value, inline_id = text(cells[1]).split()
    assert (kind, status, value) == ("inline", "completed", "12")  # (with a shell escape in the cell)
    assert last_value(store, inline_id, "val") == 12
    assert "val: 12" in store.read_output(inline_id)
    status, elapsed, bg_id = text(cells[4]).split()
    assert status in ("pending", "running") and float(elapsed) < 2.5  # the run takes 3 s
    deadline = time.time() + 30
    while store.load_run(bg_id).status.value in ("pending", "running") and time.time() < deadline:
        time.sleep(0.1)
    assert store.load_run(bg_id).status.value == "completed"
    assert last_value(store, bg_id, "done") == 1


def test_bad_input_gives_one_line_and_creates_no_run(env):
    km, store, nbdir = env
    before = run_ids(store)
    cells = execute(km, nbdir, [
        "%%guild_run --bogus\nx = 1",
        "%%guild_run epochs=abc\nepochs = 3",
        "%%guild_run nope=1\nepochs = 3",
        "import threading\nlock = threading.Lock()",
        "%%guild_run\nwith lock:\n    pass",
        "%%guild_run\nx = 1\n!echo hi",
        "%%guild_run --gpus 1\nx = 1",  # the local executor does not place GPUs
        "%%guild_run --gpus 1 x=[1,2]\nx = 1",  # nor a sweep's trials
        "%%guild_run --inline --gpus 1\nx = 1",
    ])
    assert run_ids(store) == before
    shown = {}
    for i in (0, 1, 2, 4, 5, 6, 7, 8):  # IPython shows a UsageError as one stderr line, no traceback
        lines = text(cells[i]).strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("UsageError: "), text(cells[i])
        assert [o.name for o in cells[i].outputs] == ["stderr"]
        shown[i] = lines[0]
    assert "unrecognized arguments: --bogus" in shown[0]
    assert "epochs" in shown[1] and "abc" in shown[1]
    assert "unknown flag 'nope'" in shown[2]
    assert "line 2 uses IPython syntax" in shown[5] and "--inline" in shown[5]
    assert "does not schedule resources" in shown[6] and "does not schedule resources" in shown[7]
    assert "drop --executor/--gpus" in shown[8]
    msg = shown[4]
    assert "input 'lock'" in msg and "cannot be pickled" in msg and "--inline" in msg


def test_rerun_check(env):
    km, store, nbdir = env
    cells = execute(km, nbdir, [
        "%%guild_run\nscale = 3\nprint(f'loss: {scale * 0.5}')",
        "det = _",
        "%%guild_run\nimport random\nprint(f'value: {random.random()}')",
        "rnd = _",
        "%guild rerun {det.id} --check",
        "%guild rerun {rnd.id} --check",
        "%guild rerun {det.id} scale=5 --check",
    ])
    assert not any(errors(c) for c in cells[:6]), [text(c) for c in cells]
    assert "reproduces: 1 scalar(s) match (loss)" in text(cells[4])
    assert "differs in 1 of 1 scalar(s)" in text(cells[5]) and "value:" in text(cells[5])
    assert "loss: 1.5 -> 2.5" in text(cells[6])
    newest = store.list_rows()[0]
    assert store.load_run(newest["id"]).source["rerun_of"] is not None


def test_notebook_op_with_overridden_flag(env):
    km, store, nbdir = env
    other = new_notebook(cells=[
        new_code_cell("lr = 0.1\nsteps = 2"),
        new_code_cell("for i in range(steps):\n    print(f'loss: {lr * (i + 1)}')"),
        new_code_cell("lr * 1000  # an Out value: never a scalar"),
    ])
    nbformat.write(other, str(nbdir / "other.ipynb"))
    cells = execute(km, nbdir, ["%guild run other.ipynb lr=0.25", "print(_.id)"])
    assert not any(errors(c) for c in cells), [text(c) for c in cells]
    run_id = text(cells[1]).strip()
    run = store.load_run(run_id)
    assert run.kind == "notebook" and run.status.value == "completed"
    assert run.flags == {"lr": 0.25, "steps": 2}
    assert last_value(store, run_id, "loss") == 0.5
    executed = nbformat.read(os.path.join(store.run_dir(run_id), "other.ipynb"), as_version=4)
    assert executed.cells[0].source.startswith("lr = 0.25")
    assert executed.cells[2].outputs[0]["data"]["text/plain"] == "250.0"
    assert json.loads(json.dumps(run.source))["notebook"].endswith("other.ipynb")


def test_kernel_interrupt_cancels_foreground_run(env):
    km, store, nbdir = env
    before = run_ids(store)
    with executing(km, LONG_CELL) as (kc, msg_id):
        deadline = time.time() + 30
        new = set()
        while time.time() < deadline:
            new = run_ids(store) - before
            if new and "started" in store.read_output(next(iter(new))):
                break
            time.sleep(0.1)
        assert new
        km.interrupt_kernel()
        reply = shell_reply(kc, msg_id)
    run = store.load_run(next(iter(new)))
    assert run.status.value == "cancelled"
    assert reply["content"]["status"] == "error"


def test_guild_commands_mirror_the_cli(env):
    km, store, nbdir = env
    cells = execute(km, nbdir, [
        "%%guild_run -l cmd\nv = 1\nprint(f'v: {v}')",
        "rid = _.id\ndf = %guild runs -n 3\nprint(type(df).__name__, df['id'].iloc[0] == rid, list(df.columns[:3]))",
        "%guild label {rid} --set relabelled",
        "%guild tag {rid} -a good",
        "%guild cat {rid}",
        "cmp = %guild compare {rid}\nprint(len(cmp), int(cmp['flags.v'].iloc[0]), cmp['label'].iloc[0])",
        "%guild delete {rid}",
        "%guild restore {rid}",
        "%guild load {rid} nothing",
        "%guild frobnicate",
    ])
    assert not any(errors(c) for c in cells), [text(c) for c in cells]
    assert text(cells[1]).strip() == "DataFrame True ['id', 'op', 'status']"
    assert "labelled" in text(cells[2]) and "tags: good" in text(cells[3])
    assert text(cells[4]) == "v: 1\n"
    assert text(cells[5]).split() == ["1", "1", "relabelled"]
    assert "moved 1 run(s) to the trash" in text(cells[6]) and "restored 1 run(s)" in text(cells[7])
    assert text(cells[8]).strip().startswith("UsageError: run ") and "has no output 'nothing'" in text(cells[8])
    assert text(cells[9]).strip().startswith("UsageError: %guild: unknown command 'frobnicate'")
    run = store.load_run(store.list_rows()[0]["id"])
    assert run.label == "relabelled" and run.tags == ["good"] and not run.deleted


def test_a_grid_sweep_from_a_cell(env):
    km, store, nbdir = env
    before = run_ids(store)
    cells = execute(km, nbdir, [
        "offset = 0.5",
        '%%guild_run --print-trials lr=[0.1,0.2] layers=range[1:2]\nlr = 0.1\nlayers = 1\nprint(f"loss: {lr * layers + offset}")',
        '%%guild_run lr=[0.1,0.2] layers=range[1:2]\nlr = 0.1\nlayers = 1\nprint(f"loss: {lr * layers + offset}")',
        "sweep = _\nprint(len(sweep.runs), sorted(sweep.best.flags.items()), sweep.run.status)",
        '%%guild_run lr=[0.1,\nlr = 0.1\nprint(lr)',
    ])
    assert "0.2" in text(cells[1]) and "layers" in text(cells[1])  # the trials, as a table
    assert "trial 4/4: lr=0.2 layers=2" in text(cells[2])
    assert text(cells[3]).strip() == "4 [('layers', 1), ('lr', 0.1)] completed"
    assert "UsageError: flag 'lr': malformed sweep value '[0.1,'" in text(cells[4])
    new = run_ids(store) - before
    assert len(new) == 5  # 4 trials and the sweep; the malformed one recorded nothing
    trials = [store.load_run(i) for i in new if store.load_run(i).kind == "cell"]
    assert sorted(last_value(store, r.id, "loss") for r in trials) == [0.6, 0.7, 0.7, 0.9]  # captured offset


def test_guild_compare_agg_matches_the_cli(env):
    km, store, nbdir = env
    cells = execute(km, nbdir, [
        "%%guild_run -t aggtest\nlr = 0.1\nfor i in range(4):\n    print(f'loss: {lr * (4 - i)}')\n    print(f'acc: {lr * i}')",
        "%%guild_run -t aggtest lr=0.2\nlr = 0.1\nfor i in range(4):\n    print(f'loss: {lr * (4 - i)}')\n    print(f'acc: {lr * i}')",
        "df = %guild compare -t aggtest --agg loss=min --agg acc=max\n"
        "print(sorted(zip(df['flags.lr'], df['scalars.loss'].round(3), df['scalars.acc'].round(3))))",
        "first = %guild compare -t aggtest --agg first\nprint(sorted(first['scalars.loss'].round(3)))",
        "from guild_jupyter.cli.main import main\n"
        "main(['compare', '-t', 'aggtest', '--json', '--agg', 'loss=min', '--agg', 'acc=max'])",
        "%guild compare --agg loss=median",
    ])
    assert not any(errors(c) for c in cells[:5]), [text(c) for c in cells]
    assert text(cells[2]).strip() == "[(0.1, 0.1, 0.3), (0.2, 0.2, 0.6)]"
    assert text(cells[3]).strip() == "[0.4, 0.8]"
    cli = json.loads(text(cells[4])[: text(cells[4]).rindex("]") + 1])
    assert sorted((r["flags"]["lr"], r["scalars"]["loss"]) for r in cli) == [(0.1, pytest.approx(0.1)), (0.2, pytest.approx(0.2))]
    assert "unknown scalar aggregate 'median'" in text(cells[5])


def test_kernel_interrupt_stops_a_cell_sweep(env):
    """A cell sweep runs while the cell awaits it: an interrupt stops the running trial
    and starts no more."""
    km, store, nbdir = env
    before = run_ids(store)
    with executing(km, LONG_SWEEP_CELL) as (kc, msg_id):
        deadline, new = time.time() + 60, set()
        while time.time() < deadline:
            new = run_ids(store) - before
            trials = [store.load_run(i) for i in new if store.load_run(i).kind != "sweep"]
            # any trial: the next one is created (and waits its turn) while the first runs
            if any("trial" in store.read_output(t.id) for t in trials):
                break
            time.sleep(0.1)
        else:
            pytest.fail("no trial printed within 60 s")
        km.interrupt_kernel()
        shell_reply(kc, msg_id)
    runs = [store.load_run(i) for i in run_ids(store) - before]
    (sweep,) = [r for r in runs if r.kind == "sweep"]
    trials = [r for r in runs if r.kind != "sweep"]
    assert sweep.status.value == "cancelled"
    assert trials and all(t.status.value == "cancelled" for t in trials)
    assert sum("trial" in store.read_output(t.id) for t in trials) == 1, [store.read_output(t.id) for t in trials]
    assert len(trials) < 3


def test_repeated_inline_cells_each_record_their_own_options(env):
    """The magic line is parsed once per distinct line (magics._parsed_run_line): a rerun
    gets its own tags, a bad line fails every time, and each run is listed at once."""
    km, store, nbdir = env
    before = run_ids(store)
    cell = "%%guild_run --inline -t fast -l 'a label' n=2\nn = 1\nprint(f'n: {n}')"
    cells = execute(km, nbdir, [
        cell,
        "r1 = _\nr1.tags.append('mutated')",  # a caller changing the returned run's tags
        cell,
        "r2 = _\n%guild runs",
        "%%guild_run --inline --bogus\nx = 1",
        "%%guild_run --inline --bogus\nx = 1",
        "print(r1.id, r2.id)",
    ])
    assert not any(errors(c) for c in cells[:4]), [text(c) for c in cells]
    first, second = text(cells[6]).split()
    assert first != second and run_ids(store) - before == {first, second}
    for run_id in (first, second):
        run = store.load_run(run_id)
        assert (run.tags, run.label, run.flags, run.status.value) == (["fast"], "a label", {"n": 2}, "completed")
        assert store.read_output(run_id) == "n: 2\n"
    assert second[:8] in text(cells[3]) and first[:8] in text(cells[3])
    for i in (4, 5):
        assert "unrecognized arguments: --bogus" in text(cells[i])
