"""The local executor: a detached supervisor process on this machine.

Forked by the warm launcher when it is up (about a millisecond), else a new
``python -m guild_jupyter.orchestration.supervisor`` process. The supervisor
is the run's owner: it outlives whoever submitted the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from guild_jupyter.orchestration import launcher
from guild_jupyter.orchestration.executors import Executor, Owner
from guild_jupyter.orchestration.process_info import process_start_time


class LocalExecutor(Executor):
    name = "local"

    def check(self, resources: dict[str, float] | None = None) -> None:
        if resources:
            super().check(resources)

    def launch(
        self,
        store: Any,
        run_id: str,
        env: dict[str, str],
        resources: dict[str, float] | None = None,
    ) -> tuple[Owner, int, float | None]:
        handle = launcher.spawn(run_id, env)
        if handle is not None:
            return handle, handle.pid, handle.started
        with open(os.path.join(store.meta_dir(run_id), "supervisor.log"), "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "guild_jupyter.orchestration.supervisor", run_id],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        return proc, proc.pid, process_start_time(proc.pid)


LOCAL_EXECUTOR = LocalExecutor()
