"""Run the quickstart example end to end: ``python -m guild_jupyter.demo``.

Executes ``examples/quickstart.ipynb`` (or the notebook given as the first
argument) with ``jupyter nbconvert --to notebook --execute --stdout`` and exits
with its status. Without a notebook it says so and exits 0.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEFAULT_NOTEBOOK = Path("examples") / "quickstart.ipynb"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    notebook = Path(args[0]) if args else DEFAULT_NOTEBOOK
    if not notebook.is_file():
        print(f"guild-jupyter demo: {notebook} does not exist yet; nothing to run.")
        return 0
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--stdout",
        str(notebook),
    ]
    print("guild-jupyter demo:", " ".join(cmd[2:]), file=sys.stderr)
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
