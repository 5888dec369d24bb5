"""Trial processes forked from a warm interpreter behave as ``python SCRIPT`` / ``python -c``.

Each case starts the same command line twice through ``ProcessStarter``: once
forked by a real fork server, once as a new interpreter (``Popen``), and
compares what the two processes print and how they end.
"""

import os
import signal
import sys
import time

import pytest

import guild_jupyter as gj
from guild_jupyter.orchestration.forked_process import LOST, ForkedProcess, ProcessStarter

REPORT = r"""
import os, sys, __main__
print("argv", sys.argv)
print("file", globals().get("__file__"), __name__, __main__.__dict__ is globals())
print("path0", repr(sys.path[0]), "cwd", os.getcwd())
print("env", os.environ.get("FLAG_X"), os.environ.get("RUN_ID"), "SERVER_ONLY" in os.environ)
print("session", os.getsid(0) == os.getpid(), "fds", sorted(os.listdir("/proc/self/fd")))
print("main-loader", type(__main__.__loader__).__name__ if __main__.__loader__ else None)
print("unbuffered", sys.stdout.write_through, sys.stdout.isatty())
print("err", file=sys.stderr)
"""


def _env(**extra: str) -> dict[bytes, bytes]:
    env = {os.fsencode(k): os.fsencode(v) for k, v in os.environ.items()}
    env[b"PYTHONUNBUFFERED"] = b"1"
    env.update((os.fsencode(k), os.fsencode(v)) for k, v in extra.items())
    return env


def _run(starter: ProcessStarter, argv, cwd, env, forked: bool = False) -> tuple[str, str, int]:
    proc = starter.start(argv, str(cwd), env)
    assert isinstance(proc, ForkedProcess) or not forked  # not a fallback to a new process
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    rc = proc.wait(timeout=30)
    if isinstance(proc, ForkedProcess):
        proc.close()
    return out.decode(), err.decode(), rc


@pytest.fixture
def starters(monkeypatch):
    monkeypatch.setenv("GUILD_JUPYTER_TRIAL_FORK", "1")
    forked = ProcessStarter()
    monkeypatch.setenv("GUILD_JUPYTER_TRIAL_FORK", "0")
    fresh = ProcessStarter()
    assert forked.enabled and not fresh.enabled
    yield forked, fresh
    forked.close()


def _both(starters, argv, cwd, env):
    forked, fresh = starters
    a = _run(forked, argv, cwd, env, forked=True)
    b = _run(fresh, argv, cwd, env)
    return a, b


def test_a_forked_script_sees_what_a_fresh_one_sees(starters, tmp_path):
    script = tmp_path / "src" / "report.py"
    script.parent.mkdir()
    script.write_text(REPORT)
    work = tmp_path / "work"
    work.mkdir()
    env = _env(FLAG_X="1")
    for trial in ("a", "b"):  # per-trial variables change from one fork to the next
        env = {**env, b"RUN_ID": trial.encode(), b"FLAG_X": trial.encode()}
        (forked, fresh) = _both(starters, [sys.executable, str(script), "--lr", "0.1"], work, env)
        assert forked == fresh
        assert f"env {trial} {trial} False" in forked[0]
        assert "fds ['0', '1', '2', '3']" in forked[0]  # 3: listdir's own
        assert "session True" in forked[0] and "unbuffered True False" in forked[0]
        assert f"path0 '{script.parent}' cwd {work}" in forked[0]
    assert len([s for s in starters[0]._servers.values() if s]) == 1  # one server for both


def test_a_relative_script_path_is_the_trials_cwd(starters, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "rel.py").write_text(REPORT)
    argv = [sys.executable, "sub/rel.py"]
    forked, fresh = _both(starters, argv, tmp_path, _env())
    assert forked == fresh and f"file {tmp_path}/sub/rel.py __main__ True" in forked[0]



def test_a_forked_dash_c_command_sees_what_a_fresh_one_sees(starters, tmp_path):
    forked, fresh = _both(starters, [sys.executable, "-c", REPORT, "x", "y"], tmp_path, _env())
    assert forked == fresh
    assert "argv ['-c', 'x', 'y']" in forked[0] and "path0 ''" in forked[0]


@pytest.mark.parametrize(
    "code, rc",
    [
        ("import sys\nsys.exit(3)\n", 3),
        ("import sys\nsys.exit('bye')\n", 1),
        ("def f():\n    raise ValueError('boom')\nf()\n", 1),
        ("raise KeyboardInterrupt\n", -signal.SIGINT),
        ("import atexit, threading, time\natexit.register(print, 'atexit ran')\n"
         "threading.Thread(target=lambda: (time.sleep(0.3), print('thread joined'))).start()\n", 0),
    ],
    ids=["exit-code", "exit-message", "exception", "keyboard-interrupt", "atexit-and-threads"],
)
def test_a_forked_script_ends_as_a_fresh_one(starters, tmp_path, code, rc):
    script = tmp_path / "end.py"
    script.write_text(code)
    forked, fresh = _both(starters, [sys.executable, str(script)], tmp_path, _env())
    assert forked == fresh  # same output, same traceback (no bootstrap frame), same code
    assert forked[2] == rc


def test_what_the_server_cannot_run_starts_as_a_new_process(starters, tmp_path):
    forked, _ = starters
    bad = tmp_path / "bad.py"
    bad.write_text("x = (\n")
    out, err, rc = _run(forked, [sys.executable, str(bad)], tmp_path, _env())
    assert rc == 1 and "SyntaxError" in err  # Python's own message, from a new interpreter
    out, _, rc = _run(forked, [sys.executable, "-u", "-c", "print('u')"], tmp_path, _env())
    assert (out, rc) == ("u\n", 0)
    assert not isinstance(forked.start(["/bin/echo", "hi"], str(tmp_path), _env()), ForkedProcess)


def test_a_dead_fork_server_ends_its_running_trial_and_the_next_start_fresh(starters, tmp_path):
    forked, _ = starters
    script = tmp_path / "slow.py"
    script.write_text("import time\nprint('up', flush=True)\ntime.sleep(1.0)\n")
    proc = forked.start([sys.executable, str(script)], str(tmp_path), _env())
    assert isinstance(proc, ForkedProcess)
    assert proc.stdout.readline() == b"up\n"
    (server,) = [s for s in forked._servers.values() if s]
    os.kill(server.proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == 1 and proc.lost == LOST
    deadline = time.time() + 10
    while server.alive and time.time() < deadline:
        time.sleep(0.05)
    out, _, rc = _run(forked, [sys.executable, "-c", "print('fresh')"], tmp_path, _env())
    assert (out, rc) == ("fresh\n", 0)


def test_sweep_trials_are_forked_and_recorded_as_usual(project, store):
    (project / "t.py").write_text("import os, sys\nx = 1\nprint(f'loss: {x}')\n"
                                  "print('orig', sys.orig_argv[1] == '-c')\n")
    sweep = gj.run("t.py", {"x": "[1,2,3,4]"}, parallel=2, store=store, echo=False)
    runs = sweep.runs
    assert [r.status.value for r in runs] == ["completed"] * 4
    assert sorted(gj.runs(sweep=sweep.id, store=store)["scalars.loss"]) == [1, 2, 3, 4]
    # sys.orig_argv is the server's: the one visible trace of the fork (docs/decisions.md)
    assert all("orig True" in store.read_output(r.id) for r in runs)
