"""guild.yml requires (file, operation) and steps pipelines, through real runs."""

import os
import textwrap

import pytest

import guild_jupyter as gj
from guild_jupyter.errors import GuildError


def write(d, name, text):
    p = d / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return p


GUILDFILE = """
prepare:
  main: prepare
  flags:
    size: 3
  requires:
    - file: raw.txt
      target-path: data
train:
  main: train
  flags:
    lr: 0.1
  requires:
    - operation: prepare
      select: 'prepared*'
pipeline:
  flags:
    size: 2
    lr: 0.5
  steps:
    - prepare size=${size}
    - run: train
      flags:
        lr: ${lr}
"""

PREPARE = """
size = 3
raw = open("data/raw.txt").read().strip()
with open("prepared.txt", "w") as f:
    f.write(raw * size)
open("other.txt", "w").write("x")
print("prepared", raw * size)
"""

TRAIN = """
lr = 0.1
data = open("prepared.txt").read()
print("train on", data, "lr", lr)
print("loss: %s" % (lr * len(data)))
"""


@pytest.fixture
def pipeline_project(project):
    write(project, "guild.yml", GUILDFILE)
    write(project, "prepare.py", PREPARE)
    write(project, "train.py", TRAIN)
    write(project, "raw.txt", "ab\n")
    return project


def test_file_requirement_is_copied_to_target_path(pipeline_project, store):
    run = gj.run("prepare", store=store)
    assert run.status == "completed", run.output()
    assert "prepared ababab" in run.output()
    assert open(os.path.join(store.run_dir(run.id), "data", "raw.txt")).read() == "ab\n"


def test_operation_requirement_uses_newest_completed_or_the_given_run(pipeline_project, store):
    with pytest.raises(GuildError, match="requires a completed run of prepare"):
        gj.run("train", store=store)
    first = gj.run("prepare", {"size": 1}, store=store)
    second = gj.run("prepare", {"size": 2}, store=store)
    run = gj.run("train", store=store)
    assert run.status == "completed", run.output()
    assert "train on abab lr 0.1" in run.output()
    run = store.load_run(run.id)
    assert run.flags["prepare"] == second.id  # the resolved run is recorded, as Guild does
    assert sorted(os.listdir(store.run_dir(run.id))) == [".run", "prepared.txt"]  # select
    again = gj.run("train", {"prepare": first.id[:8]}, store=store)
    assert "train on ab lr" in again.output()
    assert store.load_run(again.id).flags["prepare"] == first.id


def test_two_step_pipeline(pipeline_project, store):
    run = gj.run("pipeline", {"size": 4, "lr": 0.25}, store=store)
    assert run.status == "completed", run.output()
    steps = [r for r in store.list_runs() if r.source.get("pipeline") == run.id]
    assert sorted(r.op for r in steps) == ["prepare", "train"]
    by_op = {r.op: r for r in steps}
    assert by_op["prepare"].flags == {"size": 4}
    assert by_op["train"].flags["lr"] == 0.25
    assert by_op["train"].flags["prepare"] == by_op["prepare"].id  # the step's own upstream
    assert "train on abababab lr 0.25" in by_op["train"].output()
    assert "step 2: train" in run.output()
    row = gj.runs(store=store)
    train_row = row[row.id == by_op["train"].id].iloc[0]
    assert train_row["scalars.loss"] == pytest.approx(0.25 * 8)


def test_failing_step_fails_the_pipeline(pipeline_project, store):
    (pipeline_project / "train.py").write_text("raise SystemExit(4)\n")
    run = gj.run("pipeline", store=store)
    assert run.status == "failed"
    assert "step 2 (train) failed" in run.output()


@pytest.mark.parametrize(
    "text, message",
    [
        ("p:\n  steps:\n    - nope\n", "line 2: operation 'p': step 'nope': no operation"),
        ("p:\n  steps: []\n", "line 2: operation 'p': steps must be a non-empty list"),
        (
            "p:\n  main: x\n  requires:\n    - operation: ghost\n",
            "line 4: operation 'p': requires unknown operation 'ghost'",
        ),
        (
            "p:\n  main: x\n  requires:\n    - target-path: d\n",
            "line 4: operation 'p': each requires entry needs file:",
        ),
    ],
)
def test_bad_steps_and_requires_name_the_line(project, store, text, message):
    (project / "guild.yml").write_text(text)
    (project / "x.py").write_text("")
    with pytest.raises(GuildError, match=message):
        gj.run("p", store=store)
    assert store.list_runs() == []
