"""%guild run OP in a real kernel finds guild.yml above the notebook's folder."""

from __future__ import annotations

import os
import textwrap

from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from guild_jupyter.storage.store import RunStore


def test_guild_run_op_from_a_notebook(tmp_path):
    from jupyter_client import KernelManager

    project, home = tmp_path / "project", tmp_path / "home"
    nbdir = project / "notebooks"
    nbdir.mkdir(parents=True)
    (project / "guild.yml").write_text(
        textwrap.dedent("""
        train:
          main: train
          flags:
            lr: {default: 0.1, max: 1}
        """)
    )
    (project / "train.py").write_text("lr = 0.1\nprint('loss: %s' % (lr * 2))\n")
    env = dict(os.environ, GUILD_JUPYTER_HOME=str(home))
    for var in ("RUN_ID", "RUN_DIR"):
        env.pop(var, None)
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(nbdir), env=env)
    try:
        nb = new_notebook(
            cells=[
                new_code_cell("%load_ext guild_jupyter"),
                new_code_cell("%guild run train lr=0.25"),
                new_code_cell("%guild run train lr=5"),
            ]
        )
        NotebookClient(
            nb, km=km, allow_errors=True, timeout=120, resources={"metadata": {"path": str(nbdir)}}
        ).execute()
    finally:
        km.shutdown_kernel(now=True)
    store = RunStore(home)
    runs = store.list_runs()
    assert len(runs) == 1, [c.outputs for c in nb.cells]
    assert runs[0].op == "train" and runs[0].kind == "guildfile"
    assert runs[0].flags == {"lr": 0.25} and runs[0].status == "completed"
    assert "loss: 0.5" in store.read_output(runs[0].id)
    shown = " ".join(
        o.get("text", "") + o.get("evalue", "") for o in nb.cells[2].outputs
    )  # IPython shows a UsageError on stderr
    assert "flag 'lr': 5.0 is above the maximum 1" in shown, nb.cells[2].outputs
