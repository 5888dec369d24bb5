"""The Dask executor against a real LocalCluster of two worker processes.

One cluster serves the whole module (starting one costs seconds). Runs go to it
by its scheduler address, as they would to a remote cluster: the workers
rebuild each run in their own scratch directory and stream it back.
"""

import os
import signal
import sys
import textwrap
import time

import pytest

import guild_jupyter as gj
from guild_jupyter.errors import GuildError
from guild_jupyter.experiment.runner import start_run
from guild_jupyter.model.run import hostname
from guild_jupyter.orchestration.controller import Controller
from guild_jupyter.orchestration.process_info import process_start_time
from guild_jupyter.storage.store import RunStore
from guild_jupyter.sweeps.api import run_sweep

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    c = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(c, set_as_default=False)
    yield c, client
    from guild_jupyter.orchestration.executors.dask_executor import DaskExecutor

    DaskExecutor.get(c.scheduler_address).close()  # the tests' runs followed through it
    client.close()
    c.close()


@pytest.fixture
def address(cluster):
    c, client = cluster
    client.wait_for_workers(2, timeout=60)  # a test may have killed one; its nanny restarts it
    return c.scheduler_address


@pytest.fixture
def dask_store(project):
    store = RunStore(os.environ["GUILD_JUPYTER_HOME"])
    yield store
    controller = Controller(store)  # a failing test leaves nothing running on the cluster
    for row in store.list_rows(status=["pending", "running"]):
        try:
            controller.stop(row["id"])
        except GuildError:
            pass


def script(project, name, body):
    path = project / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def wait_for(predicate, what, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def worker_addresses(cluster):
    return set(cluster[1].scheduler_info(n_workers=-1)["workers"])


def test_a_sweep_of_8_trials_uses_both_workers_and_lands_in_the_store(
    project, dask_store, cluster, address
):
    path = script(
        project,
        "train.py",
        """
        import time
        x = 1
        time.sleep(0.4)
        print(f"loss: {x * 0.5}")
        open("model.txt", "w").write(str(x))
        """,
    )
    sweep = run_sweep(
        path, {"x": list(range(1, 9))}, store=dask_store, executor=address, parallel=4
    )
    runs = sweep.runs
    assert sweep.run.status == "completed"
    assert sorted(r.flags["x"] for r in runs) == list(range(1, 9))
    assert all(r.status == "completed" for r in runs)
    hosts = {r.attempt.host for r in runs}
    assert hosts == worker_addresses(cluster)  # spread over both workers
    for r in runs:
        assert r.source["executor"] == address
        assert f"loss: {r.flags['x'] * 0.5}" in r.output()
        assert open(os.path.join(r.dir, "model.txt")).read() == str(r.flags["x"])
        assert os.path.exists(os.path.join(dask_store.meta_dir(r.id), "provenance.json"))
    frame = dask_store.scalars_frame([r.id for r in runs], ["loss"])
    assert sorted(frame["value"]) == [x * 0.5 for x in range(1, 9)]
    assert sweep.best.flags["x"] == 1


def test_output_and_scalars_arrive_while_the_run_goes(project, dask_store, address):
    gate = project / "gate"
    path = script(
        project,
        "gated.py",
        f"""
        import os, time
        print("epoch 1 done")
        print("loss: 0.75")
        while not os.path.exists({str(gate)!r}):
            time.sleep(0.05)
        print("after the gate")
        """,
    )
    run = start_run(path, store=dask_store, executor=address, background=True)
    wait_for(lambda: "epoch 1 done" in dask_store.read_output(run.id), "the first line")
    wait_for(
        lambda: list(dask_store.iter_run_points(run.id)), "the first scalar"
    )  # both while the run still waits at the gate
    live = dask_store.load_run(run.id)
    assert live.status == "running"
    assert [p[:3] for p in dask_store.iter_run_points(run.id)] == [("loss", 0, 0.75)]
    gate.write_text("")
    final = Controller(dask_store).wait(run.id, timeout=60)
    assert final.status == "completed"
    assert final.output().splitlines() == ["epoch 1 done", "loss: 0.75", "after the gate"]


def test_a_stop_reaches_the_process_on_the_worker(project, dask_store, address):
    marker = project / "terminated"
    pidfile = project / "pid"
    path = script(
        project,
        "forever.py",
        f"""
        import os, signal, sys, time
        def on_term(*_):
            open({str(marker)!r}, "w").write("SIGTERM")
            sys.exit(3)
        signal.signal(signal.SIGTERM, on_term)
        open({str(pidfile)!r}, "w").write(str(os.getpid()))
        print("ready", flush=True)
        while True:
            time.sleep(0.05)
        """,
    )
    run = start_run(path, store=dask_store, executor=address, background=True)
    wait_for(lambda: "ready" in dask_store.read_output(run.id), "the run to start")
    final = Controller(dask_store).stop(run.id)
    assert final.status == "cancelled"
    assert final.reason == "stopped by user"
    assert marker.read_text() == "SIGTERM"  # the remote process itself got the stop
    pid = int(pidfile.read_text())
    wait_for(lambda: process_start_time(pid) is None, "the remote process to be gone", 10)


def test_a_stop_from_another_process_reaches_the_worker(project, dask_store, address):
    path = script(
        project,
        "forever.py",
        """
        import time
        print("ready", flush=True)
        while True:
            time.sleep(0.05)
        """,
    )
    run = start_run(path, store=dask_store, executor=address, background=True)
    wait_for(lambda: "ready" in dask_store.read_output(run.id), "the run to start")
    from tests.conftest import cli

    done = cli("stop", run.id, home=dask_store.home)  # this process still follows the run
    assert done.returncode == 0, done.stderr
    final = Controller(dask_store).wait(run.id, timeout=30)
    assert final.status == "cancelled"


def _kill_worker_of(cluster, run_id, store):
    """SIGKILL the worker process running the run (its nanny starts a new one)."""
    host = wait_for(lambda: store.load_run(run_id).attempt.host, "the run's worker")
    pids = cluster[1].run(os.getpid, workers=[host])
    os.kill(pids[host], signal.SIGKILL)
    return host


def test_a_killed_worker_fails_the_run_and_keeps_its_output(project, dask_store, cluster, address):
    pidfile = project / "pid"
    path = script(
        project,
        "long.py",
        f"""
        import os, time
        open({str(pidfile)!r}, "w").write(str(os.getpid()))
        print("line before the kill", flush=True)
        time.sleep(600)
        """,
    )
    run = start_run(path, store=dask_store, executor=address, background=True)
    wait_for(lambda: "line before the kill" in dask_store.read_output(run.id), "output")
    host = _kill_worker_of(cluster, run.id, dask_store)
    final = Controller(dask_store).wait(run.id, timeout=90)
    assert final.status == "failed"
    assert host in final.reason and ("died" in final.reason or "lost" in final.reason)
    assert final.output() == "line before the kill\n"  # what was streamed stays
    pid = int(pidfile.read_text())  # the orphaned process on the worker was stopped
    wait_for(lambda: process_start_time(pid) is None, "the orphaned process to end", 30)


def test_a_killed_worker_is_retried_as_a_new_attempt(project, dask_store, cluster, address):
    path = script(
        project,
        "retry.py",
        """
        import os, time
        attempt = os.environ["GUILD_JUPYTER_ATTEMPT"]
        print(f"attempt {attempt} started", flush=True)
        if attempt == "1":
            time.sleep(600)
        print("loss: 0.25")
        """,
    )
    run = start_run(path, store=dask_store, executor=address, background=True, retries=1)
    wait_for(lambda: "attempt 1 started" in dask_store.read_output(run.id), "attempt 1")
    _kill_worker_of(cluster, run.id, dask_store)
    # between attempts the run reads failed (as a local one does); wait for the retry
    wait_for(lambda: len(dask_store.load_run(run.id).attempts) == 2, "the retry", 90)
    final = Controller(dask_store).wait(run.id, timeout=90)
    assert final.status == "completed"
    assert [a.status.value for a in final.attempts] == ["failed", "completed"]
    assert "worker" in final.attempts[0].reason
    assert final.output().splitlines() == ["attempt 1 started", "attempt 2 started", "loss: 0.25"]


def test_a_failing_run_is_retried_on_the_cluster(project, dask_store, address):
    path = script(
        project,
        "flaky.py",
        """
        import os, sys
        sys.exit(0 if os.environ["GUILD_JUPYTER_ATTEMPT"] == "2" else 4)
        """,
    )
    run = start_run(path, store=dask_store, executor=address, retries=2)
    assert run.status == "completed"
    assert [(a.status.value, a.exit_code) for a in run.attempts] == [
        ("failed", 4),
        ("completed", 0),
    ]
    assert run.attempts[0].reason == "exit code 4"


def test_the_executor_setting_is_the_default(project, dask_store, cluster, address):
    (dask_store.home / "config.yaml").write_text(f"executor: {address}\n")
    path = script(project, "hello.py", "print('hello')\n")
    run = start_run(path, store=dask_store)
    assert run.status == "completed"
    assert run.attempt.host in worker_addresses(cluster)
    flagged = script(project, "flagged.py", "x = 1\nprint(f'loss: {x}')\n")
    sweep = run_sweep(flagged, {"x": [1, 2]}, store=dask_store, parallel=2)
    assert {r.attempt.host in worker_addresses(cluster) for r in sweep.runs} == {True}
    (dask_store.home / "config.yaml").write_text("executor: local\n")
    local = start_run(path, store=dask_store)
    assert "executor" not in local.source and local.attempt.host == hostname()


def test_the_python_api_takes_an_executor(project, dask_store, cluster, address):

    path = script(project, "hello.py", "x = 1\nprint(f'loss: {x}')\n")
    run = gj.run(path, store=dask_store, executor=address, echo=False)
    assert run.status == "completed" and run.source["executor"] == address
    assert run.attempt.host in worker_addresses(cluster)
    sweep = gj.run(path, {"x": [1, 2]}, store=dask_store, executor=address, parallel=2, echo=False)
    assert {r.status.value for r in sweep.runs} == {"completed"}
    assert {r.attempt.host in worker_addresses(cluster) for r in sweep.runs} == {True}
    before = len(dask_store.list_rows())
    with pytest.raises(GuildError, match="a function runs in this process"):
        gj.run(lambda x=1: x, store=dask_store, executor=address)
    assert len(dask_store.list_rows()) == before


@pytest.mark.parametrize("sweep", [False, True], ids=["run", "sweep"])
@pytest.mark.parametrize(
    "options, message",
    [
        ({"executor": "nonesuch"}, "unknown executor 'nonesuch'"),
        ({"resources": {"GPU": 1}}, "does not schedule resources"),
        ({"executor": "ADDRESS", "resources": {"GPU": 1}}, "no worker of the Dask cluster offers"),
        ({"executor": "ADDRESS", "resources": {"GPU": -1}}, "needs a positive amount"),
    ],
)
def test_bad_placement_is_one_error_and_records_nothing(
    project, dask_store, address, options, message, sweep
):
    path = script(project, "hello.py", "x = 1\nprint('hello')\n")
    if options.get("executor") == "ADDRESS":
        options = {**options, "executor": address}
    with pytest.raises(GuildError, match=message):
        if sweep:  # a sweep's trials are checked before the sweep is recorded
            gj.run(path, {"x": [1, 2]}, store=dask_store, echo=False, **options)
        else:
            start_run(path, store=dask_store, **options)
    assert dask_store.list_rows() == []


def test_an_unreachable_scheduler_is_one_error(project, dask_store):
    path = script(project, "hello.py", "print('hello')\n")
    with pytest.raises(GuildError, match="cannot reach the Dask scheduler"):
        start_run(path, store=dask_store, executor="tcp://127.0.0.1:9")
    assert dask_store.list_rows() == []


def test_worker_resources_are_honoured(project, dask_store):
    """A run needing a GPU goes only to the worker that has one."""
    spec = {
        "plain": {"cls": distributed.Worker, "options": {"nthreads": 1}},
        "gpu": {"cls": distributed.Worker, "options": {"nthreads": 1, "resources": {"GPU": 1}}},
    }
    scheduler = {"cls": distributed.Scheduler, "options": {"dashboard_address": ":0"}}
    with distributed.SpecCluster(workers=spec, scheduler=scheduler) as small:
        gpu_worker = small.workers["gpu"].address
        path = script(project, "gpu.py", "x = 0\nprint('on a gpu worker')\n")
        runs = [
            start_run(
                path, store=dask_store, executor=small.scheduler_address, resources={"GPU": 1}
            )
            for _ in range(3)
        ]
        assert all(r.status == "completed" for r in runs)
        assert {r.attempt.host for r in runs} == {gpu_worker}
        # a sweep's trials need it each (and the sweep remembers it, for a resume)
        sweep = gj.run(path, {"x": [1, 2, 3]}, store=dask_store, executor=small.scheduler_address,
                       resources={"GPU": 1}, parallel=2, echo=False)
        assert [r.status.value for r in sweep.runs] == ["completed"] * 3
        assert {r.attempt.host for r in sweep.runs} == {gpu_worker}
        assert sweep.spec["resources"] == {"GPU": 1}


def test_an_executor_from_an_entry_point(project, dask_store, tmp_path, monkeypatch):
    """A third-party executor registered under guild_jupyter.executors is found by name."""
    site = tmp_path / "site"
    (site / "acme_exec-1.0.dist-info").mkdir(parents=True)
    (site / "acme_exec-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-exec\nVersion: 1.0\n"
    )
    (site / "acme_exec-1.0.dist-info" / "entry_points.txt").write_text(
        "[guild_jupyter.executors]\nacme = acme_exec:AcmeExecutor\n"
    )
    (site / "acme_exec.py").write_text(
        textwrap.dedent(
            """
            from guild_jupyter.orchestration.executors import Executor
            from guild_jupyter.orchestration.executors.local import LOCAL_EXECUTOR

            launched = []

            class AcmeExecutor(Executor):
                name = "acme"

                def launch(self, store, run_id, env, resources=None):
                    launched.append(run_id)
                    return LOCAL_EXECUTOR.launch(store, run_id, env, resources)
            """
        )
    )
    monkeypatch.syspath_prepend(str(site))
    path = script(project, "hello.py", "print('hello')\n")
    run = start_run(path, store=dask_store, executor="acme")
    import acme_exec

    assert run.status == "completed" and run.output() == "hello\n"
    assert acme_exec.launched == [run.id]
    assert run.source["executor"] == "acme"
    forever = script(
        project, "forever.py", "import time\nprint('up', flush=True)\ntime.sleep(600)\n"
    )
    long = start_run(forever, store=dask_store, executor="acme", background=True)
    wait_for(lambda: "up" in dask_store.read_output(long.id), "the run to start")
    assert Controller(dask_store).stop(long.id).status == "cancelled"  # its supervisor got it
    sys.modules.pop("acme_exec", None)


def test_a_cell_runs_on_the_cluster_from_a_kernel(project, dask_store, cluster, address):
    """%%guild_run --executor ADDRESS in a real kernel: inputs travel, outputs come back."""
    from jupyter_client import KernelManager
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    env = dict(os.environ, GUILD_JUPYTER_HOME=str(dask_store.home))
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(project), env=env)
    try:
        nb = new_notebook(
            cells=[
                new_code_cell(s)
                for s in (
                    "%load_ext guild_jupyter",
                    "data = [1, 2, 3]",
                    f"%%guild_run --executor {address} --outputs total\n"
                    "lr = 0.5\n"
                    "total = sum(data) * lr\n"
                    "print(f'loss: {total}')\n",
                    "%guild load 1 total as t2\nprint('loaded', t2)",
                    "%%guild_run --executor dask --inline\nprint(1)",
                )
            ]
        )
        NotebookClient(
            nb,
            km=km,
            allow_errors=True,
            timeout=120,
            resources={"metadata": {"path": str(project)}},
        ).execute()
    finally:
        km.shutdown_kernel(now=True)
    shown = ["".join(o.get("text", "") or o.get("evalue", "") for o in c.outputs) for c in nb.cells]
    assert "loss: 3.0" in shown[2], shown
    assert "loaded 3.0" in shown[3], shown
    assert "--inline runs in this kernel: drop --executor" in shown[4]
    (row,) = dask_store.list_rows()
    run = dask_store.load_run(row["id"])
    assert run.kind == "cell" and run.status == "completed"
    assert run.attempt.host in worker_addresses(cluster)
    assert [p[:3] for p in dask_store.iter_run_points(run.id)] == [("loss", 0, 3.0)]


def test_a_notebook_operation_runs_on_the_cluster(project, dask_store, cluster, address):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell("n = 4"), new_code_cell("print(f'loss: {n / 8}')")])
    nbformat.write(nb, str(project / "train.ipynb"))
    run = start_run(str(project / "train.ipynb"), {"n": 2}, store=dask_store, executor=address)
    assert run.status == "completed", run.output()
    assert run.attempt.host in worker_addresses(cluster)
    assert "loss: 0.25" in run.output()


def test_a_run_waiting_for_a_worker_is_cancelled_by_a_stop(project, dask_store, address):
    gate = project / "gate"
    path = script(
        project,
        "gated.py",
        f"""
        import os, time
        print("running", flush=True)
        while not os.path.exists({str(gate)!r}):
            time.sleep(0.05)
        """,
    )
    busy = [start_run(path, store=dask_store, executor=address, background=True) for _ in "ab"]
    for r in busy:  # both workers are taken
        wait_for(lambda r=r: "running" in dask_store.read_output(r.id), "a busy worker")
    queued = start_run(path, store=dask_store, executor=address, background=True)
    assert dask_store.load_run(queued.id).status == "pending"
    final = Controller(dask_store).stop(queued.id)
    assert final.status == "cancelled"
    assert final.output() == ""  # it never ran
    gate.write_text("")
    for r in busy:
        assert Controller(dask_store).wait(r.id, timeout=60).status == "completed"


def test_kill_9_of_the_orchestrator_fails_the_run_and_stops_it_on_the_worker(
    project, dask_store, address
):
    """The process following a Dask run dies: reconciliation records it, and the worker,
    released by the scheduler, stops the run's process."""
    import subprocess

    pidfile = project / "pid"
    path = script(
        project,
        "long.py",
        f"""
        import os, time
        open({str(pidfile)!r}, "w").write(str(os.getpid()))
        print("started", flush=True)
        time.sleep(600)
        """,
    )
    follower = project / "follow.py"
    follower.write_text(
        textwrap.dedent(
            f"""
            import time
            from guild_jupyter.experiment.runner import start_run
            from guild_jupyter.storage.store import RunStore
            store = RunStore({str(dask_store.home)!r})
            start_run({path!r}, store=store, executor={address!r}, background=True)
            time.sleep(600)
            """
        )
    )
    from tests.conftest import REPO

    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, str(follower)], env=env)
    try:
        row = wait_for(lambda: dask_store.list_rows(), "the run to be recorded")[0]
        wait_for(lambda: "started" in dask_store.read_output(row["id"]), "the run to start")
        pid = int(pidfile.read_text())
        proc.kill()
        proc.wait()
        final = Controller(dask_store).wait(row["id"], timeout=30)
        assert final.status == "failed"
        assert final.reason == f"process following it on {address} died (pid {proc.pid})"
        assert final.output() == "started\n"
        wait_for(lambda: process_start_time(pid) is None, "the run's process to end", 30)
    finally:
        proc.kill()


def test_run_files_can_travel_through_a_shared_location(project, dask_store, address, tmp_path):
    shared = tmp_path / "shared"
    (dask_store.home / "config.yaml").write_text(f"dask_shared_url: file://{shared}\n")
    path = script(project, "art.py", "open('model.bin', 'wb').write(bytes(range(256)) * 64)\n")
    run = start_run(path, store=dask_store, executor=address)
    assert run.status == "completed"
    assert open(os.path.join(run.dir, "model.bin"), "rb").read() == bytes(range(256)) * 64
    assert shared.is_dir() and os.listdir(shared) == []  # written there, read back, removed


def test_a_client_made_elsewhere_can_be_used(project, dask_store):
    """As with dask-gateway, whose clients carry their own credentials."""
    from guild_jupyter.orchestration.executors.dask_executor import DaskExecutor

    with (
        distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as small,
        distributed.Client(small, set_as_default=False) as client,
    ):
        name = DaskExecutor.use(client)
        assert name == small.scheduler_address
        path = script(project, "hello.py", "print('hello')\n")
        run = start_run(path, store=dask_store, executor=name)
        assert run.status == "completed" and run.output() == "hello\n"
        assert DaskExecutor.get(name).client() is client


def test_a_guildfile_operation_runs_on_the_cluster_and_a_pipeline_is_refused(
    project, dask_store, cluster, address
):
    (project / "guild.yml").write_text(
        textwrap.dedent(
            """
            train:
              main: train
              flags:
                lr: 0.1
            pipeline:
              steps:
                - train
            """
        )
    )
    (project / "train.py").write_text("lr = 0.1\nprint(f'loss: {lr}')\n")
    run = start_run("train", {"lr": 0.5}, store=dask_store, executor=address)
    assert run.status == "completed", run.output()
    assert run.output() == "loss: 0.5\n"
    assert run.attempt.host in worker_addresses(cluster)
    with pytest.raises(GuildError, match="pipeline"):
        start_run("pipeline", store=dask_store, executor=address)
    assert len(dask_store.list_rows()) == 1


def test_restart_of_a_dask_run_goes_back_to_the_cluster(project, dask_store, cluster, address):
    path = script(
        project,
        "second.py",
        """
        import os, sys
        print("attempt", os.environ["GUILD_JUPYTER_ATTEMPT"])
        sys.exit(0 if os.environ["GUILD_JUPYTER_ATTEMPT"] == "2" else 1)
        """,
    )
    run = start_run(path, store=dask_store, executor=address)
    assert run.status == "failed" and run.reason == "exit code 1"
    again = Controller(dask_store).restart(run.id)
    assert again.status == "completed"
    assert [a.status.value for a in again.attempts] == ["failed", "completed"]
    assert again.attempts[1].host in worker_addresses(cluster)
    assert again.output() == "attempt 1\nattempt 2\n"


def test_the_cli_runs_on_the_cluster_and_refuses_background(project, dask_store, cluster, address):
    from tests.conftest import cli

    script(project, "hello.py", "x = 1\nprint(f'loss: {x}')\n")
    done = cli("run", "hello.py", "x=3", "--executor", address, home=dask_store.home)
    assert done.returncode == 0, done.stderr
    assert "loss: 3" in done.stdout
    (row,) = dask_store.list_rows()
    assert dask_store.load_run(row["id"]).attempt.host in worker_addresses(cluster)
    refused = cli("run", "hello.py", "--background", "--executor", address, home=dask_store.home)
    assert refused.returncode != 0
    assert "--background needs the local executor" in refused.stderr
    assert len(dask_store.list_rows()) == 1
