import pytest

import guild_jupyter as gj
from guild_jupyter.errors import FlagError


def train(lr=0.01, epochs=2, opt="adam"):
    print("starting")
    for e in range(epochs):
        print(f"loss: {lr * (epochs - e)}")
    return {"val_acc": 0.9, "note": "not a number", "n": 3}


def test_flags_come_from_the_signature_and_output_is_captured(store, capsys):
    run = gj.run(train, {"lr": "0.5"}, label="first", tags=["x"], store=store)
    assert run.status == "completed" and run.exit_code == 0
    assert run.flags == {"lr": 0.5, "epochs": 2, "opt": "adam"}
    assert run.op == "tests.test_function_run.train" or run.op.endswith("train")
    assert run.result["val_acc"] == 0.9
    assert (
        capsys.readouterr().out == "starting\nloss: 1.0\nloss: 0.5\n"
    )  # still printed for the user
    assert run.output() == "starting\nloss: 1.0\nloss: 0.5\n"
    row = gj.runs(store=store).iloc[0]
    assert row["scalars.loss"] == 0.5 and row["scalars.val_acc"] == 0.9 and row["scalars.n"] == 3
    assert "scalars.note" not in row.index
    assert row["label"] == "first" and row["tags"] == ["x"]
    assert run.source["code"].startswith('def train(lr=0.01, epochs=2, opt="adam"):')


def test_an_exception_fails_the_run_keeps_the_traceback_and_is_raised(store):
    def broken(x=1):
        print("about to fail")
        raise ValueError("bad data")

    with pytest.raises(ValueError, match="bad data"):
        gj.run(broken, store=store)
    run = gj.get_run(1, store=store)
    assert run.status == "failed" and run.exit_code == 1
    assert run.reason == "ValueError: bad data"
    out = run.output()
    assert (
        out.startswith("about to fail\n") and "Traceback" in out and "ValueError: bad data" in out
    )


def test_keyboard_interrupt_cancels(store):
    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        gj.run(interrupted, store=store)
    assert gj.get_run(1, store=store).status == "cancelled"


def test_bad_flags_create_no_run(store):
    with pytest.raises(FlagError, match="unknown flag 'lrr'"):
        gj.run(train, {"lrr": 1}, store=store)
    with pytest.raises(FlagError, match="flag 'epochs' expects an int, got 'many'"):
        gj.run(train, {"epochs": "many"}, store=store)
    assert gj.runs(store=store).empty and store.list_rows(deleted=None) == []


def test_required_parameters_and_kwargs(store):
    def f(data, **extra):
        return {"k": len(extra)}

    with pytest.raises(FlagError, match="flag 'data' is required"):
        gj.run(f, store=store)
    run = gj.run(f, {"data": "a.csv", "seed": "7"}, store=store)
    assert run.flags == {"data": "a.csv", "seed": 7}


def test_runs_attach_to_the_default_store(home):
    run = gj.run(train)
    assert run.dir.startswith(str(home))
    assert gj.get_run(run.id[:6]).id == run.id
