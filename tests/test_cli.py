import csv
import io
import json

import guild_jupyter as gj
from tests.conftest import cli


def step(lr=0.1):
    print(f"loss: {lr}")


def _seed(store, n=3):
    return [gj.run(step, {"lr": 0.1 * (i + 1)}, label=f"L{i}", store=store) for i in range(n)]


def test_runs_listing_and_json(store, home):
    runs = _seed(store)
    out = cli("runs", home=home, check=True).stdout.splitlines()
    assert out[0].startswith(f"[1:{runs[2].id[:8]}]") and "completed" in out[0] and "L2" in out[0]
    assert len(out) == 3
    data = json.loads(cli("runs", "--json", home=home, check=True).stdout)
    assert [d["id"] for d in data] == [r.id for r in reversed(runs)]
    assert (
        data[0]["flags"] == {"lr": 0.30000000000000004}
        and data[0]["scalars"]["loss"] == data[0]["flags"]["lr"]
    )
    assert cli("runs", "-w", "flags.lr < 0.15", home=home, check=True).stdout.count("\n") == 1


def test_compare_csv(store, home):
    runs = _seed(store)
    text = cli("compare", "--csv", home=home, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["id"] for r in rows] == [r.id for r in reversed(runs)]
    assert float(rows[2]["flags.lr"]) == 0.1 and float(rows[2]["scalars.loss"]) == 0.1
    two = list(
        csv.DictReader(io.StringIO(cli("compare", "1", "3", "--csv", home=home, check=True).stdout))
    )
    assert [r["id"] for r in two] == [runs[2].id, runs[0].id]


def test_cat_label_tag(store, home):
    runs = _seed(store, 2)
    assert cli("cat", runs[0].id[:6], home=home, check=True).stdout == "loss: 0.1\n"
    cli("label", "1", "--set", "best", home=home, check=True)
    cli("tag", "1", "2", "-a", "keep", "-a", "x", home=home, check=True)
    cli("tag", "2", "-d", "x", home=home, check=True)
    assert store.load_run(runs[1].id).label == "best"
    assert store.load_run(runs[1].id).tags == ["keep", "x"] and store.load_run(runs[0].id).tags == [
        "keep"
    ]


def test_delete_restore_purge(store, home):
    runs = _seed(store, 3)
    cli("delete", "1:2", home=home, check=True)
    assert [r["id"] for r in store.list_rows()] == [runs[0].id]
    listed = cli("runs", "--deleted", home=home, check=True).stdout
    assert runs[2].id[:8] in listed and runs[1].id[:8] in listed
    cli("restore", runs[2].id[:8], home=home, check=True)
    failed = cli("purge", runs[1].id[:8], home=home)
    assert failed.returncode == 1 and "confirm with --yes" in failed.stderr
    cli("purge", runs[1].id[:8], "--yes", home=home, check=True)
    assert {r["id"] for r in store.list_rows(deleted=None)} == {runs[0].id, runs[2].id}


def test_errors_are_one_line_and_change_nothing(store, home):
    _seed(store, 1)
    for args, message in [
        (("cat", "abcdef99"), "no run matches 'abcdef99'"),
        (("label", "7", "--set", "x"), "no run at index 7"),
        (("runs", "-w", "flags.nope > 1"), "unknown column 'flags.nope'"),
        (("delete", "1:x"), "invalid run range '1:x'"),
    ]:
        r = cli(*args, home=home)
        assert r.returncode == 1, args
        lines = r.stderr.strip().splitlines()
        assert (
            len(lines) == 1
            and lines[0].startswith("guild-jupyter: error: ")
            and message in lines[0]
        ), r.stderr
    assert store.load_run(store.resolve_id(1)).label == "L0"


def test_check_and_repair(store, home):
    _seed(store, 2)
    bad = store.runs_dir / ("f" * 32) / ".run"
    bad.mkdir(parents=True)
    (bad / "run.json").write_text("not json")
    r = cli("check", home=home)
    assert r.returncode == 1 and "corrupt" in r.stdout and "f" * 32 in r.stdout
    r = cli("check", "--repair", home=home)
    assert r.returncode == 0 and "index rebuilt" in r.stdout
    assert len(gj.runs(store=store)) == 2


def test_python_dash_m_and_version(home):
    r = cli("--version", home=home, check=True)
    assert r.stdout.startswith("guild-jupyter ")
