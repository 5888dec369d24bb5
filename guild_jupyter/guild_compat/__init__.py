"""Guild AI compatibility: importing Guild runs and running ``guild.yml`` operations.

- :mod:`.guild_attrs`: reading one Guild AI 0.9 run directory (read-only).
- :mod:`.tfevents`: a small reader of TensorBoard event files (no TensorFlow needed).
- :mod:`.importer`: ``import-guild``: Guild runs into this project's store.
- :mod:`.guildfile_yaml`: the line-tracking YAML loader and finding ``guild.yml``.
- :mod:`.guildfile_schema`: the operation and flag attributes ``guild.yml`` may use.
- :mod:`.guildfile`: validating ``guild.yml``'s operations and flags, with line numbers.
- :mod:`.guildfile_op`: a guildfile operation, runnable like a script operation.
- :mod:`.flags_dest`: how flag values reach the process (flags-dest, exec argv).
- :mod:`.guildfile_help`: flag tables and ``guild-jupyter ops``.
"""
