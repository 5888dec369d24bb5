"""Jupyter server configuration for the Galata UI tests.

Never use it outside tests: it disables the token and XSRF checks and exposes
JupyterLab's objects on ``window`` for Galata.
"""

from jupyterlab.galata import configure_jupyter_server

configure_jupyter_server(c)  # noqa: F821 (c is injected by the config loader)

# CI and the dev machines run as root.
c.ServerApp.allow_root = True  # noqa: F821
# c.ServerApp.log_level = "DEBUG"
