"""``df.guild``: comparison helpers on a ``runs()``/``compare()`` DataFrame.

Registered when :mod:`guild_jupyter.compare` is imported (``guild_jupyter.compare``,
``guild_jupyter.plots`` and ``guild_jupyter.diff`` all import it). Column names
may be given short (``loss``) or full (``scalars.loss``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from guild_jupyter.compare import plots


@pd.api.extensions.register_dataframe_accessor("guild")
class GuildAccessor:
    def __init__(self, df: pd.DataFrame) -> None:
        if "id" not in df.columns:
            raise AttributeError("df.guild needs a runs() frame (an 'id' column)")
        self._df = df

    def plot_scalars(self, keys: str | list[str] | None = None, *, x: str = "step",
                     max_points: int = plots.MAX_POINTS, store: Any = None):
        """Scalar curves of these runs (one trace per run and key)."""
        return plots.plot_scalars(self._df, keys, x=x, max_points=max_points, store=store)

    def parallel_coordinates(self, color: str | None = None, columns: list[str] | None = None):
        return plots.parallel_coordinates(self._df, color=color, columns=columns)

    def scatter(self, x: str, y: str, color: str | None = None):
        return plots.scatter(self._df, x, y, color=color)

    def best(self, scalar: str, mode: str = "min", n: int | None = None) -> pd.Series | pd.DataFrame:
        """The run row with the lowest (``mode="min"``) or highest (``"max"``) ``scalar``;
        with ``n``, the best ``n`` rows. Runs without the scalar are ignored."""
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        col = plots._col(self._df, scalar)
        scored = self._df[self._df[col].notna()]
        if scored.empty:
            raise ValueError(f"no run has a value for {scalar!r}")
        ordered = scored.sort_values(col, ascending=(mode == "min"), kind="stable")
        return ordered.head(n) if n is not None else ordered.iloc[0]

    def runs(self, store: Any = None) -> list:
        """The :class:`Run` objects of these rows."""
        from guild_jupyter.experiment.api import default_store

        store = store or default_store()
        return [store.load_run(i) for i in self._df["id"]]
