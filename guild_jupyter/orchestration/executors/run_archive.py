"""A run directory's files as one in-memory tar: sent to a worker, and back.

Only regular files travel (symlinks a run made to files beside its notebook
do not); unpacking refuses anything that would land outside the target.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterable

from guild_jupyter.errors import GuildError


def pack(root: str, skip: Iterable[str] = ()) -> bytes:
    """The regular files under ``root`` (paths relative to it), leaving out ``skip``
    (relative paths of files or whole folders)."""
    skipped = {os.path.normpath(s) for s in skip}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = os.path.relpath(dirpath, root)
            dirnames[:] = [
                d for d in dirnames if os.path.normpath(os.path.join(rel_dir, d)) not in skipped
            ]
            for name in filenames:
                rel = os.path.normpath(os.path.join(rel_dir, name))
                path = os.path.join(dirpath, name)
                if rel in skipped or os.path.islink(path) or not os.path.isfile(path):
                    continue
                tar.add(path, arcname=rel, recursive=False)
    return buf.getvalue()


def unpack(data: bytes, root: str, refuse: Iterable[str] = ()) -> list[str]:
    """Write the archive's files under ``root``; returns their relative paths.

    Members outside ``root`` (absolute, ``..``), links, devices and the ``refuse`` paths
    (the record's own files, which only the orchestrator writes) are an error."""
    refused = {os.path.normpath(r) for r in refuse}
    real_root = os.path.realpath(root)
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        members = tar.getmembers()
        for m in members:
            rel = os.path.normpath(m.name)
            target = os.path.realpath(os.path.join(real_root, rel))
            if (
                not (m.isfile() or m.isdir())
                or os.path.isabs(m.name)
                or not target.startswith(real_root + os.sep)
                or any(rel == r or rel.startswith(r + os.sep) for r in refused)
            ):
                raise GuildError(f"refusing archive member {m.name!r}")
        for m in members:
            if not m.isfile():
                continue
            rel = os.path.normpath(m.name)
            target = os.path.join(real_root, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            src = tar.extractfile(m)
            assert src is not None
            with src, open(target, "wb") as f:
                while chunk := src.read(1 << 20):
                    f.write(chunk)
            os.chmod(target, m.mode & 0o755 | 0o600)
            out.append(rel)
    return out
