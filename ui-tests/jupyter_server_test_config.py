"""Jupyter server configuration for the Galata UI tests.

Never use it outside tests: it disables the token and XSRF checks and exposes
JupyterLab's objects on ``window`` for Galata.
"""

import os
import tempfile

from jupyterlab.galata import configure_jupyter_server

configure_jupyter_server(c)  # noqa: F821 (c is injected by the config loader)

# CI and the dev machines run as root.
c.ServerApp.allow_root = True  # noqa: F821
# A port of its own (not JupyterLab's 8888, where `make lab` may be running), and fail
# rather than move to another port that Playwright would not know.
c.ServerApp.port = int(os.environ.get("UI_TEST_PORT", "8988"))  # noqa: F821
c.ServerApp.port_retries = 0  # noqa: F821
# c.ServerApp.log_level = "DEBUG"

# A run store of its own for every test server: the tests never read or write the user's
# runs (kernels started by this server inherit the variable). UI_TEST_GUILD_HOME pins it.
os.environ["GUILD_JUPYTER_HOME"] = os.environ.get("UI_TEST_GUILD_HOME") or tempfile.mkdtemp(
    prefix="guild-ui-tests-")
