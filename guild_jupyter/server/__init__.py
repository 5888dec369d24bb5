"""The guild-jupyter Jupyter server extension.

Jupyter finds this module through ``guild_jupyter._jupyter_server_extension_points()``
and enables it with ``jupyter-config/server-config/guild_jupyter.json`` (installed
into ``etc/jupyter/jupyter_server_config.d``). REST routes under
``{base_url}guild/api/`` are registered here once they exist.
"""

from __future__ import annotations

from typing import Any

EXTENSION_NAME = "guild_jupyter"


def _load_jupyter_server_extension(server_app: Any) -> None:
    """Called by jupyter_server when it loads the extension."""
    from guild_jupyter import __version__

    server_app.log.info("%s %s server extension loaded", EXTENSION_NAME, __version__)


# Older name, still looked up by notebook-era servers.
load_jupyter_server_extension = _load_jupyter_server_extension
