"""Progress for long store work (index rebuilds), shown on stderr with rich."""

from __future__ import annotations

from collections.abc import Callable


def console_progress(description: str, total: int) -> Callable[..., None] | None:
    """A ``tick(n, done=False)`` callback, or None when not worth showing."""
    if total < 100:
        return None
    from rich.console import Console
    from rich.progress import Progress

    progress = Progress(console=Console(stderr=True), transient=False)
    task = progress.add_task(description, total=total)
    progress.start()

    def tick(n: int, done: bool = False) -> None:
        if n:
            progress.advance(task, n)
        if done:
            progress.stop()

    return tick
