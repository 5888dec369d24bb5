import datetime as dt
import time

import pytest

import guild_jupyter as gj
from guild_jupyter.errors import QueryError


def fit(lr=0.1, layers=2, opt="adam"):
    print(f"loss: {lr * layers}")
    gj.log(acc=1 - lr)


@pytest.fixture
def three(store):
    a = gj.run(fit, {"lr": 0.1}, label="base", tags=["baseline"], store=store)
    b = gj.run(fit, {"lr": 0.01, "layers": 4}, label="deep net", store=store)
    c = gj.run(fit, {"lr": 0.5, "opt": "sgd"}, tags=["sgd", "baseline"], store=store, op="other")
    return a, b, c


def test_columns_and_order(store, three):
    df = gj.runs(store=store)
    assert list(df.columns[:7]) == ["id", "op", "status", "started", "stopped", "label", "tags"]
    assert [c for c in df.columns[7:]] == [
        "flags.layers",
        "flags.lr",
        "flags.opt",
        "scalars.acc",
        "scalars.loss",
    ]
    assert list(df["id"]) == [r.id for r in reversed(three)]  # newest first
    assert str(df["started"].dtype).startswith("datetime64") and df["started"].notna().all()
    row = df.iloc[1]
    assert (
        row["flags.lr"] == 0.01
        and row["flags.layers"] == 4
        and row["scalars.loss"] == pytest.approx(0.04)
    )
    assert row["tags"] == [] and df.iloc[0]["tags"] == ["sgd", "baseline"]


def test_filters(store, three):
    a, b, c = three
    ids = lambda **kw: list(gj.runs(store=store, **kw)["id"])  # noqa: E731
    assert ids(op="other") == [c.id]
    assert ids(op="*fit") == [b.id, a.id]
    assert ids(label="deep") == [b.id]
    assert ids(tag="baseline") == [c.id, a.id]
    assert ids(tag=["baseline", "sgd"]) == [c.id]
    assert ids(status="completed") == [c.id, b.id, a.id]
    assert ids(status=["failed", "cancelled"]) == []
    assert ids(started_after=b.started) == [c.id, b.id]
    assert ids(started_before=dt.datetime.fromtimestamp(b.started - 0.001)) == [a.id]
    assert ids(started_after=time.time() + 100) == []


def test_expressions(store, three):
    a, b, c = three
    assert list(gj.runs("flags.lr < 0.2 and scalars.acc > 0.85", store=store)["id"]) == [b.id, a.id]
    assert list(gj.runs("flags.opt == 'sgd'", store=store)["id"]) == [c.id]
    with pytest.raises(
        QueryError, match="unknown column 'flags.lrr'.*known: flags.layers, flags.lr, flags.opt"
    ):
        gj.runs("flags.lrr < 1", store=store)
    with pytest.raises(QueryError, match="cannot evaluate expression"):
        gj.runs("flags.lr <", store=store)
    with pytest.raises(QueryError, match="unknown status 'done'"):
        gj.runs(store=store, status="done")
    with pytest.raises(QueryError, match="cannot read 'yesterday'"):
        gj.runs(store=store, started_after="yesterday")


def test_scalars_long_format(store, three):
    a, b, c = three
    df = gj.scalars(store=store)
    assert list(df.columns) == ["run", "key", "step", "value", "time"]
    assert len(df) == 6 and set(df.run) == {a.id, b.id, c.id}
    only = gj.scalars(gj.runs(store=store, op="other"), keys="acc", store=store)
    assert list(only.value) == [0.5] and list(only.run) == [c.id]
    assert len(gj.scalars([1, 2], store=store)) == 4


def test_get_run(store, three):
    a, b, c = three
    r = gj.get_run(1, store=store)
    assert r.id == c.id and r.status == "completed" and r.flags["opt"] == "sgd"
    assert gj.get_run(a.id[:7], store=store).id == a.id


def test_empty_store(store):
    df = gj.runs(store=store)
    assert df.empty and list(df.columns) == [
        "id",
        "op",
        "status",
        "started",
        "stopped",
        "label",
        "tags",
    ]
    assert gj.scalars(store=store).empty
