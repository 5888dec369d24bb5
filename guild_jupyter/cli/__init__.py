"""The ``guild-jupyter`` command line (also ``python -m guild_jupyter``)."""
