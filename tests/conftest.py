import os
import subprocess
import sys
from pathlib import Path

import pytest

from guild_jupyter.storage.store import RunStore

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh store location, also set as GUILD_JUPYTER_HOME for the default store."""
    h = tmp_path / "gj-home"
    monkeypatch.setenv("GUILD_JUPYTER_HOME", str(h))
    for var in ("RUN_ID", "RUN_DIR"):
        monkeypatch.delenv(var, raising=False)
    return h


@pytest.fixture
def project(tmp_path, monkeypatch, home):
    """A project directory as the working directory, with quick retries and stops."""
    d = tmp_path / "project"
    d.mkdir()
    monkeypatch.chdir(d)
    monkeypatch.setenv("GUILD_JUPYTER_RETRY_DELAY", "0.1")
    monkeypatch.setenv("GUILD_JUPYTER_STOP_GRACE", "3")
    return d


@pytest.fixture
def store(home):
    s = RunStore(home)
    yield s
    _kill_leftovers(s)


def _kill_leftovers(store):
    """A failing test must not leave supervisors or user processes behind."""
    from guild_jupyter.orchestration.process_info import kill_tree

    for row in store.list_rows(status=["pending", "running"], deleted=None):
        a = store.load_run(row["id"]).attempt
        if row["kind"] not in ("function", "inline") and a.pid:
            kill_tree(a.pid, a.pid_started, grace=1)
        if a.child_pid:
            kill_tree(a.child_pid, a.child_started, grace=1)


def cli(*args, home=None, check=False, input=None, cwd=None):
    """Run the real command in a subprocess, as a user would, in the current directory."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    if home is not None:
        env["GUILD_JUPYTER_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "guild_jupyter", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        check=check,
        input=input,
        cwd=cwd or os.getcwd(),
    )
