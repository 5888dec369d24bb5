"""Guild AI compatibility: importing Guild runs and running ``guild.yml`` operations.

- :mod:`.guild_attrs`: reading one Guild AI 0.9 run directory (read-only).
- :mod:`.tfevents`: a small reader of TensorBoard event files (no TensorFlow needed).
- :mod:`.importer`: ``import-guild``: Guild runs into this project's store.
- :mod:`.guildfile`: parsing and validating ``guild.yml`` with line numbers.
- :mod:`.guildfile_op`: a guildfile operation, runnable like a script operation.
"""
