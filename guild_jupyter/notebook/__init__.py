"""Notebook operations: ``%%guild_run`` cells, ``%guild`` commands, whole-notebook runs, reruns.

``%load_ext guild_jupyter`` calls :func:`load_ipython_extension` here. Modules:

- ``magics``       the IPython magics: ``%%guild_run`` (and its sweeps), the ``%guild`` dispatcher
- ``guild_commands`` the ``%guild <command>`` subcommands (a mixin of the magics)
- ``magic_support`` the magics' helpers (argument parsing, run start, display, kernel context)
- ``submission``   starting and stopping runs: through the Jupyter server when it answers, else embedded
- ``foreground``   foreground ``%%guild_run`` cells as async cells (widgets stay live, stop works)
- ``cell_op``      a cell as an operation (flags, snapshot, launch) and ``--inline`` runs
- ``inputs``       free variables of a cell captured by value (cloudpickle + sha256)
- ``cell_runner``  what runs in the run's own process (``python -c``, see ``launch_argv``)
- ``notebook_op``  a whole ``.ipynb`` as an operation (executed with nbclient)
- ``rerun``        a new run from an old run's record; ``--check`` compares scalars
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: the cell runner's process need not import ``typing``
if TYPE_CHECKING:
    from typing import Any


def load_ipython_extension(ipython: Any) -> None:
    from guild_jupyter.notebook.magics import GuildMagics

    ipython.register_magics(GuildMagics(ipython))
    if getattr(ipython, "kernel", None) is not None:  # foreground cells keep the kernel responsive
        from guild_jupyter.notebook.foreground import transform

        if transform not in ipython.input_transformers_post:
            ipython.input_transformers_post.append(transform)


def unload_ipython_extension(ipython: Any) -> None:
    magics = ipython.magics_manager.magics
    for kind, name in (("cell", "guild_run"), ("line", "guild")):
        magics[kind].pop(name, None)
    from guild_jupyter.notebook.foreground import transform

    if transform in getattr(ipython, "input_transformers_post", []):
        ipython.input_transformers_post.remove(transform)
