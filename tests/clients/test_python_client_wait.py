"""`wait`'s loop without I/O (`calls.wait` is a generator of steps): driven here by a scripted
server and a clock that only moves when a request is held or the client pauses, so each rule is
exact: it pauses only after an answer that came sooner than asked with nothing changed, asks
for at most 25 s and never past its timeout, and reports every new version of the job once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from ai_queue_client import Job, JobStatus, JobWaitTimeout
from ai_queue_client.calls import wait
from ai_queue_client.exchange import Call, Notify, Pause, Reply

JOB_ID = "01M8T163RW8126239JE0VA0RQ7"


def version(status: str = "pending", updated_at: int = 1_000, **fields: Any) -> dict[str, Any]:
    return {
        "id": JOB_ID,
        "type": "image.generate",
        "userId": "user-1",
        "status": status,
        "priority": 5,
        "attempts": 0,
        "maxAttempts": 3,
        "progress": None,
        "result": None,
        "error": None,
        "createdAt": 1_000,
        "runAt": 1_000,
        "startedAt": None,
        "finishedAt": None,
        "updatedAt": updated_at,
        **fields,
    }


@dataclass
class ScriptedServer:
    """Answers each request with the next (job, seconds held) of `answers`."""

    answers: Iterator[tuple[dict[str, Any], float]]
    now_s: float = 0.0
    steps: list[Call | Pause | Notify] = field(default_factory=list)

    def clock(self) -> float:
        return self.now_s

    def run(self, timeout_s: float = 60.0) -> Job:
        operation = wait(
            JOB_ID,
            timeout_s=timeout_s,
            on_update=lambda job: None,
            poll_interval_s=0.5,
            clock=self.clock,
        )
        answer: Reply | None = None
        while True:
            try:
                step = operation.send(answer)
            except StopIteration as done:
                result: Job = done.value
                return result
            self.steps.append(step)
            answer = self.perform(step)

    def perform(self, step: Call | Pause | Notify) -> Reply | None:
        if isinstance(step, Pause):
            self.now_s += step.seconds
        if not isinstance(step, Call):
            return None
        body, held_s = next(self.answers)
        self.now_s += held_s
        return Reply(200, {"content-type": "application/json"}, json.dumps(body).encode())

    def kinds(self) -> list[str]:
        return [type(step).__name__ for step in self.steps]

    def calls(self) -> list[Call]:
        return [step for step in self.steps if isinstance(step, Call)]


def test_a_server_that_answers_at_once_unchanged_is_asked_again_after_a_pause() -> None:
    server = ScriptedServer(
        iter([(version(), 0.01), (version(), 0.01), (version("completed", 2_000), 0.01)])
    )

    final = server.run()

    assert final.status == JobStatus.COMPLETED
    assert server.kinds() == ["Call", "Notify", "Call", "Pause", "Call", "Notify"]
    assert [step.seconds for step in server.steps if isinstance(step, Pause)] == [0.5]


def test_a_server_that_held_the_request_unchanged_is_asked_again_at_once() -> None:
    server = ScriptedServer(
        iter([(version(), 0.0), (version(), 25.0), (version("completed", 2_000), 3.0)])
    )

    server.run()

    assert server.kinds() == ["Call", "Notify", "Call", "Call", "Notify"]


def test_every_new_version_is_reported_once_and_asked_after_at_once() -> None:
    versions = [
        (version(), 0.0),
        (version("processing", 1_100), 0.01),
        (version("processing", 1_200, progress={"percent": 50, "message": None}), 0.01),
        (version("completed", 1_300), 0.01),
    ]
    server = ScriptedServer(iter(versions))

    server.run()

    notified = [step.value.updated_at for step in server.steps if isinstance(step, Notify)]
    assert notified == [1_000, 1_100, 1_200, 1_300]
    assert "Pause" not in server.kinds()
    assert [call.params.get("after") for call in server.calls()] == [None, "1000", "1100", "1200"]


def test_the_first_request_reads_the_job_as_it_is_then_each_one_long_polls() -> None:
    server = ScriptedServer(iter([(version(), 0.0), (version("completed", 2_000), 1.0)]))

    server.run(timeout_s=60.0)

    first, poll = server.calls()
    assert dict(first.params) == {"id": JOB_ID}
    assert dict(poll.params) == {"id": JOB_ID, "waitMs": "25000", "after": "1000"}
    assert poll.extra_timeout_s == 25.0  # the HTTP timeout covers the time the server holds it


def test_wait_ms_shrinks_to_the_time_left_and_then_it_times_out_with_the_last_version() -> None:
    held = [(version(), 0.0), (version(), 2.75), (version("processing", 1_500), 0.25)]
    server = ScriptedServer(iter(held))

    with pytest.raises(JobWaitTimeout) as raised:
        server.run(timeout_s=3.0)

    assert [call.params.get("waitMs") for call in server.calls()] == [None, "3000", "250"]
    assert raised.value.job.status == JobStatus.PROCESSING


def test_a_final_job_ends_the_wait_without_another_request() -> None:
    server = ScriptedServer(iter([(version("cancelled", 2_000), 0.0)]))

    assert server.run().status == JobStatus.CANCELLED
    assert server.kinds() == ["Call", "Notify"]


@pytest.mark.parametrize(
    ("timeout_s", "poll_interval_s"), [(-1.0, 0.5), (float("nan"), 0.5), (1.0, 0.0)]
)
def test_a_negative_timeout_or_a_zero_poll_interval_is_refused(
    timeout_s: float, poll_interval_s: float
) -> None:
    operation = wait(JOB_ID, timeout_s=timeout_s, on_update=None, poll_interval_s=poll_interval_s)

    with pytest.raises(ValueError, match=r"timeout_s|poll_interval_s"):
        next(operation)
