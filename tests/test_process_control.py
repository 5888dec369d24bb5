"""Stop, background runs, kills of each process, pid reuse, retries, restart, the queue."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import guild_jupyter as gj
from guild_jupyter.orchestration.process_info import is_alive, process_start_time
from guild_jupyter.orchestration.reconcile import reconcile
from tests.conftest import REPO, cli

LONG = """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print(f"child {child.pid}", flush=True)
    for i in range(6000):
        print(f"loss: {1 / (i + 1)}", flush=True)
        time.sleep(0.05)
"""


@pytest.fixture
def project(project):
    (project / "long.py").write_text(textwrap.dedent(LONG))
    return project


def wait_for(predicate, timeout=30.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def output_has(store, run_id, text):
    return lambda: text in store.read_output(run_id)


def child_pid(store, run_id):
    line = next(ln for ln in store.read_output(run_id).splitlines() if ln.startswith("child "))
    return int(line.split()[1])


def gone(pid):
    return process_start_time(pid) is None


def test_stop_cancels_and_leaves_no_process_of_the_tree(project, store):
    run = gj.run("long.py", store=store, background=True)
    wait_for(output_has(store, run.id, "loss:"), what="output")
    grandchild = child_pid(store, run.id)
    user = store.load_run(run.id).attempt.child_pid
    stopped = gj.stop(run.id, store=store)
    assert stopped.status == "cancelled" and stopped.reason == "stopped by user"
    wait_for(lambda: gone(grandchild) and gone(user), timeout=10, what="the process tree to end")
    lines = store.read_output(run.id).splitlines()
    assert lines[0].startswith("child ") and lines[1] == "loss: 1.0"


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(project, store):
    (project / "stubborn.py").write_text(
        textwrap.dedent("""
        import signal, time
        signal.signal(signal.SIGTERM, lambda *a: print("ignoring SIGTERM", flush=True))
        print("ready", flush=True)
        time.sleep(600)
    """)
    )
    run = gj.run("stubborn.py", store=store, background=True)
    wait_for(output_has(store, run.id, "ready"), what="ready")
    user = store.load_run(run.id).attempt.child_pid
    t0 = time.time()
    final = gj.stop(run.id, store=store)
    assert final.status == "cancelled" and 2.5 < time.time() - t0 < 20
    assert "ignoring SIGTERM" in final.output() and gone(user)


def test_background_from_the_cli_outlives_the_cli(project, store):
    (project / "short.py").write_text(
        "import time\nfor i in range(10):\n    print(f'loss: {i}', flush=True)\n    time.sleep(0.1)\n"
    )
    r = cli("run", "short.py", "--background", home=store.home)
    assert r.returncode == 0 and "started in the background" in r.stdout
    run_id = r.stdout.split()[0]
    # the CLI process has exited; the run goes on and completes
    final = wait_for(
        lambda: (lambda x: x if x.status.terminal else None)(store.load_run(run_id)),
        what="completion",
    )
    assert final.status == "completed" and final.output().count("loss:") == 10


def test_kill_9_of_the_supervisor(project, store):
    run = gj.run("long.py", store=store, background=True)
    wait_for(output_has(store, run.id, "loss: 0.25"), what="output")
    rec = store.load_run(run.id).attempt
    os.kill(rec.pid, signal.SIGKILL)
    wait_for(lambda: gone(rec.pid), what="the supervisor to die")
    kept = store.read_output(run.id)
    fixed = reconcile(store)
    assert fixed == [(run.id, f"supervisor died (pid {rec.pid})")]
    final = store.load_run(run.id)
    assert final.status == "failed" and final.reason == f"supervisor died (pid {rec.pid})"
    assert store.read_output(run.id).startswith(kept)  # every flushed line kept
    wait_for(
        lambda: gone(rec.child_pid), timeout=10, what="the orphaned user process to be stopped"
    )
    assert gj.scalars(run.id, keys="loss", store=store)["value"].iloc[0] == 1.0


def test_kill_9_of_the_user_process(project, store):
    run = gj.run("long.py", store=store, background=True)
    wait_for(output_has(store, run.id, "loss: 0.5"), what="output")
    grandchild = child_pid(store, run.id)
    os.kill(store.load_run(run.id).attempt.child_pid, signal.SIGKILL)
    final = wait_for(
        lambda: (lambda x: x if x.status.terminal else None)(store.load_run(run.id)), what="the end"
    )
    assert (
        final.status == "failed"
        and final.reason == "killed by signal SIGKILL"
        and final.exit_code == -9
    )
    assert "loss: 0.5" in final.output()
    # what the dead process left behind in its process group ends with the run
    wait_for(lambda: gone(grandchild), timeout=10, what="the orphaned grandchild to be stopped")


def test_kill_9_of_the_controller(project, store):
    (project / "short.py").write_text(
        "import time\nfor i in range(20):\n    print(f'loss: {i}', flush=True)\n    time.sleep(0.1)\n"
    )
    code = f"import sys; sys.path.insert(0, {str(REPO)!r}); import guild_jupyter as gj; gj.run('short.py')"
    controller = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=project,
        stdout=subprocess.PIPE,
        env=dict(os.environ, GUILD_JUPYTER_HOME=str(store.home)),
    )
    wait_for(
        lambda: store.list_rows() and "loss: 2" in store.read_output(store.list_rows()[0]["id"]),
        what="start",
    )
    controller.kill()
    controller.wait()
    run_id = store.list_rows()[0]["id"]
    reconcile(store)  # the supervisor is alive: nothing to fix
    assert store.load_run(run_id).status == "running"
    final = wait_for(
        lambda: (lambda x: x if x.status.terminal else None)(store.load_run(run_id)), what="the end"
    )
    assert final.status == "completed" and final.output().count("loss:") == 20


def test_a_reused_pid_does_not_look_alive(store):
    run = store.create_run("op", kind="script", flags={})
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        # the record says pid X started long ago; pid X is now another, younger process
        real_start = process_start_time(other.pid)
        store.set_status(run.id, "running", pid=other.pid, pid_started=real_start - 3600)
        assert not is_alive(other.pid, real_start - 3600) and is_alive(other.pid, real_start)
        assert reconcile(store) == [(run.id, f"supervisor died (pid {other.pid})")]
        assert store.load_run(run.id).status == "failed"
        assert other.poll() is None  # the unrelated process was left alone
    finally:
        other.kill()
        other.wait()


def test_a_dead_in_process_run_is_failed(store):
    run = store.create_run("fn", kind="function", flags={})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store.set_status(run.id, "running", pid=dead.pid, pid_started=time.time() - 5)
    assert reconcile(store) == [(run.id, f"process died (pid {dead.pid})")]


def test_retries_keep_each_attempt(project, store):
    (project / "flaky.py").write_text(
        textwrap.dedent("""
        import os, sys
        attempt = int(os.environ["GUILD_JUPYTER_ATTEMPT"])
        print(f"attempt {attempt}")
        sys.exit(0 if attempt == 3 else 1)
    """)
    )
    run = gj.run("flaky.py", store=store, retries=2, echo=False)
    assert run.status == "completed"
    assert [(a.n, a.status.value, a.exit_code) for a in run.attempts] == [
        (1, "failed", 1),
        (2, "failed", 1),
        (3, "completed", 0),
    ]
    assert run.output() == "attempt 1\nattempt 2\nattempt 3\n"
    run = gj.run("flaky.py", store=store, retries=1, echo=False)
    assert run.status == "failed" and len(run.attempts) == 2


def test_a_run_waiting_to_retry_is_pending_to_whoever_follows_it(project, store, monkeypatch):
    """Between a failed attempt and its retry the run is ``pending`` (its next attempt), so
    a follower without the process handle (a kernel following a server's run, a widget,
    the sidebar) never takes the failure for the end; a stop in that wait cancels it."""
    from guild_jupyter.orchestration.controller import Controller

    monkeypatch.setenv("GUILD_JUPYTER_RETRY_DELAY", "1.0")
    (project / "flaky.py").write_text(
        "import os, sys\nsys.exit(0 if os.environ['GUILD_JUPYTER_ATTEMPT'] == '2' else 1)\n"
    )
    run = gj.run("flaky.py", store=store, retries=1, background=True, echo=False)
    seen, deadline = [], time.time() + 30
    while time.time() < deadline:
        r = store.load_run(run.id)
        if not seen or seen[-1] != (len(r.attempts), r.status.value):
            seen.append((len(r.attempts), r.status.value))
        if r.status.terminal:
            break
        time.sleep(0.01)
    assert (2, "pending") in seen and (1, "failed") not in seen, seen
    assert Controller(store).wait(run.id).status == "completed"

    monkeypatch.setenv("GUILD_JUPYTER_RETRY_DELAY", "30")
    run = gj.run("flaky.py", store=store, retries=1, background=True, echo=False)
    deadline = time.time() + 30
    while len(store.load_run(run.id).attempts) < 2 and time.time() < deadline:
        time.sleep(0.02)
    stopped = gj.stop(run.id, store=store)
    assert stopped.status == "cancelled"
    assert [(a.n, a.status.value) for a in stopped.attempts] == [(1, "failed"), (2, "cancelled")]


def test_restart_is_a_new_attempt_with_the_checkpoint(project, store):
    (project / "ckpt.py").write_text(
        textwrap.dedent("""
        import os
        import guild_jupyter as gj
        start = os.environ.get("GUILD_JUPYTER_CHECKPOINT")
        if start:
            print("resumed from", open(start).read())
        else:
            open("ckpt.txt", "w").write("epoch 7")
            gj.checkpoint("ckpt.txt")
            raise SystemExit(1)
    """)
    )
    run = gj.run("ckpt.py", store=store, echo=False)
    assert run.status == "failed"
    again = gj.restart(run.id, store=store)
    assert again.id == run.id and again.status == "completed"
    assert [a.status.value for a in again.attempts] == ["failed", "completed"]
    assert again.output().endswith("resumed from epoch 7\n")


def test_the_global_concurrency_limit_queues_runs(project, store, monkeypatch):
    monkeypatch.setenv("GUILD_JUPYTER_MAX_RUNS", "1")
    (project / "hold.py").write_text("import time\nprint('go', flush=True)\ntime.sleep(1.5)\n")
    first = gj.run("hold.py", store=store, background=True)
    wait_for(lambda: store.load_run(first.id).status == "running", what="first running")
    second = gj.run("hold.py", store=store, background=True)
    time.sleep(0.8)
    assert store.load_run(second.id).status == "pending"  # waits for the slot
    end = wait_for(
        lambda: (lambda x: x if x.status.terminal else None)(store.load_run(second.id)),
        what="second",
    )
    first_done = store.load_run(first.id)
    assert end.status == "completed" and end.attempt.started >= first_done.stopped - 0.05
    # a queued run can be stopped before it starts
    third = gj.run("hold.py", store=store, background=True)
    fourth = gj.run("hold.py", store=store, background=True)
    wait_for(lambda: store.load_run(third.id).status == "running", what="third running")
    assert gj.stop(fourth.id, store=store).status == "cancelled"
    assert store.load_run(fourth.id).attempt.started is None


def test_runs_queued_on_another_executor_hold_no_local_run_up(project, store):
    """First-in first-out counts the runs waiting for this store's slots: a run pending on a
    Dask cluster (owned by a live process following it) waits for the cluster's workers."""
    from guild_jupyter.orchestration.process_info import self_identity
    from guild_jupyter.orchestration.slots import queued_before

    pid, started = self_identity()

    def own(r):
        r.attempt.pid, r.attempt.pid_started = pid, started

    def pending(executor):
        run = store.create_run("remote.py", kind="script", flags={}, source={"executor": executor})
        store.update_run(run.id, own)
        return run

    remote = pending("tcp://scheduler:8786")
    local = pending("local")
    try:
        assert queued_before(store, time.time()) == [local.id]
        store.set_status(local.id, "cancelled", reason="test")
        (project / "quick.py").write_text("print('done')\n")
        run = gj.run("quick.py", store=store, background=True)
        end = wait_for(lambda: (lambda x: x if x.status.terminal else None)(store.load_run(run.id)),
                       timeout=20, what="the local run to end while the remote one is queued")
        assert end.status == "completed" and store.load_run(remote.id).status == "pending"
    finally:  # the fixture's clean-up would signal the owner of an unfinished run: this process
        for r in (remote, local):
            if not store.load_run(r.id).status.terminal:
                store.set_status(r.id, "cancelled", reason="test")


def test_resource_samples_are_scalars(project, store, monkeypatch):
    monkeypatch.setenv("GUILD_JUPYTER_SAMPLE_INTERVAL", "0.2")
    (project / "busy.py").write_text(
        # samples start after the first second: 2.5 s leaves several even on a loaded machine
        "import time\nx = [0] * 10**6\nt = time.time()\nwhile time.time() - t < 2.5: pass\n"
    )
    run = gj.run("busy.py", store=store, echo=False)
    keys = set(gj.scalars(run, store=store)["key"])
    assert {"sys/cpu_percent", "sys/mem_rss_mb"} <= keys
    row = gj.runs(store=store).iloc[0]
    assert row["scalars.sys/mem_rss_mb"] > 1


def test_throttling_holds_runs_while_the_machine_is_busy(project, store, monkeypatch):
    monkeypatch.setenv("GUILD_JUPYTER_MAX_MEMORY", "0.001")  # memory use is always above this
    (project / "quick.py").write_text("print('ran')\n")
    run = gj.run("quick.py", store=store, background=True)
    time.sleep(1.5)
    assert store.load_run(run.id).status == "pending"  # held back, not started
    final = gj.stop(run.id, store=store)
    assert final.status == "cancelled" and final.output() == ""
