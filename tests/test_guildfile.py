"""guild.yml operations: parsing, validation with line numbers, and real runs."""

import json
import os
import textwrap

import pytest

import guild_jupyter as gj
from guild_jupyter.errors import FlagError, GuildError
from guild_jupyter.guild_compat import guildfile as gf
from guild_jupyter.guild_compat.guildfile_op import GuildfileOperation
from tests.conftest import cli


def write(d, name, text):
    p = d / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return p


def op(project, name):
    return GuildfileOperation.find(name, cwd=project)


GLOBALS_SCRIPT = """
import os
lr = 0.1
epochs = 2
opt = "adam"
print("lr=%s epochs=%s opt=%s" % (lr, epochs, opt))
for step in range(1, epochs + 1):
    print("step: %d" % step)
    print("loss: %s" % (lr / step))
print("env", os.environ.get("FLAG_LR"), os.environ.get("MY_LR"), os.environ.get("EXTRA"))
"""

ARGS_SCRIPT = """
import argparse, json
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--batch-size", type=int, default=8)
p.add_argument("--fast", action="store_true")
p.add_argument("--secret", default="x")
args, rest = p.parse_known_args()
print(json.dumps({"args": vars(args), "rest": rest}))
"""


# parsing ----------------------------------------------------------------------------------
def test_operation_only_format_flags_and_defaults(project):
    write(
        project,
        "guild.yml",
        """
        train:
          description: Train it
          main: train
          flags:
            lr: 0.1
            epochs:
              default: 2
              type: int
              min: 1
              max: 10
            opt:
              default: adam
              choices:
                - value: adam
                  description: Adam
                - sgd
            data:
              required: yes
              type: string
    """,
    )
    write(project, "train.py", GLOBALS_SCRIPT)
    o = op(project, "train")
    d = o.flag_defs()
    assert d["lr"].default == 0.1 and d["lr"].type == "float"
    assert (d["epochs"].min, d["epochs"].max, d["epochs"].type) == (1, 10, "int")
    assert d["opt"].choices == ["adam", "sgd"]
    assert d["data"].required and d["data"].type == "str"
    assert o.kind == "guildfile" and o.name == "train"
    assert "Train it" in o.help_text() and "choices: adam, sgd" in o.help_text()
    assert "opt='adam': Adam" in o.help_text()


def test_full_format_models_configs_and_names(project):
    write(
        project,
        "guild.yml",
        """
        - config: base
          operation-defaults:
            output-scalars: no
          operations:
            prepare:
              exec: python -c "print(1)"
        - model: cnn
          extends: base
          operations:
            train:
              main: train
        - model: ''
          operations:
            evaluate:
              exec: python -c "print(2)"
    """,
    )
    write(project, "train.py", GLOBALS_SCRIPT)
    g = gf.load(project / "guild.yml")
    assert sorted(g.ops) == ["cnn:prepare", "cnn:train", "evaluate"]
    assert g.find("train").full_name == "cnn:train"
    assert (
        g.find("cnn:prepare").get("output-scalars") == "no"
        or g.find("cnn:prepare").get("output-scalars") is False
    )
    with pytest.raises(GuildError, match="no operation 'nope'.*operations: cnn:prepare"):
        g.find("nope")


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("train:\n  main: train\n  flags: [1,\n", 4, "malformed YAML"),
        ("train:\n  main: train\n  colour: red\n", 3, "unknown attribute 'colour'"),
        (
            "train:\n  main: train\n  flags:\n    lr:\n      defalt: 1\n",
            5,
            "unknown attribute 'defalt'",
        ),
        (
            "train:\n  main: train\n  flags:\n    lr:\n      type: complex\n",
            5,
            "unknown type 'complex'",
        ),
        (
            "train:\n  main: train\n  flags:\n    o:\n      default: c\n      choices: [a, b]\n",
            5,
            "'c' is not one of",
        ),
        (
            "train:\n  main: train\n  flags:\n    n:\n      default: 20\n      max: 10\n",
            5,
            "above the maximum",
        ),
        ("a:\n  main: x\n\nb:\n  description: nothing to run\n", 5, "needs main, exec or steps"),
        ("t:\n  main: x\n  exec: y\n", 3, "either main or exec"),
        ("t:\n  main: x\n  output-scalars: 'loss: (\\value'\n", 3, "invalid output-scalars"),
        ("t:\n  main: x\n  flags-dest: nowhere\n", 3, "flags-dest must be"),
        ("t:\n  main: x\nt:\n  main: y\n", 3, "duplicate key 't'"),
        (
            "- model: m\n  operations:\n    t:\n      main: x\n- config: c\n- 3\n",
            1,
            "must be a map",
        ),
    ],
)
def test_malformed_guildfiles_name_the_line(project, store, text, line, message):
    (project / "guild.yml").write_text(text)
    with pytest.raises(GuildError) as e:
        gj.run("t", store=store)
    assert str(e.value).startswith(f"guild.yml, line {line}:"), str(e.value)
    assert message in str(e.value)
    assert "\n" not in str(e.value)
    assert store.list_runs() == []


# flag validation before anything is recorded ------------------------------------------------
@pytest.mark.parametrize(
    "flags, message",
    [
        ({"opt": "rmsprop"}, "'rmsprop' is not one of 'adam', 'sgd'"),
        ({"epochs": 0}, "below the minimum 1"),
        ({"epochs": 11}, "above the maximum 10"),
        ({"epochs": "many"}, "expects an int"),
        ({"lrr": 1}, "unknown flag 'lrr'.*did you mean 'lr'"),
    ],
)
def test_bad_flag_values_create_no_run(project, store, flags, message):
    write(
        project,
        "guild.yml",
        """
        train:
          main: train
          flags:
            lr: 0.1
            epochs: {default: 2, min: 1, max: 10}
            opt: {default: adam, choices: [adam, sgd]}
    """,
    )
    write(project, "train.py", GLOBALS_SCRIPT)
    with pytest.raises(FlagError, match=message):
        gj.run("train", flags, store=store)
    assert store.list_runs() == []


def test_missing_required_flag(project, store):
    write(
        project,
        "guild.yml",
        """
        train:
          main: train
          flags:
            lr: {required: yes, type: float}
    """,
    )
    write(project, "train.py", GLOBALS_SCRIPT)
    with pytest.raises(FlagError, match="flag 'lr' is required by train"):
        gj.run("train", store=store)
    assert store.list_runs() == []
    run = gj.run("train", {"lr": 0.5}, store=store)
    assert run.status == "completed"


# runs ----------------------------------------------------------------------------------------
def test_main_with_globals_label_tags_env_and_scalars(project, store):
    write(
        project,
        "guild.yml",
        """
        train:
          main: train
          flags-dest: globals
          label: lr=${lr} opt=${opt}
          tags: [guildfile]
          env:
            EXTRA: hello
          flags:
            lr: 0.1
            epochs: 2
            opt:
              default: adam
              env-name: MY_OPT
            renamed:
              default: 1
              env-name: MY_LR
    """,
    )
    write(project, "train.py", GLOBALS_SCRIPT)
    run = gj.run("train", {"lr": 0.4, "epochs": 3}, store=store)
    assert run.status == "completed", run.output()
    assert run.kind == "guildfile"
    assert run.flags == {"lr": 0.4, "epochs": 3, "opt": "adam", "renamed": 1}
    out = run.output()
    assert "lr=0.4 epochs=3 opt=adam" in out
    assert "env 0.4 1 hello" in out
    run = store.load_run(run.id)
    assert run.label == "lr=0.4 opt=adam"
    assert run.tags == ["guildfile"]
    row = gj.runs(store=store).iloc[0]
    assert row["scalars.loss"] == pytest.approx(0.4 / 3)
    pts = store.scalars_frame([run.id])
    assert sorted(pts[pts.key == "loss"].step) == [1, 2, 3]
    assert "lr = 0.1" in (project / "train.py").read_text()  # the project file untouched
    snap = os.path.join(store.meta_dir(run.id), "sourcecode", "train.py")
    assert "lr = 0.4" in open(snap).read()


def test_main_with_args_arg_name_switch_skip_and_main_args(project, store):
    write(
        project,
        "guild.yml",
        """
        train:
          main: pkg.train --extra 1
          flags-dest: args
          flags:
            lr: 0.1
            batch:
              default: 8
              arg-name: batch-size
            fast:
              default: no
              arg-switch: yes
            secret:
              default: hidden
              arg-skip: yes
    """,
    )
    write(project, "pkg/__init__.py", "")
    write(project, "pkg/train.py", ARGS_SCRIPT)
    run = gj.run("train", {"batch": 32, "fast": True}, store=store)
    assert run.status == "completed", run.output()
    got = json.loads(run.output().strip().splitlines()[-1])
    assert got["args"] == {"lr": 0.1, "batch_size": 32, "fast": True, "secret": "x"}
    assert got["rest"] == ["--extra", "1"]
    run = gj.run("train", {"fast": False}, store=store)
    got = json.loads(run.output().strip().splitlines()[-1])
    assert got["args"]["fast"] is False


def test_flags_dest_defaults_to_what_the_script_uses(project, store):
    write(
        project,
        "guild.yml",
        """
        a: {main: argsy, flags: {lr: 0.3}}
        g: {main: globy, flags: {lr: 0.3}}
    """,
    )
    write(project, "argsy.py", ARGS_SCRIPT)
    write(project, "globy.py", "lr = 1\nprint('lr', lr)\n")
    assert json.loads(gj.run("a", store=store).output().splitlines()[-1])["args"]["lr"] == 0.3
    assert "lr 0.3" in gj.run("g", store=store).output()


def test_flags_import_all_and_names(project, store):
    write(
        project,
        "guild.yml",
        """
        all: {main: train, flags-import: all}
        some: {main: train, flags-import: [lr], flags: {epochs: {default: 1, max: 5}}}
        none: {main: train}
    """,
    )
    write(project, "train.py", GLOBALS_SCRIPT)
    assert set(op(project, "all").flag_defs()) == {"lr", "epochs", "opt"}
    assert set(op(project, "some").flag_defs()) == {"lr", "epochs"}
    assert op(project, "some").flag_defs()["epochs"].max == 5
    assert op(project, "none").flag_defs() == {}
    run = gj.run("all", {"opt": "sgd"}, store=store)
    assert "opt=sgd" in run.output()


def test_exec_tokens_never_pass_through_a_shell(project, store):
    write(
        project,
        "guild.yml",
        """
        show:
          exec: python show.py --name=${name} ${flag_args} "fixed arg"
          flags:
            name: x
            n: 1
    """,
    )
    write(project, "show.py", "import sys, json\nprint(json.dumps(sys.argv[1:]))\n")
    evil = "a b; touch pwned $(touch pwned2)"
    run = gj.run("show", {"name": evil}, store=store)
    assert run.status == "completed", run.output()
    argv = json.loads(run.output().strip().splitlines()[-1])
    assert argv == [f"--name={evil}", "--name", evil, "--n", "1", "fixed arg"]
    assert not list(project.glob("pwned*"))
    assert not os.path.exists(os.path.join(store.run_dir(run.id), "pwned"))


def test_exec_unknown_reference_is_an_error(project, store):
    write(project, "guild.yml", "t:\n  exec: python x.py ${nope}\n")
    write(project, "x.py", "")
    with pytest.raises(
        GuildError, match=r"line 2: operation 't': exec refers to unknown flag \$\{nope\}"
    ):
        gj.run("t", store=store)
    assert store.list_runs() == []


def test_output_scalars_templates_maps_and_no(project, store):
    write(
        project,
        "guild.yml",
        """
        custom:
          exec: python out.py
          output-scalars:
            - '^metric (\\key)=(\\value)$'
            - accuracy: 'acc was (\\value)'
        quiet:
          exec: python out.py
          output-scalars: no
    """,
    )
    write(project, "out.py", "print('metric f1=0.5')\nprint('acc was 0.9')\nprint('loss: 3')\n")
    run = gj.run("custom", store=store)
    row = gj.runs(store=store).iloc[0]
    assert row["scalars.f1"] == 0.5 and row["scalars.accuracy"] == 0.9
    assert "scalars.loss" not in row or row.isna()["scalars.loss"]
    run = gj.run("quiet", store=store)
    assert store.scalars_frame([run.id]).empty


def test_sourcecode_rules(project, store):
    write(
        project,
        "guild.yml",
        """
        t:
          main: train
          sourcecode:
            - exclude: 'data/*'
            - exclude: notes.txt
    """,
    )
    write(project, "train.py", "print('ok')\n")
    write(project, "helper.py", "X = 1\n")
    write(project, "notes.txt", "n\n")
    write(project, "data/big.csv", "1,2\n")
    run = gj.run("t", store=store)
    snap = os.path.join(store.meta_dir(run.id), "sourcecode")
    files = sorted(
        os.path.relpath(os.path.join(d, f), snap) for d, _, fs in os.walk(snap) for f in fs
    )
    assert files == ["guild.yml", "helper.py", "train.py"]


def test_sourcecode_root_dir_rules_and_only_these(project, store):
    write(
        project,
        "guild.yml",
        """
        rooted:
          main: train
          sourcecode:
            root: src
            select:
              - exclude: {dir: data}
        only:
          exec: python -c "print(1)"
          sourcecode:
            - exclude: '*'
            - '*.cfg'
    """,
    )
    write(project, "src/train.py", "print('ok')\n")
    write(project, "src/util.py", "U = 1\n")
    write(project, "src/data/rows.txt", "1\n")
    write(project, "top.py", "T = 1\n")
    write(project, "a.cfg", "x=1\n")

    def snap(run):
        d = os.path.join(store.meta_dir(run.id), "sourcecode")
        return sorted(os.path.relpath(os.path.join(r, f), d) for r, _, fs in os.walk(d) for f in fs)

    run = gj.run("rooted", store=store)
    assert run.status == "completed", run.output()
    assert snap(run) == ["train.py", "util.py"]
    assert snap(gj.run("only", store=store)) == ["a.cfg"]


def test_guild_yml_found_from_a_subdirectory_and_cli(project, home):
    write(
        project,
        "guild.yml",
        """
        train:
          description: A trainer
          main: train
          flags:
            lr: {default: 0.1, description: learning rate}
            opt: {default: adam, choices: [adam, sgd]}
    """,
    )
    write(project, "train.py", GLOBALS_SCRIPT)
    sub = project / "notebooks"
    sub.mkdir()
    r = cli("ops", home=home, cwd=sub)
    assert r.returncode == 0, r.stderr
    assert "train  A trainer" in r.stdout
    assert "lr" in r.stdout and "learning rate" in r.stdout and "choices: adam, sgd" in r.stdout
    r = cli("run", "train", "--help-op", home=home, cwd=sub)
    assert (
        r.returncode == 0
        and "Usage: guild-jupyter run train" in r.stdout
        and "A trainer" in r.stdout
    )
    r = cli("run", "nosuch", home=home, cwd=sub)
    assert r.returncode != 0 and "no operation 'nosuch'" in r.stderr
    r = cli("run", "train", "lr=0.7", "-q", home=home, cwd=sub)
    assert r.returncode == 0, r.stderr
    r = cli("run", "train", "opt=bad", home=home, cwd=sub)
    assert r.returncode != 0 and "'bad' is not one of" in r.stderr
    r = cli("runs", "--json", home=home, cwd=sub)
    runs = json.loads(r.stdout)
    assert len(runs) == 1 and runs[0]["op"] == "train"


def test_no_guild_yml_keeps_the_old_message(project, store):
    with pytest.raises(GuildError, match="expected a Python script"):
        gj.run("train", store=store)


def test_objective_and_default_max_trials(project):
    write(
        project,
        "guild.yml",
        """
        a: {exec: python x.py, objective: loss, default-max-trials: 5}
        b: {exec: python x.py, objective: -acc}
        c: {exec: python x.py, objective: {maximize: f1}}
        d: {exec: python x.py}
    """,
    )
    assert op(project, "a").sweep_defaults() == {
        "objective": "loss",
        "minimize": True,
        "max_trials": 5,
    }
    assert op(project, "b").sweep_defaults() == {"objective": "acc", "minimize": False}
    assert op(project, "c").sweep_defaults() == {"objective": "f1", "minimize": False}
    assert op(project, "d").sweep_defaults() == {}
    write(project, "guild.yml", "a:\n  exec: x\n  objective: {best: f1}\n")
    with pytest.raises(GuildError, match="line 3: operation 'a': objective must be"):
        op(project, "a")
    write(project, "guild.yml", "a:\n  exec: x\n  default-max-trials: 0\n")
    with pytest.raises(GuildError, match="line 3: .*default-max-trials must be a positive"):
        op(project, "a")


def test_flags_dest_dict_and_global(project, store):
    write(
        project,
        "guild.yml",
        """
        d:
          main: train
          flags-dest: dict:params
          flags-import: all
        g:
          main: train
          flags-dest: global:params
          flags: {lr: 0.9, extra: 1}
        missing:
          main: train
          flags-dest: dict:nothing
    """,
    )
    write(
        project,
        "train.py",
        """
        params = {"lr": 0.1, "layers": 2}  # the flags
        print("params", sorted(params.items()))
    """,
    )
    assert {n: d.default for n, d in op(project, "d").flag_defs().items()} == {
        "lr": 0.1,
        "layers": 2,
    }
    run = gj.run("d", {"layers": 5}, store=store)
    assert "params [('layers', 5), ('lr', 0.1)]" in run.output(), run.output()
    run = gj.run("g", store=store)
    assert "params [('extra', 1), ('layers', 2), ('lr', 0.9)]" in run.output(), run.output()
    with pytest.raises(GuildError, match="line 11: .*no top-level nothing ="):
        gj.run("missing", store=store)
    assert len(store.list_runs()) == 2


def test_flags_dest_config_file(project, store):
    write(
        project,
        "guild.yml",
        """
        y: {main: train, flags-dest: 'config:conf.yml', flags-import: all, flags: {lr: {max: 1}}}
        j: {main: trainj, flags-dest: 'config:conf.json', flags: {lr: 0.2}}
    """,
    )
    write(project, "conf.yml", "lr: 0.1\nname: base\n")
    write(
        project,
        "train.py",
        "import yaml\nprint('conf', sorted(yaml.safe_load(open('conf.yml')).items()))\n",
    )
    write(project, "trainj.py", "import json\nprint('conf', json.load(open('conf.json')))\n")
    assert set(op(project, "y").flag_defs()) == {"lr", "name"}
    with pytest.raises(FlagError, match="above the maximum"):
        gj.run("y", {"lr": 2}, store=store)
    run = gj.run("y", {"lr": 0.5}, store=store)
    assert "conf [('lr', 0.5), ('name', 'base')]" in run.output(), run.output()
    assert "lr: 0.1" in (project / "conf.yml").read_text()  # the project's file untouched
    run = gj.run("j", store=store)
    assert "conf {'lr': 0.2}" in run.output(), run.output()
    write(project, "guild.yml", "a:\n  main: x\n  flags-dest: config:c.ini\n")
    with pytest.raises(GuildError, match="line 3: .*must be .yml, .yaml or .json"):
        op(project, "a")
