import json
import os
import warnings

import pandas as pd
import pytest

import guild_jupyter as gj
from guild_jupyter.errors import GuildError, RunNotFound
from guild_jupyter.storage import CorruptRunWarning, RunStore


def _train(lr=0.1, epochs=3, opt="adam", use_bn=False):
    for e in range(epochs):
        print(f"loss: {lr / (e + 1)}")
        gj.log(step=e, acc=0.5 + e * 0.1)
    return {"score": lr * 10}


def _make_runs(store, n=4):
    return [
        gj.run(
            _train,
            {"lr": 0.1 * (i + 1), "epochs": 2 + i},
            label=f"r{i}",
            tags=["t", f"i{i}"],
            store=store,
        )
        for i in range(n)
    ]


def test_run_directory_layout(store):
    run = _make_runs(store, 1)[0]
    root = store.runs_dir / run.id
    meta = root / ".run"
    assert len(run.id) == 32 and int(run.id, 16) >= 0
    record = json.loads((meta / "run.json").read_text())
    assert record["id"] == run.id and record["status"] == "completed"
    assert record["flags"] == {"lr": 0.1, "epochs": 2, "opt": "adam", "use_bn": False}
    assert (meta / "output").read_text().splitlines()[0] == "loss: 0.1"
    assert os.path.getsize(meta / "output.index") == 9 * 2
    assert any(p.suffix == ".csv" for p in (meta / "scalars").iterdir())
    assert not [p for p in meta.iterdir() if p.name.startswith(".tmp-")]
    assert store.index.path.exists()


def test_output_lines_carry_timestamps(store):
    from guild_jupyter.storage.output import read_output_lines

    run = _make_runs(store, 1)[0]
    lines = read_output_lines(store.meta_dir(run.id))
    assert [ln.text for ln in lines] == ["loss: 0.1", "loss: 0.05"]
    assert all(run.started - 1 <= ln.time <= run.stopped + 1 for ln in lines)


def test_references(store):
    runs = _make_runs(store, 3)
    newest = runs[-1]
    assert store.resolve(1).id == newest.id
    assert store.resolve("3").id == runs[0].id
    assert store.resolve(newest.id).id == newest.id
    assert store.resolve(newest.id[:10]).id == newest.id
    with pytest.raises(RunNotFound, match="no run at index 9"):
        store.resolve(9)
    with pytest.raises(RunNotFound, match="no run matches 'ffffffffff'"):
        store.resolve("ffffffffff")
    with pytest.raises(RunNotFound, match="invalid run reference 'not-a-run'"):
        store.resolve("not-a-run")
    with pytest.raises(RunNotFound, match="invalid run reference"):  # isdigit() but not int()
        store.resolve("\u00b2")


def test_ambiguous_prefix(store):
    a = store.create_run("op", kind="function", flags={}, run_id="ab" + "0" * 30)
    store.create_run("op", kind="function", flags={}, run_id="ab" + "1" * 30)
    with pytest.raises(RunNotFound, match="ambiguous"):
        store.resolve("ab")
    assert store.resolve("ab0").id == a.id


def test_label_tags_delete_restore_purge(store):
    runs = _make_runs(store, 2)
    r = runs[0]
    store.set_label(r.id, "best")
    store.set_tags(r.id, add=["keep"], remove=["t"])
    assert store.load_run(r.id).label == "best"
    assert store.load_run(r.id).tags == ["i0", "keep"]
    store.delete(r.id)
    assert [x["id"] for x in store.list_rows()] == [runs[1].id]
    assert [x["id"] for x in store.list_rows(deleted=True)] == [r.id]
    assert store.load_run(r.id).deleted
    with pytest.raises(GuildError, match="already in the trash"):
        store.delete(r.id)
    store.restore(r.id)
    assert len(store.list_rows()) == 2 and store.load_run(r.id).label == "best"
    store.delete(r.id)
    store.purge(r.id)
    assert not (store.trash_dir / r.id).exists()
    with pytest.raises(RunNotFound):
        store.resolve(r.id, deleted=None)


def test_running_runs_cannot_be_deleted(store):
    run = store.create_run("op", kind="function", flags={})
    store.set_status(run.id, "running")
    with pytest.raises(GuildError, match="stop it before deleting"):
        store.delete(run.id)


def test_files_are_the_artifacts(store):
    run = store.create_run("op", kind="function", flags={})
    d = store.run_dir(run.id)
    os.makedirs(os.path.join(d, "sub"))
    open(os.path.join(d, "sub", "weights.bin"), "wb").close()
    open(os.path.join(d, "model.txt"), "w").close()
    assert store.list_files(run.id) == ["model.txt", os.path.join("sub", "weights.bin")]


def _frame(store):
    return gj.runs(store=store).sort_values("id").reset_index(drop=True)


def test_deleting_the_index_loses_nothing(store):
    _make_runs(store, 4)
    store.delete(store.resolve(2).id)
    before = _frame(store)
    before_deleted = gj.runs(store=store, deleted=True)
    before_scalars = gj.scalars(store=store)
    for suffix in ("", "-wal", "-shm"):
        p = str(store.index.path) + suffix
        if os.path.exists(p):
            os.unlink(p)
    after = _frame(store)
    pd.testing.assert_frame_equal(before, after)
    pd.testing.assert_frame_equal(before_deleted, gj.runs(store=store, deleted=True))
    pd.testing.assert_frame_equal(before_scalars, gj.scalars(store=store))
    # a fresh process sees the same too
    pd.testing.assert_frame_equal(before, _frame(RunStore(store.home)))


def test_a_corrupt_index_is_rebuilt(store):
    _make_runs(store, 2)
    before = _frame(store)
    store.index.close()
    for suffix in ("-wal", "-shm"):
        if os.path.exists(str(store.index.path) + suffix):
            os.unlink(str(store.index.path) + suffix)
    store.index.path.write_bytes(b"this is not a database" * 100)
    fresh = RunStore(store.home)
    pd.testing.assert_frame_equal(before, _frame(fresh))
    assert list(store.home.glob("index.db.bad-*"))


def test_corrupt_run_directory_is_skipped_with_a_warning(store):
    runs = _make_runs(store, 3)
    bad = store.runs_dir / runs[1].id / ".run" / "run.json"
    bad.write_text("{ garbage")
    (store.runs_dir / ("e" * 32) / ".run").mkdir(parents=True)  # no record at all
    os.unlink(store.index.path)
    with pytest.warns(CorruptRunWarning) as caught:
        df = gj.runs(store=store)
    assert sorted(df["id"]) == sorted([runs[0].id, runs[2].id])
    messages = [str(w.message) for w in caught]
    assert any(runs[1].id in m and "corrupt run metadata" in m for m in messages)
    assert any("e" * 32 in m for m in messages)


def test_check_reports_and_repairs(store):
    runs = _make_runs(store, 2)
    # change a record behind the index's back
    path = store.runs_dir / runs[0].id / ".run" / "run.json"
    record = json.loads(path.read_text())
    record["label"] = "edited"
    record["attempts"][-1]["status"] = "failed"
    path.write_text(json.dumps(record))
    report = store.check()
    assert report["status_mismatch"] == [runs[0].id]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store.check(repair=True)
    row = gj.runs(store=store).set_index("id").loc[runs[0].id]
    assert row["status"] == "failed" and row["label"] == "edited"
    assert store.check()["status_mismatch"] == []


def test_metadata_writes_are_atomic(store, monkeypatch):
    run = store.create_run("op", kind="function", flags={"a": 1})
    meta = store.runs_dir / run.id / ".run"

    def crash(src, dst):  # dies after writing the temp file, before the rename
        raise OSError("killed")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.set_label(run.id, "new")
    monkeypatch.undo()
    assert store.load_run(run.id).label == ""
    assert not [p for p in meta.iterdir() if p.name.startswith(".tmp-")]
