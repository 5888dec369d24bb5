"""Runs a ``%%guild_run`` cell snapshot in the run's own process.

``python -m guild_jupyter.notebook.cell_runner SNAPSHOT_DIR``, started by the
supervisor with the run directory as working directory and ``RUN_ID``,
``RUN_DIR``, ``GUILD_JUPYTER_HOME`` in the environment (so ``log()`` works).

Steps: link the notebook folder's entries into the run directory (relative
paths resolve as in the kernel; see :mod:`guild_jupyter.notebook.cell_op`),
load the inputs, execute ``cell.py`` as ``__main__``, save the ``--outputs``
names into ``.run/outputs/<name>.pkl``, remove the links. Kept import-light:
cloudpickle is imported only when there are outputs to save.
"""

from __future__ import annotations

import json
import os
import sys
import types

MAX_LINKS = 2000  # a notebook folder with more entries than this is not linked


def link_notebook_dir(notebook_dir: str, run_dir: str, skip: tuple[str, ...] = ()) -> list[str]:
    created: list[str] = []
    try:
        entries = os.listdir(notebook_dir)
    except OSError:
        return created
    if len(entries) > MAX_LINKS:
        return created
    skip_real = {os.path.realpath(s) for s in skip if s}
    for name in entries:
        if name.startswith(".") and name not in (".env",):
            continue
        src = os.path.join(notebook_dir, name)
        dest = os.path.join(run_dir, name)
        if os.path.realpath(src) in skip_real or os.path.lexists(dest):
            continue
        try:
            os.symlink(src, dest)
            created.append(dest)
        except OSError:
            pass
    return created


def unlink_all(paths: list[str]) -> None:
    for p in paths:
        try:
            if os.path.islink(p):
                os.unlink(p)
        except OSError:
            pass


def main(argv: list[str]) -> int:
    snapshot = argv[0]
    with open(os.path.join(snapshot, "cell.json"), encoding="utf-8") as f:
        info = json.load(f)
    with open(os.path.join(snapshot, "cell.py"), encoding="utf-8") as f:
        source = f.read()
    run_dir = os.environ.get("RUN_DIR") or os.getcwd()
    meta = os.path.join(run_dir, ".run")
    notebook_dir = info.get("notebook_dir")
    links: list[str] = []
    if notebook_dir and os.path.realpath(notebook_dir) != os.path.realpath(run_dir):
        links = link_notebook_dir(notebook_dir, run_dir, skip=(os.environ.get("GUILD_JUPYTER_HOME", ""),))
        sys.path.insert(0, notebook_dir)
    module = types.ModuleType("__main__")
    module.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = module
    ns = module.__dict__
    try:
        from guild_jupyter.notebook.inputs import restore

        restore(snapshot, ns)
        import linecache

        linecache.cache["<cell>"] = (len(source), None, source.splitlines(True), "<cell>")
        code = compile(source, "<cell>", "exec")
        exec(code, ns)
        outputs = info.get("outputs") or []
        if outputs:
            from guild_jupyter.notebook.cell_op import save_outputs

            missing = save_outputs(meta, ns, outputs)
            if missing:
                print(f"guild-jupyter: error: --outputs: the cell did not define {', '.join(missing)}",
                      file=sys.stderr)
                return 1
    except SystemExit as e:
        code_ = e.code
        return code_ if isinstance(code_, int) else (0 if code_ is None else 1)
    except BaseException:
        import traceback

        etype, value, tb = sys.exc_info()
        # show the cell's frames only, not this runner's
        while tb is not None and tb.tb_frame.f_code.co_filename != "<cell>":
            tb = tb.tb_next
        traceback.print_exception(etype, value, tb)
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        unlink_all(links)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
