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
import tempfile
from pathlib import Path
from typing import Any

META_DIR = ".run"
RUN_JSON = "run.json"
OUTPUT = "output"
OUTPUT_INDEX = "output.index"
SCALARS_DIR = "scalars"
PROVENANCE = "provenance.json"
SOURCECODE = "sourcecode"
LOCK = "lock"


def default_home() -> Path:
    env = os.environ.get("GUILD_JUPYTER_HOME")
    if env:
        return Path(env).expanduser().absolute()
    return Path.home() / ".guild-jupyter"


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` so readers see the old file or the new one, never a torn one."""
    path = os.fspath(path)
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            if os.environ.get("GUILD_JUPYTER_FSYNC") == "1":
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True, default=str))
