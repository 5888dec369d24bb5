"""Run the quickstart notebook end to end and print what it shows: ``python -m guild_jupyter.demo``.

``make demo`` runs this. Why it is built this way:

- nbclient executes the notebook as JupyterLab would (kernel ``python3``, working
  directory = the notebook's folder, so ``gj.run("train.py")`` finds the script
  beside it), and the demo prints the cells' text (stream output, the
  ``text/plain`` of results, the final comparison table) as each cell finishes:
  a person reads the demo, nobody reads a notebook's JSON.
- The runs go to a fresh temporary store unless ``GUILD_JUPYTER_HOME`` is set: a
  demo must not add runs to the user's own ``~/.guild-jupyter`` unasked. The
  temporary store is left in place (its path is printed) so the runs can be
  explored afterwards with the CLI.
- Tables are printed as pandas' text, so before the notebook's own cells the demo
  runs one unprinted setup cell that widens pandas' text display to the terminal:
  otherwise the comparison table wraps at 80 columns. The notebook file is not changed.
- A failing cell ends the demo with exit status 1 and one line naming the cell.

Usage: ``python -m guild_jupyter.demo [NOTEBOOK]`` (default ``examples/quickstart.ipynb``).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

CELL_TIMEOUT = 300  # seconds per cell
_CHECKOUT_NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "quickstart.ipynb"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_SETUP = "demo-setup"  # metadata key of the injected, unprinted setup cell


def default_notebook() -> Path:
    """``examples/quickstart.ipynb`` of the current directory, else of this source checkout."""
    here = Path("examples") / "quickstart.ipynb"
    return here if here.is_file() else _CHECKOUT_NOTEBOOK


def choose_store() -> str:
    """The store the demo's runs go to: ``$GUILD_JUPYTER_HOME`` if set, else a new temp dir."""
    home = os.environ.get("GUILD_JUPYTER_HOME")
    if home:
        print(f"guild-jupyter demo: runs go to GUILD_JUPYTER_HOME={home}")
        return home
    home = tempfile.mkdtemp(prefix="guild-jupyter-demo-")
    os.environ["GUILD_JUPYTER_HOME"] = home  # the kernel inherits it
    print(f"guild-jupyter demo: runs go to a fresh temporary store, {home}")
    return home


def setup_source() -> str:
    """Code of the unprinted first cell: pandas' text tables as wide as the terminal."""
    width = max(100, shutil.get_terminal_size((160, 24)).columns)
    return (
        "try:\n"
        "    import pandas as _pd\n"
        f"    _pd.set_option('display.width', {width})\n"
        "    _pd.set_option('display.max_columns', 50)\n"
        "    del _pd\n"
        "except ImportError:\n"
        "    pass\n"
    )


def output_text(output: Any) -> str:
    """The text a person would see for one output (``""`` for errors: reported apart)."""
    kind = output.get("output_type")
    if kind == "stream":
        return str(output.get("text", ""))
    if kind in ("execute_result", "display_data"):
        data = output.get("data", {})
        if "text/plain" in data:
            return str(data["text/plain"]) + "\n"
        kinds = ["plotly figure" if "plotly" in m else m for m in data]
        return f"[{', '.join(kinds) or 'empty output'}: not shown as text]\n"
    return ""


def first_line(source: str, width: int = 76) -> str:
    lines = [line for line in source.splitlines() if line.strip()]
    text = lines[0] if lines else ""
    more = len(lines) > 1
    if len(text) > width:
        text, more = text[: width - 3], True
    return text + (" ..." if more else "")


class _Printer:
    """nbclient hooks: print each code cell's outputs once it has run, remember which cell runs."""

    def __init__(self) -> None:
        self.cell_no = 0  # 1-based number among code cells
        self.source = ""

    def on_cell_start(self, cell: Any, cell_index: int, **_: Any) -> None:
        if cell.get("cell_type") == "code" and not cell.metadata.get(_SETUP):
            self.cell_no += 1
            self.source = first_line(cell.get("source", ""))

    def on_cell_executed(self, cell: Any, cell_index: int, **_: Any) -> None:
        if cell.metadata.get(_SETUP):
            return
        text = "".join(output_text(o) for o in cell.get("outputs", []))
        print(f"\nIn [{self.cell_no}]: {self.source}")
        if text:
            sys.stdout.write(_ANSI.sub("", text))
        sys.stdout.flush()

    def where(self) -> str:
        return f"cell {self.cell_no} ({self.source!r})" if self.cell_no else "starting the kernel"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    notebook = (Path(args[0]) if args else default_notebook()).resolve()
    if not notebook.is_file():
        print(f"guild-jupyter demo: error: no notebook at {notebook}", file=sys.stderr)
        return 1
    try:
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError
    except ImportError as e:
        print(f"guild-jupyter demo: error: {e.name} is missing; run `make install` "
              "(or pip install nbclient ipykernel)", file=sys.stderr)
        return 1
    home = choose_store()
    print(f"guild-jupyter demo: executing {notebook} (kernel python3, cwd {notebook.parent})")
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(setup_source(), metadata={_SETUP: True}))
    printer = _Printer()
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3",
        resources={"metadata": {"path": str(notebook.parent)}},
        on_cell_start=printer.on_cell_start, on_cell_executed=printer.on_cell_executed,
    )
    try:
        client.execute()
    except CellExecutionError as e:
        evalue = (e.evalue or "").strip().splitlines()
        print(f"guild-jupyter demo: error: {printer.where()} failed: {e.ename}"
              f"{': ' + evalue[0] if evalue else ''}", file=sys.stderr)
        return 1
    except Exception as e:  # kernel died, cell timeout, kernel would not start
        message = _ANSI.sub("", str(e)).strip().splitlines()
        print(f"guild-jupyter demo: error: {printer.where()} failed: {type(e).__name__}"
              f"{': ' + message[0] if message else ''}", file=sys.stderr)
        return 1
    print(f"\nguild-jupyter demo: done. Explore the runs with:\n"
          f"  GUILD_JUPYTER_HOME={home} guild-jupyter runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
