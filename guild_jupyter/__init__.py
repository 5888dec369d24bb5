"""guild-jupyter: experiment tracking in the spirit of Guild AI, native to Jupyter.

The public API is loaded lazily so that ``import guild_jupyter`` inside a run
(for :func:`log`) costs milliseconds, not the price of pandas.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing ``typing`` costs a run's process several ms
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "log": "guild_jupyter.tracking.logger",
    "checkpoint": "guild_jupyter.tracking.logger",
    "run": "guild_jupyter.experiment.api",
    "runs": "guild_jupyter.experiment.api",
    "scalars": "guild_jupyter.experiment.api",
    "get_run": "guild_jupyter.experiment.api",
    "stop": "guild_jupyter.experiment.api",
    "sweep": "guild_jupyter.experiment.api",
    "restart": "guild_jupyter.experiment.api",
    "Run": "guild_jupyter.model.run",
    "RunStatus": "guild_jupyter.model.status",
    "RunStore": "guild_jupyter.storage.store",
    "GuildError": "guild_jupyter.errors",
    "compare": "guild_jupyter.experiment.api",
    "diff": "guild_jupyter.experiment.api",
}
# names that are modules (``guild_jupyter.plots``: the plot functions, importing it registers ``df.guild``)
_LAZY_MODULES = {"plots": "guild_jupyter.compare.plots", "widgets": "guild_jupyter.widgets"}

__all__ = sorted([*_LAZY, *_LAZY_MODULES]) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        import importlib

        importlib.import_module("guild_jupyter.compare")  # the df.guild accessor
        value = importlib.import_module(_LAZY_MODULES[name])
        globals()[name] = value
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'guild_jupyter' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext guild_jupyter``: registers ``%%guild_run`` and ``%guild``."""
    from guild_jupyter.notebook import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from guild_jupyter.notebook import unload_ipython_extension as unload

    unload(ipython)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "guild-jupyter"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "guild_jupyter.server"}]
