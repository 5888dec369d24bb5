"""Script operations through real supervisors and real processes."""

import json
import os
import subprocess
import textwrap

import pytest

import guild_jupyter as gj
from guild_jupyter.errors import FlagError, GuildError
from tests.conftest import cli


def write(d, name, text):
    (d / name).write_text(textwrap.dedent(text))
    return name


TRAIN = """
    import os
    import guild_jupyter as gj
    lr = 0.1
    epochs = 3
    for e in range(epochs):
        print(f"loss: {lr / (e + 1)}")
        gj.log(step=e, acc=e / 10)
    print("env", os.environ["FLAG_LR"], os.environ["RUN_ID"], os.environ["RUN_DIR"] == os.getcwd())
    with open("model.txt", "w") as f:
        f.write("weights")
"""


def test_a_script_run_completes_with_output_scalars_and_snapshot(project, store, capsys):
    write(project, "train.py", TRAIN)
    write(project, "helper.py", "X = 1\n")
    (project / "big.bin").write_bytes(b"\0" * 100)
    run = gj.run("train.py", {"lr": 0.5}, label="first", store=store)
    assert run.status == "completed" and run.exit_code == 0 and run.kind == "script"
    assert run.flags == {"lr": 0.5, "epochs": 3}
    out = run.output()
    assert out.startswith("loss: 0.5\nloss: 0.25\n")
    assert f"env 0.5 {run.id} True" in out
    assert "loss: 0.5" in capsys.readouterr().out  # echoed while it ran
    row = gj.runs(store=store).iloc[0]
    assert row["scalars.loss"] == pytest.approx(0.5 / 3) and row["scalars.acc"] == pytest.approx(
        0.2
    )
    assert run.files() == ["model.txt"]
    snap = os.path.join(store.meta_dir(run.id), "sourcecode")
    assert sorted(os.listdir(snap)) == ["helper.py", "train.py"]  # binary file left out
    assert "lr = 0.5" in open(os.path.join(snap, "train.py")).read()  # the code as it ran
    assert "lr = 0.1" in (project / "train.py").read_text()  # the user's file untouched


def test_provenance_is_recorded_with_secrets_redacted(project, store, monkeypatch):
    write(project, "train.py", "x = 1\nprint('ok')\n")
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run(
        [
            "git",
            "-c",
            "user.email=a@b",
            "-c",
            "user.name=a",
            "commit",
            "-qm",
            "init",
            "--allow-empty",
        ],
        cwd=project,
        check=True,
    )
    subprocess.run(["git", "add", "train.py"], cwd=project, check=True)
    monkeypatch.setenv("MY_API_TOKEN", "hunter2")
    monkeypatch.setenv("PLAIN_SETTING", "visible")
    run = gj.run("train.py", store=store, echo=False)
    prov = json.load(open(os.path.join(store.meta_dir(run.id), "provenance.json")))
    assert prov["env"]["MY_API_TOKEN"] == "<redacted>" and prov["env"]["PLAIN_SETTING"] == "visible"
    assert "hunter2" not in json.dumps(prov)
    assert (
        len(prov["git"]["commit"]) == 40
        and prov["git"]["dirty"] is True
        and "train.py" in prov["git"]["diff"]
    )
    assert "pandas" in {k.lower() for k in prov["packages"]}
    assert prov["python"]["version"].count(".") == 2 and prov["hostname"]


def test_argparse_flags(project, store):
    write(
        project,
        "args.py",
        """
        import argparse
        p = argparse.ArgumentParser()
        p.add_argument("--lr", type=float, default=0.1)
        p.add_argument("--layers", type=int, default=2)
        p.add_argument("--use-bn", action="store_true")
        a = p.parse_args()
        print(f"lr={a.lr} layers={a.layers} bn={a.use_bn}")
    """,
    )
    run = gj.run("args.py", {"layers": "4", "use_bn": True}, store=store, echo=False)
    assert run.output() == "lr=0.1 layers=4 bn=True\n"
    assert run.flags == {"lr": 0.1, "layers": 4, "use_bn": True}
    help_text = cli("run", "args.py", "--help-op", home=store.home).stdout
    assert "argparse" in help_text and "layers" in help_text and "0.1" in help_text


def test_flag_values_never_pass_through_a_shell(project, store):
    write(project, "echo.py", "name = 'x'\nprint(repr(name))\n")
    run = gj.run("echo.py", {"name": "$(touch pwned); `id`"}, store=store, echo=False)
    assert run.output() == "'$(touch pwned); `id`'\n"
    assert not (project / "pwned").exists()


def test_bad_input_creates_no_run(project, store):
    write(project, "train.py", TRAIN)
    with pytest.raises(FlagError, match="unknown flag 'lrr'"):
        gj.run("train.py", {"lrr": 1}, store=store)
    with pytest.raises(FlagError, match="expects an int"):
        gj.run("train.py", {"epochs": "2.5"}, store=store)
    with pytest.raises(GuildError, match="no such script: nope.py"):
        gj.run("nope.py", store=store)
    write(project, "broken.py", "def (:\n")
    with pytest.raises(GuildError, match="broken.py, line 1: syntax error"):
        gj.run("broken.py", store=store)
    assert store.list_rows(deleted=None) == []


def test_a_failing_script_ends_failed_with_its_exit_code(project, store):
    write(project, "fail.py", "import sys\nprint('partial')\nsys.exit(3)\n")
    run = gj.run("fail.py", store=store, echo=False)
    assert run.status == "failed" and run.exit_code == 3 and run.reason == "exit code 3"
    assert run.output() == "partial\n"
    write(project, "crash.py", "raise RuntimeError('boom')\n")
    run = gj.run("crash.py", store=store, echo=False)
    assert run.status == "failed" and run.exit_code == 1 and "RuntimeError: boom" in run.output()


def test_cli_run_exit_codes_and_errors(project, store):
    write(project, "train.py", TRAIN)
    r = cli("run", "train.py", "lr=0.2", "-l", "from cli", home=store.home)
    assert r.returncode == 0 and r.stdout.startswith("loss: 0.2\n")
    write(project, "fail.py", "raise SystemExit(2)\n")
    r = cli("run", "fail.py", home=store.home)
    assert r.returncode == 1 and "failed: exit code 2" in r.stderr
    r = cli("run", "train.py", "lr=fast", home=store.home)
    assert (
        r.returncode == 1
        and r.stderr.strip() == "guild-jupyter: error: flag 'lr' expects a float, got 'fast'"
    )
    assert len(store.list_rows()) == 2


def test_custom_output_scalar_patterns(project, store):
    write(project, "fit.py", "print('Accuracy=0.91 after epoch 3')\nprint('loss: 0.5')\n")
    run = gj.run("fit.py", store=store, echo=False,
                 output_scalars=[{"acc": r"Accuracy=(\value)"}, r"^(\key): (\value)$"])
    row = gj.runs(store=store).iloc[0]
    assert row["scalars.acc"] == 0.91 and row["scalars.loss"] == 0.5 and run.status == "completed"
    with pytest.raises(GuildError, match="invalid output-scalars pattern"):
        gj.run("fit.py", store=store, output_scalars=["(unclosed"])
    assert len(store.list_rows()) == 1
