"""Runs a ``%%guild_run`` cell snapshot in the run's own process.

``python -c "<import this module; run main>" SNAPSHOT_DIR`` (:func:`launch_argv`: the
module's cached bytecode is used, where running this file as a script would compile it
in every run; the process imports only this module and its two package ``__init__``
files unless the cell imports more), started by the
supervisor with the run directory as working directory and ``RUN_ID``,
``RUN_DIR``, ``GUILD_JUPYTER_HOME`` in the environment (so ``log()`` works).

Steps: link the notebook folder's entries into the run directory (relative
paths resolve as in the kernel; see :mod:`guild_jupyter.notebook.cell_op`),
load the inputs, execute ``cell.py`` as ``__main__``, save the ``--outputs``
names into ``.run/outputs/<name>.pkl``, remove the links. Kept import-light:
cloudpickle is imported only when there are outputs to save.
"""

from __future__ import annotations

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


def restore_inputs(snapshot_dir: str, namespace: dict) -> None:
    """Put the captured inputs into the cell's namespace: ``inputs/<name>.pkl`` are
    unpickled, ``<name>.lit`` evaluated (plain literals), ``<name>.module`` hold a module name to import (no JSON parsing
    here: it costs a cold process ~15 ms of imports)."""
    folder = os.path.join(snapshot_dir, "inputs")
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return
    for entry in names:
        name, ext = os.path.splitext(entry)
        path = os.path.join(folder, entry)
        if ext == ".lit":  # repr() of plain literal data, written by the kernel side
            with open(path, encoding="utf-8") as f:
                namespace[name] = eval(f.read(), {"__builtins__": {}})  # noqa: S307
        elif ext == ".module":
            import importlib

            with open(path, encoding="utf-8") as f:
                namespace[name] = importlib.import_module(f.read().strip())
        elif ext == ".pkl":
            try:
                from _pickle import load  # the C unpickler: cheaper to import than pickle
            except ImportError:  # pragma: no cover
                from pickle import load
            with open(path, "rb") as f:
                namespace[name] = load(f)


def save_outputs(meta_dir: str, namespace: dict, names: list) -> list:
    """Pickle ``names`` from ``namespace`` into ``<meta>/outputs/<name>.pkl``; returns the missing names."""
    names = list(names)
    if not names:
        return []
    import cloudpickle

    missing = [n for n in names if n not in namespace]
    os.makedirs(os.path.join(meta_dir, "outputs"), exist_ok=True)
    for n in names:
        if n in namespace:
            path = os.path.join(meta_dir, "outputs", f"{n}.pkl")
            with open(path + ".tmp", "wb") as f:
                f.write(cloudpickle.dumps(namespace[n], protocol=5))
            os.replace(path + ".tmp", path)
    return missing


def _display(*objs, **kwargs) -> None:
    """IPython's ``display`` in a plain process: each object's repr, printed."""
    for obj in objs:
        print(repr(obj) if not isinstance(obj, str) else obj)


BOOT = "import sys; from guild_jupyter.notebook.cell_runner import main; sys.exit(main(sys.argv[1:]))"


def launch_argv(snapshot: str, notebook_dir: str, outputs: list[str]) -> list[str]:
    """The run's command line (the kernel's interpreter; ``sys.path[0]`` is the run's
    working directory, as a kernel's is its notebook's)."""
    return [sys.executable, "-c", BOOT, snapshot, notebook_dir, ",".join(outputs)]


def main(argv: list[str]) -> int:
    """``argv``: SNAPSHOT_DIR [NOTEBOOK_DIR [OUTPUTS]] (OUTPUTS comma-separated)."""
    snapshot = argv[0]
    notebook_dir = argv[1] if len(argv) > 1 else ""
    outputs = [o for o in (argv[2] if len(argv) > 2 else "").split(",") if o]
    with open(os.path.join(snapshot, "cell.py"), encoding="utf-8") as f:
        source = f.read()
    run_dir = os.environ.get("RUN_DIR") or os.getcwd()
    meta = os.path.join(run_dir, ".run")
    links: list[str] = []
    if notebook_dir and os.path.realpath(notebook_dir) != os.path.realpath(run_dir):
        links = link_notebook_dir(notebook_dir, run_dir, skip=(os.environ.get("GUILD_JUPYTER_HOME", ""),))
        sys.path.insert(0, notebook_dir)
    module = types.ModuleType("__main__")
    module.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = module
    ns = module.__dict__
    ns["display"] = _display  # a builtin in IPython; plain text here
    try:
        restore_inputs(snapshot, ns)
        code = compile(source, "<cell>", "exec")
        exec(code, ns)
        if outputs:
            missing = save_outputs(meta, ns, outputs)
            if missing:
                print(f"guild-jupyter: error: --outputs: the cell did not define {', '.join(missing)}",
                      file=sys.stderr)
                return 1
    except SystemExit as e:
        code_ = e.code
        return code_ if isinstance(code_, int) else (0 if code_ is None else 1)
    except BaseException:
        import linecache
        import traceback

        linecache.cache["<cell>"] = (len(source), None, source.splitlines(True), "<cell>")
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


if __name__ == "__main__":  # runs recorded before ``launch_argv`` name this file
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # this package's folder is not the user's import path
    sys.exit(main(sys.argv[1:]))
