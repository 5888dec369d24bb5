"""Notebook operations without a kernel of our own: free-variable analysis, the CLI's
``run NOTEBOOK.ipynb``, ``rerun`` (from the snapshot, never the current file) and ``diff``."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from guild_jupyter.notebook.inputs import capture, free_names
from tests.conftest import cli


def test_free_names_are_read_before_bound_and_not_local():
    source = (
        "import numpy as np\n"
        "x = np.zeros(3) + y\n"
        "def f(a):\n    local = a + z\n    return local\n"
        "r = [i * w for i in range(3)]\n"
        "k = k + 1\n"
        "print(len(data), _, In, _i3)\n"
        "x = x * 2\n"
    )
    assert free_names(source) == ["y", "z", "w", "k", "data"]


def test_capture_records_modules_by_name_and_hashes_values():
    import json

    ns = {"json": json, "cfg": {"a": 1}, "unused": 2}
    found = capture("print(json.dumps(cfg))", ns)
    assert found["json"].record() == {"kind": "module", "hash": None, "module": "json"}
    assert found["cfg"].kind == "pickle" and len(found["cfg"].hash) == 64
    assert "unused" not in found
    assert capture("print(cfg)", ns)["cfg"].hash == found["cfg"].hash  # same value, same hash


def test_cli_notebook_run_rerun_check_and_diff(store, home, tmp_path):
    nb = new_notebook(cells=[
        new_markdown_cell("# a notebook op"),
        new_code_cell("lr = 0.1\nepochs = 2"),
        new_code_cell("for e in range(epochs):\n    print(f'loss: {lr * (e + 1)}')"),
    ])
    nbformat.write(nb, str(tmp_path / "train.ipynb"))
    r = cli("run", "train.ipynb", "lr=0.3", home=home, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "loss: 0.3" in r.stdout and "loss: 0.6" in r.stdout
    first = store.list_rows()[0]["id"]
    assert store.load_run(first).flags == {"lr": 0.3, "epochs": 2}
    # the file changes; a rerun still runs the snapshot, with the override on top
    nb.cells[2].source = "print('changed')"
    nbformat.write(nb, str(tmp_path / "train.ipynb"))
    r = cli("rerun", first, "epochs=3", "--check", home=home, cwd=tmp_path)
    assert r.returncode == 1, r.stderr  # the scalars differ
    assert "differs in 1 of 1 scalar(s)" in r.stdout and "loss: 0.6 -> 0.8999" in r.stdout
    assert "changed" not in r.stdout and "WARNING" not in r.stdout
    second = store.list_rows()[0]["id"]
    assert store.load_run(second).source["rerun_of"] == first
    r = cli("diff", first, second, home=home)
    assert r.returncode == 0, r.stderr
    assert "epochs: 2 -> 3" in r.stdout and "-epochs = 2" in r.stdout and "+epochs = 3" in r.stdout


def test_cli_rerun_of_a_script_reproduces(store, home, tmp_path):
    (tmp_path / "s.py").write_text("x = 2\nprint(f'loss: {x * 1.5}')\n")
    assert cli("run", "s.py", home=home, cwd=tmp_path).returncode == 0
    r = cli("rerun", "1", "--check", home=home, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "reproduces: 1 scalar(s) match (loss)" in r.stdout
    r = cli("rerun", "nope", home=home)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1


def test_an_inline_run_keeps_its_code_and_reruns_from_it(store, tmp_path):
    from guild_jupyter.notebook.cell_op import CellOperation, run_inline
    from guild_jupyter.notebook.rerun import rerun

    cell = "lr = 0.1\nprint(f'loss: {lr * 2}')\n"
    op = CellOperation.from_cell(cell, name="nb:cell-1", notebook_dir=str(tmp_path), namespace={}, outputs=[],
                                 notebook=None, capture_inputs=False)
    ns: dict = {}
    run = run_inline(op, {"lr": 0.25}, store=store, namespace=ns)
    assert run.status == "completed" and ns["lr"] == 0.25 and run.output() == "loss: 0.5\n"
    assert run.source["code"] == "lr = 0.25\nprint(f'loss: {lr * 2}')\n"
    again = rerun(run.id, {}, store=store, check=True)
    assert again.status == "completed" and again.flags == {"lr": 0.25} and again.output().startswith("loss: 0.5")
