"""Redis restarted under load: two worker processes share 60 jobs and the Redis behind the
gateway is killed (SIGKILL) while jobs are in flight, then started again on the same port from
its append-only file (every write synced before its reply, as Upstash keeps its data), after one
second or after three, longer than a lease. The gateway reconnects by itself; the workers keep
their leases or give them back; every job ends `completed`, with one accepted completion and one
result written. A job may run twice (a lease that expired during the outage is delivered again:
at least once), never complete twice.

`pytest -rP tests/worker/test_redis_restart.py` prints the figures of a run.
"""

from __future__ import annotations

import asyncio
import io
import json
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from local.redis_server import RedisServer, start_redis_server
from local.stack import Gateway, start_gateway
from shared import clock
from shared.queue.models import FINAL_STATUSES
from tests.support.harness import QueueHarness
from tests.support.worker_process import StartWorker, WorkerProcess, wait_for

JOBS = 60
CONCURRENCY = "3"
JOB_MS = 150  # 60 jobs keep 6 slots busy for about 1.5 s: the crash lands mid-run
LEASE_MS = 2_000  # renewed every 0.67 s: a lease can expire while Redis is down
MAX_ATTEMPTS = 5  # an attempt lost to the outage never uses up the job
ENQUEUES_AT_ONCE = 4
# A claim cut between its two calls waits out its provisional lease (12 s) before it reruns.
RECOVERY_WAIT_S = 30.0
# What a worker logs when a request fails because Upstash cannot reach Redis.
OUTAGE_EVENTS = {"redis_error", "report_retry", "job_report_failed"}


@dataclass
class DurableRedis:
    """A redis-server keeping its data in `directory`'s append-only file, which the test can
    crash and start again on the same port with the same file."""

    directory: Path
    server: RedisServer

    @classmethod
    def start(cls, directory: Path) -> DurableRedis:
        directory.mkdir()
        return cls(directory, start_redis_server(directory=directory, appendonly=True))

    @property
    def url(self) -> str:
        return self.server.url

    def crash(self) -> None:
        self.server.process.kill()
        self.server.process.wait()
        self.server.stop()

    def stop(self) -> None:
        self.server.stop()

    def start_again(self) -> None:
        port, directory = self.server.port, self.directory
        self.server = start_redis_server(port, directory=directory, appendonly=True)

    def commands(self) -> Iterator[list[bytes]]:
        """Every write Redis applied, before and after the crash, in order: the append-only
        file is never rewritten (RESP arrays of bulk strings, listed by its manifest)."""
        files = self.directory / "appendonlydir"
        manifest = (files / "appendonly.aof.manifest").read_text().splitlines()
        for line in manifest:  # "file <name> seq <n> type <b|h|i>"
            _, name, *_, kind = line.split()
            if kind == "i":
                yield from _resp_arrays(io.BytesIO((files / name).read_bytes()))


def _resp_arrays(stream: io.BytesIO) -> Iterator[list[bytes]]:
    while header := stream.readline():
        lengths = (int(stream.readline()[1:]) for _ in range(int(header[1:])))
        yield [stream.read(length + 2)[:-2] for length in lengths]


# `gateway` and `redis_direct` replace the session's in this module, so that `queue` and
# `start_worker` (tests/worker/conftest.py) use a stack of the test's own.
@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[DurableRedis]:
    server = DurableRedis.start(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def gateway(durable_redis: DurableRedis) -> Iterator[Gateway]:
    """In front of the Redis that the test restarts; it reconnects by itself."""
    own = start_gateway(durable_redis.url)
    yield own
    own.stop()


@pytest.fixture
def redis_direct(durable_redis: DurableRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(durable_redis.url, decode_responses=True, protocol=2)
    yield client
    client.close()


async def enqueue_jobs(queue: QueueHarness) -> list[str]:
    """The jobs, a few at a time: faster than the workers run them, so that the queue does
    not drain as it fills, and each within its deadline on a loaded machine."""
    slots, now = asyncio.Semaphore(ENQUEUES_AT_ONCE), clock.now_ms()

    async def enqueue() -> str:
        async with slots:
            data = {"sleepMs": JOB_MS}
            return await queue.enqueue(now, data=data, timeoutMs=LEASE_MS, maxAttempts=MAX_ATTEMPTS)

    return await asyncio.gather(*(enqueue() for _ in range(JOBS)))


def processor_calls(record_dir: Path) -> dict[str, list[tuple[int, int, str]]]:
    """Every processor call that returned, per job id: (pid, attempt, call id)."""
    calls: dict[str, list[tuple[int, int, str]]] = {}
    for record_file in record_dir.glob("*.log"):
        for line in record_file.read_text().splitlines():
            job_id, attempt, call = line.split()
            calls.setdefault(job_id, []).append((int(record_file.stem), int(attempt), call))
    return calls


def accepted_completions(workers: list[WorkerProcess]) -> Counter[str]:
    """Completions the queue accepted (the worker logs `completed` only then)."""
    return Counter(e["jobId"] for w in workers for e in w.events("completed"))


def result_writes(commands: Iterator[list[bytes]]) -> Counter[str]:
    """How many times each key had its `result` field written (only `complete_job` does)."""
    return Counter(c[1].decode() for c in commands if c[0] == b"HSET" and b"result" in c[2::2])


@pytest.mark.parametrize(
    "outage_s",
    [
        pytest.param(1.0, id="shorter-than-a-lease"),  # the workers can keep their leases
        pytest.param(3.0, id="longer-than-a-lease"),  # every lease held at the crash expires
    ],
)
async def test_a_redis_restart_under_load_loses_no_job_and_completes_none_twice(
    outage_s: float,
    durable_redis: DurableRedis,
    queue: QueueHarness,
    start_worker: StartWorker,
    tmp_path: Path,
) -> None:
    records = tmp_path / "records"
    records.mkdir()
    env = {"RECORD_DIR": str(records)}
    workers = [
        await start_worker("processors:record_attempt", "--concurrency", CONCURRENCY, env=env)
        for _ in range(2)
    ]
    job_ids = await enqueue_jobs(queue)

    def mid_run() -> bool:
        completed = queue.members(queue.keys.done("completed"))
        return len(completed) >= 6 and len(queue.members(queue.keys.leases)) >= 2

    await wait_for(mid_run, what="some jobs completed and others leased")
    completed_before = len(queue.members(queue.keys.done("completed")))
    durable_redis.crash()
    crashed_at = time.monotonic()
    await asyncio.sleep(outage_s)  # the outage itself, not a wait for an outcome
    durable_redis.start_again()
    restarted_at = time.monotonic()

    def all_finished() -> bool:
        return sum(len(queue.members(queue.keys.done(s))) for s in FINAL_STATUSES) >= JOBS

    await wait_for(all_finished, timeout_s=RECOVERY_WAIT_S, what="every job finished")
    recovered_at = time.monotonic()
    for worker in workers:
        worker.signal(signal.SIGTERM)  # so that their logs are complete
    assert [await worker.wait_exit() for worker in workers] == [0, 0]

    statuses = Counter(queue.job(j)["status"] for j in job_ids)
    assert statuses == {"completed": JOBS}, "none failed, none lost"
    accepted = accepted_completions(workers)
    assert accepted == Counter(job_ids), "each job's completion accepted once"
    writes = result_writes(durable_redis.commands())
    assert writes == Counter(queue.keys.job(j) for j in job_ids), "each job's result written once"
    calls = processor_calls(records)
    completed_by = {e["jobId"]: w.process.pid for w in workers for e in w.events("completed")}
    for job_id in job_ids:
        result = json.loads(queue.job(job_id)["result"])
        stored = (result["pid"], result["attempt"], result["call"])
        assert stored in calls[job_id], f"{job_id}: the stored result is a call that ran"
        assert result["pid"] == completed_by[job_id], f"{job_id}: from the accepting worker"
    lost = {e["jobId"] for w in workers for e in w.events("lease_lost")}
    ran_again = {job_id for job_id, runs in calls.items() if len(runs) > 1}
    assert ran_again <= lost, "only a job whose lease was lost ran again"
    if outage_s * 1000 > LEASE_MS:
        assert lost, "the leases held at the crash expired during the outage"
    errors = Counter(e["event"] for w in workers for e in w.logs() if e["event"] in OUTAGE_EVENTS)
    assert errors, "the workers met the outage"
    assert queue.members(queue.keys.leases) == []

    print(  # the figures of this run: `pytest -rP` shows them
        f"jobs {JOBS} (completed before the crash {completed_before}), "
        f"processor calls {sum(map(len, calls.values()))}, ran again {len(ran_again)}, "
        f"leases lost {len(lost)}, completions {accepted.total()}, "
        f"results written {writes.total()}, worker errors {dict(errors)}, "
        f"Redis down {restarted_at - crashed_at:.2f} s, "
        f"all completed {recovered_at - restarted_at:.2f} s after the restart"
    )
