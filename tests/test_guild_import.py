"""import-guild on runs really produced by Guild AI 0.9.0.

The fixture (tests/fixtures/guild_home) was made by scripts/make_guild_fixture.sh,
which ran `guild run` in a throwaway venv and saved `guild compare --csv -` beside
the runs as expected.csv. Guild is not needed here.
"""

import csv
import hashlib
import math
import os
import shutil
from pathlib import Path

import pytest

from guild_jupyter.guild_compat.importer import import_guild
from tests.conftest import cli

FIXTURE = Path(__file__).parent / "fixtures" / "guild_home"
STATUS = {"completed": "completed", "error": "failed", "terminated": "cancelled"}
BASE_COLUMNS = {"run", "operation", "started", "time", "status", "label"}


def _tree_hash(root):
    h = hashlib.sha256()
    for dirpath, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            p = Path(dirpath) / name
            st = p.stat()
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
            h.update(str(st.st_mtime_ns).encode())
        h.update(str(sorted(dirs)).encode())
    return h.hexdigest()


@pytest.fixture
def guild_home(tmp_path):
    """A copy of the fixture (so a bug that writes cannot spoil the committed one)."""
    dest = tmp_path / "guild-home"
    shutil.copytree(FIXTURE, dest)
    return dest


def _expected():
    with open(FIXTURE / "expected.csv", newline="") as f:
        return list(csv.DictReader(f))


def _value(text):
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def _dir_of(label):
    """The fixture run with this label (ids change when the fixture is regenerated)."""
    short = next(r["run"] for r in _expected() if r["label"] == label)
    return next((FIXTURE / "runs").glob(short + "*"))


def test_fixture_is_guild_0_9_0():
    assert (FIXTURE / "GUILD_VERSION").read_text().split()[-1] == "0.9.0"
    assert len(_expected()) == 5


def test_import_matches_guild_compare(store, guild_home):
    before = _tree_hash(guild_home)
    result = import_guild(store, guild_home)
    assert len(result.imported) == 5 and not result.skipped, result.summary()
    assert _tree_hash(guild_home) == before  # the Guild home is not modified

    runs = {r.id[:8]: r for r in store.list_runs()}
    frame = store.runs_frame()
    by_short = {row["id"][:8]: row for row in frame.to_dict("records")}
    for row in _expected():
        run = runs[row["run"]]
        assert run.op == row["operation"]
        assert run.status.value == STATUS[row["status"]]
        assert run.label == row["label"]
        assert run.source["imported"] == "guild"
        points = store.scalars_frame([run.id])
        last_step = None
        for col, text in row.items():
            if col in BASE_COLUMNS or text == "":
                continue
            if col in run.flags:
                assert run.flags[col] == _value(text), (row["run"], col)
            elif col == "step":  # Guild's compare shows the step of the last scalar
                last_step = int(text)
            else:
                got = by_short[row["run"]][f"scalars.{col}"]
                assert math.isclose(got, float(text), rel_tol=0, abs_tol=1e-12), (row["run"], col)
        if last_step is not None:
            assert points["step"].max() == last_step
        # the flags Guild shows are exactly the run's flags; every other column is a scalar
        shown = {c for c in row if c not in BASE_COLUMNS and row[c] != ""} - {"step"}
        assert shown == set(run.flags) | set(points["key"]), row["run"]
        assert not set(run.flags) & set(points["key"])


def test_import_keeps_times_tags_output_and_files(store, guild_home):
    (guild_home / "runs" / _dir_of("first").name / "out").mkdir()
    (guild_home / "runs" / _dir_of("first").name / "out" / "model.txt").write_text("w")
    import_guild(store, guild_home)
    run = store.resolve(_dir_of("first").name)
    assert run.tags == ["toy"]
    started = int((guild_home / "runs" / run.id / ".guild/attrs/started").read_text())
    stopped = int((guild_home / "runs" / run.id / ".guild/attrs/stopped").read_text())
    assert run.attempt.started == started / 1e6
    assert run.attempt.stopped == stopped / 1e6
    assert run.attempt.exit_code == 0
    text = store.read_output(run.id)
    assert "loss: 0.4545" in text
    # Guild's manifest says train.py and guild.yml are source code: they go to the snapshot
    assert not (Path(store.run_dir(run.id)) / "train.py").exists()
    assert store.list_files(run.id) == ["out/model.txt"]  # what the run wrote
    snapshot = Path(store.meta_dir(run.id)) / "sourcecode"
    assert sorted(p.name for p in snapshot.iterdir()) == ["guild.yml", "train.py"]

    failed = store.resolve(_dir_of("broken").name)
    assert failed.status.value == "failed" and failed.attempt.exit_code == 3
    stopped_run = store.resolve(_dir_of("stopped").name)
    assert stopped_run.status.value == "cancelled" and stopped_run.attempt.exit_code < 0


def test_import_twice_creates_nothing(store, guild_home):
    first = import_guild(store, guild_home)
    before = sorted(r.id for r in store.list_runs())
    record = Path(store.meta_dir(before[0])) / "run.json"
    mtime = record.stat().st_mtime_ns
    second = import_guild(store, guild_home)
    assert second.imported == [] and len(second.existing) == len(first.imported)
    assert sorted(r.id for r in store.list_runs()) == before
    assert record.stat().st_mtime_ns == mtime
    # a deleted imported run is not brought back either
    store.delete(before[0])
    third = import_guild(store, guild_home)
    assert third.imported == []


def test_running_guild_runs_are_skipped(store, guild_home):
    run_dir = next((guild_home / "runs").iterdir())
    (run_dir / ".guild" / "attrs" / "exit_status").unlink()
    (run_dir / ".guild" / "LOCK.remote").write_text("")
    result = import_guild(store, guild_home)
    assert result.skipped == {run_dir.name: "running in Guild"}
    assert len(result.imported) == 4


def test_not_a_guild_home(store, tmp_path):
    from guild_jupyter.errors import GuildError

    with pytest.raises(GuildError, match="no Guild AI runs"):
        import_guild(store, tmp_path)


def test_cli_import_guild(home, guild_home, tmp_path):
    r = cli("import-guild", guild_home, home=home, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "imported 5 run(s)" in r.stdout
    r = cli("import-guild", guild_home, home=home, cwd=tmp_path)
    assert "imported 0 run(s), 5 already present" in r.stdout
    r = cli("runs", home=home, cwd=tmp_path)
    assert "broken" in r.stdout and "failed" in r.stdout


def test_scalars_from_output_when_a_run_has_no_event_files(store, guild_home):
    run_dir = guild_home / "runs" / _dir_of("second").name
    for p in (run_dir / ".guild").glob("events.out.tfevents.*"):
        p.unlink()
    import_guild(store, guild_home)
    pts = store.scalars_frame([run_dir.name])
    loss = pts[pts.key == "loss"].sort_values("step")
    assert list(loss.step) == [1, 2, 3]
    assert list(loss.value) == [0.9901, 0.495, 0.33]  # the printed text, not float32


def test_tfevents_reader_on_guild_files():
    from guild_jupyter.guild_compat.tfevents import read_scalars

    path = next((_dir_of("first") / ".guild").glob("events.*"))
    got = [(tag, step) for tag, step, _, _ in read_scalars(path)]
    assert got == [("loss", 1), ("acc", 1), ("loss", 2), ("acc", 2)]


def test_a_corrupt_guild_run_is_skipped_not_fatal(store, guild_home):
    name = _dir_of("first").name
    bad = guild_home / "runs" / name / ".guild" / "attrs" / "flags"
    bad.write_text("- not\n- a map\n")
    result = import_guild(store, guild_home)
    assert name in result.skipped
    assert len(result.imported) == 4


def test_default_guild_home_follows_guilds_rule(store, guild_home, tmp_path, monkeypatch):
    from guild_jupyter.guild_compat.guild_attrs import default_guild_home

    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    monkeypatch.delenv("CONDA_PREFIX", raising=False)
    monkeypatch.setenv("GUILD_HOME", str(guild_home))
    assert default_guild_home() == guild_home
    assert len(import_guild(store, None).imported) == 5
    monkeypatch.delenv("GUILD_HOME")
    project = tmp_path / "proj" / "sub"
    project.mkdir(parents=True)
    (tmp_path / "proj" / ".guild" / "runs").mkdir(parents=True)
    monkeypatch.chdir(project)
    assert default_guild_home() == tmp_path / "proj" / ".guild"
