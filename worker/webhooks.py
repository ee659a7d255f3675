"""`WebhookSender`: delivers job callbacks (SPEC section 10) from inside a worker.

    sender = WebhookSender(settings, redis, QueueKeys(settings.queue_name))
    task = asyncio.create_task(sender.run())    # until cancelled
    sender.notify(job_id)                        # optional: a job that just ended here

A try starts on a `"<jobId> webhook"` message on the events channel, when a retry this sender
scheduled is due (its own timer), or when a scan of the `webhooks` ZSET finds it due: at start,
whenever the stream (re)subscribes (what was published before was missed) and hourly, so tries
that a dead worker scheduled or held are not lost. Whoever claims the try first makes it
(`claim_delivery`); at most `concurrency` tries run at once. Idle, the sender polls nothing:
one ZRANGEBYSCORE an hour, 24 billed commands a day, plus the subscription itself.

`EventStream` drops messages that are not `"<jobId> <readyAtMs>"`, so the sender subscribes
through a subclass that reads the `webhook` ones (`WebhookEvents`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from upstash_redis.asyncio import Redis

from shared import clock
from shared.config.settings import Settings
from shared.errors import BadRedisReply, RedisUnavailable, ServerMisconfigured
from shared.queue.job_ids import is_job_id
from shared.store.keys import QueueKeys
from shared.webhooks.delivery import DeliveryOptions, deliver
from shared.webhooks.outbox import (
    IN_FLIGHT_MS,
    SCAN_LIMIT,
    ClaimedDelivery,
    Recorded,
    claim_delivery,
    due_deliveries,
    record_delivery,
)
from shared.webhooks.retries import RetrySchedule, after_try
from shared.webhooks.signing import BadSecret, message_id, sign, signing_key
from worker.events import EventStream, Subscribed, keepalive_options
from worker.logs import log_event

SCAN_INTERVAL_S = 3600.0
SCAN_RETRY_S = 60.0
WEBHOOK_EVENT = "webhook"


@dataclass(frozen=True)
class SenderOptions:
    concurrency: int = 4
    schedule: RetrySchedule = field(default_factory=RetrySchedule)
    scan_interval_s: float = SCAN_INTERVAL_S
    subscribe: bool = True  # else only notify(), timers and scans start tries
    delivery: DeliveryOptions | None = None  # None: the settings' WEBHOOK_ALLOWED_HOSTS


def webhook_job_id(line: str, channel: str) -> str | Subscribed | None:
    """One SSE line: the job id of `data: message,<channel>,<jobId> webhook`, Subscribed for
    `data: subscribe,<channel>,<n>`, else None."""
    data = line.removeprefix("data: ")
    if data == line:
        return None
    if data.startswith(f"subscribe,{channel},"):
        return Subscribed()
    job_id, _, event = data.removeprefix(f"message,{channel},").partition(" ")
    return job_id if event == WEBHOOK_EVENT and is_job_id(job_id) else None


class WebhookEvents(EventStream):
    """The events channel's `webhook` messages, with EventStream's reconnects and keepalive."""

    def __init__(
        self, settings: Settings, channel: str, on_message: Callable[[str | Subscribed], None]
    ) -> None:
        super().__init__(settings, channel, lambda _: None)
        self._on_message = on_message

    async def _listen(self) -> None:
        timeout = httpx.Timeout(self._settings.redis_timeout_s, read=None)
        transport = httpx.AsyncHTTPTransport(socket_options=keepalive_options())
        headers = {"Authorization": f"Bearer {self._settings.upstash_token}"}
        async with (
            httpx.AsyncClient(transport=transport, timeout=timeout, headers=headers) as client,
            client.stream("GET", self._url) as response,
        ):
            if response.status_code != 200:
                log_event("subscription_refused", logging.ERROR, status=response.status_code)
                return
            async for line in response.aiter_lines():
                message = webhook_job_id(line, self._channel)
                if message is not None:
                    self._on_message(message)


class WebhookSender:
    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        keys: QueueKeys,
        options: SenderOptions | None = None,
    ) -> None:
        self._settings, self._redis, self._keys = settings, redis, keys
        self._options = options or SenderOptions()
        if self._options.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self._key = _key(settings)
        self._delivery = self._options.delivery or DeliveryOptions(
            allowed_hosts=settings.webhook_allowed_hosts
        )
        self._slots = asyncio.Semaphore(self._options.concurrency)
        self._tries: dict[str, asyncio.Task[None]] = {}  # job id -> its try, queued or running
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._scan_now = asyncio.Event()

    async def run(self) -> None:
        """Until cancelled. Without WEBHOOK_SECRET nothing can be signed: it logs and returns."""
        if self._key is None:
            self._log("webhooks_disabled", logging.WARNING, reason="WEBHOOK_SECRET is not set")
            return
        stream = None
        if self._options.subscribe:
            events = WebhookEvents(self._settings, self._keys.events_channel, self._on_message)
            stream = asyncio.create_task(events.run())
        try:
            while True:
                delay_s = await self._scan()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay_s):
                        await self._scan_now.wait()
                self._scan_now.clear()
        finally:
            await self._stop(stream)

    def notify(self, job_id: str) -> None:
        """Try the job's callback now, unless a try of it is already under way here."""
        if job_id not in self._tries:
            self._tries[job_id] = asyncio.create_task(self._try_when_free(job_id))

    # -- what starts a try -----------------------------------------------------------------

    def _on_message(self, message: str | Subscribed) -> None:
        if isinstance(message, Subscribed):
            self._scan_now.set()  # what was published before the stream was live was missed
        else:
            self.notify(message)

    async def _scan(self) -> float:
        """Start every due try; the seconds until the next scan."""
        try:
            while True:
                due = await due_deliveries(
                    self._redis, self._settings, self._keys, now_ms=clock.now_ms()
                )
                for job_id in due:
                    self.notify(job_id)
                if len(due) < SCAN_LIMIT:
                    return self._options.scan_interval_s
                # A full page: let these claim (pushing them ahead), then read on.
                await asyncio.gather(*(self._tries[j] for j in due if j in self._tries))
        except (RedisUnavailable, BadRedisReply) as error:
            self._log("webhook_scan_failed", logging.WARNING, error=str(error))
            return min(SCAN_RETRY_S, self._options.scan_interval_s)

    def _try_later(self, job_id: str, at_ms: int) -> None:
        old = self._timers.pop(job_id, None)
        if old is not None:
            old.cancel()
        delay_s = max(0.0, (at_ms - clock.now_ms()) / 1000)
        loop = asyncio.get_running_loop()
        self._timers[job_id] = loop.call_later(delay_s, self._timer_fired, job_id)

    def _timer_fired(self, job_id: str) -> None:
        self._timers.pop(job_id, None)
        self.notify(job_id)

    # -- one try ---------------------------------------------------------------------------

    async def _try_when_free(self, job_id: str) -> None:
        try:
            async with self._slots:
                await self._try(job_id)
        except RedisUnavailable as error:
            # A claim that was made lapses after its window; try again then.
            self._log("webhook_redis_error", logging.WARNING, jobId=job_id, error=str(error))
            self._try_later(job_id, clock.now_ms() + IN_FLIGHT_MS + 1000)
        except BadRedisReply as error:  # left to the next scan
            self._log("webhook_bad_reply", logging.ERROR, jobId=job_id, error=str(error))
        finally:
            self._tries.pop(job_id, None)

    async def _try(self, job_id: str) -> None:
        r, s, k = self._redis, self._settings, self._keys
        claimed = await claim_delivery(r, s, k, job_id, now_ms=clock.now_ms())
        if claimed is None:
            return
        body = claimed.body
        outcome = await deliver(
            claimed.callback_url, body, self._headers(claimed, body), self._delivery
        )
        state, next_at_ms = after_try(
            self._options.schedule, claimed.state, outcome, now_ms=clock.now_ms()
        )
        recorded = await record_delivery(r, s, k, claimed, state, next_try_at_ms=next_at_ms)
        self._log(
            f"webhook_{'retrying' if next_at_ms else state.status.value}",
            logging.INFO if outcome.error is None else logging.WARNING,
            jobId=job_id,
            attempts=state.attempts,
            error=outcome.error,
            recorded=recorded.value,
        )
        if recorded is Recorded.RECORDED and next_at_ms is not None:
            self._try_later(job_id, next_at_ms)

    def _headers(self, claimed: ClaimedDelivery, body: bytes) -> dict[str, str]:
        assert self._key is not None  # run() returns at once without one
        msg_id = message_id(claimed.job_id, claimed.job.status.value)
        return sign(self._key, msg_id, clock.now_ms() // 1000, body).as_dict()

    # -- stopping --------------------------------------------------------------------------

    async def _stop(self, stream: asyncio.Task[None] | None) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        tasks = [*self._tries.values(), *([stream] if stream else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _log(self, event: str, level: int = logging.INFO, **fields: Any) -> None:
        log_event(event, level, queue=self._keys.queue_name, **fields)


def _key(settings: Settings) -> bytes | None:
    if settings.webhook_secret is None:
        return None
    try:
        return signing_key(settings.webhook_secret)
    except BadSecret as error:
        raise ServerMisconfigured(str(error)) from None
