"""The guild-jupyter Jupyter server extension.

Jupyter finds this module through ``guild_jupyter._jupyter_server_extension_points()``
and enables it with ``jupyter-config/server-config/guild_jupyter.json`` (installed
into ``etc/jupyter/jupyter_server_config.d``).

Loading it creates one :class:`~guild_jupyter.server.manager.Manager` (the run
store of ``GUILD_JUPYTER_HOME`` and the event stream) kept in
``web_app.settings["guild_jupyter"]``, registers the routes under
``{base_url}guild/api/`` (see ``docs/server.md`` and ``docs/openapi.yaml``) and
puts the server's address into ``os.environ`` (``GUILD_JUPYTER_SERVER_URL``,
``GUILD_JUPYTER_SERVER_PID``) so kernels started later inherit it. The manager
starts (reconciling runs) once the event loop runs, or on the first request,
and stops with the server, leaving every run to its supervisor.
"""

from __future__ import annotations

import os
from typing import Any

EXTENSION_NAME = "guild_jupyter"
SETTINGS_KEY = "guild_jupyter"
URL_ENV = "GUILD_JUPYTER_SERVER_URL"
PID_ENV = "GUILD_JUPYTER_SERVER_PID"


def _load_jupyter_server_extension(server_app: Any) -> None:
    """Called by jupyter_server when it loads the extension."""
    from guild_jupyter import __version__
    from guild_jupyter.server.handlers import handlers
    from guild_jupyter.server.manager import Manager

    web_app = server_app.web_app
    manager = Manager(os.environ.get("GUILD_JUPYTER_HOME") or None, server_app.root_dir)
    web_app.settings[SETTINGS_KEY] = manager
    web_app.add_handlers(".*$", handlers(web_app.settings["base_url"]))
    try:
        os.environ[URL_ENV] = server_app.connection_url
        os.environ[PID_ENV] = str(os.getpid())
    except Exception:  # no address yet (e.g. a Unix socket being set up): kernels use the runtime file
        pass

    original_cleanup = server_app.cleanup_extensions

    async def cleanup_extensions() -> None:
        await manager.stop()
        await original_cleanup()

    server_app.cleanup_extensions = cleanup_extensions
    server_app.log.info("%s %s server extension loaded; runs in %s", EXTENSION_NAME, __version__,
                        manager.store.home)


async def _start_jupyter_server_extension(server_app: Any) -> None:
    """Called once the event loop runs: reconcile runs and start watching them."""
    manager = server_app.web_app.settings.get(SETTINGS_KEY)
    if manager is not None:
        await manager.ensure_started()


# Older name, still looked up by notebook-era servers.
load_jupyter_server_extension = _load_jupyter_server_extension
