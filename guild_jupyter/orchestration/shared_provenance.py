"""Provenance for many runs of one sweep: collected once, hard-linked into each trial.

What a supervisor records (packages, platform, git state, the environment,
redacted) is the same for every trial of a sweep, and collecting it (a walk
of the installed packages, ``git`` processes) costs more than a trivial
trial. The trial worker collects it once per project folder as the sweep's
own ``provenance.json`` and links it into each trial's record. The variables
that differ per trial (``RUN_ID``, ``RUN_DIR``, ``FLAG_*``) are not in it: the
trial's record says them.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading

from guild_jupyter.orchestration.launch import LaunchSpec
from guild_jupyter.storage import layout
from guild_jupyter.storage.store import RunStore

log = logging.getLogger("guild_jupyter.trial_worker")


class SharedProvenance:
    def __init__(self, store: RunStore, sweep_id: str) -> None:
        self.store, self.sweep_id = store, sweep_id
        self._files: dict[str, str] = {}  # project dir -> the sweep's provenance file
        self._lock = threading.Lock()

    def link(self, run_id: str, spec: LaunchSpec) -> None:
        """Give the run its provenance (never raises: a run without it is still a run)."""
        from guild_jupyter.orchestration.provenance import collect

        target = os.path.join(self.store.runs_dir, run_id, layout.META_DIR, layout.PROVENANCE)
        try:
            key = spec.project_dir or ""
            with self._lock:
                shared = self._files.get(key)
                if shared is None:
                    data = collect(spec.project_dir, os.environ, python=spec.argv[0])
                    n = len(self._files)
                    name = layout.PROVENANCE if not n else f"provenance-{n}.json"
                    shared = os.path.join(self.store.meta_dir(self.sweep_id), name)
                    layout.atomic_write_json(shared, data, pretty=True)
                    self._files[key] = shared
            try:
                os.link(shared, target)
            except OSError:
                shutil.copyfile(shared, target)
        except Exception:
            log.exception("collecting provenance failed")
