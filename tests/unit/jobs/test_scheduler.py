from __future__ import annotations

import asyncio

from voicedesk.jobs.scheduler import Scheduler


async def test_one_run_at_a_time_and_clean_stop() -> None:
    sched = Scheduler()
    started = asyncio.Event()
    release = asyncio.Event()
    runs = 0

    async def slow() -> None:
        nonlocal runs
        runs += 1
        started.set()
        await release.wait()

    sched.register("slow", 0.01, slow, initial_delay_s=0)
    sched.start()
    await started.wait()
    assert await sched.run_once("slow") is False  # already running
    release.set()
    await asyncio.sleep(0.05)
    await sched.stop()
    assert runs >= 2
    assert sched.jobs["slow"].failures == 0


async def test_failing_job_is_counted_and_scheduler_survives() -> None:
    sched = Scheduler()

    async def bad() -> None:
        raise ValueError("boom")

    sched.register("bad", 60, bad)
    assert await sched.run_once("bad") is True
    assert sched.jobs["bad"].failures == 1
