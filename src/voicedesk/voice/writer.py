"""An ordered background writer: sink calls leave the audio path and never end the call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Operation = Callable[[], Awaitable[None]]


class BackgroundWriter:
    """Runs submitted operations one at a time, in order, on its own task.

    The queue is bounded: when a sink falls this far behind, new operations are dropped
    and counted rather than held in memory (``dropped``). ``on_error`` sees every failure.
    """

    def __init__(
        self, name: str, *, on_error: Callable[[str, Exception], None], max_pending: int = 256
    ) -> None:
        self.name = name
        self._on_error = on_error
        self._queue: asyncio.Queue[Operation] = asyncio.Queue(max_pending)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self._pending = 0

    def submit(self, op: Operation) -> bool:
        """Queue ``op``; False if it was dropped because the queue is full."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"writer-{self.name}")
        try:
            self._queue.put_nowait(op)
        except asyncio.QueueFull:
            self.dropped += 1
            return False
        self._pending += 1
        return True

    def drop_pending(self) -> int:
        """Forget every queued operation that has not started yet."""
        n = 0
        while True:
            try:
                self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return n
            self._queue.task_done()
            self._pending -= 1
            n += 1

    async def join(self) -> None:
        """Wait until everything submitted so far has run."""
        await self._queue.join()

    async def aclose(self) -> None:
        """Run what is queued, then stop the task."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    @property
    def idle(self) -> bool:
        return self._pending == 0

    async def _run(self) -> None:
        while True:
            op = await self._queue.get()
            try:
                await op()
            except Exception as exc:
                log.warning("sink operation failed", extra={"writer": self.name, "error": type(exc).__name__})
                self._on_error(self.name, exc)
            finally:
                self._pending -= 1
                self._queue.task_done()
