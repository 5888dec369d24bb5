"""compare(): scalar aggregates; plots (one trace per run, parcoords dimensions, downsampling
at 1,000 runs); the df.guild accessor; diff(a, b); HTML/text reprs of Run and Sweep.
No kernel: everything here runs in-process on function runs."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

import guild_jupyter as g
from guild_jupyter.compare import plots
from guild_jupyter.errors import GuildError


def train(lr=0.1, opt="adam"):
    print(f"training lr={lr}")
    for i in range(5):
        g.log(step=i, loss=lr * (5 - i), acc=lr * i)


@pytest.fixture
def three(store):
    runs = [g.run(train, {"lr": lr, "opt": opt}, store=store) for lr, opt in ((0.1, "adam"), (0.2, "sgd"), (0.3, "sgd"))]
    return store, runs


def test_compare_aggregates(three):
    store, runs = three
    last = g.compare(store=store).set_index("flags.lr")
    assert last.loc[0.3, "scalars.loss"] == pytest.approx(0.3)  # last = runs()
    df = g.compare(agg={"loss": "min", "scalars.acc": "mean"}, store=store).set_index("flags.lr")
    assert df.loc[0.3, "scalars.loss"] == pytest.approx(0.3)
    assert df.loc[0.3, "scalars.acc"] == pytest.approx(0.6)
    assert g.compare(agg="max", store=store).set_index("flags.lr").loc[0.2, "scalars.loss"] == pytest.approx(1.0)
    first = g.compare(agg="first", store=store).set_index("flags.lr")
    assert first.loc[0.1, "scalars.acc"] == 0.0
    assert (g.compare(agg="count", store=store)["scalars.loss"] == 5).all()
    assert list(g.compare(op=runs[0].op, agg="min", store=store)["id"]) == list(g.runs(store=store)["id"])
    with pytest.raises(GuildError, match="unknown scalar aggregate"):
        g.compare(agg="median", store=store)


def test_agg_option_parsing_and_runs_agg(three):
    from guild_jupyter.compare.aggregates import parse_agg

    assert parse_agg([]) == "last" and parse_agg(["min"]) == "min"
    assert parse_agg(["loss=min", "scalars.acc=max"]) == {"loss": "min", "acc": "max"}
    assert parse_agg(["mean", "loss=min"]) == {"*": "mean", "loss": "min"}
    for bad, msg in ((["median"], "unknown scalar aggregate"), (["loss=avg"], "unknown scalar aggregate"),
                     (["=min"], "expected AGG or SCALAR=AGG"), (["loss="], "expected AGG or SCALAR=AGG")):
        with pytest.raises(GuildError, match=msg):
            parse_agg(bad)
    store, runs = three
    # a default for every scalar with one exception; runs() takes the same agg
    df = g.compare(agg={"*": "max", "acc": "first"}, store=store).set_index("flags.lr")
    assert df.loc[0.2, "scalars.loss"] == pytest.approx(1.0) and df.loc[0.2, "scalars.acc"] == 0.0
    r = g.runs(agg={"loss": "min"}, store=store).set_index("flags.lr")
    assert r.loc[0.3, "scalars.loss"] == pytest.approx(0.3) and r.loc[0.3, "scalars.acc"] == pytest.approx(1.2)


def test_cli_compare_agg_agrees_with_the_api(three, capsys):
    from guild_jupyter.cli.main import main
    from guild_jupyter.compare.aggregates import compare_table

    store, runs = three
    assert main(["--home", str(store.home), "compare", "--json", "--agg", "loss=min", "--agg", "acc=max"]) == 0
    rows = {r["flags"]["lr"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[0.2]["scalars"]["loss"] == pytest.approx(0.2) and rows[0.2]["scalars"]["acc"] == pytest.approx(0.8)
    table = compare_table(store, (), None, {"loss": "min", "acc": "max"})
    assert [r["id"] for r in rows.values()] == list(table["id"])
    # chosen runs keep their order; the bare form applies to every scalar
    assert main(["--home", str(store.home), "compare", "--json", "--agg", "min", runs[0].id, runs[2].id]) == 0
    chosen = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in chosen] == [runs[0].id, runs[2].id]
    assert chosen[1]["scalars"]["loss"] == pytest.approx(0.3) and chosen[1]["scalars"]["acc"] == 0.0
    before = len(store.list_rows())
    assert main(["--home", str(store.home), "compare", "--agg", "loss=median"]) != 0
    assert "unknown scalar aggregate 'median'" in capsys.readouterr().err
    assert len(store.list_rows()) == before


def test_plot_scalars_one_trace_per_run(three):
    store, runs = three
    df = g.runs(store=store)
    fig = df.guild.plot_scalars("loss", store=store)
    assert isinstance(fig, go.Figure) and len(fig.data) == 3
    assert {t.meta["run"] for t in fig.data} == {r.id for r in runs}
    assert list(fig.data[0].x) == [0, 1, 2, 3, 4]
    both = plots.plot_scalars(df, store=store)
    assert len(both.data) == 6  # one per run and key
    by_time = plots.plot_scalars(runs[0], "acc", x="time", store=store)
    assert len(by_time.data) == 1 and by_time.layout.xaxis.title.text == "time"
    with pytest.raises(ValueError):
        plots.plot_scalars(df, "loss", x="epoch", store=store)


def test_plot_scalars_1000_runs_downsampled():
    n_runs, n_steps = 1000, 1000
    steps = np.tile(np.arange(n_steps), n_runs)
    runs = np.repeat([f"{i:032x}" for i in range(n_runs)], n_steps)
    values = np.sin(steps / 50.0) + np.repeat(np.arange(n_runs), n_steps) * 0.001
    values[500] = 99.0  # a spike in run 0 must survive downsampling
    long = pd.DataFrame({"run": runs, "key": "loss", "step": steps, "value": values, "time": steps.astype(float)})
    fig = plots.plot_scalars(long, "loss")
    assert len(fig.data) == n_runs
    assert all(isinstance(t, go.Scattergl) for t in fig.data)
    assert max(len(t.x) for t in fig.data) <= plots.MAX_POINTS + 1
    first = fig.data[0]
    assert first.x[-1] == n_steps - 1 and first.x[0] == 0 and 99.0 in list(first.y)
    short_x, _ = plots.downsample(np.arange(10), np.arange(10.0))
    assert len(short_x) == 10


def test_parallel_coordinates_dimensions(three):
    store, runs = three
    df = g.runs(store=store)
    fig = df.guild.parallel_coordinates(color="loss")
    (trace,) = fig.data
    assert isinstance(trace, go.Parcoords)
    assert [d.label for d in trace.dimensions] == ["lr", "opt", "loss"]
    assert all(len(d.values) == 3 for d in trace.dimensions)
    assert list(trace.dimensions[1].ticktext) == ["adam", "sgd"]
    assert len(trace.line.color) == 3
    big = pd.DataFrame({"id": [f"{i:032x}" for i in range(1000)], "flags.a": np.arange(1000),
                        "flags.b": ["x", "y"] * 500, "flags.same": 1, "scalars.loss": np.random.rand(1000)})
    (t,) = plots.parallel_coordinates(big, color="scalars.loss").data
    assert [d.label for d in t.dimensions] == ["a", "b", "loss"] and len(t.dimensions[0].values) == 1000
    assert [d.label for d in plots.parallel_coordinates(big, columns=["a", "same"]).data[0].dimensions] == ["a", "same"]


def test_scatter_and_best(three):
    store, runs = three
    df = g.runs(store=store)
    fig = df.guild.scatter("lr", "loss", color="acc")
    assert len(fig.data) == 1 and len(fig.data[0].x) == 3  # one marker per run
    assert set(fig.data[0].text) == {r.short_id for r in runs}
    assert df.guild.best("loss")["flags.lr"] == 0.1
    assert df.guild.best("scalars.acc", "max")["flags.lr"] == 0.3
    assert list(df.guild.best("loss", n=2)["flags.lr"]) == [0.1, 0.2]
    assert [r.id for r in df.guild.runs(store=store)] == list(df["id"])
    with pytest.raises(KeyError):
        df.guild.best("nope")
    with pytest.raises(ValueError):
        df.guild.best("loss", "median")


def test_sweep_summary_and_repr(store):
    sweep = g.run(train, {"lr": [0.3, 0.1, 0.2]}, minimize="loss", store=store, echo=False)
    fig = plots.sweep_summary(sweep)
    assert [t.name for t in fig.data] == ["trial", "best so far"]
    assert list(fig.data[0].y) == pytest.approx([0.3, 0.1, 0.2])
    assert list(fig.data[1].y) == pytest.approx([0.3, 0.1, 0.1])
    bundle = sweep._repr_mimebundle_()
    assert "guild-best" in bundle["text/html"]
    best = [line for line in bundle["text/plain"].splitlines() if line.startswith("*")]
    assert len(best) == 1 and "lr=0.1" in best[0]


def test_diff(three):
    store, (a, b, c) = three
    for run, pkgs, commit in ((a, {"numpy": "2.0", "pandas": "3.1"}, "abc"), (b, {"numpy": "2.1", "pandas": "3.1"}, "def")):
        with open(os.path.join(store.meta_dir(run.id), "provenance.json"), "w") as f:
            json.dump({"packages": pkgs, "git": {"commit": commit, "dirty": False}, "python": {"version": "3.11"}}, f)
        src = os.path.join(store.meta_dir(run.id), "sourcecode")
        os.makedirs(src, exist_ok=True)
        with open(os.path.join(src, "train.py"), "w") as f:
            f.write(f"lr = {run.flags['lr']}\nprint('x')\n")
    d = g.diff(a.id, b.id, store=store)
    assert ("lr", 0.1, 0.2) in d.flags and ("opt", "adam", "sgd") in d.flags
    assert dict((k, (x, y)) for k, x, y in d.scalars)["loss"] == pytest.approx((0.1, 0.2))
    assert "-lr = 0.1" in d.source and "+lr = 0.2" in d.source
    assert ("packages.numpy", "2.0", "2.1") in d.provenance and ("git.commit", "abc", "def") in d.provenance
    assert not any(k == "packages.pandas" for k, _, _ in d.provenance)
    assert "-training lr=0.1" in d.output and "+training lr=0.2" in d.output
    text = str(d)
    assert "flags:" in text and "provenance:" in text and "numpy: 2.0 -> 2.1" in text
    assert "<pre>" in d._repr_html_()
    same = g.diff(c, c, store=store)
    assert same.same and "flags: same" in str(same)


def test_run_repr_escapes_and_lazy_names(three):
    store, (a, _, _) = three
    store.set_label(a.id, "<script>alert(1)</script>")
    run = store.load_run(a.id)
    bundle = run._repr_mimebundle_()
    assert "<script>" not in bundle["text/html"] and "&lt;script&gt;" in bundle["text/html"]
    assert "[completed]" in bundle["text/plain"] and "loss: 0.1" in bundle["text/plain"]
    assert g.plots is plots and callable(g.compare) and callable(g.diff)
