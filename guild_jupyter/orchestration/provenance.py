"""What a run records about where it ran: Python, packages, platform, host, git, environment.

Collected by the supervisor while the user's process runs, so it costs the
run nothing; packages come from installed metadata (no ``pip freeze``).
"""

from __future__ import annotations

import functools
import getpass
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

SECRET_MARKERS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL")
REDACTED = "<redacted>"
MAX_DIFF = 1024 * 1024


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    return {
        k: (REDACTED if any(m in k.upper() for m in SECRET_MARKERS) else v)
        for k, v in sorted(env.items())
    }


def installed_packages() -> dict[str, str]:
    """Installed distributions; remembered while the site directories are unchanged
    (the warm launcher computes it once for all its supervisors)."""
    key = tuple((p, _mtime(p)) for p in sys.path if p)
    cached = _packages_cache.get(key)
    if cached is not None:
        return cached
    from importlib import metadata

    out: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name") if dist.metadata else None
        if name:
            out.setdefault(name, dist.version)
    result = dict(sorted(out.items(), key=lambda kv: kv[0].lower()))
    _packages_cache.clear()
    _packages_cache[key] = result
    return result


_packages_cache: dict[tuple, dict[str, str]] = {}


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def in_git_work_tree(directory: str) -> bool:
    """A cheap look for ``.git`` up the tree, before paying for a ``git`` process."""
    path = os.path.abspath(directory)
    while True:
        if os.path.exists(os.path.join(path, ".git")):
            return True
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent


def git_state(directory: str) -> dict[str, Any] | None:
    if not in_git_work_tree(directory):
        return None

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=directory, capture_output=True, text=True, timeout=20, check=True
        ).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
    except (OSError, subprocess.SubprocessError):
        return None
    try:
        status = git("status", "--porcelain", "--untracked-files=no")
        diff = git("diff", "HEAD") if status.strip() else ""
    except (OSError, subprocess.SubprocessError):
        status, diff = "", ""
    return {
        "commit": commit,
        "dirty": bool(status.strip()),
        "diff": diff[:MAX_DIFF],
        "diff_truncated": len(diff) > MAX_DIFF,
    }


@functools.lru_cache(maxsize=1)
def platform_name() -> str:
    return platform.platform()  # reads the interpreter binary: slow, so once per process


def collect(
    project_dir: str | None, env: Mapping[str, str], python: str = sys.executable
) -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except Exception:
        user = None
    return {
        "python": {
            "version": sys.version.split()[0],
            "executable": python,
            "implementation": platform.python_implementation(),
        },
        "platform": platform_name(),
        "hostname": socket.gethostname(),
        "user": user,
        "cpu_count": os.cpu_count(),
        "packages": installed_packages(),
        "git": git_state(project_dir) if project_dir else None,
        "env": redact_env(env),
    }
