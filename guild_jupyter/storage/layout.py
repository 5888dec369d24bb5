"""Where things live on disk, and the one way metadata is written (atomically).

``$GUILD_JUPYTER_HOME/runs/<id>/`` is the run's working directory: what the run
writes there are its artifacts. The record itself sits in ``<id>/.run/``:

- ``run.json``        the run record (attempts, flags, label, tags)
- ``output``          stdout and stderr as they interleaved, one line per line
- ``output.index``    per line: big-endian u64 milliseconds + u8 stream (Guild's format)
- ``scalars/*.csv``   one append-only file per writer: ``key,step,value,time``
- ``provenance.json`` environment, packages, host, git state
- ``sourcecode/``     the snapshot of the code that ran

``index.db`` beside ``runs/`` is derived from these files and can be rebuilt.
Deleted runs move to ``trash/runs/<id>``.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

META_DIR = ".run"
RUN_JSON = "run.json"
OUTPUT = "output"
OUTPUT_INDEX = "output.index"
SCALARS_DIR = "scalars"
PROVENANCE = "provenance.json"
SOURCECODE = "sourcecode"


def default_home() -> Path:
    env = os.environ.get("GUILD_JUPYTER_HOME")
    if env:
        return Path(env).expanduser().absolute()
    return Path.home() / ".guild-jupyter"


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` so readers see the old file or the new one, never a torn one.

    The temporary name is fixed per process and thread (writers of one run
    hold its lock), which is cheaper here than ``mkstemp``'s search.
    """
    path = os.fspath(path)
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".tmp-{name}-{os.getpid()}-{threading.get_ident()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, text.encode("utf-8"))
            if os.environ.get("GUILD_JUPYTER_FSYNC") == "1":
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_new_json(path: str, data: Any) -> None:
    """A record in a folder no reader sees yet (a staged run, see ``storage.pending``),
    written in place: the folder's rename makes it appear whole, as a rename does a file."""
    # new, or made empty ahead of need (O_TRUNC would cost as much as the write)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
        os.write(fd, text.encode("utf-8"))
        if os.environ.get("GUILD_JUPYTER_FSYNC") == "1":
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_json(path: str | os.PathLike[str], data: Any, *, pretty: bool = False) -> None:
    if pretty:
        text = json.dumps(data, indent=1, sort_keys=True, default=str)
    else:
        text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    atomic_write_text(path, text)
