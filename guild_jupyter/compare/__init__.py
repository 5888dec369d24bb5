"""Comparing runs: aggregated DataFrames, plotly figures, diffs, HTML summaries.

Importing this package registers the ``df.guild`` pandas accessor (see
:mod:`guild_jupyter.compare.accessor`). Plot functions live in
:mod:`guild_jupyter.compare.plots` (also ``guild_jupyter.plots``) and return
``plotly.graph_objects.Figure``, Optuna-style: plain functions, no state.
"""

from __future__ import annotations

import sys as _sys
import types as _types

from guild_jupyter.compare import accessor as _accessor  # noqa: F401  (registers df.guild)
from guild_jupyter.compare.aggregates import AGGREGATES, compare
from guild_jupyter.compare.diff import RunDiff, diff

__all__ = ["AGGREGATES", "RunDiff", "compare", "diff"]


class _CallableModule(_types.ModuleType):
    """Importing this package sets ``guild_jupyter.compare`` to the package itself (Python
    binds a submodule on its parent), which would shadow the public function
    ``guild_jupyter.compare(...)``; so the package is callable and calls :func:`compare`."""

    def __call__(self, *args, **kwargs):
        return compare(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
