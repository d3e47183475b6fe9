"""In-process interval scheduler for the embedded deployment.

Job functions are plain async callables; the same functions run on a distributed queue in
the scaled deployment. One run at a time per job; a failing run is logged and retried at
the next interval; ``stop`` waits for running jobs to finish (bounded).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger(__name__)

JobFn = Callable[[], Awaitable[object]]


@dataclass
class Job:
    name: str
    interval_s: float
    fn: JobFn
    initial_delay_s: float = 5.0
    runs: int = 0
    failures: int = 0
    last_duration_s: float | None = None
    running: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Scheduler:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    def register(self, name: str, interval_s: float, fn: JobFn, *, initial_delay_s: float = 5.0) -> Job:
        if name in self.jobs:
            raise RuntimeError(f"job {name!r} is registered twice")
        job = Job(name, interval_s, fn, initial_delay_s)
        self.jobs[name] = job
        return job

    async def run_once(self, name: str) -> bool:
        """Run a job now unless it is already running; returns whether it ran."""
        job = self.jobs[name]
        if job._lock.locked():
            return False
        async with job._lock:
            job.running = True
            started = time.monotonic()
            try:
                await job.fn()
                job.runs += 1
            except Exception as exc:  # a job failure must not stop the scheduler
                job.failures += 1
                log.error("job_failed", job=name, error=type(exc).__name__)
            finally:
                job.running = False
                job.last_duration_s = time.monotonic() - started
        return True

    async def _loop(self, job: Job) -> None:
        delay = job.initial_delay_s
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
                return
            await self.run_once(job.name)
            delay = job.interval_s

    def start(self) -> None:
        self._stopping.clear()
        self._tasks = [asyncio.create_task(self._loop(job), name=f"job:{job.name}") for job in self.jobs.values()]

    async def stop(self, timeout_s: float = 30.0) -> None:
        self._stopping.set()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=timeout_s)
            for task in pending:
                task.cancel()
        self._tasks = []
