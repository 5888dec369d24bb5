"""The sweep's trial worker: one supervisor process for all of a sweep's trials.

Real sweeps, real worker processes (forked by the warm launcher, or started
fresh), real user processes and signals.
"""

import os
import signal
import threading
import time

import pytest

import guild_jupyter as gj
from guild_jupyter.orchestration.controller import Controller
from guild_jupyter.orchestration.process_info import is_alive
from guild_jupyter.orchestration.reconcile import reconcile
from guild_jupyter.storage.output import read_output_lines


def _in_background(fn):
    result = {}

    def go():
        try:
            result["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            result["error"] = e

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t, result


def _wait_for(predicate, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def _running_trials(store):
    return [
        store.load_run(r["id"])
        for r in store.list_rows(status=["running"])
        if r["kind"] == "script"
    ]


@pytest.mark.parametrize("launcher", ["1", "0"])
def test_a_trial_is_a_full_run(project, store, monkeypatch, launcher):
    monkeypatch.setenv("GUILD_JUPYTER_LAUNCHER", launcher)
    (project / "helper.txt").write_text("data\n")
    (project / "train.py").write_text(
        "import sys\nlr = 0.1\nprint('step: 1')\nprint(f'loss: {lr * 2}')\n"
        "print('to stderr', file=sys.stderr)\nopen('artifact.txt', 'w').write('a')\n"
    )
    sweep = gj.run("train.py", {"lr": "[0.1, 0.2, 0.3]"}, store=store, parallel=2, echo=False)
    trials = sweep.runs
    assert [t.flags["lr"] for t in trials] == [0.1, 0.2, 0.3]
    workers = {t.attempt.pid for t in trials}
    assert len(workers) == 1  # one supervisor for the whole sweep
    for t in trials:
        assert t.status == "completed" and t.exit_code == 0 and t.sweep == sweep.id
        assert [a.status.value for a in t.attempts] == ["completed"] and t.started and t.stopped
        assert t.attempt.child_pid and t.attempt.child_pid not in workers
        meta = store.meta_dir(t.id)
        lines = read_output_lines(meta)
        assert [(ln.text, ln.stream) for ln in lines] == [
            ("step: 1", 0),
            (f"loss: {t.flags['lr'] * 2}", 0),
            ("to stderr", 1),
        ]
        assert all(abs(ln.time - t.started) < 30 for ln in lines)
        points = list(store.iter_run_points(t.id))
        assert [(k, s, v) for k, s, v, _ in points] == [("loss", 1, t.flags["lr"] * 2)]
        snap = os.path.join(meta, "sourcecode")
        assert f"lr = {t.flags['lr']}" in open(os.path.join(snap, "train.py")).read()
        assert open(os.path.join(snap, "helper.txt")).read() == "data\n"
        assert os.path.exists(os.path.join(meta, "launch.json"))
        assert os.path.exists(os.path.join(meta, "provenance.json"))
        assert os.path.exists(os.path.join(store.run_dir(t.id), "artifact.txt"))
    # the sweep keeps the code it ran; the trials' unchanged files are links to it, not copies
    shared = os.path.join(store.meta_dir(sweep.id), "sourcecode", "helper.txt")
    assert os.stat(shared).st_nlink == 4
    provenance = os.path.join(store.meta_dir(sweep.id), "provenance.json")  # collected once
    assert os.stat(provenance).st_nlink == 4 and '"packages"' in open(provenance).read()
    df = gj.runs(store=store)
    assert sorted(df["scalars.loss"]) == [0.2, 0.4, 0.6]
    assert sweep.best.flags == {"lr": 0.1}


def test_a_trial_can_be_restarted_on_its_own(project, store):
    (project / "train.py").write_text("lr = 0.1\nprint(f'loss: {lr}')\n")
    sweep = gj.run("train.py", {"lr": "[0.5, 0.7]"}, store=store, echo=False)
    first = sweep.runs[0]
    again = Controller(store).restart(first.id)
    assert again.status == "completed" and len(again.attempts) == 2
    assert store.read_output(first.id).count("loss: 0.5") == 2


def test_kill_9_of_the_worker_fails_its_trials_and_the_sweep_goes_on(project, store):
    # the first two trials hang until the worker is killed; the rest finish at once
    (project / "trial.py").write_text(
        "import time\nx = 1\nif x <= 2:\n    print('started', flush=True)\n    time.sleep(30)\n"
        "print(f'loss: {x}')\n"
    )
    thread, result = _in_background(
        lambda: gj.run("trial.py", {"x": "range[1:5]"}, store=store, parallel=2, echo=False)
    )
    running = _wait_for(lambda: (lambda rs: rs if len(rs) == 2 else None)(_running_trials(store)))
    _wait_for(lambda: all("started" in store.read_output(r.id) for r in running))
    worker = running[0].attempt
    os.kill(worker.pid, signal.SIGKILL)
    thread.join(60)
    assert "error" not in result, result.get("error")
    sweep = result["value"]
    trials = sweep.runs
    assert len(trials) == 5  # no trial lost
    by_x = {t.flags["x"]: t for t in trials}
    for x in (1, 2):
        t = by_x[x]
        assert t.status == "failed" and "died" in t.reason, (t.status, t.reason)
        assert not is_alive(t.attempt.child_pid, t.attempt.child_started)  # its process was stopped
    assert all(by_x[x].status == "completed" for x in (3, 4, 5))
    assert {by_x[x].attempt.pid for x in (3, 4, 5)} != {worker.pid}  # a new worker took over
    assert reconcile(store) == []  # nothing left for reconciliation to fix
    assert sweep.run.status == "completed"


def test_reconcile_ends_the_trials_of_a_dead_worker(project, store):
    """The sweep's driver is not needed to put things right: reconciliation alone does it."""
    from guild_jupyter.config import Config
    from guild_jupyter.experiment.script_op import ScriptOperation
    from guild_jupyter.orchestration.process_info import self_identity
    from guild_jupyter.orchestration.trial_client import _Channel
    from guild_jupyter.sweeps.trial_prep import TrialPreparer

    (project / "hang.py").write_text("import time\nprint('up', flush=True)\ntime.sleep(60)\n")
    pid, started = self_identity()
    sweep = store.create_run(
        "hang.py+", kind="sweep", flags={}, running={"pid": pid, "pid_started": started}
    )
    op = ScriptOperation.load("hang.py")
    run = store.create_run(
        "hang.py", kind="script", flags={}, source=op.run_source(), sweep=sweep.id
    )
    spec = TrialPreparer(store, sweep.id, op, Config.load(store.home)).prepare(run)
    spec.save(store.meta_dir(run.id))
    channel = _Channel(store, sweep.id)
    channel._finish = lambda run_id: None  # the driver does nothing: reconciliation must
    channel.send(run.id, run.created, spec, parallel=1)
    _wait_for(lambda: "up" in store.read_output(run.id))
    a = store.load_run(run.id).attempt
    assert a.pid == channel.pid and is_alive(a.child_pid, a.child_started)
    os.kill(a.pid, signal.SIGKILL)
    _wait_for(lambda: not is_alive(a.pid, a.pid_started))
    fixed = reconcile(store)
    assert [rid for rid, _ in fixed] == [run.id]
    final = store.load_run(run.id)
    assert final.status == "failed" and final.reason == f"supervisor died (pid {a.pid})"
    _wait_for(lambda: not is_alive(a.child_pid, a.child_started), timeout=10)
    store.set_status(sweep.id, "completed")


def test_stopping_a_sweep_stops_its_running_trials(project, store):
    (project / "slow.py").write_text(
        "import time\nx = 1\nprint('up', flush=True)\ntime.sleep(60)\n"
    )
    thread, result = _in_background(
        lambda: gj.run("slow.py", {"x": "range[1:6]"}, store=store, parallel=2, echo=False)
    )
    running = _wait_for(lambda: (lambda rs: rs if len(rs) == 2 else None)(_running_trials(store)))
    _wait_for(lambda: all("up" in store.read_output(r.id) for r in running))
    from guild_jupyter.sweeps.sweep import Sweep

    sweep = Sweep(store, store.load_run(running[0].sweep))
    t0 = time.time()
    sweep.stop()
    thread.join(30)
    assert time.time() - t0 < 20
    trials = sweep.runs
    assert len(trials) <= 4  # the two running, and at most two queued behind them
    assert len([t for t in trials if t.attempt.child_pid]) == 2  # none started after the stop
    for t in trials:
        assert t.status == "cancelled" and t.reason == "sweep stopped"
        assert not is_alive(t.attempt.child_pid, t.attempt.child_started)
    assert store.load_run(sweep.id).status == "cancelled"


def test_stopping_one_trial_stops_only_that_trial(project, store):
    (project / "trial.py").write_text(
        "import time\nx = 1\nprint('up', flush=True)\ntime.sleep(3 if x == 1 else 60)\n"
        "print(f'loss: {x}')\n"
    )
    thread, result = _in_background(
        lambda: gj.run("trial.py", {"x": "[1, 2]"}, store=store, parallel=2, echo=False)
    )
    running = _wait_for(lambda: (lambda rs: rs if len(rs) == 2 else None)(_running_trials(store)))
    _wait_for(lambda: all("up" in store.read_output(r.id) for r in running))
    victim = next(r for r in running if r.flags["x"] == 2)
    stopped = Controller(store).stop(victim.id)
    assert stopped.status == "cancelled" and stopped.reason == "stopped by user"
    thread.join(30)
    trials = {t.flags["x"]: t for t in result["value"].runs}
    assert trials[1].status == "completed"
    assert trials[2].status == "cancelled"


def test_a_plain_sigterm_to_the_worker_stops_the_sweep(project, store):
    (project / "slow.py").write_text(
        "import time\nx = 1\nprint('up', flush=True)\ntime.sleep(60)\n"
    )
    thread, result = _in_background(
        lambda: gj.run("slow.py", {"x": "range[1:6]"}, store=store, parallel=2, echo=False)
    )
    running = _wait_for(lambda: (lambda rs: rs if len(rs) == 2 else None)(_running_trials(store)))
    _wait_for(lambda: all("up" in store.read_output(r.id) for r in running))
    os.kill(running[0].attempt.pid, signal.SIGTERM)
    thread.join(30)
    sweep = result["value"]
    assert len([t for t in sweep.runs if t.attempt.child_pid]) == 2  # none started after the stop
    assert all(t.status == "cancelled" for t in sweep.runs)
    assert sweep.run.status == "cancelled"


def test_global_slots_hold_for_worker_trials(project, store, monkeypatch):
    monkeypatch.setenv("GUILD_JUPYTER_MAX_RUNS", "1")
    (project / "slow.py").write_text("import time\nx = 1\ntime.sleep(0.4)\nprint(f'loss: {x}')\n")
    sweep = gj.run("slow.py", {"x": "[1, 2, 3]"}, store=store, parallel=2, echo=False)
    spans = sorted((r.started, r.stopped) for r in sweep.runs)
    assert all(r.status == "completed" for r in sweep.runs)
    assert all(s2 >= e1 for (_, e1), (s2, _) in zip(spans, spans[1:], strict=False))  # one by one


def test_a_failing_trial_is_failed_with_its_exit_code(project, store):
    (project / "trial.py").write_text(
        "x = 1\nprint(f'loss: {x}')\nraise SystemExit(3 if x == 2 else 0)\n"
    )
    sweep = gj.run("trial.py", {"x": "[1, 2]"}, store=store, echo=False)
    trials = {t.flags["x"]: t for t in sweep.runs}
    assert trials[1].status == "completed"
    assert (
        trials[2].status == "failed"
        and trials[2].reason == "exit code 3"
        and trials[2].exit_code == 3
    )


def test_kill_9_of_the_sweep_driver_leaves_its_trials_to_finish(project, store):
    """The worker is detached from the sweep's process: trials already running end as runs do."""
    import subprocess
    import sys

    from tests.conftest import REPO

    (project / "slow.py").write_text(
        "import time\nx = 1\nprint('up', flush=True)\ntime.sleep(1.5)\nprint(f'loss: {x}')\n"
    )
    env = dict(
        os.environ,
        GUILD_JUPYTER_HOME=str(store.home),
        PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "guild_jupyter",
            "run",
            "slow.py",
            "x=range[1:6]",
            "--parallel",
            "2",
            "-q",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        running = _wait_for(
            lambda: (lambda rs: rs if len(rs) == 2 else None)(_running_trials(store))
        )
    finally:
        driver.kill()
        driver.wait()
    worker = running[0].attempt
    _wait_for(
        lambda: not is_alive(worker.pid, worker.pid_started), timeout=30
    )  # it exits when done
    reconcile(store)
    trials = [store.load_run(r.id) for r in running]
    assert all(t.status == "completed" for t in trials)
    assert sorted(gj.runs(store=store)["scalars.loss"].dropna()) == sorted(
        t.flags["x"] for t in trials
    )
    sweep = store.load_run(running[0].sweep)
    assert sweep.status == "failed" and "died" in sweep.reason
    assert reconcile(store) == []


def test_a_worker_trial_and_another_run_share_the_global_slots(project, store, monkeypatch):
    monkeypatch.setenv("GUILD_JUPYTER_MAX_RUNS", "1")
    (project / "slow.py").write_text("import time\nx = 1\ntime.sleep(0.6)\nprint(f'loss: {x}')\n")
    (project / "other.py").write_text("print('other')\n")
    thread, result = _in_background(
        lambda: gj.run("slow.py", {"x": "[1, 2]"}, store=store, parallel=2, echo=False)
    )
    _wait_for(lambda: _running_trials(store))
    other = gj.run("other.py", store=store, background=True)
    assert store.load_run(other.id).status == "pending"  # the trial holds the only slot
    thread.join(30)
    other = Controller(store).wait(other.id)
    runs = [*result["value"].runs, other]
    assert all(r.status == "completed" for r in runs)
    spans = sorted((r.started, r.stopped) for r in runs)
    assert all(s2 >= e1 for (_, e1), (s2, _) in zip(spans, spans[1:], strict=False))


def test_worker_trials_sample_resources(project, store, monkeypatch):
    monkeypatch.setenv("GUILD_JUPYTER_SAMPLE_INTERVAL", "0.2")
    (project / "busy.py").write_text(
        "import time\nx = 1\nb = [0] * 10**6\nt = time.time()\nwhile time.time() - t < 1.4: pass\n"
        "print(f'loss: {x}')\n"
    )
    sweep = gj.run("busy.py", {"x": "[1, 2]"}, store=store, parallel=2, echo=False)
    for t in sweep.runs:
        keys = {p[0] for p in store.iter_run_points(t.id)}
        assert {"loss", "sys/cpu_percent", "sys/mem_rss_mb"} <= keys, keys


def test_a_grandchild_holding_the_output_open_does_not_hold_the_trial(project, store):
    """A run's lifetime is its process group's: what the process leaves behind is stopped."""
    (project / "spawner.py").write_text(
        "import subprocess, sys\nx = 1\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(f'loss: {x}')\n"
    )
    t0 = time.time()
    sweep = gj.run("spawner.py", {"x": "[1, 2]"}, store=store, parallel=2, echo=False)
    assert time.time() - t0 < 20
    assert all(t.status == "completed" for t in sweep.runs)
    for t in sweep.runs:
        assert "loss: " in store.read_output(t.id)


def test_without_the_worker_each_trial_has_its_own_supervisor(project, store, monkeypatch):
    monkeypatch.setenv("GUILD_JUPYTER_TRIAL_WORKER", "0")
    (project / "train.py").write_text("lr = 0.1\nprint(f'loss: {lr}')\n")
    sweep = gj.run("train.py", {"lr": "[0.1, 0.2]"}, store=store, parallel=2, echo=False)
    trials = sweep.runs
    assert all(t.status == "completed" for t in trials)
    assert len({t.attempt.pid for t in trials}) == 2
    assert not os.path.exists(os.path.join(store.meta_dir(sweep.id), "sourcecode"))
