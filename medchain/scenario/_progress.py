"""The scenario's stages as rich progress bars (on stderr by default), for the CLI and the demo."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


class ProgressBars:
    """A :class:`medchain.scenario.Progress` that draws one bar per stage; use it as a context
    manager around :func:`medchain.scenario.run_scenario`."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
        )
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressBars:
        self._progress.start()
        return self

    def stage(self, description: str, total: int) -> None:
        self._complete()
        self._task = self._progress.add_task(description, total=total)

    def advance(self, steps: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, steps)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self._complete()
        self._progress.stop()

    def _complete(self) -> None:
        """Shows the current stage as done (a stage may finish with fewer steps than announced)."""
        if self._task is not None:
            total = self._progress.tasks[self._task].total or 0
            self._progress.update(self._task, completed=total)
