"""``python -m guild_jupyter.orchestration.executors.worker_supervisor RUN_ID``.

The ordinary supervisor, started by a Dask task on a worker, plus one duty:
when the worker process that started it dies (killed, OOM, scaled down), it
stops its run (SIGTERM to itself: the supervisor's own stop path, which ends
the whole process tree). Nobody could report on the run any more, and the
orchestrator retries it or records it ``failed``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    from guild_jupyter.orchestration import supervisor

    return supervisor.main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
