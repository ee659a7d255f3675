"""Progress reports: validated, coalesced to the latest value, written at most once per
interval, safe from any thread; the last unwritten value travels with the completion."""

from __future__ import annotations

import asyncio
import threading

import pytest

from shared.queue.models import Progress
from worker.progress import ProgressReporter, make_progress


async def start(
    interval_s: float = 60.0,
) -> tuple[ProgressReporter, list[Progress], asyncio.Task[None]]:
    written: list[Progress] = []

    async def send(progress: Progress) -> None:
        written.append(progress)

    reporter = ProgressReporter(asyncio.get_running_loop(), send, min_interval_s=interval_s)
    return reporter, written, asyncio.create_task(reporter.run())


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_reports_in_quick_succession_write_only_the_latest() -> None:
    reporter, written, task = await start()
    for percent in (10, 20, 30):
        reporter.report(percent, f"at {percent}")
    await settle()

    assert written == [Progress(percent=30, message="at 30")]
    assert reporter.unwritten() is None
    task.cancel()


async def test_a_report_during_the_interval_waits_and_is_handed_to_the_completion() -> None:
    reporter, written, task = await start(interval_s=60)
    reporter.report(10)
    await settle()
    reporter.report(90, "almost")
    await settle()

    assert written == [Progress(percent=10)]
    assert reporter.unwritten() == Progress(percent=90, message="almost")
    task.cancel()


async def test_reports_from_another_thread_reach_the_loop() -> None:
    reporter, written, task = await start()
    thread = threading.Thread(target=reporter.report, args=(55, "from a thread"))
    thread.start()
    thread.join()

    for _ in range(100):
        if written:
            break
        await asyncio.sleep(0.01)
    assert written == [Progress(percent=55, message="from a thread")]
    task.cancel()


@pytest.mark.parametrize(
    ("percent", "message"), [(-1, None), (100.5, None), (50, 7), (50, "x" * 501)]
)
def test_bad_progress_is_refused_to_the_processor(percent: float, message: object) -> None:
    with pytest.raises(ValueError, match="progress"):
        make_progress(percent, message)  # type: ignore[arg-type]
