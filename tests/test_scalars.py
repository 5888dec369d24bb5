import math
import os
import subprocess
import sys
import textwrap

import pytest

import guild_jupyter as gj
from guild_jupyter.errors import GuildError
from guild_jupyter.storage.scalar_files import SummaryBuilder
from guild_jupyter.tracking.output_scalars import OutputScalarParser


def test_guild_default_output_scalars():
    p = OutputScalarParser()
    lines = [
        "epoch 1",
        "loss: 0.5",
        "acc: 0.9 (step 3)",
        "step: 7",
        "loss: 0.25",
        "val: 1e-3 (12)",
        "x: nan",
        "note: this is text",
        "lr: -inf",
        "time: 3s",
    ]
    got = p.parse_lines(lines)
    assert got[:4] == [("loss", 0, 0.5), ("acc", 3, 0.9), ("loss", 7, 0.25), ("val", 12, 0.001)]
    assert got[4][0] == "x" and math.isnan(got[4][2])
    assert got[5] == ("lr", 7, float("-inf"))
    assert len(got) == 6


def test_custom_patterns_and_templates():
    p = OutputScalarParser(
        [
            {"acc": r"Accuracy=(?P<value>\value)"},
            {"speed": r"(\value) it/s"},
            r"(\key)=(\value)",
            r"^(?P<key>\key) -> (?P<value>\value) @(?P<step>\step)$",
        ]
    )
    assert p.parse("Accuracy=0.75") == [("acc", 0, 0.75)]
    assert p.parse("f1 -> 0.5 @4") == [("f1", 4, 0.5)]
    assert p.parse("12.5 it/s") == [("speed", 0, 12.5)]
    assert p.parse("loss=3") == [("loss", 0, 3.0)]
    assert OutputScalarParser("no").parse("loss: 1") == []


def test_bad_pattern_is_a_clear_error():
    with pytest.raises(GuildError, match="invalid output-scalars pattern"):
        OutputScalarParser(["(unclosed"])


def test_summary_first_last_min_max_count():
    s = (
        SummaryBuilder()
        .extend(
            [
                ("l", 2, 3.0, 10.0),
                ("l", 0, 5.0, 11.0),
                ("l", 1, float("nan"), 12.0),
                ("l", 2, 1.0, 13.0),
            ]
        )
        .by_key["l"]
    )
    assert (s.first, s.last, s.min, s.max, s.count) == (5.0, 1.0, 1.0, 5.0, 4)


def test_log_in_a_function_run(store):
    def train(epochs=5):
        for e in range(epochs):
            gj.log(step=e, loss=1 / (e + 1), acc=e / 10)
        gj.log(note_count=3)
        gj.log(note_count=4)

    run = gj.run(train, store=store)
    df = gj.scalars(run.id, store=store)
    loss = df[df.key == "loss"]
    assert list(loss.step) == [0, 1, 2, 3, 4] and loss.value.iloc[-1] == pytest.approx(0.2)
    assert list(df[df.key == "note_count"].step) == [0, 1]
    row = gj.runs(store=store).iloc[0]
    assert row["scalars.loss"] == pytest.approx(0.2) and row["scalars.note_count"] == 4
    summary = store.index.execute(
        "SELECT first, last, min, max, count FROM scalar_summary WHERE run=? AND key='loss'",
        (run.id,),
    )[0]
    assert summary == (1.0, 0.2, 0.2, 1.0, 5)


def test_log_rejects_bad_input_and_outside_a_run(store):
    with pytest.raises(GuildError, match="outside a run"):
        gj.log(loss=1)

    def bad_value():
        gj.log(loss="high")

    with pytest.raises(GuildError, match="scalar 'loss' must be a number, got 'high'"):
        gj.run(bad_value, store=store)

    def bad_key():
        gj.log(**{"a,b": 1})

    with pytest.raises(GuildError, match="invalid scalar key 'a,b'"):
        gj.run(bad_key, store=store)


def test_numpy_values_and_steps_are_accepted(store):
    np = pytest.importorskip("numpy")

    def train():
        for i in np.arange(3):
            gj.log(step=i, loss=np.float32(i) / 2)

    run = gj.run(train, store=store)
    assert list(gj.scalars(run, store=store).value) == [0.0, 0.5, 1.0]


WRITER = textwrap.dedent("""
    import sys, guild_jupyter as gj
    n = int(sys.argv[1])
    for i in range(n):
        gj.log(step=i, x=float(i), y=-float(i))
""")


def test_eight_processes_logging_concurrently_store_every_point_once(store):
    n = 20000
    runs = []
    for i in range(8):
        r = store.create_run("writer", kind="script", flags={"i": i})
        store.set_status(r.id, "running")
        runs.append(r.id)
    shared = runs[0]  # two processes write into this one run
    procs = []
    for run_id in runs + [shared]:
        env = dict(os.environ, RUN_ID=run_id, GUILD_JUPYTER_HOME=str(store.home))
        procs.append(subprocess.Popen([sys.executable, "-c", WRITER, str(n // 2)], env=env))
    for p in procs:
        assert p.wait(timeout=240) == 0
    df = gj.scalars(runs, store=store)
    per_run = df.groupby("run").size()
    assert per_run[shared] == 2 * n  # 2 keys x n/2 steps x 2 writers
    assert all(per_run[r] == n for r in runs[1:])
    for r in runs[1:]:
        xs = df[(df.run == r) & (df.key == "x")]
        assert sorted(xs.step) == list(range(n // 2))  # each point exactly once
    counts = dict(store.index.execute("SELECT run, sum(count) FROM scalar_summary GROUP BY run"))
    assert counts[shared] == 2 * n and all(counts[r] == n for r in runs[1:])
    last = gj.runs(store=store).set_index("id")["scalars.x"]
    assert all(last[r] == n // 2 - 1 for r in runs)


def test_batch_summary_matches_a_rebuild_with_ties(store):
    from guild_jupyter.storage.scalar_files import summarize

    points = [
        ("loss", 0, 0.5, 10.0),
        ("loss", 0, 0.25, 10.0),
        ("loss", 0, 0.125, 10.0),
        ("acc", 2, 1.0, 9.0),
        ("acc", 1, 3.0, 11.0),
        ("acc", 2, float("nan"), 9.0),
    ]
    fast = summarize(points)
    slow = SummaryBuilder().extend(points).by_key
    for key in ("loss", "acc"):
        a, b = fast[key], slow[key]
        assert (a.first, a.last, a.min, a.max, a.count) == (
            b.first,
            b.last,
            b.min,
            b.max,
            b.count,
        ) or (key == "acc" and math.isnan(a.last) and math.isnan(b.last))
    assert fast["loss"].last == 0.125 and fast["loss"].first == 0.5
