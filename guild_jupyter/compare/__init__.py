"""Comparing runs: aggregated DataFrames, plotly figures, diffs, HTML summaries.

Importing this package registers the ``df.guild`` pandas accessor (see
:mod:`guild_jupyter.compare.accessor`). Plot functions live in
:mod:`guild_jupyter.compare.plots` (also ``guild_jupyter.plots``) and return
``plotly.graph_objects.Figure``, Optuna-style: plain functions, no state.
"""

from __future__ import annotations

from guild_jupyter.compare import accessor as _accessor  # noqa: F401  (registers df.guild)
from guild_jupyter.compare.aggregates import AGGREGATES, compare
from guild_jupyter.compare.diff import RunDiff, diff

__all__ = ["AGGREGATES", "RunDiff", "compare", "diff"]
