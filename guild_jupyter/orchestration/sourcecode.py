"""The source snapshot saved with a run: the script and the text files beside it.

Guild-like rules: text files only, at most ``max_file_size`` bytes each and
``max_files`` in all, skipping version control, caches, virtual environments,
hidden directories and the store itself; ``include``/``exclude`` glob patterns
(matched against paths relative to the root) adjust the selection.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import warnings
from pathlib import Path

SKIP_DIRS = {
    ".git",
    ".hg",
    ".svn",
    "__pycache__",
    ".ipynb_checkpoints",
    "node_modules",
    ".guild",
    ".guild-jupyter",
    ".venv",
    "venv",
    ".tox",
    ".mypy_cache",
    ".pytest_cache",
    "site-packages",
}


class SourceCodeWarning(UserWarning):
    """Part of the source was left out of the snapshot (size or count limits)."""


class SourceSpec:
    def __init__(
        self,
        root: Path,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        max_file_size: int = 1024 * 1024,
        max_files: int = 100,
        always: list[str] | None = None,
    ) -> None:
        self.root = root
        self.include = include or []
        self.exclude = exclude or []
        self.max_file_size = max_file_size
        self.max_files = max_files
        self.always = always or []  # relative paths copied whatever the rules


def is_text(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError:
        return False
    return b"\0" not in head


def select(spec: SourceSpec, skip: list[Path] = ()) -> list[str]:
    """Relative paths of the files the snapshot takes."""
    root = spec.root
    skip_abs = [p.resolve() for p in skip]
    chosen: list[str] = []
    truncated = False
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in SKIP_DIRS
            and not d.startswith(".")
            and not (here / d / "pyvenv.cfg").exists()
            and not any((here / d).resolve() == s for s in skip_abs)
        )
        for name in sorted(filenames):
            rel = os.path.relpath(here / name, root)
            if rel in spec.always:
                continue
            forced = _matches(rel, spec.include)
            if not forced and (_matches(rel, spec.exclude) or not _default_pick(here / name, spec)):
                continue
            if len(chosen) >= spec.max_files:
                truncated = True
                break
            chosen.append(rel)
        if truncated:
            break
    if truncated:
        warnings.warn(
            SourceCodeWarning(f"source snapshot of {root} stopped at {spec.max_files} files"),
            stacklevel=3,
        )
    return spec.always + chosen


def _matches(rel: str, patterns: list[str]) -> bool:
    return any(
        fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(os.path.basename(rel), p) for p in patterns
    )


def _default_pick(path: Path, spec: SourceSpec) -> bool:
    if path.name.startswith("."):
        return False
    try:
        if path.stat().st_size > spec.max_file_size:
            return False
    except OSError:
        return False
    return is_text(path)


def copy_snapshot(spec: SourceSpec, dest: Path, skip: list[Path] = ()) -> list[str]:
    files = select(spec, skip)
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(spec.root / rel, target)
    return files
