"""Sweeps: the flag-space syntax, grids, Optuna search, parallel trials, pruning, resume."""

import json
import textwrap

import pytest

import guild_jupyter as gj
from guild_jupyter.errors import FlagError
from guild_jupyter.sweeps.space import SweepSyntaxError, parse_dimension


@pytest.mark.parametrize("text,values", [
    ("[0.1, 0.01]", [0.1, 0.01]),
    ("[a, b]*2", ["a", "b", "a", "b"]),
    ("range[1:5]", [1, 2, 3, 4, 5]),
    ("range[1:5:2]", [1, 3, 5]),  # the end is included
    ("range[0:1:0.25]", [0.0, 0.25, 0.5, 0.75, 1.0]),
    ("linspace[0:1:3]", [0.0, 0.5, 1.0]),
    ("linspace[0:1:5]", [0.0, 0.25, 0.5, 0.75, 1.0]),
    ("logspace[-3:-1:3]", [0.001, 0.01, 0.1]),
])
def test_discrete_forms_expand_to_the_documented_values(text, values):
    assert parse_dimension("x", text).values == values


@pytest.mark.parametrize("text,low,high,log", [
    ("uniform[-2:2]", -2.0, 2.0, False), ("[0.1:1]", 0.1, 1.0, False), ("loguniform[1e-4:1e-1]", 1e-4, 0.1, True),
])
def test_search_space_forms(text, low, high, log):
    d = parse_dimension("x", text)
    assert (d.discrete, d.low, d.high, d.log) == (False, low, high, log)


@pytest.mark.parametrize("text,message", [
    ("[0.1,", "malformed sweep value '[0.1,'"),
    ("uniform[1]", "uniform needs [low:high], got 'uniform[1]'"),
    ("range[a:b]", "range bounds must be numbers, got 'a' in 'range[a:b]'"),
    ("range[5:1]", "never reaches the end"),
    ("linspace[0:1:2.5]", "linspace needs [start:end:count]"),
    ("loguniform[0:1]", "loguniform needs positive bounds"),
])
def test_malformed_syntax_is_one_clear_line(text, message):
    with pytest.raises(SweepSyntaxError) as e:
        parse_dimension("lr", text)
    assert message in str(e.value) and "\n" not in str(e.value) and str(e.value).startswith("flag 'lr'")


def test_malformed_sweeps_create_no_run(project, store):
    (project / "train.py").write_text("lr = 0.1\nepochs = 2\nprint(f'loss: {lr}')\n")
    for flags in ({"lr": "[0.1,"}, {"lr": "uniform[1]"}, {"epochs": "range[a:b]"}):
        with pytest.raises(SweepSyntaxError):
            gj.run("train.py", flags, store=store)
    with pytest.raises(FlagError, match="expects an int"):
        gj.run("train.py", {"epochs": "[1, 2.5]"}, store=store)
    with pytest.raises(FlagError, match="unknown flag 'lrr'"):
        gj.run("train.py", {"lrr": "[1, 2]"}, store=store)
    assert store.list_rows(deleted=None) == []


def test_grid_sweep_of_a_script(project, store, capsys):
    (project / "train.py").write_text("lr = 0.1\nlayers = 1\nprint(f'loss: {lr * layers}')\n")
    sweep = gj.run("train.py", {"lr": "[0.1, 0.2]", "layers": "range[1:3]"}, store=store)
    trials = sweep.runs
    assert [(r.flags["lr"], r.flags["layers"]) for r in trials] == [
        (0.1, 1), (0.1, 2), (0.1, 3), (0.2, 1), (0.2, 2), (0.2, 3)]
    assert all(r.status == "completed" and r.sweep == sweep.id for r in trials)
    assert sweep.best.flags == {"lr": 0.1, "layers": 1}
    assert sweep.run.status == "completed" and sweep.run.kind == "sweep" and sweep.run.op == "train.py+"
    assert sweep.spec["optimizer"] == "grid" and sweep.spec["space"] == {"lr": "[0.1, 0.2]", "layers": "range[1:3]"}
    out = capsys.readouterr().out
    assert "trial 6/6: lr=0.2 layers=3" in out
    df = gj.runs(store=store)  # trials only: the sweep record is not a row of the comparison
    assert len(df) == 6 and str(df["flags.lr"].dtype) == "float64"
    assert list(sweep.df["id"]) == [r.id for r in reversed(trials)]


def test_print_trials_and_grid_sampling(project, store):
    (project / "train.py").write_text("a = 1\nb = 1\nprint(a, b)\n")
    space = {"a": "range[1:10]", "b": "[1, 2, 3]"}
    trials = gj.run("train.py", space, store=store, print_trials=True)
    full = [{"a": a, "b": b} for a in range(1, 11) for b in (1, 2, 3)]
    assert len(trials) == 20 and trials == [t for t in full if t in trials]  # 30 combinations, max 20, in order
    assert gj.run("train.py", space, store=store, print_trials=True) == trials  # what a run would do
    sweep = gj.run("train.py", space, store=store, echo=False)
    assert [r.flags for r in sweep.runs] == trials
    assert len(gj.run("train.py", {"a": "[1,2]"}, store=store, print_trials=True)) == 2


def test_batch_file(project, store):
    (project / "train.py").write_text("lr = 0.1\nopt = 'adam'\nprint(f'loss: {lr}')\n")
    (project / "trials.csv").write_text("lr,opt\n0.3,sgd\n0.2,adam\n")
    sweep = gj.run("train.py", store=store, batch="trials.csv", echo=False)
    assert [r.flags for r in sweep.runs] == [{"lr": 0.3, "opt": "sgd"}, {"lr": 0.2, "opt": "adam"}]
    (project / "trials.yaml").write_text("- {lr: 0.5}\n- [oops\n")
    with pytest.raises(Exception, match="trials.yaml, line"):
        gj.run("train.py", store=store, batch="trials.yaml")


def test_tpe_finds_the_minimum(project, store):
    (project / "quad.py").write_text("x = 0.0\nprint(f'y: {(x - 0.7) ** 2}')\n")
    sweep = gj.run("quad.py", {"x": "uniform[-2:2]"}, store=store, max_trials=20, minimize="y",
                   random_seed=3, echo=False)
    assert len(sweep.runs) == 20 and sweep.spec["optimizer"] == "tpe"
    best = sweep.best
    y = gj.runs(store=store).set_index("id").loc[best.id, "scalars.y"]
    assert y < 0.05, (best.flags, y)


def test_parallel_trials_run_at_the_same_time(project, store):
    (project / "slow.py").write_text("import time\nx = 1\ntime.sleep(0.8)\nprint(f'loss: {x}')\n")
    sweep = gj.run("slow.py", {"x": "[1, 2, 3, 4]"}, store=store, parallel=2, echo=False)
    runs = sweep.runs
    assert all(r.status == "completed" for r in runs)
    spans = sorted((r.started, r.stopped) for r in runs)
    overlaps = sum(1 for (s1, e1), (s2, e2) in zip(spans, spans[1:]) if s2 < e1)
    assert overlaps >= 2
    assert max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans) == 2  # never more than 2


def test_a_failed_trial_is_not_a_value(project, store):
    (project / "flaky.py").write_text("x = 0\nif x == 2:\n    raise SystemExit(1)\nprint(f'loss: {x}')\n")
    sweep = gj.run("flaky.py", {"x": "[1, 2, 3]"}, optimizer="random", store=store, echo=False, random_seed=0,
                   max_trials=6)
    assert {r.status.value for r in sweep.runs} == {"completed", "failed"}
    import optuna

    study = optuna.load_study(study_name=sweep.id, storage=_journal(store, sweep))
    states = {t.state.name for t in study.trials}
    assert "FAIL" in states and all(t.value is None for t in study.trials if t.state.name == "FAIL")


def _journal(store, sweep):
    import os

    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(os.path.join(store.meta_dir(sweep.id), "optuna.journal")))


def test_pruning_stops_unpromising_trials_and_keeps_their_scalars(project, store):
    # each trial logs a loss curve; trials with a large offset are clearly worse from the start
    (project / "curve.py").write_text(textwrap.dedent("""
        import time
        import guild_jupyter as gj
        offset = 0.0
        for step in range(12):
            gj.log(step=step, loss=offset + 1.0 / (step + 1))
            time.sleep(0.15)
    """))
    sweep = gj.run("curve.py", {"offset": "[0, 0.5, 0.1, 5, 6, 7, 8]"}, store=store, optimizer="grid",
                   prune="median", echo=False)
    runs = sweep.runs
    pruned = [r for r in runs if r.status == "cancelled"]
    assert pruned and all(r.reason == "pruned" for r in pruned)
    assert all(r.flags["offset"] >= 5 for r in pruned)
    for r in pruned:
        points = gj.scalars(r, keys="loss", store=store)
        assert 1 <= len(points) < 12  # stopped early, what it logged is kept
    assert all(r.status == "completed" for r in runs if r.flags["offset"] < 1)


def test_resume_continues_the_same_study(project, store):
    (project / "quad.py").write_text("x = 0.0\nprint(f'loss: {(x - 0.7) ** 2}')\n")
    sweep = gj.run("quad.py", {"x": "uniform[-2:2]"}, store=store, max_trials=4, random_seed=1, echo=False)
    from guild_jupyter.sweeps.api import resume_sweep

    again = resume_sweep(sweep.id[:8], store=store, max_trials=3)
    assert again.id == sweep.id and len(again.runs) == 7
    import optuna

    study = optuna.load_study(study_name=sweep.id, storage=_journal(store, sweep))
    assert len(study.trials) == 7 and [t.number for t in study.trials] == list(range(7))
    assert [a.status.value for a in again.run.attempts] == ["completed", "completed"]
    assert json.loads(json.dumps(again.spec))["optimizer"] == "tpe"


def test_function_sweep(store):
    def f(a=1, b=0.5):
        return {"loss": abs(a - 2) + b}

    sweep = gj.run(f, {"a": "[1, 2, 3]", "b": [0.0, 1.0]}, store=store, echo=False)
    assert len(sweep.runs) == 6 and sweep.best.flags == {"a": 2, "b": 0.0}


def test_a_list_flag_takes_a_list_value_not_a_sweep(store):
    def f(layers=(64, 32)):
        return {"n": len(layers)}

    def g(layers=[64, 32]):  # noqa: B006
        return {"n": len(layers)}

    run = gj.run(g, {"layers": [128, 64, 32]}, store=store)
    assert run.flags["layers"] == [128, 64, 32] and run.result == {"n": 3}


def test_sweeps_from_the_cli(project, store):
    from tests.conftest import cli

    (project / "train.py").write_text("lr = 0.1\nprint(f'loss: {lr}')\n")
    r = cli("run", "train.py", "lr=logspace[-3:-1:3]", "--print-trials", home=store.home, check=True)
    assert r.stdout.split() == ["#", "lr", "1", "0.001", "2", "0.01", "3", "0.1"]
    r = cli("run", "train.py", "lr=[0.3,0.2]", "-q", home=store.home, check=True)
    sweep_id = r.stdout.split()[1]
    assert "2 trials; best" in r.stdout and "lr=0.2" in r.stdout
    listing = cli("runs", home=store.home, check=True).stdout.splitlines()
    assert listing[0].endswith(f"(trial of {sweep_id})") and "train.py+" in listing[2]
    r = cli("run", "train.py", "lr=[0.1,", home=store.home)
    assert r.returncode == 1 and r.stderr.strip() == (
        "guild-jupyter: error: flag 'lr': malformed sweep value '[0.1,' (unbalanced brackets?)")
    assert len(store.list_rows()) == 3


def test_a_sweep_stopped_from_elsewhere_starts_no_more_trials(project, store):
    import threading
    import time

    (project / "slow.py").write_text("import time\nx = 0\ntime.sleep(0.6)\nprint(f'loss: {x}')\n")
    result = {}
    t = threading.Thread(target=lambda: result.update(s=gj.run("slow.py", {"x": "range[1:8]"}, store=store,
                                                                 echo=False)))
    t.start()
    deadline = time.time() + 20
    while time.time() < deadline and not [r for r in store.list_rows() if r["kind"] == "sweep"]:
        time.sleep(0.05)
    sweep = gj.sweep([r for r in store.list_rows() if r["kind"] == "sweep"][0]["id"], store=store)
    time.sleep(0.3)
    sweep.stop()  # a different Sweep object, as another process would have
    t.join(timeout=30)
    final = result["s"]
    assert final.run.status == "cancelled" and len(final.runs) < 8


def test_guildfile_objective_and_default_max_trials(project, store):
    (project / "train.py").write_text("x = 0.5\nprint(f'acc: {1 - (x - 0.3) ** 2}')\n")
    (project / "guild.yml").write_text(textwrap.dedent("""
        train:
          main: train
          flags:
            x: 0.5
          objective: -acc
          default-max-trials: 3
    """))
    sweep = gj.run("train", {"x": "uniform[0:1]"}, store=store, random_seed=2, echo=False)
    assert len(sweep.runs) == 3
    assert sweep.spec["objective"] == "acc" and sweep.spec["minimize"] is False
    accs = gj.runs(store=store).set_index("id")["scalars.acc"]
    assert accs[sweep.best.id] == accs.max()
