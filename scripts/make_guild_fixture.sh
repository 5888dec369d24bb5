#!/usr/bin/env bash
# Regenerate tests/fixtures/guild_home: a few runs really produced by Guild AI 0.9.0.
#
# Usage: scripts/make_guild_fixture.sh [PYTHON]   (default python3; checked with 3.11)
#        GUILD_FIXTURE_DEST=/tmp/x scripts/make_guild_fixture.sh   (write elsewhere)
#
# What it does:
#   1. creates a throwaway venv in a temp dir and installs guildai==0.9.0 with the pins
#      Guild 0.9.0 needs today ('pandas<3', 'numpy<2'; see docs FIELD-NOTES);
#   2. writes a tiny project (train.py + guild.yml) in a temp dir and runs a few
#      `guild run` commands into a temp GUILD_HOME (NO_PIP_FREEZE=1 keeps it fast):
#      completed runs with labels/tags, a failed run (exit 3), a terminated run;
#   3. saves `guild compare --csv -` (all runs, incl. errors) as expected.csv;
#   4. copies GUILD_HOME/runs into tests/fixtures/guild_home/runs (the test imports it).
# The test (tests/test_guild_import.py) never needs Guild installed.
set -euo pipefail
PY=${1:-python3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
DEST="${GUILD_FIXTURE_DEST:-$HERE/tests/fixtures/guild_home}"  # override to try it elsewhere
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

"$PY" -m venv "$TMP/venv"
"$TMP/venv/bin/pip" install -q guildai==0.9.0 'pandas<3' 'numpy<2' 'setuptools<70'
GUILD="$TMP/venv/bin/guild"
export GUILD_HOME="$TMP/home" NO_PIP_FREEZE=1 NO_IMPORT_FLAGS_CACHE=1
mkdir -p "$GUILD_HOME" "$TMP/proj"
cd "$TMP/proj"

cat > train.py <<'PY'
import sys, time
lr = 0.1
epochs = 3
opt = "adam"
fail = 0
for step in range(1, epochs + 1):
    loss = round(1.0 / (step * (1 + lr)), 4)
    acc = round(1 - loss / 2, 4)
    print("step: %d" % step)
    print("loss: %s" % loss)
    print("acc: %s" % acc)
    sys.stdout.flush()
print("opt was", opt, file=sys.stderr)
if fail:
    sys.exit(fail)
PY

cat > guild.yml <<'YML'
train:
  description: Toy trainer
  main: train
  flags:
    lr: 0.1
    epochs: 3
    opt:
      default: adam
      choices: [adam, sgd]
    fail: 0
YML

"$GUILD" run -y train lr=0.1 epochs=2 --label first -t toy
"$GUILD" run -y train lr=0.01 epochs=3 opt=sgd --label second
"$GUILD" run -y train.py lr=0.5 epochs=1 --tag script
"$GUILD" run -y train lr=0.2 epochs=2 fail=3 --label broken || true
# A terminated run: stop it while it sleeps.
cat > slow.py <<'PY'
import time
n = 1
print("loss: 0.9")
import sys; sys.stdout.flush()
time.sleep(60)
PY
"$GUILD" run -y slow.py --background --label stopped
sleep 4
"$GUILD" stop -y || true
sleep 2

"$GUILD" runs -a
rm -rf "$DEST"
mkdir -p "$DEST"
"$GUILD" compare --csv - -a > "$DEST/expected.csv" 2>/dev/null || "$GUILD" compare --csv - > "$DEST/expected.csv"
"$GUILD" --version > "$DEST/GUILD_VERSION"
cp -a "$GUILD_HOME/runs" "$DEST/runs"
# Drop what the import does not read and that only bloats the fixture.
find "$DEST/runs" -name pip_freeze -delete
# The env attr records the whole environment of the machine: keep only Guild's own
# and the flag variables (no host paths, no credentials in a committed fixture).
"$TMP/venv/bin/python" - "$DEST/runs" <<'PY'
import pathlib, sys, yaml
for p in pathlib.Path(sys.argv[1]).glob("*/.guild/attrs/env"):
    env = yaml.safe_load(p.read_text()) or {}
    keep = {k: v for k, v in env.items() if k.startswith(("FLAG_", "GUILD_OP", "FLAGS_DEST", "RUN_ID"))}
    p.write_text(yaml.safe_dump(keep, default_flow_style=False))
PY
rm -rf "$DEST"/runs/*/.guild/sourcecode/__pycache__
echo "fixture written to $DEST"
cat "$DEST/expected.csv"
